//! Drawing the fleet view: a status line, the table (as many columns as
//! the width holds, most important first), and the keys.

use std::time::SystemTime;

use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::{Color, Modifier, Style};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Borders, Cell, Paragraph, Row as TableRow, Table, TableState, Wrap};
use ratatui::Frame;

use super::{is_down, FeedKind, FleetView, Typing};
use crate::fleet::follow::Heard;
use crate::fleet::table::{cells, COLUMNS};
use crate::fleet::Reach;
use crate::tui::view::Theme;

const KEYS: &str =
    "↑↓ select  Enter attach  s sort  / filter  c calls  l logs  R reload  F fan-out  ? help  q quit";

const HELP: &str = "The fleet: every node in contexts.toml, asked for its figures every 2 s.

Enter    attach the whole console to the selected node; quitting it returns here
s        sort: file order, name, down first, p99, calls/s, errors
/        filter: words match names, labels, peer ids and reasons;
         key=value matches a label or a column (subnet=3, state=down, own=ONLINE);
         comparisons: errors>1%  p99>500ms  p50<20ms  ttfb>1s  rate>10
                      peers<3  roster<5  routes=0  uptime<10m  evictions>0
R        reload the route file on every node the filter shows (after y)
F        fan out a request ([stream] ROUTE [BODY]) from every node the filter shows
         to that node's own API peers (after y); one summary row per node
         Results of R and F: row by row in the actions pane (a); read-only
         contexts refuse them
c        calls every node serves, newest last, with the node's name (c again closes)
l        every node's log lines, interleaved by time (l again closes)
         Both follow the nodes only while open, show only the rows the filter
         shows, and keep the last 1000 entries.
Esc      clear the filter
q        quit

Columns: CALLS/S, ERR, P99, P50 are calls this node served over the last minute
(ERR: refusals, failures and backend 5xx); TTFB the backend's time to its response
head, p50; ROSTER the subnet's roster size and this node's state in it; RELOAD the
route file's last reload; EVICT peers that kept closing our connections.
A node that is down shows why (ssh's own words where ssh failed) and is tried
again every few seconds.";

/// The columns that fit in `width`, with their widths, in display order.
/// Most important first; the reason a node is down (WHY, the last column)
/// comes third on wide screens, and is in the details line below anyway.
fn fit(widths: &[usize], width: u16) -> Vec<(usize, u16)> {
    let why = widths.len() - 1;
    let mut priority: Vec<usize> = (0..widths.len()).collect();
    if width >= 120 {
        priority.retain(|&i| i != why);
        priority.insert(2, why);
    }
    let mut used = 0usize;
    let mut chosen = Vec::new();
    for i in priority {
        let w = widths[i].min(if i == why { 60 } else { 40 });
        if used + w + 1 > width as usize {
            continue;
        }
        chosen.push((i, w as u16));
        used += w + 1;
    }
    chosen.sort_by_key(|(i, _)| *i);
    chosen
}

pub fn draw(frame: &mut Frame, view: &FleetView, now: SystemTime, theme: &Theme) {
    let area = frame.area();
    let [top, body, details, bottom] = Layout::vertical([
        Constraint::Length(1),
        Constraint::Min(3),
        // The target, then why it is down: room for a long ssh error.
        Constraint::Length(3),
        Constraint::Length(1),
    ])
    .areas(area);
    let shown = view.shown();
    let total = view.fleet.rows.len();
    let down = view.fleet.down();
    let mut status = vec![
        Span::styled(
            " peerapi fleet ",
            theme.fg(Color::Cyan).add_modifier(Modifier::BOLD),
        ),
        Span::raw(format!("{total} nodes, ")),
        Span::styled(
            format!("{down} down"),
            if down > 0 {
                theme.fg(Color::Red).add_modifier(Modifier::BOLD)
            } else {
                Style::default()
            },
        ),
        Span::raw(format!("  sort: {}", view.sort.label())),
    ];
    if !view.filter.is_empty() {
        status.push(Span::raw(format!(
            "  filter: {} ({} shown)",
            view.filter.text(),
            shown.len()
        )));
    }
    frame.render_widget(Paragraph::new(Line::from(status)), top);

    if view.help {
        let help = Paragraph::new(HELP).wrap(Wrap { trim: false }).block(
            Block::default()
                .borders(Borders::ALL)
                .title(" fleet: help (Esc) "),
        );
        frame.render_widget(help, body);
    } else if let Some(feed) = &view.feed {
        let [upper, lower] =
            Layout::vertical([Constraint::Percentage(45), Constraint::Percentage(55)]).areas(body);
        table(frame, upper, view, &shown, now, theme);
        feed_pane(frame, lower, view, feed, &shown, theme);
    } else {
        table(frame, body, view, &shown, now, theme);
    }

    if let Some(&i) = shown.get(view.selected.min(shown.len().saturating_sub(1))) {
        frame.render_widget(
            Paragraph::new(selected_details(&view.fleet.rows[i], theme)).wrap(Wrap { trim: true }),
            details,
        );
    }

    let bottom_line = if let Some((what, _)) = &view.confirm {
        Line::from(Span::styled(
            what.clone(),
            theme.fg(Color::Yellow).add_modifier(Modifier::BOLD),
        ))
    } else if let Some((typing, text)) = &view.typing {
        let (lead, tail) = match typing {
            Typing::Filter => ("/", "  Enter apply, Esc cancel"),
            Typing::FanOut => ("fan out [stream] ROUTE [BODY]: ", "  Enter, then y"),
        };
        Line::from(vec![
            Span::styled(lead, theme.fg(Color::Yellow)),
            Span::raw(text.clone()),
            Span::styled("▏", theme.fg(Color::Yellow)),
            Span::raw(tail),
        ])
    } else if let Some(notice) = &view.notice {
        Line::from(Span::styled(notice.clone(), theme.fg(Color::Yellow)))
    } else {
        Line::from(Span::styled(KEYS, theme.fg(Color::DarkGray)))
    };
    frame.render_widget(Paragraph::new(bottom_line), bottom);
}

/// `HH:MM:SS.mmm` (UTC) of `at`.
fn clock(at: SystemTime) -> String {
    let d = at.duration_since(std::time::UNIX_EPOCH).unwrap_or_default();
    let s = d.as_secs() % 86_400;
    format!(
        "{:02}:{:02}:{:02}.{:03}",
        s / 3600,
        (s % 3600) / 60,
        s % 60,
        d.subsec_millis()
    )
}

/// The fleet-wide pane: the newest entries that fit, of the rows shown.
fn feed_pane(
    frame: &mut Frame,
    area: Rect,
    view: &FleetView,
    feed: &super::Feed,
    shown: &[usize],
    theme: &Theme,
) {
    let name_width = shown
        .iter()
        .map(|&i| view.fleet.rows[i].context.name.chars().count())
        .max()
        .unwrap_or(4);
    let room = area.height.saturating_sub(2) as usize;
    let entries: Vec<&(usize, Heard)> = feed
        .shown()
        .iter()
        .rev()
        .filter(|(i, _)| shown.contains(i))
        .take(room)
        .collect();
    let lines: Vec<Line> = entries
        .into_iter()
        .rev()
        .map(|(i, heard)| {
            let name = format!("{:<name_width$}", view.fleet.rows[*i].context.name);
            let mut spans = vec![
                Span::styled(clock(heard.at()), theme.fg(Color::DarkGray)),
                Span::raw(" "),
                Span::styled(name, theme.fg(Color::Cyan)),
                Span::raw(" "),
            ];
            match heard {
                Heard::Served {
                    peer,
                    route,
                    outcome,
                    elapsed,
                    bytes,
                    ..
                } => {
                    let peer = &peer[peer.len().saturating_sub(8)..];
                    let ok = outcome.starts_with("ok 2") || outcome.starts_with("ok 3");
                    spans.push(Span::raw(format!("…{peer} {route:<16} ")));
                    spans.push(Span::styled(
                        format!("{outcome:<10}"),
                        if ok {
                            Style::default()
                        } else {
                            theme.fg(Color::Red)
                        },
                    ));
                    spans.push(Span::raw(format!(
                        " {:>7} {bytes} B",
                        crate::fleet::table::short_duration(*elapsed)
                    )));
                }
                Heard::Log { level, line, .. } => {
                    let colour = match level.as_str() {
                        "ERROR" => theme.fg(Color::Red),
                        "WARN" => theme.fg(Color::Yellow),
                        _ => Style::default(),
                    };
                    spans.push(Span::styled(format!("{level:<5} "), colour));
                    spans.push(Span::raw(line.clone()));
                }
                Heard::Lost { why, .. } => {
                    spans.push(Span::styled(format!("lost: {why}"), theme.fg(Color::Red)));
                }
                Heard::Action { ok, text, .. } => {
                    let style = if *ok {
                        theme.fg(Color::Green)
                    } else {
                        theme.fg(Color::Red)
                    };
                    spans.push(Span::styled(text.clone(), style));
                }
            }
            Line::from(spans)
        })
        .collect();
    let title = match feed.kind {
        FeedKind::Calls => " calls served, all nodes (c closes) ",
        FeedKind::Logs => " logs, all nodes (l closes) ",
        FeedKind::Actions => " fleet-wide actions, one row per node (a closes) ",
    };
    let body = if lines.is_empty() {
        vec![Line::from(Span::styled(
            "nothing yet",
            theme.fg(Color::DarkGray),
        ))]
    } else {
        lines
    };
    frame.render_widget(
        Paragraph::new(body).block(Block::default().borders(Borders::ALL).title(title)),
        area,
    );
}

/// The selected node in two lines: how it is reached, then why it is down
/// (or who it is).
fn selected_details<'a>(row: &'a crate::fleet::Row, theme: &Theme) -> Vec<Line<'a>> {
    let labels: Vec<String> = row
        .context
        .labels
        .iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect();
    let ro = if row.context.read_only {
        "  read-only"
    } else {
        ""
    };
    let first = Line::from(vec![
        Span::styled(
            row.context.name.clone(),
            Style::default().add_modifier(Modifier::BOLD),
        ),
        Span::raw(format!(
            "  {}  {}{ro}",
            row.context.target,
            labels.join(" ")
        )),
    ]);
    let second = match &row.reach {
        Reach::Down(why) => Line::from(Span::styled(format!("down: {why}"), theme.fg(Color::Red))),
        Reach::Trying => Line::from("reaching it…"),
        Reach::Up => Line::from(row.info.as_ref().map_or_else(String::new, |i| {
            format!("{}  peerapi {}", i.peer_id, i.version)
        })),
    };
    vec![first, second]
}

fn table(
    frame: &mut Frame,
    area: Rect,
    view: &FleetView,
    shown: &[usize],
    now: SystemTime,
    theme: &Theme,
) {
    let rows: Vec<Vec<String>> = shown
        .iter()
        .map(|&i| cells(&view.fleet.rows[i], now))
        .collect();
    let mut widths: Vec<usize> = COLUMNS.iter().map(|c| c.chars().count()).collect();
    for r in &rows {
        for (w, c) in widths.iter_mut().zip(r) {
            *w = (*w).max(c.chars().count());
        }
    }
    let inner_width = area.width.saturating_sub(2);
    let columns = fit(&widths, inner_width);
    let header = TableRow::new(
        columns
            .iter()
            .map(|(i, _)| Cell::from(COLUMNS[*i]).style(theme.fg(Color::Cyan))),
    );
    let body: Vec<TableRow> = rows
        .iter()
        .zip(shown)
        .map(|(r, &i)| {
            let reach = &view.fleet.rows[i].reach;
            let style = if is_down(reach) {
                theme.fg(Color::Red)
            } else if *reach == Reach::Trying {
                theme.fg(Color::DarkGray)
            } else {
                Style::default()
            };
            // The context's own colour marks its name (a colour name or #rrggbb).
            let colour = view.fleet.rows[i]
                .context
                .color
                .as_deref()
                .and_then(|c| c.parse::<Color>().ok());
            TableRow::new(columns.iter().map(|(c, _)| {
                let cell = Cell::from(r[*c].clone());
                match colour {
                    Some(colour) if *c == 0 => cell.style(theme.fg(colour)),
                    _ => cell,
                }
            }))
            .style(style)
        })
        .collect();
    let constraints: Vec<Constraint> = columns
        .iter()
        .map(|(_, w)| Constraint::Length(*w))
        .collect();
    let title = if rows.is_empty() && !view.filter.is_empty() {
        " no node matches the filter (Esc clears it) ".to_string()
    } else {
        " nodes ".to_string()
    };
    let table = Table::new(body, constraints)
        .header(header)
        .column_spacing(1)
        .row_highlight_style(Style::default().add_modifier(Modifier::REVERSED))
        .block(Block::default().borders(Borders::ALL).title(title));
    let mut state = TableState::default();
    if !rows.is_empty() {
        state.select(Some(view.selected.min(rows.len() - 1)));
    }
    frame.render_stateful_widget(table, area, &mut state);
}

#[cfg(test)]
mod tests;
