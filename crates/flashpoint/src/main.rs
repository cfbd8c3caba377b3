//! The `flashpoint` binary: command line, configuration and wiring. The logic lives in `flashpoint-core`.

mod score;

use anyhow::{Context, Result};
use clap::{Parser, Subcommand, ValueEnum};
use flashpoint_core::sentiment::{LabelThresholds, LexiconScorer, Scorer};
use std::io::BufRead;
use std::path::PathBuf;
use std::process::ExitCode;

/// Flashpoint: streaming sentiment analysis that warns you when a complaint turns into a crisis.
#[derive(Parser)]
#[command(name = "flashpoint", version, about, long_about = None)]
struct Cli {
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Clone, Copy, Debug, ValueEnum)]
enum ScorerKind {
    /// VADER lexicon scorer (exact parity with vaderSentiment 3.3.2), ~1M texts/s per core.
    Lexicon,
}

#[derive(Subcommand)]
enum Cmd {
    /// Score JSON Lines ({"id":..,"text":".."} per line) and print one sentiment record per line, in order.
    ///
    /// Output: {"id":..,"label":"negative|neutral|positive","compound":f,"neg":f,"neu":f,"pos":f}.
    /// A bad line produces {"line":N,"error":".."} on stderr and the run continues; the exit status is 1
    /// if any line failed.
    Score {
        /// Input file, or `-` for standard input.
        #[arg(long, short, default_value = "-")]
        input: String,
        /// Scoring backend.
        #[arg(long, value_enum, default_value = "lexicon")]
        scorer: ScorerKind,
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
        .with_env_filter(tracing_subscriber::EnvFilter::try_from_env("FLASHPOINT_LOG").unwrap_or_else(|_| "info".into()))
        .with_writer(std::io::stderr)
        .init();
    match real_main() {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e:#}");
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
            let scorer: Box<dyn Scorer> = match scorer {
                ScorerKind::Lexicon => Box::new(LexiconScorer::new(thresholds)),
            };
            let stats = score::run(open_input(&input)?, scorer.as_ref(), raw)?;
            Ok(if stats.failed > 0 { ExitCode::from(1) } else { ExitCode::SUCCESS })
        }
    }
}
