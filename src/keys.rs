//! Key files in libp2p's protobuf `PrivateKey { KeyType Type = 1; bytes Data = 2; }`
//! form, as subnet-template nodes read and write them.
//!
//! py-libp2p writes Ed25519 keys with `Data` = the 32-byte seed; go and rust
//! write 64 bytes (seed || public key). Both load here and give the peer id
//! py-libp2p derives.

use std::path::{Path, PathBuf};

use libp2p::identity::{self, Keypair};
use prost::Message;

#[derive(Clone, PartialEq, prost::Message)]
struct PrivateKeyProto {
    #[prost(int32, tag = "1")]
    key_type: i32,
    #[prost(bytes = "vec", tag = "2")]
    data: Vec<u8>,
}

const KEY_TYPE_RSA: i32 = 0;
const KEY_TYPE_ED25519: i32 = 1;
const KEY_TYPE_SECP256K1: i32 = 2;
const KEY_TYPE_ECDSA: i32 = 3;

/// Why a key file could not be used.
#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    #[error("cannot read key file {}: {source}", path.display())]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("cannot write key file {}: {source}", path.display())]
    Write {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("key file {} is not a libp2p protobuf PrivateKey: {reason}", path.display())]
    Corrupt { path: PathBuf, reason: String },
    #[error("key file {} holds a {key_type} key, which peerapi does not support (use Ed25519 or secp256k1)", path.display())]
    Unsupported { path: PathBuf, key_type: String },
    #[error("key file {} holds an invalid {key_type} key: {reason}", path.display())]
    Invalid {
        path: PathBuf,
        key_type: &'static str,
        reason: String,
    },
    #[error("key file {} already exists; refusing to overwrite it", path.display())]
    Exists { path: PathBuf },
    #[error(
        "key file {} is gone, but it held the identity {peer} (recorded in {}); refusing to \
         start with a new identity, which a subnet would not know. Restore the key file from \
         a backup; to start a new identity on purpose, run `peerapi key generate {}`",
        path.display(), marker.display(), path.display()
    )]
    Missing {
        path: PathBuf,
        marker: PathBuf,
        peer: String,
    },
}

/// The sibling file that records which peer id a key file held, so that a
/// key that has gone missing is never silently replaced by a new identity.
pub fn identity_marker(path: &Path) -> PathBuf {
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "key".into());
    path.with_file_name(format!(".{name}.peer-id"))
}

/// Records the peer id of `path` beside it (best effort: a read-only
/// directory only loses the protection).
fn record_identity(path: &Path, keypair: &Keypair) {
    let marker = identity_marker(path);
    let peer = keypair.public().to_peer_id().to_string();
    if std::fs::read_to_string(&marker).is_ok_and(|m| m.trim() == peer) {
        return;
    }
    let _ = crate::fsutil::replace_atomically(
        &marker,
        format!("{peer}\n").as_bytes(),
        &crate::fsutil::Expect::Any,
    );
}

/// Decodes key-file bytes. `path` is only used in error messages.
pub fn decode_key(bytes: &[u8], path: &Path) -> Result<Keypair, KeyError> {
    let proto = PrivateKeyProto::decode(bytes).map_err(|e| KeyError::Corrupt {
        path: path.to_path_buf(),
        reason: e.to_string(),
    })?;
    let invalid = |key_type: &'static str, reason: String| KeyError::Invalid {
        path: path.to_path_buf(),
        key_type,
        reason,
    };
    match proto.key_type {
        KEY_TYPE_ED25519 => {
            let (seed, public) = match proto.data.len() {
                32 => (&proto.data[..], None),
                64 => (&proto.data[..32], Some(&proto.data[32..])),
                n => {
                    return Err(invalid(
                        "Ed25519",
                        format!(
                            "key data is {n} bytes; expected 32 (seed) or 64 (seed and public key)"
                        ),
                    ))
                }
            };
            let mut seed_copy = [0u8; 32];
            seed_copy.copy_from_slice(seed);
            let keypair = Keypair::ed25519_from_bytes(seed_copy)
                .map_err(|e| invalid("Ed25519", e.to_string()))?;
            if let Some(public) = public {
                let derived = keypair
                    .public()
                    .try_into_ed25519()
                    .map(|p| p.to_bytes())
                    .map_err(|e| invalid("Ed25519", e.to_string()))?;
                if derived[..] != public[..] {
                    return Err(invalid(
                        "Ed25519",
                        "the public half does not match the seed".into(),
                    ));
                }
            }
            Ok(keypair)
        }
        KEY_TYPE_SECP256K1 => {
            let mut data = proto.data.clone();
            let secret = identity::secp256k1::SecretKey::try_from_bytes(&mut data)
                .map_err(|e| invalid("secp256k1", e.to_string()))?;
            Ok(identity::secp256k1::Keypair::from(secret).into())
        }
        other => Err(KeyError::Unsupported {
            path: path.to_path_buf(),
            key_type: match other {
                KEY_TYPE_RSA => "RSA".into(),
                KEY_TYPE_ECDSA => "ECDSA".into(),
                n => format!("unknown (type {n})"),
            },
        }),
    }
}

/// Loads a key file.
pub fn load_key(path: &Path) -> Result<Keypair, KeyError> {
    let bytes = std::fs::read(path).map_err(|source| KeyError::Read {
        path: path.to_path_buf(),
        source,
    })?;
    decode_key(&bytes, path)
}

/// Encodes a keypair as a key file's bytes (Ed25519: 64 bytes, as go and rust write).
pub fn encode_key(keypair: &Keypair) -> Result<Vec<u8>, String> {
    keypair.to_protobuf_encoding().map_err(|e| e.to_string())
}

/// Creates a new Ed25519 key file with mode 0600; refuses to overwrite.
pub fn generate_key_file(path: &Path) -> Result<Keypair, KeyError> {
    let keypair = Keypair::generate_ed25519();
    let bytes = encode_key(&keypair).map_err(|reason| KeyError::Invalid {
        path: path.to_path_buf(),
        key_type: "Ed25519",
        reason,
    })?;
    let write_err = |source| KeyError::Write {
        path: path.to_path_buf(),
        source,
    };
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).map_err(write_err)?;
    }
    crate::fsutil::clean_stale_temps(path);
    // Temporary file, fsync, then a link that fails rather than replace.
    crate::fsutil::create_atomically(path, &bytes, 0o600).map_err(|source| {
        if source.kind() == std::io::ErrorKind::AlreadyExists {
            KeyError::Exists {
                path: path.to_path_buf(),
            }
        } else {
            write_err(source)
        }
    })?;
    record_identity(path, &keypair);
    Ok(keypair)
}

/// Loads `path`, or creates it with a new Ed25519 key when no key was ever
/// there. A key file that held an identity and is gone is an error, never a
/// new identity: on a subnet, the peer id is the registration.
pub fn load_or_generate(path: &Path) -> Result<(Keypair, bool), KeyError> {
    if path.exists() {
        let keypair = load_key(path)?;
        record_identity(path, &keypair);
        return Ok((keypair, false));
    }
    let marker = identity_marker(path);
    if let Ok(peer) = std::fs::read_to_string(&marker) {
        return Err(KeyError::Missing {
            path: path.to_path_buf(),
            marker,
            peer: peer.trim().to_string(),
        });
    }
    generate_key_file(path).map(|k| (k, true))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn file_bytes(key_type: i32, data: Vec<u8>) -> Vec<u8> {
        PrivateKeyProto { key_type, data }.encode_to_vec()
    }

    #[test]
    fn seed_and_full_forms_give_the_same_peer() {
        let seed = [7u8; 32];
        let kp = Keypair::ed25519_from_bytes(seed).unwrap();
        let mut full = seed.to_vec();
        full.extend(kp.public().try_into_ed25519().unwrap().to_bytes());
        let a = decode_key(&file_bytes(1, seed.to_vec()), Path::new("a")).unwrap();
        let b = decode_key(&file_bytes(1, full), Path::new("b")).unwrap();
        assert_eq!(a.public().to_peer_id(), b.public().to_peer_id());
    }

    #[test]
    fn garbage_and_unsupported_are_clear_errors() {
        let err = decode_key(b"\xff\xff\xff garbage", Path::new("g.key")).unwrap_err();
        assert!(err.to_string().contains("g.key"), "{err}");
        let err = decode_key(&file_bytes(0, vec![1, 2, 3]), Path::new("r.key")).unwrap_err();
        assert!(err.to_string().contains("RSA"), "{err}");
        let err = decode_key(&file_bytes(1, vec![1; 31]), Path::new("s.key")).unwrap_err();
        assert!(err.to_string().contains("31 bytes"), "{err}");
        let err = decode_key(&file_bytes(2, vec![0; 32]), Path::new("k.key")).unwrap_err();
        assert!(err.to_string().contains("secp256k1"), "{err}");
    }

    #[test]
    fn generated_file_round_trips_with_mode_0600() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("node.key");
        let (kp, created) = load_or_generate(&path).unwrap();
        assert!(created);
        let (again, created) = load_or_generate(&path).unwrap();
        assert!(!created);
        assert_eq!(kp.public().to_peer_id(), again.public().to_peer_id());
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&path).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
        }
        assert!(matches!(
            generate_key_file(&path),
            Err(KeyError::Exists { .. })
        ));
    }

    #[test]
    fn a_key_that_went_missing_is_never_replaced_by_a_new_identity() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("node.key");
        let (kp, _) = load_or_generate(&path).unwrap();
        std::fs::remove_file(&path).unwrap();
        let err = load_or_generate(&path).unwrap_err();
        let peer = kp.public().to_peer_id().to_string();
        assert!(
            matches!(&err, KeyError::Missing { peer: p, .. } if *p == peer),
            "{err}"
        );
        assert!(err.to_string().contains("Restore the key file"), "{err}");
        assert!(!path.exists(), "no new key was written");
        // Generating on purpose is still possible, and becomes the identity.
        let new = generate_key_file(&path).unwrap();
        let (loaded, created) = load_or_generate(&path).unwrap();
        assert!(!created);
        assert_eq!(loaded.public().to_peer_id(), new.public().to_peer_id());
    }

    #[test]
    fn a_loaded_foreign_key_is_recorded_too() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("alith.key");
        std::fs::write(&path, encode_key(&Keypair::generate_ed25519()).unwrap()).unwrap();
        load_or_generate(&path).unwrap();
        std::fs::remove_file(&path).unwrap();
        assert!(matches!(
            load_or_generate(&path),
            Err(KeyError::Missing { .. })
        ));
    }
}
