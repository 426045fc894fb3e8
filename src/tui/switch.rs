//! Reaching a node that runs elsewhere, for an attached console: the first
//! link (`peerapi attach`, Enter in the fleet view), the way back after the
//! node went away, and a switch to another context's node (`:ctx NAME`),
//! linked before the console lets go of the node it shows.

use std::sync::Arc;

use tokio::sync::mpsc;

use super::action::Action;
use super::reached::{Reached, Reconnect, Switched};
use crate::control::client::{self, Target};
use crate::control::Role;
use crate::fleet::Context;

/// Links to `target` as `role`, and keeps the way to link again.
pub async fn reach(target: Target, role: Role, name: String) -> Result<Reached, String> {
    let (link, updates) = client::connect(&target, role).await?;
    let reconnect: Reconnect = Arc::new(move || {
        let target = target.clone();
        Box::pin(async move { client::connect(&target, role).await })
    });
    Ok(Reached {
        name,
        link,
        updates,
        reconnect,
    })
}

/// Links to a context's node, read-only when the context says so.
pub async fn reach_context(context: &Context) -> Result<Reached, String> {
    let role = if context.read_only {
        Role::Observe
    } else {
        Role::Full
    };
    reach(context.reach()?, role, context.name.clone()).await
}

/// Links to the context `name` in the background; the console hears
/// `Action::Switched` when it is linked, or a notice saying why not. The
/// node shown until then stays.
pub(super) fn start(contexts: &[Context], name: String, tx: mpsc::Sender<Action>) {
    let Some(context) = contexts.iter().find(|c| c.name == name).cloned() else {
        let _ = tx.try_send(Action::Notice(format!("no context {name:?}")));
        return;
    };
    let _ = tx.try_send(Action::Notice(format!("switching to {name}…")));
    tokio::spawn(async move {
        let action = match reach_context(&context).await {
            Ok(reached) => Action::Switched(Switched::new(reached)),
            Err(e) => Action::Notice(format!("cannot switch to {name}: {e} (still here)")),
        };
        let _ = tx.send(action).await;
    });
}
