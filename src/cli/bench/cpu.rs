//! `peerapi bench --cpu`: what the hop costs in CPU, all processes
//! together (the caller and the backend in this process, the serving node
//! in its own), against the same work sent straight to the backend. On a
//! 2-core machine wall-clock ratios mostly measure contention; CPU-seconds
//! per unit of work are what a server operator pays.

use std::path::Path;
use std::time::{Duration, Instant};

use futures::StreamExt;
use peerapi::node::{CallRequest, NodeConfig};
use peerapi::Node;

use super::proc_cpu::{cpu_ticks, ticks_per_sec};

/// Calls in flight at once in the unary runs.
const AT_ONCE: usize = 16;

struct Killed(std::process::Child);

impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// CPU-seconds used by this process and `pid` together while `work` ran.
async fn cpu_of<F: std::future::Future<Output = Result<(), String>>>(
    pid: u32,
    work: F,
) -> Result<(f64, Duration), String> {
    let ticks = || cpu_ticks(std::process::id()).unwrap_or(0) + cpu_ticks(pid).unwrap_or(0);
    let before = ticks();
    let t = Instant::now();
    work.await?;
    let wall = t.elapsed();
    Ok((
        ticks().saturating_sub(before) as f64 / ticks_per_sec(),
        wall,
    ))
}

pub(super) async fn run(exe: &Path, quick: bool) -> Result<String, String> {
    let progress = |s: &str| eprintln!("bench: cpu: {s}…");
    let backend = peerapi::testkit::start_backend()
        .await
        .map_err(|e| format!("cannot start the backend: {e}"))?;
    let (_dir, routes) = peerapi::testkit::bench_routes(backend, "cpu")?;
    let (child, addr) = peerapi::testkit::spawn_node(
        exe,
        &routes,
        &["--no-control", "--max-concurrent-calls", "1024"],
        &[("RUST_LOG", "error")],
        Duration::from_secs(30),
    )?;
    let node = Killed(child);
    let pid = node.0.id();
    let mut config = NodeConfig::new(libp2p::identity::Keypair::generate_ed25519()).only_calls();
    config.listen = Vec::new();
    let caller = Node::start(config).await.map_err(|e| e.to_string())?;
    let h = caller.handle();
    let http = reqwest::Client::new();
    h.call(&addr, CallRequest::new("small"))
        .await
        .map_err(|e| format!("first call: {e}"))?;
    let calls = if quick { 2_000 } else { 10_000 };

    progress(&format!("{calls} unary calls through the hop"));
    let (hop_cpu, hop_wall) = cpu_of(pid, async {
        let failed = futures::stream::iter(0..calls)
            .map(|_| h.call(&addr, CallRequest::new("small")))
            .buffer_unordered(AT_ONCE)
            .filter(|r| std::future::ready(r.is_err()))
            .count()
            .await;
        match failed {
            0 => Ok(()),
            n => Err(format!("{n} calls through the hop failed")),
        }
    })
    .await?;
    progress(&format!("{calls} unary calls straight to the backend"));
    let url = format!("http://{backend}/small");
    let (direct_cpu, direct_wall) = cpu_of(pid, async {
        let failed = futures::stream::iter(0..calls)
            .map(|_| {
                let (http, url) = (&http, &url);
                async move {
                    match http.get(url).send().await {
                        Ok(r) => r.bytes().await.is_err(),
                        Err(_) => true,
                    }
                }
            })
            .buffer_unordered(AT_ONCE)
            .filter(|failed| std::future::ready(*failed))
            .count()
            .await;
        match failed {
            0 => Ok(()),
            n => Err(format!("{n} direct calls failed")),
        }
    })
    .await?;

    // The bench routes' one body: 256 MiB, quick or not.
    let (route, bytes) = ("blob", 256u64 << 20);
    let blob_url = format!("http://{backend}/blob?n={bytes}");
    progress(&format!("a {} MiB body through the hop", bytes >> 20));
    let (hop_body_cpu, _) = cpu_of(pid, async {
        let mut s = h
            .stream(&addr, CallRequest::new(route))
            .await
            .map_err(|e| e.to_string())?;
        let mut got = 0u64;
        while let Some(chunk) = s.next().await {
            got += chunk.map_err(|e| e.to_string())?.len() as u64;
        }
        (got == bytes)
            .then_some(())
            .ok_or(format!("hop body: {got} bytes"))
    })
    .await?;
    progress(&format!(
        "a {} MiB body straight from the backend",
        bytes >> 20
    ));
    let (direct_body_cpu, _) = cpu_of(pid, async {
        let r = http
            .get(&blob_url)
            .send()
            .await
            .map_err(|e| e.to_string())?;
        let mut body = r.bytes_stream();
        let mut got = 0u64;
        while let Some(chunk) = body.next().await {
            got += chunk.map_err(|e| e.to_string())?.len() as u64;
        }
        (got == bytes)
            .then_some(())
            .ok_or(format!("direct body: {got} bytes"))
    })
    .await?;
    caller.abort();

    let per_k = |cpu: f64| cpu / calls as f64 * 1000.0;
    let per_gb = |cpu: f64| cpu / (bytes as f64 / 1e9);
    Ok(format!(
        "CPU per unit of work, every process together (caller and backend here, the serving node its own), 2.0.0, {AT_ONCE} at once\n\
         \x20                              through the hop     straight to the backend   hop / direct\n\
         \x20 1,000 unary calls (small)    {:>8.3} CPU-s       {:>8.3} CPU-s            {:>6.1}x   ({calls} calls: {:.1} s and {:.1} s wall)\n\
         \x20 1 GB streamed ({} MiB body)  {:>8.3} CPU-s       {:>8.3} CPU-s            {:>6.1}x\n",
        per_k(hop_cpu),
        per_k(direct_cpu),
        hop_cpu / direct_cpu.max(1e-9),
        hop_wall.as_secs_f64(),
        direct_wall.as_secs_f64(),
        bytes >> 20,
        per_gb(hop_body_cpu),
        per_gb(direct_body_cpu),
        hop_body_cpu / direct_body_cpu.max(1e-9),
    ))
}
