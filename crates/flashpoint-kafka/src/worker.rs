//! Starting the worker: the chosen stages as tasks over one producer, stopped together.

use crate::client::{self, ProducerContext};
use crate::client_config::base_config;
use crate::config::KafkaConfig;
use crate::error::WorkerError;
use crate::metrics::Metrics;
use crate::outbox::Outbox;
use crate::role::{Role, Stage};
use crate::shared::Shared;
use crate::shutdown::Stop;
use crate::{aggregate, notify, score};
use flashpoint_core::aggregate::AggregatorConfig;
use flashpoint_core::entity::EntityConfig;
use flashpoint_core::post::Decoder;
use flashpoint_core::sentiment::Scorer;
use flashpoint_core::stage::ScoreStage;
use rdkafka::producer::{FutureProducer, Producer};
use std::sync::Arc;
use std::time::Duration;
use tracing::{info, warn};

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
    /// Where the notify stage keeps the events it reads for the incident pages (`None`: no pages served).
    pub pages: Option<flashpoint_notify::page::SharedStore>,
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
    if role == Role::Only(Stage::Notify) && s.notify.routes.is_empty() {
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
        pages: s.pages,
    });
    info!(?role, brokers = %shared.kafka.brokers, "worker starting");
    let has_routes = !shared.notify.routes.is_empty();
    let only;
    let stages: &[Stage] = match role {
        Role::Only(stage) => {
            only = [stage];
            &only
        }
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
