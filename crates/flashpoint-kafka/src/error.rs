//! The worker's one error type: what stops a stage (and with it the process, for its supervisor to restart).

use rdkafka::error::KafkaError;

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
