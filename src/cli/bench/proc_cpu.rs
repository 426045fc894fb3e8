//! CPU time of processes, from /proc: what the benches charge to work.

use std::time::{Duration, Instant};

/// CPU of `pids` together over `idle`, in % of one core, and the seconds
/// it was measured over.
pub(super) async fn idle_cpu(pids: &[u32], idle: Duration) -> (f64, f64) {
    let before: u64 = pids.iter().filter_map(|p| cpu_ticks(*p)).sum();
    let start = Instant::now();
    tokio::time::sleep(idle).await;
    let after: u64 = pids.iter().filter_map(|p| cpu_ticks(*p)).sum();
    let secs = start.elapsed().as_secs_f64();
    let percent = after.saturating_sub(before) as f64 / ticks_per_sec() / secs * 100.0;
    (percent, secs)
}

/// User plus system CPU time of a process, in clock ticks.
pub(super) fn cpu_ticks(pid: u32) -> Option<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // Fields after the command name, which may hold spaces: utime and
    // stime are the 12th and 13th after it.
    let rest = &stat[stat.rfind(')')? + 2..];
    let mut fields = rest.split_whitespace().skip(11);
    let utime: u64 = fields.next()?.parse().ok()?;
    let stime: u64 = fields.next()?.parse().ok()?;
    Some(utime + stime)
}

/// The unit of /proc's CPU times (USER_HZ).
pub(super) fn ticks_per_sec() -> f64 {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    {
        // SAFETY: sysconf only reads a system constant.
        let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
        if hz > 0 {
            return hz as f64;
        }
    }
    // What Linux uses on every architecture it runs on today.
    100.0
}
