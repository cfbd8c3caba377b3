//! The score stage: raw posts in, scored (post, entity) records out, keyed by entity.
//!
//! Flow: the consumer loop gathers records into a batch (closed by size or by age), a blocking thread
//! decodes, matches and scores it (so a slow backend never stalls the poll loop), the loop publishes the
//! results in batch order, and the committer task stores a batch's offsets only once every record derived
//! from it, dead letters included, is acknowledged by the broker (rust-rdkafka's `at_least_once` pattern).
//! A crash therefore re-reads at most the unacknowledged tail, and the aggregate stage drops the
//! re-deliveries by source offset.

use crate::client::{base_config, describe, partition_count, resume_probe, StageContext};
use crate::dead_letter::DeadLetter;
use crate::{Shared, WorkerError};
use flashpoint_core::post::Post;
use flashpoint_core::stage::{Scored, ScoredPost, StageRecord};
use flashpoint_core::time::Millis;
use futures::stream::{FuturesOrdered, StreamExt};
use rdkafka::consumer::{CommitMode, Consumer, StreamConsumer};
use rdkafka::message::Message;
use rdkafka::producer::{DeliveryFuture, FutureRecord};
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::{mpsc, watch};
use tokio::task::JoinHandle;
use tracing::{debug, info, warn};

type Consumer_ = StreamConsumer<StageContext>;

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
    scored: Vec<(String, Vec<u8>)>,
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
    deliveries: Vec<DeliveryFuture>,
    offsets: Vec<(Arc<str>, i32, i64)>,
}

pub async fn run(shared: Arc<Shared>, mut shutdown: watch::Receiver<bool>) -> Result<(), WorkerError> {
    let cfg = &shared.kafka;
    let group = format!("{}-score", cfg.group_id);
    let cc = base_config(
        cfg,
        &[
            ("group.id", &group),
            ("enable.auto.commit", "true"),
            ("auto.commit.interval.ms", "1000"),
            ("enable.auto.offset.store", "false"),
            ("auto.offset.reset", "earliest"),
            ("statistics.interval.ms", "1000"),
            ("enable.partition.eof", "false"),
        ],
    )?;
    debug!(config = %describe(&cc), "score consumer");
    let ctx = StageContext::new("score", shared.metrics.clone()).with_resume_probe(resume_probe(cfg, &group)?);
    let consumer: Arc<Consumer_> = Arc::new(cc.create_with_context(ctx)?);
    let topics: Vec<&str> = cfg.input_topics.iter().map(String::as_str).collect();
    consumer.subscribe(&topics)?;
    let scored_partitions = {
        let c = consumer.clone();
        let t = cfg.scored_topic.clone();
        tokio::task::spawn_blocking(move || partition_count(c.as_ref(), &t, Duration::from_secs(30)))
            .await
            .map_err(join)??
    };
    shared.metrics.health.score_running.store(true, Ordering::Relaxed);
    info!(topics = ?cfg.input_topics, scored_partitions, "score stage started");

    let (commit_tx, commit_rx) = mpsc::channel::<Pending>(64);
    let (fail_tx, mut fail_rx) = watch::channel::<Option<String>>(None);
    let committer = tokio::spawn(commit_loop(consumer.clone(), commit_rx, fail_tx, shared.clone()));

    let max_records = cfg.batch_max_records;
    let max_wait = Duration::from_millis(cfg.batch_max_wait_ms);
    let mut batch: Vec<InRecord> = Vec::with_capacity(max_records);
    let mut deadline = tokio::time::Instant::now();
    let mut inflight: FuturesOrdered<JoinHandle<BatchOut>> = FuturesOrdered::new();
    let mut ticks = tokio::time::interval(Duration::from_millis(cfg.tick_interval_ms));
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut max_matched: Option<Millis> = None;
    let mut last_tick: Option<Millis> = None;
    let mut topic_names: Vec<Arc<str>> = Vec::new();
    let mut failure: Option<String> = None;
    // Resolved once: a labelled lookup per record costs a hash and a lock.
    let consumed = shared.metrics.consumed.with_label_values(&["score"]);
    // Partitions assigned from before their committed offset (see `StageContext::with_resume_probe`): records
    // below the floor were scored before the restart and are dropped here, as a Kafka client drops the start
    // of a batch fetched from its middle.
    let mut floors: Vec<(String, i32, i64)> = Vec::new();

    loop {
        tokio::select! {
            biased;
            _ = shutdown.changed() => break,
            _ = fail_rx.changed() => { failure = fail_rx.borrow().clone(); break; }
            Some(done) = inflight.next(), if !inflight.is_empty() => {
                let out = done.map_err(join)?;
                if let Err(e) = publish(&shared, out, &mut max_matched, &commit_tx).await {
                    failure = Some(e.to_string());
                    break;
                }
            }
            _ = tokio::time::sleep_until(deadline), if !batch.is_empty() => {
                inflight.push_back(dispatch(&shared, std::mem::take(&mut batch)));
            }
            _ = ticks.tick() => {
                if max_matched > last_tick {
                    send_ticks(&shared, scored_partitions, max_matched.expect("greater than None"));
                    last_tick = max_matched;
                }
            }
            msg = consumer.recv(), if inflight.len() < cfg.score_parallelism => match msg {
                Ok(m) => {
                    if let Some(f) = consumer.context().take_floors() {
                        for (t, p, o) in f {
                            floors.retain(|x| !(x.0 == t && x.1 == p));
                            floors.push((t, p, o));
                        }
                    }
                    if !floors.is_empty() {
                        if let Some(i) = floors.iter().position(|x| x.1 == m.partition() && x.0 == m.topic()) {
                            if m.offset() < floors[i].2 {
                                continue;
                            }
                            floors.swap_remove(i);
                        }
                    }
                    consumed.inc();
                    // Topic names repeat: share one allocation per topic.
                    let topic = match topic_names.iter().find(|t| ***t == *m.topic()) {
                        Some(t) => t.clone(),
                        None => { let t: Arc<str> = Arc::from(m.topic()); topic_names.push(t.clone()); t }
                    };
                    if batch.is_empty() {
                        deadline = tokio::time::Instant::now() + max_wait;
                    }
                    batch.push(InRecord {
                        topic,
                        partition: m.partition(),
                        offset: m.offset(),
                        key: m.key().map(<[u8]>::to_vec),
                        payload: m.payload().unwrap_or_default().to_vec(),
                    });
                    if batch.len() >= max_records {
                        inflight.push_back(dispatch(&shared, std::mem::take(&mut batch)));
                    }
                }
                Err(e) => warn!(error = %e, "score consumer error"),
            },
        }
    }

    // Shutdown (or a failed delivery): finish what was read, make it durable, commit, leave the group.
    if failure.is_none() {
        if !batch.is_empty() {
            inflight.push_back(dispatch(&shared, std::mem::take(&mut batch)));
        }
        while let Some(done) = inflight.next().await {
            let out = done.map_err(join)?;
            if let Err(e) = publish(&shared, out, &mut max_matched, &commit_tx).await {
                failure = Some(e.to_string());
                break;
            }
        }
        if failure.is_none() && max_matched > last_tick {
            send_ticks(&shared, scored_partitions, max_matched.expect("greater than None"));
        }
    }
    drop(commit_tx);
    committer.await.map_err(join)?;
    if let Some(f) = failure.or_else(|| fail_rx.borrow().clone()) {
        shared.metrics.health.score_running.store(false, Ordering::Relaxed);
        return Err(WorkerError::Delivery(f));
    }
    let c = consumer.clone();
    tokio::task::spawn_blocking(move || {
        if let Err(e) = c.commit_consumer_state(CommitMode::Sync) {
            debug!(error = %e, "final score commit");
        }
        c.unsubscribe();
    })
    .await
    .map_err(join)?;
    shared.metrics.health.score_running.store(false, Ordering::Relaxed);
    info!("score stage stopped");
    Ok(())
}

fn join(e: tokio::task::JoinError) -> WorkerError {
    WorkerError::Internal(format!("task failed: {e}"))
}

fn dispatch(shared: &Arc<Shared>, batch: Vec<InRecord>) -> JoinHandle<BatchOut> {
    let shared = shared.clone();
    tokio::task::spawn_blocking(move || process(&shared, batch))
}

/// Decode, match, score one batch: pure CPU work, run on a blocking thread.
fn process(shared: &Shared, batch: Vec<InRecord>) -> BatchOut {
    let started = Instant::now();
    let mut out = BatchOut {
        scored: Vec::new(),
        dead: Vec::new(),
        offsets: Vec::new(),
        max_matched_time: None,
        decoded: 0,
        skipped: 0,
        matched: 0,
        unmatched: 0,
        unscored: 0,
    };
    let mut posts: Vec<Post> = Vec::with_capacity(batch.len());
    // For each post: (index of its record, index within the record).
    let mut origin: Vec<(usize, u32)> = Vec::with_capacity(batch.len());
    for (i, r) in batch.iter().enumerate() {
        match out.offsets.iter_mut().find(|(t, p, _)| *p == r.partition && *t == r.topic) {
            Some(o) => o.2 = o.2.max(r.offset),
            None => out.offsets.push((r.topic.clone(), r.partition, r.offset)),
        }
        match shared.decoder.decode(&r.payload) {
            Ok(ps) if ps.is_empty() => out.skipped += 1,
            Ok(ps) => {
                for (k, p) in ps.into_iter().enumerate() {
                    posts.push(p);
                    origin.push((i, k as u32));
                }
            }
            Err(e) => out.dead.push(dead_letter(r, e.reason(), e.to_string())),
        }
    }
    out.decoded = posts.len() as u64;
    let mut scored: Vec<Scored> = Vec::new();
    match shared.score.score_counted(&posts, &mut scored) {
        Ok(counts) => {
            let matched = counts.matched;
            out.matched = matched as u64;
            out.unscored = counts.unscored as u64;
            out.unmatched = (posts.len() - matched) as u64;
            let matcher = shared.score.matcher();
            let mut src = String::new();
            for s in &scored {
                let p = &posts[s.post];
                let (ri, sub) = origin[s.post];
                let r = &batch[ri];
                src.clear();
                src.push_str(&r.topic);
                src.push('/');
                src.push_str(&r.partition.to_string());
                let name = matcher.name(s.entity);
                let rec = StageRecord::Post(ScoredPost::new(p, name, &s.sentiment, &src, r.offset, sub));
                out.scored.push((name.to_string(), serde_json::to_vec(&rec).expect("stage records serialise")));
                out.max_matched_time = out.max_matched_time.max(Some(p.created_at));
            }
        }
        Err(e) => {
            // The backend failed: every record that yielded a post goes to the dead-letter topic, once.
            let mut seen = Vec::new();
            for &(ri, _) in &origin {
                if seen.last() != Some(&ri) {
                    seen.push(ri);
                    out.dead.push(dead_letter(&batch[ri], "score_failed", e.to_string()));
                }
            }
        }
    }
    let m = &shared.metrics;
    m.batch_size.observe(posts.len() as f64);
    m.score_seconds.observe(started.elapsed().as_secs_f64());
    out
}

fn dead_letter(r: &InRecord, reason: &'static str, detail: String) -> DeadLetter {
    DeadLetter {
        reason,
        detail,
        stage: "score",
        key: r.key.clone(),
        payload: r.payload.clone(),
        topic: r.topic.to_string(),
        partition: r.partition,
        offset: r.offset,
    }
}

/// Enqueues a batch's outputs (in order) and hands their delivery futures to the committer.
async fn publish(
    shared: &Shared,
    out: BatchOut,
    max_matched: &mut Option<Millis>,
    commit_tx: &mpsc::Sender<Pending>,
) -> Result<(), WorkerError> {
    let m = &shared.metrics;
    m.decoded.inc_by(out.decoded);
    m.skipped.inc_by(out.skipped);
    m.matched.inc_by(out.matched);
    m.unmatched.inc_by(out.unmatched);
    m.scored.inc_by(out.matched - out.unscored);
    m.unscored.inc_by(out.unscored);
    let cfg = &shared.kafka;
    let mut deliveries = Vec::with_capacity(out.scored.len() + out.dead.len());
    for (key, payload) in &out.scored {
        let rec = FutureRecord::to(&cfg.scored_topic).key(key.as_bytes()).payload(&payload[..]);
        deliveries.push(send(shared, rec).await);
    }
    for d in &out.dead {
        m.dead_lettered.with_label_values(&[d.reason]).inc();
        let mut rec = FutureRecord::to(&cfg.dead_letter_topic).payload(&d.payload[..]).headers(d.headers());
        if let Some(k) = &d.key {
            rec = rec.key(&k[..]);
        }
        deliveries.push(send(shared, rec).await);
    }
    *max_matched = (*max_matched).max(out.max_matched_time);
    commit_tx
        .send(Pending { deliveries, offsets: out.offsets })
        .await
        .map_err(|_| WorkerError::Delivery("committer stopped after a failed delivery".into()))
}

/// Enqueues one record, waiting while librdkafka's queue is full: this is the backpressure that bounds
/// memory when the broker is slow or away.
pub(crate) async fn send<'a>(shared: &Shared, mut rec: FutureRecord<'a, [u8], [u8]>) -> DeliveryFuture {
    let mut wait = Duration::from_millis(1);
    loop {
        match shared.producer.send_result(rec) {
            Ok(f) => return f,
            Err((_, r)) => {
                rec = r;
                tokio::time::sleep(wait).await;
                wait = (wait * 2).min(Duration::from_millis(100));
            }
        }
    }
}

/// Broadcasts the watermark to every partition of the internal topic. Not tracked for commits: a lost
/// tick only delays window closing until the next one.
fn send_ticks(shared: &Shared, partitions: i32, t: Millis) {
    let payload = serde_json::to_vec(&StageRecord::Tick { max_event_time: t }).expect("serialises");
    for p in 0..partitions {
        let rec: FutureRecord<'_, [u8], [u8]> =
            FutureRecord::to(&shared.kafka.scored_topic).partition(p).payload(&payload);
        if let Err((e, _)) = shared.producer.send_result(rec) {
            debug!(error = %e, partition = p, "tick not enqueued");
        }
    }
}

/// Awaits each published batch's acknowledgements in order, then stores its offsets for the auto-commit.
async fn commit_loop(
    consumer: Arc<Consumer_>,
    mut rx: mpsc::Receiver<Pending>,
    fail: watch::Sender<Option<String>>,
    shared: Arc<Shared>,
) {
    while let Some(p) = rx.recv().await {
        for d in p.deliveries {
            let err = match d.await {
                Ok(Ok(_)) => None,
                Ok(Err((e, _))) => Some(e.to_string()),
                Err(_) => Some("producer dropped the record".to_string()),
            };
            if let Some(e) = err {
                shared.metrics.produce_failures.inc();
                warn!(error = %e, "delivery failed; stopping without committing past it");
                let _ = fail.send(Some(format!("delivery failed: {e}")));
                return;
            }
        }
        for (t, part, off) in &p.offsets {
            // Fails harmlessly for a partition revoked meanwhile: its new owner re-reads from the last commit.
            if let Err(e) = consumer.store_offset(t, *part, *off) {
                debug!(error = %e, topic = %t, partition = part, "offset not stored");
            }
        }
    }
}
