//! Carries out the state's effects: the only place the console does I/O.
//! What concerns the node (calls, dials, route edits, runs) goes to it as
//! control requests through its [`NodeLink`]; saves, the clipboard and
//! history are done here.

use std::collections::HashMap;
use std::io::Write;
use std::path::PathBuf;
use std::time::Instant;

use base64::Engine as _;
use tokio::sync::mpsc;

use super::action::RunsAction;
use super::action::{Action, LocalId};
use super::effect::Effect;
use super::state::State;
use crate::control::{Answer, NodeLink, Part, Pending, Reply, Request, RequestId};

/// Carries out effects: the only place the console does I/O.
pub(super) struct Runner {
    pub(super) link: NodeLink,
    pub(super) tx: mpsc::Sender<Action>,
    pub(super) tasks: HashMap<LocalId, tokio::task::JoinHandle<()>>,
    pub(super) tees: HashMap<LocalId, std::fs::File>,
    pub(super) history_file: PathBuf,
    /// The console's load run or comparison, to stop it.
    pub(super) run: Option<RequestId>,
    /// Read-only consoles carry out no effect that changes anything.
    pub(super) read_only: bool,
    /// Where `:ctx NAME` may switch an attached console to.
    pub(super) contexts: Vec<crate::fleet::Context>,
    /// Ticks `HealthAction::Poll` while the Health view is shown.
    pub(super) health_poll: Option<tokio::task::JoinHandle<()>>,
}

/// How often the Health view asks the node again.
const HEALTH_POLL: std::time::Duration = std::time::Duration::from_secs(3);

impl Runner {
    /// Sends a run; the one before it is stopped.
    fn new_run(&mut self, request: Request) -> Pending {
        let pending = self.link.request(request);
        if let Some(old) = self.run.replace(pending.id()) {
            self.link.cancel(old);
        }
        pending
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

    /// A request whose last word is a text for the status bar.
    fn request_notice(&self, request: Request) {
        let pending = self.link.request(request);
        let tx = self.tx.clone();
        tokio::spawn(async move {
            let text = match pending.reply().await {
                Reply::Text(Ok(t)) | Reply::Text(Err(t)) | Reply::Refused(t) => t,
                other => format!("unexpected answer: {other:?}"),
            };
            let _ = tx.send(Action::Notice(text)).await;
        });
    }

    pub(super) fn run(&mut self, state: &mut State, effect: Effect) {
        if self.read_only && effect.changes_something() {
            tracing::warn!("read-only console: not carrying out {effect:?}");
            return;
        }
        match effect {
            Effect::Send { id, spec } => {
                let pending = self.link.request(Request::Call(spec));
                let task = tokio::spawn(follow_call(pending, self.tx.clone(), id));
                self.tasks.insert(id, task);
            }
            Effect::Cancel(id) => {
                if let Some(task) = self.tasks.remove(&id) {
                    // Dropping the pending answer cancels the call on the
                    // node, which resets its stream: the serving peer stops too.
                    task.abort();
                }
                self.tees.remove(&id);
            }
            Effect::Dial(addr) => self.request_notice(Request::Dial { addr }),
            Effect::Disconnect(peer) => self.request_notice(Request::Disconnect { peer }),
            Effect::UpsertRoute { name, url, stream } => {
                let version = state.routes.table.file_state().version;
                self.request_notice(Request::UpsertRoute {
                    name,
                    url,
                    stream,
                    version,
                });
            }
            Effect::RemoveRoute(name) => {
                let version = state.routes.table.file_state().version;
                self.request_notice(Request::RemoveRoute { name, version });
            }
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
                let pending = self.link.request(Request::RemoteRoutes {
                    target: target.clone(),
                });
                let tx = self.tx.clone();
                tokio::spawn(async move {
                    let routes = match pending.reply().await {
                        Reply::RemoteRoutes(r) => r,
                        Reply::Refused(why) => Err(why),
                        other => Err(format!("unexpected answer: {other:?}")),
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
                let pending = self.link.request(Request::FanOut { spec, peers });
                tokio::spawn(follow_run(pending, self.tx.clone()));
            }
            Effect::Load { spec, plan } => {
                let pending = self.new_run(Request::Load { spec, plan });
                tokio::spawn(follow_run(pending, self.tx.clone()));
            }
            Effect::HopVsDirect {
                spec,
                route,
                rounds,
            } => {
                let pending = self.new_run(Request::HopVsDirect {
                    spec,
                    route,
                    rounds,
                });
                tokio::spawn(follow_run(pending, self.tx.clone()));
            }
            Effect::TapServed { local, call } => {
                let on = crate::protocol::tap::TapOn::Call(call);
                let mut pending = self.link.request(Request::Tap {
                    on,
                    max_bytes: None,
                });
                let tx = self.tx.clone();
                tokio::spawn(async move {
                    while let Some(answer) = pending.next().await {
                        let action = match answer {
                            Answer::Part(Part::Tapped(c)) => Action::CallBytes {
                                id: local,
                                bytes: c.bytes,
                                at: Instant::now(),
                            },
                            Answer::Part(_) => continue,
                            Answer::Done(Reply::Text(Ok(t) | Err(t)) | Reply::Refused(t)) => {
                                Action::Notice(t)
                            }
                            Answer::Done(_) => continue,
                        };
                        let _ = tx.send(action).await;
                    }
                });
            }
            Effect::StopLoad => {
                if let Some(id) = self.run.take() {
                    self.link.cancel(id);
                }
            }
            Effect::SwitchContext(name) => {
                super::switch::start(&self.contexts, name, self.tx.clone());
            }
            Effect::WatchHealth(on) => {
                if let Some(old) = self.health_poll.take() {
                    old.abort();
                }
                if on {
                    let tx = self.tx.clone();
                    self.health_poll = Some(tokio::spawn(async move {
                        let mut every = tokio::time::interval(HEALTH_POLL);
                        loop {
                            every.tick().await;
                            let poll = Action::Health(crate::tui::action::HealthAction::Poll);
                            if tx.send(poll).await.is_err() {
                                return;
                            }
                        }
                    }));
                }
            }
            Effect::FetchHealth => {
                let pending = self.link.request(Request::Health);
                let tx = self.tx.clone();
                tokio::spawn(async move {
                    let action = match pending.reply().await {
                        Reply::Health(report) => {
                            Action::Health(crate::tui::action::HealthAction::Report(report))
                        }
                        Reply::Refused(why) => Action::Notice(format!("health: {why}")),
                        other => Action::Notice(format!("health: unexpected answer {other:?}")),
                    };
                    let _ = tx.send(action).await;
                });
            }
            Effect::Quit => {
                if let Some(poll) = self.health_poll.take() {
                    poll.abort();
                }
            }
        }
    }
}

/// A call's answer from the node, as the console's actions.
async fn follow_call(mut pending: Pending, tx: mpsc::Sender<Action>, id: LocalId) {
    let (error, failure, server_timing) = loop {
        match pending.next().await {
            Some(Answer::Part(Part::CallStarted(node_call))) => {
                let _ = tx.send(Action::CallNumbered { id, node_call }).await;
            }
            Some(Answer::Part(Part::Head(head))) => {
                let _ = tx.send(Action::CallHead { id, head }).await;
            }
            Some(Answer::Part(Part::Bytes(bytes))) => {
                let at = Instant::now();
                let _ = tx.send(Action::CallBytes { id, bytes, at }).await;
            }
            Some(Answer::Part(_)) => {}
            Some(Answer::Done(Reply::CallEnded {
                error,
                failure,
                server_timing,
                ..
            })) => break (error, failure, server_timing),
            Some(Answer::Done(Reply::Refused(why))) => break (Some(why), None, None),
            Some(Answer::Done(other)) => {
                break (Some(format!("unexpected answer: {other:?}")), None, None)
            }
            None => break (Some("the node is gone".into()), None, None),
        }
    };
    let at = Instant::now();
    let ended = Action::CallEnded {
        id,
        error,
        failure,
        at,
        server_timing,
    };
    let _ = tx.send(ended).await;
}

/// A fan-out, load run or comparison from the node, as the runs view's
/// actions: progress as it comes, then the result.
async fn follow_run(mut pending: Pending, tx: mpsc::Sender<Action>) {
    while let Some(answer) = pending.next().await {
        let action = match answer {
            // Progress may be skipped when the console is behind.
            Answer::Part(part) => {
                let update = match part {
                    Part::FanOutRow { index, update } => RunsAction::FanOutRow(index, update),
                    Part::LoadProgress(p) => RunsAction::LoadProgress(*p),
                    Part::HopVsDirectRound(n) => RunsAction::HopVsDirectRound(n),
                    Part::CallStarted(_)
                    | Part::Head(_)
                    | Part::Bytes(_)
                    | Part::TapOpen
                    | Part::Tapped(_) => continue,
                };
                let _ = tx.try_send(Action::Runs(update));
                continue;
            }
            Answer::Done(Reply::FanOutDone(results)) => {
                Action::Runs(RunsAction::FanOutDone(results))
            }
            Answer::Done(Reply::LoadDone(summary)) => Action::Runs(RunsAction::LoadDone(summary)),
            Answer::Done(Reply::HopVsDirectDone(result)) => {
                Action::Runs(RunsAction::HopVsDirectDone(result))
            }
            Answer::Done(Reply::Text(Err(why)) | Reply::Refused(why)) => Action::Notice(why),
            Answer::Done(other) => Action::Notice(format!("unexpected answer: {other:?}")),
        };
        let _ = tx.send(action).await;
    }
}
