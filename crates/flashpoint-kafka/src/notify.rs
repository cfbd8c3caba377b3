//! The notify stage: spike events from the spikes topic to people, through the notifier's engine
//! (`flashpoint-notify`), in the stage's own consumer group (`<group_id>-notify`).
//!
//! Each record goes to `Engine::submit` with its (partition, offset) and the wall clock; the engine queues its
//! messages per channel and tracks which positions are done. Every tick the loop applies the acknowledgements,
//! writes the engine's delivery dead letters to the dead-letter topic, waits until the broker has them, and only
//! then commits each owned partition's low-water mark: an offset is committed once every route has delivered or
//! dead-lettered everything before it (at least once; receivers de-duplicate by idempotency key, `dedup_key`,
//! `Message-ID`). A record that is not a spike event is dead-lettered before its position counts as done. A
//! revoked partition's positions are forgotten and never committed here: its new owner re-reads from the
//! committed offset, so a message already queued here may arrive twice, under the same key. On shutdown, held
//! states and digests go out at once (rather than being re-sent by a successor) and the loop commits as the
//! acknowledgements come, within the worker's bounded shutdown. Every event read is also kept in the incident
//! pages' store when the pages are served (`Engine::keep_pages`): a worker's pages show the incidents of the
//! partitions it has read, since it started.

use crate::client::{group_consumer, GroupConsumer};
use crate::dead_letter::DeadLetter;
use crate::error::WorkerError;
use crate::metrics::now_ms;
use crate::role::Stage;
use crate::shared::Shared;
use crate::shutdown::Shutdown;
use crate::stage_loop::{drive, Handler};
use flashpoint_core::partition::{Rejection, ResumeFloors};
use flashpoint_notify::{Engine, NotifyMetrics, Position};
use rdkafka::consumer::{CommitMode, Consumer};
use rdkafka::message::{BorrowedMessage, Message};
use rdkafka::topic_partition_list::{Offset, TopicPartitionList};
use rustc_hash::FxHashMap;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::mpsc;
use tracing::{info, warn};

type Consumer_ = GroupConsumer;

/// How often acknowledgements are applied, held states and digests sent and offsets committed.
const TICK: Duration = Duration::from_millis(200);

struct NotifyLoop {
    shared: Arc<Shared>,
    consumer: Arc<Consumer_>,
    engine: Engine,
    dead: mpsc::UnboundedReceiver<flashpoint_notify::DeadLetter>,
    /// Owned partitions and the offset committed (or resumed from) on each: every offset below it is done.
    committed: FxHashMap<i32, i64>,
    /// Partitions assigned from a batch start (`tansu::BATCH_FETCH`): records below their committed offset are
    /// dropped.
    floors: ResumeFloors,
    topic: Arc<str>,
}

pub async fn run(shared: Arc<Shared>, mut shutdown: Shutdown) -> Result<(), WorkerError> {
    let consumer = consumer(&shared)?;
    let metrics = NotifyMetrics::new(&shared.metrics.registry).map_err(|e| WorkerError::Internal(e.to_string()))?;
    let (dead_tx, dead) = mpsc::unbounded_channel();
    let mut engine = Engine::start(&shared.notify, &|k| std::env::var(k).ok(), metrics.clone(), dead_tx)?;
    if let Some(store) = &shared.pages {
        engine.keep_pages(store.clone());
    }
    let health = &shared.metrics.health;
    health.notify_running.store(true, Ordering::Relaxed);
    info!(topic = %shared.kafka.spikes_topic, routes = shared.notify.routes.len(), "notify stage started");
    let mut l = NotifyLoop {
        topic: Arc::from(shared.kafka.spikes_topic.as_str()),
        shared: shared.clone(),
        consumer: consumer.clone(),
        engine,
        dead,
        committed: FxHashMap::default(),
        floors: ResumeFloors::default(),
    };
    let mut tick = tokio::time::interval(TICK);
    let consumed = shared.metrics.consumed.with_label_values(&[Stage::Notify.as_str()]);
    // Every way out of the loop, errors included, goes through the same shutdown path below.
    let result = drive(&mut l, &consumer, &mut tick, &mut shutdown, &consumed).await;
    let last = match result {
        Ok(()) => l.drain().await,
        Err(e) => Err(e),
    };
    health.notify_running.store(false, Ordering::Relaxed);
    health.notify_progress.acked();
    health.notify_full_channels.lock().expect("not poisoned").clear();
    let c = consumer.clone();
    let _ = tokio::task::spawn_blocking(move || c.unsubscribe()).await;
    info!(ok = last.is_ok(), "notify stage stopped");
    last
}

fn consumer(shared: &Shared) -> Result<Arc<Consumer_>, WorkerError> {
    let cfg = &shared.kafka;
    let extra = [
        // Offsets are committed at the engine's low-water mark: only what every route has finished.
        ("enable.auto.commit", "false"),
        // Alerts are few and late ones cost minutes of a crisis: a broker that holds a fetch until its
        // maximum wait (Tansu does) must not hold an event for librdkafka's default half second.
        ("fetch.wait.max.ms", "50"),
    ];
    group_consumer(Stage::Notify, cfg, shared.metrics.clone(), &[&cfg.spikes_topic], &extra)
}

impl Handler for NotifyLoop {
    type Event = std::convert::Infallible;
    const STAGE: Stage = Stage::Notify;
    async fn tick(&mut self) -> Result<(), WorkerError> {
        self.on_tick().await
    }
    async fn record(&mut self, m: &BorrowedMessage<'_>) -> Result<(), WorkerError> {
        self.on_message(m).await
    }
    /// False for a record re-read from a batch start below its partition's committed offset (done before).
    fn admit(&mut self, m: &BorrowedMessage<'_>) -> bool {
        self.rebalanced();
        self.floors.admit(&self.topic, m.partition(), m.offset())
    }
}

impl NotifyLoop {
    async fn on_message(&mut self, m: &BorrowedMessage<'_>) -> Result<(), WorkerError> {
        let pos = Position { partition: m.partition(), offset: m.offset() };
        self.committed.entry(pos.partition).or_insert(pos.offset);
        let payload = m.payload().unwrap_or_default();
        // The notifier's one reader (shared with `flashpoint notify`): classified, counted, routed.
        if let Err(rej) = self.engine.read(payload, pos, |_| now_ms() as i64) {
            let d = DeadLetter {
                reason: rej.reason,
                detail: rej.detail,
                stage: Stage::Notify,
                key: m.key().map(<[u8]>::to_vec),
                payload: payload.to_vec(),
                topic: self.topic.to_string(),
                partition: pos.partition,
                offset: pos.offset,
            };
            let sent = self.shared.outbox.dead_letter(&d).await?;
            self.shared.outbox.settle(sent).await?;
            self.engine.skip(pos);
        }
        Ok(())
    }

    async fn on_tick(&mut self) -> Result<(), WorkerError> {
        self.rebalanced();
        self.engine.tick(now_ms() as i64);
        self.commit().await?;
        let full = self.engine.full_channels().join(", ");
        *self.shared.metrics.health.notify_full_channels.lock().expect("not poisoned") = full;
        Ok(())
    }

    /// Forgets revoked partitions, notes the floors of new ones.
    fn rebalanced(&mut self) {
        let ctx = self.consumer.context();
        for p in ctx.take_revoked().unwrap_or_default() {
            self.engine.forget_partition(p);
            self.committed.remove(&p);
            self.floors.forget(&self.topic, p);
        }
        self.floors.set_all(ctx.take_floors().unwrap_or_default());
    }

    /// Applies acknowledgements, makes the delivery dead letters durable, then commits the low-water marks.
    async fn commit(&mut self) -> Result<(), WorkerError> {
        self.engine.poll_acks();
        // A channel worker sends a message's dead letter before its acknowledgement, so every dead letter of
        // what was acknowledged above is in `dead` now, and durable before any offset after it is committed.
        let mut pending = Vec::new();
        while let Ok(d) = self.dead.try_recv() {
            pending.push(self.shared.outbox.dead_letter(&delivery_dead_letter(&self.topic, &d)).await?);
        }
        let progress = &self.shared.metrics.health.notify_progress;
        if !pending.is_empty() {
            progress.unacked_since(now_ms());
        }
        for t in pending {
            self.shared.outbox.settle(t).await?;
        }
        progress.acked();
        let (mut tpl, mut advanced) = (TopicPartitionList::new(), Vec::new());
        for (&p, &done) in &self.committed {
            match self.engine.low_water(p) {
                Some(lw) if lw > done => {
                    tpl.add_partition_offset(&self.topic, p, Offset::Offset(lw))?;
                    advanced.push((p, lw));
                }
                _ => {}
            }
        }
        if advanced.is_empty() {
            return Ok(());
        }
        let c = self.consumer.clone();
        let done = tokio::task::spawn_blocking(move || c.commit(&tpl, CommitMode::Sync))
            .await
            .map_err(|e| WorkerError::Internal(e.to_string()))?;
        match done {
            Ok(()) => {
                for (p, lw) in advanced {
                    if let Some(c) = self.committed.get_mut(&p) {
                        *c = lw;
                    }
                }
            }
            // A rebalance under way: the next owner re-reads from the last good commit (at least once).
            Err(e) => {
                self.shared.metrics.commit_failures.with_label_values(&[Stage::Notify.as_str()]).inc();
                warn!(error = %e, "notify commit failed");
            }
        }
        Ok(())
    }

    /// Shutdown: sends what is held, closes the queues and commits as the channels drain.
    async fn drain(&mut self) -> Result<(), WorkerError> {
        self.rebalanced();
        self.engine.close(now_ms() as i64);
        loop {
            let more = self.engine.drain_step(TICK).await;
            self.commit().await?;
            if !more {
                break;
            }
        }
        self.engine.join().await;
        self.commit().await
    }
}

/// A message no channel will deliver, as a dead letter of the (first) spike event it was about; the payload is
/// the notifier's dead-letter JSON (channel, route, incidents, reason, attempts and the events), never a secret.
fn delivery_dead_letter(topic: &str, d: &flashpoint_notify::DeadLetter) -> DeadLetter {
    let first = d.positions.iter().min().copied().unwrap_or(Position { partition: -1, offset: -1 });
    DeadLetter {
        reason: Rejection::NotificationFailed,
        detail: format!(
            "channel {} ({}), route {}, {} {}: {}",
            d.channel,
            d.channel_kind,
            d.route,
            d.message,
            d.incidents.join(" "),
            d.reason
        ),
        stage: Stage::Notify,
        key: d.incidents.first().map(|i| i.as_bytes().to_vec()),
        payload: serde_json::to_vec(d).expect("dead letters serialise"),
        topic: topic.to_string(),
        partition: first.partition,
        offset: first.offset,
    }
}
