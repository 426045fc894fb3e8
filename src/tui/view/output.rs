use std::time::Instant;

use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::text::{Line, Span};
use ratatui::widgets::Paragraph;
use ratatui::Frame;

use super::{fmt_bytes, fmt_dur, pane_block, Theme};
use crate::tui::action::Pane;
use crate::tui::state::{CallView, OutputMode, State};

/// Most bytes of the tail considered when drawing or searching the Raw view.
const VIEW_WINDOW_BYTES: usize = 4 * 1024 * 1024;

pub fn draw(frame: &mut Frame, area: Rect, state: &State, theme: &Theme) {
    let mode = match state.output.mode {
        OutputMode::Raw => "raw",
        OutputMode::Events => "events",
        OutputMode::Text => "text",
    };
    let mut flags = vec![mode.to_string()];
    if state.output.paused.is_some() {
        flags.push("PAUSED".into());
    } else if !state.output.follow {
        flags.push("scrolled".into());
    }
    if state.output.wrap {
        flags.push("wrap".into());
    }
    if let Some(s) = &state.output.search {
        flags.push(format!("/{s}"));
    }
    if let Some(f) = &state.output.jq {
        flags.push(format!("| {}", f.text));
    }
    if let (true, Some(base)) = (state.output.diff, state.calls.diff_base()) {
        flags.push(format!("diff vs #{}", base.id));
    }
    let Some(call) = state.selected_call() else {
        let block = pane_block(
            state,
            theme,
            Pane::Output,
            format!("Output [{}]", flags.join(" ")),
        );
        frame.render_widget(
            Paragraph::new("the selected call's response appears here")
                .style(theme.dim())
                .block(block),
            area,
        );
        return;
    };
    let title = format!("Output #{} {} [{}]", call.id, call.route, flags.join(" "));
    let block = pane_block(state, theme, Pane::Output, title);
    let inner = block.inner(area);
    frame.render_widget(block, area);
    let breakdown = call.breakdown();
    let [head, split, body] = Layout::vertical([
        Constraint::Length(1),
        Constraint::Length(u16::from(breakdown.is_some())),
        Constraint::Min(0),
    ])
    .areas(inner);
    frame.render_widget(Paragraph::new(metrics_line(call, state.now, theme)), head);
    if let Some(b) = breakdown {
        frame.render_widget(Paragraph::new(b.line(fmt_dur)).style(theme.dim()), split);
    }

    let width = body.width.max(1) as usize;
    let height = body.height as usize;
    let (raw_len, ev_len, text_len) = state.output.paused.unwrap_or((
        call.output.raw.len(),
        call.output.events.len(),
        call.output.text.len(),
    ));
    let mut lines: Vec<String> = Vec::new();
    if call.output.released {
        lines.push(format!(
            "(body let go: the listed calls kept more than {} MiB together; the figures above stay)",
            crate::tui::state::MAX_KEPT_OUTPUT_BYTES >> 20
        ));
    }
    if state.output.show_headers {
        match &call.head {
            Some(head) => {
                match head.status {
                    Some(s) => lines.push(format!("{} {s}", head.version.id())),
                    None => lines.push(format!(
                        "{} (no status or headers in 1.0.0)",
                        head.version.id()
                    )),
                }
                let mut headers: Vec<_> = head.headers.iter().collect();
                headers.sort();
                lines.extend(headers.into_iter().map(|(k, v)| format!("{k}: {v}")));
                // The full timeline of where the time went.
                if let Some(b) = call.breakdown() {
                    lines.push(String::new());
                    lines.push(format!("timeline (total {})", fmt_dur(b.total)));
                    lines.extend(
                        b.parts(call.stream)
                            .into_iter()
                            .map(|(name, d)| format!("  {name:<13} {:>9}", fmt_dur(d))),
                    );
                    lines.push(format!("  (node read    {:>9})", fmt_dur(b.read)));
                }
            }
            None => lines.push("(no response head yet)".into()),
        }
        lines.push(String::new());
    }
    let need = height + state.output.scroll + 1;
    // Only the tail that can be on screen is laid out, unless searching.
    let window_limit = if state.output.search.is_some() {
        VIEW_WINDOW_BYTES
    } else {
        ((need + 1) * (width + 1) * 4).min(VIEW_WINDOW_BYTES)
    };
    let diff_base = state.output.diff.then(|| state.calls.diff_base()).flatten();
    match (&state.output.jq, state.output.mode) {
        _ if diff_base.is_some() => diff_lines(diff_base, call, &mut lines),
        (Some(filter), _) => jq_lines(call, filter, need, &mut lines),
        (None, OutputMode::Raw) => {
            let raw = &call.output.raw[..raw_len.min(call.output.raw.len())];
            let start = tail_start(raw, need, window_limit);
            let window = &raw[start..];
            let text = match std::str::from_utf8(window) {
                Ok(t) => t.to_string(),
                // A window may start inside a UTF-8 sequence; only show hex
                // when the bytes really are not text.
                Err(e) if e.valid_up_to() + 4 >= window.len() || e.error_len().is_none() => {
                    String::from_utf8_lossy(window).into_owned()
                }
                Err(_) => hex_dump(&window[window.len().saturating_sub(need * 16)..]),
            };
            if call.output.dropped > 0 && start == 0 {
                lines.push(format!(
                    "… {} earlier bytes dropped (the kept tail is capped; s saves what follows) …",
                    fmt_bytes(call.output.dropped)
                ));
            }
            lines.extend(text.lines().map(str::to_string));
        }
        (None, OutputMode::Events) => {
            let events = &call.output.events[..ev_len.min(call.output.events.len())];
            let skip = events.len().saturating_sub(need + 200);
            if call.output.events_dropped > 0 || skip > 0 {
                lines.push(format!(
                    "… {} earlier events …",
                    call.output.events_dropped + skip as u64
                ));
            }
            for e in &events[skip..] {
                let mark = if e.stall { "STALL " } else { "" };
                lines.push(format!(
                    "{:>9} +{:<8} {mark}{}",
                    fmt_dur(e.at),
                    fmt_dur(e.gap),
                    e.data.replace('\n', "⏎")
                ));
            }
            if events.is_empty() && !call.output.raw.is_empty() {
                lines.push("(no SSE or NDJSON events in this body; v for raw)".into());
            }
        }
        (None, OutputMode::Text) => {
            if call.output.text.is_empty() && !call.output.raw.is_empty() {
                // No tokens recognised (not an inference stream): show the body.
                let raw = &call.output.raw;
                let start = tail_start(raw, need, window_limit);
                lines.extend(
                    String::from_utf8_lossy(&raw[start..])
                        .lines()
                        .map(str::to_string),
                );
            } else {
                let text = &call.output.text[..floor_char(&call.output.text, text_len)];
                let start = ceil_char(text, tail_start(text.as_bytes(), need, window_limit));
                if call.output.text_dropped > 0 && start == 0 {
                    lines.push(format!(
                        "… {} earlier bytes of text dropped (the kept tail is capped) …",
                        fmt_bytes(call.output.text_dropped)
                    ));
                }
                lines.extend(text[start..].split('\n').map(str::to_string));
            }
        }
    }
    if let Some(by) = &call.by {
        lines.push(format!(
            "made by the node for another client ({by}): its response went there"
        ));
    }
    if let Some(err) = &call.error {
        lines.push(String::new());
        lines.push(format!("✖ {err}"));
    }
    let visual: Vec<String> = if state.output.wrap {
        lines.iter().flat_map(|l| wrap(l, width)).collect()
    } else {
        lines
    };
    // Search: jump to the chosen match, counted from the end.
    let mut scroll = if state.output.follow && state.output.paused.is_none() {
        0
    } else {
        state.output.scroll
    };
    let term = state.output.search.as_deref().filter(|s| !s.is_empty());
    if let Some(term) = term {
        let hits: Vec<usize> = visual
            .iter()
            .enumerate()
            .filter(|(_, l)| l.contains(term))
            .map(|(i, _)| i)
            .collect();
        if let Some(&line) = hits
            .iter()
            .rev()
            .nth(state.output.search_hit % hits.len().max(1))
        {
            scroll = visual.len().saturating_sub(line + height / 2 + 1);
        }
    }
    let end = visual.len().saturating_sub(scroll);
    let start = end.saturating_sub(height);
    let shown: Vec<Line> = visual[start..end]
        .iter()
        .map(|l| {
            if l.starts_with('✖') || (diff_base.is_some() && l.starts_with("- ")) {
                return Line::styled(l.clone(), theme.err());
            }
            if diff_base.is_some() && l.starts_with("+ ") {
                return Line::styled(l.clone(), theme.ok());
            }
            if l.contains("STALL ") || l.starts_with('…') {
                return Line::styled(l.clone(), theme.warn());
            }
            match term {
                Some(t) if l.contains(t) => highlight(l, t, theme),
                _ => Line::raw(l.clone()),
            }
        })
        .collect();
    frame.render_widget(Paragraph::new(shown), body);
}

/// Most bytes of each body the diff compares.
pub const MAX_DIFF_BYTES: usize = 1024 * 1024;

/// A call's body as text for a diff: its token text when it has some,
/// else the body.
fn diff_text(call: &CallView) -> String {
    if !call.output.text.is_empty() {
        let t = &call.output.text;
        return t[..floor_char(t, MAX_DIFF_BYTES.min(t.len()))].to_string();
    }
    let raw = &call.output.raw;
    String::from_utf8_lossy(&raw[..raw.len().min(MAX_DIFF_BYTES)]).into_owned()
}

/// The marked call's body (`-`) against the selected one's (`+`), by line.
fn diff_lines(base: Option<&CallView>, call: &CallView, lines: &mut Vec<String>) {
    let Some(base) = base else {
        return;
    };
    let (old, new) = (diff_text(base), diff_text(call));
    let diff = similar::TextDiff::from_lines(&old, &new);
    for change in diff.iter_all_changes() {
        let sign = match change.tag() {
            similar::ChangeTag::Delete => "- ",
            similar::ChangeTag::Insert => "+ ",
            similar::ChangeTag::Equal => "  ",
        };
        lines.push(format!(
            "{sign}{}",
            change.to_string_lossy().trim_end_matches('\n')
        ));
    }
    if old == new {
        lines.push(format!("(the same as #{})", base.id));
    }
}

/// Largest body the jq filter reads whole (a frame must stay quick).
pub const MAX_JQ_BODY_BYTES: usize = 4 * 1024 * 1024;

/// The jq filter's outputs: per event (the latest that fit on screen, and
/// some), or for the whole body when it has no events.
fn jq_lines(
    call: &CallView,
    filter: &crate::tui::jq::JqFilter,
    need: usize,
    lines: &mut Vec<String>,
) {
    let events = &call.output.events;
    if !events.is_empty() {
        let skip = events.len().saturating_sub(need + 200);
        for e in &events[skip..] {
            if e.data.trim() == "[DONE]" {
                continue;
            }
            lines.extend(filter.apply(e.data.as_bytes()));
        }
        return;
    }
    let raw = &call.output.raw;
    if raw.len() > MAX_JQ_BODY_BYTES || call.output.dropped > 0 {
        lines.push(format!(
            "(the body is {}: too large for the jq view; s saves it for jq)",
            fmt_bytes(call.bytes)
        ));
    } else if !raw.is_empty() {
        lines.extend(filter.apply(raw));
    }
}

fn metrics_line(call: &CallView, now: Instant, theme: &Theme) -> Line<'static> {
    let m = &call.output.metrics;
    let mut parts = vec![Span::styled(
        format!("{} ", call.state.label()),
        theme.accent(),
    )];
    // What an operator watches first comes first: a narrow pane cuts the end.
    if call.stream {
        if let Some(r) = m.rate_window(now).or_else(|| m.rate_overall()) {
            parts.push(Span::styled(format!("{r:.1} tok/s "), theme.ok()));
        }
        if let Some(t) = m.ttft {
            parts.push(Span::raw(format!("ttft {} ", fmt_dur(t))));
        }
        let (n, reported) = m.token_count();
        parts.push(Span::raw(format!(
            "{n} tok{} ",
            if reported { "" } else { " (est)" }
        )));
    }
    if let Some(t) = m.ttfb {
        parts.push(Span::raw(format!("ttfb {} ", fmt_dur(t))));
    }
    if call.stream {
        if let (Some(p50), Some(p99)) = (m.gap_percentile(0.5), m.gap_percentile(0.99)) {
            parts.push(Span::styled(
                format!("gap p50 {} p99 {} ", fmt_dur(p50), fmt_dur(p99)),
                theme.dim(),
            ));
        }
    }
    parts.push(Span::styled(
        format!("{} in {} chunks", fmt_bytes(call.bytes), call.chunks),
        theme.dim(),
    ));
    Line::from(parts)
}

fn highlight(line: &str, term: &str, theme: &Theme) -> Line<'static> {
    let mut spans = Vec::new();
    let mut rest = line;
    while let Some(pos) = rest.find(term) {
        spans.push(Span::raw(rest[..pos].to_string()));
        spans.push(Span::styled(term.to_string(), theme.selected()));
        rest = &rest[pos + term.len()..];
    }
    spans.push(Span::raw(rest.to_string()));
    Line::from(spans)
}

/// Where the last `lines` lines of `bytes` start, looking back at most `limit` bytes.
fn tail_start(bytes: &[u8], lines: usize, limit: usize) -> usize {
    let floor = bytes.len().saturating_sub(limit);
    let mut seen = 0;
    // A trailing newline ends the last line rather than starting a new one.
    let end = bytes
        .len()
        .saturating_sub(usize::from(bytes.last() == Some(&b'\n')));
    for i in (floor..end).rev() {
        if bytes[i] == b'\n' {
            seen += 1;
            if seen == lines {
                return i + 1;
            }
        }
    }
    floor
}

fn ceil_char(s: &str, mut i: usize) -> usize {
    while i < s.len() && !s.is_char_boundary(i) {
        i += 1;
    }
    i.min(s.len())
}

fn floor_char(s: &str, mut i: usize) -> usize {
    i = i.min(s.len());
    while !s.is_char_boundary(i) {
        i -= 1;
    }
    i
}

/// Splits a line into pieces of at most `width` characters, breaking after
/// a space where there is one so words stay whole.
pub fn wrap(line: &str, width: usize) -> Vec<String> {
    let width = width.max(1);
    let chars: Vec<char> = line.chars().collect();
    if chars.len() <= width {
        return vec![line.to_string()];
    }
    let mut out = Vec::new();
    let mut start = 0;
    while chars.len() - start > width {
        let window = &chars[start..start + width];
        let cut = match window.iter().rposition(|c| *c == ' ') {
            Some(i) if i > 0 => i + 1,
            _ => width,
        };
        out.push(chars[start..start + cut].iter().collect());
        start += cut;
    }
    out.push(chars[start..].iter().collect());
    out
}

fn hex_dump(bytes: &[u8]) -> String {
    bytes
        .chunks(16)
        .map(|row| {
            let hex: Vec<String> = row.iter().map(|b| format!("{b:02x}")).collect();
            let ascii: String = row
                .iter()
                .map(|&b| {
                    if (0x20..0x7f).contains(&b) {
                        b as char
                    } else {
                        '.'
                    }
                })
                .collect();
            format!("{:<48} {ascii}", hex.join(" "))
        })
        .collect::<Vec<_>>()
        .join("\n")
}
