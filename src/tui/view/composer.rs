use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::Modifier;
use ratatui::text::{Line, Span};
use ratatui::widgets::Paragraph;
use ratatui::Frame;

use super::{pane_block, Theme};
use crate::tui::action::Pane;
use crate::tui::state::{Field, State};

pub fn draw(frame: &mut Frame, area: Rect, state: &State, theme: &Theme) {
    let c = &state.composer;
    let mode = if c.stream { "STREAM" } else { "UNARY" };
    let editing = if c.editing {
        " — editing (Esc to stop)"
    } else {
        ""
    };
    let block = pane_block(
        state,
        theme,
        Pane::Composer,
        format!("Composer [{mode}]{editing}"),
    );
    let inner = block.inner(area);
    frame.render_widget(block, area);
    let body_h = inner.height.saturating_sub(5).max(1);
    let [target, route_row, headers, body, hint] = Layout::vertical([
        Constraint::Length(1),
        Constraint::Length(1),
        Constraint::Length(2),
        Constraint::Length(body_h),
        Constraint::Length(1),
    ])
    .areas(inner);
    let [route, method] =
        Layout::horizontal([Constraint::Percentage(60), Constraint::Percentage(40)])
            .areas(route_row);
    for (field, rect) in [
        (Field::Peer, target),
        (Field::Route, route),
        (Field::Method, method),
        (Field::Headers, headers),
        (Field::Body, body),
    ] {
        let [label, input] =
            Layout::horizontal([Constraint::Length(9), Constraint::Min(1)]).areas(rect);
        let selected = state.focus == Pane::Composer && c.field == field;
        let style = if selected {
            theme.accent().add_modifier(Modifier::BOLD)
        } else {
            theme.dim()
        };
        let marker = if selected { "▶" } else { " " };
        frame.render_widget(
            Paragraph::new(format!("{marker}{}", field.name())).style(style),
            label,
        );
        let mut area_widget = c.area(field).clone();
        if !(selected && c.editing) {
            area_widget.set_cursor_style(ratatui::style::Style::default());
        }
        area_widget.set_cursor_line_style(ratatui::style::Style::default());
        frame.render_widget(&area_widget, input);
    }
    let target = c.text(Field::Peer).trim().to_string();
    let listing = state.routes.remote.get(&target);
    let hint_line = match (&c.warning, listing) {
        (Some(w), _) => Line::from(Span::styled(format!("⚠ {w}"), theme.warn())),
        (None, Some(Ok(routes))) if !c.editing => {
            let names: Vec<String> = routes
                .iter()
                .map(|r| {
                    if r.stream {
                        format!("{}~", r.name)
                    } else {
                        r.name.clone()
                    }
                })
                .collect();
            Line::from(vec![
                Span::styled("peer routes (~ stream): ", theme.dim()),
                Span::raw(names.join(" ")),
            ])
        }
        (None, _) if c.editing => Line::from(Span::styled(
            "type to edit · Tab next field · Ctrl-S send · Esc done",
            theme.dim(),
        )),
        (None, _) => Line::from(Span::styled(
            "Enter edit · s send · m unary/stream · ↑↓ field",
            theme.dim(),
        )),
    };
    frame.render_widget(Paragraph::new(hint_line), hint);
}
