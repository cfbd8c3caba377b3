//! What the running stages share: config, the pure stages, the outbox, the metrics and the incident pages' store.

use crate::config::KafkaConfig;
use crate::metrics::Metrics;
use crate::outbox::Outbox;
use flashpoint_core::aggregate::AggregatorConfig;
use flashpoint_core::entity::EntityConfig;
use flashpoint_core::post::Decoder;
use flashpoint_core::stage::ScoreStage;
use std::sync::Arc;

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
    /// The incident pages' store, fed by the notify stage (`None`: no pages served).
    pub pages: Option<flashpoint_notify::page::SharedStore>,
}
