use ratatui::layout::Rect;
use ratatui::text::{Line, Span};
use ratatui::widgets::Paragraph;
use ratatui::Frame;

use super::{short_peer, Theme};
use crate::tui::state::State;

pub fn draw(frame: &mut Frame, area: Rect, state: &State, theme: &Theme) {
    let file = state.routes.table.file_state();
    let file_span = match (&file.path, &file.last_error) {
        (None, _) => Span::styled("routes: in memory", theme.dim()),
        (Some(p), None) => Span::styled(
            format!(
                "routes: {}",
                p.file_name()
                    .map(|n| n.to_string_lossy().into_owned())
                    .unwrap_or_default()
            ),
            theme.ok(),
        ),
        (Some(_), Some(_)) => Span::styled("routes: FILE INVALID (last good kept)", theme.err()),
    };
    let listen = state
        .listen
        .first()
        .map(|a| a.split("/p2p/").next().unwrap_or(a).to_string())
        .unwrap_or_else(|| "not listening".into());
    let in_flight = state.in_flight();
    let mut spans = Vec::new();
    if state.read_only {
        spans.push(Span::styled(
            " READ-ONLY ",
            theme
                .warn()
                .add_modifier(ratatui::style::Modifier::REVERSED),
        ));
    }
    if let Some(a) = &state.attached {
        let (text, style) = if a.gone {
            (format!(" {} GONE: re-attaching ", a.name), theme.err())
        } else {
            (
                format!(" attached {} · {} ", a.name, a.role.as_str()),
                theme.ok(),
            )
        };
        spans.push(Span::styled(
            text,
            style.add_modifier(ratatui::style::Modifier::REVERSED),
        ));
    }
    spans.extend([
        Span::styled(
            " peerapi ",
            theme.accent().add_modifier(ratatui::style::Modifier::BOLD),
        ),
        Span::raw(format!("{} ", short_peer(&state.me))),
        Span::styled(format!("{listen} "), theme.dim()),
        Span::raw(format!("│ peers {} ", state.peers.list.len())),
        Span::raw("│ "),
        file_span,
        Span::raw(" │ "),
        Span::styled(
            format!("in flight {in_flight}"),
            if in_flight > 0 {
                theme.warn()
            } else {
                theme.dim()
            },
        ),
    ]);
    frame.render_widget(Paragraph::new(Line::from(spans)), area);
}
