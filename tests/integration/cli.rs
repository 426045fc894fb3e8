use std::process::Command;
use std::time::Instant;

use crate::common::*;

/// A `peerapi node` process in front of the demo backend (kept while the
/// returned values are held), and its address.
async fn demo_node_process() -> (peerapi::demo::DemoBackend, tempfile::TempDir, Proc, String) {
    let backend = demo_backend().await;
    let dir = tempfile::tempdir().unwrap();
    let routes = dir.path().join("routes.json");
    std::fs::write(&routes, backend.routes_json()).unwrap();
    let (node, addr) = node_process(&routes);
    (backend, dir, node, addr.to_string())
}

#[tokio::test]
async fn call_and_stream_against_a_node_process() {
    let (_backend, _dir, _node, addr) = demo_node_process().await;
    assert!(addr.contains("/p2p/12D3KooW"), "{addr}");

    let run = |args: Vec<String>| {
        tokio::task::spawn_blocking(move || {
            let started = Instant::now();
            let out = Command::new(BIN).args(&args).output().unwrap();
            assert!(started.elapsed() < LIMIT);
            out
        })
    };
    // Runs the CLI, asserts it succeeded (showing its stderr if not), returns stdout.
    let run_ok = |args: Vec<String>| async move {
        let out = within(run(args)).await.unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
        assert!(out.status.success(), "{stderr}");
        String::from_utf8(out.stdout).unwrap()
    };
    let out = run_ok(vec![
        "call".into(),
        addr.clone(),
        "echo".into(),
        "-d".into(),
        "hello peer".into(),
    ])
    .await;
    assert_eq!(out, "hello peer");

    let out = run_ok(vec![
        "stream".into(),
        addr.clone(),
        "inference".into(),
        "-d".into(),
        r#"{"max_tokens": 5}"#.into(),
    ])
    .await;
    let text = out;
    assert!(text.contains("data: [DONE]"), "{text}");
    assert_eq!(text.matches("chat.completion.chunk").count(), 6, "{text}");

    let out = within(run(vec!["call".into(), addr.clone(), "missing".into()]))
        .await
        .unwrap();
    assert_eq!(out.status.code(), Some(7));
    assert!(String::from_utf8_lossy(&out.stderr).contains("ROUTE_NOT_FOUND"));
    let args = vec![
        "call".into(),
        addr.clone(),
        "missing".into(),
        "--protocol".into(),
        "1".into(),
    ];
    let out = within(run(args)).await.unwrap();
    assert_eq!(out.status.code(), Some(7));
    assert!(String::from_utf8_lossy(&out.stderr).contains("Route not found"));

    let out = run_ok(vec!["routes".into(), "list".into(), addr.clone()]).await;
    let listing = out;
    assert!(
        listing.contains("inference  yes") && listing.contains("health     no"),
        "{listing}"
    );
    assert!(
        !listing.contains("http://"),
        "URLs never leave the node: {listing}"
    );

    // -i: protocol, status line and headers before the body.
    let text = run_ok(vec![
        "call".into(),
        addr.clone(),
        "health".into(),
        "-i".into(),
    ])
    .await;
    assert!(text.starts_with("/peerapi/api/2.0.0 200\n"), "{text}");
    assert!(text.contains("content-type: application/json"), "{text}");
    assert!(text.contains("\n\n{"), "{text}");

    let out = within(run(vec![
        "call".into(),
        "/ip4/127.0.0.1/tcp/1".into(),
        "x".into(),
    ]))
    .await
    .unwrap();
    assert_eq!(out.status.code(), Some(3));
    assert!(String::from_utf8_lossy(&out.stderr).contains("/p2p/"));
}

#[test]
fn routes_check_reports_errors_with_exit_code_one() {
    let dir = tempfile::tempdir().unwrap();
    let good = dir.path().join("good.json");
    std::fs::write(
        &good,
        r#"{"a": "http://127.0.0.1:1/a", "b": {"url": "http://127.0.0.1:1/b", "stream": true}}"#,
    )
    .unwrap();
    let out = Command::new(BIN)
        .args(["routes", "check"])
        .arg(&good)
        .output()
        .unwrap();
    assert!(out.status.success());
    assert!(String::from_utf8_lossy(&out.stdout).contains("2 routes, ok"));

    let bad = dir.path().join("bad.json");
    std::fs::write(&bad, "{\n  \"a\": [\n").unwrap();
    let out = Command::new(BIN)
        .args(["routes", "check"])
        .arg(&bad)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("line 3"), "{err}");
}

#[test]
fn key_generate_and_show_agree() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("k.key");
    let gen = Command::new(BIN)
        .args(["key", "generate"])
        .arg(&path)
        .output()
        .unwrap();
    assert!(gen.status.success());
    let show = Command::new(BIN)
        .args(["key", "show"])
        .arg(&path)
        .output()
        .unwrap();
    assert!(show.status.success());
    assert_eq!(gen.stdout, show.stdout);
    assert!(String::from_utf8_lossy(&show.stdout).starts_with("12D3KooW"));
}

/// A curl line becomes a call (`--from-curl`), the call becomes a command
/// line (`y` in the console), and that line, run by a shell, makes the
/// backend see the same method, headers and body.
#[tokio::test]
async fn a_curl_line_and_a_copied_command_line_reach_the_backend_alike() {
    let (_backend, _dir, _node, addr) = demo_node_process().await;
    let sh = |line: String| {
        tokio::task::spawn_blocking(move || {
            let out = Command::new("sh").arg("-c").arg(&line).output().unwrap();
            let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
            assert!(out.status.success(), "{line}\n{stderr}");
            serde_json::from_slice::<serde_json::Value>(&out.stdout).unwrap()
        })
    };
    let body = "it's a \"body\"\nwith $HOME and `ticks`";
    let curl = format!(
        "curl -sS -X PUT 'https://api.example.com/inspect' -H 'X-Key: a b' -H 'Content-Type: text/plain' --data-raw {}",
        shlex::try_quote(body).unwrap()
    );
    let quoted = |s: &str| shlex::try_quote(s).unwrap().into_owned();
    let first = within(sh(format!(
        "{} call {} inspect --from-curl {}",
        quoted(BIN),
        quoted(&addr),
        quoted(&curl)
    )))
    .await
    .unwrap();
    assert_eq!(first["method"], "PUT");
    assert_eq!(first["body"], body);
    assert_eq!(first["headers"]["x-key"], "a b");
    assert_eq!(first["headers"]["content-type"], "text/plain");

    // The same request as the console copies it.
    let c = peerapi::cmdline::from_curl(&curl).unwrap();
    let mut req = peerapi::node::CallRequest::new("inspect")
        .method(c.method.clone())
        .body(c.body.clone());
    for (n, v) in &c.headers {
        req = req.header(n.clone(), v.clone());
    }
    let line = peerapi::cmdline::to_command(&addr, &req, false).unwrap();
    let line = line.replacen("peerapi ", &format!("{} ", quoted(BIN)), 1);
    let second = within(sh(line)).await.unwrap();
    for key in ["method", "body", "body_len"] {
        assert_eq!(first[key], second[key], "{key}");
    }
    assert_eq!(first["headers"]["x-key"], second["headers"]["x-key"]);
}

/// Every command that prints a table or a start-up line has `--json`;
/// completions and man pages come from the same definitions as the parser.
#[tokio::test]
async fn scripts_get_json_completions_and_man_pages() {
    let run = |args: &[&str]| {
        let out = Command::new(BIN).args(args).output().unwrap();
        (
            out.status.code(),
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    };
    let json = |text: &str| serde_json::from_str::<serde_json::Value>(text.trim()).unwrap();
    let dir = tempfile::tempdir().unwrap();

    // Keys.
    let key = dir.path().join("node.key");
    let key = key.to_str().unwrap();
    let (code, out, err) = run(&["key", "generate", key, "--json"]);
    assert_eq!(code, Some(0), "{err}");
    let made = json(&out);
    let (_, out, _) = run(&["key", "show", key, "--json"]);
    assert_eq!(json(&out)["peer_id"], made["peer_id"]);
    assert!(made["peer_id"].as_str().unwrap().starts_with("12D3KooW"));

    // A route file with one bad entry: the table, the error, exit 1.
    let file = dir.path().join("routes.json");
    std::fs::write(
        &file,
        r#"{"ok": "http://127.0.0.1:1/x", "bad": {"url": "ftp://x"}}"#,
    )
    .unwrap();
    let (code, out, _) = run(&["routes", "check", file.to_str().unwrap(), "--json"]);
    assert_eq!(code, Some(1));
    let checked = json(&out);
    assert_eq!(checked["ok"], false);
    assert_eq!(checked["routes"][0]["name"], "ok");
    assert_eq!(checked["errors"].as_array().unwrap().len(), 1, "{checked}");

    // A node's start-up lines, and a peer's route listing.
    let backend = demo_backend().await;
    std::fs::write(&file, backend.routes_json()).unwrap();
    let (_node, addr) = node_process_with(&file, &["--json"]);
    let (code, out, err) = run(&["routes", "list", &addr.to_string(), "--json"]);
    assert_eq!(code, Some(0), "{err}");
    let names: Vec<String> = json(&out)
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["name"].as_str().unwrap().to_string())
        .collect();
    assert!(names.contains(&"inference".to_string()), "{names:?}");

    // Completions a shell accepts, and man pages.
    let (code, script, _) = run(&["completions", "bash"]);
    assert_eq!(code, Some(0));
    assert!(script.contains("_peerapi()") && script.contains("--metrics-listen"));
    // From a file: the script is over the kernel's 128 KiB bound on one
    // argument, as a shell sourcing it from a file never minds.
    let script_file = dir.path().join("peerapi.bash");
    std::fs::write(&script_file, &script).unwrap();
    let check = Command::new("bash")
        .arg("-n")
        .arg(&script_file)
        .status()
        .unwrap();
    assert!(check.success(), "bash reads the completion script");
    for shell in ["zsh", "fish"] {
        assert!(run(&["completions", shell]).1.contains("peerapi"));
    }
    let (code, page, _) = run(&["man"]);
    assert_eq!(code, Some(0));
    assert!(
        page.starts_with(".ie") && page.contains(".TH peerapi 1"),
        "{}",
        &page[..100]
    );
    let pages = dir.path().join("man");
    assert_eq!(run(&["man", "--dir", pages.to_str().unwrap()]).0, Some(0));
    assert!(pages.join("peerapi-call.1").exists());
}
