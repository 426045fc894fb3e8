//! Drives the real binary in tmux as a person would: `peerapi demo`, send the
//! pre-filled streaming call, watch tokens arrive, add a route from the
//! Routes pane and find it in the file, quit.

use std::process::Command;
use std::time::{Duration, Instant};

const BIN: &str = env!("CARGO_BIN_EXE_peerapi");

pub(crate) struct Session(pub(crate) String);

impl Session {
    pub(crate) fn capture(&self) -> String {
        let out = Command::new("tmux")
            .args(["capture-pane", "-p", "-t", &self.0])
            .output()
            .unwrap();
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    pub(crate) fn keys(&self, keys: &[&str]) {
        let status = Command::new("tmux")
            .args(["send-keys", "-t", &self.0])
            .args(keys)
            .status()
            .unwrap();
        assert!(status.success());
    }

    /// Escape, then waits until `gone` left the screen. A key sent right after
    /// an Escape can reach the console in the same read (over ssh above all),
    /// where ESC plus a letter is Alt+letter, not two keys.
    pub(crate) fn escape(&self, gone: &str) {
        self.keys(&["Escape"]);
        self.wait_for(
            &format!("Escape to close {gone:?}"),
            Duration::from_secs(5),
            |t| !t.contains(gone),
        );
    }

    /// Polls the screen until `pred` holds, for at most `limit`.
    pub(crate) fn wait_for(
        &self,
        what: &str,
        limit: Duration,
        pred: impl Fn(&str) -> bool,
    ) -> String {
        let start = Instant::now();
        loop {
            let screen = self.capture();
            if pred(&screen) {
                return screen;
            }
            assert!(
                start.elapsed() < limit,
                "waited {limit:?} for {what}; screen:\n{screen}"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

impl Drop for Session {
    fn drop(&mut self) {
        let _ = Command::new("tmux")
            .args(["kill-session", "-t", &self.0])
            .status();
    }
}

impl Session {
    /// `peerapi demo` with `args` in a new 100x30 tmux session named `name`.
    fn demo(name: String, args: &str) -> Session {
        Self::run(name, &format!("{BIN} demo {args}"), (100, 30))
    }

    /// `command` in a new tmux session of `size`; the screen says
    /// PEERAPI-EXITED once it ends.
    pub(crate) fn run(name: String, command: &str, size: (u16, u16)) -> Session {
        // A missing tmux fails the test with the way to get it, never skips it.
        assert!(
            Command::new("tmux").arg("-V").output().is_ok(),
            "tmux is not installed: run the tests with `bash tests/run.sh`, which installs it \
             (or: apt-get install tmux)"
        );
        let cmd = format!("{command}; echo PEERAPI-EXITED; sleep 5");
        let (w, h) = (size.0.to_string(), size.1.to_string());
        let status = Command::new("tmux")
            .args(["new-session", "-d", "-s", &name, "-x", &w, "-y", &h])
            .arg(cmd)
            .env("NO_COLOR", "1")
            .status()
            .unwrap();
        assert!(status.success());
        Session(name)
    }
}

#[test]
fn demo_streams_tokens_and_edits_routes_in_tmux() {
    let dir = tempfile::tempdir().unwrap();
    let name = format!("peerapi-e2e-{}", std::process::id());
    // A port that was free a moment ago, for the console node's metrics.
    let metrics_port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let args = format!(
        "--data-dir {} --metrics-listen {metrics_port}",
        dir.path().display()
    );
    let s = Session::demo(name, &args);
    s.wait_for("the console", Duration::from_secs(30), |t| {
        t.contains("Composer [STREAM]") && t.contains("Peers (2)")
    });

    s.keys(&["s"]);
    let screen = s.wait_for("tokens on screen", Duration::from_secs(20), |t| {
        t.contains("streaming") && t.contains("subnet")
    });
    assert!(screen.contains("ttfb"), "{screen}");
    let screen = s.wait_for("the call to finish", Duration::from_secs(40), |t| {
        t.contains("done") && t.contains("tok/s")
    });
    assert!(
        screen.contains("145 tok"),
        "the demo reports 145 completion tokens:\n{screen}"
    );
    // The console node counted the call it made, on loopback.
    let scrape = scrape_metrics(metrics_port);
    assert!(
        scrape.contains(r#"peerapi_calls_made_total{route="inference",protocol="2.0.0",outcome="ok",status="200"} 1"#),
        "{scrape}"
    );

    s.keys(&["2"]);
    s.keys(&["a"]);
    s.wait_for("the add-route prompt", Duration::from_secs(5), |t| {
        t.contains("Add route")
    });
    s.keys(&["-l", "chat http://127.0.0.1:9/v1 stream"]);
    s.keys(&["Enter"]);
    let file = dir.path().join("routes.json");
    let start = Instant::now();
    loop {
        let text = std::fs::read_to_string(&file).unwrap_or_default();
        if text.contains("\"chat\"") && text.contains("http://127.0.0.1:9/v1") {
            break;
        }
        assert!(
            start.elapsed() < Duration::from_secs(10),
            "route not written:\n{text}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    s.wait_for("the reloaded table", Duration::from_secs(10), |t| {
        t.contains("chat") && t.contains("Routes (6)")
    });

    s.keys(&["q"]);
    s.wait_for("the console to exit", Duration::from_secs(20), |t| {
        t.contains("PEERAPI-EXITED")
    });
}

/// `GET /metrics` with a plain HTTP/1.0 request: the body, once the server
/// closes the connection.
fn scrape_metrics(port: u16) -> String {
    use std::io::{Read, Write};
    let mut conn = std::net::TcpStream::connect(("127.0.0.1", port)).expect("metrics endpoint");
    conn.set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    conn.write_all(b"GET /metrics HTTP/1.0\r\nHost: localhost\r\n\r\n")
        .unwrap();
    let mut text = String::new();
    conn.read_to_string(&mut text).unwrap();
    assert!(
        text.starts_with("HTTP/1.0 200") || text.starts_with("HTTP/1.1 200"),
        "{text}"
    );
    text
}

#[test]
fn the_demo_shows_a_live_subnet_and_its_telemetry() {
    let dir = tempfile::tempdir().unwrap();
    let name = format!("peerapi-demo-subnet-{}", std::process::id());
    let s = Session::demo(name, &format!("--data-dir {}", dir.path().display()));
    s.wait_for("the console", Duration::from_secs(30), |t| {
        t.contains("Peers (2)")
    });
    // Both demo peers in the roster, ONLINE, from their signed peer state.
    s.keys(&["S"]);
    let screen = s.wait_for("two ONLINE peers", Duration::from_secs(30), |t| {
        t.matches("ONLINE").count() >= 2
    });
    assert!(screen.contains("0 rejected"), "{screen}");
    s.escape("0 rejected");
    // Their telemetry, every event verified.
    s.keys(&["E"]);
    let screen = s.wait_for("verified telemetry", Duration::from_secs(30), |t| {
        t.contains("heartbeat") || t.contains("node_started")
    });
    assert!(screen.contains("0 NOT verified"), "{screen}");
    assert!(screen.contains('✓'), "{screen}");
    s.escape("0 NOT verified");
    s.keys(&["q"]);
    s.wait_for("the console to exit", Duration::from_secs(20), |t| {
        t.contains("PEERAPI-EXITED")
    });
}
