//! The Subnet view, over the whole screen: the roster as the subnet's
//! nodes announce it, what gossip brought, the DAG held, and evictions.

use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Borders, Clear, Paragraph, Row, Table, Wrap};
use ratatui::Frame;

use super::help::centered;
use super::{fmt_dur, short_peer, Theme};
use crate::tui::state::State;

pub fn draw(frame: &mut Frame, area: Rect, state: &State, theme: &Theme) {
    let rect = centered(area, area.width, area.height);
    frame.render_widget(Clear, rect);
    let block = Block::default()
        .borders(Borders::ALL)
        .title(" Subnet — S or Esc to close ");
    let inner = block.inner(rect);
    frame.render_widget(block, rect);
    let v = &state.subnet;
    // A note may wrap to two lines at 80 columns.
    let notes = ((v.evictions.len().min(3) + v.rejections.len().min(3)) * 2) as u16;
    let [summary, roster, bottom] = Layout::vertical([
        Constraint::Length(2),
        Constraint::Min(3),
        Constraint::Length(notes.max(1)),
    ])
    .areas(inner);

    let dag: Vec<String> = v
        .dag_nodes
        .iter()
        .map(|(ns, (stored, refused))| {
            if *refused > 0 {
                format!("{ns} {stored} (+{refused} refused: full)")
            } else {
                format!("{ns} {stored}")
            }
        })
        .collect();
    let lines = vec![
        Line::from(vec![
            Span::styled("gossip ", theme.dim()),
            Span::raw(format!(
                "{} received, {} rejected",
                v.gossip_received, v.gossip_rejected
            )),
        ]),
        Line::from(vec![
            Span::styled("DAG nodes ", theme.dim()),
            Span::raw(if dag.is_empty() {
                "none yet".to_string()
            } else {
                dag.join(", ")
            }),
        ]),
    ];
    frame.render_widget(Paragraph::new(lines), summary);

    let rows: Vec<Row> = v
        .roster
        .entries()
        .map(|e| {
            // Joined with what this node sees of the same peer.
            let seen = state
                .peers
                .list
                .iter()
                .find(|p| p.peer.to_string() == e.peer_id);
            let link = match seen {
                Some(p) => p.rtt_last.map(fmt_dur).unwrap_or_else(|| "up".into()),
                None => "-".into(),
            };
            let api = seen.is_some_and(|p| {
                p.protocols
                    .iter()
                    .any(|x| x == crate::wire::PROTOCOL_V1 || x == crate::wire::PROTOCOL_V2)
            });
            let style = match e.state.as_str() {
                "ONLINE" => theme.ok(),
                "JOINING" => theme.warn(),
                _ => theme.dim(),
            };
            Row::new(vec![
                e.subnet_node_id.to_string(),
                short_peer(&e.peer_id),
                e.state.clone(),
                e.role.to_string(),
                e.epoch.to_string(),
                link,
                if api { "api" } else { "" }.to_string(),
                e.multiaddr.clone(),
            ])
            .style(style)
        })
        .collect();
    let empty = rows.is_empty();
    let table = Table::new(
        rows,
        [
            Constraint::Length(5),
            Constraint::Length(16),
            Constraint::Length(8),
            Constraint::Length(4),
            Constraint::Length(9),
            Constraint::Length(7),
            Constraint::Length(3),
            Constraint::Min(10),
        ],
    )
    .header(
        Row::new([
            "node", "peer", "state", "role", "epoch", "link", "api", "address",
        ])
        .style(theme.accent()),
    )
    .block(
        Block::default()
            .borders(Borders::TOP)
            .title(" roster (peer state) "),
    );
    frame.render_widget(table, roster);
    if empty {
        let [_, hint] = Layout::vertical([Constraint::Length(2), Constraint::Min(1)]).areas(roster);
        frame.render_widget(
            Paragraph::new("no peer state yet: nodes gossip it every ~20 s on peer_state")
                .style(theme.dim()),
            hint,
        );
    }

    let mut lines: Vec<Line> = v
        .evictions
        .iter()
        .rev()
        .take(3)
        .map(|(peer, times, hint)| {
            Line::from(Span::styled(
                format!("evicted {times}x by {}: {hint}", short_peer(peer)),
                theme.warn(),
            ))
        })
        .collect();
    lines.extend(v.rejections.iter().rev().take(3).map(|(peer, why)| {
        Line::from(Span::styled(
            format!("rejected gossip from {}: {why}", short_peer(peer)),
            theme.err(),
        ))
    }));
    frame.render_widget(Paragraph::new(lines).wrap(Wrap { trim: true }), bottom);
}
