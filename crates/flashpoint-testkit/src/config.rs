//! Worker configs: the repository's example config (`config/flashpoint.toml`: scorer, windows, detection,
//! watchlist) with what a test adds: a `[kafka]` section for its topics, more sections (`[notify]`), or a
//! watchlist of its own.

use crate::broker::Topics;
use std::path::{Path, PathBuf};

/// A config under construction; [`Config::write`] renders it.
#[derive(Clone, Debug, Default)]
pub struct Config {
    kafka: Option<(String, Topics)>,
    kafka_lines: String,
    librdkafka_lines: String,
    sections: String,
    entities: Option<Vec<(String, String)>>,
}

impl Config {
    /// The example config as it is.
    pub fn example() -> Config {
        Config::default()
    }

    /// A `[kafka]` section for `topics` on `brokers`: four internal partitions and short group sessions
    /// (6 s), so a killed member is noticed within a test's patience.
    pub fn kafka(mut self, brokers: &str, topics: &Topics) -> Config {
        self.kafka = Some((brokers.to_string(), topics.clone()));
        self
    }

    /// A line (or several) for the `[kafka]` section, e.g. `checkpoint_interval_ms = 400`.
    pub fn kafka_line(mut self, line: &str) -> Config {
        self.kafka_lines.push_str(line);
        self.kafka_lines.push('\n');
        self
    }

    /// A line for `[kafka.librdkafka]`, e.g. `"enable.idempotence" = "false"`.
    pub fn librdkafka(mut self, line: &str) -> Config {
        self.librdkafka_lines.push_str(line);
        self.librdkafka_lines.push('\n');
        self
    }

    /// More sections (their own table headers), e.g. a `[notify]` section.
    pub fn section(mut self, text: &str) -> Config {
        self.sections.push_str(text);
        self.sections.push('\n');
        self
    }

    /// A watchlist of its own in place of the example's: (entity name, its one term).
    pub fn entities(mut self, entities: &[(&str, &str)]) -> Config {
        self.entities = Some(entities.iter().map(|(n, t)| (n.to_string(), t.to_string())).collect());
        self
    }

    /// The config text. The example's sections come first, then `[kafka]`, the added sections, and the
    /// watchlist last (TOML's array of tables must not swallow a later table header).
    pub fn render(&self) -> String {
        let base = std::fs::read_to_string(crate::paths::repo("config/flashpoint.toml")).unwrap();
        let at = base.find("[[entities]]").expect("example config has a watchlist");
        let (head, example_watchlist) = base.split_at(at);
        let watchlist = match &self.entities {
            None => example_watchlist.to_string(),
            Some(list) => list
                .iter()
                .map(|(name, term)| {
                    format!("[[entities]]\nname = \"{name}\"\nterms = [\"{}\"]\n\n", term.to_lowercase())
                })
                .collect(),
        };
        match &self.kafka {
            Some((brokers, t)) => format!(
                "{head}[kafka]\nbrokers = \"{brokers}\"\ninput_topics = [\"{}\"]\ngroup_id = \"{}\"\nscored_topic = \"{}\"\n\
                 spikes_topic = \"{}\"\ndead_letter_topic = \"{}\"\nstate_topic = \"{}\"\ninternal_partitions = 4\n{}\n\
                 [kafka.librdkafka]\n\"session.timeout.ms\" = \"6000\"\n\"heartbeat.interval.ms\" = \"500\"\n{}{}\n\n{watchlist}",
                t.input, t.group, t.scored, t.spikes, t.dead, t.state, self.kafka_lines, self.librdkafka_lines, self.sections
            ),
            None => format!("{head}{watchlist}\n{}\n", self.sections),
        }
    }

    /// Writes the config to `path` and returns it.
    pub fn write(&self, path: &Path) -> PathBuf {
        std::fs::write(path, self.render()).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        path.to_path_buf()
    }
}

/// The example config with a `[kafka]` section for `t` on the test broker, written to `dir/<group>.toml`.
/// `extra_kafka` lines go into `[kafka]`; `extra` is appended as more sections (before the watchlist).
/// Short for `Config::example().kafka(..).kafka_line(extra_kafka).section(extra).write(..)`.
pub fn write_config(dir: &Path, t: &Topics, extra_kafka: &str, extra: &str) -> PathBuf {
    Config::example()
        .kafka(&crate::broker::brokers(), t)
        .kafka_line(extra_kafka)
        .section(extra)
        .write(&dir.join(format!("{}.toml", t.group)))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tables(text: &str) -> Vec<&str> {
        text.lines().filter(|l| l.starts_with('[')).map(|l| l.split('#').next().unwrap().trim()).collect()
    }

    #[test]
    fn kafka_and_added_sections_come_before_the_watchlist() {
        let t = Topics::with_prefix("p");
        let text = Config::example()
            .kafka("127.0.0.1:1", &t)
            .kafka_line("checkpoint_interval_ms = 400")
            .librdkafka("\"enable.idempotence\" = \"false\"")
            .section("[notify]\n[[notify.routes]]\nname = \"r\"")
            .render();
        let tables = tables(&text);
        let at = |s: &str| tables.iter().position(|t| *t == s).unwrap_or_else(|| panic!("{s} in {tables:?}"));
        assert!(at("[detection]") < at("[kafka]"));
        assert!(at("[kafka]") < at("[kafka.librdkafka]") && at("[kafka.librdkafka]") < at("[notify]"));
        assert!(at("[[notify.routes]]") < at("[[entities]]"));
        let kafka = &text[text.find("[kafka]").unwrap()..text.find("[kafka.librdkafka]").unwrap()];
        assert!(kafka.contains("input_topics = [\"p-posts\"]") && kafka.contains("checkpoint_interval_ms = 400"));
        let librdkafka = &text[text.find("[kafka.librdkafka]").unwrap()..text.find("[notify]").unwrap()];
        assert!(librdkafka.contains("\"enable.idempotence\" = \"false\""));
        assert!(text.contains("name = \"Acme Air\""), "the example watchlist is kept");
    }

    #[test]
    fn a_watchlist_of_its_own_replaces_the_example() {
        let text = Config::example().entities(&[("Hooli", "Hooli")]).render();
        assert_eq!(text.matches("[[entities]]").count(), 1);
        assert!(text.contains("[[entities]]\nname = \"Hooli\"\nterms = [\"hooli\"]\n"));
        assert!(!text.contains("[kafka]"));
    }

    #[test]
    fn without_kafka_sections_follow_the_whole_example() {
        let text = Config::example().section("[notify]").render();
        assert!(text.trim_end().ends_with("[notify]"));
        assert!(text.contains("name = \"Acme Air\""));
    }
}
