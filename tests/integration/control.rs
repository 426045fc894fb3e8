//! A `peerapi node` process and its control socket, reached as `attach`
//! and `ctl` reach it: real processes, a real Unix socket, the library's
//! client. Permissions, credentials, hostile input, slow readers, calls
//! made by the node, edits seen by every client.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use peerapi::control::{client, Answer, NodeLink, Part, Reply, Request, Role, Update, Updates};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::common::{demo_backend, node_process_with, within, Proc, BIN};

fn mode(path: &Path) -> u32 {
    std::fs::symlink_metadata(path)
        .unwrap()
        .permissions()
        .mode()
        & 0o777
}

/// A node process with a route file for `routes` and its control socket
/// at `dir/ctl/node.sock`.
fn node_with_control(
    dir: &Path,
    routes: &peerapi::RouteTable,
    flags: &[&str],
) -> (Proc, libp2p::Multiaddr, PathBuf) {
    let file = dir.join("routes.json");
    crate::common::write_routes_file(&file, routes);
    let socket = dir.join("ctl").join("node.sock");
    let socket_arg = socket.to_str().unwrap().to_string();
    let mut all = vec!["--control", &socket_arg];
    all.extend_from_slice(flags);
    let (proc, addr) = node_process_with(&file, &all);
    // The address is printed before the socket line; the record comes
    // once the socket listens.
    let record = socket.with_extension("json");
    let start = std::time::Instant::now();
    while !record.exists() {
        assert!(
            start.elapsed() < Duration::from_secs(20),
            "no endpoint record at {}",
            record.display()
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    (proc, addr, socket)
}

async fn link(socket: &Path, role: Role) -> (NodeLink, Updates) {
    within(client::connect_socket(socket, role))
        .await
        .expect("the node answers on its control socket")
}

/// Reads updates until `pred` picks one out.
async fn until<T>(updates: &mut Updates, mut pred: impl FnMut(Update) -> Option<T>) -> T {
    within(async {
        loop {
            let u = updates.recv().await.expect("the node is there");
            if let Some(t) = pred(u) {
                return t;
            }
        }
    })
    .await
}

fn ctl(args: &[&str]) -> std::process::Output {
    Command::new(BIN).arg("ctl").args(args).output().unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_control_socket_is_private_its_record_says_who_listens_and_ctl_reads_the_node() {
    let backend = demo_backend().await;
    let dir = tempfile::tempdir().unwrap();
    let (mut proc, addr, socket) =
        node_with_control(dir.path(), &backend.routes(), &["--name", "alpha"]);
    assert_eq!(mode(socket.parent().unwrap()), 0o700, "the directory");
    assert_eq!(mode(&socket), 0o600, "the socket");
    let record: serde_json::Value =
        serde_json::from_slice(&std::fs::read(socket.with_extension("json")).unwrap()).unwrap();
    assert_eq!(record["name"], "alpha");
    assert_eq!(record["pid"], proc.0.id());
    let peer = crate::common::peer_id_of(&addr).to_string();
    assert_eq!(record["peer_id"], peer.as_str());

    let out = ctl(&["status", socket.to_str().unwrap(), "--json"]);
    assert!(out.status.success(), "{out:?}");
    let status: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(status["peer_id"], peer.as_str());
    assert_eq!(status["name"], "alpha");
    assert_eq!(status["routes"], backend.routes().len());
    let out = ctl(&["routes", socket.to_str().unwrap()]);
    assert!(String::from_utf8_lossy(&out.stdout).contains("inference"));

    // SIGTERM: the node takes its socket and record away.
    let pid = proc.0.id().to_string();
    Command::new("kill").args(["-TERM", &pid]).status().unwrap();
    let status = proc.0.wait().unwrap();
    assert!(status.success(), "{status:?}");
    assert!(!socket.exists() && !socket.with_extension("json").exists());
}

#[test]
fn a_control_directory_open_to_others_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let open = dir.path().join("ctl");
    std::fs::create_dir(&open).unwrap();
    std::fs::set_permissions(&open, std::fs::Permissions::from_mode(0o755)).unwrap();
    let routes = dir.path().join("routes.json");
    std::fs::write(&routes, "{}").unwrap();
    let out = Command::new(BIN)
        .args(["node", "--listen", "/ip4/127.0.0.1/tcp/0", "--routes"])
        .arg(&routes)
        .arg("--control")
        .arg(open.join("n.sock"))
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("open to others (mode 755)") && err.contains("chmod 700"),
        "{err}"
    );
    assert!(!open.join("n.sock").exists());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn another_user_is_refused_even_where_the_file_modes_would_let_it_in() {
    let dir = tempfile::tempdir().unwrap();
    let (_proc, _, socket) = node_with_control(dir.path(), &Default::default(), &[]);
    // An operator's slip: the directory and socket opened to everyone.
    // The credentials check still keeps another user out.
    for (p, m) in [
        (dir.path(), 0o755),
        (socket.parent().unwrap(), 0o755),
        (&*socket, 0o666),
    ] {
        std::fs::set_permissions(p, std::fs::Permissions::from_mode(m)).unwrap();
    }
    let out = Command::new("setpriv")
        .args([
            "--reuid=nobody",
            "--regid=nogroup",
            "--clear-groups",
            BIN,
            "ctl",
            "status",
        ])
        .arg(&socket)
        .output()
        .expect("setpriv (util-linux) runs a command as another user");
    assert!(!out.status.success(), "{out:?}");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("closed the connection"), "{err}");
    // The node's own user is let in.
    assert!(ctl(&["status", socket.to_str().unwrap()]).status.success());
}

/// `peerapi ctl status SOCKET` as `nobody` with `group` as its group.
fn ctl_as_nobody_in(group: &str, socket: &Path) -> std::process::Output {
    Command::new("setpriv")
        .args([
            "--reuid=nobody",
            &format!("--regid={group}"),
            "--clear-groups",
        ])
        .args([BIN, "ctl", "status"])
        .arg(socket)
        .output()
        .expect("setpriv (util-linux) runs a command as another user")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_group_named_by_control_group_is_let_in_and_other_users_are_not() {
    use std::os::unix::fs::MetadataExt;
    let dir = tempfile::tempdir().unwrap();
    // The test's own directory is 0700: let other users through to ctl/.
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    let (_proc, _, socket) = node_with_control(
        dir.path(),
        &Default::default(),
        &["--control-group", "users"],
    );
    let ctl_dir = socket.parent().unwrap();
    let users = peerapi::control::socket::group_id("users").expect("Debian has a users group");
    let (dir_meta, sock_meta) = (
        std::fs::metadata(ctl_dir).unwrap(),
        std::fs::metadata(&socket).unwrap(),
    );
    assert_eq!((mode(ctl_dir), dir_meta.gid()), (0o750, users));
    assert_eq!((mode(&socket), sock_meta.gid()), (0o660, users));
    let member = ctl_as_nobody_in("users", &socket);
    assert!(
        member.status.success(),
        "a member of the group is admitted: {member:?}"
    );
    let status: String = String::from_utf8_lossy(&member.stdout).into();
    assert!(status.contains("peer"), "{status}");
    let other = ctl_as_nobody_in("nogroup", &socket);
    assert!(!other.status.success(), "{other:?}");
    let err = String::from_utf8_lossy(&other.stderr);
    assert!(err.contains("ermission denied"), "{err}");
}

fn open_fds(pid: u32) -> usize {
    std::fs::read_dir(format!("/proc/{pid}/fd"))
        .unwrap()
        .count()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn garbage_an_oversized_frame_and_a_thousand_reconnects_leave_the_node_serving() {
    let dir = tempfile::tempdir().unwrap();
    let (proc, _, socket) = node_with_control(dir.path(), &Default::default(), &[]);
    let pid = proc.0.id();
    let closed = |mut s: tokio::net::UnixStream| async move {
        let mut buf = vec![0u8; 64 * 1024];
        loop {
            match s.read(&mut buf).await {
                Ok(0) | Err(_) => return,
                Ok(_) => {}
            }
        }
    };
    // Not a frame of a message.
    let mut s = tokio::net::UnixStream::connect(&socket).await.unwrap();
    s.write_all(b"\x00\x00\x00\x10GET / HTTP/1.1\r\n\r\n")
        .await
        .unwrap();
    within(closed(s)).await;
    // A frame announcing 100 MiB: dropped at its length, nothing buffered.
    let mut s = tokio::net::UnixStream::connect(&socket).await.unwrap();
    s.write_all(&(100u32 << 20).to_be_bytes()).await.unwrap();
    let _ = s.write_all(&vec![b'x'; 1 << 20]).await;
    within(closed(s)).await;

    let before = open_fds(pid);
    let rss =
        || peerapi::testkit::proc_kb(&format!("/proc/{pid}/status"), "VmRSS:").expect("VmRSS");
    // A first round warms the allocator; the second must not grow it.
    for _ in 0..200 {
        let (l, u) = link(&socket, Role::Observe).await;
        drop((l, u));
    }
    let rss_before = rss();
    for _ in 0..1000 {
        let (l, u) = link(&socket, Role::Observe).await;
        drop((l, u));
    }
    // Each connection is closed by the node once its client is gone.
    let after = within(async {
        loop {
            let n = open_fds(pid);
            if n <= before + 2 {
                return n;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    })
    .await;
    assert!(after <= before + 2, "fds {before} -> {after}");
    let rss_after = rss();
    eprintln!(
        "1000 control reconnects: fds {before} -> {after}, VmRSS {rss_before} -> {rss_after} kB"
    );
    assert!(
        rss_after < rss_before + 8.0 * 1024.0,
        "resident memory grew from {rss_before} kB to {rss_after} kB over 1000 reconnects"
    );
    let out = ctl(&["status", socket.to_str().unwrap()]);
    assert!(out.status.success(), "{out:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn calls_through_an_attached_link_are_made_by_the_node_and_edits_reach_every_client() {
    let backend = demo_backend().await;
    let dir_b = tempfile::tempdir().unwrap();
    // B serves the demo backend; A is the node we attach to.
    let (_b, b_addr, b_socket) = node_with_control(dir_b.path(), &backend.routes(), &[]);
    let dir_a = tempfile::tempdir().unwrap();
    let (_a, a_addr, a_socket) = node_with_control(dir_a.path(), &Default::default(), &[]);
    let (one, _one_updates) = link(&a_socket, Role::Full).await;
    let (two, mut two_updates) = link(&a_socket, Role::Full).await;
    assert_eq!(one.role(), Role::Full);

    let spec = peerapi::control::CallSpec {
        target: b_addr.to_string(),
        request: peerapi::node::CallRequest::from_parts(
            "inference",
            "POST",
            [("content-type".to_string(), "application/json".to_string())].into(),
            r#"{"stream": true, "messages": [{"role": "user", "content": "hi"}]}"#,
        ),
        stream: true,
    };
    let mut pending = one.request(Request::Call(spec));
    let mut body = Vec::new();
    let mut head = None;
    let ended = within(async {
        loop {
            match pending.next().await.expect("an answer") {
                Answer::Part(Part::Head(h)) => head = Some(h),
                Answer::Part(Part::Bytes(b)) => body.extend_from_slice(&b),
                Answer::Part(_) => {}
                Answer::Done(reply) => return reply,
            }
        }
    })
    .await;
    assert!(
        matches!(ended, Reply::CallEnded { error: None, .. }),
        "{ended:?}"
    );
    assert_eq!(head.expect("a head").status, Some(200));
    assert!(String::from_utf8_lossy(&body).contains("data:"), "tokens");
    // B saw the call come from A's identity: A made it.
    let peers = ctl(&["peers", b_socket.to_str().unwrap(), "--json"]);
    let a_peer = crate::common::peer_id_of(&a_addr).to_string();
    assert!(
        String::from_utf8_lossy(&peers.stdout).contains(&a_peer),
        "{peers:?}"
    );

    // One client adds a route; the other sees A's table change.
    let written = one
        .request(Request::UpsertRoute {
            name: "chat".into(),
            url: "http://127.0.0.1:9/v1".into(),
            stream: true,
            version: None,
        })
        .reply();
    assert!(
        matches!(within(written).await, Reply::Text(Ok(_))),
        "route written"
    );
    // ... and the node's own log line saying so (the Log pane's feed).
    let (mut table_seen, mut log_seen) = (false, false);
    until(&mut two_updates, |u| {
        match u {
            Update::Routes(t) if t.table.contains_key("chat") => table_seen = true,
            Update::Log { line, .. } if line.contains("route file reloaded") => log_seen = true,
            _ => {}
        }
        (table_seen && log_seen).then_some(())
    })
    .await;
    let file = std::fs::read_to_string(dir_a.path().join("routes.json")).unwrap();
    assert!(file.contains("\"chat\""), "{file}");
    drop(two);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_observer_may_not_call_dial_or_edit() {
    let dir = tempfile::tempdir().unwrap();
    let (_proc, addr, socket) = node_with_control(
        dir.path(),
        &Default::default(),
        &["--control-role", "observe"],
    );
    let (observer, _u) = link(&socket, Role::Full).await;
    assert_eq!(observer.role(), Role::Observe, "the node caps the role");
    for request in [
        Request::Dial {
            addr: addr.to_string(),
        },
        Request::RemoveRoute {
            name: "x".into(),
            version: None,
        },
        Request::Tap {
            on: peerapi::node::tap::TapOn::Route("inference".into()),
            max_bytes: None,
        },
    ] {
        let reply = within(observer.request(request).reply()).await;
        assert!(matches!(reply, Reply::Refused(_)), "{reply:?}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_that_never_reads_is_skipped_with_a_gap_and_the_node_keeps_serving() {
    let backend = demo_backend().await;
    let dir = tempfile::tempdir().unwrap();
    let (_proc, addr, socket) =
        node_with_control(dir.path(), &backend.routes(), &["--control-queue", "16"]);
    // Says hello, then reads nothing.
    let mut stuck = tokio::net::UnixStream::connect(&socket).await.unwrap();
    let hello = peerapi::control::frame::encode(&peerapi::control::ToNode::Hello {
        version: peerapi::control::CONTROL_VERSION,
        role: Role::Observe,
        quiet: false,
    })
    .unwrap();
    stuck
        .write_all(&(hello.len() as u32).to_be_bytes())
        .await
        .unwrap();
    stuck.write_all(&hello).await.unwrap();

    // Enough served calls to overflow the socket's buffer and the queue.
    let caller = crate::common::client().await;
    for _ in 0..400 {
        let body = within(caller.handle().call_remote(
            &addr,
            "health",
            "GET",
            Default::default(),
            Vec::new(),
        ))
        .await
        .expect("the node serves while a control client is stuck");
        assert!(!body.is_empty());
    }
    // Reading now, the client finds the gap the node marked.
    let mut frames =
        tokio_util::codec::FramedRead::new(stuck, tokio_util::codec::LengthDelimitedCodec::new());
    let gap = within(async {
        use futures::StreamExt;
        while let Some(frame) = frames.next().await {
            let message: peerapi::control::FromNode =
                peerapi::control::frame::decode(&frame.unwrap()).unwrap();
            if let peerapi::control::FromNode::Update(Update::Gap { missed }) = message {
                return Some(missed);
            }
        }
        None
    })
    .await;
    assert!(gap.is_some_and(|m| m > 0), "a gap is marked: {gap:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ctl_calls_through_the_node_with_call_exit_codes_edits_its_routes_and_follows_its_log() {
    let peer = crate::common::served_peer().await;
    let b_addr = &peer.addr;
    let dir = tempfile::tempdir().unwrap();
    let (_a, _, socket) = node_with_control(dir.path(), &Default::default(), &[]);
    let node = socket.to_str().unwrap();
    let b = b_addr.to_string();

    // The log, followed from now on.
    let mut log = Command::new(BIN)
        .args(["ctl", "log", "--node", node])
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();

    let body = r#"{"stream": true, "messages": [{"role": "user", "content": "hi"}]}"#;
    let out = ctl(&["stream", "--node", node, &b, "inference", "-d", body]);
    assert!(out.status.success(), "{out:?}");
    assert!(String::from_utf8_lossy(&out.stdout).contains("data:"));
    let out = ctl(&["call", "--node", node, &b, "no-such-route"]);
    assert_eq!(
        out.status.code(),
        Some(7),
        "as `peerapi call` exits: {out:?}"
    );
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("route"),
        "{out:?}"
    );

    let out = ctl(&[
        "routes",
        "set",
        "--node",
        node,
        "chat",
        "http://127.0.0.1:9/v1",
        "--stream",
    ]);
    assert!(out.status.success(), "{out:?}");
    let file = std::fs::read_to_string(dir.path().join("routes.json")).unwrap();
    assert!(file.contains("\"chat\""), "{file}");
    // The node's own line about the reload reaches the follower.
    let lines = std::io::BufReader::new(log.stdout.take().unwrap());
    let reader = std::thread::spawn(move || {
        use std::io::BufRead;
        lines
            .lines()
            .map_while(Result::ok)
            .find(|l| l.contains("route file reloaded"))
    });
    let start = std::time::Instant::now();
    while !reader.is_finished() && start.elapsed() < Duration::from_secs(20) {
        std::thread::sleep(Duration::from_millis(50));
    }
    let _ = log.kill();
    let _ = log.wait();
    assert!(
        reader.join().unwrap().is_some(),
        "ctl log showed the reload"
    );
    let out = ctl(&["routes", "remove", "--node", node, "chat"]);
    assert!(out.status.success(), "{out:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tap_shows_the_tokens_the_node_serves_to_a_caller_bounded_and_only_when_asked() {
    let backend = demo_backend().await;
    let dir = tempfile::tempdir().unwrap();
    let (_a, a_addr, socket) = node_with_control(dir.path(), &backend.routes(), &[]);
    let (operator, _u) = link(&socket, Role::Full).await;
    let caller = crate::common::client().await;
    let body = r#"{"stream": true, "messages": [{"role": "user", "content": "hi"}]}"#;
    let call = || async {
        let (_, chunks) = within(caller.handle().stream_full(
            &a_addr,
            peerapi::node::CallRequest::from_parts(
                "inference",
                "POST",
                [("content-type".to_string(), "application/json".to_string())].into(),
                body,
            ),
        ))
        .await
        .expect("the node serves the call");
        let got: Vec<_> = within(chunks.collect::<Vec<_>>()).await;
        got.into_iter()
            .flat_map(|c| c.expect("a chunk").to_vec())
            .collect::<Vec<u8>>()
    };
    use futures::StreamExt;

    // With no tap, nothing is shown: the operator's link sees no body.
    let first = call().await;
    assert!(String::from_utf8_lossy(&first).contains("data:"));

    let mut tap = operator.request(Request::Tap {
        on: peerapi::node::tap::TapOn::Route("inference".into()),
        max_bytes: Some(first.len() as u64 + 10_000),
    });
    // What is served once the node says the tap is open is shown.
    let opened = within(tap.next()).await;
    assert!(
        matches!(opened, Some(Answer::Part(Part::TapOpen))),
        "{opened:?}"
    );
    let served = call().await;
    let mut shown = Vec::new();
    within(async {
        while shown.len() < served.len() {
            match tap.next().await.expect("tapped bytes") {
                Answer::Part(Part::Tapped(c)) => {
                    assert_eq!(c.route, "inference");
                    shown.extend_from_slice(&c.bytes);
                }
                Answer::Part(_) => {}
                Answer::Done(r) => panic!("the tap ended early: {r:?}"),
            }
        }
    })
    .await;
    assert_eq!(
        shown, served,
        "the tap shows what the caller got, byte for byte"
    );
    // Stopping the tap: its last word says what it showed.
    operator.cancel(tap.id());
    let last = within(tap.reply()).await;
    assert!(
        matches!(&last, Reply::Text(Ok(t)) if t.contains("bytes shown")),
        "{last:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fan_out_and_load_runs_requested_over_the_socket_run_in_the_node_and_stream_progress() {
    let backend = demo_backend().await;
    let dir_b = tempfile::tempdir().unwrap();
    let (_b, b_addr, _) = node_with_control(dir_b.path(), &backend.routes(), &[]);
    let dir_c = tempfile::tempdir().unwrap();
    let (_c, c_addr, _) = node_with_control(dir_c.path(), &backend.routes(), &[]);
    let dir = tempfile::tempdir().unwrap();
    let (_a, _, socket) = node_with_control(dir.path(), &Default::default(), &[]);
    let (link, _u) = link(&socket, Role::Full).await;
    let spec = peerapi::control::CallSpec {
        target: b_addr.to_string(),
        request: peerapi::node::CallRequest::from_parts("echo", "POST", Default::default(), "same"),
        stream: false,
    };

    let mut fan = link.request(Request::FanOut {
        spec: spec.clone(),
        peers: vec![b_addr.to_string(), c_addr.to_string()],
    });
    let mut rows = 0;
    let results = within(async {
        loop {
            match fan.next().await.expect("an answer") {
                Answer::Part(Part::FanOutRow { .. }) => rows += 1,
                Answer::Part(_) => {}
                Answer::Done(Reply::FanOutDone(r)) => return r,
                Answer::Done(other) => panic!("{other:?}"),
            }
        }
    })
    .await;
    assert_eq!(results.len(), 2);
    assert!(results.iter().all(|r| r.sample.ok()), "{results:?}");
    assert_eq!(
        results
            .iter()
            .filter(|r| r.same_as_majority == Some(true))
            .count(),
        2,
        "both echo the same body"
    );
    assert!(rows >= 2, "rows streamed while it ran: {rows}");

    let plan = peerapi::load::LoadPlan {
        stop: peerapi::load::Stop::Requests(50),
        concurrency: 4,
        ..Default::default()
    };
    let summary = within(link.request(Request::Load { spec, plan }).reply()).await;
    let Reply::LoadDone(summary) = summary else {
        panic!("{summary:?}")
    };
    assert_eq!((summary.requests, summary.ok), (50, 50), "{summary:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ctl_roster_reads_the_subnet_from_the_peer_states_the_node_holds() {
    let dir = tempfile::tempdir().unwrap();
    // Real peer-state DAG nodes that template nodes signed.
    let dag = dir.path().join("dag.json");
    std::fs::copy(
        concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/tests/vectors/peer_state_dag.json"
        ),
        &dag,
    )
    .unwrap();
    let (_proc, _, socket) = node_with_control(
        dir.path(),
        &Default::default(),
        &["--dag-file", dag.to_str().unwrap()],
    );
    let out = ctl(&["roster", socket.to_str().unwrap(), "--json"]);
    assert!(out.status.success(), "{out:?}");
    let entries: Vec<serde_json::Value> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let nodes: Vec<_> = entries
        .iter()
        .map(|e| {
            (
                e["subnet_id"].as_u64(),
                e["subnet_node_id"].as_u64(),
                e["state"].as_str(),
            )
        })
        .collect();
    assert_eq!(
        nodes,
        [
            (Some(1), Some(1), Some("JOINING")),
            (Some(1), Some(2), Some("JOINING"))
        ],
        "{entries:?}"
    );
    assert_eq!(
        entries[1]["peer_id"],
        "12D3KooWM5J4zS17XR2LHGZgRpmzbeqg4Eibyq8sbRLwRuWxJqsV"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_killed_mid_call_has_its_call_cancelled_by_the_node() {
    use std::io::BufRead;
    let backend = crate::common::StreamBackend::start().await;
    let mut routes = peerapi::RouteTable::new();
    routes.insert(
        "slow".into(),
        peerapi::Route::new(backend.url("/slow"), true),
    );
    let dir_b = tempfile::tempdir().unwrap();
    let (_b, b_addr, _) = node_with_control(dir_b.path(), &routes, &[]);
    let dir = tempfile::tempdir().unwrap();
    let (_a, _, socket) = node_with_control(dir.path(), &Default::default(), &[]);
    // A client in its own process, killed (no cancel sent) mid-stream.
    let mut client = Command::new(BIN)
        .args(["ctl", "stream", "--node", socket.to_str().unwrap()])
        .arg(b_addr.to_string())
        .arg("slow")
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = std::io::BufReader::new(client.stdout.take().unwrap()).lines();
    let first = lines.next().expect("a first chunk").unwrap();
    assert!(first.starts_with("data: "), "{first}");
    assert_eq!(backend.dropped_streams(), 0, "the stream is still running");
    client.kill().unwrap();
    let _ = client.wait();
    // The node cancels the call: B's backend request is dropped.
    within(backend.wait_dropped_beyond(0)).await;
}
