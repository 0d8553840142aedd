//! bcrypt compatibility with Go's x/crypto hashes (D9, D15).

use account_streams::domain::password::{
    hash, hash_with_cost, verify, PasswordError, PasswordHash,
};
use account_streams::wire::commands::Password;

fn pw(s: &str) -> Password {
    Password::new(s)
}

#[test]
fn hashes_at_cost_10_with_the_go_prefix() {
    let h = hash(&pw("secret")).unwrap();
    assert!(h.expose().starts_with("$2a$10$"), "{}", h.expose().len());
    assert_eq!(h.expose().len(), 60);
    assert!(verify(&pw("secret"), &h));
    assert!(!verify(&pw("Secret"), &h));
    assert_eq!(format!("{h:?}"), "PasswordHash(***)");
}

#[test]
fn verifies_known_vectors_and_all_2x_prefixes() {
    // Classic OpenBSD / openwall bcrypt test vectors.
    let v =
        PasswordHash::from_stored("$2a$05$CCCCCCCCCCCCCCCCCCCCC.E5YPO9kmyuRGyh0XouQYb4YMJKvyOeW");
    assert!(verify(&pw("U*U"), &v));
    assert!(!verify(&pw("U*U*"), &v));
    let v =
        PasswordHash::from_stored("$2a$05$CCCCCCCCCCCCCCCCCCCCC.VGOzA784oUp/Z0DY336zx7pLYAy0lwK");
    assert!(verify(&pw("U*U*"), &v));
    let h = hash_with_cost(&pw("hunter2"), 4).unwrap();
    for prefix in ["$2a$", "$2b$", "$2y$"] {
        let other = PasswordHash::from_stored(format!("{prefix}{}", &h.expose()[4..]));
        assert!(verify(&pw("hunter2"), &other), "{prefix}");
    }
}

#[test]
fn malformed_stored_values_never_match_and_never_panic() {
    for stored in [
        "",
        "$",
        "$2",
        "$2a",
        "$2a$",
        "$2a$10$",
        "secret",
        "$1$abc",
        "$2a$99$CCCCCCCCCCCCCCCCCCCCC.E5YPO9kmyuRGyh0XouQYb4YMJKvyOeW",
        "$2a$05$\u{e9}\u{e9}",
    ] {
        assert!(
            !verify(&pw("secret"), &PasswordHash::from_stored(stored)),
            "{stored:?}"
        );
        assert!(
            !verify(&pw(""), &PasswordHash::from_stored(stored)),
            "{stored:?}"
        );
    }
}

#[test]
fn long_passwords() {
    assert_eq!(
        hash_with_cost(&pw(&"a".repeat(73)), 4),
        Err(PasswordError::TooLong)
    );
    let h = hash_with_cost(&pw(&"a".repeat(72)), 4).unwrap();
    assert!(verify(&pw(&"a".repeat(72)), &h));
    // bcrypt keys on the first 72 bytes only (as x/crypto v0.55 compares).
    assert!(verify(&pw(&"a".repeat(80)), &h));
    assert!(!verify(&pw(&"a".repeat(71)), &h));
}
