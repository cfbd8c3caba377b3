//! The score stage: raw posts in, scored (post, entity) records out, keyed by entity.
//!
//! Flow: the consumer loop gathers records into a batch (closed by size or by age), a blocking thread
//! decodes, matches and scores it (so a slow backend never stalls the poll loop), the loop publishes the
//! results in batch order, and the committer task stores a batch's offsets only once every record derived
//! from it, dead letters included, is acknowledged by the broker (rust-rdkafka's `at_least_once` pattern).
//! A crash therefore re-reads at most the unacknowledged tail, and the aggregate stage drops the
//! re-deliveries by source offset.

use crate::client::{group_consumer, partition_count, GroupConsumer};
use crate::dead_letter::DeadLetter;
use crate::error::WorkerError;
use crate::metrics::now_ms;
use crate::outbox::{Origin, Tracked};
use crate::role::Stage;
use crate::shared::Shared;
use crate::shutdown::Shutdown;
use crate::stage_loop::{drive, Handler};
use flashpoint_core::partition::{ResumeFloors, ScoreBatch, SourceRecord};
use flashpoint_core::reject::Rejection;
use flashpoint_core::stage::StageRecord;
use flashpoint_core::time::Millis;
use futures::stream::{FuturesOrdered, StreamExt};
use rdkafka::consumer::{CommitMode, Consumer};
use rdkafka::message::{BorrowedMessage, Message};
use rdkafka::producer::FutureRecord;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::{mpsc, watch};
use tokio::task::JoinHandle;
use tracing::{debug, info};

type Consumer_ = GroupConsumer;

/// One consumed record, owned so a blocking thread can work on it.
struct InRecord {
    topic: Arc<str>,
    partition: i32,
    offset: i64,
    key: Option<Vec<u8>>,
    payload: Vec<u8>,
}

/// What a blocking thread made of one batch.
struct BatchOut {
    /// (entity key, stage record, index into `origins`).
    scored: Vec<(String, Vec<u8>, usize)>,
    origins: Vec<Origin>,
    dead: Vec<DeadLetter>,
    /// Highest offset per (topic, partition) in the batch.
    offsets: Vec<(Arc<str>, i32, i64)>,
    max_matched_time: Option<Millis>,
    decoded: u64,
    skipped: u64,
    matched: u64,
    unmatched: u64,
    /// Of the matched posts, those in a language the scorer does not read.
    unscored: u64,
}

/// A published batch waiting for its acknowledgements before its offsets may be stored.
struct Pending {
    deliveries: Vec<Tracked>,
    offsets: Vec<(Arc<str>, i32, i64)>,
    enqueued_ms: u64,
}

/// The loop's state between records: the open batch, the batches being scored, the watermark.
struct ScoreLoop {
    shared: Arc<Shared>,
    consumer: Arc<Consumer_>,
    scored_partitions: i32,
    batch: Vec<InRecord>,
    deadline: tokio::time::Instant,
    inflight: FuturesOrdered<JoinHandle<BatchOut>>,
    commit_tx: mpsc::Sender<Pending>,
    max_matched: Option<Millis>,
    last_tick: Option<Millis>,
    topic_names: Vec<Arc<str>>,
    /// Partitions assigned from before their committed offset (see `StageContext::with_resume_probe`).
    floors: ResumeFloors,
    /// Set by the committer when a delivery failed.
    fail_rx: watch::Receiver<Option<String>>,
}

pub async fn run(shared: Arc<Shared>, mut shutdown: Shutdown) -> Result<(), WorkerError> {
    let consumer = consumer(&shared)?;
    let scored_partitions = {
        let (c, t) = (consumer.clone(), shared.kafka.scored_topic.clone());
        tokio::task::spawn_blocking(move || partition_count(c.as_ref(), &t, Duration::from_secs(30)))
            .await
            .map_err(join)??
    };
    let health = &shared.metrics.health;
    health.score_running.store(true, Ordering::Relaxed);
    info!(topics = ?shared.kafka.input_topics, scored_partitions, "score stage started");
    let (commit_tx, commit_rx) = mpsc::channel::<Pending>(64);
    let (fail_tx, fail_rx) = watch::channel::<Option<String>>(None);
    let committer = tokio::spawn(commit_loop(consumer.clone(), commit_rx, fail_tx, shared.clone()));
    let mut l = ScoreLoop {
        batch: Vec::with_capacity(shared.kafka.batch_max_records),
        shared: shared.clone(),
        consumer: consumer.clone(),
        scored_partitions,
        deadline: tokio::time::Instant::now(),
        inflight: FuturesOrdered::new(),
        commit_tx,
        max_matched: None,
        last_tick: None,
        topic_names: Vec::new(),
        floors: ResumeFloors::default(),
        fail_rx: fail_rx.clone(),
    };
    let mut ticks = tokio::time::interval(Duration::from_millis(shared.kafka.tick_interval_ms));
    // Resolved once: a labelled lookup per record costs a hash and a lock.
    let consumed = shared.metrics.consumed.with_label_values(&[Stage::Score.as_str()]);
    // Every way out of the loop, errors included, goes through the same shutdown path below.
    let mut result = drive(&mut l, &consumer, &mut ticks, &mut shutdown, &consumed).await;
    if result.is_ok() && fail_rx.borrow().is_none() {
        result = l.drain().await;
    }
    drop(l);
    let committed = committer.await.map_err(join);
    if let Some(f) = fail_rx.borrow().clone() {
        result = result.and(Err(WorkerError::Delivery(f)));
    }
    result = result.and(committed);
    if result.is_ok() {
        let c = consumer.clone();
        let _ = tokio::task::spawn_blocking(move || {
            if let Err(e) = c.commit_consumer_state(CommitMode::Sync) {
                debug!(error = %e, "final score commit");
            }
            c.unsubscribe();
        })
        .await;
    }
    health.score_running.store(false, Ordering::Relaxed);
    health.score_progress.acked();
    info!(ok = result.is_ok(), "score stage stopped");
    result
}

fn consumer(shared: &Shared) -> Result<Arc<Consumer_>, WorkerError> {
    let cfg = &shared.kafka;
    let topics: Vec<&str> = cfg.input_topics.iter().map(String::as_str).collect();
    // Offsets are stored by the committer once a batch's outputs are acknowledged, and auto-committed from there.
    let commits =
        [("enable.auto.commit", "true"), ("auto.commit.interval.ms", "1000"), ("enable.auto.offset.store", "false")];
    group_consumer(Stage::Score, cfg, shared.metrics.clone(), &topics, &commits)
}

/// What wakes the score stage besides ticks and records.
enum Wake {
    /// The committer failed: stop reading (the failure is reported on the way out).
    Failed,
    Scored(BatchOut),
    /// The open batch's time is up.
    Deadline,
}

impl Handler for ScoreLoop {
    const STAGE: Stage = Stage::Score;
    type Event = Result<Wake, WorkerError>;

    /// Every `kafka.tick_interval_ms`: the largest event time published, to every scored partition.
    async fn tick(&mut self) -> Result<(), WorkerError> {
        self.broadcast_tick();
        Ok(())
    }

    async fn record(&mut self, m: &BorrowedMessage<'_>) -> Result<(), WorkerError> {
        let (max_records, max_wait_ms) = (self.shared.kafka.batch_max_records, self.shared.kafka.batch_max_wait_ms);
        self.push(m, max_records, max_wait_ms);
        Ok(())
    }

    /// False for a record below its partition's resume floor (already scored before a restart).
    fn admit(&mut self, m: &BorrowedMessage<'_>) -> bool {
        self.floors.set_all(self.consumer.context().take_floors().unwrap_or_default());
        self.floors.admit(m.topic(), m.partition(), m.offset())
    }

    /// At most `kafka.score_parallelism` batches are scored at once; past that, records wait in the consumer.
    fn accepting(&self) -> bool {
        self.inflight.len() < self.shared.kafka.score_parallelism
    }

    async fn next_event(&mut self) -> Result<Wake, WorkerError> {
        tokio::select! {
            biased;
            _ = self.fail_rx.changed() => Ok(Wake::Failed),
            Some(done) = self.inflight.next(), if !self.inflight.is_empty() => done.map(Wake::Scored).map_err(join),
            _ = tokio::time::sleep_until(self.deadline), if !self.batch.is_empty() => Ok(Wake::Deadline),
        }
    }

    async fn on_event(&mut self, event: Result<Wake, WorkerError>) -> Result<bool, WorkerError> {
        match event? {
            Wake::Failed => return Ok(false),
            Wake::Scored(out) => self.publish(out).await?,
            Wake::Deadline => self.dispatch(),
        }
        Ok(true)
    }
}

impl ScoreLoop {
    /// Shutdown: finishes what was read and publishes it, so the committer can commit all of it.
    async fn drain(&mut self) -> Result<(), WorkerError> {
        if !self.batch.is_empty() {
            self.dispatch();
        }
        while let Some(done) = self.inflight.next().await {
            self.publish(done.map_err(join)?).await?;
        }
        self.broadcast_tick();
        Ok(())
    }

    fn push(&mut self, m: &BorrowedMessage<'_>, max_records: usize, max_wait_ms: u64) {
        // Topic names repeat: share one allocation per topic.
        let topic = match self.topic_names.iter().find(|t| ***t == *m.topic()) {
            Some(t) => t.clone(),
            None => {
                let t: Arc<str> = Arc::from(m.topic());
                self.topic_names.push(t.clone());
                t
            }
        };
        if self.batch.is_empty() {
            self.deadline = tokio::time::Instant::now() + Duration::from_millis(max_wait_ms);
        }
        self.batch.push(InRecord {
            topic,
            partition: m.partition(),
            offset: m.offset(),
            key: m.key().map(<[u8]>::to_vec),
            payload: m.payload().unwrap_or_default().to_vec(),
        });
        if self.batch.len() >= max_records {
            self.dispatch();
        }
    }

    fn dispatch(&mut self) {
        let (shared, batch) = (self.shared.clone(), std::mem::take(&mut self.batch));
        self.inflight.push_back(tokio::task::spawn_blocking(move || process(&shared, batch)));
    }

    /// Enqueues a batch's outputs (in order) and hands their deliveries to the committer.
    async fn publish(&mut self, out: BatchOut) -> Result<(), WorkerError> {
        let (shared, m) = (&self.shared, &self.shared.metrics);
        m.decoded.inc_by(out.decoded);
        m.skipped.inc_by(out.skipped);
        m.matched.inc_by(out.matched);
        m.unmatched.inc_by(out.unmatched);
        m.scored.inc_by(out.matched - out.unscored);
        m.unscored.inc_by(out.unscored);
        let mut deliveries = Vec::with_capacity(out.scored.len() + out.dead.len());
        for (key, payload, o) in &out.scored {
            let rec = FutureRecord::to(&shared.kafka.scored_topic).key(key.as_bytes()).payload(&payload[..]);
            deliveries.push(shared.outbox.send(rec, &out.origins[*o]).await?);
        }
        for d in &out.dead {
            deliveries.push(shared.outbox.dead_letter(d).await?);
        }
        self.max_matched = self.max_matched.max(out.max_matched_time);
        let p = Pending { deliveries, offsets: out.offsets, enqueued_ms: now_ms() };
        self.commit_tx
            .send(p)
            .await
            .map_err(|_| WorkerError::Delivery("committer stopped after a failed delivery".into()))
    }

    /// Broadcasts the watermark to every partition of the internal topic. Not tracked for commits: a lost
    /// tick only delays window closing until the next one.
    fn broadcast_tick(&mut self) {
        let Some(t) = self.max_matched.filter(|_| self.max_matched > self.last_tick) else { return };
        let payload = StageRecord::Tick { max_event_time: t }.encode();
        for p in 0..self.scored_partitions {
            let rec = FutureRecord::to(&self.shared.kafka.scored_topic).partition(p).payload(&payload[..]);
            if !self.shared.outbox.try_send(rec) {
                debug!(partition = p, "tick not enqueued");
            }
        }
        self.last_tick = self.max_matched;
    }
}

fn join(e: tokio::task::JoinError) -> WorkerError {
    WorkerError::Internal(format!("task failed: {e}"))
}

/// Decode, match, score one batch (all decided by `ScoreStage::process`): CPU work, run on a blocking thread.
fn process(shared: &Shared, batch: Vec<InRecord>) -> BatchOut {
    let started = Instant::now();
    let sources: Vec<SourceRecord<'_>> = batch
        .iter()
        .map(|r| SourceRecord { topic: &r.topic, partition: r.partition, offset: r.offset, payload: &r.payload })
        .collect();
    let mut b = ScoreBatch::default();
    shared.score.process(&shared.decoder, &sources, &mut b);
    let mut out = BatchOut {
        scored: Vec::with_capacity(b.scored.len()),
        origins: Vec::new(),
        dead: Vec::with_capacity(b.rejected.len()),
        offsets: Vec::new(),
        max_matched_time: b.max_matched_time,
        decoded: b.posts.len() as u64,
        skipped: b.skipped,
        matched: b.matched,
        unmatched: b.unmatched,
        unscored: b.unscored,
    };
    for r in &batch {
        match out.offsets.iter_mut().find(|(t, p, _)| *p == r.partition && *t == r.topic) {
            Some(o) => o.2 = o.2.max(r.offset),
            None => out.offsets.push((r.topic.clone(), r.partition, r.offset)),
        }
    }
    let mut last = usize::MAX;
    for (ri, entity, rec) in b.records(&shared.score) {
        if ri != last {
            let r = &batch[ri];
            out.origins.push(Origin {
                stage: Stage::Score,
                topic: r.topic.clone(),
                partition: r.partition,
                offset: r.offset,
            });
            last = ri;
        }
        let name = shared.score.matcher().name(entity).to_string();
        out.scored.push((name, rec.encode(), out.origins.len() - 1));
    }
    for r in &b.rejected {
        out.dead.push(dead_letter(&batch[r.record], r.rejection, r.detail.clone()));
    }
    let m = &shared.metrics;
    m.batch_size.observe(b.posts.len() as f64);
    m.score_seconds.observe(started.elapsed().as_secs_f64());
    out
}

fn dead_letter(r: &InRecord, reason: Rejection, detail: String) -> DeadLetter {
    DeadLetter {
        reason,
        detail,
        stage: Stage::Score,
        key: r.key.clone(),
        payload: r.payload.clone(),
        topic: r.topic.to_string(),
        partition: r.partition,
        offset: r.offset,
    }
}

/// Awaits each published batch's acknowledgements in order, then stores its offsets for the auto-commit.
async fn commit_loop(
    consumer: Arc<Consumer_>,
    mut rx: mpsc::Receiver<Pending>,
    fail: watch::Sender<Option<String>>,
    shared: Arc<Shared>,
) {
    let progress = shared.metrics.health.progress(Stage::Score);
    while let Some(p) = rx.recv().await {
        progress.unacked_since(p.enqueued_ms);
        for d in p.deliveries {
            if let Err(e) = shared.outbox.settle(d).await {
                let _ = fail.send(Some(e.to_string()));
                return;
            }
        }
        progress.acked();
        for (t, part, off) in &p.offsets {
            // Fails harmlessly for a partition revoked meanwhile: its new owner re-reads from the last commit.
            if let Err(e) = consumer.store_offset(t, *part, *off) {
                debug!(error = %e, topic = %t, partition = part, "offset not stored");
            }
        }
    }
}
