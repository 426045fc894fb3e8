//! The messages survive the socket's encoding whole: bodies as bytes,
//! events, runs' results.

use std::time::Duration;

use bytes::Bytes;

use super::frame::{decode, encode};
use super::message::*;
use crate::load::fanout::{PeerResult, RowUpdate};
use crate::load::Sample;
use crate::node::{CallId, CallRequest, NodeEvent, ServeOutcome};

fn round_trip<T: serde::Serialize + serde::de::DeserializeOwned + std::fmt::Debug>(m: &T) {
    let bytes = encode(m).expect("encodes");
    let back: T = decode(&bytes).expect("decodes");
    assert_eq!(format!("{m:?}"), format!("{back:?}"));
}

fn peer() -> libp2p::PeerId {
    libp2p::identity::Keypair::generate_ed25519()
        .public()
        .to_peer_id()
}

#[test]
fn every_kind_of_message_comes_back_as_it_went() {
    let body = Bytes::from_static(b"\xff\x00not utf-8\xfe");
    let spec = CallSpec {
        target: format!("/ip4/127.0.0.1/tcp/4001/p2p/{}", peer()),
        request: CallRequest::from_parts("inference", "POST", Default::default(), body.clone()),
        stream: true,
    };
    round_trip(&ToNode::Hello {
        version: CONTROL_VERSION,
        role: Role::Observe,
        quiet: true,
    });
    round_trip(&ToNode::Request {
        id: 7,
        request: Box::new(Request::Call(spec.clone())),
    });
    round_trip(&ToNode::Request {
        id: 8,
        request: Box::new(Request::Load {
            spec,
            plan: Default::default(),
        }),
    });
    round_trip(&FromNode::Part {
        id: 7,
        part: Part::Bytes(body.clone()),
    });
    round_trip(&FromNode::Update(Update::Event(NodeEvent::ServeFinished {
        id: CallId(3),
        outcome: ServeOutcome::Refused {
            reason: "node overloaded".into(),
        },
        bytes: 12,
        elapsed: Duration::from_micros(1500),
        backend_first_byte: Some(Duration::from_micros(700)),
    })));
    round_trip(&FromNode::Update(Update::Event(NodeEvent::DagNode {
        namespace: "ns".into(),
        id: "a".into(),
        schema_id: "s".into(),
        author: peer(),
        created_at_ms: 1,
        payload: serde_json::json!({"x": [1, 2.5, "y"]}),
        stored: true,
    })));
    let sample = Sample {
        peer: "p".into(),
        e2e: Duration::from_millis(20),
        ttft: Some(Duration::from_millis(3)),
        itl: vec![Duration::from_micros(900); 3],
        tokens: 4,
        body_head: body,
        ..Default::default()
    };
    round_trip(&FromNode::Part {
        id: 9,
        part: Part::FanOutRow {
            index: 2,
            update: RowUpdate::Done(Box::new(sample.clone())),
        },
    });
    round_trip(&FromNode::Done {
        id: 9,
        reply: Reply::FanOutDone(vec![PeerResult {
            sample,
            tokens_per_sec: Some(1.5),
            same_as_majority: None,
        }]),
    });
    round_trip(&FromNode::Update(Update::Snapshot(Box::default())));
    round_trip(&FromNode::Update(Update::Gap { missed: 12 }));
}

#[test]
fn a_frame_that_is_not_a_message_is_an_error_not_a_panic() {
    for garbage in [&b""[..], b"\xff\xff\xff", b"hello", &[0x9f; 64]] {
        assert!(decode::<ToNode>(garbage).is_err(), "{garbage:?}");
    }
}

#[test]
fn a_control_directory_is_ours_alone_or_ours_and_the_admitted_groups() {
    use std::os::unix::fs::{MetadataExt, PermissionsExt};
    let top = tempfile::tempdir().unwrap();
    let dir = top.path().join("ctl");
    super::socket::private_dir(&dir, None).expect("made private");
    let meta = std::fs::metadata(&dir).unwrap();
    assert_eq!(meta.permissions().mode() & 0o777, 0o700);
    let gid = meta.gid();
    let with_mode = |m: u32| {
        std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(m)).unwrap();
    };
    for (mode, group, ok) in [
        (0o755, None, false),
        (0o701, None, false),
        (0o750, None, false),
        (0o750, Some(gid), true),
        (0o750, Some(gid.wrapping_add(1)), false),
        (0o770, Some(gid), false),
        (0o751, Some(gid), false),
    ] {
        with_mode(mode);
        let result = super::socket::private_dir(&dir, group);
        assert_eq!(
            result.is_ok(),
            ok,
            "mode {mode:o} group {group:?}: {result:?}"
        );
    }
}

/// What a node answers a client's hello with: full control.
fn full_hello() -> FromNode {
    let node = NodeInfo {
        peer_id: peer(),
        version: "0".into(),
        name: None,
        listen: vec![],
        telemetry: None,
    };
    FromNode::Hello {
        version: CONTROL_VERSION,
        role: Role::Full,
        node,
        client: "client 1".into(),
    }
}

#[tokio::test]
async fn a_request_on_a_link_whose_node_went_away_fails_at_once() {
    let (to_node, mut node_reads) = tokio::sync::mpsc::channel(8);
    let (node_writes, from_node) = tokio::sync::mpsc::channel(8);
    // A node that says hello, then goes away while its writer (the socket's
    // write half) still accepts messages: what a killed process looks like.
    let node = tokio::spawn(async move {
        let _hello = node_reads.recv().await;
        node_writes.send(full_hello()).await.unwrap();
        node_reads
    });
    let (link, _updates) = super::NodeLink::over(to_node, from_node, Role::Full)
        .await
        .unwrap();
    let _still_reading = node.await.unwrap();
    // The dispatcher notices the closed stream on its own task.
    let mut reply = Reply::Text(Ok(String::new()));
    for _ in 0..100 {
        reply = tokio::time::timeout(Duration::from_secs(5), link.request(Request::Stats).reply())
            .await
            .expect("answered at once, not left waiting");
        if matches!(reply, Reply::Refused(_)) {
            break;
        }
    }
    assert!(
        matches!(&reply, Reply::Refused(why) if why.contains("gone")),
        "{reply:?}"
    );
}

#[tokio::test]
async fn a_client_that_dropped_its_updates_still_gets_its_answers() {
    let (to_node, mut node_reads) = tokio::sync::mpsc::channel(8);
    let (node_writes, from_node) = tokio::sync::mpsc::channel(8);
    let node = tokio::spawn(async move {
        let _hello = node_reads.recv().await;
        node_writes.send(full_hello()).await.unwrap();
        // More updates than the client's queue holds, then the answer.
        let Some(ToNode::Request { id, .. }) = node_reads.recv().await else {
            panic!("a request");
        };
        for missed in 0..(super::service::DEFAULT_QUEUED_MESSAGES as u64 + 10) {
            node_writes
                .send(FromNode::Update(Update::Gap { missed }))
                .await
                .unwrap();
        }
        let done = FromNode::Done {
            id,
            reply: Reply::Text(Ok("answered".into())),
        };
        node_writes.send(done).await.unwrap();
        node_reads
    });
    let (link, updates) = super::NodeLink::over(to_node, from_node, Role::Full)
        .await
        .unwrap();
    drop(updates);
    let reply = tokio::time::timeout(Duration::from_secs(5), link.request(Request::Stats).reply())
        .await
        .expect("answered, not stuck behind updates no one reads");
    assert!(
        matches!(&reply, Reply::Text(Ok(t)) if t == "answered"),
        "{reply:?}"
    );
    let _ = node.await;
}
