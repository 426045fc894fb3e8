//! `peerapi bench --attach`: what attaching costs, against the console's
//! in-process link in the same run. Three figures:
//! - latency: the same events seen on the node's own broadcast, through
//!   the in-process link, and through a control socket (one process, so
//!   one clock), per event;
//! - events per second a linked client takes before the node marks a
//!   gap, with events published as fast as the node can;
//! - a `peerapi node` process's memory with 4 attached clients against none,
//!   after the same served calls.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use peerapi::control::{client, socket, NodeLink, Role, Update, Updates};
use peerapi::node::{CallId, NodeEvent, ServeOutcome};
use peerapi::testkit::{start_backend, ServingNode};

use super::measure::client as caller;

type Seen = Arc<Mutex<HashMap<u64, Instant>>>;

/// Records when each served call's end arrives through `updates`.
fn record_link(mut updates: Updates, seen: Seen) {
    tokio::spawn(async move {
        while let Some(u) = updates.recv().await {
            if let Update::Event(NodeEvent::ServeFinished { id, .. }) = u {
                seen.lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .insert(id.0, Instant::now());
            }
        }
    });
}

fn added(base: &Seen, other: &Seen) -> Vec<Duration> {
    let base = base.lock().unwrap_or_else(|e| e.into_inner());
    let other = other.lock().unwrap_or_else(|e| e.into_inner());
    base.iter()
        .filter_map(|(id, t)| other.get(id).map(|o| o.saturating_duration_since(*t)))
        .collect()
}

fn pct(values: Vec<Duration>) -> String {
    match peerapi::load::Percentiles::of(values) {
        Some(p) => format!(
            "p50 {:>7.1} µs  p99 {:>7.1} µs  ({} events)",
            p.p50 * 1e6,
            p.p99 * 1e6,
            p.count
        ),
        None => "no events".into(),
    }
}

/// Counts events and gaps a link delivers until `stop`.
async fn count(mut updates: Updates, stop: Instant) -> (u64, u64) {
    let (mut events, mut missed) = (0u64, 0u64);
    while let Ok(Some(u)) = tokio::time::timeout_at(stop.into(), updates.recv()).await {
        match u {
            Update::Event(_) => events += 1,
            Update::Gap { missed: m } => missed += m,
            _ => {}
        }
    }
    (events, missed)
}

/// The p50 of `n` unary calls from `calling` to `addr`.
async fn served_p50(
    calling: &peerapi::Node,
    addr: &libp2p::Multiaddr,
    n: usize,
) -> Result<Duration, String> {
    let mut took = Vec::with_capacity(n);
    for _ in 0..n {
        let started = Instant::now();
        calling
            .handle()
            .call_remote(addr, "small", "GET", Default::default(), Vec::new())
            .await
            .map_err(|e| e.to_string())?;
        took.push(started.elapsed());
    }
    took.sort();
    Ok(took[took.len() / 2])
}

/// A control client that says hello and then never reads.
async fn stuck_client(path: &std::path::Path) -> Result<tokio::net::UnixStream, String> {
    use tokio::io::AsyncWriteExt;
    let mut s = tokio::net::UnixStream::connect(path)
        .await
        .map_err(|e| e.to_string())?;
    let hello = peerapi::control::frame::encode(&peerapi::control::ToNode::Hello {
        version: peerapi::control::CONTROL_VERSION,
        role: Role::Observe,
        quiet: false,
    })?;
    s.write_all(&(hello.len() as u32).to_be_bytes())
        .await
        .map_err(|e| e.to_string())?;
    s.write_all(&hello).await.map_err(|e| e.to_string())?;
    Ok(s)
}

/// Publishes `rate` events a second for one second and counts what
/// `updates` delivers.
async fn paced(
    handle: &peerapi::NodeHandle,
    updates: Updates,
    rate: u64,
) -> Result<(u64, u64, f64), String> {
    let counter = tokio::spawn(count(updates, Instant::now() + Duration::from_millis(1500)));
    let secs = super::paced::publish_paced(rate, 1, |n| {
        handle.emit_for_bench(NodeEvent::ServeFinished {
            id: CallId(n),
            outcome: ServeOutcome::Ok { status: 200 },
            bytes: 80,
            elapsed: Duration::from_micros(90),
            backend_first_byte: None,
        })
    })
    .await;
    let (taken, missed) = counter.await.map_err(|e| e.to_string())?;
    Ok((taken, missed, secs))
}

pub(crate) async fn run(exe: &std::path::Path, quick: bool) -> Result<String, String> {
    let calls = if quick { 300 } else { 3000 };
    let mut out = String::new();
    let backend = start_backend().await.map_err(|e| e.to_string())?;
    let mut routes = peerapi::RouteTable::new();
    routes.insert(
        "small".into(),
        peerapi::Route::new(format!("http://{backend}/small"), false),
    );
    let mut config = peerapi::NodeConfig::new(libp2p::identity::Keypair::generate_ed25519());
    config.listen = vec!["/ip4/127.0.0.1/tcp/0".parse().map_err(|e| format!("{e}"))?];
    config.routes = peerapi::Routes::new(routes);
    let node = peerapi::Node::start(config)
        .await
        .map_err(|e| e.to_string())?;
    let handle = node.handle();
    let addr = handle
        .listen_addrs()
        .await
        .map_err(|e| e.to_string())?
        .into_iter()
        .next()
        .ok_or("the node has no address")?;
    let dir = peerapi::testkit::TempDir::new(&format!("attach-{}", std::process::id()))?;
    let path = dir.path().join("ctl").join("bench.sock");
    let _socket = socket::listen(handle.clone(), socket::ControlOptions::at(path.clone()))
        .await
        .map_err(|e| e.to_string())?;

    // 1. Latency per event: the same served calls' ends, three ways.
    eprintln!("bench: attach latency ({calls} served calls)…");
    let (raw, in_proc, attached): (Seen, Seen, Seen) = Default::default();
    let mut events = handle.subscribe();
    let raw_rec = raw.clone();
    tokio::spawn(async move {
        while let Ok(ev) = events.recv().await {
            if let NodeEvent::ServeFinished { id: CallId(id), .. } = ev {
                raw_rec
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .insert(id, Instant::now());
            }
        }
    });
    let (_l1, u1) = NodeLink::in_process(&handle, Role::Observe)
        .await
        .map_err(|e| e.to_string())?;
    record_link(u1, in_proc.clone());
    let (_l2, u2) = client::connect_socket(&path, Role::Observe).await?;
    record_link(u2, attached.clone());
    let calling = caller(peerapi::node::ProtocolChoice::Auto).await?;
    for _ in 0..calls {
        calling
            .handle()
            .call_remote(&addr, "small", "GET", Default::default(), Vec::new())
            .await
            .map_err(|e| e.to_string())?;
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    out.push_str("attach: what a console's link adds to each node event (same events, same run)\n");
    out.push_str(&format!(
        "  in-process link (the console today) {}\n",
        pct(added(&raw, &in_proc))
    ));
    out.push_str(&format!(
        "  control socket (attached)           {}\n",
        pct(added(&raw, &attached))
    ));
    out.push_str(&format!(
        "  attaching adds (socket - in-process) {}\n",
        pct(added(&in_proc, &attached))
    ));

    // 2. Events per second taken before a gap: paced, rising rates.
    let rates: &[u64] = if quick {
        &[10_000, 100_000]
    } else {
        &[10_000, 30_000, 100_000, 300_000, 1_000_000]
    };
    eprintln!("bench: attach events per second (1 s at each rate)…");
    out.push_str(
        "  events a linked client takes, published at a steady rate for 1 s:
",
    );
    for &rate in rates {
        for (name, linked) in [("in-process link", false), ("control socket", true)] {
            let (_l, u) = if linked {
                client::connect_socket(&path, Role::Observe).await?
            } else {
                NodeLink::in_process(&handle, Role::Observe)
                    .await
                    .map_err(|e| e.to_string())?
            };
            let (taken, missed, secs) = paced(&handle, u, rate).await?;
            out.push_str(&format!(
                "    {rate:>9}/s  {name:<16} taken {:>9.0}/s  missed {missed}{}\n",
                taken as f64 / secs,
                if missed > 0 { " (gap marked)" } else { "" },
            ));
        }
    }

    #[cfg(feature = "console")]
    {
        eprintln!("bench: events a console drawing at 160x48 takes…");
        let rates: &[u64] = if quick {
            &[10_000, 100_000]
        } else {
            &[10_000, 30_000, 100_000, 300_000]
        };
        out.push_str(&super::attach_console::rates(&handle, &path, rates).await?);
    }

    // 3. Served calls beside a client that never reads, interleaved with
    // rounds without it.
    eprintln!("bench: served calls beside a control client that never reads…");
    let rounds = if quick { 1 } else { 3 };
    let (mut with, mut without) = (Vec::new(), Vec::new());
    for _ in 0..rounds {
        without.push(served_p50(&calling, &addr, calls / 3).await?);
        let stuck = stuck_client(&path).await?;
        with.push(served_p50(&calling, &addr, calls / 3).await?);
        drop(stuck);
    }
    let median = |v: &mut Vec<Duration>| {
        v.sort();
        v[v.len() / 2]
    };
    let (w, wo) = (median(&mut with), median(&mut without));
    out.push_str(&format!(
        "  served-call p50 beside a client that never reads: {:.1} µs, without: {:.1} µs (ratio {:.2}; {rounds} interleaved rounds)\n",
        w.as_secs_f64() * 1e6,
        wo.as_secs_f64() * 1e6,
        w.as_secs_f64() / wo.as_secs_f64().max(1e-9),
    ));

    // 4. A node process's memory with 4 attached clients against none.
    eprintln!("bench: attach memory (a node process, 0 then 4 clients)…");
    let ctl = dir.path().join("ctl2").join("p.sock");
    let ctl_arg = ctl.to_string_lossy().into_owned();
    let process = ServingNode::start(exe, backend, 64, &["--control".into(), ctl_arg])?;
    let mut rows = Vec::new();
    let mut clients = Vec::new();
    for n in [0usize, 4] {
        while clients.len() < n {
            clients.push(client::connect_socket(&ctl, Role::Observe).await?);
        }
        for _ in 0..calls {
            calling
                .handle()
                .call_remote(
                    &process.addr,
                    "small",
                    "GET",
                    Default::default(),
                    Vec::new(),
                )
                .await
                .map_err(|e| e.to_string())?;
        }
        tokio::time::sleep(Duration::from_millis(300)).await;
        rows.push((n, process.rss_mb().unwrap_or(0.0)));
    }
    for (n, mb) in &rows {
        out.push_str(&format!(
            "  node process, {n} attached: {mb:.1} MB resident after {calls} more served calls\n"
        ));
    }
    drop(clients);
    node.shutdown().await;
    Ok(out)
}
