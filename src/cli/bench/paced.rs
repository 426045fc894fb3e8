//! Node events published at a steady rate, for the attach benches.

use std::time::{Duration, Instant};

/// Publishes `rate` events a second for one second, a batch each
/// millisecond: `emit(n)` publishes `per_item` events numbered from `n`.
/// Returns the seconds it took (at least one).
pub(super) async fn publish_paced(rate: u64, per_item: u64, mut emit: impl FnMut(u64)) -> f64 {
    let per_tick = (rate / 1000).max(per_item);
    let mut tick = tokio::time::interval(Duration::from_millis(1));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Burst);
    let started = Instant::now();
    let mut published = 0u64;
    while published < rate {
        tick.tick().await;
        let mut this_tick = 0;
        while this_tick < per_tick && published < rate {
            emit(published);
            published += per_item;
            this_tick += per_item;
        }
    }
    started.elapsed().as_secs_f64().max(1.0)
}
