//! The console itself over each link: ratatui's `TestBackend` at 160x48,
//! the console's own run loop drawing as it does on a terminal, fed node
//! events at a steady rate. What passes to it is counted between its
//! link and its loop, so a console that draws slowly holds the count
//! back, fills its link and makes the node mark a gap.

use std::path::Path;
use std::time::Duration;

use peerapi::control::{client, NodeLink, Role};
use peerapi::node::{CallId, NodeEvent, ServeOutcome};
use peerapi::tui::action::Action;
use peerapi::tui::Console;
use tokio::sync::mpsc;

/// The console's size in this measure, as the issue asks.
const SIZE: (u16, u16) = (160, 48);

/// Events per second a console takes at 160x48, in-process and attached.
pub(super) async fn rates(
    handle: &peerapi::NodeHandle,
    socket: &Path,
    rates: &[u64],
) -> Result<String, String> {
    let mut out = format!(
        "  events a console drawing at {}x{} takes (served calls' starts and ends, 1 s at each rate):\n",
        SIZE.0, SIZE.1
    );
    for &rate in rates {
        for (name, attached) in [("in-process console", false), ("attached console", true)] {
            let (taken, missed, secs) = one(handle, socket, attached, rate).await?;
            out.push_str(&format!(
                "    {rate:>9}/s  {name:<18} taken {:>9.0}/s  missed {missed}{}\n",
                taken as f64 / secs,
                if missed > 0 { " (gap marked)" } else { "" },
            ));
        }
    }
    Ok(out)
}

async fn one(
    handle: &peerapi::NodeHandle,
    socket: &Path,
    attached: bool,
    rate: u64,
) -> Result<(u64, u64, f64), String> {
    let (link, updates) = if attached {
        client::connect_socket(socket, Role::Observe).await?
    } else {
        NodeLink::in_process(handle, Role::Observe)
            .await
            .map_err(|e| e.to_string())?
    };
    let dir = peerapi::testkit::TempDir::new(&format!("console-{}", std::process::id()))?;
    let (to_counter, mut from_link) = mpsc::channel(4096);
    let (to_console, mut actions) = mpsc::channel(4096);
    let backend = ratatui::backend::TestBackend::new(SIZE.0, SIZE.1);
    let terminal = ratatui::Terminal::new(backend).map_err(|e| e.to_string())?;
    let mut console = Console::new(terminal, link, updates, to_counter, dir.path(), None);
    let counter = tokio::spawn(async move {
        let (mut taken, mut missed) = (0u64, 0u64);
        while let Some(action) = from_link.recv().await {
            match &action {
                Action::Node(_) => taken += 1,
                Action::NodeEventsMissed(m) => missed += m,
                _ => {}
            }
            if to_console.send(action).await.is_err() {
                break;
            }
        }
        (taken, missed)
    });
    let (_keys_tx, mut keys) = mpsc::unbounded_channel();
    let (stop_tx, stop) = tokio::sync::oneshot::channel::<()>();
    let publish = async {
        let secs = publish(handle, rate).await;
        // Time for what is queued to drain, then the console quits.
        tokio::time::sleep(Duration::from_millis(500)).await;
        let _ = stop_tx.send(());
        secs
    };
    let stopped = async {
        let _ = stop.await;
    };
    let (ran, secs) = tokio::join!(console.run(&mut keys, &mut actions, stopped), publish);
    let Ok(()) = ran;
    drop(console);
    drop(actions);
    let (taken, missed) = counter.await.map_err(|e| e.to_string())?;
    Ok((taken, missed, secs))
}

/// `rate` events a second for one second, as pairs of a served call's
/// start and end; the seconds it took.
async fn publish(handle: &peerapi::NodeHandle, rate: u64) -> f64 {
    super::paced::publish_paced(rate, 2, |n| {
        let id = CallId(n);
        handle.emit_for_bench(NodeEvent::ServeStarted {
            id,
            peer: libp2p::PeerId::random(),
            route: "inference".into(),
            method: "POST".into(),
            stream: true,
        });
        handle.emit_for_bench(NodeEvent::ServeFinished {
            id,
            outcome: ServeOutcome::Ok { status: 200 },
            bytes: 80,
            elapsed: Duration::from_micros(90),
            backend_first_byte: None,
        });
    })
    .await
}
