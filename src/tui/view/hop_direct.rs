//! Hop or backend: the same request through the hop and straight to our
//! own backend, side by side (medians over the rounds), and what the hop
//! adds.

use std::time::Duration;

use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::text::Line;
use ratatui::widgets::{Block, Borders, Paragraph, Row, Table};
use ratatui::Frame;

use super::short;
use super::{fmt_dur, Theme};
use crate::load::direct::median_of;
use crate::load::Sample;
use crate::tui::state::Direct;

pub fn draw(frame: &mut Frame, rect: Rect, d: &Direct, theme: &Theme) {
    let block = Block::default().borders(Borders::ALL).title(format!(
        " Hop vs direct: {} via {} and our backend, {} rounds — Esc {} ",
        d.route,
        short(&d.target),
        d.rounds,
        if d.result.is_some() { "close" } else { "stop" }
    ));
    let inner = block.inner(rect);
    frame.render_widget(block, rect);
    let Some(r) = &d.result else {
        frame.render_widget(
            Paragraph::new(format!(
                "round {} of {}: one call straight to the backend, then one through the hop…",
                d.rounds_done + 1,
                d.rounds
            ))
            .style(theme.dim()),
            inner,
        );
        return;
    };
    let [verdict, table, rounds] = Layout::vertical([
        Constraint::Length(3),
        Constraint::Length(9),
        Constraint::Min(1),
    ])
    .areas(inner);
    let verdict_text = vec![
        Line::raw(verdict_line(&r.hop, &r.direct)),
        Line::styled(
            "(the peer's backend taken to be like ours: same model, same load)",
            theme.dim(),
        ),
    ];
    frame.render_widget(
        Paragraph::new(verdict_text).wrap(ratatui::widgets::Wrap { trim: true }),
        verdict,
    );

    let cell = |v: Option<Duration>| v.map(fmt_dur).unwrap_or_else(|| "-".into());
    let adds = |h: Option<Duration>, b: Option<Duration>| match (h, b) {
        (Some(h), Some(b)) if h >= b => format!("+{}", fmt_dur(h - b)),
        (Some(h), Some(b)) => format!("-{}", fmt_dur(b - h)),
        _ => "-".into(),
    };
    let ok = |v: &[Sample]| format!("{}/{}", v.iter().filter(|s| s.ok()).count(), v.len());
    let first_status = |v: &[Sample]| {
        v.iter()
            .find_map(|s| s.status)
            .map_or_else(|| "-".into(), |s| s.to_string())
    };
    let rate = |v: &[Sample]| {
        let mut r: Vec<f64> = v.iter().filter_map(Sample::tokens_per_sec).collect();
        r.sort_by(f64::total_cmp);
        r.get(r.len().saturating_sub(1) / 2)
            .map_or_else(|| "-".into(), |t| format!("{t:.1}"))
    };
    let bytes = |v: &[Sample]| v.last().map_or_else(|| "-".into(), |s| s.bytes.to_string());
    let mut rows = vec![
        Row::new(vec![
            "succeeded".into(),
            ok(&r.direct),
            ok(&r.hop),
            String::new(),
        ]),
        Row::new(vec![
            "status".into(),
            first_status(&r.direct),
            first_status(&r.hop),
            String::new(),
        ]),
    ];
    type Measure = fn(&Sample) -> Option<Duration>;
    let timed: [(&str, Measure); 3] = [
        ("first byte (p50)", |s| s.ttfb),
        ("first token (p50)", |s| s.ttft),
        ("total (p50)", |s| Some(s.e2e)),
    ];
    for (name, f) in timed {
        let (b, h) = (median_of(&r.direct, f), median_of(&r.hop, f));
        rows.push(Row::new(vec![name.into(), cell(b), cell(h), adds(h, b)]));
    }
    rows.push(Row::new(vec![
        "tokens/s (p50)".into(),
        rate(&r.direct),
        rate(&r.hop),
        String::new(),
    ]));
    rows.push(Row::new(vec![
        "bytes".into(),
        bytes(&r.direct),
        bytes(&r.hop),
        String::new(),
    ]));
    let sha = |v: &[Sample]| {
        v.iter()
            .rev()
            .find_map(|s| s.body_sha256.as_deref())
            .map_or_else(|| "-".into(), |h| format!("sha {}", &h[..h.len().min(8)]))
    };
    let same = match r.same_body() {
        Some(true) => "same",
        Some(false) => "DIFFERS",
        None => "-",
    };
    rows.push(Row::new(vec![
        "body".into(),
        sha(&r.direct),
        sha(&r.hop),
        same.into(),
    ]));
    frame.render_widget(
        Table::new(
            rows,
            [
                Constraint::Length(18),
                Constraint::Length(12),
                Constraint::Length(12),
                Constraint::Min(8),
            ],
        )
        .header(Row::new(["", "direct", "via hop", "hop adds"]).style(theme.accent())),
        table,
    );

    // Each round, for the operator to see the spread behind the medians.
    let mut lines = vec![Line::styled("round  direct    via hop", theme.dim())];
    for (i, (b, h)) in r.direct.iter().zip(&r.hop).enumerate() {
        let one = |s: &Sample| match &s.error {
            None => format!("{:<9}", fmt_dur(s.e2e)),
            Some(class) => format!("{class:<9}"),
        };
        lines.push(Line::raw(format!("{:<6} {} {}", i + 1, one(b), one(h))));
    }
    frame.render_widget(Paragraph::new(lines), rounds);
}

/// One sentence: how much of the call the hop takes, or why it cannot say.
fn verdict_line(hop: &[Sample], direct: &[Sample]) -> String {
    let total = |s: &Sample| Some(s.e2e);
    match (median_of(hop, total), median_of(direct, total)) {
        (Some(h), Some(b)) if h > b => {
            let share = (h - b).as_secs_f64() / h.as_secs_f64().max(1e-9) * 100.0;
            format!(
                "The hop adds {} to the backend's {} ({share:.1}% of the call); the backend takes the rest.",
                fmt_dur(h - b),
                fmt_dur(b)
            )
        }
        (Some(h), Some(b)) => format!(
            "The call through the hop ({}) was no slower than the backend alone ({}): the time is the backend's.",
            fmt_dur(h),
            fmt_dur(b)
        ),
        (None, Some(_)) => "Every call through the hop failed; the backend answered directly: look at the peer or the network.".into(),
        (Some(_), None) => "Every direct call failed; the hop's peer answered: look at this node's backend.".into(),
        (None, None) => "Both sides failed.".into(),
    }
}
