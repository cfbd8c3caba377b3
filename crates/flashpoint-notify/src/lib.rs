//! Flashpoint's notifier: turns spike events into messages people read, on Slack, Microsoft Teams, PagerDuty,
//! signed generic webhooks and email, and delivers them at least once.
//!
//! Transport-agnostic on the input side: whoever reads the events (the `flashpoint notify` command from a JSON
//! Lines file or a pipe, a Kafka consumer stage) hands each one to the [`Engine`] with its input [`Position`], and
//! commits only up to [`Engine::low_water`], the position below which every route has delivered or dead-lettered
//! everything. Inside: [`config`] (the `[notify]` section), [`delivery`] (retries, deadlines, the breaker, allowed
//! destinations), [`secret`] (secrets from the environment or files, never printed), [`message`] (what moves
//! between them), [`reader`] (the one reader of input records), [`channel`] (one module per kind of channel),
//! [`router`] (a pure state machine: routes, update intervals, rate limits, digests), [`safe`] (post text made
//! inert per destination), [`format`] (each receiver's payload), [`chart`] (the email's PNG),
//! [`engine`] (queues, workers, retries, dead letters, acknowledgements), [`metrics`], and [`page`] (the incident
//! pages: a bounded store of incidents and their HTML, for `flashpoint report` and the live server).

pub mod channel;
pub mod chart;
pub mod config;
pub mod delivery;
pub mod engine;
pub mod format;
pub mod message;
pub mod metrics;
pub mod page;
pub mod reader;
pub mod router;
pub mod safe;
pub mod secret;
pub mod tracker;

pub use config::NotifyConfig;
pub use engine::{DeadLetter, Engine, EngineError, Resume};
pub use message::{Input, Position};
pub use metrics::NotifyMetrics;
pub use reader::{parse_event, InputRejection};
