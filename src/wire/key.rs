//! The 8-byte message key of the Atlas services.
//!
//! The Go services write `uint32(id)` little-endian followed by four zero
//! bytes; consumers compare keys byte for byte, so this layout is fixed.

/// Key bytes for an account id (or 0 for errors without an account).
pub fn message_key(id: u32) -> [u8; 8] {
    let b = id.to_le_bytes();
    [b[0], b[1], b[2], b[3], 0, 0, 0, 0]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_match_the_spec_examples() {
        assert_eq!(message_key(0), [0; 8]);
        assert_eq!(message_key(7), [7, 0, 0, 0, 0, 0, 0, 0]);
        assert_eq!(message_key(1001), [0xE9, 0x03, 0, 0, 0, 0, 0, 0]);
        assert_eq!(
            message_key(0x1234_5678),
            [0x78, 0x56, 0x34, 0x12, 0, 0, 0, 0]
        );
    }
}
