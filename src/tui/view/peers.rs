use ratatui::layout::{Constraint, Rect};
use ratatui::widgets::{Cell, Paragraph, Row, Table, TableState};
use ratatui::Frame;

use super::{fmt_dur, pane_block, short_peer, Theme};
use crate::node::Direction;
use crate::tui::action::Pane;
use crate::tui::state::{PeerSort, State};

pub fn draw(frame: &mut Frame, area: Rect, state: &State, theme: &Theme) {
    let view = &state.peers;
    let count = if view.filter.is_empty() {
        view.list.len().to_string()
    } else {
        format!("{} of {}", view.shown.len(), view.list.len())
    };
    let mut title = format!("Peers ({count})");
    if view.sort != PeerSort::default() {
        title.push_str(&format!(" by {}", view.sort.label()));
    }
    if !view.filter.is_empty() {
        title.push_str(&format!(" /{}", view.filter.text));
    }
    let block = pane_block(state, theme, Pane::Peers, title);
    if view.shown.is_empty() {
        let text = if view.list.is_empty() {
            "no peers connected — d to dial a multiaddr"
        } else {
            "no peer matches the filter — / to change it"
        };
        let p = Paragraph::new(text).style(theme.dim()).block(block);
        frame.render_widget(p, area);
        return;
    }
    let wide = area.width >= 60;
    // Only the rows on screen are built: a subnet has hundreds of peers and
    // this runs every frame.
    let visible = area.height.saturating_sub(3).max(1) as usize;
    let offset = view.sel.saturating_sub(visible - 1);
    let on_screen = view.shown.iter().skip(offset).take(visible);
    let rows = on_screen.filter_map(|&i| view.list.get(i)).map(|p| {
        let api = if p.serves_api_v1() {
            "api"
        } else if p.agent.is_some() {
            "-"
        } else {
            "?"
        };
        // A peer that keeps closing our connection says so where its
        // agent would be: the Subnet view (S) and the log have the fix.
        let id = p.peer.to_string();
        let evicted = state
            .subnet
            .evictions
            .iter()
            .rev()
            .find(|(peer, _, _)| *peer == id)
            .map(|(_, times, _)| *times);
        // A peer whose pings go unanswered (a partition, before the ping
        // timeout closes its connection): "silent" where its RTT would
        // be, and for how long where its agent would be.
        let silent = p.silent_for(state.wall);
        let agent = match (evicted, silent) {
            (Some(times), _) => format!("evict {times}x"),
            (None, Some(s)) => format!("for {}s", s.as_secs()),
            (None, None) => p.agent.clone().unwrap_or_default(),
        };
        let age = state
            .wall
            .duration_since(p.connected_since)
            .unwrap_or_default();
        let cells = vec![
            short_peer(&p.peer.to_string()),
            match p.direction {
                Direction::Inbound => "in".into(),
                Direction::Outbound => "out".into(),
            },
            match silent {
                Some(_) => "silent".into(),
                None => p.rtt_last.map(fmt_dur).unwrap_or_else(|| "-".into()),
            },
            api.to_string(),
            agent,
            fmt_dur(std::time::Duration::from_secs(age.as_secs())),
        ];
        let row = Row::new(
            pick(cells, wide)
                .into_iter()
                .map(Cell::from)
                .collect::<Vec<_>>(),
        );
        if evicted.is_some() || silent.is_some() {
            row.style(theme.warn())
        } else {
            row
        }
    });
    let widths = vec![
        Constraint::Length(15),
        Constraint::Length(3),
        Constraint::Length(7),
        Constraint::Length(3),
        Constraint::Min(8),
        Constraint::Length(6),
    ];
    let table = Table::new(rows, pick(widths, wide))
        .header(
            Row::new(pick(vec!["PEER", "DIR", "RTT", "API", "AGENT", "UP"], wide))
                .style(theme.dim()),
        )
        .row_highlight_style(theme.selected())
        .block(block);
    let mut ts = TableState::default().with_selected(Some(view.sel - offset));
    frame.render_stateful_widget(table, area, &mut ts);
    // Details of the selected peer on the bottom border line.
    if let Some(p) = view.selected() {
        if state.focus == Pane::Peers && area.height > 2 {
            let detail = format!(
                " {} avg {} jitter {} loss {:.0}% ",
                p.peer,
                p.rtt_avg().map(fmt_dur).unwrap_or_else(|| "-".into()),
                p.rtt_jitter().map(fmt_dur).unwrap_or_else(|| "-".into()),
                p.ping_loss() * 100.0
            );
            let line = Rect::new(
                area.x + 1,
                area.y + area.height - 1,
                area.width.saturating_sub(2),
                1,
            );
            frame.render_widget(Paragraph::new(detail).style(theme.accent()), line);
        }
    }
}

/// All columns when wide; otherwise PEER, RTT, API, AGENT.
fn pick<T>(cols: Vec<T>, wide: bool) -> Vec<T> {
    if wide {
        return cols;
    }
    cols.into_iter()
        .enumerate()
        .filter(|(i, _)| matches!(i, 0 | 2 | 3 | 4))
        .map(|(_, c)| c)
        .collect()
}
