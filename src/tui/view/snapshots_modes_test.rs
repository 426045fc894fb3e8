//! Snapshots of the console's modes and layouts at 80x24 and 160x48.

use super::snapshots_test::{populated, render_at, snapshot, with_finished_stream};
use crate::tui::action::{Action, Pane};

/// Both sizes an operator's terminal is likely to have.
fn both(name: &str, s: &mut crate::tui::state::State) {
    snapshot(&format!("{name}_80x24"), render_at(s, 80, 24));
    snapshot(&format!("{name}_160x48"), render_at(s, 160, 48));
}

#[test]
fn read_only_console_shows_its_badge_and_says_why_keys_do_nothing() {
    let mut s = populated();
    with_finished_stream(&mut s);
    s.read_only = true;
    s.focus = Pane::Composer;
    assert!(s.update(Action::Send).is_empty(), "no call goes out");
    both("read_only", &mut s);
    for action in [
        Action::AddRoute,
        Action::StartDial,
        Action::DisconnectPeer,
        Action::RerunCall,
    ] {
        assert!(s.update(action).is_empty());
        assert!(s.prompt.is_none(), "no prompt opens");
        let notice = s.notice.clone().unwrap().0;
        assert!(
            notice.starts_with("read-only: ") && notice.contains("--read-only"),
            "{notice}"
        );
    }
    // Watching still works: focus, views, copying.
    s.update(Action::FocusNext);
    assert!(s.update(Action::ToggleSubnet).is_empty());
}

#[test]
fn the_layout_fits_the_screen_and_zoom_gives_a_pane_all_of_it() {
    let mut s = populated();
    with_finished_stream(&mut s);
    // Columns from the space there is: the peer shows at 160x48.
    both("layout", &mut s);
    let wide = render_at(&mut s, 160, 48);
    assert!(wide.contains("PEER"), "{wide}");
    s.focus = Pane::Output;
    s.update(Action::ToggleZoom);
    both("zoomed_output", &mut s);
    let zoomed = render_at(&mut s, 80, 24);
    assert!(!zoomed.contains("Peers (2)"), "the other panes give way");
    s.update(Action::ToggleZoom);
    assert!(render_at(&mut s, 80, 24).contains("Peers (2)"));
}

#[test]
fn a_jq_filter_shows_each_event_through_it_in_the_zoomed_output() {
    let mut s = populated();
    with_finished_stream(&mut s);
    s.focus = Pane::Output;
    s.update(Action::SetJqFilter);
    assert!(s.prompt.is_some(), "the filter is asked for");
    s.update(Action::PromptSubmit);
    assert!(s.prompt.is_none(), "the default filter compiles");
    s.update(Action::ToggleZoom);
    both("zoomed_output_jq", &mut s);
    let screen = render_at(&mut s, 80, 24);
    for token in [r#""Peers""#, r#"" answer""#, r#"" another.""#] {
        assert!(screen.contains(token), "{token} in {screen}");
    }
    // A filter that does not compile keeps the prompt open, saying why.
    s.update(Action::SetJqFilter);
    if let Some(p) = s.prompt.as_mut() {
        p.input = ratatui_textarea::TextArea::from(vec![".choices[".to_string()]);
    }
    s.update(Action::PromptSubmit);
    let error = s.prompt.as_ref().and_then(|p| p.error.clone()).unwrap();
    assert!(error.starts_with("jq: cannot read"), "{error}");
}
