//! `peerapi attach` as an operator uses it: in tmux at 80x24, over a real
//! sshd on 127.0.0.1 (Debian's openssh-server, a throwaway host key and
//! authorized key), to a `peerapi node` process that keeps running after
//! the console detaches.

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

use crate::common::{node_process_with, served_peer, write_routes_file, BIN};
use crate::console::Session;

use crate::sshd::sshd;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn attach_over_ssh_streams_a_call_made_by_the_node_and_detaching_leaves_it_running() {
    let peer = served_peer().await;
    let b_addr = &peer.addr;
    let dir = tempfile::tempdir().unwrap();
    let own = dir.path().join("own.json");
    std::fs::write(&own, "{}").unwrap();
    let socket = dir.path().join("ctl").join("a.sock");
    let socket_arg = socket.to_str().unwrap();
    let (mut a, _) = node_process_with(&own, &["--control", socket_arg, "--name", "alpha"]);
    let ssh = sshd(&dir.path().join("sshd"));

    let command = format!(
        "PEERAPI_SSH={} PEERAPI_REMOTE_COMMAND={BIN} {BIN} attach ssh://127.0.0.1:{}/{}",
        ssh.ssh.display(),
        ssh.port,
        socket.display()
    );
    let s = Session::run(
        format!("peerapi-attach-{}", std::process::id()),
        &command,
        (80, 24),
    );
    s.wait_for("the attached console", Duration::from_secs(30), |t| {
        t.contains("Composer") && t.contains("Peers (0)")
    });
    // Peer: B; route: inference; stream; send.
    s.keys(&["Enter", "C-u"]);
    s.keys(&["-l", &b_addr.to_string()]);
    s.keys(&["Tab", "C-u"]);
    s.keys(&["-l", "inference"]);
    s.wait_for("the route typed in", Duration::from_secs(5), |t| {
        t.contains("editing") && t.contains("inference")
    });
    s.escape("editing");
    s.keys(&["m"]);
    s.wait_for("stream mode", Duration::from_secs(5), |t| {
        t.contains("[STREAM]")
    });
    s.keys(&["s"]);
    let screen = s.wait_for("the streamed call", Duration::from_secs(40), |t| {
        t.contains("done") && t.contains("tok")
    });
    assert!(screen.contains("subnet"), "tokens on screen:\n{screen}");
    // The node dialled B itself: its peer shows up in the attached view.
    s.wait_for("the node's new peer", Duration::from_secs(10), |t| {
        t.contains("Peers (1)")
    });

    s.keys(&["q"]);
    s.wait_for("the console to detach", Duration::from_secs(20), |t| {
        t.contains("PEERAPI-EXITED")
    });
    assert!(a.0.try_wait().unwrap().is_none(), "the node still runs");
    let status = Command::new(BIN)
        .args(["ctl", "status", socket_arg])
        .stdout(Stdio::piped())
        .output()
        .unwrap();
    assert!(status.status.success(), "{status:?}");
}

fn attach_session(name: &str, socket: &Path) -> Session {
    Session::run(
        format!("peerapi-{name}-{}", std::process::id()),
        &format!("{BIN} attach {}", socket.display()),
        (80, 24),
    )
}

/// The listen port shown in the status line, e.g. `/ip4/127.0.0.1/tcp/40123`.
fn shown_port(screen: &str) -> Option<String> {
    let line = screen.lines().next()?;
    let at = line.find("/tcp/")?;
    Some(
        line[at + 5..]
            .chars()
            .take_while(char::is_ascii_digit)
            .collect(),
    )
}

#[test]
fn a_node_restarted_under_an_attached_console_is_gone_then_attached_again_with_fresh_views() {
    let (dir, routes) = crate::common::empty_routes();
    let key = dir.path().join("node.key");
    let socket = dir.path().join("ctl").join("n.sock");
    let flags = [
        "--control",
        socket.to_str().unwrap(),
        "--name",
        "restarted",
        "--key",
        key.to_str().unwrap(),
    ];
    let (first, _) = node_process_with(&routes, &flags);
    let s = attach_session("restart", &socket);
    let before = s.wait_for("the attached console", Duration::from_secs(30), |t| {
        t.contains("attached restarted · full")
    });
    let port_before = shown_port(&before).expect("a listen port on screen");
    let pid = first.0.id().to_string();
    Command::new("kill").args(["-TERM", &pid]).status().unwrap();
    let gone = s.wait_for("the node gone", Duration::from_secs(20), |t| {
        t.contains("restarted GONE")
    });
    assert!(gone.contains("Composer"), "what it showed stays:\n{gone}");
    drop(first);
    // The same identity and socket, a new port.
    let (_second, _) = node_process_with(&routes, &flags);
    let again = s.wait_for("re-attached", Duration::from_secs(30), |t| {
        t.contains("attached restarted · full") && shown_port(t).is_some_and(|p| p != port_before)
    });
    assert!(!again.contains("GONE"), "{again}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_consoles_attached_at_once_see_each_others_route_edits_and_one_leaving_stops_nothing() {
    use crate::console_backend::{key, screen, typed};
    use ratatui::crossterm::event::KeyCode;
    let (dir, routes) = crate::common::empty_routes();
    let socket = dir.path().join("ctl").join("n.sock");
    let (mut node, _) = node_process_with(&routes, &["--control", socket.to_str().unwrap()]);
    // One console in this test over a TestBackend, one in tmux.
    let (link, updates) = crate::common::within(peerapi::control::client::connect_socket(
        &socket,
        peerapi::control::Role::Full,
    ))
    .await
    .expect("the node answers");
    let (tx, mut actions) = tokio::sync::mpsc::channel(4096);
    let terminal = ratatui::Terminal::new(ratatui::backend::TestBackend::new(100, 30)).unwrap();
    let mut console = peerapi::tui::Console::new(terminal, link, updates, tx, dir.path(), None);
    let s = attach_session("two", &socket);
    s.wait_for("the tmux console", Duration::from_secs(30), |t| {
        t.contains("Routes (0)")
    });
    s.keys(&["2", "a"]);
    s.wait_for("the add-route prompt", Duration::from_secs(5), |t| {
        t.contains("Add route")
    });
    s.keys(&["-l", "chat http://127.0.0.1:9/v1 stream"]);
    s.keys(&["Enter"]);
    s.wait_for("the edit in tmux", Duration::from_secs(10), |t| {
        t.contains("Routes (1)")
    });
    // The other console sees it within a second of the node's reload.
    crate::common::within(async {
        while console.state.routes().len() != 1 {
            let action = actions.recv().await.expect("the node's updates");
            console.on_action(action);
        }
    })
    .await;
    assert!(screen(&mut console).contains("chat"));
    // An edit from this console reaches tmux too.
    console.on_event(key(KeyCode::Char('2')));
    console.on_event(key(KeyCode::Char('a')));
    typed(&mut console, "health http://127.0.0.1:9/health");
    console.on_event(key(KeyCode::Enter));
    s.wait_for("the other console's edit", Duration::from_secs(10), |t| {
        t.contains("Routes (2)") && t.contains("health")
    });
    // q in tmux detaches that console only.
    s.keys(&["q"]);
    s.wait_for("tmux's console to leave", Duration::from_secs(20), |t| {
        t.contains("PEERAPI-EXITED")
    });
    assert!(node.0.try_wait().unwrap().is_none(), "the node still runs");
    crate::common::within(async {
        while console.state.peers().list.is_empty() && console.state.routes().len() == 2 {
            // Still linked: the node's per-second refresh keeps arriving.
            let action = actions.recv().await.expect("still linked");
            if matches!(action, peerapi::tui::action::Action::Peers(_)) {
                break;
            }
            console.on_action(action);
        }
    })
    .await;
    let _ = node.0.kill();
}

#[test]
fn the_consoles_own_node_offers_control_too() {
    let dir = tempfile::tempdir().unwrap();
    let socket = dir.path().join("ctl").join("console.sock");
    let s = Session::run(
        format!("peerapi-own-{}", std::process::id()),
        &format!(
            "{BIN} --listen /ip4/127.0.0.1/tcp/0 --log-dir {} --control {}",
            dir.path().display(),
            socket.display()
        ),
        (80, 24),
    );
    s.wait_for("the console", Duration::from_secs(30), |t| {
        t.contains("Composer")
    });
    let out = Command::new(BIN)
        .args(["ctl", "status", "--json", socket.to_str().unwrap()])
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    let status: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let peer = status["peer_id"].as_str().unwrap().to_string();
    let screen = s.capture();
    assert!(
        screen.contains(&peer[peer.len() - 6..]),
        "the console shows the node ctl reached:\n{screen}"
    );
    s.keys(&["q"]);
    s.wait_for("the console to exit", Duration::from_secs(20), |t| {
        t.contains("PEERAPI-EXITED")
    });
    assert!(!socket.exists(), "the socket goes with the console");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn t_on_a_served_call_taps_the_tokens_the_node_streams_to_its_caller() {
    use crate::console_backend::{key, screen};
    use ratatui::crossterm::event::KeyCode;
    // A paced backend: the served call lasts seconds, time to tap it.
    let backend = peerapi::demo::DemoBackend::start(
        "127.0.0.1:0".parse().unwrap(),
        peerapi::demo::DemoPace {
            first_token: Duration::from_millis(200),
            per_token: Duration::from_millis(20),
        },
    )
    .await
    .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let routes = dir.path().join("routes.json");
    write_routes_file(&routes, &backend.routes());
    let socket = dir.path().join("ctl").join("n.sock");
    let (_node, addr) = node_process_with(&routes, &["--control", socket.to_str().unwrap()]);
    let (link, updates) = crate::common::within(peerapi::control::client::connect_socket(
        &socket,
        peerapi::control::Role::Full,
    ))
    .await
    .expect("the node answers");
    let (tx, mut actions) = tokio::sync::mpsc::channel(4096);
    let terminal = ratatui::Terminal::new(ratatui::backend::TestBackend::new(100, 30)).unwrap();
    let mut console = peerapi::tui::Console::new(terminal, link, updates, tx, dir.path(), None);

    // A remote caller streams from the node.
    let caller = crate::common::client().await;
    let handle = caller.handle();
    let call = tokio::spawn(async move {
        let (_, chunks) = handle
            .stream_full(
                &addr,
                peerapi::node::CallRequest::from_parts(
                    "inference",
                    "POST",
                    [("content-type".to_string(), "application/json".to_string())].into(),
                    r#"{"stream": true, "messages": [{"role": "user", "content": "hi"}]}"#,
                ),
            )
            .await
            .expect("served");
        use futures::StreamExt;
        chunks.collect::<Vec<_>>().await.len()
    });
    crate::common::within(async {
        while !console.state.calls().list.iter().any(|c| !c.outgoing) {
            console.on_action(actions.recv().await.expect("updates"));
        }
    })
    .await;
    assert!(
        console
            .state
            .calls()
            .list
            .iter()
            .all(|c| c.output.raw.is_empty()),
        "nothing of a served body shows before it is tapped"
    );
    console.on_event(key(KeyCode::Char('3')));
    console.on_event(key(KeyCode::Char('t')));
    crate::common::within(async {
        loop {
            let served = console
                .state
                .calls()
                .list
                .iter()
                .find(|c| !c.outgoing)
                .unwrap();
            if String::from_utf8_lossy(&served.output.raw).contains("subnet") {
                break;
            }
            console.on_action(actions.recv().await.expect("updates"));
        }
    })
    .await;
    assert!(
        screen(&mut console).contains("subnet"),
        "the tapped tokens on screen"
    );
    assert!(crate::common::within(call).await.unwrap() > 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn calls_another_client_has_the_node_make_are_listed_once_and_the_consoles_own_only_once() {
    use crate::console_backend::{key, screen};
    use peerapi::tui::state::CallState;
    use ratatui::crossterm::event::KeyCode;
    let peer = served_peer().await;
    let b_addr = &peer.addr;
    let (dir, routes) = crate::common::empty_routes();
    let socket = dir.path().join("ctl").join("n.sock");
    let (_node, _) = node_process_with(&routes, &["--control", socket.to_str().unwrap()]);
    let (link, updates) = crate::common::within(peerapi::control::client::connect_socket(
        &socket,
        peerapi::control::Role::Full,
    ))
    .await
    .expect("the node answers");
    let (tx, mut actions) = tokio::sync::mpsc::channel(4096);
    let terminal = ratatui::Terminal::new(ratatui::backend::TestBackend::new(120, 30)).unwrap();
    let prefill = peerapi::tui::history::Entry {
        target: b_addr.to_string(),
        route: "inference".into(),
        method: "POST".into(),
        headers: "content-type: application/json".into(),
        body: r#"{"stream": true, "messages": [{"role": "user", "content": "hi"}]}"#.into(),
        stream: true,
    };
    let mut console =
        peerapi::tui::Console::new(terminal, link, updates, tx, dir.path(), Some(prefill));

    // Another client (a script) has the node make a call.
    let body = r#"{"stream": true, "messages": [{"role": "user", "content": "hi"}]}"#;
    let out = Command::new(BIN)
        .args(["ctl", "stream", "--node", socket.to_str().unwrap()])
        .args([&b_addr.to_string(), "inference", "-d", body])
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    crate::common::within(async {
        while !console
            .state
            .calls()
            .list
            .iter()
            .any(|c| c.by.is_some() && c.state == CallState::Done)
        {
            console.on_action(actions.recv().await.expect("updates"));
        }
    })
    .await;
    let theirs = &console.state.calls().list[0];
    assert_eq!(theirs.route, "inference");
    assert!(
        theirs.bytes > 0,
        "the node's figures for it: {} bytes",
        theirs.bytes
    );
    assert!(
        theirs.by.as_deref().unwrap().contains("pid"),
        "{:?}",
        theirs.by
    );
    let shown = screen(&mut console);
    assert!(shown.contains("⇢1"), "{shown}");

    // The console's own call: one row, not a second for the node's event.
    console.on_event(key(KeyCode::Char('s')));
    crate::common::within(async {
        while console
            .state
            .calls()
            .list
            .iter()
            .any(|c| c.state.in_flight())
        {
            console.on_action(actions.recv().await.expect("updates"));
        }
    })
    .await;
    // The node's CallFinished for ours went out before its reply: any
    // duplicate row would be listed by now.
    assert_eq!(
        console.state.calls().list.len(),
        2,
        "{:?}",
        console
            .state
            .calls()
            .list
            .iter()
            .map(|c| (&c.route, &c.by))
            .collect::<Vec<_>>()
    );
    let ours = &console.state.calls().list[1];
    assert!(ours.by.is_none() && ours.state == CallState::Done);
    assert!(screen(&mut console).contains("→2"));
}
