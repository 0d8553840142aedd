//! State stores for the stream runtime.
//!
//! A store is a sorted byte-key / byte-value map owned by exactly one task.
//! The runtime decides when writes become durable; this crate only knows how
//! to hold, apply and restore them. It knows nothing about Kafka topics.

use std::collections::BTreeMap;

/// A sorted key-value store owned by one task.
///
/// Kept object-safe so the runtime can hold RocksDB and in-memory stores
/// behind one type.
pub trait KeyValueStore: Send {
    fn get(&self, key: &[u8]) -> Option<Vec<u8>>;
    fn put(&mut self, key: &[u8], value: &[u8]);
    fn delete(&mut self, key: &[u8]);
}

/// In-memory store for unit tests of processors.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct MemoryStore {
    entries: BTreeMap<Vec<u8>, Vec<u8>>,
}

impl MemoryStore {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }
}

impl KeyValueStore for MemoryStore {
    fn get(&self, key: &[u8]) -> Option<Vec<u8>> {
        self.entries.get(key).cloned()
    }

    fn put(&mut self, key: &[u8], value: &[u8]) {
        self.entries.insert(key.to_vec(), value.to_vec());
    }

    fn delete(&mut self, key: &[u8]) {
        self.entries.remove(key);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn memory_store_put_get_delete() {
        let mut s = MemoryStore::new();
        assert_eq!(s.get(b"a"), None);
        s.put(b"a", b"1");
        s.put(b"a", b"2");
        assert_eq!(s.get(b"a"), Some(b"2".to_vec()));
        assert_eq!(s.len(), 1);
        s.delete(b"a");
        assert!(s.is_empty());
    }
}
