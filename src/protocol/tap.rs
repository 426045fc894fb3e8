//! Taps on served calls: an operator's explicit request to see the body a
//! node sends to its callers (the tokens it streams), for one call or one
//! route. Never on by default; each tap is bounded in bytes and queue,
//! counts what it could not keep, and ends when its reader goes away.

use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use serde::{Deserialize, Serialize};
use tokio::sync::mpsc;

use super::events::CallId;

/// Body bytes one tap passes on by default; then it says it is full.
pub const DEFAULT_TAP_BYTES: u64 = 4 * 1024 * 1024;
/// Chunks queued for a tap's reader; more are counted as dropped.
pub const TAP_QUEUE: usize = 256;

/// What a tap watches.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum TapOn {
    Route(String),
    Call(CallId),
}

/// Body bytes of a served call, as its caller got them.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct TapChunk {
    pub call: CallId,
    pub route: String,
    pub bytes: Bytes,
}

struct Tap {
    on: TapOn,
    tx: mpsc::Sender<TapChunk>,
    left: Arc<AtomicU64>,
    dropped: Arc<AtomicU64>,
}

/// The node's open taps (none, nearly always: then a served chunk costs
/// one atomic load).
#[derive(Default)]
pub struct Taps {
    open: AtomicUsize,
    list: Mutex<Vec<Tap>>,
}

/// One open tap: its chunks, and what it had to leave out. Dropping it
/// closes the tap.
pub struct TapReader {
    pub chunks: mpsc::Receiver<TapChunk>,
    left: Arc<AtomicU64>,
    dropped: Arc<AtomicU64>,
}

impl TapReader {
    /// Bytes not passed on: the reader was behind, or the tap was full.
    pub fn dropped(&self) -> u64 {
        self.dropped.load(Ordering::Relaxed)
    }

    /// Whether the tap's byte budget is spent.
    pub fn full(&self) -> bool {
        self.left.load(Ordering::Relaxed) == 0
    }
}

impl Taps {
    /// Opens a tap on `on`, passing on at most `max_bytes`.
    pub fn open(&self, on: TapOn, max_bytes: u64) -> TapReader {
        let (tx, chunks) = mpsc::channel(TAP_QUEUE);
        let left = Arc::new(AtomicU64::new(max_bytes));
        let dropped = Arc::new(AtomicU64::new(0));
        let mut list = self.list.lock().unwrap_or_else(|e| e.into_inner());
        list.retain(|t| !t.tx.is_closed());
        list.push(Tap {
            on,
            tx,
            left: left.clone(),
            dropped: dropped.clone(),
        });
        self.open.store(list.len(), Ordering::Relaxed);
        TapReader {
            chunks,
            left,
            dropped,
        }
    }

    /// Gives `chunks` of served call `call` (route `route`) to the taps on it.
    pub(crate) fn offer(&self, call: CallId, route: &str, chunks: &[Bytes]) {
        if self.open.load(Ordering::Relaxed) == 0 {
            return;
        }
        let mut list = self.list.lock().unwrap_or_else(|e| e.into_inner());
        list.retain(|t| !t.tx.is_closed());
        self.open.store(list.len(), Ordering::Relaxed);
        for tap in list.iter() {
            let wanted = match &tap.on {
                TapOn::Route(r) => r == route,
                TapOn::Call(c) => *c == call,
            };
            if !wanted {
                continue;
            }
            for chunk in chunks {
                let len = chunk.len() as u64;
                let left = tap.left.load(Ordering::Relaxed);
                let sent = left >= len
                    && tap
                        .tx
                        .try_send(TapChunk {
                            call,
                            route: route.to_string(),
                            bytes: chunk.clone(),
                        })
                        .is_ok();
                if sent {
                    tap.left.fetch_sub(len, Ordering::Relaxed);
                } else {
                    tap.dropped.fetch_add(len, Ordering::Relaxed);
                }
            }
        }
    }
}
