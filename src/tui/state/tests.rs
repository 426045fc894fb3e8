//! The state's update, driven by actions and by keys through `input`.

use std::time::Instant;

use ratatui::crossterm::event::{Event, KeyCode, KeyEvent, KeyModifiers};

use super::*;
use crate::tui::action::RunsAction;
use crate::tui::input::action_for;

/// A key as the console gets it: through `input`, then `update`. `None`
/// when the key means nothing here.
fn press(s: &mut State, key: KeyEvent) -> Option<Vec<Effect>> {
    let action = action_for(s, Event::Key(key))?;
    Some(s.update(action))
}

fn state() -> State {
    State::new("me".into(), 1 << 20)
}

fn key(c: char) -> KeyEvent {
    KeyEvent::new(KeyCode::Char(c), KeyModifiers::NONE)
}

/// Points the composer at a (made-up) peer and a route.
fn aim(s: &mut State, route: &str) {
    let peer = libp2p::identity::Keypair::generate_ed25519()
        .public()
        .to_peer_id();
    s.composer
        .set(Field::Peer, &format!("/ip4/127.0.0.1/tcp/1/p2p/{peer}"));
    s.composer.set(Field::Route, route);
}

#[test]
fn tab_cycles_focus_both_ways() {
    let mut s = state();
    s.focus = Pane::Peers;
    s.update(Action::FocusNext);
    assert_eq!(s.focus, Pane::Routes);
    s.update(Action::FocusPrev);
    s.update(Action::FocusPrev);
    assert_eq!(s.focus, Pane::Log);
}

#[test]
fn typing_in_the_composer_never_fires_hotkeys() {
    let mut s = state();
    s.focus = Pane::Composer;
    s.update(Action::Activate);
    s.composer.field = Field::Route;
    for c in "quit".chars() {
        assert!(press(&mut s, key(c)).is_some());
    }
    assert!(!s.quit);
    assert_eq!(s.composer.text(Field::Route), "quit");
    press(&mut s, KeyEvent::new(KeyCode::Esc, KeyModifiers::NONE));
    assert!(!s.composer.editing);
    assert!(
        matches!(action_for(&s, Event::Key(key('q'))), Some(Action::Quit)),
        "outside editing, keys go to the keymap"
    );
}

#[test]
fn send_validates_and_creates_a_call() {
    let mut s = state();
    let effects = s.update(Action::Send);
    assert!(effects.is_empty());
    assert!(s
        .composer
        .warning
        .as_deref()
        .unwrap_or("")
        .contains("multiaddr"));
    let peer = libp2p::identity::Keypair::generate_ed25519()
        .public()
        .to_peer_id();
    s.composer
        .set(Field::Peer, &format!("/ip4/127.0.0.1/tcp/1/p2p/{peer}"));
    s.composer.set(Field::Route, "inference");
    s.composer
        .set(Field::Headers, "content-type: application/json");
    s.composer.set(Field::Body, "{not json");
    assert!(
        s.update(Action::Send).is_empty(),
        "bad JSON is flagged first"
    );
    assert!(s.composer.warning.as_deref().unwrap().contains("JSON"));
    let effects = s.update(Action::Send);
    assert!(
        matches!(
            effects.as_slice(),
            [Effect::Send { .. }, Effect::RecordHistory(_)]
        ),
        "second send goes anyway, and is recorded"
    );
    assert_eq!(s.composer.history.len(), 1);
    s.composer.set(Field::Route, "changed");
    s.update(Action::HistoryPrev);
    assert_eq!(
        s.composer.text(Field::Route),
        "inference",
        "history recalls the sent call"
    );
    assert_eq!(s.calls.list.len(), 1);
    assert_eq!(s.calls.list[0].state, CallState::Connecting);
}

#[test]
fn only_a_1_0_0_body_is_read_as_an_error_text() {
    for (version, failed) in [
        (crate::node::ApiVersion::V1, true),
        (crate::node::ApiVersion::V2, false),
    ] {
        let mut s = state();
        aim(&mut s, "echo");
        s.update(Action::Send);
        let id = s.calls.list[0].id;
        let at = s.now;
        s.update(Action::CallHead {
            id,
            head: crate::node::ResponseHead {
                version,
                status: (version == crate::node::ApiVersion::V2).then_some(200),
                headers: Default::default(),
                server_timing: None,
                timeline: Default::default(),
            },
        });
        s.update(Action::CallBytes {
            id,
            bytes: bytes::Bytes::from_static(b"Error processing request: echoed text"),
            at,
        });
        s.update(Action::CallEnded {
            id,
            failure: None,
            error: None,
            at,
            server_timing: None,
        });
        let want = if failed {
            CallState::Failed
        } else {
            CallState::Done
        };
        assert_eq!(s.calls.list[0].state, want, "{version:?}");
    }
}

#[test]
fn cancel_marks_the_call_and_asks_the_app_to_abort() {
    let mut s = state();
    aim(&mut s, "x");
    s.update(Action::Send);
    let effects = s.update(Action::CancelCall);
    assert!(matches!(effects.as_slice(), [Effect::Cancel(1)]));
    assert_eq!(s.composer.history.len(), 1);
    assert_eq!(s.calls.list[0].state, CallState::Cancelled);
    // Late bytes do not revive it.
    s.update(Action::CallBytes {
        id: 1,
        bytes: "x".into(),
        at: Instant::now(),
    });
    assert_eq!(s.calls.list[0].bytes, 0);
}

#[test]
fn quitting_with_calls_in_flight_asks_first() {
    let mut s = state();
    aim(&mut s, "x");
    s.update(Action::Send);
    assert!(s.update(Action::Quit).is_empty());
    assert_eq!(s.question, Some(Question::Quit));
    assert!(s.update(Action::Confirm(false)).is_empty());
    assert!(!s.quit);
    s.update(Action::Quit);
    assert!(matches!(
        s.update(Action::Confirm(true)).as_slice(),
        [Effect::Quit]
    ));
}

#[test]
fn route_prompt_produces_the_file_edit() {
    let mut s = state();
    s.focus = Pane::Routes;
    s.update(Action::AddRoute);
    for c in "chat http://127.0.0.1:9/v1 stream".chars() {
        press(&mut s, key(c));
    }
    let effects = press(&mut s, KeyEvent::new(KeyCode::Enter, KeyModifiers::NONE)).unwrap();
    match effects.as_slice() {
        [Effect::UpsertRoute { name, url, stream }] => {
            assert_eq!(name, "chat");
            assert_eq!(url, "http://127.0.0.1:9/v1");
            assert!(*stream);
        }
        other => panic!("unexpected {other:?}"),
    }
    s.update(Action::AddRoute);
    for c in "bad ftp://x".chars() {
        press(&mut s, key(c));
    }
    let effects = press(&mut s, KeyEvent::new(KeyCode::Enter, KeyModifiers::NONE)).unwrap();
    assert!(effects.is_empty());
    assert!(
        s.prompt.as_ref().unwrap().error.is_some(),
        "bad input keeps the prompt open with an error"
    );
}

fn enter() -> KeyEvent {
    KeyEvent::new(KeyCode::Enter, KeyModifiers::NONE)
}

/// Replaces the open prompt's text, as select-all and typing would.
fn retype(s: &mut State, text: &str) {
    let prompt = s.prompt.as_mut().expect("a prompt is open");
    prompt.input = ratatui_textarea::TextArea::from(vec![text.to_string()]);
}

#[test]
fn a_load_run_asks_how_then_runs_that_plan_and_offers_it_again() {
    use crate::load::{LoadPlan, Stop};
    let mut s = state();
    aim(&mut s, "chat");
    s.focus = Pane::Composer;
    assert!(press(&mut s, key('L')).unwrap().is_empty());
    assert_eq!(s.prompt.as_ref().unwrap().text(), "n=200 c=8");
    retype(&mut s, "c=0");
    assert!(press(&mut s, enter()).unwrap().is_empty());
    let error = s.prompt.as_ref().unwrap().error.clone().unwrap();
    assert!(error.contains("1 to 4096"), "{error}");
    retype(&mut s, "z=5s c=2");
    let effects = press(&mut s, enter()).unwrap();
    let [Effect::Load { plan, .. }] = effects.as_slice() else {
        panic!("{effects:?}")
    };
    assert_eq!(plan.stop, Stop::After(std::time::Duration::from_secs(5)));
    assert_eq!(plan.concurrency, 2);
    assert!(matches!(&s.runs, RunsView::Load(l) if l.plan == *plan));
    // Esc while it runs stops it; the next L offers the same plan.
    let esc = press(&mut s, KeyEvent::new(KeyCode::Esc, KeyModifiers::NONE));
    assert!(matches!(esc.as_deref(), Some([Effect::StopLoad])));
    press(&mut s, key('L'));
    assert_eq!(s.prompt.as_ref().unwrap().text(), "z=5s c=2");
    assert_eq!(s.load_plan, LoadPlan::parse("z=5s c=2").unwrap());
}

#[test]
fn hop_vs_direct_needs_the_route_here_and_can_be_stopped() {
    let mut s = state();
    aim(&mut s, "chat");
    s.focus = Pane::Composer;
    assert!(press(&mut s, key('D')).unwrap().is_empty());
    let notice = s.notice.clone().unwrap().0;
    assert!(notice.contains("serves no route \"chat\""), "{notice}");
    assert!(matches!(s.runs, RunsView::Hidden));

    let mut table = crate::RouteTable::new();
    table.insert(
        "chat".into(),
        crate::Route::new("http://127.0.0.1:9/v1", true),
    );
    s.update(Action::Routes(Box::new(crate::control::RoutesSnapshot {
        table,
        ..Default::default()
    })));
    let effects = press(&mut s, key('D')).unwrap();
    let [Effect::HopVsDirect { route, rounds, .. }] = effects.as_slice() else {
        panic!("{effects:?}")
    };
    assert_eq!((route.url.as_str(), *rounds), ("http://127.0.0.1:9/v1", 3));
    s.update(Action::Runs(RunsAction::HopVsDirectRound(1)));
    assert!(matches!(&s.runs, RunsView::Direct(d) if d.rounds_done == 1));
    let esc = press(&mut s, KeyEvent::new(KeyCode::Esc, KeyModifiers::NONE));
    assert!(matches!(esc.as_deref(), Some([Effect::StopLoad])));
    assert!(matches!(s.runs, RunsView::Hidden));
}

#[test]
fn a_pasted_curl_line_fills_the_composer_and_y_copies_it_as_a_command_line() {
    let mut s = state();
    let mut table = crate::RouteTable::new();
    let url = "http://127.0.0.1:8000/v1/chat/completions";
    table.insert("chat".into(), crate::Route::new(url, false));
    s.update(Action::Routes(Box::new(crate::control::RoutesSnapshot {
        table,
        ..Default::default()
    })));
    aim(&mut s, "other");
    s.focus = Pane::Composer;
    let target = s.composer.text(Field::Peer);
    s.update(Action::Paste(
        "curl https://api.example.com/v1/chat/completions \\\n -H 'Authorization: Bearer k' -sS \\\n -d '{\"stream\": true}'".into(),
    ));
    assert_eq!(
        s.composer.text(Field::Route),
        "chat",
        "our route for that URL"
    );
    assert_eq!(s.composer.text(Field::Method), "POST");
    assert_eq!(s.composer.text(Field::Headers), "Authorization: Bearer k");
    assert_eq!(s.composer.text(Field::Body), r#"{"stream": true}"#);
    assert!(s.composer.stream, "the body asks for a stream");
    let notice = s.notice.clone().unwrap().0;
    assert!(
        notice.contains("route chat") && notice.contains("ignored -sS"),
        "{notice}"
    );

    let effects = press(&mut s, key('y')).unwrap();
    let [Effect::Copy(line)] = effects.as_slice() else {
        panic!("{effects:?}")
    };
    assert_eq!(
        shlex::split(line).unwrap(),
        [
            "peerapi",
            "stream",
            &target,
            "chat",
            "-H",
            "Authorization: Bearer k",
            "-d",
            r#"{"stream": true}"#
        ]
    );
    assert!(s
        .notice
        .clone()
        .unwrap()
        .0
        .starts_with("copied: peerapi stream"));

    // A line that cannot be read changes nothing and says why.
    s.update(Action::Paste("curl -F file=@x http://h/up".into()));
    assert!(s.notice.clone().unwrap().0.contains("not supported"));
    assert_eq!(s.composer.text(Field::Route), "chat");

    // A peer's call to us has no command line.
    s.update(Action::Node(crate::NodeEvent::ServeStarted {
        id: crate::node::CallId(1),
        peer: libp2p::PeerId::random(),
        route: "chat".into(),
        method: "GET".into(),
        stream: false,
    }));
    s.focus = Pane::Calls;
    assert!(press(&mut s, key('y')).unwrap().is_empty());
    assert!(s.notice.clone().unwrap().0.contains("has no command line"));
}

#[test]
fn the_calls_list_stays_within_its_count_and_its_body_budget() {
    let mut s = state();
    s.calls.output_budget = 64 * 1024;
    aim(&mut s, "r");
    let body = bytes::Bytes::from(vec![b'x'; 10 * 1024]);
    let at = s.now;
    // 20 calls of 10 KiB each: the oldest let go of their bodies.
    for _ in 0..20 {
        s.update(Action::Send);
        let id = s.calls.list.back().unwrap().id;
        s.update(Action::CallBytes {
            id,
            bytes: body.clone(),
            at,
        });
        s.update(Action::CallEnded {
            id,
            failure: None,
            error: None,
            at,
            server_timing: None,
        });
    }
    s.update(Action::Send); // the budget is checked as a call starts
    let kept: usize = s.calls.list.iter().map(|c| c.output.kept_bytes()).sum();
    assert!(kept <= 64 * 1024, "{kept}");
    assert!(s.calls.list[0].output.released);
    assert_eq!(s.calls.list[0].bytes, 10 * 1024, "its figures stay");
    assert!(!s.calls.list[19].output.released, "the newest keep theirs");

    // Past the count, the oldest finished call goes (one in flight never
    // does); chunks still find their call among many.
    for _ in 0..crate::tui::state::MAX_CALLS {
        s.update(Action::Send);
        let id = s.calls.list.back().unwrap().id;
        s.update(Action::CallEnded {
            id,
            failure: None,
            error: None,
            at,
            server_timing: None,
        });
    }
    s.update(Action::Send);
    assert_eq!(s.calls.list.len(), crate::tui::state::MAX_CALLS);
    let newest = s.calls.list.back().unwrap().id;
    s.update(Action::CallBytes {
        id: newest,
        bytes: body.clone(),
        at,
    });
    assert_eq!(s.calls.list.back().unwrap().bytes, 10 * 1024);
}

#[test]
fn calls_other_clients_have_the_node_make_get_rows_and_ours_do_not_twice() {
    use crate::node::CallId;
    let mut s = state();
    aim(&mut s, "chat");
    let peer = libp2p::PeerId::random();
    let started = |id: u64, by: Option<&str>| {
        Action::Node(crate::NodeEvent::CallStarted {
            id: CallId(id),
            peer,
            route: "chat".into(),
            method: "POST".into(),
            stream: true,
            by: by.map(str::to_string),
        })
    };
    s.calls.me = Some("client 3 (pid 1 uid 0)".into());
    // Ours: its event may come before or after the node's number for it.
    s.update(Action::Send);
    let ours = s.calls.list[0].id;
    s.update(started(7, Some("client 3 (pid 1 uid 0)")));
    s.update(Action::CallNumbered {
        id: ours,
        node_call: CallId(7),
    });
    assert_eq!(s.calls.list.len(), 1, "our own call is listed once");
    assert_eq!(s.calls.list[0].node_call, Some(CallId(7)));
    // The node's own calls (a load run's) are not listed.
    s.update(started(8, None));
    assert_eq!(s.calls.list.len(), 1);
    // Another client's: a row that follows the node's events.
    s.update(started(9, Some("pid 42 uid 0")));
    assert_eq!(s.calls.list.len(), 2);
    s.update(Action::Node(crate::NodeEvent::CallResponding {
        id: CallId(9),
        protocol: "/peerapi/api/2.0.0".into(),
        status: Some(200),
    }));
    assert_eq!(s.calls.list[1].state, CallState::Streaming);
    s.update(Action::Node(crate::NodeEvent::CallFinished {
        id: CallId(9),
        bytes: 120,
        chunks: 4,
        elapsed: std::time::Duration::from_millis(30),
    }));
    let theirs = &s.calls.list[1];
    assert_eq!(
        (theirs.state, theirs.status, theirs.bytes),
        (CallState::Done, Some(200), 120)
    );
    assert_eq!(theirs.by.as_deref(), Some("pid 42 uid 0"));
    // One still open when the console falls behind: its end is unknown.
    s.update(started(10, Some("pid 42 uid 0")));
    s.update(Action::NodeEventsMissed(5));
    let lost = &s.calls.list[2];
    assert_eq!(lost.state, CallState::Failed);
    assert!(lost.error.as_deref().unwrap().contains("not seen"));
    // Ours ends as its answer says.
    s.update(Action::CallEnded {
        id: ours,
        failure: None,
        error: None,
        at: s.now,
        server_timing: None,
    });
    assert_eq!(s.calls.list[0].state, CallState::Done);
    assert_eq!(s.calls.list.len(), 3);
}
