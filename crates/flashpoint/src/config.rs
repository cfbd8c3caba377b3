//! Configuration: a TOML file, then `FLASHPOINT__SECTION__KEY=value` environment overrides, then CLI flags.
//!
//! Every section denies unknown keys and every error names the key path, so a typo fails at start
//! ("window.slide_sec: unknown field") instead of silently running with a default.

use anyhow::{bail, Context, Result};
use flashpoint_core::aggregate::{AggregatorConfig, Limits, WindowConfig};
use flashpoint_core::detect::{DetectionConfig, ResponsePlan};
use flashpoint_core::entity::EntityConfig;
use flashpoint_core::lang::{LanguageGate, DEFAULT_MIN_CONFIDENCE, DEFAULT_MIN_LETTERS};
use flashpoint_core::post::{Decoder, FieldPaths, Format};
use flashpoint_core::sentiment::{LabelThresholds, Scorer};
pub use flashpoint_transformer::{DeviceChoice, Precision};
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, Default, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum ScorerKind {
    /// VADER lexicon scorer (exact parity with vaderSentiment 3.3.2).
    #[default]
    Lexicon,
    /// MiniLM encoder + sentiment head on libtorch (binary built with `--features transformer`).
    Transformer,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ScorerConfig {
    pub kind: ScorerKind,
    pub thresholds: LabelThresholds,
    /// Decode entities, drop URLs and mentions, keep hashtag words before scoring.
    pub normalize: bool,
    /// Transformer only: the model directory (encoder + head), e.g. what `scripts/libtorch.sh` installs.
    pub model_dir: Option<PathBuf>,
    /// Transformer only.
    pub device: DeviceChoice,
    /// Transformer only: texts per forward pass.
    pub batch_size: usize,
    /// Transformer only.
    pub precision: Precision,
    /// Languages to score (ISO 639-1, e.g. ["en"]; ["*"] scores every post as before). Default: what the scorer
    /// reads (English for both backends). Matched posts in other languages are labelled `unscored`: they count
    /// toward volume, never toward sentiment (README, "Languages").
    pub languages: Option<Vec<String>>,
    /// Detect the language of posts the platform did not tag (`false`: trust tags only, score untagged posts).
    pub detect_language: bool,
    /// Detection judges a Latin-script text only from this many letters on (shorter ones are scored).
    pub detect_min_letters: usize,
    /// ...and only when `whatlang` is at least this confident (0 to 1).
    pub detect_min_confidence: f64,
}

impl Default for ScorerConfig {
    fn default() -> Self {
        ScorerConfig {
            kind: ScorerKind::Lexicon,
            thresholds: LabelThresholds::default(),
            normalize: true,
            model_dir: None,
            device: DeviceChoice::Cpu,
            batch_size: 32,
            precision: Precision::Int8,
            languages: None,
            detect_language: true,
            detect_min_letters: DEFAULT_MIN_LETTERS,
            detect_min_confidence: DEFAULT_MIN_CONFIDENCE,
        }
    }
}

impl ScorerConfig {
    pub fn validate(&self) -> Result<()> {
        self.thresholds.validate().map_err(anyhow::Error::msg).context("scorer.thresholds")?;
        if self.batch_size == 0 {
            bail!("scorer.batch_size: must be at least 1");
        }
        if !(0.0..=1.0).contains(&self.detect_min_confidence) {
            bail!("scorer.detect_min_confidence: must be between 0 and 1 (got {})", self.detect_min_confidence);
        }
        if let Some(l) = &self.languages {
            self.gate(l).map_err(anyhow::Error::msg).context("scorer.languages")?;
        }
        Ok(())
    }

    fn gate(&self, languages: &[impl AsRef<str>]) -> Result<LanguageGate, String> {
        LanguageGate::new(languages, self.detect_language, self.detect_min_letters, self.detect_min_confidence)
    }

    /// The language gate for `scorer`: `scorer.languages`, or the scorer's own languages by default.
    pub fn language_gate(&self, scorer: &dyn Scorer) -> Result<LanguageGate> {
        match &self.languages {
            Some(l) => self.gate(l),
            None => self.gate(scorer.languages()),
        }
        .map_err(anyhow::Error::msg)
        .context("scorer.languages")
    }

    /// Checked once the command-line overrides are applied (not at load: `--model-dir` or FLASHPOINT_MODEL_DIR
    /// may still supply it).
    pub fn validate_complete(&self) -> Result<()> {
        self.validate()?;
        if self.kind == ScorerKind::Transformer && self.model_dir.is_none() {
            bail!(
                "scorer.model_dir: required when scorer.kind = \"transformer\" (or --model-dir / FLASHPOINT_MODEL_DIR; scripts/libtorch.sh installs one and prints its path)"
            );
        }
        Ok(())
    }
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct InputConfig {
    pub format: Format,
    pub fields: FieldPaths,
    pub max_record_bytes: usize,
}

impl Default for InputConfig {
    fn default() -> Self {
        InputConfig { format: Format::Generic, fields: FieldPaths::default(), max_record_bytes: 1 << 20 }
    }
}

impl InputConfig {
    pub fn decoder(&self) -> Decoder {
        Decoder { format: self.format, paths: self.fields.clone(), max_record_bytes: self.max_record_bytes }
    }
}

/// The `/metrics`, `/healthz` and `/readyz` endpoint of `flashpoint run`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct MetricsConfig {
    /// Address to listen on; `0.0.0.0:9464` in a container.
    pub listen: String,
    /// Entities past this many share the label `other` (bounds the series count).
    pub max_entity_labels: usize,
}

impl Default for MetricsConfig {
    fn default() -> Self {
        MetricsConfig { listen: "127.0.0.1:9464".into(), max_entity_labels: 200 }
    }
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    pub scorer: ScorerConfig,
    pub input: InputConfig,
    pub window: WindowConfig,
    pub detection: DetectionConfig,
    pub limits: Limits,
    /// The default response plan for entities with `own_handles` (an entity's `response` overrides it).
    pub response: ResponsePlan,
    pub kafka: flashpoint_kafka::KafkaConfig,
    pub metrics: MetricsConfig,
    pub entities: Vec<EntityConfig>,
    /// `flashpoint notify` (and the notify stage): channels and routes. Empty by default.
    pub notify: flashpoint_notify::NotifyConfig,
}

impl Config {
    pub fn aggregator(&self) -> AggregatorConfig {
        AggregatorConfig {
            window: self.window.clone(),
            detection: self.detection.clone(),
            limits: self.limits.clone(),
            response: self.response,
        }
    }

    /// Reads `path`, applies environment overrides, and validates.
    pub fn load(path: &Path) -> Result<Config> {
        let text = std::fs::read_to_string(path).with_context(|| format!("reading config {}", path.display()))?;
        Self::from_toml(&text, std::env::vars()).with_context(|| format!("config {}", path.display()))
    }

    pub fn from_toml(text: &str, env: impl Iterator<Item = (String, String)>) -> Result<Config> {
        let mut table: toml::Table = text.parse().context("not valid TOML")?;
        for (k, v) in env {
            let Some(path) = k.strip_prefix("FLASHPOINT__") else { continue };
            let keys: Vec<String> = path.split("__").map(|s| s.to_ascii_lowercase()).collect();
            if keys.iter().any(String::is_empty) {
                bail!("environment variable {k}: empty key segment");
            }
            // A value that parses as a TOML literal (number, bool, array) is taken as such; else a string.
            let value = format!("v = {v}")
                .parse::<toml::Table>()
                .ok()
                .and_then(|mut t| t.remove("v"))
                .unwrap_or(toml::Value::String(v.clone()));
            let mut cur = &mut table;
            for key in &keys[..keys.len() - 1] {
                cur = cur
                    .entry(key.clone())
                    .or_insert_with(|| toml::Value::Table(toml::Table::new()))
                    .as_table_mut()
                    .with_context(|| format!("environment variable {k}: `{key}` is not a section"))?;
            }
            cur.insert(keys[keys.len() - 1].clone(), value);
        }
        let cfg: Config = serde_path_to_error::deserialize(toml::Value::Table(table)).map_err(|e| {
            let path = e.path().to_string();
            // The message alone: toml's Display adds "\nin `path`", which the path already says.
            anyhow::anyhow!(
                "{}: {}",
                if path == "." { "(top level)".to_string() } else { path },
                e.into_inner().message()
            )
        })?;
        cfg.validate()?;
        Ok(cfg)
    }

    pub fn validate(&self) -> Result<()> {
        self.scorer.validate()?;
        flashpoint_core::aggregate::Aggregator::new(&self.aggregator()).map_err(anyhow::Error::msg)?;
        flashpoint_core::entity::Matcher::new(&self.entities).map_err(|e| anyhow::anyhow!("entities: {e}"))?;
        if self.entities.is_empty() {
            bail!("entities: the watchlist is empty; add at least one [[entities]] entry");
        }
        if self.input.max_record_bytes == 0 {
            bail!("input.max_record_bytes: must be positive");
        }
        self.kafka.validate().map_err(anyhow::Error::msg)?;
        // A valid input record must fit the producer once scored, or it could only ever be dead-lettered.
        let room = self.kafka.max_message_bytes.saturating_sub(flashpoint_kafka::config::RECORD_ENVELOPE);
        if self.input.max_record_bytes > room {
            bail!(
                "input.max_record_bytes: {} leaves no room under kafka.max_message_bytes ({}) for the {} byte \
                 envelope of a scored record; lower it or raise kafka.max_message_bytes (and the broker's limit)",
                self.input.max_record_bytes,
                self.kafka.max_message_bytes,
                flashpoint_kafka::config::RECORD_ENVELOPE
            );
        }
        self.notify.validate().map_err(anyhow::Error::msg)?;
        let listen = self
            .metrics
            .listen
            .parse::<std::net::SocketAddr>()
            .map_err(|e| anyhow::anyhow!("metrics.listen: `{}` is not an address: {e}", self.metrics.listen))?;
        // The incident pages quote posts and name who is angry about what: beyond this machine, only with a token.
        let pages = &self.notify.pages;
        if !self.notify.routes.is_empty() && pages.enabled && pages.token.is_none() && !listen.ip().is_loopback() {
            bail!(
                "notify.pages.token: required when the incident pages are served on a non-loopback address \
                 (metrics.listen = {listen}); set notify.pages.token = {{ env = \"VAR\" }} or {{ file = \"/path\" }}, \
                 listen on 127.0.0.1, or set notify.pages.enabled = false"
            );
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MIN: &str = "[[entities]]\nname = \"Acme\"\nterms = [\"acme\"]\n";

    #[test]
    fn errors_name_the_key() {
        let e = Config::from_toml(&format!("{MIN}[window]\nslide_sec = 5\n"), std::iter::empty()).unwrap_err();
        assert!(format!("{e:#}").contains("window"), "{e:#}");
        assert!(format!("{e:#}").contains("slide_sec"), "{e:#}");
        let e = Config::from_toml(&format!("{MIN}[detection]\nsensitivity = \"extreme\"\n"), std::iter::empty())
            .unwrap_err();
        assert!(format!("{e:#}").contains("detection.sensitivity"), "{e:#}");
        let e = Config::from_toml("", std::iter::empty()).unwrap_err();
        assert!(format!("{e:#}").contains("entities"), "{e:#}");
        let e = Config::from_toml(&format!("{MIN}[window]\nsize_secs = 300\nslide_secs = 70\n"), std::iter::empty())
            .unwrap_err();
        assert!(format!("{e:#}").contains("window"), "{e:#}");
    }

    #[test]
    fn response_plan_defaults_and_per_entity_overrides() {
        let acme = "[[entities]]\nname = \"Acme\"\nterms = [\"acme\"]\nown_handles = [\"@AcmeHelp\"]\n";
        let c = Config::from_toml(acme, std::iter::empty()).unwrap();
        assert_eq!((c.response.first_response_within_secs, c.response.update_every_secs), (1800, 3600));
        assert_eq!(c.entities[0].own_handles, ["@AcmeHelp"]);
        let c = Config::from_toml(
            &format!("[response]\nupdate_every_secs = 1200\n{acme}response = {{ first_response_within_secs = 600 }}\n"),
            std::iter::empty(),
        )
        .unwrap();
        let plan = c.entities[0].response.unwrap().over(&c.response);
        assert_eq!((plan.first_response_within_secs, plan.update_every_secs), (600, 1200));
        let e = Config::from_toml(&format!("{acme}[response]\nupdate_every = 5\n"), std::iter::empty()).unwrap_err();
        assert!(format!("{e:#}").starts_with("response") && format!("{e:#}").contains("update_every"), "{e:#}");
        let e = Config::from_toml(&format!("{acme}response = {{ every = 5 }}\n"), std::iter::empty()).unwrap_err();
        assert!(format!("{e:#}").contains("entities[0].response") && format!("{e:#}").contains("every"), "{e:#}");
        let e = Config::from_toml(&format!("{MIN}response = {{ update_every_secs = 5 }}\n"), std::iter::empty())
            .unwrap_err();
        assert!(format!("{e:#}").contains("no own_handles"), "{e:#}");
    }

    #[test]
    fn environment_overrides_file() {
        let env = vec![
            ("FLASHPOINT__WINDOW__SLIDE_SECS".to_string(), "30".to_string()),
            ("FLASHPOINT__DETECTION__SENSITIVITY".to_string(), "high".to_string()),
            ("OTHER".to_string(), "x".to_string()),
        ];
        let c = Config::from_toml(MIN, env.into_iter()).unwrap();
        assert_eq!(c.window.slide_secs, 30);
        assert_eq!(c.detection.sensitivity, flashpoint_core::detect::Sensitivity::High);
        let bad = vec![("FLASHPOINT__WINDOW__NOPE".to_string(), "1".to_string())];
        let e = Config::from_toml(MIN, bad.into_iter()).unwrap_err();
        // The error names the section and the key the variable set, not just the word.
        let msg = format!("{e:#}");
        assert!(msg.starts_with("window") && msg.contains("unknown field `nope`"), "{msg}");
    }

    #[test]
    fn the_input_limit_must_fit_the_producer_limit() {
        let e = Config::from_toml(
            &format!("{MIN}[input]\nmax_record_bytes = 2000000\n[kafka]\nmax_message_bytes = 1000000\n"),
            std::iter::empty(),
        )
        .unwrap_err();
        assert!(format!("{e:#}").starts_with("input.max_record_bytes: 2000000"), "{e:#}");
        assert!(format!("{e:#}").contains("kafka.max_message_bytes (1000000)"), "{e:#}");
        Config::from_toml(&format!("{MIN}[input]\nmax_record_bytes = 900000\n"), std::iter::empty()).unwrap();
    }

    #[test]
    fn transformer_scorer_keys() {
        let c = Config::from_toml(
            &format!("{MIN}[scorer]\nkind = \"transformer\"\nmodel_dir = \"/m\"\ndevice = \"cuda\"\nbatch_size = 64\nprecision = \"fp32\"\n"),
            std::iter::empty(),
        )
        .unwrap();
        assert_eq!(
            (c.scorer.kind, c.scorer.device, c.scorer.batch_size),
            (ScorerKind::Transformer, DeviceChoice::Cuda, 64)
        );
        assert_eq!(c.scorer.precision, Precision::Fp32);
        assert_eq!(c.scorer.model_dir.as_deref(), Some(Path::new("/m")));
        let c = Config::from_toml(&format!("{MIN}[scorer]\nkind = \"transformer\"\n"), std::iter::empty()).unwrap();
        let e = c.scorer.validate_complete().unwrap_err();
        assert!(format!("{e:#}").contains("scorer.model_dir"), "{e:#}");
        let e = Config::from_toml(&format!("{MIN}[scorer]\nbatch_size = 0\n"), std::iter::empty()).unwrap_err();
        assert!(format!("{e:#}").contains("scorer.batch_size"), "{e:#}");
        let e = Config::from_toml(&format!("{MIN}[scorer]\ndevice = \"tpu\"\n"), std::iter::empty()).unwrap_err();
        assert!(format!("{e:#}").contains("scorer.device"), "{e:#}");
    }

    #[test]
    fn pages_beyond_loopback_need_a_token() {
        let routes = "[[notify.channels]]\nkind = \"webhook\"\nname = \"w\"\nurl = { env = \"U\" }\nsigning_key = { env = \"K\" }\n\
                      [[notify.routes]]\nname = \"r\"\nchannels = [\"w\"]\n";
        let cfg = |extra: &str| Config::from_toml(&format!("{MIN}{routes}{extra}"), std::iter::empty());
        cfg("").unwrap();
        let e = cfg("[metrics]\nlisten = \"0.0.0.0:9464\"\n").unwrap_err();
        assert!(format!("{e:#}").starts_with("notify.pages.token: required"), "{e:#}");
        cfg("[metrics]\nlisten = \"0.0.0.0:9464\"\n[notify.pages]\ntoken = { env = \"T\" }\n").unwrap();
        cfg("[metrics]\nlisten = \"0.0.0.0:9464\"\n[notify.pages]\nenabled = false\n").unwrap();
        cfg("[metrics]\nlisten = \"[::1]:9464\"\n").unwrap();
        let e = cfg("[notify.pages]\ntoken = \"s3cr3t-inline\"\n").unwrap_err();
        assert!(format!("{e:#}").starts_with("notify.pages.token: an inline value is refused"), "{e:#}");
        assert!(!format!("{e:#}").contains("s3cr3t"), "{e:#}");
        // No routes: no notify stage, no pages.
        Config::from_toml(&format!("{MIN}[metrics]\nlisten = \"0.0.0.0:9464\"\n"), std::iter::empty()).unwrap();
    }

    #[test]
    fn scorer_language_keys() {
        let lexicon = flashpoint_core::sentiment::LexiconScorer::default();
        let c = Config::from_toml(MIN, std::iter::empty()).unwrap();
        let g = c.scorer.language_gate(&lexicon).unwrap();
        assert_eq!(g.languages().collect::<Vec<_>>(), ["en"], "the scorer's own languages by default");
        let c =
            Config::from_toml(&format!("{MIN}[scorer]\nlanguages = [\"en\", \"es\"]\n"), std::iter::empty()).unwrap();
        assert_eq!(c.scorer.language_gate(&lexicon).unwrap().languages().collect::<Vec<_>>(), ["en", "es"]);
        let env = vec![("FLASHPOINT__SCORER__LANGUAGES".to_string(), "[\"*\"]".to_string())];
        let c = Config::from_toml(MIN, env.into_iter()).unwrap();
        assert!(c.scorer.language_gate(&lexicon).unwrap().is_all());
        let e =
            Config::from_toml(&format!("{MIN}[scorer]\nlanguages = [\"English\"]\n"), std::iter::empty()).unwrap_err();
        assert!(format!("{e:#}").contains("scorer.languages") && format!("{e:#}").contains("English"), "{e:#}");
        let e = Config::from_toml(&format!("{MIN}[scorer]\ndetect_min_confidence = 2.0\n"), std::iter::empty())
            .unwrap_err();
        assert!(format!("{e:#}").contains("scorer.detect_min_confidence"), "{e:#}");
    }
}
