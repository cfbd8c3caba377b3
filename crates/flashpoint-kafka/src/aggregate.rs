//! The aggregate stage: scored records in, spike events out, for the internal-topic partitions it owns.
//!
//! Each owned partition has its own `AggregateStage` (windows, detectors, de-duplication offsets). Every
//! `checkpoint_interval_ms` the loop waits until every output so far is acknowledged, writes each changed
//! partition's state to the state topic (tied to the next offset to read), waits for that too, and only
//! then commits the offsets. So a committed offset always has a durable snapshot at or after it, and a
//! worker that gains a partition restores the newest snapshot and resumes exactly where it was taken:
//! the events it re-emits are byte-identical replays (same incident id, same sequence number).

use crate::client::{group_consumer, GroupConsumer};
use crate::dead_letter::DeadLetter;
use crate::error::WorkerError;
use crate::metrics::now_ms;
use crate::outbox::{Origin, Tracked};
use crate::role::Stage;
use crate::shared::Shared;
use crate::shutdown::Shutdown;
use crate::side_reader::SideReader;
use crate::stage_loop::{drive, Handler};
use flashpoint_core::event::Output;
use flashpoint_core::partition::{choose_snapshot, needs_full_scan, AggregatePartition, ResumeFloors, Step};
use flashpoint_core::reject::Rejection;
use flashpoint_core::stage::{AggregateStage, Applied, StageSnapshot};
use rdkafka::consumer::{CommitMode, Consumer};
use rdkafka::message::{BorrowedMessage, Header, Message, OwnedHeaders};
use rdkafka::producer::FutureRecord;
use rdkafka::topic_partition_list::{Offset, TopicPartitionList};
use rustc_hash::FxHashMap;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tracing::{info, warn};

type Consumer_ = GroupConsumer;

/// An owned partition: its state machine, and the counters already added to the metrics.
struct Part {
    machine: AggregatePartition,
    evicted: u64,
    terms_dropped: u64,
}

/// Snapshots are looked for among this many newest records of a state partition: a worker that lost a
/// partition may append one stale snapshot after the new owner's, and the most advanced one wins (two
/// snapshots at the same offset are equal, since the stage is deterministic).
const SNAPSHOT_SCAN: i64 = 16;

/// The loop's state: the owned partitions and the outputs not yet known durable.
struct AggregateLoop {
    shared: Arc<Shared>,
    consumer: Arc<Consumer_>,
    reader: Arc<SideReader>,
    parts: FxHashMap<i32, Part>,
    /// Committed offsets of partitions assigned from an earlier batch start, until their first record.
    floors: ResumeFloors,
    pending: Vec<Tracked>,
    outputs: Vec<Output>,
    topic: Arc<str>,
}

pub async fn run(shared: Arc<Shared>, mut shutdown: Shutdown) -> Result<(), WorkerError> {
    let (consumer, reader) = clients(&shared)?;
    shared.metrics.health.aggregate_running.store(true, Ordering::Relaxed);
    info!(topic = %shared.kafka.scored_topic, "aggregate stage started");
    let mut l = AggregateLoop {
        topic: Arc::from(shared.kafka.scored_topic.as_str()),
        shared: shared.clone(),
        consumer: consumer.clone(),
        reader,
        parts: FxHashMap::default(),
        floors: ResumeFloors::default(),
        pending: Vec::new(),
        outputs: Vec::new(),
    };
    let mut ckpt = tokio::time::interval(Duration::from_millis(shared.kafka.checkpoint_interval_ms));
    let consumed = shared.metrics.consumed.with_label_values(&[Stage::Aggregate.as_str()]);
    // Every way out of the loop, errors included, goes through the same shutdown path below.
    let result = drive(&mut l, &consumer, &mut ckpt, &mut shutdown, &consumed).await;
    // Shutdown: make everything durable and commit, so a successor re-reads nothing.
    let last = match result {
        Ok(()) => l.checkpoint().await,
        Err(e) => Err(e),
    };
    let health = &shared.metrics.health;
    health.aggregate_running.store(false, Ordering::Relaxed);
    health.aggregate_progress.acked();
    let c = consumer.clone();
    let _ = tokio::task::spawn_blocking(move || c.unsubscribe()).await;
    info!(ok = last.is_ok(), "aggregate stage stopped");
    last
}

/// The stage's group consumer, and a group-less reader for snapshots and re-reads (it never disturbs the
/// group's assignment).
fn clients(shared: &Shared) -> Result<(Arc<Consumer_>, Arc<SideReader>), WorkerError> {
    let cfg = &shared.kafka;
    // Offsets are committed by the checkpoint, after the snapshot that covers them is durable.
    let commits = [("enable.auto.commit", "false")];
    let consumer = group_consumer(Stage::Aggregate, cfg, shared.metrics.clone(), &[&cfg.scored_topic], &commits)?;
    Ok((consumer, Arc::new(SideReader::new(cfg, "state-reader")?)))
}

impl Handler for AggregateLoop {
    const STAGE: Stage = Stage::Aggregate;
    type Event = std::convert::Infallible;
    async fn tick(&mut self) -> Result<(), WorkerError> {
        self.checkpoint().await
    }
    async fn record(&mut self, m: &BorrowedMessage<'_>) -> Result<(), WorkerError> {
        self.on_message(m).await
    }
}

impl AggregateLoop {
    async fn on_message(&mut self, m: &BorrowedMessage<'_>) -> Result<(), WorkerError> {
        if let Some(revoked) = self.consumer.context().take_revoked() {
            // Another worker owns these now; it restores from the last snapshot. Anything applied since is
            // re-applied there, and its events are exact replays.
            for p in revoked {
                self.parts.remove(&p);
            }
        }
        self.floors.set_all(self.consumer.context().take_floors().unwrap_or_default());
        let (p, offset) = (m.partition(), m.offset());
        if !self.parts.contains_key(&p) {
            // Assigned from a batch start before the committed offset: the group's position is the floor, and
            // the machine skips what lies below the state it restores.
            let first = self.floors.start(&self.topic, p, offset);
            let part = restore(&self.shared, &self.reader, p, first).await?;
            self.parts.insert(p, part);
        }
        let payload = m.payload().unwrap_or_default();
        let Some(from) = self.take(p, offset, payload).await? else { return Ok(()) };
        // Records between the snapshot and the committed offset (or skipped by the broker, see `read_range`):
        // read them again through the assign-based reader rather than by seeking this consumer (on Tansu
        // 0.6.0 a seek into a producer batch delivers only later batches, and the gap was lost).
        warn!(partition = p, from, at = offset, "re-reading the records between the snapshot and the committed offset");
        let (r, t) = (self.reader.clone(), self.shared.kafka.scored_topic.clone());
        let gap = tokio::task::spawn_blocking(move || r.read_range(&t, p, from, offset))
            .await
            .map_err(|e| WorkerError::Internal(e.to_string()))??;
        for (o, bytes) in gap {
            self.take(p, o, &bytes).await?;
        }
        match self.take(p, offset, payload).await? {
            None => Ok(()),
            Some(at) => Err(WorkerError::Internal(format!("partition {p}: still a gap at {at} after re-reading"))),
        }
    }

    /// Feeds one internal-topic record to its partition's machine and publishes what it produced; returns
    /// where a gap before it starts, if the machine reports one.
    async fn take(&mut self, p: i32, offset: i64, payload: &[u8]) -> Result<Option<i64>, WorkerError> {
        let shared = self.shared.clone();
        let part = self.parts.get_mut(&p).expect("restored before taking records");
        self.outputs.clear();
        let origin = Origin { stage: Stage::Aggregate, topic: self.topic.clone(), partition: p, offset };
        match part.machine.on_record(offset, payload, &mut self.outputs) {
            Step::Gap { from } => return Ok(Some(from)),
            Step::Skipped | Step::Applied(Applied::Tick) => {}
            Step::Applied(Applied::Aggregated) => shared.metrics.aggregated.inc(),
            Step::Applied(Applied::Responded) => shared.metrics.responses.inc(),
            Step::Applied(Applied::Duplicate) => shared.metrics.duplicates.inc(),
            Step::Rejected(r) => {
                let detail = match r {
                    Rejection::UnknownEntity => "entity not in this worker's watchlist",
                    _ => "not a stage record this version can read",
                };
                let d = dead_letter(r, detail.into(), &origin, payload);
                self.pending.push(shared.outbox.dead_letter(&d).await?);
            }
            Step::Applied(Applied::UnknownEntity) => unreachable!("the machine rejects unknown entities"),
        }
        for o in self.outputs.drain(..) {
            self.pending.push(emit(&shared, o, &origin, payload).await?);
        }
        Ok(None)
    }

    /// Makes every output so far durable, writes changed partitions' snapshots, then commits their offsets.
    async fn checkpoint(&mut self) -> Result<(), WorkerError> {
        let (started, shared) = (Instant::now(), self.shared.clone());
        let progress = shared.metrics.health.progress(Stage::Aggregate);
        progress.unacked_since(now_ms());
        self.settle().await?;
        let mut tpl = TopicPartitionList::new();
        let mut written = Vec::new();
        for (p, part) in self.parts.iter() {
            let Some(snap) = part.machine.checkpoint_due() else { continue };
            let bytes = serde_json::to_vec(&snap).expect("snapshots serialise");
            let key = p.to_string();
            let rec = FutureRecord::to(&shared.kafka.state_topic).partition(*p).key(key.as_bytes()).payload(&bytes[..]);
            self.pending.push(shared.outbox.send_plain(rec, Stage::Aggregate).await?);
            tpl.add_partition_offset(&shared.kafka.scored_topic, *p, Offset::Offset(snap.next_offset))?;
            written.push((*p, snap.next_offset));
        }
        self.settle().await?;
        progress.acked();
        if tpl.count() > 0 {
            let c = self.consumer.clone();
            let done = tokio::task::spawn_blocking(move || c.commit(&tpl, CommitMode::Sync))
                .await
                .map_err(|e| WorkerError::Internal(e.to_string()))?;
            match done {
                Ok(()) => {
                    for (p, at) in written {
                        if let Some(part) = self.parts.get_mut(&p) {
                            part.machine.checkpointed(at);
                        }
                    }
                }
                // A partition revoked meanwhile, or the group rebalancing: the snapshot is durable anyway,
                // and the next owner starts from it.
                Err(e) => {
                    shared.metrics.commit_failures.with_label_values(&[Stage::Aggregate.as_str()]).inc();
                    warn!(error = %e, "aggregate commit failed");
                }
            }
            shared.metrics.checkpoint_seconds.observe(started.elapsed().as_secs_f64());
        }
        update_gauges(&shared, &mut self.parts);
        Ok(())
    }

    async fn settle(&mut self) -> Result<(), WorkerError> {
        for d in self.pending.drain(..) {
            self.shared.outbox.settle(d).await?;
        }
        Ok(())
    }
}

async fn restore(shared: &Shared, reader: &Arc<SideReader>, p: i32, first_offset: i64) -> Result<Part, WorkerError> {
    let stage = AggregateStage::new(&shared.entities, &shared.aggregator).map_err(WorkerError::Config)?;
    let (r, topic) = (reader.clone(), shared.kafka.state_topic.clone());
    let snap = tokio::task::spawn_blocking(move || load_snapshot(&r, &topic, p, first_offset))
        .await
        .map_err(|e| WorkerError::Internal(e.to_string()))??;
    let machine = AggregatePartition::start(stage, snap.as_ref(), first_offset).map_err(WorkerError::Internal)?;
    match &snap {
        Some(s) => info!(partition = p, next_offset = s.next_offset, first_offset, "restored partition state"),
        None => info!(partition = p, first_offset, "no snapshot: starting partition state empty"),
    }
    Ok(Part { machine, evicted: 0, terms_dropped: 0 })
}

/// The snapshot to restore for state partition `p`, read from its newest records (and from all of them if
/// those cannot hold the newest: `needs_full_scan`). The end is what the fetch reports, the watermark only
/// where to start (`tansu::LIST_OFFSETS`).
fn load_snapshot(
    reader: &SideReader,
    topic: &str,
    p: i32,
    resume_at: i64,
) -> Result<Option<StageSnapshot>, WorkerError> {
    let (lo, hi) = reader.watermarks(topic, p)?;
    let scan = |from: i64| -> Result<Option<StageSnapshot>, WorkerError> {
        let mut found = Vec::new();
        reader.scan(topic, p, from, hi, |o, bytes| match serde_json::from_slice::<StageSnapshot>(bytes) {
            Ok(s) => found.push(s),
            Err(e) => warn!(partition = p, offset = o, error = %e, "unreadable snapshot skipped"),
        })?;
        Ok(choose_snapshot(found))
    };
    let best = scan(lo.max(hi - SNAPSHOT_SCAN))?;
    if needs_full_scan(best.as_ref(), resume_at) && lo < hi - SNAPSHOT_SCAN {
        warn!(partition = p, resume_at, "newest snapshot not found near the end; scanning the whole state partition");
        return scan(lo);
    }
    Ok(best)
}

fn update_gauges(shared: &Shared, parts: &mut FxHashMap<i32, Part>) {
    let m = &shared.metrics;
    for part in parts.values_mut() {
        let c = &part.machine.stage.aggregator.counters;
        m.evicted.inc_by(c.evicted_entities - part.evicted);
        m.terms_dropped.inc_by(c.terms_dropped - part.terms_dropped);
        part.evicted = c.evicted_entities;
        part.terms_dropped = c.terms_dropped;
    }
    let windows = parts.values().flat_map(|part| {
        let st = &part.machine.stage;
        st.aggregator.last_window.iter().map(move |(id, w)| (st.entity_name(*id), w))
    });
    let open = parts
        .values()
        .flat_map(|part| part.machine.stage.aggregator.open_incidents().map(|(_, name, sev)| (name, sev)));
    m.set_entity_gauges(windows, open);
}

fn dead_letter(r: Rejection, detail: String, origin: &Origin, payload: &[u8]) -> DeadLetter {
    DeadLetter {
        reason: r,
        detail,
        stage: Stage::Aggregate,
        key: None,
        payload: payload.to_vec(),
        topic: origin.topic.to_string(),
        partition: origin.partition,
        offset: origin.offset,
    }
}

/// Publishes one aggregator output: spike events to the spikes topic (keyed by entity, so an incident's
/// events stay in order), diverted posts to the dead-letter topic.
async fn emit(shared: &Shared, o: Output, origin: &Origin, payload: &[u8]) -> Result<Tracked, WorkerError> {
    let m = &shared.metrics;
    match o {
        Output::Spike(e) => {
            use flashpoint_core::event::EventKind;
            let kind = match e.kind {
                EventKind::Opened => "opened",
                EventKind::Updated => "updated",
                EventKind::Resolved => "resolved",
            };
            m.spike_events.with_label_values(&[kind]).inc();
            let label = m.entity_label(&e.entity);
            match e.kind {
                EventKind::Opened => m.incidents_opened.with_label_values(&[&label]).inc(),
                EventKind::Resolved => m.incidents_resolved.with_label_values(&[&label]).inc(),
                EventKind::Updated => {}
            }
            m.observe_response(&label, &e);
            m.event_lag_seconds.observe((now_ms() as f64 / 1000.0 - e.window_end as f64 / 1000.0).max(0.0));
            let body = serde_json::to_vec(&e).expect("events serialise");
            let seq = e.seq.to_string();
            let headers = OwnedHeaders::new()
                .insert(Header { key: "flashpoint.incident_id", value: Some(&e.incident_id) })
                .insert(Header { key: "flashpoint.seq", value: Some(&seq) })
                .insert(Header { key: "flashpoint.kind", value: Some(kind) });
            let rec = FutureRecord::to(&shared.kafka.spikes_topic)
                .key(e.entity.as_bytes())
                .payload(&body[..])
                .headers(headers);
            shared.outbox.send(rec, origin).await
        }
        Output::Diverted(d) => {
            let reason = d.reason;
            if reason == Rejection::Late {
                m.late.with_label_values(&[&m.entity_label(&d.entity)]).inc();
            }
            let detail = format!("post {} at {} is behind/ahead of watermark {}", d.post_id, d.created_at, d.watermark);
            shared.outbox.dead_letter(&dead_letter(reason, detail, origin, payload)).await
        }
    }
}
