//! Console responsiveness: frame render time with 100,000 lines in Output,
//! and key-to-screen latency while a stream delivers 100,000 chunks/s.
//! Run: cargo bench --bench console

use std::time::{Duration, Instant};

use peerapi::tui::action::{Action, Pane};
use peerapi::tui::history::Entry;
use peerapi::tui::state::State;
use peerapi::tui::view::{draw, Theme};
use ratatui::backend::TestBackend;
use ratatui::crossterm::event::{KeyCode, KeyEvent, KeyModifiers};
use ratatui::Terminal;

const LINES: usize = 100_000;
const CHUNKS_PER_SEC: usize = 100_000;
const FRAME: Duration = Duration::from_millis(16);

fn percentile(mut v: Vec<Duration>, p: f64) -> Duration {
    v.sort();
    v[((v.len() - 1) as f64 * p).round() as usize]
}

fn streaming_state() -> State {
    let mut s = State::new("bench".into(), 64 * 1024 * 1024);
    let peer = libp2p::identity::Keypair::generate_ed25519()
        .public()
        .to_peer_id();
    s.prefill(&Entry {
        target: format!("/ip4/127.0.0.1/tcp/1/p2p/{peer}"),
        route: "inference".into(),
        method: "POST".into(),
        headers: String::new(),
        body: String::new(),
        stream: true,
    });
    s.update(Action::Send);
    s
}

fn chunk(i: usize) -> bytes::Bytes {
    format!("data: {{\"choices\":[{{\"delta\":{{\"content\":\" token{i}\"}}}}]}}\n\n").into()
}

fn main() {
    let theme = Theme { color: true };
    let mut terminal = Terminal::new(TestBackend::new(160, 48)).expect("test backend");

    // 1. Frame time with 100,000 lines in Output, for each view.
    let mut s = streaming_state();
    let t0 = Instant::now();
    for i in 0..LINES {
        s.update(Action::CallBytes {
            id: 1,
            bytes: chunk(i),
            at: t0,
        });
    }
    let screen = ratatui::layout::Rect::new(0, 0, 160, 48);
    s.before_frame(screen, Instant::now(), std::time::SystemTime::now());
    println!(
        "console frame time, 160x48, {LINES} events in Output ({} bytes kept)",
        s.selected_output_bytes()
    );
    for (name, presses) in [("text", 0), ("raw", 1), ("events", 2)] {
        s.update(Action::Focus(Pane::Output));
        for _ in 0..presses {
            s.update(Action::CycleView);
        }
        let mut times = Vec::new();
        for _ in 0..200 {
            let start = Instant::now();
            terminal.draw(|f| draw(f, &s, &theme)).expect("draw");
            times.push(start.elapsed());
        }
        println!(
            "  {name:<6} p50 {:>8.2?}  p99 {:>8.2?}",
            percentile(times.clone(), 0.5),
            percentile(times, 0.99)
        );
        s = {
            // Back to the text view for the next round.
            let mut fresh = s;
            while fresh.output_mode() != peerapi::tui::state::OutputMode::Text {
                fresh.update(Action::CycleView);
            }
            fresh
        };
    }

    // 2. Key-to-screen latency while 100,000 chunks/s arrive: each 16 ms
    // frame carries 1,600 chunks queued ahead of the key, as in the app loop.
    let mut s = streaming_state();
    s.update(Action::Focus(Pane::Calls));
    let per_frame = CHUNKS_PER_SEC * FRAME.as_millis() as usize / 1000;
    let mut latencies = Vec::new();
    let mut i = 0;
    let run_start = Instant::now();
    for frame in 0..300 {
        let key_at = Instant::now();
        for _ in 0..per_frame {
            s.update(Action::CallBytes {
                id: 1,
                bytes: chunk(i),
                at: key_at,
            });
            i += 1;
        }
        let key = KeyEvent::new(
            if frame % 2 == 0 {
                KeyCode::Char('j')
            } else {
                KeyCode::Char('k')
            },
            KeyModifiers::NONE,
        );
        if let Some(a) =
            peerapi::tui::input::action_for(&s, ratatui::crossterm::event::Event::Key(key))
        {
            s.update(a);
        }
        terminal.draw(|f| draw(f, &s, &theme)).expect("draw");
        latencies.push(key_at.elapsed());
    }
    let elapsed = run_start.elapsed();
    println!(
        "key-to-screen with {per_frame} chunks queued ahead per frame ({} chunks in {:.2?}, {:.0} chunks/s processed)",
        i,
        elapsed,
        i as f64 / elapsed.as_secs_f64()
    );
    println!(
        "  p50 {:>8.2?}  p99 {:>8.2?}  max {:>8.2?}",
        percentile(latencies.clone(), 0.5),
        percentile(latencies.clone(), 0.99),
        latencies.iter().max().copied().unwrap_or_default()
    );
}
