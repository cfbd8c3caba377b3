//! The fixture builder: what every broker test and fault scenario sets up first (a directory for configs
//! and logs, topics and a group of its own, the input topic, a config) in one call, and workers started
//! from it.
//!
//! ```no_run
//! use flashpoint_testkit::Fixture;
//! let fx = Fixture::new("e2e").kafka_line("checkpoint_interval_ms = 400").build();
//! let w = fx.worker("all", "w0");
//! ```

use crate::broker::Topics;
use crate::config::Config;
use crate::worker::Worker;
use std::path::{Path, PathBuf};

/// How to build a [`Fixture`]; [`Fixture::new`] starts one.
pub struct FixtureBuilder {
    name: String,
    brokers: Option<String>,
    dir: Option<PathBuf>,
    topics: Option<Topics>,
    input_partitions: Option<i32>,
    config: Config,
}

/// A directory, the topics, and the config file of one worker deployment on one broker.
pub struct Fixture {
    /// Configs, logs and anything else the test writes.
    pub dir: PathBuf,
    pub topics: Topics,
    pub config: PathBuf,
    pub brokers: String,
}

impl Fixture {
    /// A fixture named `name`, by default: the test broker ([`crate::broker::brokers`]), a fresh [`crate::paths::tempdir`],
    /// unique [`Topics::new`], the input topic created with one partition, the example config.
    #[allow(clippy::new_ret_no_self)]
    pub fn new(name: &str) -> FixtureBuilder {
        FixtureBuilder {
            name: name.to_string(),
            brokers: None,
            dir: None,
            topics: None,
            input_partitions: Some(1),
            config: Config::example(),
        }
    }

    /// A worker with `role` on this fixture's config, its metrics on a free port, its log `dir/<name>.log`.
    pub fn worker(&self, role: &str, name: &str) -> Worker {
        Worker::start_named(&self.config, role, &format!("127.0.0.1:{}", crate::paths::free_port()), &self.dir, name)
    }

    /// `flashpoint replay` of `input` with this fixture's config.
    pub fn replay(&self, input: &Path) -> Vec<serde_json::Value> {
        crate::binary::replay(&self.config, input)
    }

    /// The committed offset of the score group on partition `p` of the input topic.
    pub fn input_committed(&self, p: i32) -> Option<i64> {
        crate::broker::committed_on(&self.brokers, &self.topics.score_group(), &self.topics.input, p)
    }
}

impl FixtureBuilder {
    /// Another broker than the test broker (the fault driver's own).
    pub fn brokers(mut self, brokers: &str) -> Self {
        self.brokers = Some(brokers.to_string());
        self
    }

    /// An existing directory to write into instead of a fresh one.
    pub fn dir(mut self, dir: &Path) -> Self {
        self.dir = Some(dir.to_path_buf());
        self
    }

    /// These topics instead of unique ones.
    pub fn topics(mut self, topics: Topics) -> Self {
        self.topics = Some(topics);
        self
    }

    /// The input topic's partitions (default 1); None: the test creates it (or the worker does).
    pub fn input_partitions(mut self, partitions: Option<i32>) -> Self {
        self.input_partitions = partitions;
        self
    }

    /// See [`Config::kafka_line`].
    pub fn kafka_line(mut self, line: &str) -> Self {
        self.config = self.config.kafka_line(line);
        self
    }

    /// See [`Config::librdkafka`].
    pub fn librdkafka(mut self, line: &str) -> Self {
        self.config = self.config.librdkafka(line);
        self
    }

    /// See [`Config::section`].
    pub fn section(mut self, text: &str) -> Self {
        self.config = self.config.section(text);
        self
    }

    /// See [`Config::entities`].
    pub fn entities(mut self, entities: &[(&str, &str)]) -> Self {
        self.config = self.config.entities(entities);
        self
    }

    /// Writes the config to `dir/<name>.toml` and creates the input topic.
    pub fn build(self) -> Fixture {
        let brokers = self.brokers.unwrap_or_else(crate::broker::brokers);
        let dir = self.dir.unwrap_or_else(|| crate::paths::tempdir(&self.name));
        let topics = self.topics.unwrap_or_else(|| Topics::new(&self.name));
        let config = self.config.kafka(&brokers, &topics).write(&dir.join(format!("{}.toml", self.name)));
        if let Some(n) = self.input_partitions {
            crate::broker::create_topic_on(&brokers, &topics.input, n);
        }
        Fixture { dir, topics, config, brokers }
    }
}
