//! A node in another process, linked: what an attached console runs on,
//! how it links again, and how a switch hands a new one over.

use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex};

use crate::control::{NodeLink, Updates};

/// Links to the node again (an attached console's way back).
pub type Reconnect = Arc<
    dyn Fn() -> Pin<Box<dyn Future<Output = Result<(NodeLink, Updates), String>> + Send>>
        + Send
        + Sync,
>;

/// A node in another process, linked: what an attached console runs on.
pub struct Reached {
    /// Which node it is, as the console's title says.
    pub name: String,
    pub link: NodeLink,
    pub updates: Updates,
    pub reconnect: Reconnect,
}

/// A node linked for a switch, handed to the console once (an action is
/// cloneable; a link's update stream is not).
#[derive(Clone)]
pub struct Switched(Arc<Mutex<Option<Reached>>>);

impl Switched {
    pub(super) fn new(reached: Reached) -> Self {
        Self(Arc::new(Mutex::new(Some(reached))))
    }

    pub fn take(&self) -> Option<Reached> {
        self.0.lock().ok()?.take()
    }
}

impl std::fmt::Debug for Switched {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Switched(..)")
    }
}
