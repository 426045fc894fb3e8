//! An attached console switches the whole console to another node of the
//! operator's contexts: `:ctx NAME` and the `C` picker, in tmux at 80x24,
//! between two real `peerapi node` processes; a read-only context is
//! watched only, and a name that is no context leaves the console where
//! it was.

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use crate::common::{node_process_with, BIN};
use crate::console::Session;

#[test]
fn ctx_and_the_picker_switch_an_attached_console_between_two_nodes() {
    let (dir, routes) = crate::common::empty_routes();
    let socket = |name: &str| dir.path().join("ctl").join(format!("{name}.sock"));
    let start = |name: &str| {
        let s = socket(name);
        node_process_with(&routes, &["--control", s.to_str().unwrap(), "--name", name])
    };
    let (_west, _) = start("west");
    let (_east, east_addr) = start("east");
    let east_peer = east_addr.to_string();
    let east_peer = east_peer.rsplit('/').next().unwrap().to_string();

    let contexts = dir.path().join("contexts.toml");
    let add = |args: &[&str]| {
        let out = Command::new(BIN)
            .env("PEERAPI_CONTEXTS", &contexts)
            .args(["context", "add"])
            .args(args)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    };
    let unix = |p: &Path| format!("unix:{}", p.display());
    add(&["west", &unix(&socket("west"))]);
    add(&["east-watch", &unix(&socket("east")), "--read-only"]);

    let s = Session::run(
        format!("peerapi-switch-{}", std::process::id()),
        &format!(
            "PEERAPI_CONTEXTS={} {BIN} attach --context west",
            contexts.display()
        ),
        (80, 24),
    );
    s.wait_for("the console on west", Duration::from_secs(30), |t| {
        t.contains("attached west · full")
    });

    // A name that is no context: the prompt says so, the console stays.
    s.keys(&[":"]);
    s.keys(&["-l", "ctx north"]);
    s.keys(&["Enter"]);
    s.wait_for("the refusal", Duration::from_secs(5), |t| {
        t.contains("no context \"north\"")
    });
    s.escape("no context");

    // :ctx with a unique prefix: the whole console shows east, watch only.
    s.keys(&[":"]);
    s.keys(&["-l", "ctx east"]);
    s.keys(&["Enter"]);
    let on_east = s.wait_for("the console on east", Duration::from_secs(20), |t| {
        t.contains("attached east-watch · observe")
    });
    assert!(
        on_east.contains(&east_peer[east_peer.len() - 6..]),
        "east's peer id in the status line:\n{on_east}"
    );
    // Read-only: dialling is refused there.
    s.keys(&["1", "d"]);
    s.wait_for("the read-only refusal", Duration::from_secs(5), |t| {
        t.contains("read-only")
    });

    // The picker lists both and takes the first letters.
    s.keys(&["C"]);
    s.wait_for("the picker", Duration::from_secs(5), |t| {
        t.contains("contexts: west, east-watch (here)")
    });
    s.keys(&["-l", "w"]);
    s.keys(&["Enter"]);
    s.wait_for("the console back on west", Duration::from_secs(20), |t| {
        t.contains("attached west · full")
    });
    s.keys(&["q"]);
    s.wait_for("the console to detach", Duration::from_secs(20), |t| {
        t.contains("PEERAPI-EXITED")
    });
}
