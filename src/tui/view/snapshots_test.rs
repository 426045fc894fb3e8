//! Whole-screen snapshots at 80x24 of hand-built states.

use std::time::{Duration, SystemTime};

use ratatui::backend::TestBackend;
use ratatui::Terminal;

use super::Theme;
use crate::node::{Direction, PeerInfo};
use crate::routes::{Route, Routes};
use crate::tui::action::{Action, Pane};
use crate::tui::state::{Field, State};

pub(super) fn peer(n: u8) -> libp2p::PeerId {
    libp2p::identity::Keypair::ed25519_from_bytes([n; 32])
        .unwrap()
        .public()
        .to_peer_id()
}

fn render(state: &mut State) -> String {
    render_at(state, 80, 24)
}

/// The whole screen at `width` x `height`.
pub(super) fn render_at(state: &mut State, width: u16, height: u16) -> String {
    // A fixed clock: 10 ms after the newest call started.
    if let Some(c) = state.calls.list.back() {
        state.now = c.started + Duration::from_millis(10);
    }
    state.wall = SystemTime::UNIX_EPOCH + Duration::from_secs(1_000_000);
    let mut terminal = Terminal::new(TestBackend::new(width, height)).unwrap();
    state.screen = ratatui::layout::Rect::new(0, 0, width, height);
    let theme = Theme { color: false };
    terminal.draw(|f| super::draw(f, state, &theme)).unwrap();
    state.help_scroll_max = super::help::max_scroll(state.screen, state, &theme); // as the console does
    terminal.backend().to_string()
}

pub(super) fn snapshot(name: &str, screen: String) {
    insta::assert_snapshot!(name, screen);
}

fn empty() -> State {
    State::new(peer(1).to_string(), 1 << 20)
}

pub(super) fn populated() -> State {
    let routes = Routes::new(
        [
            (
                "health".to_string(),
                Route::new("http://127.0.0.1:8000/health", false),
            ),
            (
                "inference".to_string(),
                Route::new("http://127.0.0.1:8000/v1/chat", true),
            ),
        ]
        .into(),
    );
    let mut s = State::new(peer(1).to_string(), 1 << 20);
    let table = crate::control::RoutesSnapshot::of(&routes);
    s.update(Action::Routes(Box::new(table)));
    s.update(Action::Listening(vec![format!(
        "/ip4/127.0.0.1/tcp/4001/p2p/{}",
        peer(1)
    )]));
    let info = |n: u8, rtt: u64| PeerInfo {
        peer: peer(n),
        addr: "/ip4/127.0.0.1/tcp/4002".parse().unwrap(),
        direction: Direction::Outbound,
        connected_since: SystemTime::UNIX_EPOCH + Duration::from_secs(1_000_000 - 75),
        agent: Some("py-libp2p/0.8.1".into()),
        protocols: vec![crate::wire::PROTOCOL_V1.into()],
        listen_addrs: vec![],
        rtt_last: Some(Duration::from_micros(rtt)),
        rtt_samples: vec![Duration::from_micros(rtt)],
        pings_sent: 1,
        pings_failed: 0,
        rtt_at: None,
        ping_interval: Duration::from_secs(15),
        observed_addr: None,
    };
    s.update(Action::Peers(vec![info(2, 420), info(3, 1300)]));
    s.composer.set(
        Field::Peer,
        &format!("/ip4/127.0.0.1/tcp/4002/p2p/{}", peer(2)),
    );
    s.composer.set(Field::Route, "inference");
    s.composer.set(Field::Body, "{\"prompt\": \"hi\"}");
    s.composer.stream = true;
    s
}

/// Sends the composer's call and feeds it a finished token stream.
pub(super) fn with_finished_stream(s: &mut State) {
    with_finished_stream_of(s, &["Peers", " answer", " one", " another."]);
}

/// Sends the composer's call and feeds it `tokens` as a finished stream.
pub(super) fn with_finished_stream_of(s: &mut State, tokens: &[&str]) {
    s.update(Action::Send);
    let call = s.calls.list.iter().max_by_key(|c| c.id).unwrap();
    let (id, t0) = (call.id, call.started);
    for (i, tok) in tokens.iter().enumerate() {
        let ev = format!("data: {{\"choices\":[{{\"delta\":{{\"content\":\"{tok}\"}}}}]}}\n\n");
        s.update(Action::CallBytes {
            id,
            bytes: ev.into(),
            at: t0 + Duration::from_millis(400 + 40 * i as u64),
        });
    }
    s.update(Action::CallBytes {
        id,
        bytes: "data: [DONE]\n\n".into(),
        at: t0 + Duration::from_millis(560),
    });
    s.update(Action::CallEnded {
        id,
        failure: None,
        error: None,
        at: t0 + Duration::from_millis(561),
        server_timing: None,
    });
}

#[test]
fn empty_console() {
    snapshot("empty", render(&mut empty()));
}

#[test]
fn populated_console_with_a_finished_stream() {
    let mut s = populated();
    with_finished_stream(&mut s);
    snapshot("finished_stream", render(&mut s));
}

#[test]
fn events_view() {
    let mut s = populated();
    with_finished_stream(&mut s);
    s.focus = Pane::Output;
    s.update(Action::CycleView);
    s.update(Action::CycleView);
    snapshot("events_view", render(&mut s));
}

#[test]
fn streaming_in_flight() {
    let mut s = populated();
    s.update(Action::Send);
    let at = s.calls.list[0].started + Duration::from_millis(5);
    s.update(Action::CallBytes {
        id: 1,
        bytes: "data: {\"choices\":[{\"delta\":{\"content\":\"Tokens arrive\"}}]}\n\n".into(),
        at,
    });
    snapshot("streaming", render(&mut s));
}

#[test]
fn route_file_error_banner() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("routes.json");
    std::fs::write(&path, r#"{"health": "http://127.0.0.1:8000/health"}"#).unwrap();
    let routes = Routes::default();
    routes.load_file(&path).unwrap();
    std::fs::write(&path, "{\n  \"health\": ,\n}").unwrap();
    assert!(routes.load_file(&path).is_err());
    let mut s = State::new(peer(1).to_string(), 1 << 20);
    let table = crate::control::RoutesSnapshot::of(&routes);
    s.update(Action::Routes(Box::new(table)));
    s.focus = Pane::Routes;
    snapshot("route_error", render(&mut s));
}

#[test]
fn help_overlay() {
    let mut s = populated();
    s.update(Action::ToggleHelp);
    snapshot("help", render(&mut s));
}

#[test]
fn failed_call_and_quit_question() {
    let mut s = populated();
    s.composer.stream = false;
    s.update(Action::Send);
    // The app always reports the head (here: a 1.0.0 peer) before bytes.
    s.update(Action::CallHead {
        id: 1,
        head: crate::node::ResponseHead {
            version: crate::node::ApiVersion::V1,
            status: None,
            headers: Default::default(),
            server_timing: None,
            timeline: Default::default(),
        },
    });
    s.update(Action::CallBytes {
        id: 1,
        bytes: "Route not found".into(),
        at: s.calls.list[0].started + Duration::from_millis(3),
    });
    s.update(Action::CallEnded {
        id: 1,
        failure: None,
        error: None,
        at: s.calls.list[0].started + Duration::from_millis(4),
        server_timing: None,
    });
    assert_eq!(
        s.calls.list[0].state,
        crate::tui::state::CallState::Failed,
        "1.0.0 error text is an error"
    );
    s.update(Action::Send);
    s.update(Action::Quit);
    snapshot("failed_and_quit", render(&mut s));
}

#[test]
fn response_head_of_a_2_0_0_call() {
    let mut s = populated();
    s.composer.stream = false;
    s.update(Action::Send);
    let at = s.calls.list[0].started + Duration::from_millis(4);
    s.update(Action::CallHead {
        id: 1,
        head: crate::node::ResponseHead {
            version: crate::node::ApiVersion::V2,
            status: Some(201),
            headers: [("content-type".to_string(), "application/json".to_string())].into(),
            // A reused connection; the node's backend took 2.5 ms + 0.4 ms.
            server_timing: Some(crate::wire::frame::ServerTiming {
                read_us: 100,
                queue_us: 5,
                backend_head_us: 2_500,
                backend_body_us: 400,
            }),
            timeline: crate::node::Timeline {
                connected: Duration::from_micros(20),
                opened: Duration::from_micros(300),
                written: Some(Duration::from_micros(400)),
                head: Duration::from_micros(3_900),
            },
        },
    });
    s.update(Action::CallBytes {
        id: 1,
        bytes: "{\"ok\": true}".into(),
        at,
    });
    s.update(Action::CallEnded {
        id: 1,
        failure: None,
        error: None,
        at,
        server_timing: None,
    });
    s.focus = Pane::Output;
    snapshot("response_timing", render(&mut s));
    s.update(Action::ToggleHeaders);
    snapshot("response_head", render(&mut s));
}

#[test]
fn subnet_view_with_real_peer_state() {
    let mut s = populated();
    let text = std::fs::read_to_string(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/vectors/peer_state_dag.json"),
    )
    .unwrap();
    let dag: serde_json::Value = serde_json::from_str(&text).unwrap();
    for n in dag["nodes"].as_array().unwrap() {
        let v = crate::subnet::verify(n).unwrap();
        s.update(Action::Node(crate::node::NodeEvent::Gossip {
            topic: "peer_state".into(),
            from: peer(2),
            author: Some(v.author),
            bytes: 1400,
            rejected: None,
        }));
        s.update(Action::Node(crate::node::NodeEvent::DagNode {
            namespace: v.namespace.clone(),
            id: v.id.clone(),
            schema_id: v.schema_id.clone(),
            author: v.author,
            created_at_ms: v.created_at_ms,
            payload: v.payload.clone(),
            stored: true,
        }));
    }
    s.update(Action::Node(crate::node::NodeEvent::Gossip {
        topic: "peer_state".into(),
        from: peer(3),
        author: Some(peer(3)),
        bytes: 1400,
        rejected: Some("signature does not verify".into()),
    }));
    s.update(Action::Node(crate::node::NodeEvent::PeerEvicted {
        peer: peer(2),
        times: 2,
        every: Duration::from_secs(60),
        hint: "probably not registered on chain for this subnet".into(),
    }));
    // The evicting peer is marked in the Peers pane.
    snapshot("peers_with_eviction", render(&mut s));
    // One subnet node is also connected to us, with the API mounted.
    let author = crate::subnet::verify(&dag["nodes"][0]).unwrap().author;
    let mut seen = s.peers.list[0].clone();
    seen.peer = author;
    seen.rtt_last = Some(Duration::from_micros(850));
    s.update(Action::Peers(vec![seen]));
    // Two refreshes a minute apart: 12 messages came in between.
    let mut store = crate::subnet::DagStore::default();
    for n in dag["nodes"].as_array().unwrap() {
        store.ingest(crate::subnet::verify(n).unwrap());
    }
    let stats = || Action::SubnetStats {
        mesh: vec![("peer_state".into(), vec![peer(2), author])],
        dag: vec![("general-dag".into(), store.summary("general-dag"))],
    };
    s.update(stats());
    s.subnet.topics.get_mut("peer_state").unwrap().received += 12;
    s.now += Duration::from_secs(60);
    s.update(stats());
    s.update(Action::ToggleSubnet);
    snapshot("subnet_view", render(&mut s));
}

/// A telemetry event as a template node signs it, judged as received.
fn telemetry(key: u8, node: u64, event: &str, ts: f64, forge: bool) -> Action {
    let key = libp2p::identity::Keypair::ed25519_from_bytes([key; 32]).unwrap();
    let body = serde_json::json!({"event": event, "timestamp": ts, "host": "h", "subnet_id": 1,
        "subnet_node_id": node, "peer_id": key.public().to_peer_id().to_string(),
        "data": {"epoch": 14965251}});
    let bytes = crate::subnet::canonical::to_vec(&body).unwrap();
    let mut v = body;
    v["signature"] = hex::encode(key.sign(&bytes).unwrap()).into();
    v["pubkey"] = hex::encode(key.public().encode_protobuf()).into();
    if forge {
        v["data"]["epoch"] = 1.into();
    }
    let ev = crate::subnet::telemetry::judge("127.0.0.1:50000", &v.to_string());
    Action::Node(crate::node::NodeEvent::Telemetry(Box::new(ev)))
}

#[test]
fn events_view_with_signed_and_forged_telemetry() {
    let mut s = populated();
    s.telemetry_addr = Some("127.0.0.1:9000".into());
    s.update(telemetry(7, 1, "node_started", 1795832393.5, false));
    s.update(telemetry(8, 2, "node_started", 1795832394.0, false));
    s.update(telemetry(7, 1, "heartbeat", 1795832413.5, false));
    s.update(telemetry(8, 2, "heartbeat", 1795832414.0, true));
    s.update(Action::ToggleEvents);
    snapshot("telemetry_view", render(&mut s));
    // Filtered on the first node seen, then on the first kind seen.
    s.update(Action::EventsNextNode);
    s.update(Action::EventsNextKind);
    snapshot("telemetry_view_filtered", render(&mut s));
}

#[test]
fn events_view_says_how_to_get_telemetry() {
    let mut s = populated();
    s.update(Action::ToggleEvents);
    snapshot("telemetry_view_off", render(&mut s));
}

/// A peer's answer as a fan-out records it.
pub(super) fn answered(n: u8, e2e_ms: u64, ttft_ms: u64, body: &str) -> crate::load::Sample {
    use sha2::Digest;
    let mut s = crate::load::Sample::new(&format!("/ip4/127.0.0.1/tcp/400{n}/p2p/{}", peer(n)));
    s.status = Some(200);
    s.e2e = Duration::from_millis(e2e_ms);
    s.ttfb = Some(Duration::from_millis(ttft_ms / 2));
    s.ttft = Some(Duration::from_millis(ttft_ms));
    s.tokens = 40;
    s.bytes = body.len() as u64;
    s.body_sha256 = Some(hex::encode(sha2::Sha256::digest(body)));
    s.body_head = body.to_string().into();
    s
}

#[test]
fn fan_out_view_names_the_slow_peer_and_shows_the_differing_body() {
    use crate::tui::action::RunsAction;
    let mut s = super::snapshots_modes_test::fan_out_started();
    snapshot("fan_out_calling", render(&mut s));
    let mut failed = crate::load::Sample::new(&format!("/ip4/127.0.0.1/tcp/4009/p2p/{}", peer(9)));
    failed.error = Some("backend_unavailable".into());
    failed.e2e = Duration::from_millis(3);
    let results = crate::load::fanout::compare(vec![
        answered(2, 420, 400, "The answer is 42.\nDone.\n"),
        answered(3, 2_950, 2_900, "The answer is 42.\nDone.\n"),
        answered(4, 430, 410, "The answer is 41.\nDone.\n"),
        failed,
    ]);
    s.update(Action::Runs(RunsAction::FanOutDone(results)));
    // Slowest first; the differing peer selected, its diff shown.
    s.update(Action::Runs(RunsAction::Down));
    s.update(Action::Runs(RunsAction::ToggleDiff));
    snapshot("fan_out_compared", render(&mut s));
    // The slow peer as the reference; the differing one against it.
    s.update(Action::Runs(RunsAction::Up));
    s.update(Action::Runs(RunsAction::MarkReference));
    s.update(Action::Runs(RunsAction::Down));
    snapshot("fan_out_diff_against_a_peer", render(&mut s));
    // Marking the reference again goes back to the majority.
    s.update(Action::Runs(RunsAction::Up));
    s.update(Action::Runs(RunsAction::MarkReference));
    assert!(matches!(&s.runs, crate::tui::state::RunsView::FanOut(f) if f.reference.is_none()));
}

#[test]
fn hop_vs_direct_view_says_what_the_hop_adds() {
    use crate::tui::action::RunsAction;
    let mut s = populated();
    s.focus = Pane::Composer;
    let effects = s.update(Action::Runs(RunsAction::StartHopVsDirect));
    assert_eq!(effects.len(), 1, "{effects:?}");
    s.update(Action::Runs(RunsAction::HopVsDirectRound(1)));
    snapshot("hop_vs_direct_running", render(&mut s));
    let body = "The answer is 42.\n";
    let direct = |e2e, ttft| {
        let mut x = answered(2, e2e, ttft, body);
        x.peer = "direct".into();
        x
    };
    let result = crate::load::HopVsDirect {
        direct: vec![direct(402, 380), direct(398, 377), direct(405, 385)],
        hop: vec![
            answered(2, 409, 384, body),
            answered(2, 404, 381, body),
            answered(2, 431, 390, body),
        ],
    };
    s.update(Action::Runs(RunsAction::HopVsDirectDone(Box::new(result))));
    snapshot("hop_vs_direct_done", render(&mut s));
}
