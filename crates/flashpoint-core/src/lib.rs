//! Flashpoint's core: everything between a decoded post and a spike event, with no I/O.
//!
//! The Kafka worker, the `replay` command and the tests all drive the same pure state machines defined
//! here, so what a test proves about windows, watermarks and incidents holds in production too. Nothing in
//! this crate opens a socket or a file: inputs are values, outputs are values, time is the posts' event time.

pub mod aggregate;
pub mod detect;
pub mod entity;
pub mod event;
pub mod incident;
pub mod lang;
pub mod normalize;
pub mod partition;
pub mod phrase;
pub mod pipeline;
pub mod post;
pub mod reject;
pub mod sanitize;
pub mod sentiment;
pub mod stage;
pub mod time;
pub mod window;
