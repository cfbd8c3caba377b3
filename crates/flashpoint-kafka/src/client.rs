//! librdkafka clients: how they are configured, and the contexts that turn their callbacks (statistics,
//! errors, rebalances, commits) into metrics and health flags.

pub use crate::client_config::{base_config, describe, QuietEof};
use crate::config::KafkaConfig;
use crate::error::WorkerError;
use crate::metrics::Metrics;
use crate::resume;
use crate::role::Stage;
use crate::side_reader::SideReader;
use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::{ClientContext, DefaultClientContext};
use rdkafka::consumer::{BaseConsumer, Consumer, ConsumerContext, Rebalance, StreamConsumer};
use rdkafka::error::{KafkaError, KafkaResult, RDKafkaErrorCode};
use rdkafka::statistics::Statistics;
use rdkafka::topic_partition_list::TopicPartitionList;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tracing::{debug, info, warn};

/// A stage's member of its consumer group.
pub type GroupConsumer = StreamConsumer<StageContext>;

/// Joins `stage`'s own group (`Stage::group`) on `topics`. Every stage shares these settings: its offsets are its
/// own to store or commit (`extra` says how), a new group starts at the earliest record so nothing published
/// before it first joined is skipped, statistics feed the metrics and health, and a resume probe assigns a
/// partition from the start of the broker batch holding its committed offset (`tansu::BATCH_FETCH`). `extra`
/// (the stage's commit mode, fetch wait) applies on top, and the `[kafka.librdkafka]` pass-through on top of that.
pub fn group_consumer(
    stage: Stage,
    cfg: &KafkaConfig,
    metrics: Arc<Metrics>,
    topics: &[&str],
    extra: &[(&str, &str)],
) -> Result<Arc<GroupConsumer>, WorkerError> {
    let group = stage.group(cfg);
    let mut props: Vec<(&str, &str)> = vec![
        ("group.id", &group),
        ("auto.offset.reset", "earliest"),
        ("statistics.interval.ms", "1000"),
        ("enable.partition.eof", "false"),
    ];
    props.extend_from_slice(extra);
    let cc = base_config(cfg, &props)?;
    debug!(stage = stage.as_str(), config = %describe(&cc), "group consumer");
    let probe = SideReader::new(cfg, &format!("{}-resume-probe", stage.as_str()))?;
    let ctx = StageContext::new(stage, metrics).with_resume_probe(probe);
    let consumer: Arc<GroupConsumer> = Arc::new(cc.create_with_context(ctx)?);
    consumer.subscribe(topics)?;
    Ok(consumer)
}

/// Callbacks shared by a stage's consumer: metrics, health and the partitions revoked since last asked.
pub struct StageContext {
    pub stage: Stage,
    pub metrics: Arc<Metrics>,
    revoked: Mutex<Vec<i32>>,
    /// Set at every rebalance, read (and cleared) by the stage loop.
    rebalanced: AtomicBool,
    /// With a probe, assignments are checked for a resume offset inside a broker batch (`tansu::resume_starts`).
    probe: Option<SideReader>,
    /// (topic, partition, committed offset) of partitions assigned from an earlier offset: records before the
    /// committed offset must be dropped by the stage. Set at an assignment, taken by the stage loop.
    floors: Mutex<Vec<(String, i32, i64)>>,
    floors_changed: AtomicBool,
}

impl StageContext {
    pub fn new(stage: Stage, metrics: Arc<Metrics>) -> StageContext {
        StageContext {
            stage,
            metrics,
            revoked: Mutex::new(Vec::new()),
            rebalanced: Default::default(),
            probe: None,
            floors: Mutex::new(Vec::new()),
            floors_changed: Default::default(),
        }
    }

    /// Guards this consumer's assignments against a broker that serves a fetch from inside a record batch
    /// with the following batches only (Tansu 0.6.0: its storage selects batches by base offset, so a group
    /// resuming at a committed offset inside a batch never sees the rest of that batch). Kafka itself returns
    /// the whole batch and the client drops the records before the offset, which is what this restores: at
    /// each assignment `probe` (a group-less consumer of its own) finds where the batch holding the committed
    /// offset starts, the partition is assigned from there, and the stage drops the records before the
    /// committed offset (`take_floors`). Against Kafka it costs one short fetch per assigned partition.
    pub fn with_resume_probe(mut self, probe: SideReader) -> StageContext {
        self.probe = Some(probe);
        self
    }

    /// Floors set since the last call: `(topic, partition, offset)`, records below `offset` are already done.
    pub fn take_floors(&self) -> Option<Vec<(String, i32, i64)>> {
        if !self.floors_changed.load(Ordering::Relaxed) || !self.floors_changed.swap(false, Ordering::AcqRel) {
            return None;
        }
        Some(std::mem::take(&mut *self.floors.lock().expect("not poisoned")))
    }

    /// Partitions revoked since the last call (their state must be dropped: another worker owns them now).
    pub fn take_revoked(&self) -> Option<Vec<i32>> {
        if !self.rebalanced.swap(false, Ordering::AcqRel) {
            return None;
        }
        Some(std::mem::take(&mut *self.revoked.lock().expect("not poisoned")))
    }

    fn assigned_flag(&self) -> &std::sync::atomic::AtomicBool {
        match self.stage {
            Stage::Score => &self.metrics.health.score_assigned,
            Stage::Aggregate => &self.metrics.health.aggregate_assigned,
            Stage::Notify => &self.metrics.health.notify_assigned,
        }
    }
}

impl ClientContext for StageContext {
    fn stats(&self, s: Statistics) {
        note_stats(&self.metrics, &s);
        let mut lags: Vec<(&str, i32, i64)> = Vec::new();
        for (topic, t) in &s.topics {
            for (p, part) in &t.partitions {
                // -1 is librdkafka's internal "unassigned" partition; a lag of -1 means not known yet.
                if *p >= 0 && part.desired && part.consumer_lag >= 0 {
                    lags.push((topic.as_str(), *p, part.consumer_lag));
                }
            }
        }
        self.metrics.set_consumer_lag(self.stage.as_str(), &lags);
    }

    fn error(&self, error: KafkaError, reason: &str) {
        note_error(&self.metrics, &error, reason);
    }
}

impl ConsumerContext for StageContext {
    fn pre_rebalance(&self, _c: &BaseConsumer<Self>, r: &Rebalance<'_>) {
        match r {
            Rebalance::Revoke(tpl) => {
                self.metrics.rebalances.with_label_values(&[self.stage.as_str(), "revoke"]).inc();
                let mut v = self.revoked.lock().expect("not poisoned");
                v.extend(tpl.elements().iter().map(|e| e.partition()));
                self.assigned_flag().store(false, Ordering::Relaxed);
                self.metrics.assigned_partitions.with_label_values(&[self.stage.as_str()]).set(0);
                info!(stage = self.stage.as_str(), partitions = tpl.count(), "partitions revoked");
            }
            Rebalance::Assign(tpl) => {
                self.metrics.rebalances.with_label_values(&[self.stage.as_str(), "assign"]).inc();
                info!(stage = self.stage.as_str(), partitions = ?tpl.elements().iter().map(|e| e.partition()).collect::<Vec<_>>(), "partitions assigned");
            }
            Rebalance::Error(e) => warn!(stage = self.stage.as_str(), error = %e, "rebalance error"),
        }
        self.rebalanced.store(true, Ordering::Release);
    }

    fn post_rebalance(&self, c: &BaseConsumer<Self>, r: &Rebalance<'_>) {
        if let (Rebalance::Assign(tpl), Some(probe)) = (r, &self.probe) {
            if tpl.count() > 0 {
                let floors = resume::resume_starts(self.stage, c, probe, tpl);
                if !floors.is_empty() {
                    self.floors.lock().expect("not poisoned").extend(floors);
                    self.floors_changed.store(true, Ordering::Release);
                }
            }
        }
        let n = c.assignment().map(|a| a.count()).unwrap_or(0);
        self.assigned_flag().store(n > 0, Ordering::Relaxed);
        self.metrics.assigned_partitions.with_label_values(&[self.stage.as_str()]).set(n as i64);
    }

    fn commit_callback(&self, result: KafkaResult<()>, _offsets: &TopicPartitionList) {
        match result {
            Ok(()) => {}
            // Nothing was stored since the last commit: not a failure.
            Err(KafkaError::ConsumerCommit(RDKafkaErrorCode::NoOffset)) => {}
            Err(e) => {
                // The aggregate and notify stages commit synchronously and count their own failures;
                // counting them here too (librdkafka reports manual commits to this callback as well) would
                // double them.
                if self.stage == Stage::Score {
                    self.metrics.commit_failures.with_label_values(&[self.stage.as_str()]).inc();
                }
                warn!(stage = self.stage.as_str(), error = %e, "offset commit failed (records after the last good commit will be re-read)");
            }
        }
    }
}

/// Context of the producer: broker health only.
pub struct ProducerContext {
    pub metrics: Arc<Metrics>,
}

impl ClientContext for ProducerContext {
    fn stats(&self, s: Statistics) {
        note_stats(&self.metrics, &s);
    }
    fn error(&self, error: KafkaError, reason: &str) {
        note_error(&self.metrics, &error, reason);
    }
}

fn note_stats(m: &Metrics, s: &Statistics) {
    let up = s.brokers.values().any(|b| b.state == "UP");
    m.health.broker_up.store(up, Ordering::Relaxed);
    m.health.last_stats_ms.store(crate::metrics::now_ms(), Ordering::Relaxed);
}

fn note_error(m: &Metrics, e: &KafkaError, reason: &str) {
    if matches!(e.rdkafka_error_code(), Some(RDKafkaErrorCode::AllBrokersDown)) {
        m.health.broker_up.store(false, Ordering::Relaxed);
    }
    warn!(error = %e, reason, "kafka client error");
}

/// Creates the output and internal topics that are missing (an existing topic is left as it is).
pub async fn ensure_topics(cfg: &KafkaConfig) -> Result<(), WorkerError> {
    let admin: AdminClient<DefaultClientContext> = base_config(cfg, &[])?.create()?;
    let n = cfg.internal_partitions;
    // Topics take what the producer may send (Kafka's broker default is about 1 MB).
    let max = cfg.max_message_bytes.to_string();
    let new = |t| NewTopic::new(t, n, TopicReplication::Fixed(cfg.replication_factor)).set("max.message.bytes", &max);
    let topics = [
        new(&cfg.scored_topic),
        new(&cfg.spikes_topic),
        new(&cfg.dead_letter_topic),
        // One state partition per scored partition; only the latest snapshots matter, so compact it.
        new(&cfg.state_topic).set("cleanup.policy", "compact"),
    ];
    let opts = AdminOptions::new().operation_timeout(Some(Duration::from_secs(30)));
    for r in admin.create_topics(topics.iter(), &opts).await? {
        match r {
            Ok(t) => info!(topic = %t, partitions = n, "created topic"),
            Err((t, RDKafkaErrorCode::TopicAlreadyExists)) => debug!(topic = %t, "topic exists"),
            Err((t, e)) => return Err(WorkerError::Config(format!("creating topic {t}: {e}"))),
        }
    }
    Ok(())
}

/// Creates one topic unless it exists (for `flashpoint produce --partitions`).
pub async fn create_topic(cfg: &KafkaConfig, topic: &str, partitions: i32) -> Result<(), WorkerError> {
    let admin: AdminClient<DefaultClientContext> = base_config(cfg, &[])?.create()?;
    let t = NewTopic::new(topic, partitions, TopicReplication::Fixed(cfg.replication_factor));
    let opts = AdminOptions::new().operation_timeout(Some(Duration::from_secs(30)));
    for r in admin.create_topics([&t], &opts).await? {
        match r {
            Ok(_) | Err((_, RDKafkaErrorCode::TopicAlreadyExists)) => {}
            Err((t, e)) => return Err(WorkerError::Config(format!("creating topic {t}: {e}"))),
        }
    }
    Ok(())
}

/// Partition count of `topic`, waiting up to `wait` for it to appear in metadata (a topic just created
/// takes a moment to propagate).
pub fn partition_count<X: ConsumerContext>(
    c: &impl Consumer<X>,
    topic: &str,
    wait: Duration,
) -> Result<i32, WorkerError> {
    let deadline = std::time::Instant::now() + wait;
    loop {
        let md = c.fetch_metadata(Some(topic), Duration::from_secs(10))?;
        if let Some(t) = md.topics().iter().find(|t| t.name() == topic) {
            if t.error().is_none() && !t.partitions().is_empty() {
                return Ok(t.partitions().len() as i32);
            }
        }
        if std::time::Instant::now() > deadline {
            return Err(WorkerError::Config(format!("topic {topic} does not exist or has no partitions (create it first; the worker creates its own output and internal topics when kafka.create_topics = true)")));
        }
        std::thread::sleep(Duration::from_millis(250));
    }
}
