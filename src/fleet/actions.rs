//! Fleet-wide actions, each carried out by every node it names, with one
//! result per node. A read-only context refuses here, before its node is
//! asked; a node's own refusal (an observer's connection) comes back too.

use std::time::{Duration, SystemTime};

use tokio::sync::mpsc;

use super::contexts::Context;
use super::follow::Heard;
use crate::control::message::{CallSpec, Greeting};
use crate::control::{client, NodeLink, Reply, Request, Role, Update, Updates};
use crate::load::PeerResult;
use crate::protocol::call::CallRequest;

/// Re-reads the route file on each of `which`; each result is sent as
/// `(index, Heard::Action)`.
pub fn reload_routes(
    contexts: &[Context],
    which: &[usize],
    answer_within: Duration,
) -> mpsc::Receiver<(usize, Heard)> {
    on_each(
        contexts,
        which,
        "reload routes",
        move |context| async move {
            let (link, _) = link_full(&context, true, answer_within).await?;
            let reply =
                tokio::time::timeout(answer_within, link.request(Request::ReloadRoutes).reply())
                    .await
                    .map_err(|_| format!("no answer within {answer_within:?}"))?;
            match reply {
                Reply::Text(result) => result,
                other => Err(unexpected(other)),
            }
        },
    )
}

/// What a fleet-wide fan-out sends: `[stream] ROUTE [BODY]`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FanOutAsk {
    pub route: String,
    pub body: String,
    pub stream: bool,
}

impl FanOutAsk {
    pub fn parse(text: &str) -> Result<Self, String> {
        let text = text.trim();
        let (stream, rest) = match text.strip_prefix("stream ") {
            Some(rest) => (true, rest.trim_start()),
            None => (false, text),
        };
        let (route, body) = rest.split_once(char::is_whitespace).unwrap_or((rest, ""));
        if route.is_empty() {
            return Err("type [stream] ROUTE [BODY], e.g. inference {\"prompt\":\"hi\"}".into());
        }
        Ok(Self {
            route: route.into(),
            body: body.trim().into(),
            stream,
        })
    }
}

/// Each of `which` calls `ask` on every connected peer that serves the API
/// protocol (from its own peer list), at once; one summary per node.
pub fn fan_out(
    contexts: &[Context],
    which: &[usize],
    ask: FanOutAsk,
    answer_within: Duration,
    call_within: Duration,
) -> mpsc::Receiver<(usize, Heard)> {
    let what = format!("fan-out {}", ask.route);
    on_each(contexts, which, &what, move |context| {
        let ask = ask.clone();
        async move {
            let (link, updates) = link_full(&context, false, answer_within).await?;
            let peers = api_peers(updates, answer_within).await?;
            if peers.is_empty() {
                return Err("no connected peer serves the API protocol".into());
            }
            let method = if ask.body.is_empty() { "GET" } else { "POST" };
            let spec = CallSpec {
                target: String::new(),
                request: CallRequest::new(&ask.route)
                    .method(method)
                    .body(ask.body.clone().into_bytes()),
                stream: ask.stream,
            };
            let pending = link.request(Request::FanOut { spec, peers });
            let reply = tokio::time::timeout(call_within, pending.reply())
                .await
                .map_err(|_| format!("not done within {call_within:?}"))?;
            match reply {
                Reply::FanOutDone(results) => Ok(summarise(&results)),
                other => Err(unexpected(other)),
            }
        }
    })
}

/// One line for a node's fan-out: how many answered, how fast, whether
/// they agreed.
pub fn summarise(results: &[PeerResult]) -> String {
    let ok: Vec<&PeerResult> = results
        .iter()
        .filter(|r| r.sample.error.is_none())
        .collect();
    let mut line = format!("{}/{} peers answered", ok.len(), results.len());
    let mut times: Vec<Duration> = ok.iter().map(|r| r.sample.e2e).collect();
    times.sort();
    if let (Some(first), Some(last)) = (times.first(), times.last()) {
        let median = times[times.len() / 2];
        line.push_str(&format!(
            ", {:.0}/{:.0}/{:.0} ms min/p50/max",
            first.as_secs_f64() * 1e3,
            median.as_secs_f64() * 1e3,
            last.as_secs_f64() * 1e3
        ));
    }
    let differing = results
        .iter()
        .filter(|r| r.same_as_majority == Some(false))
        .count();
    if differing > 0 {
        line.push_str(&format!(", {differing} body differs from the majority"));
    }
    if let Some(failed) = results.iter().find(|r| r.sample.error.is_some()) {
        let class = failed.sample.error.as_deref().unwrap_or("failed");
        line.push_str(&format!(", first failure: {class}"));
    }
    line
}

/// Runs `act` on each context of `which`, on its own task; each outcome
/// goes out as `(index, Heard::Action)` named `what`. A read-only context
/// refuses before its node is asked.
fn on_each<F, Fut>(
    contexts: &[Context],
    which: &[usize],
    what: &str,
    act: F,
) -> mpsc::Receiver<(usize, Heard)>
where
    F: Fn(Context) -> Fut + Clone + Send + 'static,
    Fut: std::future::Future<Output = Result<String, String>> + Send + 'static,
{
    let (tx, rx) = mpsc::channel(which.len().max(1));
    for &i in which {
        let Some(context) = contexts.get(i).cloned() else {
            continue;
        };
        let (tx, act, what) = (tx.clone(), act.clone(), what.to_string());
        tokio::spawn(async move {
            let outcome = if context.read_only {
                Err("refused: the context is read-only".into())
            } else {
                act(context).await
            };
            let (ok, text) = match outcome {
                Ok(text) => (true, text),
                Err(why) => (false, why),
            };
            let heard = Heard::Action {
                at: SystemTime::now(),
                ok,
                text: format!("{what}: {text}"),
            };
            let _ = tx.send((i, heard)).await;
        });
    }
    rx
}

/// A full-role link to a context's node; `quiet`: answers only.
async fn link_full(
    context: &Context,
    quiet: bool,
    within: Duration,
) -> Result<(NodeLink, Updates), String> {
    let target = context.reach()?;
    let greeting = Greeting {
        role: Role::Full,
        quiet,
    };
    let (link, updates) = tokio::time::timeout(within, client::connect(&target, greeting))
        .await
        .map_err(|_| format!("no answer within {within:?}"))??;
    if link.role() != Role::Full {
        return Err("refused: the node gave this client watch-only control".into());
    }
    Ok((link, updates))
}

/// The API peers in the node's first snapshot.
async fn api_peers(mut updates: Updates, within: Duration) -> Result<Vec<String>, String> {
    let snapshot = async {
        while let Some(update) = updates.recv().await {
            if let Update::Snapshot(snap) = update {
                return Some(snap.peers);
            }
        }
        None
    };
    match tokio::time::timeout(within, snapshot).await {
        Ok(Some(peers)) => Ok(peers
            .iter()
            .filter(|p| p.serves_api_v1())
            .map(|p| p.dial_addr())
            .collect()),
        Ok(None) => Err("the node went away before it listed its peers".into()),
        Err(_) => Err(format!("no peer list within {within:?}")),
    }
}

fn unexpected(reply: Reply) -> String {
    match reply {
        Reply::Refused(why) => format!("refused: {why}"),
        other => format!("the node answered {other:?}; is it older than this peerapi?"),
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

    #[test]
    fn a_fan_out_is_typed_as_stream_route_and_body() {
        let ask = |t: &str| FanOutAsk::parse(t);
        assert_eq!(
            ask("inference {\"prompt\": \"hi\"}"),
            Ok(FanOutAsk {
                route: "inference".into(),
                body: "{\"prompt\": \"hi\"}".into(),
                stream: false
            })
        );
        assert_eq!(
            ask("  stream  generate  x "),
            Ok(FanOutAsk {
                route: "generate".into(),
                body: "x".into(),
                stream: true
            })
        );
        assert_eq!(ask("health").map(|a| a.body), Ok(String::new()));
        assert!(ask("").is_err() && ask("   ").is_err());
        // A route may be called "stream": alone, it is the route.
        assert_eq!(
            ask("stream").map(|a| (a.route, a.stream)),
            Ok(("stream".into(), false))
        );
    }
}
