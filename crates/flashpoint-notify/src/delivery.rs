//! How messages leave, the same for every channel: retries, queues, deadlines and the circuit breaker
//! (`DeliveryConfig`, the `[notify.delivery]` table), and which destinations a message may go to at all.
//!
//! A leaf of the crate: the config reads it and every channel checks its destination with it, so neither has to
//! import the other.

use serde::{Deserialize, Serialize};

/// Retries and queues, the same for every channel.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DeliveryConfig {
    /// Messages waiting per channel; when full, a new message for that channel is dead-lettered (reason
    /// `queue_full`) rather than stalling the other channels.
    pub queue_capacity: usize,
    /// Attempts per message before it is dead-lettered.
    pub max_attempts: u32,
    /// First retry delay; doubled per attempt up to `max_backoff_ms`, with jitter.
    pub initial_backoff_ms: u64,
    pub max_backoff_ms: u64,
    /// A `Retry-After` longer than this is cut to it (a receiver cannot park a channel for a day).
    pub max_retry_after_secs: u64,
    /// Per request: connect, send and wait for the answer. A hanging receiver counts as a retryable failure.
    pub timeout_secs: u64,
    /// A message still failing this long after its first attempt is dead-lettered (a `Retry-After` wait does
    /// not count: the receiver is up and asked for it).
    pub message_deadline_secs: u64,
    /// A channel whose message was given up after this many consecutive failures opens its circuit: ...
    pub breaker_failures: u32,
    /// ... for this long every message is dead-lettered at once (`circuit_open`), then one probe decides
    /// whether it closes again. A dead destination costs one deadline, not one per message.
    pub breaker_open_secs: u64,
}

impl Default for DeliveryConfig {
    fn default() -> Self {
        DeliveryConfig {
            queue_capacity: 1024,
            max_attempts: 12,
            initial_backoff_ms: 500,
            max_backoff_ms: 60_000,
            max_retry_after_secs: 300,
            timeout_secs: 10,
            message_deadline_secs: 30,
            breaker_failures: 3,
            breaker_open_secs: 30,
        }
    }
}

pub fn is_localhost(host: &str) -> bool {
    matches!(host, "localhost" | "::1" | "[::1]") || host.starts_with("127.")
}

/// HTTPS, or plain HTTP to this machine only: a webhook URL is a credential and alerts quote customers' posts,
/// neither goes over the network in clear.
pub fn check_url(u: &str) -> Result<(), &'static str> {
    let url = reqwest::Url::parse(u).map_err(|_| "not a valid URL")?;
    match url.scheme() {
        "https" => Ok(()),
        "http" if url.host_str().is_some_and(is_localhost) => Ok(()),
        "http" => Err("plain http is only allowed to localhost; use https"),
        _ => Err("not an http(s) URL"),
    }
}
