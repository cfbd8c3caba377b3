//! The one harness shared by the binary's integration tests (`crates/flashpoint/tests`), the workspace tests,
//! the benchmarks and the fault driver (`tools/faults/`). Everything talks to real processes and a real broker
//! given by address; nothing is mocked.
//!
//! - [`paths`]: the repository, fresh directories, free ports, the committed fixtures.
//! - [`binary`]: the `flashpoint` binary: its path, a command for it, `replay` as the reference run.
//! - [`http`]: plain HTTP scrapes of a worker (and requests with headers) and Prometheus text parsing.
//! - [`browser`]: headless Chromium: a page's DOM and console after load, screenshots.
//! - [`broker`]: the test broker, unique topic names, produce, read-back, committed offsets, event keys.
//! - [`config`]: worker configs built from the example config.
//! - [`fixture`]: the fixture builder: a directory, topics and a config in one call, workers started from it.
//! - [`worker`]: a `flashpoint run` process, optionally scraped in the background.
//! - [`tansu`]: a Tansu broker process the harness starts and stops itself (the fault driver's).
//! - [`collect`]: background readers of the worker's output topics, accounting per input record.
//! - [`receiver`], [`smtp`]: the notifier's destinations: an HTTP receiver and an SMTP server.
//! - [`notify`]: the notifier tests' shared `[notify]` section and checkpoint reading.
//!
//! Everything is re-exported at the top, so a test says `use flashpoint_testkit::*;`.

pub mod binary;
pub mod broker;
pub mod browser;
pub mod collect;
pub mod config;
pub mod fixture;
pub mod http;
pub mod notify;
pub mod paths;
pub mod receiver;
pub mod smtp;
pub mod tansu;
pub mod worker;

pub use binary::*;
pub use broker::*;
pub use browser::*;
pub use collect::*;
pub use config::*;
pub use fixture::*;
pub use http::*;
pub use notify::*;
pub use paths::*;
pub use receiver::*;
pub use smtp::*;
pub use tansu::*;
pub use worker::*;
