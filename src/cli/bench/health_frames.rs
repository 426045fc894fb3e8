//! The Health view's frame time with the rows a real watcher reports:
//! its latest report is fetched over its control socket, as an attached
//! console fetches it, and the view is drawn at 160x48 and 80x24.

use std::path::Path;
use std::time::{Duration, Instant};

use ratatui::backend::TestBackend;
use ratatui::Terminal;

use peerapi::control::client;
use peerapi::control::{Reply, Request, Role};
use peerapi::tui::action::{Action, HealthAction};

/// Frames drawn at each size.
const FRAMES: usize = 300;

fn percentile(v: &mut [Duration], p: f64) -> Duration {
    v.sort();
    v.get(((v.len() as f64 * p).ceil() as usize).saturating_sub(1))
        .copied()
        .unwrap_or_default()
}

/// One line per size: the rows drawn, frame p50 and p99.
pub(super) async fn measure(socket: &Path) -> Result<String, String> {
    let (link, _updates) = client::connect_socket(socket, Role::Observe).await?;
    let latest = match link.request(Request::Health).reply().await {
        Reply::Health(latest) => *latest,
        other => {
            return Err(format!(
                "the watcher answered {other:?} to a health request"
            ))
        }
    };
    let Some(latest) = latest else {
        return Err("the watcher does not probe".into());
    };
    let rows = latest.rows.len().max(latest.probes.len());
    let mut out = format!(
        "  probes' own bytes      {:.0} bytes per probe, counted by the prober ({} bytes over {} probes: DAG inventories)\n",
        latest.probe_bytes as f64 / latest.probes_made.max(1) as f64,
        latest.probe_bytes,
        latest.probes_made
    );
    let mut state = peerapi::tui::state::State::new("bench".into(), 1 << 20);
    state.update(Action::Health(HealthAction::Toggle));
    state.update(Action::Health(HealthAction::Report(Box::new(Some(latest)))));
    let theme = peerapi::tui::view::Theme { color: true };
    for (w, h) in [(160, 48), (80, 24)] {
        let mut terminal = Terminal::new(TestBackend::new(w, h)).map_err(|e| e.to_string())?;
        let mut frames = Vec::with_capacity(FRAMES);
        for _ in 0..FRAMES {
            let t = Instant::now();
            terminal
                .draw(|f| peerapi::tui::view::draw(f, &state, &theme))
                .map_err(|e| e.to_string())?;
            frames.push(t.elapsed());
        }
        let p50 = percentile(&mut frames, 0.5);
        let p99 = percentile(&mut frames, 0.99);
        out.push_str(&format!(
            "  Health view {w}x{h}      {rows} rows, {FRAMES} frames: p50 {p50:.2?}  p99 {p99:.2?}\n"
        ));
    }
    Ok(out)
}
