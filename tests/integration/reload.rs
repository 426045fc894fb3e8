use std::path::Path;

use peerapi::node::CallRequest;
use peerapi::NodeEvent;
use tokio::sync::broadcast;

use crate::common::*;

/// Saves the way editors do: write a temporary file, rename it over.
fn save(path: &Path, text: &str) {
    let tmp = path.with_extension("swp");
    std::fs::write(&tmp, text).unwrap();
    std::fs::rename(&tmp, path).unwrap();
}

async fn next_route_event(rx: &mut broadcast::Receiver<NodeEvent>) -> NodeEvent {
    within(async {
        loop {
            match rx.recv().await {
                Ok(ev @ (NodeEvent::RoutesReloaded { .. } | NodeEvent::RoutesRejected { .. })) => {
                    return ev
                }
                Ok(_) => {}
                Err(broadcast::error::RecvError::Lagged(_)) => {}
                Err(e) => panic!("event channel: {e}"),
            }
        }
    })
    .await
}

#[tokio::test]
async fn routes_reload_on_change_and_bad_files_keep_the_last_good_table() {
    let backend = demo_backend().await;
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("routes.json");
    let health = format!("http://{}/health", backend.addr);
    let echo = format!("http://{}/echo", backend.addr);
    std::fs::write(
        &file,
        format!(r#"{{"health": {{"url": "{health}", "stream": false}}}}"#),
    )
    .unwrap();

    let mut cfg = config();
    cfg.route_file = Some(file.clone());
    let (server, addr) = start(cfg).await;
    let mut events = server.handle().subscribe();
    let client = client_v1().await;
    let h = client.handle();
    let call = |route: &'static str| {
        let h = h.clone();
        let addr = addr.clone();
        async move {
            within(h.call(&addr, CallRequest::new(route).method("POST").body("x")))
                .await
                .unwrap()
        }
    };
    assert!(call("health").await.starts_with(b"{"));
    assert_eq!(&call("say").await[..], b"Route not found");

    // Add a route with the legacy shorthand.
    save(
        &file,
        &format!(r#"{{"health": {{"url": "{health}"}}, "say": "{echo}"}}"#),
    );
    match next_route_event(&mut events).await {
        NodeEvent::RoutesReloaded { diff, .. } => assert_eq!(diff.added, vec!["say"]),
        other => panic!("unexpected {other:?}"),
    }
    assert_eq!(&call("say").await[..], b"x");

    // Change a route: health now points at echo.
    save(
        &file,
        &format!(r#"{{"health": "{echo}", "say": "{echo}"}}"#),
    );
    match next_route_event(&mut events).await {
        NodeEvent::RoutesReloaded { diff, .. } => assert_eq!(diff.changed, vec!["health"]),
        other => panic!("unexpected {other:?}"),
    }
    assert_eq!(&call("health").await[..], b"x");

    // An invalid file is rejected with line and column; the table stays.
    save(&file, "{\n  \"health\": \n");
    match next_route_event(&mut events).await {
        NodeEvent::RoutesRejected { error } => assert!(error.contains("line 3"), "{error}"),
        other => panic!("unexpected {other:?}"),
    }
    assert_eq!(&call("say").await[..], b"x");

    // Truncated in place (an editor writing without rename), then removed.
    std::fs::write(&file, "").unwrap();
    assert!(matches!(
        next_route_event(&mut events).await,
        NodeEvent::RoutesRejected { .. }
    ));
    std::fs::remove_file(&file).unwrap();
    match next_route_event(&mut events).await {
        NodeEvent::RoutesRejected { error } => assert!(error.contains("removed"), "{error}"),
        other => panic!("unexpected {other:?}"),
    }
    assert_eq!(&call("say").await[..], b"x");

    // Remove a route.
    save(&file, &format!(r#"{{"health": "{health}"}}"#));
    match next_route_event(&mut events).await {
        NodeEvent::RoutesReloaded { diff, .. } => {
            assert_eq!(diff.removed, vec!["say"]);
            assert_eq!(diff.changed, vec!["health"]);
        }
        other => panic!("unexpected {other:?}"),
    }
    assert_eq!(&call("say").await[..], b"Route not found");
    server.abort();
}
