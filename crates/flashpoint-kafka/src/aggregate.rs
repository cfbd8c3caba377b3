//! The aggregate stage: scored records in, spike events out, for the internal-topic partitions it owns.
//!
//! Each owned partition has its own `AggregateStage` (windows, detectors, de-duplication offsets). Every
//! `checkpoint_interval_ms` the loop waits until every output so far is acknowledged, writes each changed
//! partition's state to the state topic (tied to the next offset to read), waits for that too, and only
//! then commits the offsets. So a committed offset always has a durable snapshot at or after it, and a
//! worker that gains a partition restores the newest snapshot and resumes exactly where it was taken:
//! the events it re-emits are byte-identical replays (same incident id, same sequence number).

use crate::client::{base_config, describe, QuietEof, StageContext};
use crate::dead_letter::DeadLetter;
use crate::score::send;
use crate::{Shared, WorkerError};
use flashpoint_core::event::Output;
use flashpoint_core::stage::{AggregateStage, Applied, StageRecord, StageSnapshot};
use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, CommitMode, Consumer, StreamConsumer};
use rdkafka::message::{Header, Message, OwnedHeaders};
use rdkafka::producer::{DeliveryFuture, FutureRecord};
use rdkafka::topic_partition_list::{Offset, TopicPartitionList};
use rustc_hash::FxHashMap;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::watch;
use tracing::{debug, info, warn};

type Consumer_ = StreamConsumer<StageContext>;

struct Part {
    stage: AggregateStage,
    /// Next internal-topic offset to apply; anything below is already in `stage`.
    next_offset: i64,
    /// Offset the last durable snapshot covers.
    checkpointed: i64,
    evicted: u64,
    terms_dropped: u64,
}

/// Snapshots are looked for among this many newest records of a state partition: a worker that lost a
/// partition may append one stale snapshot after the new owner's, and the most advanced one wins (two
/// snapshots at the same offset are equal, since the stage is deterministic).
const SNAPSHOT_SCAN: i64 = 16;

pub async fn run(shared: Arc<Shared>, mut shutdown: watch::Receiver<bool>) -> Result<(), WorkerError> {
    let cfg = &shared.kafka;
    let group = format!("{}-aggregate", cfg.group_id);
    let cc = base_config(
        cfg,
        &[
            ("group.id", &group),
            ("enable.auto.commit", "false"),
            ("auto.offset.reset", "earliest"),
            ("statistics.interval.ms", "1000"),
            ("enable.partition.eof", "false"),
        ],
    )?;
    debug!(config = %describe(&cc), "aggregate consumer");
    let consumer: Arc<Consumer_> =
        Arc::new(cc.create_with_context(StageContext::new("aggregate", shared.metrics.clone()))?);
    consumer.subscribe(&[&cfg.scored_topic])?;
    // Reads snapshots; no group, so it never disturbs the stage's own consumer.
    let reader_group = format!("{}-state-reader", cfg.group_id);
    let rc: ClientConfig = base_config(
        cfg,
        &[
            ("group.id", &reader_group),
            ("enable.auto.commit", "false"),
            ("enable.partition.eof", "true"),
            // An empty state partition should answer "end of partition" at once, not after a long poll.
            ("fetch.wait.max.ms", "10"),
        ],
    )?;
    let reader: Arc<BaseConsumer<QuietEof>> = Arc::new(rc.create_with_context(QuietEof)?);
    shared.metrics.health.aggregate_running.store(true, Ordering::Relaxed);
    info!(topic = %cfg.scored_topic, "aggregate stage started");

    let mut parts: FxHashMap<i32, Part> = FxHashMap::default();
    let mut pending: Vec<DeliveryFuture> = Vec::new();
    let mut outputs: Vec<Output> = Vec::new();
    let mut ckpt = tokio::time::interval(Duration::from_millis(cfg.checkpoint_interval_ms));
    ckpt.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let consumed = shared.metrics.consumed.with_label_values(&["aggregate"]);
    let result = loop {
        tokio::select! {
            biased;
            _ = shutdown.changed() => break Ok(()),
            _ = ckpt.tick() => {
                if let Err(e) = checkpoint(&shared, &consumer, &mut parts, &mut pending).await {
                    break Err(e);
                }
            }
            msg = consumer.recv() => {
                let m = match msg {
                    Ok(m) => m,
                    Err(e) => { warn!(error = %e, "aggregate consumer error"); continue; }
                };
                if let Some(revoked) = consumer.context().take_revoked() {
                    // Another worker owns these now; it restores from the last snapshot. Anything applied
                    // since is re-applied there, and its events are exact replays.
                    for p in revoked {
                        parts.remove(&p);
                    }
                }
                consumed.inc();
                let p = m.partition();
                let offset = m.offset();
                if !parts.contains_key(&p) {
                    let part = restore(&shared, &reader, p, offset).await?;
                    parts.insert(p, part);
                }
                let part = parts.get_mut(&p).expect("inserted above");
                match admit(part, offset) {
                    Admit::Apply => {}
                    Admit::Skip => continue,
                    Admit::Gap => {
                        // Records between the snapshot and the committed offset (or skipped by the broker, see
                        // `read_range`): read them again through the assign-based reader rather than by seeking
                        // this consumer (on Tansu 0.6.0 a seek into a producer batch delivers only later
                        // batches, and the gap was lost).
                        warn!(partition = p, from = part.next_offset, at = offset, "re-reading the records between the snapshot and the committed offset");
                        let (r, t, from) = (reader.clone(), shared.kafka.scored_topic.clone(), part.next_offset);
                        let gap = tokio::task::spawn_blocking(move || read_range(&r, &t, p, from, offset))
                            .await
                            .map_err(|e| WorkerError::Internal(e.to_string()))??;
                        for (o, payload) in gap {
                            apply_record(&shared, part, p, o, &payload, &mut pending, &mut outputs).await;
                        }
                    }
                }
                apply_record(&shared, part, p, offset, m.payload().unwrap_or_default(), &mut pending, &mut outputs).await;
            }
        }
    };
    // Shutdown: make everything durable and commit, so a successor re-reads nothing.
    let last = match result {
        Ok(()) => checkpoint(&shared, &consumer, &mut parts, &mut pending).await,
        Err(e) => Err(e),
    };
    shared.metrics.health.aggregate_running.store(false, Ordering::Relaxed);
    let c = consumer.clone();
    let _ = tokio::task::spawn_blocking(move || c.unsubscribe()).await;
    info!("aggregate stage stopped");
    last
}

/// What to do with the record at `offset` of a partition whose state covers everything before `next_offset`.
#[derive(Debug, PartialEq, Eq)]
enum Admit {
    Apply,
    /// Already reflected in the state (a restored snapshot ahead of the committed offset).
    Skip,
    /// The state ends before `offset`: the records from `next_offset` up to it must be applied first.
    Gap,
}

fn admit(part: &Part, offset: i64) -> Admit {
    match offset.cmp(&part.next_offset) {
        std::cmp::Ordering::Less => Admit::Skip,
        std::cmp::Ordering::Equal => Admit::Apply,
        std::cmp::Ordering::Greater => Admit::Gap,
    }
}

/// Applies one internal-topic record to its partition's stage and publishes what it produced.
async fn apply_record(
    shared: &Shared,
    part: &mut Part,
    p: i32,
    offset: i64,
    payload: &[u8],
    pending: &mut Vec<DeliveryFuture>,
    outputs: &mut Vec<Output>,
) {
    part.next_offset = offset + 1;
    let rec: StageRecord = match serde_json::from_slice(payload) {
        Ok(r) => r,
        Err(e) => {
            let d = dead_letter("bad_stage_record", e.to_string(), &shared.kafka.scored_topic, p, offset, payload);
            pending.push(send_dead(shared, &d).await);
            return;
        }
    };
    outputs.clear();
    match part.stage.apply(&rec, outputs) {
        Applied::Aggregated => shared.metrics.aggregated.inc(),
        Applied::Duplicate => shared.metrics.duplicates.inc(),
        Applied::Tick => {}
        Applied::UnknownEntity => {
            let d = dead_letter(
                "unknown_entity",
                "entity not in this worker's watchlist".into(),
                &shared.kafka.scored_topic,
                p,
                offset,
                payload,
            );
            pending.push(send_dead(shared, &d).await);
        }
    }
    for o in outputs.drain(..) {
        pending.push(emit(shared, o, &shared.kafka.scored_topic, p, offset, payload).await);
    }
}

/// The records of `topic`/`p` with offsets in `[from, to)`, read with the (group-less) reader. They exist:
/// the stage consumer has already delivered `to`. End-of-partition events are ignored here, since Tansu's
/// can come early. Tansu 0.6.0 answers a fetch from inside a producer batch with the batches after it only
/// (it selects batches by base offset), so a hole in what arrives makes the read start earlier, until the
/// batch holding `from` is included.
fn read_range(
    reader: &BaseConsumer<QuietEof>,
    topic: &str,
    p: i32,
    from: i64,
    to: i64,
) -> Result<Vec<(i64, Vec<u8>)>, WorkerError> {
    let mut back = 0i64;
    loop {
        let start = (from - back).max(0);
        let mut tpl = TopicPartitionList::new();
        tpl.add_partition_offset(topic, p, Offset::Offset(start))?;
        reader.assign(&tpl)?;
        let mut out = Vec::with_capacity((to - from) as usize);
        let deadline = Instant::now() + Duration::from_secs(60);
        let mut next = from;
        let mut hole = false;
        while next < to {
            if Instant::now() > deadline {
                reader.unassign()?;
                return Err(WorkerError::Internal(format!(
                    "timed out re-reading {topic}/{p} from {from} to {to} (at {next})"
                )));
            }
            match reader.poll(Duration::from_millis(200)) {
                Some(Ok(m)) if m.topic() == topic && m.partition() == p => {
                    let o = m.offset();
                    if o > next {
                        hole = true;
                        break;
                    }
                    if o == next {
                        out.push((o, m.payload().unwrap_or_default().to_vec()));
                        next = o + 1;
                    }
                }
                _ => {}
            }
        }
        reader.unassign()?;
        if !hole {
            return Ok(out);
        }
        if start == 0 {
            return Err(WorkerError::Internal(format!("{topic}/{p}: records from {next} on cannot be read")));
        }
        back = (back * 2).max(64);
        warn!(
            partition = p,
            from = start,
            missing = next,
            "the broker skipped records; reading again from further back"
        );
    }
}

async fn restore(
    shared: &Shared,
    reader: &Arc<BaseConsumer<QuietEof>>,
    p: i32,
    first_offset: i64,
) -> Result<Part, WorkerError> {
    let mut stage = AggregateStage::new(&shared.entities, &shared.aggregator).map_err(WorkerError::Config)?;
    let (r, topic) = (reader.clone(), shared.kafka.state_topic.clone());
    let snap = tokio::task::spawn_blocking(move || load_snapshot(&r, &topic, p, first_offset))
        .await
        .map_err(|e| WorkerError::Internal(e.to_string()))??;
    let next_offset = match &snap {
        Some(s) => {
            stage.restore(s).map_err(WorkerError::Internal)?;
            info!(partition = p, next_offset = s.next_offset, first_offset, "restored partition state");
            s.next_offset
        }
        None => {
            info!(partition = p, first_offset, "no snapshot: starting partition state empty");
            first_offset
        }
    };
    Ok(Part { stage, next_offset, checkpointed: next_offset, evicted: 0, terms_dropped: 0 })
}

/// The most advanced snapshot among the newest records of state partition `p`, if any.
///
/// Reads to the end-of-partition event of a fetch rather than to the ListOffsets high watermark: Tansu
/// 0.6.0 answers ListOffsets(latest) with the base offset of the last batch (8 for a partition holding
/// offsets 0..=8), while its fetch responses carry the right high watermark. So the watermark is only a
/// hint for where to start, and the end is what the fetch says.
fn load_snapshot(
    reader: &BaseConsumer<QuietEof>,
    topic: &str,
    p: i32,
    resume_at: i64,
) -> Result<Option<StageSnapshot>, WorkerError> {
    let (lo, hi) = reader.fetch_watermarks(topic, p, Duration::from_secs(10))?;
    let best = scan_snapshots(reader, topic, p, lo.max(hi - SNAPSHOT_SCAN), hi)?;
    // Every commit follows a durable snapshot at or after it, so a best snapshot behind the group's resume
    // offset means the newest records were missed (a wrong high watermark): scan the whole partition.
    if best.as_ref().map_or(resume_at > 0, |b| b.next_offset < resume_at) && lo < hi - SNAPSHOT_SCAN {
        warn!(partition = p, resume_at, "newest snapshot not found near the end; scanning the whole state partition");
        return scan_snapshots(reader, topic, p, lo, hi);
    }
    Ok(best)
}

/// Scans from `from` to the partition's end; `hi` is the high watermark seen before (possibly low on Tansu).
fn scan_snapshots(
    reader: &BaseConsumer<QuietEof>,
    topic: &str,
    p: i32,
    from: i64,
    hi: i64,
) -> Result<Option<StageSnapshot>, WorkerError> {
    let mut tpl = TopicPartitionList::new();
    tpl.add_partition_offset(topic, p, Offset::Offset(from))?;
    reader.assign(&tpl)?;
    let mut best: Option<StageSnapshot> = None;
    let deadline = Instant::now() + Duration::from_secs(30);
    // The reader is reused: an end-of-partition event left from an earlier assignment must not end this scan
    // before the newest snapshot (that chose an older snapshot than the committed offset's). So the scan
    // ends only at this partition's end and once it has read at least up to the (possibly low) watermark.
    let mut last = from - 1;
    loop {
        if Instant::now() > deadline {
            return Err(WorkerError::Internal(format!("timed out reading state partition {topic}/{p} from {from}")));
        }
        match reader.poll(Duration::from_millis(200)) {
            Some(Ok(m)) if m.topic() != topic || m.partition() != p => {}
            Some(Ok(m)) => {
                last = last.max(m.offset());
                match serde_json::from_slice::<StageSnapshot>(m.payload().unwrap_or_default()) {
                    Ok(s) if best.as_ref().map_or(true, |b| s.next_offset >= b.next_offset) => best = Some(s),
                    Ok(_) => {}
                    Err(e) => warn!(partition = p, offset = m.offset(), error = %e, "unreadable snapshot skipped"),
                }
            }
            Some(Err(rdkafka::error::KafkaError::PartitionEOF(q))) if q == p && last >= hi - 1 => break,
            Some(Err(rdkafka::error::KafkaError::PartitionEOF(_))) => {}
            Some(Err(e)) => warn!(error = %e, "state reader error"),
            None => {}
        }
    }
    reader.unassign()?;
    Ok(best)
}

/// Makes every output so far durable, writes changed partitions' snapshots, then commits their offsets.
async fn checkpoint(
    shared: &Shared,
    consumer: &Arc<Consumer_>,
    parts: &mut FxHashMap<i32, Part>,
    pending: &mut Vec<DeliveryFuture>,
) -> Result<(), WorkerError> {
    let started = Instant::now();
    await_all(shared, pending).await?;
    let mut tpl = TopicPartitionList::new();
    for (p, part) in parts.iter_mut() {
        if part.next_offset == part.checkpointed {
            continue;
        }
        let snap = serde_json::to_vec(&part.stage.snapshot(part.next_offset)).expect("snapshots serialise");
        let key = p.to_string();
        let rec = FutureRecord::to(&shared.kafka.state_topic).partition(*p).key(key.as_bytes()).payload(&snap[..]);
        pending.push(send(shared, rec).await);
        tpl.add_partition_offset(&shared.kafka.scored_topic, *p, Offset::Offset(part.next_offset))?;
    }
    await_all(shared, pending).await?;
    if tpl.count() > 0 {
        let c = consumer.clone();
        let done = tokio::task::spawn_blocking(move || c.commit(&tpl, CommitMode::Sync))
            .await
            .map_err(|e| WorkerError::Internal(e.to_string()))?;
        match done {
            Ok(()) => {
                for part in parts.values_mut() {
                    part.checkpointed = part.next_offset;
                }
            }
            // A partition revoked meanwhile, or the group rebalancing: the snapshot is durable anyway, and
            // the next owner starts from it.
            Err(e) => {
                shared.metrics.commit_failures.with_label_values(&["aggregate"]).inc();
                warn!(error = %e, "aggregate commit failed");
            }
        }
        shared.metrics.checkpoint_seconds.observe(started.elapsed().as_secs_f64());
    }
    update_gauges(shared, parts);
    Ok(())
}

async fn await_all(shared: &Shared, pending: &mut Vec<DeliveryFuture>) -> Result<(), WorkerError> {
    for d in pending.drain(..) {
        let err = match d.await {
            Ok(Ok(_)) => None,
            Ok(Err((e, _))) => Some(e.to_string()),
            Err(_) => Some("producer dropped the record".into()),
        };
        if let Some(e) = err {
            shared.metrics.produce_failures.inc();
            return Err(WorkerError::Delivery(format!("delivery failed: {e}")));
        }
    }
    Ok(())
}

fn update_gauges(shared: &Shared, parts: &mut FxHashMap<i32, Part>) {
    let m = &shared.metrics;
    for part in parts.values_mut() {
        let c = &part.stage.aggregator.counters;
        m.evicted.inc_by(c.evicted_entities - part.evicted);
        m.terms_dropped.inc_by(c.terms_dropped - part.terms_dropped);
        part.evicted = c.evicted_entities;
        part.terms_dropped = c.terms_dropped;
    }
    let windows = parts.values().flat_map(|part| {
        let st = &part.stage;
        st.aggregator.last_window.iter().map(move |(id, w)| (st.entity_name(*id), w))
    });
    let open = parts.values().flat_map(|part| part.stage.aggregator.open_incidents().map(|(_, name, sev)| (name, sev)));
    m.set_entity_gauges(windows, open);
}

fn dead_letter(reason: &'static str, detail: String, topic: &str, p: i32, offset: i64, payload: &[u8]) -> DeadLetter {
    DeadLetter {
        reason,
        detail,
        stage: "aggregate",
        key: None,
        payload: payload.to_vec(),
        topic: topic.into(),
        partition: p,
        offset,
    }
}

async fn send_dead(shared: &Shared, d: &DeadLetter) -> DeliveryFuture {
    shared.metrics.dead_lettered.with_label_values(&[d.reason]).inc();
    let rec = FutureRecord::to(&shared.kafka.dead_letter_topic).payload(&d.payload[..]).headers(d.headers());
    send(shared, rec).await
}

/// Publishes one aggregator output: spike events to the spikes topic (keyed by entity, so an incident's
/// events stay in order), diverted posts to the dead-letter topic.
async fn emit(shared: &Shared, o: Output, topic: &str, p: i32, offset: i64, payload: &[u8]) -> DeliveryFuture {
    let m = &shared.metrics;
    match o {
        Output::Spike(e) => {
            let kind = match e.kind {
                flashpoint_core::event::EventKind::Opened => "opened",
                flashpoint_core::event::EventKind::Updated => "updated",
                flashpoint_core::event::EventKind::Resolved => "resolved",
            };
            m.spike_events.with_label_values(&[kind]).inc();
            let label = m.entity_label(&e.entity);
            match kind {
                "opened" => m.incidents_opened.with_label_values(&[&label]).inc(),
                "resolved" => m.incidents_resolved.with_label_values(&[&label]).inc(),
                _ => {}
            }
            if let Some(end) = e.window_end_ms() {
                let now = std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .map(|d| d.as_millis() as i64)
                    .unwrap_or(0);
                m.event_lag_seconds.observe(((now - end) as f64 / 1000.0).max(0.0));
            }
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
            send(shared, rec).await
        }
        Output::Diverted(d) => {
            let reason = match d.reason {
                flashpoint_core::event::DivertReason::Late => "late",
                flashpoint_core::event::DivertReason::TooFarAhead => "too_far_ahead",
            };
            if reason == "late" {
                m.late.with_label_values(&[&m.entity_label(&d.entity)]).inc();
            }
            let detail = format!("post {} at {} is behind/ahead of watermark {}", d.post_id, d.created_at, d.watermark);
            send_dead(shared, &dead_letter(reason, detail, topic, p, offset, payload)).await
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use flashpoint_core::aggregate::AggregatorConfig;

    fn part(next_offset: i64) -> Part {
        let stage = AggregateStage::new(&[], &AggregatorConfig::default()).unwrap();
        Part { stage, next_offset, checkpointed: next_offset, evicted: 0, terms_dropped: 0 }
    }

    #[test]
    fn offsets_before_the_state_are_skipped_and_after_it_are_a_gap() {
        let p = part(100);
        assert_eq!(admit(&p, 99), Admit::Skip);
        assert_eq!(admit(&p, 100), Admit::Apply);
        assert_eq!(admit(&p, 150), Admit::Gap);
    }
}
