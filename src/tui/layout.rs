//! Where each pane goes on the screen: used by drawing and by mouse hit
//! tests, so the state never needs the views.

use ratatui::layout::{Constraint, Layout, Position, Rect};

use super::action::Pane;

/// Where each region goes on a screen of `area`.
pub struct Regions {
    pub status: Rect,
    pub peers: Rect,
    pub routes: Rect,
    pub calls: Rect,
    pub output: Rect,
    pub composer: Rect,
    pub log: Rect,
    pub footer: Rect,
}

/// Where each region goes; with `zoom`, that pane takes everything between
/// the status line and the footer, and the others are not drawn.
pub fn regions(area: Rect, zoom: Option<Pane>) -> Regions {
    if let Some(pane) = zoom {
        let [status, main, footer] = Layout::vertical([
            Constraint::Length(1),
            Constraint::Min(1),
            Constraint::Length(1),
        ])
        .areas(area);
        let only = |p: Pane| if p == pane { main } else { Rect::default() };
        return Regions {
            status,
            peers: only(Pane::Peers),
            routes: only(Pane::Routes),
            calls: only(Pane::Calls),
            output: only(Pane::Output),
            composer: only(Pane::Composer),
            log: only(Pane::Log),
            footer,
        };
    }
    let log_h = if area.height >= 30 { 6 } else { 4 };
    let [status, main, log, footer] = Layout::vertical([
        Constraint::Length(1),
        Constraint::Min(8),
        Constraint::Length(log_h),
        Constraint::Length(1),
    ])
    .areas(area);
    let [left, right] =
        Layout::horizontal([Constraint::Percentage(45), Constraint::Percentage(55)]).areas(main);
    let [peers, routes, calls] = Layout::vertical([
        Constraint::Percentage(28),
        Constraint::Percentage(30),
        Constraint::Percentage(42),
    ])
    .areas(left);
    let composer_h = if main.height >= 24 { 11 } else { 9 };
    let [output, composer] =
        Layout::vertical([Constraint::Min(4), Constraint::Length(composer_h)]).areas(right);
    Regions {
        status,
        peers,
        routes,
        calls,
        output,
        composer,
        log,
        footer,
    }
}

/// The pane under a screen position (for mouse clicks and wheel).
pub fn pane_at(screen: Rect, zoom: Option<Pane>, column: u16, row: u16) -> Option<Pane> {
    let r = regions(screen, zoom);
    let pos = Position { x: column, y: row };
    [
        (r.peers, Pane::Peers),
        (r.routes, Pane::Routes),
        (r.calls, Pane::Calls),
        (r.output, Pane::Output),
        (r.composer, Pane::Composer),
        (r.log, Pane::Log),
    ]
    .into_iter()
    .find(|(rect, _)| rect.contains(pos))
    .map(|(_, p)| p)
}
