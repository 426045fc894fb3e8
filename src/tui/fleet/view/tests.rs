//! Snapshots of the fleet view: four nodes (fast, slow, down over ssh,
//! not reached yet), at 80x24 and 160x48, filtered, and its help.

use std::collections::BTreeMap;
use std::time::{Duration, Instant, SystemTime};

use ratatui::backend::TestBackend;
use ratatui::crossterm::event::{KeyCode, KeyEvent, KeyModifiers};
use ratatui::Terminal;

use crate::control::{NodeInfo, NodeStats, Role};
use crate::fleet::{Context, Fleet, Probe};
use crate::node::recent::ReloadMark;
use crate::tui::fleet::{FleetView, Step};
use crate::tui::view::Theme;

const NOW_S: u64 = 1_000_000;

fn context(name: &str, target: &str, labels: &[(&str, &str)]) -> Context {
    Context {
        name: name.into(),
        target: target.into(),
        labels: labels
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect::<BTreeMap<_, _>>(),
        read_only: false,
        color: None,
    }
}

fn up(seed: u8, p99_ms: u64, calls: u64, errors: u64) -> Probe {
    let mut stats = NodeStats {
        uptime: Duration::from_secs(3 * 3600 + 120),
        connected_peers: 5,
        routes: 2,
        roster_size: 4,
        subnet_id: Some(3),
        own_state: Some("ONLINE".into()),
        health: Some(crate::control::stats::HealthCounts {
            probed: 4,
            down: usize::from(seed % 2),
        }),
        last_reload: Some(ReloadMark {
            ok: true,
            at_ms: (NOW_S - 90) * 1000,
            error: None,
        }),
        ..Default::default()
    };
    stats.served.window_secs = 60;
    stats.served.calls = calls;
    stats.served.errors = errors;
    stats.served.p50 = Some(Duration::from_millis(p99_ms / 4));
    stats.served.p99 = Some(Duration::from_millis(p99_ms));
    stats.served.backend_first_byte_p50 = Some(Duration::from_millis(p99_ms / 8));
    Probe::Up {
        info: Box::new(NodeInfo {
            peer_id: libp2p::identity::Keypair::ed25519_from_bytes([seed; 32])
                .unwrap()
                .public()
                .to_peer_id(),
            version: "0.1.0".into(),
            name: None,
            listen: vec![],
            telemetry: None,
        }),
        role: Role::Full,
        stats: Box::new(stats),
    }
}

fn view() -> FleetView {
    let now = Instant::now();
    let mut fleet = Fleet::new(
        vec![
            context(
                "boot",
                "unix:/run/peerapi/boot.sock",
                &[("subnet", "3"), ("role", "bootnode")],
            ),
            context(
                "infer-1",
                "unix:/run/peerapi/infer-1.sock",
                &[("subnet", "3"), ("role", "inference")],
            ),
            context(
                "val-eu",
                "ssh://ops@10.0.0.7:2222/validator",
                &[("subnet", "3"), ("role", "validator")],
            ),
            context("val-us", "ssh://ops@10.0.9.9/validator", &[("subnet", "7")]),
        ],
        now,
    );
    fleet.apply(0, up(1, 12, 60, 0), now);
    fleet.apply(1, up(2, 1800, 1230, 37), now);
    fleet.apply(
        2,
        Probe::Down {
            reason: "ssh to ops@10.0.0.7 failed: ssh: connect to host 10.0.0.7 port 2222: Connection refused".into(),
        },
        now,
    );
    FleetView::new(fleet)
}

fn render(view: &FleetView, width: u16, height: u16) -> String {
    let mut terminal = Terminal::new(TestBackend::new(width, height)).unwrap();
    let now = SystemTime::UNIX_EPOCH + Duration::from_secs(NOW_S);
    terminal
        .draw(|f| super::draw(f, view, now, &Theme { color: false }))
        .unwrap();
    terminal.backend().to_string()
}

fn key(view: &mut FleetView, code: KeyCode) -> Step {
    view.key(KeyEvent::new(code, KeyModifiers::NONE))
}

#[test]
fn four_nodes_at_80x24_and_160x48() {
    let v = view();
    let small = render(&v, 80, 24);
    assert!(small.contains("4 nodes, 1 down"));
    insta::assert_snapshot!("fleet_80x24", small);
    let large = render(&v, 160, 48);
    assert!(
        large.contains("ssh to ops@10.0.0.7 failed: ssh: connect to host"),
        "the reason shows in its row at 160:\n{large}"
    );
    insta::assert_snapshot!("fleet_160x48", large);
    // Selected, a down node says all of why, at any width.
    let mut v = v;
    key(&mut v, KeyCode::Down);
    key(&mut v, KeyCode::Down);
    let selected = render(&v, 80, 24);
    assert!(selected.contains("down: ssh to ops@10.0.0.7 failed: ssh: connect to host"));
    assert!(selected.contains("Connection refused"));
    insta::assert_snapshot!("fleet_down_row_selected", selected);
}

#[test]
fn filtered_and_sorted_by_p99_the_slow_node_comes_first() {
    let mut v = view();
    key(&mut v, KeyCode::Char('/'));
    for c in "subnet=3 p99>500ms".chars() {
        key(&mut v, KeyCode::Char(c));
    }
    key(&mut v, KeyCode::Enter);
    assert_eq!(v.shown(), vec![1]);
    insta::assert_snapshot!("fleet_filtered", render(&v, 120, 12));
    key(&mut v, KeyCode::Esc);
    for _ in 0..4 {
        key(&mut v, KeyCode::Char('s'));
    }
    assert_eq!(v.shown()[0], 1, "sorted by p99, the slow node first");
    assert_eq!(key(&mut v, KeyCode::Enter), Step::Attach(1));
}

#[test]
fn a_bad_filter_keeps_the_old_one_and_says_why() {
    let mut v = view();
    key(&mut v, KeyCode::Char('/'));
    for c in "colour>3".chars() {
        key(&mut v, KeyCode::Char(c));
    }
    key(&mut v, KeyCode::Enter);
    assert!(v.typing.is_some(), "still typing");
    assert!(v
        .notice
        .as_deref()
        .unwrap_or_default()
        .contains("does not compare"));
    assert_eq!(v.shown().len(), 4);
}

#[test]
fn the_help_names_the_keys_and_the_filter_words() {
    let mut v = view();
    key(&mut v, KeyCode::Char('?'));
    insta::assert_snapshot!("fleet_help", render(&v, 100, 30));
    assert_eq!(key(&mut v, KeyCode::Char('q')), Step::Quit);
}

#[test]
fn the_fleet_wide_panes_name_each_node_and_follow_only_while_open() {
    use crate::fleet::follow::Heard;
    let mut v = view();
    assert_eq!(key(&mut v, KeyCode::Char('c')), Step::Follow(true));
    let at = |ms: u64| SystemTime::UNIX_EPOCH + Duration::from_millis(NOW_S * 1000 - 5000 + ms);
    let feed = v.feed.as_mut().unwrap();
    let served = |ms, route: &str, outcome: &str, elapsed_ms| Heard::Served {
        at: at(ms),
        peer: "12D3KooWCallerPeerXyz1".into(),
        route: route.into(),
        outcome: outcome.into(),
        elapsed: Duration::from_millis(elapsed_ms),
        bytes: 532,
    };
    feed.hear(0, served(0, "health", "ok 200", 3));
    feed.hear(1, served(120, "inference", "ok 200", 1800));
    feed.hear(
        1,
        served(250, "inference", "failed: upstream_timeout: 30s", 30_000),
    );
    let log = |ms, level: &str, line: &str| Heard::Log {
        at: at(ms),
        level: level.into(),
        line: line.into(),
    };
    feed.hear(
        0,
        log(10, "INFO", "served peer=12D3…Xyz1 route=health ok 200"),
    );
    feed.hear(
        1,
        log(260, "WARN", "backend timed out after 30s route=inference"),
    );
    feed.hear(
        2,
        Heard::Lost {
            at: at(300),
            why: "the node's connection closed".into(),
        },
    );
    insta::assert_snapshot!("fleet_calls_pane", render(&v, 100, 30));
    assert_eq!(
        key(&mut v, KeyCode::Char('l')),
        Step::Stay,
        "switching panes keeps following"
    );
    insta::assert_snapshot!("fleet_logs_pane", render(&v, 100, 30));
    assert_eq!(key(&mut v, KeyCode::Char('l')), Step::Follow(false));
    assert!(v.feed.is_none());
}

#[test]
fn a_fleet_wide_reload_asks_first_and_shows_one_row_per_node() {
    use crate::fleet::follow::Heard;
    let mut v = view();
    key(&mut v, KeyCode::Char('/'));
    for c in "subnet=3".chars() {
        key(&mut v, KeyCode::Char(c));
    }
    key(&mut v, KeyCode::Enter);
    assert_eq!(key(&mut v, KeyCode::Char('R')), Step::Stay);
    assert!(render(&v, 100, 30).contains("reload the route file on 3 nodes (the rows shown)? y/n"));
    assert_eq!(
        key(&mut v, KeyCode::Char('n')),
        Step::Stay,
        "anything but y cancels"
    );
    key(&mut v, KeyCode::Char('R'));
    assert_eq!(key(&mut v, KeyCode::Char('y')), Step::Reload(vec![0, 1, 2]));
    let at = SystemTime::UNIX_EPOCH + Duration::from_secs(NOW_S);
    let feed = v.feed.as_mut().expect("the actions pane opened");
    feed.hear(
        0,
        Heard::Action {
            at,
            ok: true,
            text: "reload routes: reloaded: 2 routes, no change".into(),
        },
    );
    feed.hear(
        1,
        Heard::Action {
            at,
            ok: false,
            text: "reload routes: refused: the context is read-only".into(),
        },
    );
    insta::assert_snapshot!("fleet_actions_pane", render(&v, 100, 30));
    // The calls pane needs following, which the actions pane did not start.
    assert_eq!(key(&mut v, KeyCode::Char('c')), Step::Follow(true));
}

#[test]
fn a_context_colour_marks_its_name_and_nothing_else() {
    use ratatui::style::Color;
    let mut v = view();
    v.fleet.rows[0].context.color = Some("green".into());
    v.fleet.rows[1].context.color = Some("not a colour".into());
    let mut terminal = Terminal::new(TestBackend::new(80, 24)).unwrap();
    let now = SystemTime::UNIX_EPOCH + Duration::from_secs(NOW_S);
    terminal
        .draw(|f| super::draw(f, &v, now, &Theme { color: true }))
        .unwrap();
    let buffer = terminal.backend().buffer();
    // Row 3 is boot's (status line, border, header), row 4 infer-1's.
    assert_eq!(buffer[(1, 3)].symbol(), "b");
    assert_eq!(buffer[(1, 3)].fg, Color::Green);
    assert_ne!(buffer[(10, 3)].fg, Color::Green, "only the name");
    assert_eq!(buffer[(1, 4)].symbol(), "i");
    assert_eq!(buffer[(1, 4)].fg, Color::Reset, "an unknown colour is none");
}

#[test]
fn f_types_a_fan_out_asks_first_and_offers_it_again() {
    let mut v = view();
    key(&mut v, KeyCode::Char('F'));
    for c in "stream inference {}".chars() {
        key(&mut v, KeyCode::Char(c));
    }
    assert!(render(&v, 100, 30).contains("fan out [stream] ROUTE [BODY]: stream inference {}"));
    assert_eq!(key(&mut v, KeyCode::Enter), Step::Stay);
    assert!(render(&v, 100, 30)
        .contains("stream inference from 4 nodes (the rows shown) to each one's API peers? y/n"));
    let ask = crate::fleet::actions::FanOutAsk::parse("stream inference {}").unwrap();
    assert_eq!(
        key(&mut v, KeyCode::Char('y')),
        Step::FanOut(vec![0, 1, 2, 3], ask)
    );
    key(&mut v, KeyCode::Char('F'));
    assert!(
        matches!(&v.typing, Some((super::Typing::FanOut, t)) if t == "stream inference {}"),
        "the last one is offered again"
    );
    let mut empty = view();
    key(&mut empty, KeyCode::Char('F'));
    key(&mut empty, KeyCode::Enter);
    assert!(
        empty.notice.as_deref().unwrap_or("").contains("ROUTE"),
        "{:?}",
        empty.notice
    );
}
