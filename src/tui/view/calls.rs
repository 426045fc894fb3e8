use ratatui::layout::{Constraint, Rect};
use ratatui::widgets::{Paragraph, Row, Table, TableState};
use ratatui::Frame;

use super::{fmt_bytes, fmt_dur, pane_block, short_peer, Theme};
use crate::tui::action::Pane;
use crate::tui::state::{CallState, State};

/// A call in flight silent this long shows "silent Ns".
const SILENT_SHOWN: std::time::Duration = std::time::Duration::from_secs(5);

pub fn draw(frame: &mut Frame, area: Rect, state: &State, theme: &Theme) {
    let block = pane_block(
        state,
        theme,
        Pane::Calls,
        format!("Calls ({} in flight)", state.in_flight()),
    );
    if state.calls.list.is_empty() {
        frame.render_widget(
            Paragraph::new("no calls yet — compose one and press s")
                .style(theme.dim())
                .block(block),
            area,
        );
        return;
    }
    let now = state.now;
    // Only the rows on screen are built (and sized): the list holds up to
    // MAX_CALLS calls and this runs every frame.
    let visible = area.height.saturating_sub(3).max(1) as usize;
    let offset = state.calls.sel.saturating_sub(visible - 1);
    let rows: Vec<(Vec<String>, ratatui::style::Style)> = state
        .calls
        .list
        .iter()
        .skip(offset)
        .take(visible)
        .map(|c| {
            // ⇢: made by the node for another client (another console, a script).
            let dir = match (c.outgoing, &c.by) {
                (true, Some(_)) => "⇢",
                (true, None) => "→",
                (false, _) => "←",
            };
            let style = match c.state {
                CallState::Failed => theme.err(),
                CallState::Cancelled => theme.warn(),
                CallState::Done => theme.ok(),
                _ => theme.accent(),
            };
            let dur = c
                .duration
                .unwrap_or_else(|| now.saturating_duration_since(c.started));
            let rate = if c.stream {
                c.output
                    .metrics
                    .rate_window(now)
                    .or(c.output.metrics.rate_overall())
                    .map(|r| format!("{r:.1}t/s"))
                    .unwrap_or_default()
            } else {
                String::new()
            };
            // A finished 2.0.0 call shows its HTTP status, a failed one
            // what failed (the failure table's wording); the rest their state.
            // A call in flight that has heard nothing for a while says
            // for how long (a model thinking, or a link gone silent).
            let last = c.output.metrics.last_bytes.unwrap_or(c.started);
            let silent = now.saturating_duration_since(last);
            let state_text = match (c.state, c.status, c.failure) {
                (state, _, _) if state.in_flight() && silent >= SILENT_SHOWN => {
                    format!("silent {}s", silent.as_secs())
                }
                (CallState::Done, Some(s), _) => format!("done {s}"),
                (CallState::Failed, _, Some(f)) => f.wording().to_string(),
                (state, Some(s), _) if state.in_flight() => format!("{} {s}", state.label()),
                (state, _, _) => state.label().to_string(),
            };
            let kind = if c.stream {
                "strm".into()
            } else {
                c.method.clone()
            };
            let cells = vec![
                format!("{dir}{}", c.id),
                c.route.clone(),
                kind,
                state_text,
                fmt_bytes(c.bytes),
                fmt_dur(dur),
                rate,
                short_peer(&c.peer),
            ];
            (cells, style)
        })
        .collect();
    let header = [
        "#", "ROUTE", "KIND", "STATE", "BYTES", "TIME", "RATE", "PEER",
    ];
    let widths = column_widths(&header, rows.iter().map(|(c, _)| c.as_slice()));
    let (shown, widths) = columns_that_fit(&widths, area.width.saturating_sub(2));
    let pick =
        |cells: &[String]| -> Vec<String> { shown.iter().map(|&i| cells[i].clone()).collect() };
    let table = Table::new(
        rows.iter()
            .map(|(cells, style)| Row::new(pick(cells)).style(*style)),
        shown.iter().map(|&i| Constraint::Length(widths[i])),
    )
    .header(Row::new(shown.iter().map(|&i| header[i])).style(theme.dim()))
    .row_highlight_style(theme.selected())
    .block(block);
    let mut ts = TableState::default().with_selected(Some(state.calls.sel - offset));
    frame.render_stateful_widget(table, area, &mut ts);
}

/// Longest text a column may take; longer cells are cut.
const MAX_COLUMN_WIDTH: [u16; 8] = [6, 24, 6, 14, 7, 8, 10, 15];
/// Columns in the order they are kept as space runs out: #, ROUTE,
/// STATE, TIME, PEER, RATE, BYTES, KIND.
const COLUMN_PRIORITY: [usize; 8] = [0, 1, 3, 5, 7, 6, 4, 2];

/// Each column's width: its longest cell or header, within its maximum.
fn column_widths<'a>(header: &[&str; 8], rows: impl Iterator<Item = &'a [String]>) -> [u16; 8] {
    let mut widths = header.map(|h| h.chars().count() as u16);
    for cells in rows {
        for (w, cell) in widths.iter_mut().zip(cells) {
            *w = (*w).max(cell.chars().count() as u16);
        }
    }
    for (w, max) in widths.iter_mut().zip(MAX_COLUMN_WIDTH) {
        *w = (*w).min(max);
    }
    widths
}

/// Narrowest the route column gets to make room for another column.
const MIN_ROUTE_WIDTH: u16 = 8;
/// The route shortens to fit the first this many columns (#, ROUTE,
/// STATE, TIME), never for the rest.
const ROUTE_SHORTENS_FOR: usize = 4;

/// The columns that fit in `width` (one space between columns), most
/// important first, shown in their usual order; the route column gives
/// up to its minimum before a column is left out. Returns the columns and
/// their widths.
fn columns_that_fit(widths: &[u16; 8], width: u16) -> (Vec<usize>, [u16; 8]) {
    let mut widths = *widths;
    let mut used = 0u16;
    let mut shown: Vec<usize> = Vec::new();
    for i in COLUMN_PRIORITY {
        let need = widths[i] + u16::from(!shown.is_empty());
        let short = (used + need).saturating_sub(width);
        // The route shortens only for the columns that matter most.
        let route_spare = if shown.contains(&1) && shown.len() < ROUTE_SHORTENS_FOR {
            widths[1].saturating_sub(MIN_ROUTE_WIDTH)
        } else {
            0
        };
        if short > route_spare && shown.len() >= 2 {
            continue;
        }
        if short > 0 && shown.contains(&1) {
            widths[1] -= short.min(route_spare);
            used -= short.min(route_spare);
        }
        used += need;
        shown.push(i);
    }
    shown.sort_unstable();
    (shown, widths)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn columns_keep_route_and_state_whole_and_add_the_peer_when_there_is_room() {
        let header = [
            "#", "ROUTE", "KIND", "STATE", "BYTES", "TIME", "RATE", "PEER",
        ];
        let row: Vec<String> = [
            "→12",
            "inference",
            "strm",
            "streaming 200",
            "1.2K",
            "561.0ms",
            "25.0t/s",
            "12D3KooW…2NASuq",
        ]
        .map(String::from)
        .to_vec();
        let widths = column_widths(&header, std::iter::once(row.as_slice()));
        assert_eq!(widths[1], 9, "the whole route");
        assert_eq!(widths[3], 13, "the whole state");
        // 34 columns (80x24): #, ROUTE (one letter shorter), STATE, TIME.
        let (shown, fitted) = columns_that_fit(&widths, 34);
        assert_eq!(shown, [0, 1, 3, 5]);
        assert_eq!((fitted[1], fitted[3]), (8, 13));
        // 60 columns: the peer too, the route whole.
        let (shown, fitted) = columns_that_fit(&widths, 60);
        assert!(shown.contains(&7));
        assert_eq!(fitted[1], 9);
        assert_eq!(columns_that_fit(&widths, 200).0.len(), 8);
        // 44 columns (100x30): the route stays whole; what does not fit waits.
        let (shown, fitted) = columns_that_fit(&widths, 42);
        assert_eq!(fitted[1], 9, "{shown:?}");
    }
}
