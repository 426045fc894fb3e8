//! The node's side of one control connection: a snapshot, then the node's
//! changes in order, and each request carried out by the node itself. A
//! client that reads too slowly is never waited for: its updates are
//! counted as missed, then a gap and a fresh snapshot are sent.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{broadcast, mpsc};
use tokio_util::sync::CancellationToken;

use super::message::{
    FromNode, NodeInfo, Reply, RequestId, Role, RoutesSnapshot, Snapshot, SubnetStats, ToNode,
    Update, CONTROL_VERSION,
};
use super::work;
use crate::node::{NodeEvent, NodeHandle};

/// Peers and subnet figures are sent this often.
pub const REFRESH_EVERY: Duration = Duration::from_secs(1);

/// What one client may hold of the node.
#[derive(Clone, Copy, Debug)]
pub struct ClientLimits {
    /// Messages queued for a client before its updates are dropped (and a
    /// gap is marked).
    pub queued_messages: usize,
    /// Requests of one client carried out at once; more are refused.
    pub requests_in_flight: usize,
}

pub const DEFAULT_QUEUED_MESSAGES: usize = 4096;
pub const DEFAULT_REQUESTS_IN_FLIGHT: usize = 64;

impl Default for ClientLimits {
    fn default() -> Self {
        Self {
            queued_messages: DEFAULT_QUEUED_MESSAGES,
            requests_in_flight: DEFAULT_REQUESTS_IN_FLIGHT,
        }
    }
}

/// A number for each client this process serves, so that two clients of
/// one process (two consoles in one test, say) have different labels.
pub fn client_label(who: &str) -> String {
    static NEXT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(1);
    let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    format!("client {n} ({who})")
}

/// Who the node is, for a hello.
pub async fn node_info(handle: &NodeHandle) -> NodeInfo {
    NodeInfo {
        peer_id: handle.local_peer_id(),
        version: env!("CARGO_PKG_VERSION").to_string(),
        name: handle.name().map(str::to_string),
        listen: handle.listen_addrs().await.unwrap_or_default(),
        telemetry: handle.telemetry_addr(),
    }
}

/// The route table as the node has it now.
pub fn routes_snapshot(handle: &NodeHandle) -> RoutesSnapshot {
    RoutesSnapshot::of(handle.routes())
}

/// Mesh peers by topic and each DAG namespace's summary.
pub async fn subnet_stats(handle: &NodeHandle) -> SubnetStats {
    let mesh = handle.gossip_mesh().await.unwrap_or_default();
    let store = handle.dag().lock().unwrap_or_else(|e| e.into_inner());
    let dag = store
        .namespaces()
        .into_iter()
        .map(|ns| {
            let summary = store.summary(&ns);
            (ns, summary)
        })
        .collect();
    SubnetStats { mesh, dag }
}

async fn snapshot(handle: &NodeHandle) -> Snapshot {
    Snapshot {
        listen: handle.listen_addrs().await.unwrap_or_default(),
        peers: handle.peers().await.unwrap_or_default(),
        routes: routes_snapshot(handle),
        subnet: subnet_stats(handle).await,
    }
}

/// Updates for one client: sent while it keeps up, counted while it does not.
struct Updates {
    out: mpsc::Sender<FromNode>,
    missed: u64,
}

impl Updates {
    /// Queues `update` unless the client is behind; false once it is gone.
    fn push(&mut self, update: Update) -> bool {
        if self.missed > 0 {
            self.missed += 1;
            return !self.out.is_closed();
        }
        match self.out.try_send(FromNode::Update(update)) {
            Ok(()) => true,
            Err(mpsc::error::TrySendError::Full(_)) => {
                self.missed = 1;
                true
            }
            Err(mpsc::error::TrySendError::Closed(_)) => false,
        }
    }

    /// After a gap, once half the queue is free again (so a client just
    /// behind is not sent a snapshot per event): the gap, then a snapshot.
    async fn catch_up(&mut self, handle: &NodeHandle) {
        if self.missed == 0 || self.out.capacity() < (self.out.max_capacity() / 2).max(2) {
            return;
        }
        let gap = Update::Gap {
            missed: self.missed,
        };
        if self.out.try_send(FromNode::Update(gap)).is_ok() {
            self.missed = 0;
            let fresh = Update::Snapshot(Box::new(snapshot(handle).await));
            let _ = self.out.send(FromNode::Update(fresh)).await;
        }
    }
}

/// Serves one client until it hangs up or the node stops: `from` is what
/// it sends, `out` where its messages go, `cap` the most it may do;
/// `client` names it on the calls it has the node make.
pub async fn serve_client(
    handle: NodeHandle,
    client: String,
    cap: Role,
    mut from: mpsc::Receiver<ToNode>,
    out: mpsc::Sender<FromNode>,
    limits: ClientLimits,
) {
    let hello = tokio::time::timeout(super::message::HELLO_WITHIN, from.recv()).await;
    let Ok(Some(ToNode::Hello {
        version,
        role,
        quiet,
    })) = hello
    else {
        return;
    };
    let role = role.capped_by(cap);
    let hello = FromNode::Hello {
        version: CONTROL_VERSION,
        role,
        node: node_info(&handle).await,
        client: client.clone(),
    };
    // Subscribed before the snapshot is taken: nothing falls between them.
    // A quiet client gets answers only: its channel never yields.
    let (_none, unsubscribed) = broadcast::channel(1);
    let mut events = if quiet {
        unsubscribed
    } else {
        handle.subscribe()
    };
    if out.send(hello).await.is_err() || version != CONTROL_VERSION {
        return;
    }
    if !quiet {
        let first = Update::Snapshot(Box::new(snapshot(&handle).await));
        if out.send(FromNode::Update(first)).await.is_err() {
            return;
        }
    }
    let mut updates = Updates {
        out: out.clone(),
        missed: 0,
    };
    let mut running: HashMap<RequestId, CancellationToken> = HashMap::new();
    let (done_tx, mut done) = mpsc::unbounded_channel::<RequestId>();
    let context = Arc::new(work::Context::new(handle.clone(), client));
    let mut log_lines = if quiet { None } else { crate::log_lines::tap() };
    let mut refresh = tokio::time::interval(REFRESH_EVERY);
    refresh.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
    loop {
        updates.catch_up(&handle).await;
        tokio::select! {
            message = from.recv() => match message {
                Some(ToNode::Request { id, request }) => {
                    let refused = if role == Role::Observe && request.changes_something() {
                        Some("this connection may only observe".to_string())
                    } else if running.len() >= limits.requests_in_flight {
                        Some(format!(
                            "{} requests are in flight on this connection: wait for one to end",
                            running.len()
                        ))
                    } else if running.contains_key(&id) {
                        Some(format!("request {id} is already in flight"))
                    } else {
                        None
                    };
                    if let Some(why) = refused {
                        let _ = out.send(FromNode::Done { id, reply: Reply::Refused(why) }).await;
                        continue;
                    }
                    let cancel = CancellationToken::new();
                    running.insert(id, cancel.clone());
                    let (context, out, done_tx) = (context.clone(), out.clone(), done_tx.clone());
                    tokio::spawn(tracing::Instrument::instrument(async move {
                        let parts = work::PartSender::new(id, out.clone());
                        let reply = work::carry_out(&context, *request, cancel, parts).await;
                        let _ = out.send(FromNode::Done { id, reply }).await;
                        let _ = done_tx.send(id);
                    }, handle.log_span()));
                }
                Some(ToNode::Cancel { id }) => {
                    if let Some(cancel) = running.get(&id) {
                        cancel.cancel();
                    }
                }
                // A second hello is ignored; the first one counted.
                Some(ToNode::Hello { .. }) => {}
                None => break,
            },
            Some(id) = done.recv() => {
                running.remove(&id);
            }
            event = events.recv() => {
                let alive = match event {
                    Ok(ev) => {
                        let routes_changed = matches!(
                            ev,
                            NodeEvent::RoutesReloaded { .. } | NodeEvent::RoutesRejected { .. }
                        );
                        let mut alive = updates.push(Update::Event(ev));
                        if routes_changed {
                            let table = routes_snapshot(&handle);
                            alive &= updates.push(Update::Routes(Box::new(table)));
                        }
                        alive
                    }
                    // The node's own queue overflowed for us: a gap as well.
                    Err(broadcast::error::RecvError::Lagged(n)) => {
                        updates.missed += n;
                        true
                    }
                    Err(broadcast::error::RecvError::Closed) => false,
                };
                if !alive {
                    break;
                }
            }
            line = next_line(&mut log_lines) => {
                let update = match line {
                    Ok((level, line)) => Update::Log { level, line },
                    Err(broadcast::error::RecvError::Lagged(n)) => Update::Log {
                        level: crate::log_lines::LogLevel::Warn,
                        line: format!("{n} of the node's log lines skipped (this console read too slowly)"),
                    },
                    Err(broadcast::error::RecvError::Closed) => {
                        log_lines = None;
                        continue;
                    }
                };
                if !updates.push(update) {
                    break;
                }
            }
            _ = refresh.tick(), if !quiet => {
                let peers = handle.peers().await.unwrap_or_default();
                let alive = updates.push(Update::Peers(peers))
                    && updates.push(Update::Subnet(subnet_stats(&handle).await));
                if !alive {
                    break;
                }
            }
        }
    }
    // A client that went away leaves nothing running on the node.
    for cancel in running.values() {
        cancel.cancel();
    }
}

/// The next log line, or never when the process publishes none.
async fn next_line(
    tap: &mut Option<broadcast::Receiver<(crate::log_lines::LogLevel, String)>>,
) -> Result<(crate::log_lines::LogLevel, String), broadcast::error::RecvError> {
    match tap {
        Some(rx) => rx.recv().await,
        None => std::future::pending().await,
    }
}
