//! Flashpoint's Kafka I/O: the cluster worker's two stages as consumer-group members, and its metrics.
//!
//! The decision logic (decoding, matching, scoring, windows, detection, de-duplication, snapshots) is all
//! in `flashpoint-core::stage`; this crate only moves records and offsets, in the at-least-once discipline
//! of rust-rdkafka's `at_least_once` example: an offset is committed only after everything derived from
//! the records before it is acknowledged by the broker. See ARCHITECTURE.md for the data path.
//!
//! - `score`: input topics → decode → match → score → internal topic keyed by entity (+ dead letters).
//! - `aggregate`: internal topic → per-partition windows and detectors → spike events (+ late posts),
//!   with state checkpoints in a state topic so partitions can move between workers.
//! - `notify`: spikes topic → the notifier's engine (`flashpoint-notify`) → Slack, Teams, PagerDuty, webhooks,
//!   email; commits each partition's low-water mark (everything before it delivered or dead-lettered).

pub mod aggregate;
pub mod client;
pub mod config;
pub mod dead_letter;
pub mod health;
pub mod metrics;
pub mod notify;
pub mod outbox;
pub mod produce;
pub mod score;
pub mod shutdown;
pub mod side_reader;
mod stage_loop;
pub mod tansu;

use crate::client::{base_config, ProducerContext};
pub use crate::config::KafkaConfig;
use crate::metrics::Metrics;
use crate::outbox::Outbox;
use crate::shutdown::Stop;
use flashpoint_core::aggregate::AggregatorConfig;
use flashpoint_core::entity::EntityConfig;
use flashpoint_core::post::Decoder;
use flashpoint_core::sentiment::Scorer;
use flashpoint_core::stage::ScoreStage;
use rdkafka::error::KafkaError;
use rdkafka::producer::{FutureProducer, Producer};
use std::sync::Arc;
use std::time::Duration;
use tracing::{info, warn};

#[derive(Debug, thiserror::Error)]
pub enum WorkerError {
    #[error("kafka: {0}")]
    Kafka(#[from] KafkaError),
    #[error("{0}")]
    Config(String),
    /// A record could not be delivered: the worker stops without committing past it.
    #[error("{0}")]
    Delivery(String),
    #[error("internal: {0}")]
    Internal(String),
    #[error("notify: {0}")]
    Notify(#[from] flashpoint_notify::EngineError),
}

/// Which stages this process runs (the `--role` flag).
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Role {
    Score,
    Aggregate,
    Notify,
    /// Every stage; the notify stage only when `[[notify.routes]]` are configured.
    All,
}

/// One stage of the worker: names its consumer group, its metric labels and its health flags.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Stage {
    Score,
    Aggregate,
    Notify,
}

impl Stage {
    pub const ALL: [Stage; 3] = [Stage::Score, Stage::Aggregate, Stage::Notify];

    pub fn as_str(self) -> &'static str {
        match self {
            Stage::Score => "score",
            Stage::Aggregate => "aggregate",
            Stage::Notify => "notify",
        }
    }

    /// The stage's consumer group: `<group_id>-score`, `<group_id>-aggregate` or `<group_id>-notify`.
    pub fn group(self, cfg: &KafkaConfig) -> String {
        format!("{}-{}", cfg.group_id, self.as_str())
    }
}

/// What the stages share: config, the pure stages, the outbox and the metrics.
pub struct Shared {
    pub kafka: KafkaConfig,
    pub decoder: Decoder,
    pub score: ScoreStage,
    pub entities: Vec<EntityConfig>,
    pub aggregator: AggregatorConfig,
    pub outbox: Outbox,
    pub metrics: Arc<Metrics>,
    pub notify: flashpoint_notify::NotifyConfig,
}

/// Everything `run` needs besides the scorer.
pub struct WorkerSettings {
    pub kafka: KafkaConfig,
    pub decoder: Decoder,
    pub entities: Vec<EntityConfig>,
    pub aggregator: AggregatorConfig,
    pub normalize: bool,
    /// Which matched posts the scorer reads (`flashpoint_core::lang`).
    pub language: flashpoint_core::lang::LanguageGate,
    /// The notify stage's channels and routes (`[notify]`).
    pub notify: flashpoint_notify::NotifyConfig,
}

/// Runs the worker until `stop` fires (then drains, commits and leaves the groups) or a stage fails; a
/// failing stage fires `stop` itself, so the others stop too and the process exits for its supervisor to
/// restart it rather than living on half-dead (a score stage with no aggregate stage behind it was found
/// by scripts/faults.sh pause).
pub async fn run(
    role: Role,
    s: WorkerSettings,
    scorer: Arc<dyn Scorer>,
    metrics: Arc<Metrics>,
    stop: Stop,
) -> Result<(), WorkerError> {
    s.kafka.validate().map_err(WorkerError::Config)?;
    if role == Role::Notify && s.notify.routes.is_empty() {
        return Err(WorkerError::Config(
            "notify.routes: --role notify needs [[notify.channels]] and [[notify.routes]] (see README, Alerts)".into(),
        ));
    }
    let mut score = ScoreStage::new(scorer, &s.entities).map_err(WorkerError::Config)?;
    score.normalize = s.normalize;
    score.language = s.language;
    metrics.set_entities(score.matcher().names());
    if s.kafka.create_topics {
        client::ensure_topics(&s.kafka).await?;
    }
    let outbox = producer(&s.kafka, &metrics)?;
    let shared = Arc::new(Shared {
        kafka: s.kafka,
        decoder: s.decoder,
        score,
        entities: s.entities,
        aggregator: s.aggregator,
        outbox,
        metrics,
        notify: s.notify,
    });
    info!(?role, brokers = %shared.kafka.brokers, "worker starting");
    let has_routes = !shared.notify.routes.is_empty();
    let stages: &[Stage] = match role {
        Role::Score => &[Stage::Score],
        Role::Aggregate => &[Stage::Aggregate],
        Role::Notify => &[Stage::Notify],
        Role::All if has_routes => &Stage::ALL,
        Role::All => {
            info!("no [[notify.routes]] configured: the notify stage does not run");
            &[Stage::Score, Stage::Aggregate]
        }
    };
    let tasks: Vec<_> = stages
        .iter()
        .map(|&stage| {
            let (shared, stop) = (shared.clone(), stop.clone());
            tokio::spawn(async move {
                let r = match stage {
                    Stage::Score => score::run(shared, stop.subscribe()).await,
                    Stage::Aggregate => aggregate::run(shared, stop.subscribe()).await,
                    Stage::Notify => notify::run(shared, stop.subscribe()).await,
                };
                if let Err(e) = &r {
                    warn!(error = %e, "{} stage failed; stopping the worker", stage.as_str());
                    stop.fire();
                }
                r
            })
        })
        .collect();
    let mut result = Ok(());
    for t in tasks {
        let r = t.await.map_err(|e| WorkerError::Internal(e.to_string())).and_then(|r| r);
        result = result.and(r);
    }
    let p = shared.clone();
    let _ = tokio::task::spawn_blocking(move || p.outbox.producer.flush(Duration::from_secs(10))).await;
    result
}

/// The worker's one producer, behind its outbox.
fn producer(cfg: &KafkaConfig, metrics: &Arc<Metrics>) -> Result<Outbox, WorkerError> {
    // Idempotence keeps each partition's records in send order across retries: the aggregate stage's
    // de-duplication and the replay equivalence rely on that order. An infinite message timeout makes a
    // broker outage backpressure (librdkafka's bounded queue fills, `send` waits) instead of data loss.
    let max = cfg.max_message_bytes.to_string();
    let pc = base_config(
        cfg,
        &[
            ("enable.idempotence", "true"),
            ("acks", "all"),
            ("linger.ms", "5"),
            ("message.timeout.ms", "0"),
            ("queue.buffering.max.kbytes", "65536"),
            ("statistics.interval.ms", "1000"),
            ("message.max.bytes", &max),
        ],
    )?;
    // Read back: the `[kafka.librdkafka]` pass-through may have overridden it.
    let max_bytes = pc.get("message.max.bytes").and_then(|v| v.parse().ok()).unwrap_or(cfg.max_message_bytes);
    let producer: FutureProducer<ProducerContext> =
        pc.create_with_context(ProducerContext { metrics: metrics.clone() })?;
    Ok(Outbox::new(producer, metrics.clone(), cfg.dead_letter_topic.clone(), max_bytes))
}
