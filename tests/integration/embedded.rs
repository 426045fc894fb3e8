//! `ApiProtocol` in a plain rust-libp2p swarm (stock TCP, Noise, yamux and
//! identify; not our `Node`): it serves its route table to a peerapi node
//! on both protocol versions, and its client calls the node back over the
//! same connection.

use futures::StreamExt;
use libp2p::swarm::{NetworkBehaviour, SwarmEvent};
use libp2p::{identify, noise, tcp, yamux, Multiaddr};
use peerapi::node::ProtocolChoice;
use peerapi::protocol::{ApiProtocol, ApiProtocolConfig};
use peerapi::{CallRequest, Routes};

use crate::common::{client_speaking, demo_backend, serving_node, within};

#[derive(NetworkBehaviour)]
struct Plain {
    identify: identify::Behaviour,
    api: ApiProtocol,
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn api_protocol_serves_and_calls_from_a_plain_swarm() {
    let demo = demo_backend().await;
    let config = ApiProtocolConfig {
        routes: Routes::new(demo.routes()),
        ..ApiProtocolConfig::default()
    };
    let api = ApiProtocol::new(config).expect("the protocol builds");
    let api_client = api.client();
    let mut served = api.subscribe();
    let mut swarm = libp2p::SwarmBuilder::with_new_identity()
        .with_tokio()
        .with_tcp(
            tcp::Config::default(),
            noise::Config::new,
            yamux::Config::default,
        )
        .unwrap()
        .with_behaviour(|key| Plain {
            identify: identify::Behaviour::new(identify::Config::new(
                "/ipfs/id/1.0.0".into(),
                key.public(),
            )),
            api,
        })
        .unwrap()
        .build();
    let plain_peer = *swarm.local_peer_id();
    swarm
        .listen_on("/ip4/127.0.0.1/tcp/0".parse().unwrap())
        .unwrap();
    let listen: Multiaddr = within(async {
        loop {
            if let SwarmEvent::NewListenAddr { address, .. } = swarm.select_next_some().await {
                return address;
            }
        }
    })
    .await;
    // The plain swarm runs as its owner would run it; the test hears of
    // its new connections.
    let (connected_tx, mut connected) = tokio::sync::mpsc::unbounded_channel();
    let driver = tokio::spawn(async move {
        loop {
            if let SwarmEvent::ConnectionEstablished { peer_id, .. } =
                swarm.select_next_some().await
            {
                let _ = connected_tx.send(peer_id);
            }
        }
    });
    let plain_addr: Multiaddr = format!("{listen}/p2p/{plain_peer}").parse().unwrap();

    for choice in [ProtocolChoice::V2, ProtocolChoice::V1] {
        let node = client_speaking(choice).await;
        let h = node.handle();
        let body = within(
            h.call(
                &plain_addr,
                CallRequest::new("echo")
                    .method("POST")
                    .body("from the node"),
            ),
        )
        .await
        .unwrap_or_else(|e| panic!("{choice:?} call to the plain swarm: {e}"));
        assert_eq!(&body[..], b"from the node", "{choice:?}");
        let chunks: Vec<_> = within(
            h.stream(&plain_addr, CallRequest::new("events"))
                .await
                .expect("stream opens")
                .collect::<Vec<_>>(),
        )
        .await;
        assert!(!chunks.is_empty(), "{choice:?}: streamed chunks arrive");
        assert!(chunks.iter().all(Result::is_ok), "{choice:?}: {chunks:?}");
        node.abort();
    }
    let started = within(async {
        loop {
            if let Ok(peerapi::protocol::events::ApiEvent::ServeStarted { route, .. }) =
                served.recv().await
            {
                return route;
            }
        }
    })
    .await;
    assert_eq!(started, "echo", "the protocol reports what it served");

    // The other way: a node that dialed the plain swarm is called back
    // through the protocol's client, over that same connection.
    let (serving, _) = serving_node(demo.routes()).await;
    let serving_peer = serving.handle().local_peer_id();
    within(serving.handle().dial(&plain_addr)).await.unwrap();
    // The plain swarm learns of the connection on its own task.
    within(async { while connected.recv().await != Some(serving_peer) {} }).await;
    let response = within(
        api_client.call(
            serving_peer,
            CallRequest::new("echo")
                .method("POST")
                .body("from the plain swarm"),
        ),
    )
    .await
    .expect("the plain swarm calls the connected node");
    assert_eq!(&response.body[..], b"from the plain swarm");
    assert_eq!(
        response.head.status,
        Some(200),
        "2.0.0 between peerapi peers"
    );
    driver.abort();
}
