//! Carries out the state's effects: the only place the console does I/O
//! (calls, dials, route file edits, saves, the clipboard, history).

use std::collections::HashMap;
use std::io::Write;
use std::path::PathBuf;
use std::time::Instant;

use base64::Engine as _;
use futures::StreamExt;
use tokio::sync::mpsc;

use super::action::RunsAction;
use super::action::{Action, LocalId};
use super::effect::{CallSpec, Effect};
use super::state::State;
use crate::node::{CallRequest, NodeHandle};

/// Carries out effects: the only place the console does I/O.
pub(super) struct Runner {
    pub(super) handle: NodeHandle,
    pub(super) tx: mpsc::Sender<Action>,
    pub(super) tasks: HashMap<LocalId, tokio::task::JoinHandle<()>>,
    pub(super) tees: HashMap<LocalId, std::fs::File>,
    pub(super) history_file: PathBuf,
    /// Stops the console's load run or comparison.
    pub(super) run: Option<tokio_util::sync::CancellationToken>,
    /// The HTTP client for calls straight to our own backends (made on first use).
    pub(super) direct: Option<crate::upstream::Upstream>,
    /// Read-only consoles carry out no effect that changes anything.
    pub(super) read_only: bool,
}

impl Runner {
    /// A token for a new run; the one before it is stopped.
    fn new_run(&mut self) -> tokio_util::sync::CancellationToken {
        let cancel = tokio_util::sync::CancellationToken::new();
        if let Some(old) = self.run.replace(cancel.clone()) {
            old.cancel();
        }
        cancel
    }

    /// Kept across comparisons, so later ones reuse its connections as
    /// the serving node's forwarder does.
    fn direct_upstream(
        &mut self,
    ) -> Result<crate::upstream::Upstream, crate::upstream::UpstreamError> {
        if let Some(u) = &self.direct {
            return Ok(u.clone());
        }
        let u = crate::upstream::Upstream::new(Default::default())?;
        self.direct = Some(u.clone());
        Ok(u)
    }

    pub(super) fn tee(&mut self, id: LocalId, bytes: &[u8]) {
        if let Some(f) = self.tees.get_mut(&id) {
            if f.write_all(bytes).is_err() {
                self.tees.remove(&id);
            }
        }
    }

    fn notice(&self, text: String) {
        let _ = self.tx.try_send(Action::Notice(text));
    }

    /// Spawns work for the console's node inside its log span, so its
    /// lines say which node wrote them (the demo runs three).
    fn spawn<F>(&self, work: F) -> tokio::task::JoinHandle<F::Output>
    where
        F: std::future::Future + Send + 'static,
        F::Output: Send + 'static,
    {
        tokio::spawn(tracing::Instrument::instrument(
            work,
            self.handle.log_span(),
        ))
    }

    pub(super) fn run(&mut self, state: &mut State, effect: Effect) {
        let span = self.handle.log_span();
        let _in_node = span.enter();
        if self.read_only && effect.changes_something() {
            tracing::warn!("read-only console: not carrying out {effect:?}");
            return;
        }
        match effect {
            Effect::Send { id, spec } => {
                let task = self.spawn(send_call(self.handle.clone(), self.tx.clone(), id, spec));
                self.tasks.insert(id, task);
            }
            Effect::Cancel(id) => {
                if let Some(task) = self.tasks.remove(&id) {
                    // Dropping the call's stream resets it, so the serving peer stops too.
                    task.abort();
                }
                self.tees.remove(&id);
            }
            Effect::Dial(addr) => {
                let handle = self.handle.clone();
                let tx = self.tx.clone();
                self.spawn(async move {
                    let text = match crate::node::parse_peer_addr(&addr) {
                        Ok(a) => match handle.dial(&a).await {
                            Ok(peer) => format!("connected to {peer}"),
                            Err(e) => format!("dial failed: {e}"),
                        },
                        Err(e) => e.to_string(),
                    };
                    let _ = tx.send(Action::Notice(text)).await;
                });
            }
            Effect::Disconnect(peer) => {
                self.handle.disconnect(peer);
                self.notice(format!("disconnecting {peer}"));
            }
            Effect::UpsertRoute { name, url, stream } => match state.routes.table.file_state() {
                crate::routes::FileState {
                    path: Some(path),
                    version,
                    ..
                } => match crate::routes::upsert_route_in_file(&path, &name, &url, stream, version)
                {
                    Ok(()) => self.notice(format!(
                        "route '{name}' written to {}; reloading",
                        path.display()
                    )),
                    Err(e) => self.notice(format!("cannot save route: {e}")),
                },
                _ => self.notice("no route file: start with --routes FILE to edit routes".into()),
            },
            Effect::RemoveRoute(name) => match state.routes.table.file_state() {
                crate::routes::FileState {
                    path: Some(path),
                    version,
                    ..
                } => match crate::routes::remove_route_in_file(&path, &name, version) {
                    Ok(true) => {
                        self.notice(format!("route '{name}' removed from {}", path.display()))
                    }
                    Ok(false) => self.notice(format!(
                        "route '{name}' is not in the file (in-memory routes cannot be removed)"
                    )),
                    Err(e) => self.notice(format!("cannot remove route: {e}")),
                },
                _ => self.notice("no route file: start with --routes FILE to edit routes".into()),
            },
            Effect::Save { id, path } => {
                let Some(call) = state.calls.list.iter().find(|c| c.id == id) else {
                    return;
                };
                // Never replace an existing file: the operator picks another name.
                let result = std::fs::OpenOptions::new()
                    .write(true)
                    .create_new(true)
                    .open(&path)
                    .and_then(|mut f| {
                        f.write_all(&call.output.raw)?;
                        Ok(f)
                    });
                match result {
                    Ok(f) => {
                        let more = if call.state.in_flight() {
                            "; the rest is appended as it arrives"
                        } else {
                            ""
                        };
                        let lost = if call.output.dropped > 0 {
                            format!(" ({} earlier bytes were past the cap)", call.output.dropped)
                        } else {
                            String::new()
                        };
                        if call.state.in_flight() {
                            self.tees.insert(id, f);
                        }
                        self.notice(format!("saved to {}{lost}{more}", path.display()));
                    }
                    Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
                        self.notice(format!(
                            "{} already exists; not replaced: save under another name",
                            path.display()
                        ))
                    }
                    Err(e) => self.notice(format!("cannot save to {}: {e}", path.display())),
                }
            }
            Effect::Copy(text) => {
                let seq = format!(
                    "\x1b]52;c;{}\x07",
                    base64::engine::general_purpose::STANDARD.encode(text.as_bytes())
                );
                let mut out = std::io::stdout();
                let _ = out.write_all(seq.as_bytes()).and_then(|_| out.flush());
            }
            Effect::FetchRoutes(target) => {
                let handle = self.handle.clone();
                let tx = self.tx.clone();
                self.spawn(async move {
                    let routes = match crate::node::parse_peer_addr(&target) {
                        Ok(addr) => handle.list_routes(&addr).await.map_err(|e| match e {
                            crate::CallError::Unsupported { .. } => {
                                "the peer does not list its routes (a 1.0.0-only node)".to_string()
                            }
                            other => other.to_string(),
                        }),
                        Err(e) => Err(e.to_string()),
                    };
                    let _ = tx.send(Action::RemoteRoutes { target, routes }).await;
                });
            }
            Effect::RecordHistory(entry) => {
                if let Err(e) = super::history::append(&self.history_file, &entry) {
                    tracing::warn!(file = %self.history_file.display(), "cannot record history: {e}");
                }
            }
            Effect::FanOut { spec, peers } => {
                let (handle, tx) = (self.handle.clone(), self.tx.clone());
                self.spawn(async move {
                    let addrs: Vec<_> = peers
                        .iter()
                        .filter_map(|p| crate::node::parse_peer_addr(p).ok())
                        .collect();
                    let bound = crate::load::fanout::DEFAULT_FANOUT_CONCURRENCY;
                    // Rows fill as calls progress; a full queue skips an
                    // update (the next one, or the result, says more).
                    let rows = tx.clone();
                    let on_row = std::sync::Arc::new(move |i, update| {
                        let _ = rows.try_send(Action::Runs(RunsAction::FanOutRow(i, update)));
                    });
                    let results = crate::load::fanout::fan_out_live(
                        &handle,
                        &addrs,
                        &spec.request,
                        spec.stream,
                        bound,
                        on_row,
                    )
                    .await;
                    let _ = tx.send(Action::Runs(RunsAction::FanOutDone(results))).await;
                });
            }
            Effect::Load { spec, plan } => {
                let Ok(addr) = crate::node::parse_peer_addr(&spec.target) else {
                    return;
                };
                let cancel = self.new_run();
                let (handle, tx) = (self.handle.clone(), self.tx.clone());
                self.spawn(async move {
                    let run = crate::load::LoadSpec {
                        targets: vec![addr],
                        request: spec.request,
                        stream: spec.stream,
                        concurrency: plan.concurrency,
                        stop: plan.stop,
                        rate: plan.rate,
                    };
                    let progress_tx = tx.clone();
                    let done = crate::load::run(handle, run, cancel, move |p| {
                        let _ =
                            progress_tx.try_send(Action::Runs(RunsAction::LoadProgress(p.clone())));
                    })
                    .await;
                    let summary = crate::load::Summary::of(
                        &done.samples,
                        done.wall,
                        done.unfinished,
                        &plan.goodput,
                    );
                    let _ = tx
                        .send(Action::Runs(RunsAction::LoadDone(Box::new(summary))))
                        .await;
                });
            }
            Effect::HopVsDirect {
                spec,
                route,
                rounds,
            } => {
                let Ok(addr) = crate::node::parse_peer_addr(&spec.target) else {
                    return;
                };
                let upstream = match self.direct_upstream() {
                    Ok(u) => u,
                    Err(e) => {
                        tracing::warn!("hop vs direct: {e}");
                        return;
                    }
                };
                let cancel = self.new_run();
                let (handle, tx) = (self.handle.clone(), self.tx.clone());
                self.spawn(async move {
                    let compare = crate::load::HopVsDirectSpec {
                        addr,
                        route: *route,
                        request: spec.request,
                        stream: spec.stream,
                        rounds,
                    };
                    let round_tx = tx.clone();
                    let run = crate::load::hop_vs_direct(&handle, &upstream, &compare, |n| {
                        let _ = round_tx.try_send(Action::Runs(RunsAction::HopVsDirectRound(n)));
                    });
                    tokio::select! {
                        () = cancel.cancelled() => {}
                        result = run => {
                            let done = RunsAction::HopVsDirectDone(Box::new(result));
                            let _ = tx.send(Action::Runs(done)).await;
                        }
                    }
                });
            }
            Effect::StopLoad => {
                if let Some(cancel) = self.run.take() {
                    cancel.cancel();
                }
            }
            Effect::Quit => {}
        }
    }
}

async fn send_call(handle: NodeHandle, tx: mpsc::Sender<Action>, id: LocalId, spec: CallSpec) {
    let addr = match crate::node::parse_peer_addr(&spec.target) {
        Ok(a) => a,
        Err(e) => {
            let _ = tx
                .send(Action::CallEnded {
                    id,
                    error: Some(e.to_string()),
                    at: Instant::now(),
                    server_timing: None,
                })
                .await;
            return;
        }
    };
    let req: CallRequest = spec.request;
    let send_bytes = |bytes: bytes::Bytes| {
        tx.send(Action::CallBytes {
            id,
            bytes,
            at: Instant::now(),
        })
    };
    let (error, server_timing) = if spec.stream {
        match handle.stream_full(&addr, req).await {
            Ok((head, mut chunks)) => {
                let _ = tx.send(Action::CallHead { id, head }).await;
                let mut error = None;
                while let Some(chunk) = chunks.next().await {
                    match chunk {
                        Ok(bytes) => {
                            let _ = send_bytes(bytes).await;
                        }
                        Err(e) => {
                            error = Some(e.to_string());
                            break;
                        }
                    }
                }
                (error, chunks.server_timing())
            }
            Err(e) => (Some(e.to_string()), None),
        }
    } else {
        match handle.call_full(&addr, req).await {
            Ok(crate::node::Response { head, body: bytes }) => {
                let _ = tx.send(Action::CallHead { id, head }).await;
                let _ = send_bytes(bytes).await;
                (None, None)
            }
            Err(e) => (Some(e.to_string()), None),
        }
    };
    let _ = tx
        .send(Action::CallEnded {
            id,
            error,
            at: Instant::now(),
            server_timing,
        })
        .await;
}
