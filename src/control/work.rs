//! Each request carried out by the node: calls with its identity and
//! connections, route edits on its file, runs inside its process.

use std::sync::{Arc, OnceLock};

use futures::StreamExt;
use tokio_util::sync::CancellationToken;

use super::message::{CallSpec, FromNode, Part, Reply, Request, RequestId};
use crate::node::{parse_peer_addr, CallError, CallTag, NodeHandle};

/// What requests share on one connection.
pub struct Context {
    pub handle: NodeHandle,
    /// Who this client is, as calls made for it are labelled.
    pub client: String,
    /// For calls straight to the node's backends: kept across
    /// comparisons, so later ones reuse its connections as the serving
    /// node's forwarder does.
    direct: OnceLock<crate::upstream::Upstream>,
}

impl Context {
    pub fn new(handle: NodeHandle, client: String) -> Self {
        Self {
            handle,
            client,
            direct: OnceLock::new(),
        }
    }

    fn direct(&self) -> Result<crate::upstream::Upstream, String> {
        if let Some(u) = self.direct.get() {
            return Ok(u.clone());
        }
        let u = crate::upstream::Upstream::new(Default::default()).map_err(|e| e.to_string())?;
        Ok(self.direct.get_or_init(|| u).clone())
    }
}

const NO_ROUTE_FILE: &str = "no route file: start the node with --routes FILE to edit routes";

/// Carries out `request` until it ends or `cancel` fires.
pub async fn carry_out(
    cx: &Context,
    request: Request,
    cancel: CancellationToken,
    parts: PartSender,
) -> Reply {
    let handle = &cx.handle;
    match request {
        Request::Call(spec) => {
            tokio::select! {
                reply = call(cx, spec, &parts) => reply,
                // Dropping the call's stream resets it: the serving peer stops too.
                () = cancel.cancelled() => Reply::CallEnded {
                    error: Some("cancelled".into()),
                    failure: None,
                    exit_code: Some(1),
                    server_timing: None,
                },
            }
        }
        Request::Dial { addr } => Reply::Text(match parse_peer_addr(&addr) {
            Ok(a) => tokio::select! {
                result = handle.dial(&a) => result
                    .map(|peer| format!("connected to {peer}"))
                    .map_err(|e| format!("dial failed: {e}")),
                () = cancel.cancelled() => Err("dial cancelled".into()),
            },
            Err(e) => Err(e.to_string()),
        }),
        Request::Disconnect { peer } => {
            handle.disconnect(peer);
            Reply::Text(Ok(format!("disconnecting {peer}")))
        }
        Request::UpsertRoute {
            name,
            url,
            stream,
            version,
        } => Reply::Text(match handle.routes().file_state().path {
            Some(path) => crate::routes::upsert_route_in_file(&path, &name, &url, stream, version)
                .map(|()| format!("route '{name}' written to {}; reloading", path.display()))
                .map_err(|e| format!("cannot save route: {e}")),
            None => Err(NO_ROUTE_FILE.into()),
        }),
        Request::RemoveRoute { name, version } => {
            Reply::Text(match handle.routes().file_state().path {
                Some(path) => match crate::routes::remove_route_in_file(&path, &name, version) {
                    Ok(true) => Ok(format!("route '{name}' removed from {}", path.display())),
                    Ok(false) => Err(format!(
                        "route '{name}' is not in the file (in-memory routes cannot be removed)"
                    )),
                    Err(e) => Err(format!("cannot remove route: {e}")),
                },
                None => Err(NO_ROUTE_FILE.into()),
            })
        }
        Request::ReloadRoutes => Reply::Text(match handle.routes().file_state().path {
            Some(path) => {
                let reload = crate::routes::reload(handle.routes(), &path);
                let answer = match &reload {
                    crate::routes::RouteReload::Reloaded { diff, routes, .. } => {
                        handle.recent().reloaded(true, None);
                        Ok(format!("reloaded: {routes} routes, {diff}"))
                    }
                    crate::routes::RouteReload::Rejected { error } => {
                        handle.recent().reloaded(false, Some(error.clone()));
                        Err(format!("rejected, the old table stays: {error}"))
                    }
                };
                handle.publish(crate::node::NodeEvent::from(reload));
                answer
            }
            None => Err(NO_ROUTE_FILE.into()),
        }),
        Request::Tap { on, max_bytes } => {
            let max = max_bytes.unwrap_or(crate::protocol::tap::DEFAULT_TAP_BYTES);
            // A tap on one call ends with it (its last bytes first).
            let call = match &on {
                crate::protocol::tap::TapOn::Call(id) => Some(*id),
                crate::protocol::tap::TapOn::Route(_) => None,
            };
            let mut events = handle.subscribe();
            let mut reader = handle.tap(on, max);
            parts.send(Part::TapOpen).await;
            let mut passed = 0u64;
            while !reader.full() {
                tokio::select! {
                    biased;
                    chunk = reader.chunks.recv() => match chunk {
                        Some(c) => {
                            passed += c.bytes.len() as u64;
                            if !parts.send(Part::Tapped(c)).await {
                                break;
                            }
                        }
                        None => break,
                    },
                    () = cancel.cancelled() => break,
                    ev = events.recv(), if call.is_some() => match ev {
                        Ok(crate::node::NodeEvent::ServeFinished { id, .. }) if Some(id) == call => {
                            while let Ok(c) = reader.chunks.try_recv() {
                                passed += c.bytes.len() as u64;
                                parts.send(Part::Tapped(c)).await;
                            }
                            break;
                        }
                        Err(tokio::sync::broadcast::error::RecvError::Closed) => break,
                        _ => {}
                    },
                }
            }
            let full = if reader.full() {
                " (its byte limit reached)"
            } else {
                ""
            };
            Reply::Text(Ok(format!(
                "tap closed{full}: {passed} bytes shown, {} not (reader behind or limit)",
                reader.dropped()
            )))
        }
        Request::Roster => Reply::Roster(super::stats::roster_of(handle)),
        Request::Stats => Reply::Stats(Box::new(super::stats::of(handle).await)),
        #[cfg(feature = "health")]
        Request::Health => Reply::Health(Box::new(
            handle
                .health_report()
                .and_then(|v| serde_json::from_value(v).ok()),
        )),
        Request::RemoteRoutes { target } => Reply::RemoteRoutes(match parse_peer_addr(&target) {
            Ok(addr) => handle.list_routes(&addr).await.map_err(|e| match e {
                CallError::Unsupported { .. } => {
                    "the peer does not list its routes (a 1.0.0-only node)".to_string()
                }
                other => other.to_string(),
            }),
            Err(e) => Err(e.to_string()),
        }),
        Request::FanOut { spec, peers } => {
            let addrs: Vec<_> = peers
                .iter()
                .filter_map(|p| parse_peer_addr(p).ok())
                .collect();
            let bound = crate::load::fanout::DEFAULT_FANOUT_CONCURRENCY;
            // Rows fill as calls progress; a full queue skips an update
            // (the next one, or the result, says more).
            let rows = parts.clone();
            let on_row = Arc::new(move |index, update| {
                rows.offer(Part::FanOutRow { index, update });
            });
            let run = crate::load::fanout::fan_out_live(
                handle,
                &addrs,
                &spec.request,
                spec.stream,
                bound,
                on_row,
            );
            tokio::select! {
                results = run => Reply::FanOutDone(results),
                () = cancel.cancelled() => Reply::FanOutDone(Vec::new()),
            }
        }
        Request::Load { spec, plan } => {
            let addr = match parse_peer_addr(&spec.target) {
                Ok(a) => a,
                Err(e) => return Reply::Text(Err(e.to_string())),
            };
            let run = crate::load::LoadSpec {
                targets: vec![addr],
                request: spec.request,
                stream: spec.stream,
                concurrency: plan.concurrency,
                stop: plan.stop,
                rate: plan.rate,
            };
            // Cancelling ends the run with what it has: the summary still comes.
            let done = crate::load::run(handle.clone(), run, cancel, |p| {
                parts.offer(Part::LoadProgress(Box::new(p.clone())));
            })
            .await;
            let summary =
                crate::load::Summary::of(&done.samples, done.wall, done.unfinished, &plan.goodput);
            Reply::LoadDone(Box::new(summary))
        }
        Request::HopVsDirect {
            spec,
            route,
            rounds,
        } => {
            let addr = match parse_peer_addr(&spec.target) {
                Ok(a) => a,
                Err(e) => return Reply::Text(Err(e.to_string())),
            };
            let upstream = match cx.direct() {
                Ok(u) => u,
                Err(e) => return Reply::Text(Err(format!("hop vs direct: {e}"))),
            };
            let compare = crate::load::HopVsDirectSpec {
                addr,
                route: *route,
                request: spec.request,
                stream: spec.stream,
                rounds,
            };
            let run = crate::load::hop_vs_direct(handle, &upstream, &compare, |n| {
                parts.offer(Part::HopVsDirectRound(n));
            });
            tokio::select! {
                result = run => Reply::HopVsDirectDone(Box::new(result)),
                () = cancel.cancelled() => Reply::Refused("comparison stopped".into()),
            }
        }
    }
}

/// One call made by the node: the head, the body as it arrives, the end.
async fn call(cx: &Context, spec: CallSpec, parts: &PartSender) -> Reply {
    let handle = &cx.handle;
    let addr = match parse_peer_addr(&spec.target) {
        Ok(a) => a,
        Err(e) => {
            return Reply::CallEnded {
                failure: Some(e.failure()),
                error: Some(e.to_string()),
                exit_code: Some(3),
                server_timing: None,
            }
        }
    };
    // The number goes out before the node's CallStarted event does: the
    // client reads it first and so knows that event as its own.
    let tag = CallTag {
        id: handle.next_call_id(),
        by: Some(cx.client.clone()),
    };
    parts.send(Part::CallStarted(tag.id)).await;
    if spec.stream {
        match handle.stream_tagged(&addr, spec.request, tag).await {
            Ok((head, mut chunks)) => {
                parts.send(Part::Head(head)).await;
                let mut error = None;
                while let Some(chunk) = chunks.next().await {
                    match chunk {
                        Ok(bytes) => {
                            if !parts.send(Part::Bytes(bytes)).await {
                                break;
                            }
                        }
                        Err(e) => {
                            error = Some(e);
                            break;
                        }
                    }
                }
                Reply::CallEnded {
                    exit_code: error.as_ref().map(CallError::exit_code),
                    failure: error.as_ref().map(CallError::failure),
                    error: error.map(|e| e.to_string()),
                    server_timing: chunks.server_timing(),
                }
            }
            Err(e) => Reply::CallEnded {
                failure: Some(e.failure()),
                error: Some(e.to_string()),
                exit_code: Some(e.exit_code()),
                server_timing: None,
            },
        }
    } else {
        match handle.call_tagged(&addr, spec.request, tag).await {
            Ok(crate::node::Response { head, body }) => {
                parts.send(Part::Head(head)).await;
                parts.send(Part::Bytes(body)).await;
                Reply::CallEnded {
                    error: None,
                    failure: None,
                    exit_code: None,
                    server_timing: None,
                }
            }
            Err(e) => Reply::CallEnded {
                failure: Some(e.failure()),
                error: Some(e.to_string()),
                exit_code: Some(e.exit_code()),
                server_timing: None,
            },
        }
    }
}

/// Sends one request's parts; waits for room, as a call's body must not be lost.
#[derive(Clone)]
pub struct PartSender {
    id: RequestId,
    out: tokio::sync::mpsc::Sender<FromNode>,
}

impl PartSender {
    pub fn new(id: RequestId, out: tokio::sync::mpsc::Sender<FromNode>) -> Self {
        Self { id, out }
    }

    /// Every part arrives, in order (the request waits for room).
    pub async fn send(&self, part: Part) -> bool {
        self.out
            .send(FromNode::Part { id: self.id, part })
            .await
            .is_ok()
    }

    /// A progress part that may be skipped when the client is behind (the
    /// next one, or the last word, says more).
    pub fn offer(&self, part: Part) {
        let _ = self.out.try_send(FromNode::Part { id: self.id, part });
    }
}
