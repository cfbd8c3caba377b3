//! The `[kafka]` section of the worker's config: topics, group, batching, checkpoints, and the client
//! settings passed through to librdkafka (security included).
//!
//! Secrets are never config values: a password is read from a file or an environment variable named in
//! the config, so the config file can be shown, logged and committed.

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct KafkaConfig {
    /// Bootstrap servers, comma-separated.
    pub brokers: String,
    /// Topics holding raw posts (the score stage's input).
    pub input_topics: Vec<String>,
    /// Consumer group prefix: the stages join `<group_id>-score` and `<group_id>-aggregate`.
    pub group_id: String,
    /// Internal topic of scored posts, keyed by entity (the aggregate stage's input).
    pub scored_topic: String,
    /// Where spike events go.
    pub spikes_topic: String,
    /// Where bad records (with the reason in headers) and late posts go.
    pub dead_letter_topic: String,
    /// Aggregate-stage checkpoints: one partition per scored-topic partition.
    pub state_topic: String,
    /// Create the output and internal topics at start if they are missing.
    pub create_topics: bool,
    /// Partitions of the internal topics when created here: the most aggregate workers that can share the work.
    pub internal_partitions: i32,
    pub replication_factor: i32,
    /// A scoring batch closes at this many records...
    pub batch_max_records: usize,
    /// ...or this long after its first record, whichever comes first (bounds latency at low rates).
    pub batch_max_wait_ms: u64,
    /// Scoring batches in flight at once (threads used by a slow backend such as the transformer).
    pub score_parallelism: usize,
    /// How often the aggregate stage makes its outputs durable, writes its state and commits.
    pub checkpoint_interval_ms: u64,
    /// How often the score stage broadcasts its event-time watermark to every internal partition.
    pub tick_interval_ms: u64,
    /// Largest record the worker produces (librdkafka's `message.max.bytes`; topics the worker creates get
    /// it as `max.message.bytes`). Must leave room for the largest input record plus its envelope; an output
    /// that is still too large goes to the dead-letter topic as its head.
    pub max_message_bytes: usize,
    /// After SIGTERM, how long the worker may drain, commit and leave its groups before it exits anyway
    /// (uncommitted records are then re-read by the next owner). Below the orchestrator's grace period.
    pub shutdown_timeout_ms: u64,
    pub security: SecurityConfig,
    /// Extra librdkafka properties for every client (e.g. `"socket.keepalive.enable" = "true"`). Values of
    /// keys that look secret are redacted in logs.
    pub librdkafka: BTreeMap<String, String>,
}

impl Default for KafkaConfig {
    fn default() -> Self {
        KafkaConfig {
            brokers: "127.0.0.1:9092".into(),
            input_topics: vec!["posts".into()],
            group_id: "flashpoint".into(),
            scored_topic: "flashpoint.scored".into(),
            spikes_topic: "flashpoint.spikes".into(),
            dead_letter_topic: "flashpoint.dead-letter".into(),
            state_topic: "flashpoint.state".into(),
            create_topics: true,
            internal_partitions: 12,
            replication_factor: 1,
            batch_max_records: 512,
            batch_max_wait_ms: 20,
            score_parallelism: 2,
            checkpoint_interval_ms: 1000,
            tick_interval_ms: 200,
            max_message_bytes: DEFAULT_MAX_MESSAGE_BYTES,
            shutdown_timeout_ms: 25_000,
            security: SecurityConfig::default(),
            librdkafka: BTreeMap::new(),
        }
    }
}

/// 1 MiB (the default `input.max_record_bytes`) plus `RECORD_ENVELOPE`.
pub const DEFAULT_MAX_MESSAGE_BYTES: usize = (1 << 20) + RECORD_ENVELOPE;
/// What a produced record adds to the input record it derives from, at most: stage-record fields, key,
/// headers and librdkafka's framing.
pub const RECORD_ENVELOPE: usize = 64 * 1024;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum Protocol {
    #[default]
    Plaintext,
    Ssl,
    SaslPlaintext,
    SaslSsl,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum SaslMechanism {
    #[serde(rename = "PLAIN")]
    Plain,
    #[serde(rename = "SCRAM-SHA-256")]
    ScramSha256,
    #[serde(rename = "SCRAM-SHA-512")]
    ScramSha512,
}

/// TLS and SASL settings, mapped onto librdkafka's `security.protocol`, `sasl.*` and `ssl.*`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SecurityConfig {
    pub protocol: Protocol,
    pub sasl_mechanism: Option<SaslMechanism>,
    pub sasl_username: Option<String>,
    /// File holding the SASL password (e.g. a mounted Kubernetes Secret); trailing newline ignored.
    pub sasl_password_file: Option<String>,
    /// Environment variable holding the SASL password.
    pub sasl_password_env: Option<String>,
    /// CA bundle to verify the brokers (PEM).
    pub ssl_ca_location: Option<String>,
    /// Client certificate and key for mutual TLS (PEM).
    pub ssl_certificate_location: Option<String>,
    pub ssl_key_location: Option<String>,
    pub ssl_key_password_file: Option<String>,
    pub ssl_key_password_env: Option<String>,
    /// Verify the broker's host name against its certificate (turn off only for testing).
    pub ssl_endpoint_identification: Option<bool>,
}

impl KafkaConfig {
    /// Checks what serde cannot; errors name the key.
    pub fn validate(&self) -> Result<(), String> {
        let positive = [
            ("kafka.batch_max_records", self.batch_max_records as u64),
            ("kafka.score_parallelism", self.score_parallelism as u64),
            ("kafka.checkpoint_interval_ms", self.checkpoint_interval_ms),
            ("kafka.tick_interval_ms", self.tick_interval_ms),
            ("kafka.shutdown_timeout_ms", self.shutdown_timeout_ms),
            ("kafka.internal_partitions", self.internal_partitions.max(0) as u64),
            ("kafka.replication_factor", self.replication_factor.max(0) as u64),
        ];
        for (k, v) in positive {
            if v == 0 {
                return Err(format!("{k}: must be positive"));
            }
        }
        // librdkafka's own bounds for message.max.bytes; below 64 KiB a dead letter's head would be useless.
        if !(RECORD_ENVELOPE..=1_000_000_000).contains(&self.max_message_bytes) {
            return Err(format!("kafka.max_message_bytes: must be between {RECORD_ENVELOPE} and 1000000000"));
        }
        if self.brokers.trim().is_empty() {
            return Err("kafka.brokers: empty".into());
        }
        if self.input_topics.is_empty() || self.input_topics.iter().any(|t| t.trim().is_empty()) {
            return Err("kafka.input_topics: list at least one non-empty topic".into());
        }
        let names = [&self.scored_topic, &self.spikes_topic, &self.dead_letter_topic, &self.state_topic];
        for (i, a) in names.iter().enumerate() {
            if a.trim().is_empty() {
                return Err("kafka: topic names must not be empty".into());
            }
            if names[i + 1..].contains(a) || self.input_topics.contains(a) {
                return Err(format!("kafka: topic `{a}` is used for two purposes"));
            }
        }
        let s = &self.security;
        let sasl = matches!(s.protocol, Protocol::SaslPlaintext | Protocol::SaslSsl);
        if sasl && (s.sasl_mechanism.is_none() || s.sasl_username.is_none()) {
            return Err("kafka.security: a SASL protocol needs sasl_mechanism and sasl_username".into());
        }
        if sasl && s.sasl_password_file.is_none() && s.sasl_password_env.is_none() {
            return Err("kafka.security: a SASL protocol needs sasl_password_file or sasl_password_env".into());
        }
        if s.sasl_password_file.is_some() && s.sasl_password_env.is_some() {
            return Err("kafka.security: set only one of sasl_password_file and sasl_password_env".into());
        }
        for k in self.librdkafka.keys() {
            if k.starts_with("sasl.password") || k == "ssl.key.password" {
                return Err(format!(
                    "kafka.librdkafka.{k}: put secrets in a file or an environment variable (kafka.security)"
                ));
            }
        }
        Ok(())
    }

    /// The librdkafka properties every client gets: brokers and security. Secrets are read here. The
    /// `librdkafka` pass-through map is applied by `client::base_config`, after each client's own defaults.
    pub fn client_properties(&self) -> Result<Vec<(String, String)>, String> {
        let mut v: Vec<(String, String)> = vec![("bootstrap.servers".into(), self.brokers.clone())];
        let s = &self.security;
        let protocol = match s.protocol {
            Protocol::Plaintext => "plaintext",
            Protocol::Ssl => "ssl",
            Protocol::SaslPlaintext => "sasl_plaintext",
            Protocol::SaslSsl => "sasl_ssl",
        };
        v.push(("security.protocol".into(), protocol.into()));
        if let Some(m) = s.sasl_mechanism {
            let m = match m {
                SaslMechanism::Plain => "PLAIN",
                SaslMechanism::ScramSha256 => "SCRAM-SHA-256",
                SaslMechanism::ScramSha512 => "SCRAM-SHA-512",
            };
            v.push(("sasl.mechanism".into(), m.into()));
        }
        if let Some(u) = &s.sasl_username {
            v.push(("sasl.username".into(), u.clone()));
        }
        if let Some(p) = secret(&s.sasl_password_file, &s.sasl_password_env, "kafka.security.sasl_password")? {
            v.push(("sasl.password".into(), p));
        }
        let paths = [
            ("ssl.ca.location", &s.ssl_ca_location),
            ("ssl.certificate.location", &s.ssl_certificate_location),
            ("ssl.key.location", &s.ssl_key_location),
        ];
        for (k, p) in paths {
            if let Some(p) = p {
                v.push((k.into(), p.clone()));
            }
        }
        if let Some(p) = secret(&s.ssl_key_password_file, &s.ssl_key_password_env, "kafka.security.ssl_key_password")? {
            v.push(("ssl.key.password".into(), p));
        }
        if let Some(b) = s.ssl_endpoint_identification {
            v.push(("ssl.endpoint.identification.algorithm".into(), if b { "https" } else { "none" }.into()));
        }
        Ok(v)
    }
}

fn secret(file: &Option<String>, env: &Option<String>, key: &str) -> Result<Option<String>, String> {
    if let Some(f) = file {
        let s = std::fs::read_to_string(f).map_err(|e| format!("{key}_file: reading {f}: {e}"))?;
        return Ok(Some(s.trim_end_matches(['\n', '\r']).to_string()));
    }
    if let Some(e) = env {
        return std::env::var(e).map(Some).map_err(|_| format!("{key}_env: environment variable {e} is not set"));
    }
    Ok(None)
}

/// True for librdkafka keys whose values must never be logged.
pub fn is_secret_key(k: &str) -> bool {
    k.contains("password") || k.contains("secret") || k.ends_with(".key.pem") || k.contains("oauthbearer.config")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_come_from_files_or_env_and_are_flagged() {
        let dir = std::env::temp_dir().join(format!("fp-secret-{}", std::process::id()));
        std::fs::write(&dir, "s3cret\n").unwrap();
        let mut c = KafkaConfig::default();
        c.security = SecurityConfig {
            protocol: Protocol::SaslSsl,
            sasl_mechanism: Some(SaslMechanism::ScramSha512),
            sasl_username: Some("svc".into()),
            sasl_password_file: Some(dir.display().to_string()),
            ssl_ca_location: Some("/etc/ca.pem".into()),
            ..Default::default()
        };
        c.validate().unwrap();
        let props = c.client_properties().unwrap();
        let get = |k: &str| props.iter().find(|(a, _)| a == k).map(|(_, v)| v.as_str());
        assert_eq!(get("security.protocol"), Some("sasl_ssl"));
        assert_eq!(get("sasl.mechanism"), Some("SCRAM-SHA-512"));
        assert_eq!(get("sasl.password"), Some("s3cret"));
        assert_eq!(get("ssl.ca.location"), Some("/etc/ca.pem"));
        assert!(is_secret_key("sasl.password"));
        std::fs::remove_file(&dir).unwrap();
        c.security.sasl_password_file = None;
        assert!(c.validate().unwrap_err().contains("sasl_password"));
        c.security.sasl_password_env = Some("FLASHPOINT_TEST_SURELY_UNSET".into());
        assert!(c.client_properties().unwrap_err().contains("FLASHPOINT_TEST_SURELY_UNSET"));
        let mut c = KafkaConfig::default();
        c.librdkafka.insert("sasl.password".into(), "x".into());
        assert!(c.validate().unwrap_err().contains("kafka.librdkafka.sasl.password"));
    }

    #[test]
    fn the_producer_limit_must_leave_room_for_a_dead_letter() {
        let mut c = KafkaConfig::default();
        c.validate().unwrap();
        c.max_message_bytes = 1000;
        assert!(c.validate().unwrap_err().starts_with("kafka.max_message_bytes:"));
    }

    #[test]
    fn topics_must_be_distinct() {
        let mut c = KafkaConfig::default();
        c.spikes_topic = c.scored_topic.clone();
        assert!(c.validate().unwrap_err().contains("two purposes"));
    }
}
