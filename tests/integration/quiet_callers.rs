//! One-shot commands only call. Against template-style peers that serve DAG
//! sync they start no replication (a process that exited before the answer
//! made every template node log a traceback), and a node stopped with
//! SIGTERM stops asking but waits for the DAG answer it asked for.

use std::time::Duration;

use crate::common::{config, node_process_with, peer_id_of, start, within, BIN};
use crate::python::PyLibp2p;
use crate::subnet_dag::{dag_server_with, DagServer};

async fn one_shot(args: &[&str]) -> std::process::Output {
    within(
        tokio::process::Command::new(BIN)
            .args(args)
            .kill_on_drop(true)
            .output(),
    )
    .await
    .unwrap()
}

/// Lets a node that takes part in the subnet replicate from `server`, and
/// reads the server's lines up to the answer it gets: every request seen
/// before then must be from a peer `allowed` says yes to (the marker's own
/// requests come last, so all earlier ones have been printed).
async fn requests_before_a_marker(server: &mut DagServer, allowed: impl Fn(&str) -> bool) {
    let (marker, _) = start(config()).await;
    let me = marker.handle().local_peer_id().to_string();
    within(marker.handle().dial(&server.addr)).await.unwrap();
    within(async {
        loop {
            let line = server
                .process
                .stdout
                .next_line()
                .await
                .unwrap()
                .expect("the DAG server is alive");
            if let Some((kind, from)) = line
                .strip_prefix("ASKED ")
                .and_then(|rest| rest.split_once(" FROM "))
            {
                if from == me {
                    continue;
                }
                assert!(
                    allowed(from),
                    "an unexpected DAG-sync request: {kind} from {from}"
                );
            }
            if line.starts_with("ANSWERED ") && line.contains("inventory") {
                // The marker's own answer: it asked after every other.
                break;
            }
        }
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_shot_commands_ask_template_peers_for_nothing_but_the_call() {
    for version in [PyLibp2p::V081, PyLibp2p::V060] {
        let mut server = dag_server_with(version, 5, 0, &[]).await;
        let addr = server.addr.to_string();
        let commands: [&[&str]; 4] = [
            &["call", &addr, "health", "--timeout", "5"],
            &["stream", &addr, "inference", "--timeout", "5"],
            &["routes", "list", &addr, "--timeout", "5"],
            &["load", &addr, "health", "-n", "2"],
        ];
        for round in 0..5 {
            for args in commands {
                let out = one_shot(args).await;
                let stderr = String::from_utf8_lossy(&out.stderr);
                // The peer serves no API: each command says so and fails.
                assert!(
                    !out.status.success(),
                    "{version:?} {args:?} (round {round}) succeeded against a peer without the API"
                );
                assert!(
                    !stderr.contains("panicked") && !stderr.contains("panic:"),
                    "{version:?} {args:?} (round {round}): {stderr}"
                );
            }
        }
        requests_before_a_marker(&mut server, |_| false).await;
        server.process.assert_healthy("after 20 one-shot commands");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_stopped_mid_replication_stops_asking_and_waits_for_its_answer() {
    for version in [PyLibp2p::V081, PyLibp2p::V060] {
        // The peer takes 2 s to answer each request, as a busy node may.
        let mut server = dag_server_with(version, 5, 0, &["--answer-delay", "2"]).await;
        let (_dir, routes) = crate::common::empty_routes();
        let peer_addr = server.addr.to_string();
        let (mut node, node_addr) = node_process_with(
            &routes,
            &["--bootstrap", &peer_addr, "--shutdown-grace", "10"],
        );
        let node_id = peer_id_of(&node_addr).to_string();
        // The node asks for the inventory as soon as identify says the peer
        // serves DAG sync.
        within(async {
            loop {
                let line = server.process.stdout.next_line().await.unwrap().unwrap();
                if line.starts_with("ASKED inventory_request FROM ") {
                    assert!(line.ends_with(&node_id), "{line}");
                    break;
                }
            }
        })
        .await;
        // Stopped while the answer is outstanding.
        let ok = std::process::Command::new("kill")
            .args(["-TERM", &node.0.id().to_string()])
            .status()
            .unwrap();
        assert!(ok.success());
        let started = std::time::Instant::now();
        let status = within(async {
            loop {
                if let Some(status) = node.0.try_wait().unwrap() {
                    return status;
                }
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        })
        .await;
        assert!(
            status.success(),
            "{version:?}: the node exits cleanly: {status:?}"
        );
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "the node stopped within its grace"
        );
        // The answer was written whole, and the stopped node asked nothing
        // more (no fetch after the inventory).
        let mut answered = false;
        within(async {
            loop {
                let line = server.process.stdout.next_line().await.unwrap().unwrap();
                if line.starts_with("ASKED ") {
                    assert!(
                        !line.ends_with(&node_id),
                        "{version:?}: a new request during the grace: {line}"
                    );
                }
                if line == "ANSWERED inventory_request" {
                    answered = true;
                    break;
                }
            }
        })
        .await;
        assert!(answered);
        requests_before_a_marker(&mut server, |from| from != node_id).await;
        server
            .process
            .assert_healthy("after the node stopped mid-answer");
    }
}
