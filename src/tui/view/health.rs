//! The Health view, over the whole screen: one row per node the node
//! probes (`--health`), or the selected node's verdict changes.

use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::text::Line;
use ratatui::widgets::{Block, Borders, Clear, Paragraph, Row, Table, TableState, Wrap};
use ratatui::Frame;

use super::help::centered;
use super::Theme;
use crate::health::text::{short_peer, sparkline, utc};
use crate::health::verdict::fmt_age;
use crate::health::Verdict;
use crate::tui::state::{HealthSort, State};

fn ms(v: Option<f64>) -> String {
    match v {
        Some(x) if x < 10.0 => format!("{x:.1}ms"),
        Some(x) => format!("{x:.0}ms"),
        None => "-".into(),
    }
}

pub fn draw(frame: &mut Frame, area: Rect, state: &State, theme: &Theme) {
    let rect = centered(area, area.width, area.height);
    frame.render_widget(Clear, rect);
    let v = &state.health;
    let mut title = " Health".to_string();
    if v.sort != HealthSort::default() {
        title.push_str(&format!(" by {}", v.sort.label()));
    }
    title.push_str(if v.detail {
        " — Esc back to the table "
    } else {
        " — ↑↓ select · Enter history · s sort · / filter · H or Esc close "
    });
    let block = Block::default().borders(Borders::ALL).title(title);
    let inner = block.inner(rect);
    frame.render_widget(block, rect);
    let latest = match &v.report {
        None => return note(frame, inner, theme, "asking the node…"),
        Some(None) => {
            return note(
                frame,
                inner,
                theme,
                "this node does not probe its subnet: start it with `peerapi node --health` (see --help for the interval, history and alerts)",
            )
        }
        Some(Some(latest)) => latest,
    };
    let now = state
        .wall
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64);
    let mut counts = String::new();
    for verdict in Verdict::ALL {
        let n = v.rows.iter().filter(|r| r.verdict == verdict).count();
        if n > 0 {
            counts.push_str(&format!(" · {n} {verdict}"));
        }
    }
    let shown = if v.filter.is_empty() {
        format!("{} nodes", v.rows.len())
    } else {
        format!(
            "{} of {} nodes match /{}",
            v.rows.len(),
            v.total,
            v.filter.text
        )
    };
    let mut summary = format!(
        "{shown}{counts} · every {:.0}s · round {}",
        latest.interval_secs, latest.rounds
    );
    if let Some(e) = &latest.history_error {
        summary.push_str(&format!(" · no history: {e}"));
    }
    if latest.alerts_sent + latest.alerts_suppressed > 0 {
        summary.push_str(&format!(
            " · alerts {} sent, {} over the limit",
            latest.alerts_sent, latest.alerts_suppressed
        ));
    }
    let [top, reach, body] = Layout::vertical([
        Constraint::Length(2),
        // Its reason and observed address take three lines when narrow.
        Constraint::Length(match (&latest.reachability, inner.width < 120) {
            (None, _) => 0,
            (Some(_), true) => 3,
            (Some(_), false) => 2,
        }),
        Constraint::Min(1),
    ])
    .areas(inner);
    frame.render_widget(
        Paragraph::new(summary)
            .style(theme.dim())
            .wrap(Wrap { trim: true }),
        top,
    );
    if let Some(r) = &latest.reachability {
        let mut text = format!("this node: {} — {}", r.state, r.reason);
        if let Some(o) = r.observed.first() {
            let agree = if o.peers == 1 { "peer" } else { "peers agree" };
            text.push_str(&format!(" · observed at {} ({} {agree})", o.addr, o.peers));
        }
        let line = Paragraph::new(text).wrap(Wrap { trim: true });
        let line = match r.state {
            crate::health::reach::ReachState::Unreachable => line.style(theme.warn()),
            _ => line,
        };
        frame.render_widget(line, reach);
    }
    if v.rows.is_empty() {
        let text = if v.total > 0 {
            "no node matches the filter: / to change it (empty: all)"
        } else {
            "no node probed yet: the first round is under way"
        };
        return note(frame, body, theme, text);
    }
    if v.detail {
        return detail(frame, body, state, theme, now);
    }
    let wide = body.width >= 120;
    let rows: Vec<Row> = v
        .rows
        .iter()
        .map(|r| {
            let changed = r.last_change.as_ref().map_or("-".into(), |c| {
                fmt_age(std::time::Duration::from_secs(
                    now.saturating_sub(c.at_s).max(0) as u64,
                ))
            });
            let mut cells = vec![
                short_peer(&r.peer),
                r.verdict.name().to_string(),
                format!("{:.0}%", r.availability * 100.0),
                ms(r.rtt_p50_ms),
            ];
            if wide {
                cells.push(ms(r.rtt_p99_ms));
                cells.push(sparkline(&r.rtt_recent_ms));
            }
            cells.push(changed);
            if wide {
                cells.push(r.dag.map_or("-".into(), |d| d.short()));
            }
            cells.push(r.reason.clone());
            let row = Row::new(cells);
            match r.verdict {
                Verdict::Online | Verdict::Joining => row,
                _ => row.style(theme.warn()),
            }
        })
        .collect();
    let mut header = vec!["NODE", "VERDICT", "24H", "RTT"];
    let mut widths = vec![
        Constraint::Length(14),
        Constraint::Length(11),
        Constraint::Length(4),
        Constraint::Length(7),
    ];
    if wide {
        header.extend(["p99", "RTT (latest 24)"]);
        widths.extend([Constraint::Length(7), Constraint::Length(24)]);
    }
    header.push("CHANGED");
    widths.push(Constraint::Length(7));
    if wide {
        header.push("DAG");
        widths.push(Constraint::Length(9));
    }
    header.push("REASON");
    widths.push(Constraint::Min(10));
    let table = Table::new(rows, widths)
        .header(Row::new(header).style(theme.dim()))
        .row_highlight_style(theme.selected());
    let mut ts = TableState::default().with_selected(Some(v.sel));
    frame.render_stateful_widget(table, body, &mut ts);
}

fn note(frame: &mut Frame, area: Rect, theme: &Theme, text: &str) {
    frame.render_widget(
        Paragraph::new(text)
            .style(theme.dim())
            .wrap(Wrap { trim: true }),
        area,
    );
}

/// The selected node: its figures over the day and its verdict changes.
fn detail(frame: &mut Frame, area: Rect, state: &State, theme: &Theme, now: i64) {
    let Some(r) = state.health.selected() else {
        return;
    };
    let mut lines = vec![
        Line::from(r.peer.clone()),
        Line::from(format!(
            "{} {}  ·  {:.1}% available over {} probes  ·  RTT p50 {} p99 {}  ·  probe p50 {} p99 {}",
            r.verdict,
            r.reason,
            r.availability * 100.0,
            r.probes,
            ms(r.rtt_p50_ms),
            ms(r.rtt_p99_ms),
            ms(r.probe_p50_ms),
            ms(r.probe_p99_ms)
        )),
        Line::from(format!(
            "first seen {} UTC · last probe {} ago · RTT {}",
            utc(r.first_seen_s),
            fmt_age(std::time::Duration::from_secs(now.saturating_sub(r.last_probe_s).max(0) as u64)),
            sparkline(&r.rtt_recent_ms)
        )),
        Line::from(match r.dag {
            Some(d) => format!("DAG heads against ours: {d}"),
            None => "DAG heads: not compared (it does not serve DAG sync)".into(),
        }),
        Line::from(""),
    ];
    match &r.last_change {
        Some(c) => lines.push(Line::from(format!(
            "last change {} UTC: {} -> {}  {}",
            utc(c.at_s),
            c.old.map_or("-", |v| v.name()),
            c.new.name(),
            c.reason
        ))),
        None => lines.push(Line::from("no change in the last day").style(theme.dim())),
    }
    lines.push(
        Line::from("every change and hourly figures: peerapi subnet health --node <peer id>")
            .style(theme.dim()),
    );
    frame.render_widget(Paragraph::new(lines).wrap(Wrap { trim: true }), area);
}
