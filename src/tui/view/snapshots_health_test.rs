//! The Health view's snapshots: the table at 80x24 and 160x48, one node's
//! history, and a node that does not probe.

use super::snapshots_test::{populated, render_at, snapshot};
use crate::health::store::Change;
use crate::health::table::NodeHealth;
use crate::health::{Latest, Verdict};
use crate::tui::action::{Action, HealthAction};

/// The clock `render_at` sets: 1,000,000 s after the epoch.
const NOW: i64 = 1_000_000;

fn row(n: u8, verdict: Verdict, availability: f64, rtt: f64, reason: &str) -> NodeHealth {
    use crate::health::dag::DagSync;
    let dag = match n {
        2 => None,
        3 => Some(DagSync::Ahead { heads: 2 }),
        _ => Some(DagSync::InStep),
    };
    NodeHealth {
        peer: format!("12D3KooWNode{n:02}xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxPeer{n:02}"),
        verdict,
        reason: reason.into(),
        last_probe_s: NOW - 20,
        probes: 1440,
        availability,
        rtt_p50_ms: Some(rtt),
        rtt_p99_ms: Some(rtt * 3.0),
        probe_p50_ms: Some(rtt * 2.0),
        probe_p99_ms: Some(rtt * 5.0),
        rtt_recent_ms: (0..24)
            .map(|i| rtt + f64::from(i % 5) * rtt / 4.0)
            .collect(),
        first_seen_s: NOW - 6 * 86_400,
        last_change: Some(Change {
            peer: String::new(),
            at_s: NOW - 3 * 3600,
            old: Some(Verdict::Online),
            new: verdict,
            reason: reason.into(),
        }),
        was_online: true,
        dag,
    }
}

fn with_health() -> crate::tui::state::State {
    let mut s = populated();
    s.update(Action::Health(HealthAction::Toggle));
    let latest = Latest {
        rounds: 1440,
        interval_secs: 60.0,
        rows: vec![
            row(1, Verdict::Online, 1.0, 12.0, ""),
            row(
                2,
                Verdict::Unreachable,
                0.62,
                48.0,
                "dial 10.0.0.7:31330: connection refused",
            ),
            row(3, Verdict::Degraded, 0.99, 1450.0, "ping 1450 ms"),
            row(4, Verdict::Joining, 1.0, 31.0, "announces JOINING"),
        ],
        reachability: Some(crate::health::reach::Reachability {
            state: crate::health::reach::ReachState::Unknown,
            reason: "we dialled all 4 connected peers, and none offers AutoNAT (template nodes do not run it)".into(),
            observed: vec![crate::health::reach::Observed {
                addr: "/ip4/203.0.113.7/tcp/4001".into(),
                peers: 3,
            }],
            inbound_peers: 0,
            autonat_peers: 0,
            connected: 4,
            autonat: vec![],
        }),
        ..Latest::default()
    };
    s.update(Action::Health(HealthAction::Report(Box::new(Some(latest)))));
    s
}

#[test]
fn health_view_at_80x24_and_160x48() {
    let mut s = with_health();
    let small = render_at(&mut s, 80, 24);
    assert!(
        small.contains("4 nodes · 1 online · 1 joining · 1 degraded · 1 unreachable"),
        "{small}"
    );
    snapshot("health_80x24", small);
    snapshot("health_160x48", render_at(&mut s, 160, 48));
}

#[test]
fn one_nodes_history_and_a_node_that_does_not_probe() {
    let mut s = with_health();
    // Worst first: the unreachable node is selected.
    s.update(Action::Health(HealthAction::Detail));
    let screen = render_at(&mut s, 80, 24);
    assert!(screen.contains("62.0% available over"), "{screen}");
    snapshot("health_node_history", screen);

    let mut off = populated();
    off.update(Action::Health(HealthAction::Toggle));
    off.update(Action::Health(HealthAction::Report(Box::new(None))));
    let screen = render_at(&mut off, 80, 24);
    assert!(
        screen.contains("start it with `peerapi node --health`"),
        "{screen}"
    );
}

#[test]
fn s_sorts_by_availability_and_keeps_the_selection() {
    let mut s = with_health();
    s.update(Action::Health(HealthAction::Down)); // the degraded node
    s.update(Action::Health(HealthAction::NextSort));
    assert_eq!(
        s.health.rows[0].verdict,
        Verdict::Unreachable,
        "least available first"
    );
    assert_eq!(s.health.selected().unwrap().verdict, Verdict::Degraded);
}

#[test]
fn slash_filters_the_rows_and_says_how_many_match() {
    let mut s = with_health();
    s.update(Action::Health(HealthAction::OpenFilter));
    assert!(s.prompt.is_some(), "/ asks for the filter");
    for c in "rtt<".chars() {
        s.update(Action::PromptKey(
            ratatui::crossterm::event::KeyEvent::from(ratatui::crossterm::event::KeyCode::Char(c)),
        ));
    }
    s.update(Action::PromptSubmit);
    let error = s.prompt.as_ref().and_then(|p| p.error.clone());
    assert!(
        error.is_some_and(|e| e.contains("not a duration")),
        "a bad filter is said, the prompt stays"
    );
    s.update(Action::PromptCancel);
    assert_eq!(s.health.rows.len(), 4, "the rows are as they were");
    s.health
        .set_filter(crate::tui::state::PeerFilter::parse("rtt>40ms").unwrap());
    let peers: Vec<Verdict> = s.health.rows.iter().map(|r| r.verdict).collect();
    assert_eq!(peers, [Verdict::Unreachable, Verdict::Degraded]);
    s.health
        .set_filter(crate::tui::state::PeerFilter::parse("ahead").unwrap());
    assert_eq!(s.health.rows.len(), 1);
    let screen = render_at(&mut s, 80, 24);
    assert!(screen.contains("1 of 4 nodes match /ahead"), "{screen}");
    s.health
        .set_filter(crate::tui::state::PeerFilter::parse("nothing-like-this").unwrap());
    let screen = render_at(&mut s, 80, 24);
    assert!(screen.contains("no node matches the filter"), "{screen}");
}
