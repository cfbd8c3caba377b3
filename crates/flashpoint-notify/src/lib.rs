//! Flashpoint's notifier: turns spike events into messages people read, on Slack, Microsoft Teams, PagerDuty,
//! signed generic webhooks and email, and delivers them at least once.
//!
//! Transport-agnostic on the input side: whoever reads the events (the `flashpoint notify` command from a JSON
//! Lines file or a pipe, a Kafka consumer stage) hands each one to the [`Engine`] with its input [`Position`], and
//! commits only up to [`Engine::low_water`], the position below which every route has delivered or dead-lettered
//! everything. Inside: [`config`] (the `[notify]` section), [`secret`] (secrets from the environment or files,
//! never printed), [`router`] (a pure state machine: routes, update intervals, rate limits, digests), [`safe`]
//! (post text made inert per destination), [`format`] (each receiver's payload), [`chart`] (the email's PNG),
//! [`engine`] (queues, workers, retries, dead letters, acknowledgements) and [`metrics`].

pub mod chart;
pub mod config;
pub mod engine;
pub mod format;
pub mod metrics;
pub mod router;
pub mod safe;
pub mod secret;
pub mod tracker;

pub use config::NotifyConfig;
pub use engine::{DeadLetter, Engine, EngineError};
pub use metrics::NotifyMetrics;
pub use router::{Input, Position};

use flashpoint_core::event::SpikeEvent;
use std::sync::Arc;

/// Parses one spike-event JSON line. Lenient about fields it does not use (newer producers may add some), strict
/// about the ones it does. The line is kept as it came for the generic webhook.
pub fn parse_event(line: &str, position: Position) -> Result<Input, String> {
    let event: SpikeEvent = serde_json::from_str(line).map_err(|e| format!("not a spike event: {e}"))?;
    if !event.schema.starts_with("flashpoint.spike.") {
        return Err(format!(
            "schema {:?} is not a flashpoint spike event",
            flashpoint_core::sanitize::for_log_truncated(&event.schema, 60)
        ));
    }
    Ok(Input { position, event: Arc::new(event), raw: Arc::from(line.trim_end()) })
}
