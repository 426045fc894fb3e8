//! Fleet-wide actions, each carried out by every node it names, with one
//! result per node. A read-only context refuses here, before its node is
//! asked; a node's own refusal (an observer's connection) comes back too.

use std::time::{Duration, SystemTime};

use tokio::sync::mpsc;

use super::contexts::Context;
use super::follow::Heard;
use crate::control::message::Greeting;
use crate::control::{client, Reply, Request, Role};

/// Re-reads the route file on each of `which`; each result is sent as
/// `(index, Heard::Action)`.
pub fn reload_routes(
    contexts: &[Context],
    which: &[usize],
    answer_within: Duration,
) -> mpsc::Receiver<(usize, Heard)> {
    let (tx, rx) = mpsc::channel(which.len().max(1));
    for &i in which {
        let Some(context) = contexts.get(i).cloned() else {
            continue;
        };
        let tx = tx.clone();
        tokio::spawn(async move {
            let (ok, text) = match reload_one(&context, answer_within).await {
                Ok(text) => (true, text),
                Err(why) => (false, why),
            };
            let heard = Heard::Action {
                at: SystemTime::now(),
                ok,
                text: format!("reload routes: {text}"),
            };
            let _ = tx.send((i, heard)).await;
        });
    }
    rx
}

async fn reload_one(context: &Context, within: Duration) -> Result<String, String> {
    if context.read_only {
        return Err("refused: the context is read-only".into());
    }
    let target = context.reach()?;
    let greeting = Greeting {
        role: Role::Full,
        quiet: true,
    };
    let (link, _updates) = tokio::time::timeout(within, client::connect(&target, greeting))
        .await
        .map_err(|_| format!("no answer within {within:?}"))??;
    let reply = tokio::time::timeout(within, link.request(Request::ReloadRoutes).reply())
        .await
        .map_err(|_| format!("no answer within {within:?}"))?;
    match reply {
        Reply::Text(result) => result,
        Reply::Refused(why) => Err(format!("refused: {why}")),
        other => Err(format!(
            "the node answered {other:?}; is it older than this peerapi?"
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_read_only_context_refuses_before_its_node_is_asked() {
        let ctx = |name: &str, read_only| Context {
            name: name.into(),
            // Nothing listens here: only a context that asks would find out.
            target: format!("unix:/nonexistent/{name}.sock"),
            labels: Default::default(),
            read_only,
            color: None,
        };
        let contexts = [ctx("ro", true), ctx("rw", false)];
        let mut rx = reload_routes(&contexts, &[0, 1], Duration::from_secs(5));
        let mut results = std::collections::BTreeMap::new();
        while let Some((i, heard)) = rx.recv().await {
            if let Heard::Action { ok, text, .. } = heard {
                results.insert(i, (ok, text));
            }
        }
        assert_eq!(
            results[&0],
            (
                false,
                "reload routes: refused: the context is read-only".to_string()
            )
        );
        let (ok, text) = &results[&1];
        assert!(!ok && text.contains("cannot connect"), "{text}");
    }
}
