//! Files that hold secrets or identities, edited by the real binary: modes
//! kept, nothing replaced behind anyone's back, debris of killed writers
//! cleaned up.

use std::os::unix::fs::PermissionsExt;
use std::process::{Command, Stdio};
use std::time::Duration;

use crate::common::*;

fn mode(path: &std::path::Path) -> u32 {
    std::fs::metadata(path).unwrap().permissions().mode() & 0o777
}

#[test]
fn routes_set_keeps_a_private_route_file_private() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("routes.json");
    std::fs::write(
        &file,
        r#"{"llm": {"url": "http://127.0.0.1:9/v1", "stream": true, "headers": {"authorization": "Bearer SECRET"}}}"#,
    )
    .unwrap();
    std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o600)).unwrap();
    let out = Command::new(BIN)
        .args(["routes", "set"])
        .arg(&file)
        .args(["health", "http://127.0.0.1:9/health"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(mode(&file), 0o600, "the edit widened a 0600 route file");
    let text = std::fs::read_to_string(&file).unwrap();
    assert!(
        text.contains("Bearer SECRET") && text.contains("health"),
        "{text}"
    );
    // A new route file is created private too.
    let fresh = dir.path().join("new.json");
    let out = Command::new(BIN)
        .args(["routes", "set"])
        .arg(&fresh)
        .args(["health", "http://127.0.0.1:9/health"])
        .output()
        .unwrap();
    assert!(out.status.success());
    assert_eq!(mode(&fresh), 0o600);
}

#[test]
fn temporary_files_of_killed_writers_are_removed_at_the_next_start() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("routes.json");
    std::fs::write(&file, "{}").unwrap();
    // What a writer killed between its write and its rename leaves (pid 0
    // is never a live writer).
    let debris = dir.path().join(".routes.json.tmp-0-0badc0de");
    std::fs::write(&debris, "{\"half\":").unwrap();
    let (node, _addr) = node_process(&file);
    assert!(
        !debris.exists(),
        "the node left a killed writer's temporary file"
    );
    drop(node);
}

#[test]
fn a_missing_key_file_is_not_replaced_by_a_new_identity() {
    let dir = tempfile::tempdir().unwrap();
    let key = dir.path().join("node.key");
    let out = Command::new(BIN)
        .args(["key", "generate"])
        .arg(&key)
        .output()
        .unwrap();
    assert!(out.status.success());
    let peer = String::from_utf8(out.stdout).unwrap().trim().to_string();
    std::fs::remove_file(&key).unwrap();
    let routes = dir.path().join("routes.json");
    std::fs::write(&routes, "{}").unwrap();
    let child = Command::new(BIN)
        .args(["node", "--listen", "/ip4/127.0.0.1/tcp/0", "--routes"])
        .arg(&routes)
        .arg("--key")
        .arg(&key)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let pid = child.id();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(child.wait_with_output());
    });
    let out = rx
        .recv_timeout(Duration::from_secs(30))
        .unwrap_or_else(|_| {
            let _ = Command::new("kill").arg(pid.to_string()).status();
            panic!("the node started without its key instead of refusing")
        });
    let out = out.unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        !out.status.success(),
        "the node started without its key: {stderr}"
    );
    assert!(
        stderr.contains(&peer) && stderr.contains("Restore the key file"),
        "{stderr}"
    );
    assert!(
        !key.exists(),
        "a new key was written in place of the lost one"
    );

    // A path that never held a key gets one, and says so.
    let fresh = dir.path().join("fresh.key");
    let mut child = Command::new(BIN)
        .args(["node", "--listen", "/ip4/127.0.0.1/tcp/0", "--routes"])
        .arg(&routes)
        .arg("--key")
        .arg(&fresh)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut line = String::new();
    let mut err = std::io::BufReader::new(child.stderr.take().unwrap());
    std::io::BufRead::read_line(&mut err, &mut line).unwrap();
    let _ = child.kill();
    let _ = child.wait();
    assert!(line.contains("created a NEW identity"), "{line}");
    assert_eq!(mode(&fresh), 0o600);
}
