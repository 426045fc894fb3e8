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
    let notes =
        ((v.evictions.len().min(3) + v.rejections.len().min(3) + v.links.len().min(3)) * 2) as u16;
    let lines = summary_lines(state, theme);
    let [summary, roster, bottom] = Layout::vertical([
        Constraint::Length(lines.len() as u16),
        Constraint::Min(3),
        Constraint::Length(notes.max(1)),
    ])
    .areas(inner);

    frame.render_widget(Paragraph::new(lines), summary);

    // The agent only where it fits beside the address.
    let wide = roster.width >= 110;
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
            // Its routes, when the operator has listed them.
            let suffix = format!("/p2p/{}", e.peer_id);
            let routes = state
                .routes
                .remote
                .iter()
                .find(|(target, _)| target.ends_with(&suffix))
                .and_then(|(_, r)| r.as_ref().ok())
                .map(|r| format!("{} routes", r.len()));
            let api = match (api, routes) {
                (_, Some(r)) => r,
                (true, None) => "api".into(),
                (false, None) => String::new(),
            };
            let agent = seen.and_then(|p| p.agent.clone()).unwrap_or_default();
            let style = match e.state.as_str() {
                "ONLINE" => theme.ok(),
                "JOINING" => theme.warn(),
                _ => theme.dim(),
            };
            let mut cells = vec![
                e.subnet_node_id.to_string(),
                short_peer(&e.peer_id),
                e.state.clone(),
                e.role.to_string(),
                e.epoch.to_string(),
                link,
                api,
                e.multiaddr.clone(),
            ];
            if wide {
                cells.push(agent);
            }
            Row::new(cells).style(style)
        })
        .collect();
    let empty = rows.is_empty();
    let mut widths = vec![
        Constraint::Length(5),
        Constraint::Length(16),
        Constraint::Length(8),
        Constraint::Length(4),
        Constraint::Length(9),
        Constraint::Length(7),
        Constraint::Length(8),
        Constraint::Min(10),
    ];
    let mut header = vec![
        "node", "peer", "state", "role", "epoch", "link", "api", "address",
    ];
    if wide {
        widths.push(Constraint::Min(8));
        header.push("agent");
    }
    let table = Table::new(rows, widths)
        .header(Row::new(header).style(theme.accent()))
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
    lines.extend(v.links.iter().rev().take(3).map(|n| {
        let lost = crate::health::text::utc(
            n.lost_at
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_secs() as i64),
        );
        let text = match n.back_after {
            Some(b) => format!(
                "link to {} lost {lost} UTC (no ping answer within {}), back after {}",
                short_peer(&n.peer),
                fmt_dur(n.after),
                fmt_dur(b)
            ),
            None => format!(
                "link to {} lost {lost} UTC (no ping answer within {}), not back yet",
                short_peer(&n.peer),
                fmt_dur(n.after)
            ),
        };
        let style = if n.back_after.is_some() {
            theme.dim()
        } else {
            theme.warn()
        };
        Line::from(Span::styled(text, style))
    }));
    frame.render_widget(Paragraph::new(lines).wrap(Wrap { trim: true }), bottom);
}

/// Gossip per topic and the DAG per namespace (at most three lines each).
fn summary_lines(state: &State, theme: &Theme) -> Vec<Line<'static>> {
    let v = &state.subnet;
    let mut lines = Vec::new();
    if v.topics.is_empty() {
        lines.push(Line::from(vec![
            Span::styled("gossip ", theme.dim()),
            Span::raw("no messages yet"),
        ]));
    }
    for (topic, t) in v.topics.iter().take(3) {
        lines.push(Line::from(vec![
            Span::styled("gossip ", theme.dim()),
            Span::raw(format!(
                "{topic}: mesh {} · {} msgs ({:.1}/min over 60 s) · {} rejected",
                t.mesh, t.received, t.per_minute, t.rejected
            )),
        ]));
    }
    let refused = |ns: &str| match v.dag_nodes.get(ns) {
        Some((_, r)) if *r > 0 => format!(" (+{r} refused: full)"),
        _ => String::new(),
    };
    let dag: Vec<String> = if v.dag.is_empty() {
        // Before the first refresh: what events told.
        v.dag_nodes
            .iter()
            .map(|(ns, (stored, _))| format!("{ns}: {stored} nodes{}", refused(ns)))
            .collect()
    } else {
        v.dag
            .iter()
            .map(|(ns, s)| {
                format!(
                    "{ns}: {} nodes · {} heads · {} orphans{}",
                    s.node_count,
                    s.head_ids.len(),
                    s.orphan_count,
                    refused(ns)
                )
            })
            .collect()
    };
    if dag.is_empty() {
        lines.push(Line::from(vec![
            Span::styled("DAG ", theme.dim()),
            Span::raw("none held yet"),
        ]));
    }
    for d in dag.into_iter().take(3) {
        lines.push(Line::from(vec![
            Span::styled("DAG ", theme.dim()),
            Span::raw(d),
        ]));
    }
    lines
}
