use std::path::Path;

use peerapi::keys::{decode_key, load_key};

/// A py-libp2p Ed25519 key file holds `PrivateKey{Type=Ed25519, Data=<32-byte seed>}`.
fn py_style_file(seed: &[u8; 32]) -> Vec<u8> {
    let mut out = vec![0x08, 0x01, 0x12, 0x20];
    out.extend_from_slice(seed);
    out
}

// Test vector, printed by py-libp2p 0.8.1 for the seed 0x01..0x20:
// `ID.from_pubkey(create_new_key_pair(seed).public_key).to_base58()`; its
// `private_key.serialize()` is exactly `08 01 12 20 || seed`.
const SEED: [u8; 32] = [
    1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18, 19, 20, 21, 22, 23, 24, 25, 26,
    27, 28, 29, 30, 31, 32,
];
const EXPECTED_PEER_ID: &str = "12D3KooWJ1TsijH7H5F74hfAD5XishQz3sxrmAtVY37GtNd9CqYf";

#[test]
fn py_libp2p_seed_file_gives_the_python_peer_id() {
    let kp = decode_key(&py_style_file(&SEED), Path::new("py.key")).unwrap();
    assert_eq!(kp.public().to_peer_id().to_string(), EXPECTED_PEER_ID);
}

#[test]
fn sixty_four_byte_file_gives_the_same_peer_id() {
    let kp = decode_key(&py_style_file(&SEED), Path::new("py.key")).unwrap();
    let full = peerapi::keys::encode_key(&kp).unwrap();
    assert_eq!(full.len(), 4 + 64, "go/rust write seed || public key");
    let again = decode_key(&full, Path::new("full.key")).unwrap();
    assert_eq!(again.public().to_peer_id().to_string(), EXPECTED_PEER_ID);
}

#[test]
fn garbage_file_is_a_clear_error_naming_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("garbage.key");
    std::fs::write(&path, b"this is not a key").unwrap();
    let err = load_key(&path).unwrap_err().to_string();
    assert!(err.contains("garbage.key"), "{err}");
    assert!(
        err.contains("not a libp2p protobuf PrivateKey") || err.contains("invalid"),
        "{err}"
    );
}
