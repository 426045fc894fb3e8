//! The client's side: a node reached through messages, in this process
//! or (the same messages, framed) over a control socket. The console knows
//! its node only through a [`NodeLink`] and the [`Update`]s it receives.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::mpsc;

use super::message::{
    FromNode, NodeInfo, Part, Reply, Request, RequestId, Role, ToNode, Update, CONTROL_VERSION,
    HELLO_WITHIN,
};
use super::service::{self, ClientLimits};
use crate::node::NodeHandle;

/// Parts of one answer queued for the client before the node waits.
const PARTS_QUEUE: usize = 256;

#[derive(Debug, thiserror::Error)]
pub enum LinkError {
    #[error("the node did not answer the hello within {0:?}")]
    NoHello(Duration),
    #[error("the node closed the connection before its hello")]
    Closed,
    #[error("the node's first message was not a hello")]
    NotHello,
    #[error("the node speaks control version {node}, this peerapi {ours}: use the same peerapi version on both sides")]
    Version { node: u32, ours: u32 },
}

/// One piece of a request's answer.
#[derive(Debug)]
pub enum Answer {
    Part(Part),
    Done(Reply),
}

/// Who waits for which answer; `None` once the link closed, so that a
/// request made after that fails at once instead of waiting forever.
type Waiting = Arc<Mutex<Option<HashMap<RequestId, mpsc::Sender<Answer>>>>>;

/// A node, as a client sees it: who it is, what this client may do, and
/// requests with their answers.
#[derive(Clone)]
pub struct NodeLink {
    info: NodeInfo,
    role: Role,
    client: String,
    to: mpsc::Sender<ToNode>,
    waiting: Waiting,
    next_id: Arc<AtomicU64>,
}

impl std::fmt::Debug for NodeLink {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NodeLink")
            .field("node", &self.info.peer_id)
            .field("role", &self.role)
            .finish_non_exhaustive()
    }
}

/// The node's changes, in order: `None` once the node is gone.
pub type Updates = mpsc::Receiver<Update>;

impl NodeLink {
    /// The node in this process, as a client with `role`.
    pub async fn in_process(handle: &NodeHandle, role: Role) -> Result<(Self, Updates), LinkError> {
        let limits = ClientLimits::default();
        let (to_node, from_client) = mpsc::channel(limits.queued_messages);
        let (to_client, from_node) = mpsc::channel(limits.queued_messages);
        tokio::spawn(service::serve_client(
            handle.clone(),
            service::client_label("in-process"),
            Role::Full,
            from_client,
            to_client,
            limits,
        ));
        Self::over(to_node, from_node, role).await
    }

    /// A node that answers on these channels (in this process, or the ends
    /// of a framed socket): says hello, then routes answers by request.
    pub async fn over(
        to: mpsc::Sender<ToNode>,
        mut from: mpsc::Receiver<FromNode>,
        greeting: impl Into<super::message::Greeting>,
    ) -> Result<(Self, Updates), LinkError> {
        let greeting = greeting.into();
        let hello = ToNode::Hello {
            version: CONTROL_VERSION,
            role: greeting.role,
            quiet: greeting.quiet,
        };
        to.send(hello).await.map_err(|_| LinkError::Closed)?;
        let first = tokio::time::timeout(HELLO_WITHIN, from.recv())
            .await
            .map_err(|_| LinkError::NoHello(HELLO_WITHIN))?;
        let (info, role, client) = match first {
            None => return Err(LinkError::Closed),
            Some(FromNode::Hello { version, .. }) if version != CONTROL_VERSION => {
                return Err(LinkError::Version {
                    node: version,
                    ours: CONTROL_VERSION,
                })
            }
            Some(FromNode::Hello {
                role, node, client, ..
            }) => (node, role, client),
            Some(_) => return Err(LinkError::NotHello),
        };
        let waiting: Waiting = Arc::new(Mutex::new(Some(HashMap::new())));
        let (updates_tx, updates) = mpsc::channel(super::service::DEFAULT_QUEUED_MESSAGES);
        tokio::spawn(dispatch(from, updates_tx, waiting.clone()));
        let link = Self {
            info,
            role,
            client,
            to,
            waiting,
            next_id: Arc::new(AtomicU64::new(1)),
        };
        Ok((link, updates))
    }

    pub fn info(&self) -> &NodeInfo {
        &self.info
    }

    /// How the node names this client on the calls it makes for it.
    pub fn client(&self) -> &str {
        &self.client
    }

    /// What the node granted.
    pub fn role(&self) -> Role {
        self.role
    }

    /// Sends `request`; its answer arrives on the returned [`Pending`].
    pub fn request(&self, request: Request) -> Pending {
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let (tx, rx) = mpsc::channel(PARTS_QUEUE);
        match self
            .waiting
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .as_mut()
        {
            Some(waiting) => waiting.insert(id, tx),
            None => return Pending::failed(id, "the node is gone"),
        };
        let sent = self
            .to
            .try_send(ToNode::Request {
                id,
                request: Box::new(request),
            })
            .map_err(|e| match e {
                mpsc::error::TrySendError::Full(_) => "too many requests queued for the node",
                mpsc::error::TrySendError::Closed(_) => "the node is gone",
            });
        if let Err(why) = sent {
            if let Some(waiting) = self
                .waiting
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .as_mut()
            {
                waiting.remove(&id);
            }
            return Pending::failed(id, why);
        }
        Pending {
            id,
            rx: Some(rx),
            to: Some(self.to.clone()),
            failed: None,
        }
    }

    /// Asks the node to stop request `id` (a run then ends with what it has).
    pub fn cancel(&self, id: RequestId) {
        let _ = self.to.try_send(ToNode::Cancel { id });
    }
}

/// Routes the node's messages: updates to the client in order (waiting
/// for room, so the node sees a slow reader and marks the gap), answers
/// to whoever asked. A client that dropped its updates still gets its
/// answers: from then on updates are let go here.
async fn dispatch(
    mut from: mpsc::Receiver<FromNode>,
    updates: mpsc::Sender<Update>,
    waiting: Waiting,
) {
    let mut updates = Some(updates);
    while let Some(message) = from.recv().await {
        match message {
            FromNode::Update(u) => {
                if let Some(tx) = &updates {
                    if tx.send(u).await.is_err() {
                        updates = None;
                    }
                }
            }
            FromNode::Part { id, part } => {
                let tx = waiting
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .as_ref()
                    .and_then(|w| w.get(&id).cloned());
                if let Some(tx) = tx {
                    let _ = tx.send(Answer::Part(part)).await;
                }
            }
            FromNode::Done { id, reply } => {
                let tx = waiting
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .as_mut()
                    .and_then(|w| w.remove(&id));
                if let Some(tx) = tx {
                    let _ = tx.send(Answer::Done(reply)).await;
                }
            }
            FromNode::Hello { .. } => {}
        }
    }
    // Whoever waits hears that the node is gone.
    *waiting.lock().unwrap_or_else(|e| e.into_inner()) = None;
}

/// A request's answer as it arrives. Dropped before its last word, it
/// cancels the request on the node.
pub struct Pending {
    id: RequestId,
    rx: Option<mpsc::Receiver<Answer>>,
    to: Option<mpsc::Sender<ToNode>>,
    failed: Option<&'static str>,
}

impl Pending {
    fn failed(id: RequestId, why: &'static str) -> Self {
        Self {
            id,
            rx: None,
            to: None,
            failed: Some(why),
        }
    }

    pub fn id(&self) -> RequestId {
        self.id
    }

    /// The next part, or the last word (then `None` after it). A node that
    /// goes away answers with `Refused`.
    pub async fn next(&mut self) -> Option<Answer> {
        if let Some(why) = self.failed.take() {
            return Some(Answer::Done(Reply::Refused(why.into())));
        }
        let rx = self.rx.as_mut()?;
        match rx.recv().await {
            Some(Answer::Done(reply)) => {
                self.finish();
                Some(Answer::Done(reply))
            }
            Some(part) => Some(part),
            None => {
                self.finish();
                Some(Answer::Done(Reply::Refused("the node is gone".into())))
            }
        }
    }

    /// Waits for the last word, skipping parts.
    pub async fn reply(mut self) -> Reply {
        loop {
            match self.next().await {
                Some(Answer::Done(reply)) => return reply,
                Some(Answer::Part(_)) => {}
                None => return Reply::Refused("the answer was already taken".into()),
            }
        }
    }

    fn finish(&mut self) {
        self.rx = None;
        self.to = None;
    }
}

impl Drop for Pending {
    fn drop(&mut self) {
        if let Some(to) = self.to.take() {
            let _ = to.try_send(ToNode::Cancel { id: self.id });
        }
    }
}
