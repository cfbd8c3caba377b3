//! The health flags behind `/readyz`: written by the Kafka contexts, the stages and the outbox, read by the
//! HTTP endpoint and the `flashpoint_ready` / `flashpoint_stage_stalled_seconds` gauges.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

/// `/readyz` fails once the newest librdkafka statistics report is older than this: a client that stopped
/// reporting is stuck (reports come every `statistics.interval.ms`, 1 s by default).
pub const STATS_STALE_MS: u64 = 30_000;

/// `/readyz` fails once a running stage has had an output waiting this long (not enqueued, or enqueued and
/// not acknowledged): the stage cannot make progress and commits nothing.
pub const STALL_MS: u64 = 60_000;

/// What `/readyz` reports on; written by the Kafka contexts and stages.
#[derive(Default)]
pub struct Health {
    pub broker_up: AtomicBool,
    /// Per stage (score, aggregate): has it joined its group and got partitions?
    pub score_assigned: AtomicBool,
    pub aggregate_assigned: AtomicBool,
    pub score_running: AtomicBool,
    pub aggregate_running: AtomicBool,
    /// Unix ms of the last librdkafka statistics report (a stuck client stops reporting).
    pub last_stats_ms: AtomicU64,
    pub score_progress: Progress,
    pub aggregate_progress: Progress,
    pub notify_running: AtomicBool,
    pub notify_assigned: AtomicBool,
    pub notify_progress: Progress,
    /// Notify channels whose queue is full (new messages for them are being dead-lettered); empty when none.
    pub notify_full_channels: std::sync::Mutex<String>,
}

/// Whether a stage's outputs are moving: since when one has waited to be enqueued (a full queue) and since
/// when the oldest enqueued one has waited for its acknowledgement. 0 means nothing waits.
#[derive(Default)]
pub struct Progress {
    blocked_since_ms: AtomicU64,
    unacked_since_ms: AtomicU64,
}

impl Progress {
    pub fn blocked(&self) {
        self.blocked_since_ms.store(now_ms(), Ordering::Relaxed);
    }
    pub fn unblocked(&self) {
        self.blocked_since_ms.store(0, Ordering::Relaxed);
    }
    /// The oldest output awaiting acknowledgement was enqueued at `since_ms`.
    pub fn unacked_since(&self, since_ms: u64) {
        self.unacked_since_ms.store(since_ms, Ordering::Relaxed);
    }
    pub fn acked(&self) {
        self.unacked_since_ms.store(0, Ordering::Relaxed);
    }
    /// How long the oldest waiting output has waited at `now_ms`.
    pub fn stalled_ms(&self, now_ms: u64) -> u64 {
        [&self.blocked_since_ms, &self.unacked_since_ms]
            .iter()
            .map(|a| a.load(Ordering::Relaxed))
            .filter(|&t| t > 0)
            .map(|t| now_ms.saturating_sub(t))
            .max()
            .unwrap_or(0)
    }
}

impl Health {
    /// Ready when the broker answers, at least one stage runs, every running stage has joined its group
    /// with partitions, and librdkafka still reports statistics.
    pub fn ready(&self) -> Result<(), String> {
        self.ready_at(now_ms())
    }

    pub fn ready_at(&self, now_ms: u64) -> Result<(), String> {
        if !self.broker_up.load(Ordering::Relaxed) {
            return Err("no broker reachable".into());
        }
        let last = self.last_stats_ms.load(Ordering::Relaxed);
        if now_ms.saturating_sub(last) > STATS_STALE_MS {
            return Err(format!(
                "no librdkafka statistics for {} s (client stuck?)",
                now_ms.saturating_sub(last) / 1000
            ));
        }
        let mut running = 0;
        for (run, assigned, progress, name) in [
            (&self.score_running, &self.score_assigned, &self.score_progress, "score"),
            (&self.aggregate_running, &self.aggregate_assigned, &self.aggregate_progress, "aggregate"),
            (&self.notify_running, &self.notify_assigned, &self.notify_progress, "notify"),
        ] {
            if run.load(Ordering::Relaxed) {
                running += 1;
                if !assigned.load(Ordering::Relaxed) {
                    return Err(format!(
                        "{name} stage has no partitions assigned (not joined yet, or more workers than partitions)"
                    ));
                }
                let stalled = progress.stalled_ms(now_ms);
                if stalled > STALL_MS {
                    return Err(format!(
                        "{name} stage cannot make progress: an output has waited {} s to be accepted by the broker",
                        stalled / 1000
                    ));
                }
            }
        }
        if running == 0 {
            return Err("no stage running (starting or stopping)".into());
        }
        if self.notify_running.load(Ordering::Relaxed) {
            let full = self.notify_full_channels.lock().expect("not poisoned");
            if !full.is_empty() {
                return Err(format!("notify channel queue full (receiver down or too slow): {full}"));
            }
        }
        Ok(())
    }
}

impl Health {
    pub fn progress(&self, stage: crate::role::Stage) -> &Progress {
        match stage {
            crate::role::Stage::Score => &self.score_progress,
            crate::role::Stage::Aggregate => &self.aggregate_progress,
            crate::role::Stage::Notify => &self.notify_progress,
        }
    }
}

pub fn now_ms() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_millis() as u64).unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn readiness_needs_broker_fresh_statistics_a_running_stage_and_partitions() {
        let h = Health::default();
        let now = 1_000_000;
        assert!(h.ready_at(now).unwrap_err().contains("broker"));
        h.broker_up.store(true, Ordering::Relaxed);
        h.last_stats_ms.store(now - 1_000, Ordering::Relaxed);
        assert!(h.ready_at(now).unwrap_err().contains("no stage running"));
        h.score_running.store(true, Ordering::Relaxed);
        h.aggregate_running.store(true, Ordering::Relaxed);
        assert!(h.ready_at(now).unwrap_err().contains("score stage has no partitions"));
        h.score_assigned.store(true, Ordering::Relaxed);
        assert!(h.ready_at(now).unwrap_err().contains("aggregate stage has no partitions"));
        h.aggregate_assigned.store(true, Ordering::Relaxed);
        assert_eq!(h.ready_at(now), Ok(()));
        // An output waiting for the broker longer than STALL_MS means the stage is stuck.
        h.aggregate_progress.unacked_since(now - STALL_MS - 1_000);
        assert!(h.ready_at(now).unwrap_err().contains("aggregate stage cannot make progress"));
        h.aggregate_progress.acked();
        h.score_progress.unacked_since(now - 1_000);
        assert_eq!(h.ready_at(now), Ok(()));
        h.score_progress.acked();
        // A client that stopped reporting statistics is stuck.
        assert!(h.ready_at(now + STATS_STALE_MS + 1_000).unwrap_err().contains("statistics"));
        // A score-only worker does not wait for an aggregate assignment.
        h.aggregate_running.store(false, Ordering::Relaxed);
        h.aggregate_assigned.store(false, Ordering::Relaxed);
        assert_eq!(h.ready_at(now), Ok(()));
        // The notify stage: partitions, and no channel whose queue is full.
        h.notify_running.store(true, Ordering::Relaxed);
        assert!(h.ready_at(now).unwrap_err().contains("notify stage has no partitions"));
        h.notify_assigned.store(true, Ordering::Relaxed);
        assert_eq!(h.ready_at(now), Ok(()));
        *h.notify_full_channels.lock().unwrap() = "pager".into();
        assert!(h.ready_at(now).unwrap_err().contains("notify channel queue full (receiver down or too slow): pager"));
        h.notify_full_channels.lock().unwrap().clear();
        assert_eq!(h.ready_at(now), Ok(()));
        h.broker_up.store(false, Ordering::Relaxed);
        assert!(h.ready_at(now).is_err());
    }
}
