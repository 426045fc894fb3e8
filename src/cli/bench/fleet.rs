//! `peerapi bench --fleet N`: what watching N nodes costs. N `peerapi
//! node` processes with control sockets; the fleet view's own code (probes
//! as `peerapi fleet` runs them, the view drawn to a 160x48 test backend)
//! in this process. Measured: time from start until every row is filled,
//! frame time with N live rows, and each node's idle CPU without and with
//! the fleet watching, in the same run.

use std::path::Path;
use std::time::{Duration, Instant};

use peerapi::fleet::{Context, Fleet, ProbeOptions, Reach};
use peerapi::tui::fleet::FleetView;
use ratatui::backend::TestBackend;
use ratatui::Terminal;

use super::proc_cpu::idle_cpu;

struct Nodes(Vec<std::process::Child>);

impl Drop for Nodes {
    fn drop(&mut self) {
        for c in &mut self.0 {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

fn percentile(v: &mut [Duration], p: f64) -> Duration {
    v.sort();
    v.get(((v.len().max(1) - 1) as f64 * p).round() as usize)
        .copied()
        .unwrap_or_default()
}

pub(super) async fn run(exe: &Path, n: usize, quick: bool) -> Result<String, String> {
    let dir = peerapi::testkit::TempDir::new(&format!("fleet-{}", std::process::id()))?;
    let routes = dir.path().join("routes.json");
    std::fs::write(&routes, "{}").map_err(|e| e.to_string())?;
    eprintln!("bench: fleet of {n}: starting {n} node processes…");
    let mut nodes = Nodes(Vec::with_capacity(n));
    let mut contexts = Vec::with_capacity(n);
    for i in 0..n {
        let socket = dir.path().join("ctl").join(format!("n{i}.sock"));
        let socket_arg = socket.to_string_lossy().into_owned();
        let (child, _) = peerapi::testkit::spawn_node(
            exe,
            &routes,
            &["--control", &socket_arg, "--name", &format!("n{i}")],
            &[],
            Duration::from_secs(30),
        )?;
        nodes.0.push(child);
        contexts.push(Context {
            name: format!("n{i}"),
            target: format!("unix:{socket_arg}"),
            labels: Default::default(),
            read_only: true,
            color: None,
        });
    }
    let pids: Vec<u32> = nodes.0.iter().map(|c| c.id()).collect();
    let idle = if quick {
        Duration::from_secs(5)
    } else {
        Duration::from_secs(20)
    };
    let title = format!("fleet of {n} nodes (control sockets on this machine)");
    watching(&title, &pids, contexts, idle).await
}

/// What watching the nodes `pids` (reached through `contexts`) costs:
/// their idle CPU over `idle` without the fleet, then with the fleet
/// view's probes and frames running here; time to fill every row; frames.
pub(super) async fn watching(
    title: &str,
    pids: &[u32],
    contexts: Vec<Context>,
    idle: Duration,
) -> Result<String, String> {
    let n = pids.len();
    eprintln!("bench: idle CPU without a fleet ({idle:?})…");
    let (without, _) = idle_cpu(pids, idle).await;

    let options = ProbeOptions::default();
    let started = Instant::now();
    let mut probes = peerapi::fleet::probe::watch(&contexts, options);
    let mut view = FleetView::new(Fleet::new(contexts, Instant::now()));
    let mut terminal = Terminal::new(TestBackend::new(160, 48)).map_err(|e| e.to_string())?;
    let theme = peerapi::tui::view::Theme { color: true };
    let mut frames = Vec::new();
    let mut filled = None;
    let mut draw = |view: &FleetView, frames: &mut Vec<Duration>| -> Result<(), String> {
        let t = Instant::now();
        terminal
            .draw(|f| peerapi::tui::fleet::draw(f, view, std::time::SystemTime::now(), &theme))
            .map_err(|e| e.to_string())?;
        frames.push(t.elapsed());
        Ok(())
    };
    // Until every row is filled, then the idle window with the fleet on,
    // drawing on every probe's word as the view does.
    let self_before = super::proc_cpu::cpu_ticks(std::process::id()).unwrap_or(0);
    let mut watched_from = None;
    let mut with = 0.0;
    let deadline = Instant::now() + Duration::from_secs(60) + idle;
    while Instant::now() < deadline {
        let Ok(Some((i, p))) = tokio::time::timeout(Duration::from_secs(1), probes.recv()).await
        else {
            continue;
        };
        view.fleet.apply(i, p, Instant::now());
        draw(&view, &mut frames)?;
        if filled.is_none() && view.fleet.rows.iter().all(|r| r.reach == Reach::Up) {
            filled = Some(started.elapsed());
            watched_from = Some(Instant::now());
            eprintln!("bench: all {n} rows filled; idle CPU with the fleet watching ({idle:?})…");
            let pids = pids.to_vec();
            // Measured on a task of its own while this loop keeps drawing.
            let mut measuring = tokio::spawn(async move { idle_cpu(&pids, idle).await.0 });
            loop {
                tokio::select! {
                    cpu = &mut measuring => {
                        with = cpu.map_err(|e| e.to_string())?;
                        break;
                    }
                    Some((i, p)) = probes.recv() => {
                        view.fleet.apply(i, p, Instant::now());
                        draw(&view, &mut frames)?;
                    }
                }
            }
            break;
        }
    }
    let Some(filled) = filled else {
        let down = view
            .fleet
            .rows
            .iter()
            .filter(|r| r.reach != Reach::Up)
            .count();
        return Err(format!("{down} of {n} rows were not filled within 60 s"));
    };
    let watched = watched_from.map_or(0.0, |w| w.elapsed().as_secs_f64());
    let self_after = super::proc_cpu::cpu_ticks(std::process::id()).unwrap_or(0);
    let self_cpu = self_after.saturating_sub(self_before) as f64
        / super::proc_cpu::ticks_per_sec()
        / started.elapsed().as_secs_f64()
        * 100.0;
    let p50 = percentile(&mut frames, 0.5);
    let p99 = percentile(&mut frames, 0.99);
    let per_node = |total: f64| total / n as f64;
    Ok(format!(
        "{title}, probes every {:?}\n\
         \x20 all rows filled              {:>8.2?}   (target: within 5 s)\n\
         \x20 frames at 160x48             {:>8}   p50 {p50:.2?}  p99 {p99:.2?}   (target: p99 under 5 ms)\n\
         \x20 node idle CPU, no fleet      {:>7.3}%   of a core per node ({without:.2}% for all {n})\n\
         \x20 node idle CPU, fleet on      {:>7.3}%   of a core per node ({with:.2}% for all {n}, over {watched:.0} s)\n\
         \x20 what the fleet costs a node  {:>7.3}%   of a core   (target: under 1%)\n\
         \x20 the fleet itself             {:>7.2}%   of a core (probes and frames, whole run)\n",
        options.interval,
        filled,
        frames.len(),
        per_node(without),
        per_node(with),
        per_node(with - without),
        self_cpu,
    ))
}
