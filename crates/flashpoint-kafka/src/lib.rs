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
mod client_config;
pub mod config;
pub mod dead_letter;
mod error;
pub mod health;
pub mod metrics;
pub mod notify;
pub mod outbox;
pub mod produce;
mod resume;
mod role;
pub mod score;
mod shared;
pub mod shutdown;
pub mod side_reader;
mod stage_loop;
pub mod tansu;
mod worker;

pub use crate::config::KafkaConfig;
pub use crate::error::WorkerError;
pub use crate::role::{Role, Stage};
pub use crate::shared::Shared;
pub use crate::worker::{run, WorkerSettings};
