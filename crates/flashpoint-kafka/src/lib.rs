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

pub mod aggregate;
pub mod client;
pub mod config;
pub mod dead_letter;
pub mod metrics;
pub mod produce;
pub mod score;

use crate::client::{base_config, ProducerContext};
pub use crate::config::KafkaConfig;
use crate::metrics::Metrics;
use flashpoint_core::aggregate::AggregatorConfig;
use flashpoint_core::entity::EntityConfig;
use flashpoint_core::post::Decoder;
use flashpoint_core::sentiment::Scorer;
use flashpoint_core::stage::ScoreStage;
use rdkafka::error::KafkaError;
use rdkafka::producer::{FutureProducer, Producer};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::watch;
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
}

/// Which stages this process runs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Role {
    Score,
    Aggregate,
    All,
}

/// What the stages share: config, the pure stages, the producer and the metrics.
pub struct Shared {
    pub kafka: KafkaConfig,
    pub decoder: Decoder,
    pub score: ScoreStage,
    pub entities: Vec<EntityConfig>,
    pub aggregator: AggregatorConfig,
    pub producer: FutureProducer<ProducerContext>,
    pub metrics: Arc<Metrics>,
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
}

/// Runs the worker until `shutdown` turns true (then drains, commits and leaves the groups) or a stage
/// fails.
pub async fn run(
    role: Role,
    s: WorkerSettings,
    scorer: Arc<dyn Scorer>,
    metrics: Arc<Metrics>,
    shutdown: watch::Receiver<bool>,
) -> Result<(), WorkerError> {
    s.kafka.validate().map_err(WorkerError::Config)?;
    let mut score = ScoreStage::new(scorer, &s.entities).map_err(WorkerError::Config)?;
    score.normalize = s.normalize;
    score.language = s.language;
    metrics.set_entities(score.matcher().names());
    if s.kafka.create_topics {
        client::ensure_topics(&s.kafka).await?;
    }
    // Idempotence keeps each partition's records in send order across retries: the aggregate stage's
    // de-duplication and the replay equivalence rely on that order. An infinite message timeout makes a
    // broker outage backpressure (librdkafka's bounded queue fills, `send` waits) instead of data loss.
    let pc = base_config(
        &s.kafka,
        &[
            ("enable.idempotence", "true"),
            ("acks", "all"),
            ("linger.ms", "5"),
            ("message.timeout.ms", "0"),
            ("queue.buffering.max.kbytes", "65536"),
            ("statistics.interval.ms", "1000"),
        ],
    )?;
    let producer: FutureProducer<ProducerContext> =
        pc.create_with_context(ProducerContext { metrics: metrics.clone() })?;
    let shared = Arc::new(Shared {
        kafka: s.kafka,
        decoder: s.decoder,
        score,
        entities: s.entities,
        aggregator: s.aggregator,
        producer,
        metrics,
    });
    info!(?role, brokers = %shared.kafka.brokers, "worker starting");
    let result = match role {
        Role::Score => score::run(shared.clone(), shutdown).await,
        Role::Aggregate => aggregate::run(shared.clone(), shutdown).await,
        Role::All => {
            // One stage failing stops the other, so the process exits (non-zero) for its supervisor to
            // restart it, rather than living on half-dead: a score stage with no aggregate stage behind it
            // (found by scripts/faults.sh pause: a snapshot read timed out while the broker was frozen).
            let (tx, rx) = watch::channel(false);
            let tx = Arc::new(tx);
            {
                let (tx, mut ext) = (tx.clone(), shutdown);
                tokio::spawn(async move {
                    loop {
                        if *ext.borrow_and_update() {
                            let _ = tx.send(true);
                            break;
                        }
                        if ext.changed().await.is_err() {
                            break;
                        }
                    }
                });
            }
            let a = {
                let (tx, shared, rx) = (tx.clone(), shared.clone(), rx.clone());
                tokio::spawn(async move {
                    let r = aggregate::run(shared, rx).await;
                    if let Err(e) = &r {
                        warn!(error = %e, "aggregate stage failed; stopping the score stage");
                        let _ = tx.send(true);
                    }
                    r
                })
            };
            let r = score::run(shared.clone(), rx).await;
            if let Err(e) = &r {
                warn!(error = %e, "score stage failed; stopping the aggregate stage");
                let _ = tx.send(true);
            }
            let ra = a.await.map_err(|e| WorkerError::Internal(e.to_string()))?;
            r.and(ra)
        }
    };
    let p = shared.clone();
    let _ = tokio::task::spawn_blocking(move || p.producer.flush(Duration::from_secs(30))).await;
    result
}
