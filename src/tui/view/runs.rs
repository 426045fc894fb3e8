//! The runs view over the whole screen: a fan-out's comparison (who is
//! slow, who failed, whose body differs, and how) or a load run, live.

use super::short;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::text::Line;
use ratatui::widgets::{
    Block, Borders, Clear, Gauge, Paragraph, Row, Sparkline, Table, TableState,
};
use ratatui::Frame;

use super::help::centered;
use super::{fmt_dur, Theme};
use crate::load::Stop;
use crate::tui::state::{FanOut, Load, RunsView, State};

pub fn draw(frame: &mut Frame, area: Rect, state: &State, theme: &Theme) {
    if matches!(state.runs, RunsView::Hidden) {
        return;
    }
    let rect = centered(area, area.width, area.height);
    frame.render_widget(Clear, rect);
    match &state.runs {
        RunsView::Hidden => {}
        RunsView::FanOut(f) => fan_out(frame, rect, f, theme),
        RunsView::Load(l) => load(frame, rect, l, theme),
        RunsView::Direct(d) => super::hop_direct::draw(frame, rect, d, theme),
    }
}

fn fan_out(frame: &mut Frame, rect: Rect, f: &FanOut, theme: &Theme) {
    let block = Block::default().borders(Borders::ALL).title(format!(
        " Fan-out {} to {} peers — s sort ({}), d diff, r diff vs this, Esc ",
        f.route,
        f.peers,
        f.sort.name()
    ));
    let inner = block.inner(rect);
    frame.render_widget(block, rect);
    let Some(results) = &f.results else {
        frame.render_widget(live_rows(f, theme), inner);
        return;
    };
    let diff_height = if f.diff { inner.height / 2 } else { 0 };
    let [table_area, diff_area] =
        Layout::vertical([Constraint::Min(3), Constraint::Length(diff_height)]).areas(inner);
    let ms = |d: Option<std::time::Duration>| d.map(fmt_dur).unwrap_or_else(|| "-".into());
    let rows: Vec<Row> = results
        .iter()
        .map(|r| {
            let s = &r.sample;
            let (state, style) = match &s.error {
                None => ("ok".to_string(), theme.ok()),
                Some(class) => (class.clone(), theme.err()),
            };
            let body = match r.same_as_majority {
                _ if f.reference.as_ref() == Some(&s.peer) => "ref",
                Some(true) => "same",
                Some(false) => "DIFFERS",
                None => "-",
            };
            let style = if r.same_as_majority == Some(false) {
                theme.warn()
            } else {
                style
            };
            Row::new(vec![
                short(&s.peer),
                state,
                s.status
                    .map(|x| x.to_string())
                    .unwrap_or_else(|| "-".into()),
                ms(s.ttfb),
                ms(s.ttft),
                r.tokens_per_sec
                    .map(|t| format!("{t:.1}"))
                    .unwrap_or_else(|| "-".into()),
                fmt_dur(s.e2e),
                s.bytes.to_string(),
                body.to_string(),
            ])
            .style(style)
        })
        .collect();
    let table = Table::new(
        rows,
        [
            Constraint::Length(8),
            Constraint::Length(12),
            Constraint::Length(6),
            Constraint::Length(8),
            Constraint::Length(8),
            Constraint::Length(6),
            Constraint::Length(8),
            Constraint::Length(7),
            Constraint::Min(7),
        ],
    )
    .header(
        Row::new([
            "peer", "state", "status", "ttfb", "ttft", "tok/s", "total", "bytes", "body",
        ])
        .style(theme.accent()),
    )
    .row_highlight_style(theme.selected());
    let mut ts = TableState::default().with_selected(Some(f.sel));
    frame.render_stateful_widget(table, table_area, &mut ts);
    if f.diff {
        frame.render_widget(diff(f, theme), diff_area);
    }
}

/// The fan-out while it runs: a row per peer, filled as its call goes.
fn live_rows<'a>(f: &'a FanOut, theme: &Theme) -> Table<'a> {
    use crate::load::fanout::RowUpdate;
    let ms = |d: Option<std::time::Duration>| d.map(fmt_dur).unwrap_or_else(|| "-".into());
    let done = f
        .live
        .iter()
        .filter(|r| matches!(r.update, Some(RowUpdate::Done(_))))
        .count();
    let rows = f.live.iter().map(|r| {
        let (state, style, ttft, tokens, bytes, elapsed) = match &r.update {
            None => ("waiting".into(), theme.dim(), None, 0, 0, None),
            Some(RowUpdate::Calling) => ("calling".into(), theme.dim(), None, 0, 0, None),
            Some(RowUpdate::Receiving(l)) => (
                "receiving".into(),
                theme.accent(),
                l.ttft,
                l.tokens,
                l.bytes,
                Some(l.elapsed),
            ),
            Some(RowUpdate::Done(s)) => match &s.error {
                None => (
                    "ok".into(),
                    theme.ok(),
                    s.ttft,
                    s.tokens,
                    s.bytes,
                    Some(s.e2e),
                ),
                Some(class) => (
                    class.clone(),
                    theme.err(),
                    s.ttft,
                    s.tokens,
                    s.bytes,
                    Some(s.e2e),
                ),
            },
        };
        Row::new(vec![
            short(&r.peer),
            state,
            ms(ttft),
            tokens.to_string(),
            bytes.to_string(),
            ms(elapsed),
        ])
        .style(style)
    });
    Table::new(
        rows,
        [
            Constraint::Length(8),
            Constraint::Length(12),
            Constraint::Length(8),
            Constraint::Length(8),
            Constraint::Length(9),
            Constraint::Min(8),
        ],
    )
    .header(Row::new(["peer", "state", "ttft", "tokens", "bytes", "elapsed"]).style(theme.accent()))
    .block(Block::default().title(format!(
        " {done} of {} peers done; the comparison follows ",
        f.peers
    )))
}

/// The selected peer's body against the reference's (or the majority's),
/// line by line.
fn diff<'a>(f: &FanOut, theme: &Theme) -> Paragraph<'a> {
    let against = match &f.reference {
        Some(peer) => short(peer),
        None => "majority".into(),
    };
    let block = Block::default()
        .borders(Borders::TOP)
        .title(format!(" - {against}  + selected "));
    let Some((sel, majority)) = f.diff_pair() else {
        return Paragraph::new(format!("no {against} body to compare with")).block(block);
    };
    let old = String::from_utf8_lossy(&majority.sample.body_head).into_owned();
    let new = String::from_utf8_lossy(&sel.sample.body_head).into_owned();
    let text = similar::TextDiff::from_lines(&old, &new);
    let lines: Vec<Line> = text
        .iter_all_changes()
        .map(|c| {
            let line = c.to_string_lossy().trim_end_matches('\n').to_string();
            match c.tag() {
                similar::ChangeTag::Delete => Line::styled(format!("-{line}"), theme.err()),
                similar::ChangeTag::Insert => Line::styled(format!("+{line}"), theme.ok()),
                similar::ChangeTag::Equal => Line::raw(format!(" {line}")),
            }
        })
        .collect();
    Paragraph::new(lines).block(block)
}

fn load(frame: &mut Frame, rect: Rect, l: &Load, theme: &Theme) {
    let block = Block::default().borders(Borders::ALL).title(format!(
        " Load {} on {} ({}) — Esc {} ",
        l.route,
        short(&l.target),
        l.plan,
        if l.summary.is_some() { "close" } else { "stop" }
    ));
    let inner = block.inner(rect);
    frame.render_widget(block, rect);
    let [status, gauge, spark, table] = Layout::vertical([
        Constraint::Length(1),
        Constraint::Length(1),
        Constraint::Length(3),
        Constraint::Min(1),
    ])
    .areas(inner);
    // Requests finished per report (every 100 ms), the newest at the right.
    let width = spark.width as usize;
    let data: Vec<u64> = l.per_tick.iter().rev().take(width).rev().copied().collect();
    frame.render_widget(
        Sparkline::default().data(&data).style(theme.accent()),
        spark,
    );
    let p = &l.progress;
    let secs = p.elapsed.as_secs_f64().max(1e-3);
    frame.render_widget(
        Paragraph::new(format!(
            "{} done · {} failed · {} in flight · {:.0} calls/s ok · {}",
            p.done,
            p.failed,
            p.in_flight,
            p.done.saturating_sub(p.failed) as f64 / secs,
            fmt_dur(p.elapsed)
        )),
        status,
    );
    let ratio = match l.plan.stop {
        Stop::Requests(n) => p.done as f64 / n.max(1) as f64,
        Stop::After(d) => p.elapsed.as_secs_f64() / d.as_secs_f64().max(1e-3),
    }
    .clamp(0.0, 1.0);
    frame.render_widget(
        Gauge::default().ratio(ratio).gauge_style(if p.failed > 0 {
            theme.warn()
        } else {
            theme.ok()
        }),
        gauge,
    );
    match &l.summary {
        Some(summary) => frame.render_widget(Paragraph::new(summary.table()), table),
        None => {
            // Live, over the latest requests.
            let ms = |p: &Option<crate::load::Percentiles>| match p {
                Some(p) => format!(
                    "{:>9.2} {:>9.2} {:>9.2} {:>9.2}",
                    p.p50 * 1e3,
                    p.p90 * 1e3,
                    p.p99 * 1e3,
                    p.max * 1e3
                ),
                None => format!("{:>9} {:>9} {:>9} {:>9}", "-", "-", "-", "-"),
            };
            let text = format!(
                "{:<22} {:>9} {:>9} {:>9} {:>9}\n{:<22} {}\n{:<22} {}\n{:<22} {}",
                "ms (latest requests)",
                "p50",
                "p90",
                "p99",
                "max",
                "time to first token",
                ms(&p.live.ttft),
                "inter-token latency",
                ms(&p.live.itl),
                "end to end",
                ms(&p.live.e2e)
            );
            frame.render_widget(Paragraph::new(text), table);
        }
    }
}
