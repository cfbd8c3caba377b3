//! The `flashpoint` binary: command line, configuration and wiring. The logic lives in `flashpoint-core`, the
//! evaluations in `flashpoint-eval`.

mod config;
mod notify;
mod replay;
mod report;
mod run;
mod score;

use anyhow::{Context, Result};
use clap::{Parser, Subcommand};
use config::{Config, ScorerConfig, ScorerKind};
use flashpoint_core::sentiment::{LabelThresholds, LexiconScorer, Scorer};
use flashpoint_transformer::{DeviceChoice, Precision};
#[cfg(feature = "transformer")]
use flashpoint_transformer::{TransformerConfig, TransformerScorer};
use std::io::BufRead;
use std::io::{IsTerminal, Write};
use std::path::PathBuf;
use std::process::ExitCode;

/// The worker allocates and frees many small strings per record across threads (decoded posts, stage
/// records, librdkafka messages); mimalloc measured faster than glibc malloc on that pattern
/// (scripts/bench-kafka.sh, scripts/bench-replay.sh).
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// Flashpoint: streaming sentiment analysis that warns you when a complaint turns into a crisis.
#[derive(Parser)]
#[command(name = "flashpoint", version, about, long_about = None)]
struct Cli {
    #[command(subcommand)]
    cmd: Cmd,
}

/// Scorer selection shared by the commands that score. Each flag overrides its `scorer.*` config key.
#[derive(clap::Args)]
struct ScorerArgs {
    /// Scoring backend (overrides scorer.kind; default lexicon). `transformer` needs a binary built with
    /// `--features transformer`.
    #[arg(long, value_enum)]
    scorer: Option<ScorerKind>,
    /// Transformer model directory (overrides scorer.model_dir); `scripts/libtorch.sh` installs one.
    #[arg(long, env = "FLASHPOINT_MODEL_DIR")]
    model_dir: Option<PathBuf>,
    /// Transformer device (overrides scorer.device); cuda falls back to the CPU with a warning.
    #[arg(long, value_enum)]
    device: Option<DeviceChoice>,
    /// Transformer texts per forward pass (overrides scorer.batch_size).
    #[arg(long)]
    batch_size: Option<usize>,
    /// Transformer encoder arithmetic on the CPU (overrides scorer.precision; default int8).
    #[arg(long, value_enum)]
    precision: Option<Precision>,
    /// Languages to score, comma-separated ISO 639-1 codes, or `*` for all (overrides scorer.languages; default
    /// the scorer's own, English). Posts in other languages are labelled `unscored`.
    #[arg(long, value_delimiter = ',')]
    languages: Option<Vec<String>>,
}

impl ScorerArgs {
    fn apply(&self, cfg: &mut ScorerConfig) -> Result<()> {
        if let Some(k) = self.scorer {
            cfg.kind = k;
        }
        if let Some(d) = &self.model_dir {
            cfg.model_dir = Some(d.clone());
        }
        if let Some(d) = self.device {
            cfg.device = d;
        }
        if let Some(b) = self.batch_size {
            cfg.batch_size = b;
        }
        if let Some(p) = self.precision {
            cfg.precision = p;
        }
        if let Some(l) = &self.languages {
            cfg.languages = Some(l.clone());
        }
        // Not validate_complete: a binary without the backend should say so before asking for a model directory.
        cfg.validate()
    }
}

#[derive(Subcommand)]
enum Cmd {
    /// Score JSON Lines ({"id":..,"text":".."} per line) and print one sentiment record per line, in order.
    ///
    /// Output: {"id":..,"label":"negative|neutral|positive","compound":f,"neg":f,"neu":f,"pos":f}.
    /// A line may carry the platform's language tag as "lang". A text in a language the scorer does not read
    /// (see --languages) is not scored: {"id":..,"label":"unscored","compound":0.0,"neg":0.0,"neu":0.0,
    /// "pos":0.0,"lang":".."}. A bad line produces {"line":N,"error":".."} on stderr and the run continues;
    /// the exit status is 1 if any line failed.
    Score {
        /// Input file, or `-` for standard input.
        #[arg(long, short, default_value = "-")]
        input: String,
        #[command(flatten)]
        scorer: ScorerArgs,
        /// Score the text exactly as given (no HTML-entity decoding, URL/mention removal or hashtag
        /// splitting). Use it to compare with the Python vaderSentiment package.
        #[arg(long)]
        raw: bool,
        /// Compound at or below which a text is negative.
        #[arg(long, default_value_t = -0.05, allow_negative_numbers = true)]
        negative_threshold: f64,
        /// Compound at or above which a text is positive.
        #[arg(long, default_value_t = 0.05, allow_negative_numbers = true)]
        positive_threshold: f64,
    },
    /// Run the whole pipeline (decode, match, score, window, detect) over a JSON Lines file of posts and
    /// write spike events as JSON Lines. No broker needed.
    ///
    /// Posts need an id, a text and a time (RFC 3339, Twitter's format or epoch numbers); field paths and
    /// platform formats are set in the config's [input] section. Windows close when the watermark passes
    /// them, exactly as in the streaming worker; --flush also closes the windows still open at the end.
    Replay {
        /// Posts as JSON Lines, or `-` for standard input.
        #[arg(long, short, default_value = "-")]
        input: String,
        /// TOML config (watchlist, windows, detection). See config/flashpoint.toml.
        #[arg(long, short)]
        config: PathBuf,
        /// Where spike events go (default: standard output).
        #[arg(long, short)]
        output: Option<PathBuf>,
        /// Where undecodable records and late posts go, with reasons (default: OUTPUT.dead-letter.jsonl,
        /// or standard error when writing events to standard output).
        #[arg(long)]
        dead_letter: Option<PathBuf>,
        /// Close the windows still open at the end of the input.
        #[arg(long)]
        flush: bool,
        #[command(flatten)]
        scorer: ScorerArgs,
    },
    /// Evaluate a sentiment scorer on TweetEval's sentiment validation split (val_text.txt, val_labels.txt)
    /// and print macro-averaged recall (TweetEval's metric), per-class recall, accuracy and throughput, plus the
    /// set's texts per language as the language gate sees them and the recall over the texts it scores.
    EvalSentiment {
        /// Folder with val_text.txt and val_labels.txt (e.g. ../shared/data/tweeteval_sentiment), a SemEval
        /// Twitter file (.txt or .tsv: id, label, text; e.g. twitter-2016test-A.txt), or a JSON Lines file of
        /// {"text":..,"label":"negative|neutral|positive"|0|1|2|null,"lang":..} (a mixed-language set).
        #[arg(long)]
        data: PathBuf,
        /// A brand-relative set over the --data folder's validation texts: a TSV with `line`, `mention` and
        /// `label` columns (data/brand-sentiment/tweeteval-val-brands.tsv), labels toward the brand named.
        #[arg(long)]
        brands: Option<PathBuf>,
        /// With --brands: score the whole tweet (as the pipeline does) or only the sentence naming the brand.
        #[arg(long, value_enum, default_value = "tweet", requires = "brands")]
        brand_scope: BrandScopeArg,
        /// Evaluate every backend this binary has: the lexicon, and the transformer at int8 and fp32 when built in
        /// and given a model directory; then one summary line each.
        #[arg(long)]
        all_backends: bool,
        /// Config whose [scorer] section to use (flags override it).
        #[arg(long, short)]
        config: Option<PathBuf>,
        /// Score the texts as given, without the pipeline's normalisation.
        #[arg(long)]
        raw: bool,
        #[command(flatten)]
        scorer: ScorerArgs,
    },
    /// Run as a cluster worker: consume posts from Kafka, publish spike events (see ARCHITECTURE.md).
    ///
    /// Serves /metrics, /healthz and /readyz on metrics.listen. SIGTERM or Ctrl-C stops polling, makes
    /// every output durable, commits and leaves the consumer groups.
    Run {
        /// TOML config ([kafka] and [metrics] sections, watchlist, windows, detection).
        #[arg(long, short)]
        config: PathBuf,
        /// Which stages to run: `score` (posts -> scored), `aggregate` (scored -> spike events), `notify` (spike
        /// events -> people, per [notify]) or `all` (notify only with [[notify.routes]] configured).
        #[arg(long, value_enum, default_value = "all")]
        role: flashpoint_kafka::Role,
        /// Bootstrap servers (overrides kafka.brokers).
        #[arg(long, env = "FLASHPOINT_BROKERS")]
        brokers: Option<String>,
        /// Metrics/health listen address (overrides metrics.listen).
        #[arg(long)]
        metrics_listen: Option<String>,
        #[command(flatten)]
        scorer: ScorerArgs,
    },
    /// Publish JSON Lines to a Kafka topic, one record per line (feeds a worker; used by the Compose stack).
    Produce {
        /// JSON Lines file, or `-` for standard input.
        #[arg(long, short, default_value = "-")]
        input: String,
        #[arg(long)]
        topic: String,
        /// Bootstrap servers.
        #[arg(long, env = "FLASHPOINT_BROKERS", default_value = "127.0.0.1:9092")]
        brokers: String,
        /// Config whose [kafka] security settings to use.
        #[arg(long, short)]
        config: Option<PathBuf>,
        /// At most this many records per second.
        #[arg(long)]
        rate: Option<u64>,
        /// Create the topic with this many partitions if it does not exist.
        #[arg(long)]
        partitions: Option<i32>,
    },
    /// Evaluate spike detection on NAB tweet-volume series (e.g. ../shared/data/nab_realTweets) and print
    /// NAB standard-profile scores per series and in total.
    EvalNab {
        /// NAB corpus folder with data/*.csv and combined_windows.json.
        #[arg(long)]
        data: PathBuf,
        /// Config whose [detection] and [limits] to use (windows and watchlist are set by the evaluation).
        #[arg(long, short)]
        config: Option<PathBuf>,
        /// Print the detections too.
        #[arg(long)]
        verbose: bool,
    },
    /// Evaluate detection as a whole (docs/detection.md): NAB standard score, false alarms per
    /// entity-week on real backgrounds, and recall / time to detect of seeded incidents injected into them.
    /// Deterministic for a seed. Heavy: build with --release.
    EvalDetect {
        /// NAB corpus folder with data/*.csv and combined_windows.json (e.g. ../shared/data/nab_realTweets).
        #[arg(long)]
        nab: PathBuf,
        /// SemEval 2017 task 4A folder with twitter-*.txt (e.g. ../shared/data/semeval2017_task4A): the texts.
        #[arg(long)]
        texts: PathBuf,
        /// Config whose [window], [detection] and [limits] to use.
        #[arg(long, short)]
        config: Option<PathBuf>,
        #[arg(long, default_value_t = 1)]
        seed: u64,
        /// Write the recall/delay grid as SVG here.
        #[arg(long)]
        svg: Option<PathBuf>,
        /// Write the full results (every injection's delay) as JSON here.
        #[arg(long)]
        json: Option<PathBuf>,
        /// Only the injection kinds whose name contains one of these comma-separated parts (e.g. "x3",
        /// "share", "x3,+20,negatives"; "none" runs only NAB and the un-injected backgrounds, the budget);
        /// all by default.
        #[arg(long)]
        only: Option<String>,
        /// One injection per replay (no injection can teach the detector about the next); slower.
        #[arg(long)]
        isolated: bool,
        /// Write each run's detector internals here, one TSV per series and cell ("<series> <cell>.tsv"): every
        /// statistic against its threshold and the models' beliefs, hourly and at every row of an injection,
        /// and each event with the statistics over their thresholds when it opened. Created if missing.
        #[arg(long, value_name = "DIR", env = "FLASHPOINT_EVAL_TRACE")]
        trace: Option<PathBuf>,
    },
    /// Deliver spike events (JSON Lines, e.g. from `flashpoint replay`) to the channels of the config's
    /// [notify] section: Slack, Teams, PagerDuty, signed webhooks, email. No broker needed.
    ///
    /// Exits when the input ends and every message is delivered or dead-lettered: 0 if all were delivered,
    /// 1 if any input line or message was dead-lettered. A summary goes to stderr.
    #[command(subcommand_negates_reqs = true)]
    Notify {
        #[command(subcommand)]
        action: Option<NotifyAction>,
        /// TOML config with a [notify] section (secrets come from the environment or files it names).
        #[arg(long, short, required = true)]
        config: Option<PathBuf>,
        /// Spike events as JSON Lines, or `-` for standard input.
        #[arg(long, short, default_value = "-")]
        input: String,
        /// Where bad input lines and undeliverable messages go, with reasons (default: standard error).
        #[arg(long)]
        dead_letter: Option<PathBuf>,
        /// The routing clock: the events' own time (replays; deterministic) or the system clock (live).
        #[arg(long, value_enum, default_value = "event")]
        clock: notify::Clock,
        /// Keep each channel's progress (and the input's identity) in this file, and resume from it: a
        /// restart after a crash re-sends at most what was in flight, each message as it was first sent.
        #[arg(long)]
        checkpoint: Option<PathBuf>,
        /// Start over: ignore what the checkpoint says (needed when it was written for another input).
        #[arg(long)]
        restart: bool,
    },
    /// Write the incident pages of spike events (JSON Lines, e.g. from `flashpoint replay`) as static HTML: an
    /// index and one page per incident (chart, drivers, storylines, amplifiers, platforms, event log), the same
    /// pages the notify stage serves at /incidents. Self-contained: no script, nothing fetched.
    ///
    /// A line that is not a spike event gives {"line":N,"error":".."} on stderr and exit status 1; the rest are
    /// written all the same.
    Report {
        /// Spike events as JSON Lines, or `-` for standard input.
        #[arg(long, short, default_value = "-")]
        events: String,
        /// Directory to write index.html and <incident_id>.html into (created if missing).
        #[arg(long, short)]
        out: PathBuf,
    },
    /// Validate a config file (and FLASHPOINT__* overrides) and exit: 0 if valid, 2 with the offending key if not.
    CheckConfig {
        #[arg(long, short)]
        config: PathBuf,
    },
}

/// `eval-sentiment --brand-scope`.
#[derive(Clone, Copy, clap::ValueEnum)]
enum BrandScopeArg {
    Tweet,
    Sentence,
}

#[derive(Subcommand)]
enum NotifyAction {
    /// Send a clearly marked test message to every channel of the config and print each result (exit 1 if any
    /// failed).
    Test {
        #[arg(long, short)]
        config: PathBuf,
    },
    /// Add a `[[notify.silences]]` entry to the config: messages about matching entities are suppressed (not
    /// sent, counted in flashpoint_notifications_silenced_total) until the given time.
    Silence {
        #[arg(long, short)]
        config: PathBuf,
        /// Entity name or glob (`*`, `?`).
        #[arg(long)]
        entity: String,
        /// RFC 3339 end, e.g. 2026-03-04T18:00:00Z.
        #[arg(long)]
        until: String,
        #[arg(long)]
        reason: String,
    },
}

/// The scorer a deployment asked for. Fails at start (never at the first batch) when the transformer is asked
/// for but not built in, or its model cannot be loaded.
pub fn build_scorer(cfg: &ScorerConfig) -> Result<Box<dyn Scorer>> {
    match cfg.kind {
        ScorerKind::Lexicon => Ok(Box::new(LexiconScorer::new(cfg.thresholds))),
        ScorerKind::Transformer => build_transformer(cfg),
    }
}

#[cfg(feature = "transformer")]
fn build_transformer(cfg: &ScorerConfig) -> Result<Box<dyn Scorer>> {
    cfg.validate_complete()?;
    let model_dir = cfg.model_dir.clone().expect("validate_complete checks model_dir");
    let tc = TransformerConfig {
        model_dir: model_dir.clone(),
        device: cfg.device,
        precision: cfg.precision,
        batch_size: cfg.batch_size,
    };
    let scorer = TransformerScorer::load(&tc).with_context(|| format!("scorer.model_dir = {}", model_dir.display()))?;
    Ok(Box::new(scorer))
}

#[cfg(not(feature = "transformer"))]
fn build_transformer(_: &ScorerConfig) -> Result<Box<dyn Scorer>> {
    anyhow::bail!(
        "scorer.kind = \"transformer\": this flashpoint binary was built without the transformer backend; \
         install libtorch with `eval \"$(scripts/libtorch.sh)\"`, then build with `cargo build --profile transformer -p flashpoint --features transformer` (the binary is target/transformer/flashpoint)"
    )
}

fn create(path: &PathBuf) -> Result<Box<dyn Write>> {
    let f = std::fs::File::create(path).with_context(|| format!("creating {}", path.display()))?;
    Ok(Box::new(std::io::BufWriter::with_capacity(1 << 16, f)))
}

fn open_input(path: &str) -> Result<Box<dyn BufRead>> {
    if path == "-" {
        Ok(Box::new(std::io::BufReader::with_capacity(1 << 16, std::io::stdin())))
    } else {
        let f = std::fs::File::open(PathBuf::from(path)).with_context(|| format!("opening input {path}"))?;
        Ok(Box::new(std::io::BufReader::with_capacity(1 << 16, f)))
    }
}

fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("FLASHPOINT_LOG").unwrap_or_else(|_| "info".into()),
        )
        .with_writer(std::io::stderr)
        .init();
    match real_main() {
        Ok(code) => code,
        Err(e) => {
            // One line, controls escaped: messages quote paths, environment values and parser excerpts that we
            // did not write, and a newline in any of them would start a line that looks like ours.
            eprintln!("error: {}", flashpoint_core::sanitize::for_log(&format!("{e:#}")));
            ExitCode::from(2)
        }
    }
}

fn real_main() -> Result<ExitCode> {
    let cli = Cli::parse();
    match cli.cmd {
        Cmd::Score { input, scorer, raw, negative_threshold, positive_threshold } => {
            let thresholds = LabelThresholds { negative: negative_threshold, positive: positive_threshold };
            thresholds.validate().map_err(anyhow::Error::msg).context("--negative-threshold/--positive-threshold")?;
            let mut cfg = ScorerConfig { thresholds, ..ScorerConfig::default() };
            scorer.apply(&mut cfg)?;
            let scorer = build_scorer(&cfg)?;
            let gate = cfg.language_gate(scorer.as_ref())?;
            let stats = score::run(open_input(&input)?, scorer.as_ref(), &gate, raw)?;
            Ok(if stats.failed > 0 { ExitCode::from(1) } else { ExitCode::SUCCESS })
        }
        Cmd::EvalNab { data, config, verbose } => {
            let mut cfg = match config {
                Some(p) => Config::load(&p)?,
                None => Config::default(),
            };
            cfg.entities.clear();
            let (scores, total) = flashpoint_eval::nab::run(&data, &cfg.aggregator(), cfg.scorer.thresholds)?;
            for s in &scores {
                println!(
                    "{:<28} windows {:>2}  detected {:>2}  false positives {:>3}  raw {:>7.3}  NAB {:>6.1}",
                    s.series, s.windows, s.detected_windows, s.false_positives, s.raw, s.normalized
                );
                if verbose {
                    for d in &s.detections {
                        println!("    {d}");
                    }
                }
            }
            println!("{:<28} NAB standard profile, normalised: {total:.1}", "TOTAL");
            Ok(ExitCode::SUCCESS)
        }
        Cmd::EvalDetect { nab, texts, config, seed, svg, json, only, isolated, trace } => {
            let mut cfg = match config {
                Some(p) => Config::load(&p)?,
                None => Config::default(),
            };
            cfg.entities.clear();
            let cells: Option<Vec<flashpoint_eval::injection::Cell>> = only.map(|o| {
                let parts: Vec<&str> = o.split(',').map(str::trim).filter(|p| !p.is_empty()).collect();
                flashpoint_eval::injection::cells()
                    .into_iter()
                    .filter(|c| parts.iter().any(|p| c.kind.name().contains(p)))
                    .collect()
            });
            if let Some(dir) = &trace {
                std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
            }
            let opts =
                flashpoint_eval::DetectOptions { seed, only: cells.as_deref(), isolated, trace: trace.as_deref() };
            let agg = cfg.aggregator();
            let report = flashpoint_eval::run(&nab, &texts, &agg, cfg.scorer.thresholds, &opts)?;
            print!("{}", flashpoint_eval::report::markdown(&report, &agg));
            if let Some(p) = svg {
                std::fs::write(&p, flashpoint_eval::report::svg(&report))
                    .with_context(|| format!("writing {}", p.display()))?;
            }
            if let Some(p) = json {
                let v = flashpoint_eval::report::json(&report, &agg, seed);
                std::fs::write(&p, serde_json::to_string_pretty(&v)?)
                    .with_context(|| format!("writing {}", p.display()))?;
            }
            Ok(ExitCode::SUCCESS)
        }
        Cmd::Run { config, role, brokers, metrics_listen, scorer } => {
            let mut cfg = Config::load(&config)?;
            if let Some(b) = brokers {
                cfg.kafka.brokers = b;
            }
            if let Some(l) = metrics_listen {
                cfg.metrics.listen = l;
            }
            scorer.apply(&mut cfg.scorer)?;
            cfg.validate().with_context(|| format!("config {}", config.display()))?;
            let scorer: std::sync::Arc<dyn Scorer> = std::sync::Arc::from(build_scorer(&cfg.scorer)?);
            run::run(cfg, role, scorer)
        }
        Cmd::Produce { input, topic, brokers, config, rate, partitions } => {
            let mut kafka = match config {
                Some(c) => Config::load(&c)?.kafka,
                None => flashpoint_kafka::KafkaConfig::default(),
            };
            kafka.brokers = brokers;
            if let Some(p) = partitions {
                let rt = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
                rt.block_on(flashpoint_kafka::client::create_topic(&kafka, &topic, p))?;
            }
            let n = flashpoint_kafka::produce::produce_lines(&kafka, &topic, open_input(&input)?, rate)?;
            eprintln!("{{\"produced\":{n},\"topic\":{}}}", serde_json::to_string(&topic)?);
            Ok(ExitCode::SUCCESS)
        }
        Cmd::EvalSentiment { data, brands, brand_scope, all_backends, config, raw, scorer } => {
            let mut cfg = match config {
                Some(p) => Config::load(&p)?.scorer,
                None => ScorerConfig::default(),
            };
            scorer.apply(&mut cfg)?;
            let raw = raw || !cfg.normalize;
            let sample = match brands {
                Some(b) => {
                    let scope = match brand_scope {
                        BrandScopeArg::Tweet => flashpoint_eval::sentiment::BrandScope::Tweet,
                        BrandScopeArg::Sentence => flashpoint_eval::sentiment::BrandScope::Sentence,
                    };
                    flashpoint_eval::sentiment::Sample::brands(&data, &b, raw, scope)?
                }
                None => flashpoint_eval::sentiment::Sample::load(&data, raw)?,
            };
            let mut backends = Vec::new();
            if all_backends {
                backends.push((ScorerConfig { kind: ScorerKind::Lexicon, ..cfg.clone() }, "lexicon".to_string()));
                if !cfg!(feature = "transformer") {
                    println!("transformer     not in this binary (build it: cargo build --profile transformer -p flashpoint --features transformer)\n");
                } else if cfg.model_dir.is_none() {
                    println!("transformer     skipped: no model directory (--model-dir or FLASHPOINT_MODEL_DIR)\n");
                } else {
                    for (p, n) in [(Precision::Int8, "transformer int8"), (Precision::Fp32, "transformer fp32")] {
                        let c = ScorerConfig { kind: ScorerKind::Transformer, precision: p, ..cfg.clone() };
                        backends.push((c, n.to_string()));
                    }
                }
            } else {
                let name = match cfg.kind {
                    ScorerKind::Lexicon => "lexicon".to_string(),
                    ScorerKind::Transformer => format!("transformer {:?}", cfg.precision).to_lowercase(),
                };
                backends.push((cfg.clone(), name));
            }
            let mut reports = Vec::new();
            for (i, (c, name)) in backends.iter().enumerate() {
                let built = build_scorer(c)?;
                let gate = c.language_gate(built.as_ref())?;
                let verdicts = sample.judge(&gate);
                if i == 0 {
                    println!("{}", flashpoint_eval::sentiment::LanguageTable::new(&gate, &verdicts));
                }
                let r = flashpoint_eval::sentiment::run(&sample, &verdicts, built.as_ref(), name)?;
                println!("{r}");
                reports.push(r);
            }
            if all_backends {
                print!("{}", flashpoint_eval::sentiment::summary(&reports));
            }
            Ok(ExitCode::SUCCESS)
        }
        Cmd::Report { events, out } => {
            let summary = report::run(open_input(&events)?, &out)?;
            eprintln!("{}", serde_json::to_string(&summary)?);
            Ok(if summary.bad_lines > 0 { ExitCode::from(1) } else { ExitCode::SUCCESS })
        }
        Cmd::CheckConfig { config } => {
            let cfg = Config::load(&config)?;
            println!("{}: ok ({} entities)", config.display(), cfg.entities.len());
            // Where each secret comes from and whether it is readable here; never the value.
            for c in &cfg.notify.channels {
                let secrets: Vec<String> = c
                    .secrets()
                    .iter()
                    .map(|(k, r)| {
                        let state = if r.resolve().is_ok() { "readable" } else { "not readable here" };
                        format!("{k} = {r} ({state})")
                    })
                    .collect();
                println!("notify channel {} ({}): {}", c.name(), c.kind(), secrets.join(", "));
            }
            for r in &cfg.notify.routes {
                println!(
                    "notify route {}: min_severity {} -> {}",
                    r.name,
                    r.min_severity.as_str(),
                    r.channels.join(", ")
                );
            }
            let pages = &cfg.notify.pages;
            if !cfg.notify.routes.is_empty() && pages.enabled {
                let token = match &pages.token {
                    Some(r) => {
                        format!("token = {r} ({})", if r.resolve().is_ok() { "readable" } else { "not readable here" })
                    }
                    None => "no token (loopback only)".into(),
                };
                println!("notify pages: /incidents on {} with the notify stage, {token}", cfg.metrics.listen);
            }
            Ok(ExitCode::SUCCESS)
        }
        Cmd::Notify { action: Some(NotifyAction::Test { config }), .. } => {
            let cfg = Config::load(&config)?;
            let ok = notify::test(&cfg, &mut std::io::stdout())?;
            Ok(if ok { ExitCode::SUCCESS } else { ExitCode::from(1) })
        }
        Cmd::Notify { action: Some(NotifyAction::Silence { config, entity, until, reason }), .. } => {
            notify::add_silence(&config, &entity, &until, &reason)?;
            println!("{}: silence added for `{entity}` until {until}", config.display());
            Ok(ExitCode::SUCCESS)
        }
        Cmd::Notify { action: None, config, input, dead_letter, clock, checkpoint, restart } => {
            let cfg = Config::load(&config.context("--config")?)?;
            let mut dead: Box<dyn Write> = match &dead_letter {
                Some(p) => create(p)?,
                None => Box::new(std::io::stderr()),
            };
            let input: Box<dyn BufRead + Send> = if input == "-" {
                Box::new(std::io::BufReader::new(std::io::stdin()))
            } else {
                let f = std::fs::File::open(&input).with_context(|| format!("opening input {input}"))?;
                Box::new(std::io::BufReader::new(f))
            };
            let summary = notify::run(&cfg, input, &mut *dead, &notify::Options { clock, checkpoint, restart })?;
            dead.flush()?;
            eprintln!("{}", serde_json::to_string(&summary)?);
            Ok(if summary.bad_lines > 0 || summary.dead_lettered > 0 { ExitCode::from(1) } else { ExitCode::SUCCESS })
        }
        Cmd::Replay { input, config, output, dead_letter, flush, scorer } => {
            let mut cfg = Config::load(&config)?;
            scorer.apply(&mut cfg.scorer)?;
            let built = build_scorer(&cfg.scorer)?;
            let gate = cfg.scorer.language_gate(built.as_ref())?;
            let mut score = flashpoint_core::stage::ScoreStage::new(std::sync::Arc::from(built), &cfg.entities)
                .map_err(anyhow::Error::msg)?;
            score.normalize = cfg.scorer.normalize;
            score.language = gate;
            let stage = flashpoint_core::stage::AggregateStage::new(&cfg.entities, &cfg.aggregator())
                .map_err(anyhow::Error::msg)?;
            let partition =
                flashpoint_core::partition::AggregatePartition::start(stage, None, 0).map_err(anyhow::Error::msg)?;
            let pipeline = flashpoint_core::pipeline::Pipeline::from_machines(score, partition);
            let progress = if input != "-" && std::io::stderr().is_terminal() {
                std::fs::metadata(&input).ok().map(|m| m.len())
            } else {
                None
            };
            let mut events: Box<dyn Write> = match &output {
                Some(p) => create(p)?,
                None => Box::new(std::io::BufWriter::new(std::io::stdout().lock())),
            };
            let dl_path = dead_letter
                .or_else(|| output.as_ref().map(|o| PathBuf::from(format!("{}.dead-letter.jsonl", o.display()))));
            let mut dead: Box<dyn Write> = match &dl_path {
                Some(p) => create(p)?,
                None => Box::new(std::io::stderr()),
            };
            let summary = replay::run(
                &cfg,
                pipeline,
                open_input(&input)?,
                &mut *events,
                &mut *dead,
                &replay::Options { flush, progress },
            )?;
            eprintln!("{}", serde_json::to_string(&summary)?);
            Ok(ExitCode::SUCCESS)
        }
    }
}
