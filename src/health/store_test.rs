use std::os::unix::fs::PermissionsExt;
use std::time::{Duration, SystemTime};

use super::*;

fn rec(peer: &str, at_s: u64, verdict: Verdict, reason: &str) -> ProbeRecord {
    ProbeRecord {
        peer: peer.into(),
        at: SystemTime::UNIX_EPOCH + Duration::from_secs(at_s),
        verdict,
        reason: reason.into(),
        rtt: Some(Duration::from_millis(12)),
        probe_time: None,
        dag: None,
    }
}

#[test]
fn probes_and_changes_survive_a_reopen_and_the_file_is_private() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("data").join("health.db");
    let mut h = History::open(&path, "me").unwrap();
    assert_eq!(
        h.record(&rec("a", 100, Verdict::Online, ""))
            .unwrap()
            .map(|c| c.new),
        Some(Verdict::Online)
    );
    assert_eq!(h.record(&rec("a", 160, Verdict::Online, "")).unwrap(), None);
    let down = h
        .record(&rec("a", 220, Verdict::Unreachable, "connection refused"))
        .unwrap()
        .unwrap();
    assert_eq!(
        (down.old, down.new),
        (Some(Verdict::Online), Verdict::Unreachable)
    );
    drop(h);
    let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600);
    let mut h = History::open(&path, "me").unwrap();
    // The last verdict came back from the file: no change recorded twice.
    assert_eq!(
        h.record(&rec("a", 280, Verdict::Unreachable, "connection refused"))
            .unwrap(),
        None
    );
    let probes = h.probes_since(SystemTime::UNIX_EPOCH).unwrap();
    assert_eq!(probes.len(), 4);
    assert_eq!(probes[2].reason, "connection refused");
    assert_eq!(
        h.changes_since(SystemTime::UNIX_EPOCH, Some("a"))
            .unwrap()
            .len(),
        2
    );
    // Retention: everything before 200 goes.
    let removed = h
        .prune(SystemTime::UNIX_EPOCH + Duration::from_secs(200))
        .unwrap();
    assert_eq!(removed, 2);
    assert_eq!(h.probes_since(SystemTime::UNIX_EPOCH).unwrap().len(), 2);
    // Another node's history is refused.
    assert!(matches!(
        History::open(&path, "other"),
        Err(OpenError::Owner { .. })
    ));
}

#[test]
fn foreign_damaged_and_newer_files_are_refused_and_left_as_they_were() {
    let dir = tempfile::tempdir().unwrap();
    let text = dir.path().join("notes.db");
    std::fs::write(&text, b"my notes, not a database at all").unwrap();
    let e = History::open(&text, "me").unwrap_err();
    assert!(
        matches!(e, OpenError::Foreign { .. }) && e.is_fatal(),
        "{e}"
    );
    assert_eq!(
        std::fs::read(&text).unwrap(),
        b"my notes, not a database at all"
    );

    let other = dir.path().join("other.db");
    let c = rusqlite::Connection::open(&other).unwrap();
    c.execute_batch("CREATE TABLE t(x); INSERT INTO t VALUES (1);")
        .unwrap();
    drop(c);
    let before = std::fs::read(&other).unwrap();
    assert!(matches!(
        History::open(&other, "me"),
        Err(OpenError::Foreign { .. })
    ));
    assert_eq!(std::fs::read(&other).unwrap(), before);

    let good = dir.path().join("good.db");
    let mut h = History::open(&good, "me").unwrap();
    for i in 0..200 {
        h.record(&rec(&format!("n{i}"), 100, Verdict::Online, ""))
            .unwrap();
    }
    drop(h);
    // A page in the middle overwritten: damaged.
    let mut bytes = std::fs::read(&good).unwrap();
    assert!(bytes.len() > 8192, "{}", bytes.len());
    for b in &mut bytes[4096..8192] {
        *b = 0xA5;
    }
    std::fs::write(&good, &bytes).unwrap();
    let e = History::open(&good, "me").unwrap_err();
    assert!(e.is_fatal(), "{e}");
    assert_eq!(std::fs::read(&good).unwrap(), bytes, "left as it was");

    let newer = dir.path().join("newer.db");
    drop(History::open(&newer, "me").unwrap());
    let c = rusqlite::Connection::open(&newer).unwrap();
    c.pragma_update(None, "user_version", SCHEMA_VERSION + 1)
        .unwrap();
    drop(c);
    assert!(matches!(
        History::open(&newer, "me"),
        Err(OpenError::Newer { .. })
    ));
}

#[test]
fn a_place_that_cannot_hold_the_file_is_not_fatal() {
    // A directory that is a file: no one (root included) can create there.
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("plain");
    std::fs::write(&file, b"x").unwrap();
    let e = History::open(&file.join("health.db"), "me").unwrap_err();
    assert!(!e.is_fatal(), "{e}");
    assert!(e.to_string().contains("plain/health.db"), "{e}");
}

#[test]
fn a_schema_1_file_is_migrated_keeping_its_probes() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("old.db");
    {
        // A file as the first release wrote it: schema 1, one probe.
        let c = rusqlite::Connection::open(&path).unwrap();
        c.execute_batch(super::MIGRATIONS[0]).unwrap();
        c.pragma_update(None, "application_id", APPLICATION_ID)
            .unwrap();
        c.pragma_update(None, "user_version", 1).unwrap();
        c.execute_batch(
            "INSERT INTO meta VALUES ('node', 'me');
             INSERT INTO nodes VALUES (1, 'old-peer', 50);
             INSERT INTO probes VALUES (1, 100, 0, 0, 12000, NULL);",
        )
        .unwrap();
    }
    let mut h = History::open(&path, "me").unwrap();
    let mut p = rec("old-peer", 200, Verdict::Online, "");
    p.dag = Some(super::super::dag::DagSync::Ahead { heads: 3 });
    h.record(&p).unwrap();
    let probes = h.probes_of("old-peer", SystemTime::UNIX_EPOCH).unwrap();
    assert_eq!(probes.len(), 2, "the old probe is kept");
    assert_eq!(probes[0].dag, None);
    assert_eq!(probes[1].dag, p.dag);
    drop(h);
    let h = History::open_read(&path).unwrap();
    assert_eq!(h.user_version().unwrap(), SCHEMA_VERSION);
}
