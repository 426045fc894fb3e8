//! A strict subnet (py-libp2p peers that serve and keep only registered
//! peer ids) from an attached console's side: its calls are the node's, so
//! they pass where a console with a node of its own is refused.

use peerapi::control::{client, Answer, CallSpec, Part, Reply, Request, Role};

use crate::common::{demo_backend, node_process_with, within};
use crate::python::{python_for, PyHost, PyLibp2p};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_attached_consoles_calls_pass_a_strict_subnet_that_refuses_a_console_of_its_own() {
    let backend = demo_backend().await;
    for version in [PyLibp2p::V081, PyLibp2p::V060] {
        let dir = tempfile::tempdir().unwrap();
        let own = dir.path().join("routes.json");
        std::fs::write(&own, "{}").unwrap();
        let socket = dir.path().join("ctl").join("a.sock");
        let (_a, a_addr) = node_process_with(&own, &["--control", socket.to_str().unwrap()]);
        let registered = crate::common::peer_id_of(&a_addr).to_string();
        let mut strict = PyHost::serve(
            &python_for(version),
            &backend.routes(),
            &["--evict-every", "0.5", "--keep", &registered],
        )
        .await;

        // The attached console's call: made by the registered node.
        let (link, _updates) = within(client::connect_socket(&socket, Role::Full))
            .await
            .expect("the node answers");
        let spec = CallSpec {
            target: strict.addr.to_string(),
            request: peerapi::node::CallRequest::from_parts(
                "inference",
                "POST",
                [("content-type".to_string(), "application/json".to_string())].into(),
                r#"{"stream": true, "messages": [{"role": "user", "content": "hi"}]}"#,
            ),
            stream: true,
        };
        let mut pending = link.request(Request::Call(spec.clone()));
        let mut body = Vec::new();
        let ended = within(async {
            loop {
                match pending.next().await.expect("an answer") {
                    Answer::Part(Part::Bytes(b)) => body.extend_from_slice(&b),
                    Answer::Part(_) => {}
                    Answer::Done(reply) => return reply,
                }
            }
        })
        .await;
        assert!(
            matches!(ended, Reply::CallEnded { error: None, .. }),
            "{version:?}: {ended:?}"
        );
        assert!(
            String::from_utf8_lossy(&body).contains("data:"),
            "{version:?}: tokens through the strict peer"
        );

        // A console with a node of its own: another peer id, refused.
        let mine = crate::common::client().await;
        let refused = within(mine.handle().stream_full(&strict.addr, spec.request)).await;
        let refused = match refused {
            Err(e) => e.to_string(),
            Ok((_, mut chunks)) => {
                use futures::StreamExt;
                let mut got = Vec::new();
                let mut error = None;
                while let Some(c) = within(chunks.next()).await {
                    match c {
                        Ok(b) => got.extend_from_slice(&b),
                        Err(e) => {
                            error = Some(e.to_string());
                            break;
                        }
                    }
                }
                assert!(
                    got.is_empty(),
                    "{version:?}: an unregistered caller got an answer"
                );
                error.unwrap_or_else(|| "ended without a byte".into())
            }
        };
        assert!(!refused.is_empty(), "{version:?}");
        // Refused by the handler, or evicted first (every 0.5 s): either
        // way the strict peer says so.
        let evicted = format!("EVICTED {}", mine.handle().local_peer_id());
        strict
            .process
            .read_until("the refusal", |l| {
                (l.starts_with("REFUSED") || l.starts_with(&evicted)).then_some(())
            })
            .await;
        strict.assert_healthy(&format!("{version:?} after both callers"));
        drop(mine);
    }
}
