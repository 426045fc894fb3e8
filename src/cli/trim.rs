//! Gives the heap's free pages back to the system now and then.
//!
//! glibc keeps what a burst freed inside its arenas: after a 100-node
//! subnet's joining burst a node held 14 MB of heap of which 4.4 MB was
//! free, and held it for good. `malloc_trim` hands such pages back (it
//! walks the arenas under their own locks; well under a millisecond for a
//! node's heap). Other allocators and C libraries return memory their own
//! way, so there this does nothing.

use std::time::Duration;

/// Default seconds between trims of a headless node's heap.
pub(crate) const DEFAULT_TRIM_INTERVAL_SECS: u64 = 30;

/// Trims every `interval` for as long as the runtime runs; zero: never.
pub(crate) fn spawn(interval: Duration) {
    if interval.is_zero() || !SUPPORTED {
        return;
    }
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(interval);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        tick.tick().await; // the first tick is at once: nothing to give back yet
        loop {
            tick.tick().await;
            // Off the runtime's workers: the walk takes the arenas' locks.
            let _ = tokio::task::spawn_blocking(trim).await;
        }
    });
}

#[cfg(all(target_os = "linux", target_env = "gnu"))]
const SUPPORTED: bool = true;
#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
const SUPPORTED: bool = false;

/// True when pages were given back.
#[cfg(all(target_os = "linux", target_env = "gnu"))]
pub(crate) fn trim() -> bool {
    // SAFETY: malloc_trim takes no pointers; it walks glibc's own arenas
    // under their locks and may be called from any thread at any time.
    unsafe { libc::malloc_trim(0) == 1 }
}

#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
pub(crate) fn trim() -> bool {
    false
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    fn freed_heap_pages_are_given_back() {
        // 64 MiB in blocks below glibc's mmap threshold, so they live in the
        // arena; free every other one so the arena cannot shrink from its
        // top, and the pages inside stay resident until trimmed.
        let mut blocks: Vec<Vec<u8>> = (0..1024).map(|_| vec![1u8; 64 * 1024]).collect();
        let mut kept = Vec::new();
        for (i, b) in blocks.drain(..).enumerate() {
            if i % 2 == 0 {
                kept.push(b);
            }
        }
        let before = anon_kb();
        assert!(
            trim(),
            "malloc_trim gave nothing back after 32 MiB was freed"
        );
        let after = anon_kb();
        assert!(
            before - after > 16 * 1024,
            "resident anonymous memory went from {before} kB to {after} kB"
        );
        drop(kept);
    }

    fn anon_kb() -> i64 {
        peerapi::testkit::proc_kb("/proc/self/status", "RssAnon:").unwrap() as i64
    }
}
