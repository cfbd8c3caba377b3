//! What every librdkafka client of the worker starts from: its properties (brokers, security, defaults, the
//! operator's pass-through), how they are logged, and the quiet context of the group-less readers.

use crate::config::{is_secret_key, KafkaConfig};
use crate::error::WorkerError;
use rdkafka::client::ClientContext;
use rdkafka::config::ClientConfig;
use rdkafka::consumer::ConsumerContext;
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use tracing::warn;

/// A client's properties: brokers and security, then the client's own `defaults`, then the `[kafka.librdkafka]`
/// pass-through map last, so an operator can override any default.
pub fn base_config(cfg: &KafkaConfig, defaults: &[(&str, &str)]) -> Result<ClientConfig, WorkerError> {
    let mut c = ClientConfig::new();
    for (k, v) in cfg.client_properties().map_err(WorkerError::Config)? {
        c.set(k, v);
    }
    for (k, v) in defaults {
        c.set(*k, *v);
    }
    for (k, v) in &cfg.librdkafka {
        c.set(k, v);
    }
    Ok(c)
}

/// The client's properties for a log line, secrets redacted.
pub fn describe(c: &ClientConfig) -> String {
    let mut v: Vec<String> = c
        .config_map()
        .iter()
        .map(|(k, val)| if is_secret_key(k) { format!("{k}=[redacted]") } else { format!("{k}={val}") })
        .collect();
    v.sort();
    v.join(" ")
}

/// The context of the group-less side readers (snapshots, gap re-reads, resume probes): end-of-partition is
/// how they know they are done, not an error to log.
pub struct QuietEof;

impl ClientContext for QuietEof {
    fn error(&self, error: KafkaError, reason: &str) {
        if error.rdkafka_error_code() != Some(RDKafkaErrorCode::PartitionEOF) {
            warn!(error = %error, reason, "side reader error");
        }
    }
}

impl ConsumerContext for QuietEof {}
