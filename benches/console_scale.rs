//! The console at subnet scale, through its real loop and the real
//! crossterm backend: 1,000 peers, 10,000 calls and a stream of 100,000
//! events/s into Output, at 160x48.
//!
//! - frame time: `Console::draw` (view and the crossterm write, to a sink
//!   like /dev/null), against the same console empty, measured in this run;
//! - key-to-screen: a key sent into `Console::run` while the stream flows,
//!   until the frame that shows it has been flushed to the terminal (the
//!   loop's frame tick included);
//! - memory: this process's resident set before and after.
//!
//! Run: cargo bench --bench console_scale

use std::io::Write;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

use peerapi::node::{Direction, Node, NodeConfig, PeerInfo};
use peerapi::tui::action::{Action, Pane};
use peerapi::tui::history::Entry;
use peerapi::tui::Console;
use ratatui::backend::{Backend, ClearType, CrosstermBackend, WindowSize};
use ratatui::buffer::Cell;
use ratatui::crossterm::event::{Event, KeyCode, KeyEvent, KeyModifiers};
use ratatui::layout::{Position, Size};
use ratatui::Terminal;

const PEERS: usize = 1_000;
const CALLS: usize = 10_000;
const EVENTS_PER_SEC: usize = 100_000;
const WIDTH: u16 = 160;
const HEIGHT: u16 = 48;

/// Where the terminal's bytes go: nowhere, with the time of each flush
/// (a frame is on screen once it is flushed).
#[derive(Clone, Default)]
struct Sink {
    flushes: Arc<Mutex<Vec<Instant>>>,
    bytes: Arc<Mutex<usize>>,
}

impl Write for Sink {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        *self.bytes.lock().unwrap() += buf.len();
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        self.flushes.lock().unwrap().push(Instant::now());
        Ok(())
    }
}

/// The crossterm backend with a fixed size: there is no terminal to ask.
struct Fixed(CrosstermBackend<Sink>);

impl Backend for Fixed {
    type Error = std::io::Error;
    fn draw<'a, I: Iterator<Item = (u16, u16, &'a Cell)>>(&mut self, c: I) -> std::io::Result<()> {
        self.0.draw(c)
    }
    fn hide_cursor(&mut self) -> std::io::Result<()> {
        self.0.hide_cursor()
    }
    fn show_cursor(&mut self) -> std::io::Result<()> {
        self.0.show_cursor()
    }
    fn get_cursor_position(&mut self) -> std::io::Result<Position> {
        Ok(Position::ORIGIN)
    }
    fn set_cursor_position<P: Into<Position>>(&mut self, p: P) -> std::io::Result<()> {
        self.0.set_cursor_position(p)
    }
    fn clear(&mut self) -> std::io::Result<()> {
        self.0.clear()
    }
    fn clear_region(&mut self, t: ClearType) -> std::io::Result<()> {
        self.0.clear_region(t)
    }
    fn size(&self) -> std::io::Result<Size> {
        Ok(Size::new(WIDTH, HEIGHT))
    }
    fn window_size(&mut self) -> std::io::Result<WindowSize> {
        Ok(WindowSize {
            columns_rows: Size::new(WIDTH, HEIGHT),
            pixels: Size::new(0, 0),
        })
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Backend::flush(&mut self.0)
    }
}

fn percentile(mut v: Vec<Duration>, p: f64) -> Duration {
    v.sort();
    v.get(((v.len().saturating_sub(1)) as f64 * p).round() as usize)
        .copied()
        .unwrap_or_default()
}

fn rss_mb() -> f64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find(|l| l.starts_with("VmRSS:"))
        .and_then(|l| l.split_whitespace().nth(1)?.parse::<f64>().ok())
        .unwrap_or(0.0)
        / 1024.0
}

fn chunk(i: usize) -> bytes::Bytes {
    format!("data: {{\"choices\":[{{\"delta\":{{\"content\":\" token{i}\"}}}}]}}\n\n").into()
}

fn peers() -> Vec<PeerInfo> {
    (0..PEERS)
        .map(|i| PeerInfo {
            peer: libp2p::identity::Keypair::generate_ed25519()
                .public()
                .to_peer_id(),
            addr: format!("/ip4/10.0.{}.{}/tcp/4001", i / 250, i % 250)
                .parse()
                .expect("a valid address"),
            direction: if i % 2 == 0 {
                Direction::Inbound
            } else {
                Direction::Outbound
            },
            connected_since: SystemTime::now() - Duration::from_secs(i as u64),
            agent: Some(["py-libp2p/0.6.0", "py-libp2p/0.8.1", "peerapi/0.1.0"][i % 3].into()),
            protocols: vec![
                "/subnet/api_protocol/1.0.0".into(),
                "/ipfs/kad/1.0.0".into(),
                "/ipfs/ping/1.0.0".into(),
            ],
            listen_addrs: vec![],
            rtt_last: Some(Duration::from_micros(100 + (i as u64 * 7919) % 50_000)),
            rtt_samples: vec![Duration::from_micros(300); 10],
            pings_sent: 10,
            pings_failed: 0,
            rtt_at: None,
            ping_interval: std::time::Duration::from_secs(15),
            observed_addr: None,
        })
        .collect()
}

async fn console(node: &Node, sink: Sink) -> (Console<Fixed>, tokio::sync::mpsc::Receiver<Action>) {
    let (tx, rx) = tokio::sync::mpsc::channel(64 * 1024);
    let terminal = Terminal::new(Fixed(CrosstermBackend::new(sink))).expect("terminal");
    let dir = std::env::temp_dir().join(format!("peerapi-console-scale-{}", std::process::id()));
    let (link, updates) =
        peerapi::control::NodeLink::in_process(&node.handle(), peerapi::control::Role::Full)
            .await
            .expect("the console reaches its node");
    let c = Console::new(terminal, link, updates, tx, &dir, None);
    (c, rx)
}

/// Fills the console: 1,000 peers, 10,000 finished calls, and one stream in
/// flight, selected.
fn fill(c: &mut Console<Fixed>) {
    c.on_action(Action::Peers(peers()));
    let call = |stream| Entry {
        target: format!("/ip4/127.0.0.1/tcp/1/p2p/{}", c.state.me()),
        route: "inference".into(),
        method: "POST".into(),
        headers: String::new(),
        body: String::new(),
        stream,
    };
    let (unary, stream) = (call(false), call(true));
    c.state.prefill(&unary);
    let at = Instant::now();
    let body = bytes::Bytes::from_static(br#"{"ok": true, "tokens": 12}"#);
    for _ in 0..CALLS - 1 {
        c.state.update(Action::Send);
        let id = c.state.calls().list.back().expect("a call").id;
        c.state.update(Action::CallBytes {
            id,
            bytes: body.clone(),
            at,
        });
        c.state.update(Action::CallEnded {
            id,
            failure: None,
            error: None,
            at,
            server_timing: None,
        });
    }
    c.state.prefill(&stream);
    c.state.update(Action::Send);
}

fn frame_times(c: &mut Console<Fixed>, frames: usize) -> Vec<Duration> {
    (0..frames)
        .map(|_| {
            let t = Instant::now();
            c.draw().expect("draw");
            t.elapsed()
        })
        .collect()
}

fn main() {
    let rt = tokio::runtime::Runtime::new().expect("runtime");
    rt.block_on(async {
        let node = Node::start(NodeConfig::new(libp2p::identity::Keypair::generate_ed25519()))
            .await
            .expect("node");
        let rss_start = rss_mb();

        // Baseline: the same console, empty, in this run.
        let (mut empty, _rx0) = console(&node, Sink::default()).await;
        empty.state.update(Action::Focus(Pane::Calls));
        let base = frame_times(&mut empty, 300);

        let sink = Sink::default();
        let (mut c, _rx) = console(&node, sink.clone()).await;
        let t = Instant::now();
        fill(&mut c);
        let fill_time = t.elapsed();
        let stream_id = c.state.calls().list.back().expect("the stream").id;
        let rss_filled = rss_mb();

        println!("peerapi console at scale ({PEERS} peers, {CALLS} calls, {EVENTS_PER_SEC} events/s, {WIDTH}x{HEIGHT}, crossterm to a sink)");
        println!("  filled in {fill_time:.2?}; resident {rss_start:.0} MB before, {rss_filled:.0} MB filled");
        println!(
            "  {:<34} {:>9} {:>9} {:>9}",
            "frame (draw + terminal write)", "p50", "p99", "vs empty"
        );
        let row = |name: &str, v: Vec<Duration>| {
            let (p50, p99) = (percentile(v.clone(), 0.5), percentile(v, 0.99));
            let ratio = p50.as_secs_f64() / percentile(base.clone(), 0.5).as_secs_f64().max(1e-9);
            println!("  {name:<34} {:>9.2?} {:>9.2?} {:>8.1}x", p50, p99, ratio);
        };
        row("empty console (baseline)", base.clone());
        for (pane, name) in [(Pane::Peers, "Peers focused, sorted by rtt"), (Pane::Calls, "Calls focused, last selected"), (Pane::Output, "Output following the stream")] {
            c.state.update(Action::Focus(pane));
            if pane == Pane::Peers {
                for _ in 0..3 {
                    c.on_action(Action::SortPeers);
                }
            }
            // Each frame after a frame's worth of stream events.
            let per_frame = EVENTS_PER_SEC * 16 / 1000;
            let mut times = Vec::new();
            for f in 0..300 {
                let at = Instant::now();
                for i in 0..per_frame {
                    c.on_action(Action::CallBytes { id: stream_id, bytes: chunk(f * per_frame + i), at });
                }
                let t = Instant::now();
                c.draw().expect("draw");
                times.push(t.elapsed());
            }
            row(name, times);
        }

        // Key-to-screen through the real loop: the stream arrives at
        // 100,000 events/s on the action channel while keys come in.
        let (keys_tx, mut keys_rx) = tokio::sync::mpsc::unbounded_channel();
        let (act_tx, mut act_rx) = tokio::sync::mpsc::channel(64 * 1024);
        c.state.update(Action::Focus(Pane::Calls));
        let producer = tokio::spawn(async move {
            let mut tick = tokio::time::interval(Duration::from_millis(1));
            let mut i = 0;
            loop {
                tick.tick().await;
                for _ in 0..EVENTS_PER_SEC / 1000 {
                    let at = Instant::now();
                    if act_tx.send(Action::CallBytes { id: stream_id, bytes: chunk(i), at }).await.is_err() {
                        return i;
                    }
                    i += 1;
                }
            }
        });
        let flushes = sink.flushes.clone();
        let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
        let typist = tokio::spawn(async move {
            let mut latencies = Vec::new();
            for k in 0..200 {
                // Off the frame tick's phase: a key at any moment.
                tokio::time::sleep(Duration::from_millis(23 + (k % 7) as u64)).await;
                let sent = Instant::now();
                let code = if k % 2 == 0 { KeyCode::Char('k') } else { KeyCode::Char('j') };
                if keys_tx.send(Event::Key(KeyEvent::new(code, KeyModifiers::NONE))).is_err() {
                    break;
                }
                // The first flush after the key is the frame that shows it.
                let deadline = sent + Duration::from_secs(2);
                loop {
                    tokio::time::sleep(Duration::from_micros(200)).await;
                    let seen = flushes.lock().unwrap().iter().rev().take_while(|f| **f > sent).last().copied();
                    if let Some(f) = seen {
                        latencies.push(f - sent);
                        break;
                    }
                    if Instant::now() > deadline {
                        latencies.push(Duration::from_secs(2));
                        break;
                    }
                }
            }
            let _ = stop_tx.send(());
            latencies
        });
        let run_start = Instant::now();
        let bytes_before = *sink.bytes.lock().unwrap();
        let stop = async move {
            let _ = stop_rx.await;
        };
        c.run(&mut keys_rx, &mut act_rx, stop).await.expect("console loop");
        let ran = run_start.elapsed();
        producer.abort();
        let latencies = typist.await.expect("typist");
        let written = *sink.bytes.lock().unwrap() - bytes_before;
        println!(
            "  key-to-screen through Console::run, {} keys while streaming: p50 {:.2?}  p99 {:.2?}  max {:.2?}",
            latencies.len(),
            percentile(latencies.clone(), 0.5),
            percentile(latencies.clone(), 0.99),
            latencies.iter().max().copied().unwrap_or_default()
        );
        let stream = c.state.calls().list.back().expect("the stream");
        println!(
            "  the loop took {} chunks in {ran:.2?} ({:.0}/s) and wrote {:.1} MB to the terminal",
            stream.output.events.len() as u64 + stream.output.events_dropped,
            (stream.output.events.len() as u64 + stream.output.events_dropped) as f64 / ran.as_secs_f64(),
            written as f64 / 1e6
        );
        println!("  resident at the end: {:.0} MB", rss_mb());
        node.abort();
    });
}
