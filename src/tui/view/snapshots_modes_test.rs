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

#[test]
fn the_selected_body_diffs_against_the_marked_call() {
    use super::snapshots_test::with_finished_stream_of;
    let mut s = populated();
    // JSON-escaped newlines: each token ends a line of the text.
    with_finished_stream_of(&mut s, &["The answer\\n", "is 42.\\n", "Done."]);
    with_finished_stream_of(&mut s, &["The answer\\n", "is 41.\\n", "Done."]);
    s.focus = Pane::Output;
    s.update(Action::ToggleBodyDiff);
    assert!(!s.output.diff, "nothing marked yet");
    assert!(s.notice.clone().unwrap().0.contains("m in Calls"));
    // Mark call #1, then select #2 and diff.
    s.focus = Pane::Calls;
    let first = s.calls.list.iter().position(|c| c.id == 1).unwrap();
    s.calls.sel = first;
    s.update(Action::MarkDiffBase);
    s.calls.sel = s.calls.list.iter().position(|c| c.id == 2).unwrap();
    s.focus = Pane::Output;
    s.update(Action::ToggleBodyDiff);
    both("output_diff", &mut s);
    let screen = render_at(&mut s, 80, 24);
    assert!(
        screen.contains("- is 42.") && screen.contains("+ is 41."),
        "{screen}"
    );
    assert!(render_at(&mut s, 160, 48).contains("diff vs #1"));
}

#[test]
fn the_help_shows_the_keys_of_ones_own_first() {
    let mut s = populated();
    let text = r#"{"global": {"Z": "zoom pane"}, "output": {"J": "jq filter", "|": null}}"#;
    s.user_keys =
        crate::tui::user_keys::UserKeys::parse(text, std::path::Path::new("keys.json")).unwrap();
    s.update(Action::ToggleHelp);
    both("help_with_own_keys", &mut s);
    let screen = render_at(&mut s, 160, 48);
    assert!(
        screen.contains("Yours")
            && screen.contains("Z zoom pane")
            && screen.contains("| (unbound)")
    );
}

#[test]
fn a_help_longer_than_the_screen_scrolls_to_its_last_line() {
    let mut s = populated();
    let text = r#"{"global": {"Z": "zoom pane"}, "peers": {"D": "dial a multiaddr", "X": "disconnect peer"},
        "output": {"J": "jq filter", "W": "wrap", "|": null}}"#;
    s.user_keys =
        crate::tui::user_keys::UserKeys::parse(text, std::path::Path::new("keys.json")).unwrap();
    s.update(Action::ToggleHelp);
    let top = render_at(&mut s, 80, 24);
    assert!(top.contains("↓ more"), "{top}");
    assert!(!top.contains("Mouse"), "{top}");
    s.update(Action::HelpScroll(u16::MAX as isize));
    both("help_scrolled_to_the_end", &mut s);
    let bottom = render_at(&mut s, 80, 24);
    assert!(
        bottom.contains("Mouse") && bottom.contains("↑ more"),
        "{bottom}"
    );
    // Scrolling past the end and back up moves from the end at once.
    s.update(Action::HelpScroll(100));
    s.update(Action::HelpScroll(-1));
    render_at(&mut s, 80, 24);
    assert!(s.help_scroll + 1 == s.help_scroll_max, "{}", s.help_scroll);
    // At 160x48 all of it fits: nothing to scroll, nothing said.
    s.update(Action::ToggleHelp);
    s.update(Action::ToggleHelp);
    let big = render_at(&mut s, 160, 48);
    assert!(big.contains("Mouse") && !big.contains("more"), "{big}");
}

#[test]
fn a_copied_command_line_longer_than_the_footer_is_shown_whole() {
    let mut s = populated();
    s.focus = Pane::Composer;
    let body = format!(
        r#"{{"prompt": "{}", "max_tokens": 64}}"#,
        "tell me more ".repeat(12)
    );
    s.composer.set(crate::tui::state::Field::Body, &body);
    let effects = s.update(Action::CopyCommand);
    let [crate::tui::effect::Effect::Copy(line)] = effects.as_slice() else {
        panic!("{effects:?}")
    };
    assert!(line.len() > 160, "{line}");
    both("copied_command_line", &mut s);
    // The whole line is on the 80-column screen (wrapped, so compared
    // without the white space the wrapping adds).
    let bare = |t: &str| t.split_whitespace().collect::<String>();
    let screen: String = render_at(&mut s, 80, 24)
        .lines()
        .map(|l| l.trim_matches('"'))
        .collect();
    assert!(bare(&screen).contains(&bare(line)), "{screen}");
}

#[test]
fn peers_sort_and_filter_at_subnet_size() {
    let mut s = populated();
    let base = s.peers.list[0].clone();
    // 250 peers: three agents, RTTs from 100 µs to 25 ms.
    let peers: Vec<_> = (0..250u32)
        .map(|i| {
            let mut p = base.clone();
            p.peer = super::snapshots_test::peer((i % 250) as u8 + 2);
            p.agent = Some(
                ["py-libp2p/0.6.0", "py-libp2p/0.8.1", "peerapi/0.1.0"][i as usize % 3].into(),
            );
            p.rtt_last = Some(std::time::Duration::from_micros(
                100 + (i as u64 * 7919) % 25_000,
            ));
            p
        })
        .collect();
    s.update(Action::Peers(peers));
    s.focus = Pane::Peers;
    for _ in 0..3 {
        s.update(Action::SortPeers);
    }
    assert_eq!(s.peers.sort, crate::tui::state::PeerSort::Rtt);
    s.update(Action::FilterPeers);
    s.prompt.as_mut().unwrap().input =
        ratatui_textarea::TextArea::from(vec!["0.6.0 rtt>20ms".to_string()]);
    s.update(Action::PromptSubmit);
    assert!(s.prompt.is_none());
    let shown = s.peers.shown.len();
    assert!(shown > 10 && shown < 50, "{shown}");
    // The last one selected: the window follows the selection.
    s.update(Action::Bottom);
    both("peers_sorted_filtered", &mut s);
    let screen = render_at(&mut s, 160, 48);
    assert!(
        screen.contains(&format!("Peers ({shown} of 250) by rtt /0.6.0 rtt>20ms")),
        "{screen}"
    );
    let last = s.peers.selected().unwrap();
    assert!(last.rtt_last.unwrap() > std::time::Duration::from_millis(20));
    assert!(
        screen.contains(&super::short_peer(&last.peer.to_string())),
        "{screen}"
    );
}

#[test]
fn fan_out_rows_fill_as_the_calls_progress() {
    use crate::load::fanout::RowUpdate;
    use crate::load::sample::CallSoFar;
    use crate::tui::action::RunsAction;
    use std::time::Duration;
    let mut s = fan_out_started();
    let ms = Duration::from_millis;
    s.update(Action::Runs(RunsAction::FanOutRow(0, RowUpdate::Calling)));
    s.update(Action::Runs(RunsAction::FanOutRow(
        1,
        RowUpdate::Receiving(CallSoFar {
            ttfb: Some(ms(180)),
            ttft: Some(ms(210)),
            tokens: 37,
            bytes: 2_048,
            elapsed: ms(1_400),
        }),
    )));
    let mut failed = crate::load::Sample::new("/ip4/127.0.0.1/tcp/4009/p2p/x");
    failed.error = Some("backend_unavailable".into());
    failed.e2e = ms(3);
    s.update(Action::Runs(RunsAction::FanOutRow(
        2,
        RowUpdate::Done(Box::new(failed)),
    )));
    let screen = render_at(&mut s, 80, 24);
    for want in [
        "calling",
        "receiving",
        "210.0ms",
        "37",
        "backend_unav",
        "1 of 3 peers done",
    ] {
        assert!(screen.contains(want), "{want} on screen:\n{screen}");
    }
    snapshot("fan_out_progress_80x24", screen);
}

/// A console with three API peers whose fan-out just started.
pub(super) fn fan_out_started() -> crate::tui::state::State {
    let mut s = populated();
    let mut api = s.peers.list[0].clone();
    api.protocols = vec![crate::wire::PROTOCOL_V1.into()];
    s.update(Action::Peers(vec![api.clone(), api.clone(), api]));
    s.focus = Pane::Composer;
    s.update(Action::Runs(crate::tui::action::RunsAction::StartFanOut));
    s
}

#[test]
fn the_context_picker_lists_the_contexts_under_its_input() {
    let mut s = populated();
    s.attached = Some(crate::tui::state::Attached {
        name: "infer-eu".into(),
        role: crate::control::Role::Full,
        gone: false,
        contexts: ["boot", "infer-eu", "infer-us", "validator"]
            .map(String::from)
            .to_vec(),
    });
    s.update(Action::Command(
        crate::tui::action::CommandAction::PickContext,
    ));
    both("context_picker", &mut s);
    let screen = render_at(&mut s, 80, 24);
    assert!(
        screen.contains("contexts: boot, infer-eu (here), infer-us, validator"),
        "{screen}"
    );
}

#[test]
fn a_call_in_flight_that_hears_nothing_says_how_long_it_has_been_silent() {
    use std::time::Duration;
    let mut s = populated();
    s.update(Action::Send);
    let call = s.calls.list.iter().max_by_key(|c| c.id).unwrap();
    let (id, t0) = (call.id, call.started);
    s.update(Action::CallBytes {
        id,
        bytes: "data: {\"choices\":[{\"delta\":{\"content\":\"Peers\"}}]}\n\n".into(),
        at: t0 + Duration::from_millis(100),
    });
    let draw_at = |s: &mut crate::tui::state::State, after: Duration| {
        s.now = t0 + after;
        let mut terminal =
            ratatui::Terminal::new(ratatui::backend::TestBackend::new(80, 24)).unwrap();
        s.screen = ratatui::layout::Rect::new(0, 0, 80, 24);
        let theme = super::Theme { color: false };
        terminal.draw(|f| super::draw(f, s, &theme)).unwrap();
        terminal.backend().to_string()
    };
    assert!(!draw_at(&mut s, Duration::from_secs(3)).contains("silent"));
    let screen = draw_at(&mut s, Duration::from_millis(12_100));
    assert!(screen.contains("silent 12s"), "{screen}");
    let peer = libp2p::PeerId::random();
    s.update(Action::Node(crate::node::NodeEvent::LinkSilent {
        peer,
        after: Duration::from_secs(20),
    }));
    let notice = s.notice.clone().unwrap().0;
    assert!(
        notice.contains("went silent (no ping answer within 20s)"),
        "{notice}"
    );
}

#[test]
fn a_connected_peer_whose_pings_go_unanswered_is_marked_silent() {
    use std::time::{Duration, SystemTime};
    let mut s = populated();
    let wall = SystemTime::UNIX_EPOCH + Duration::from_secs(1_000_000);
    let mut peers = s.peers.list.clone();
    // One answered 5 s ago (within two 15 s intervals), one 47 s ago.
    peers[0].rtt_at = Some(wall - Duration::from_secs(5));
    peers[1].rtt_at = Some(wall - Duration::from_secs(47));
    s.update(Action::Peers(peers));
    let screen = render_at(&mut s, 80, 24);
    assert_eq!(screen.matches("silent").count(), 1, "{screen}");
    assert!(screen.contains("for 47s"), "{screen}");
    assert!(!screen.contains("for 5s"), "{screen}");
}

#[test]
fn the_subnet_view_says_when_a_peer_was_lost_to_silence_and_when_it_came_back() {
    use std::time::Duration;
    let mut s = populated();
    s.update(Action::ToggleSubnet);
    let peer = libp2p::PeerId::random();
    s.update(Action::Node(crate::node::NodeEvent::LinkSilent {
        peer,
        after: Duration::from_secs(20),
    }));
    let lost = render_at(&mut s, 100, 30);
    assert!(
        lost.contains("(no ping answer within 20.0s), not back yet"),
        "{lost}"
    );
    s.update(Action::Node(crate::node::NodeEvent::PeerConnected {
        peer,
        addr: "/ip4/127.0.0.1/tcp/1".parse().unwrap(),
        direction: crate::node::Direction::Outbound,
    }));
    let back = render_at(&mut s, 100, 30);
    assert!(back.contains("back after"), "{back}");
}

/// Live percentiles as a run of `done` requests would show them.
fn live(done: u64) -> crate::load::Live {
    let ms = |v: Vec<u64>| {
        crate::load::Percentiles::of(
            v.into_iter()
                .map(std::time::Duration::from_millis)
                .collect(),
        )
    };
    crate::load::Live {
        ttft: ms((0..done).map(|i| 100 + i / 2).collect()),
        itl: ms((0..done).map(|i| 8 + i % 5).collect()),
        e2e: ms((0..done).map(|i| 400 + i).collect()),
    }
}

#[test]
fn load_view_live_and_summarised() {
    use crate::tui::action::RunsAction;
    let mut s = populated();
    s.focus = Pane::Composer;
    let plan = crate::load::LoadPlan::default();
    let effects = s.update(Action::Runs(RunsAction::StartLoad(plan.clone())));
    assert!(matches!(
        &effects[..],
        [crate::tui::effect::Effect::Load { plan: p, .. }] if *p == plan
    ));
    // Fifteen reports a tenth of a second apart, the pace rising then easing.
    let dones = [
        2u64, 6, 12, 20, 30, 41, 52, 63, 73, 82, 90, 98, 105, 113, 120,
    ];
    for (i, done) in dones.into_iter().enumerate() {
        s.update(Action::Runs(RunsAction::LoadProgress(
            crate::load::Progress {
                done,
                failed: 2,
                in_flight: 8,
                elapsed: std::time::Duration::from_millis(100 * (i as u64 + 1)),
                live: live(done),
            },
        )));
    }
    snapshot("load_live", render_at(&mut s, 80, 24));
    let samples: Vec<crate::load::Sample> = (0..200u64)
        .map(|i| super::snapshots_test::answered(2, 400 + i, 100 + i / 2, "ok"))
        .collect();
    let summary = crate::load::Summary::of(
        &samples,
        std::time::Duration::from_secs(3),
        0,
        &Default::default(),
    );
    s.update(Action::Runs(RunsAction::LoadProgress(
        crate::load::Progress {
            done: 200,
            failed: 0,
            in_flight: 0,
            elapsed: std::time::Duration::from_secs(3),
            live: live(200),
        },
    )));
    s.update(Action::Runs(RunsAction::LoadDone(Box::new(summary))));
    snapshot("load_done", render_at(&mut s, 80, 24));
    // Esc once it is done only closes: nothing left to stop.
    assert!(s.update(Action::Runs(RunsAction::Close)).is_empty());
}
