//! A fleet row's cells, as both the console's fleet view and
//! `peerapi fleet status` show them.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use super::{Fleet, Reach, Row};

/// Column headers, in order of importance: narrow screens keep the first.
pub const COLUMNS: &[&str] = &[
    "NODE", "REACH", "CALLS/S", "ERR", "P99", "P50", "TTFB", "PEERS", "SUBNET", "ROSTER", "HEALTH",
    "ROUTES", "RELOAD", "EVICT", "UPTIME", "PEER", "VERSION", "ROLE", "LABELS", "WHY",
];

pub fn short_duration(d: Duration) -> String {
    let s = d.as_secs();
    if d < Duration::from_millis(1) {
        format!("{}µs", d.as_micros())
    } else if d < Duration::from_secs(1) {
        format!("{:.0}ms", d.as_secs_f64() * 1e3)
    } else if s < 60 {
        format!("{:.1}s", d.as_secs_f64())
    } else if s < 3600 {
        format!("{}m", s / 60)
    } else if s < 86400 {
        format!("{}h{:02}m", s / 3600, (s % 3600) / 60)
    } else {
        format!("{}d{:02}h", s / 86400, (s % 86400) / 3600)
    }
}

fn ago(at_ms: u64, now: SystemTime) -> String {
    let now_ms = now
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64);
    short_duration(Duration::from_millis(now_ms.saturating_sub(at_ms)))
}

/// The row's cells under [`COLUMNS`]; `-` where there is no figure.
pub fn cells(row: &Row, now: SystemTime) -> Vec<String> {
    let up = matches!(row.reach, Reach::Up);
    let stats = row.stats.as_ref().filter(|_| up);
    let dash = || "-".to_string();
    let opt = |d: Option<Duration>| d.map_or_else(dash, short_duration);
    let reach = match &row.reach {
        Reach::Up => "up",
        Reach::Down(_) => "down",
        Reach::Trying => "…",
    };
    let why = match &row.reach {
        Reach::Down(why) => why.lines().next().unwrap_or_default().to_string(),
        _ => String::new(),
    };
    let labels: Vec<String> = row
        .context
        .labels
        .iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect();
    let peer = row.info.as_ref().map_or_else(dash, |i| {
        let id = i.peer_id.to_string();
        format!("…{}", &id[id.len().saturating_sub(8)..])
    });
    let roster = stats.map_or_else(dash, |s| match &s.own_state {
        Some(state) => format!("{} {}", s.roster_size, state),
        None => s.roster_size.to_string(),
    });
    let reload = stats
        .and_then(|s| s.last_reload.as_ref())
        .map_or_else(dash, |r| {
            let how = if r.ok { "ok" } else { "REJECTED" };
            format!("{how} {} ago", ago(r.at_ms, now))
        });
    vec![
        row.context.name.clone(),
        reach.to_string(),
        stats.map_or_else(dash, |s| format!("{:.1}", s.served.per_sec())),
        stats.map_or_else(dash, |s| {
            if s.served.calls == 0 {
                "-".into()
            } else {
                format!("{:.1}%", s.served.error_share() * 100.0)
            }
        }),
        opt(stats.and_then(|s| s.served.p99)),
        opt(stats.and_then(|s| s.served.p50)),
        opt(stats.and_then(|s| s.served.backend_first_byte_p50)),
        stats.map_or_else(dash, |s| s.connected_peers.to_string()),
        stats
            .and_then(|s| s.subnet_id)
            .map_or_else(dash, |id| id.to_string()),
        roster,
        // Of the nodes it probes (`--health`), how many answered.
        stats
            .and_then(|s| s.health.as_ref())
            .map_or_else(dash, |h| {
                format!("{}/{} up", h.probed - h.down.min(h.probed), h.probed)
            }),
        stats.map_or_else(dash, |s| s.routes.to_string()),
        reload,
        stats.map_or_else(dash, |s| s.evictions.to_string()),
        opt(stats.map(|s| s.uptime)),
        peer,
        row.info.as_ref().map_or_else(dash, |i| i.version.clone()),
        row.role
            .map_or_else(dash, |r| format!("{r:?}").to_lowercase()),
        labels.join(","),
        why,
    ]
}

/// The rows `shown` as an aligned text table (`peerapi fleet status`).
pub fn text(fleet: &Fleet, shown: &[usize]) -> String {
    let now = SystemTime::now();
    let rows: Vec<Vec<String>> = shown.iter().map(|&i| cells(&fleet.rows[i], now)).collect();
    let mut widths: Vec<usize> = COLUMNS.iter().map(|c| c.chars().count()).collect();
    for r in &rows {
        for (w, c) in widths.iter_mut().zip(r) {
            *w = (*w).max(c.chars().count());
        }
    }
    let line = |cells: &[String]| {
        let mut out = String::new();
        for (i, (c, w)) in cells.iter().zip(&widths).enumerate() {
            if i + 1 == cells.len() {
                out.push_str(c);
            } else {
                out.push_str(&format!("{c:<w$}  "));
            }
        }
        out.trim_end().to_string() + "\n"
    };
    let header: Vec<String> = COLUMNS.iter().map(|c| c.to_string()).collect();
    let mut out = line(&header);
    for r in &rows {
        out.push_str(&line(r));
    }
    out
}
