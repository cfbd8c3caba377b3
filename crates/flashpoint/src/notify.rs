//! `flashpoint notify`: spike events from a JSON Lines file or a pipe to people, with no broker.
//!
//! `flashpoint replay ... | flashpoint notify --config FILE --input -` delivers what a replay detects. Lines
//! are read on a thread and handed to the notifier's engine (crate `flashpoint-notify`) with their line number
//! as position; a line that is not a spike event goes to the dead-letter output with the reason and is
//! counted. At the end of the input, held states and digests are sent at once and the command waits until
//! every message is delivered or dead-lettered, then prints a summary and exits (1 if anything was
//! dead-lettered).
//!
//! `--checkpoint FILE` makes a restart safe: FILE keeps, per channel, the line below which that channel has
//! delivered or dead-lettered everything (a slow channel never makes the others resend), what a channel keeps
//! across restarts (Slack threads), and the identity of the input's lines before the lowest mark (their count
//! and SHA-256). A restart reads the input from its first line again, so the router rebuilds the same state and
//! every message comes out as it did the first time (with `--clock event`, byte for byte, labels included), but a
//! channel is only sent the messages it had not finished. A checkpoint applied to another input is refused
//! (`--restart` starts over). Killed at any point, a restart re-sends at most what was in flight: at least once,
//! with the same idempotency keys, dedup keys and Message-IDs.
//!
//! The input's records go through the notifier's one reader (`Engine::read`, shared with the Kafka stage): a
//! line that is not UTF-8, not JSON or not a spike event becomes an input dead letter with its line number and
//! the run goes on; a delivery dead letter read back (`--input dead.jsonl`) is re-sent to its route's channel.
//!
//! Time: with `--clock event` (default) the router's clock is the events' own window end, so a replay of a
//! day applies update intervals, rate limits and digests as they would have applied live, and the same input
//! gives the same messages. `--clock wall` uses the system clock (a live pipe).

use crate::config::Config;
use anyhow::{bail, Context, Result};
use flashpoint_core::reject::DeadLetter as InputDeadLetter;
use flashpoint_core::sanitize;
use flashpoint_core::time::Millis;
use flashpoint_notify::reader::InputDigest;
use flashpoint_notify::{DeadLetter, Engine, NotifyMetrics, Position, Resume};
use std::collections::VecDeque;
use std::io::{BufRead, Write};
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};
use tokio::sync::mpsc;

#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Clock {
    Event,
    Wall,
}

#[derive(serde::Serialize, Default)]
pub struct Summary {
    pub lines: u64,
    pub events: u64,
    pub bad_lines: u64,
    pub sent: u64,
    pub dead_lettered: u64,
    pub retried: u64,
    pub rate_limited: u64,
    pub silenced: u64,
    /// Messages a channel had finished before a restart, not sent again.
    pub skipped_on_resume: u64,
    /// Every line before this one is delivered or dead-lettered on every route.
    pub low_water: i64,
}

#[derive(serde::Serialize)]
struct DeliveryDeadLetter<'a> {
    source: &'static str,
    #[serde(flatten)]
    dead: &'a DeadLetter,
}

fn wall_ms() -> Millis {
    SystemTime::now().duration_since(SystemTime::UNIX_EPOCH).map_or(0, |d| d.as_millis() as Millis)
}

fn sum(c: &prometheus::IntCounterVec) -> u64 {
    use prometheus::core::Collector;
    c.collect().iter().flat_map(|f| f.get_metric().iter().map(|m| m.get_counter().get_value() as u64)).sum()
}

pub struct Options {
    pub clock: Clock,
    pub checkpoint: Option<PathBuf>,
    /// Ignore what the checkpoint says and start from the first line (it is overwritten as the run goes).
    pub restart: bool,
}

/// What `--checkpoint` holds.
#[derive(serde::Serialize, serde::Deserialize, Default, Clone, PartialEq)]
struct CheckpointFile {
    /// The input's first `lines` lines hash to `sha256`: the lines every channel had finished.
    lines: i64,
    sha256: String,
    #[serde(flatten)]
    resume: Resume,
}

fn read_checkpoint(path: &Path) -> Result<Option<CheckpointFile>> {
    let text = match std::fs::read_to_string(path) {
        Ok(s) => s,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(e).with_context(|| format!("reading checkpoint {}", path.display())),
    };
    serde_json::from_str(&text).map(Some).with_context(|| {
        format!("checkpoint {}: not a checkpoint of this version (pass --restart to start over)", path.display())
    })
}

/// Writes the checkpoint atomically (a crash leaves the old or the new one, never half of one).
fn write_checkpoint(path: &Path, c: &CheckpointFile) -> Result<()> {
    let tmp = path.with_extension("tmp");
    let mut bytes = serde_json::to_vec(c)?;
    bytes.push(b'\n');
    std::fs::write(&tmp, bytes).with_context(|| format!("writing {}", tmp.display()))?;
    std::fs::rename(&tmp, path).with_context(|| format!("renaming {} to {}", tmp.display(), path.display()))?;
    Ok(())
}

struct Checkpoint {
    path: Option<PathBuf>,
    written: Option<CheckpointFile>,
    /// (lines read, digest of those lines), from the lowest mark on.
    digests: VecDeque<(i64, String)>,
}

impl Checkpoint {
    fn update(&mut self, engine: &Engine) -> Result<()> {
        let Some(path) = &self.path else { return Ok(()) };
        let resume = engine.resume_point();
        let lowest = resume.marks.values().copied().min().unwrap_or(0);
        while self.digests.len() > 1 && self.digests[1].0 <= lowest {
            self.digests.pop_front();
        }
        let Some((lines, sha256)) = self.digests.front().filter(|d| d.0 == lowest).cloned() else { return Ok(()) };
        let c = CheckpointFile { lines, sha256, resume };
        if self.written.as_ref() != Some(&c) {
            write_checkpoint(path, &c)?;
            self.written = Some(c);
        }
        Ok(())
    }
}

pub fn run(cfg: &Config, input: Box<dyn BufRead + Send>, dead: &mut dyn Write, opts: &Options) -> Result<Summary> {
    if cfg.notify.routes.is_empty() {
        anyhow::bail!(
            "notify.routes: no routes configured; add [[notify.channels]] and [[notify.routes]] (see README, Alerts)"
        );
    }
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build()?;
    rt.block_on(run_async(cfg, input, dead, opts))
}

fn write_line(dead: &mut dyn Write, v: &impl serde::Serialize) -> Result<()> {
    sanitize::write_json_line(dead, v)?;
    dead.flush()?;
    Ok(())
}

async fn run_async(
    cfg: &Config,
    input: Box<dyn BufRead + Send>,
    dead: &mut dyn Write,
    opts: &Options,
) -> Result<Summary> {
    let clock = opts.clock;
    let previous = match (&opts.checkpoint, opts.restart) {
        (Some(p), false) => read_checkpoint(p)?,
        _ => None,
    };
    let resume = previous.as_ref().map(|c| c.resume.clone()).unwrap_or_default();
    let mut checkpoint = Checkpoint {
        path: opts.checkpoint.clone(),
        written: previous.clone(),
        digests: VecDeque::from([(0, InputDigest::default().hex())]),
    };
    let registry = prometheus::Registry::new();
    let metrics = NotifyMetrics::new(&registry)?;
    let (dead_tx, mut dead_rx) = mpsc::unbounded_channel::<DeadLetter>();
    let mut engine = Engine::start_resumed(&cfg.notify, &|k| std::env::var(k).ok(), metrics.clone(), dead_tx, &resume)
        .context("starting the notifier")?;
    // Blocking reads on their own thread; a bounded channel keeps a fast file from racing ahead of delivery.
    // Lines are bytes: one that is not UTF-8 is a dead letter like any other bad line, not the end of the run.
    let (line_tx, mut line_rx) = mpsc::channel::<(u64, std::io::Result<Vec<u8>>)>(256);
    let reader = std::thread::spawn(move || {
        let mut input = input;
        let mut n = 0u64;
        loop {
            let mut buf = Vec::new();
            match input.read_until(b'\n', &mut buf) {
                Ok(0) => break,
                Ok(_) => {
                    if line_tx.blocking_send((n, Ok(buf))).is_err() {
                        break;
                    }
                }
                Err(e) => {
                    let _ = line_tx.blocking_send((n, Err(e)));
                    break;
                }
            }
            n += 1;
        }
    });
    let mut s = Summary::default();
    let mut digest = InputDigest::default();
    let mut event_now: Millis = Millis::MIN;
    let now = |event_now: Millis| if clock == Clock::Wall { wall_ms() } else { event_now };
    let mut interval = tokio::time::interval(Duration::from_millis(200));
    interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
    let write_dead =
        |dead: &mut dyn Write, d: &DeadLetter| write_line(dead, &DeliveryDeadLetter { source: "delivery", dead: d });
    let identity_error = |p: &CheckpointFile, why: &str| {
        anyhow::anyhow!(
            "checkpoint {}: written for another input ({why}; it covers the first {} lines, sha256 {}); pass --restart to start over with this input",
            opts.checkpoint.as_deref().unwrap_or(Path::new("")).display(),
            p.lines,
            p.sha256
        )
    };
    loop {
        tokio::select! {
            line = line_rx.recv() => {
                let Some((n, line)) = line else { break };
                let line = line.with_context(|| format!("reading input line {}", n + 1))?;
                let pos = Position::line(n as i64);
                if let Some(p) = previous.as_ref().filter(|p| p.lines == n as i64) {
                    if digest.hex() != p.sha256 {
                        bail!(identity_error(p, "its lines differ"));
                    }
                }
                digest.update(&line);
                checkpoint.digests.push_back((n as i64 + 1, digest.hex()));
                s.lines += 1;
                if line.iter().all(u8::is_ascii_whitespace) {
                    engine.skip(pos);
                    continue;
                }
                let result = engine.read(&line, pos, |end| {
                    if let Some(end) = end {
                        event_now = event_now.max(end);
                    }
                    now(event_now)
                });
                match result {
                    Ok(()) => s.events += 1,
                    Err(rej) => {
                        s.bad_lines += 1;
                        InputDeadLetter::new(rej.reason, &rej.detail, n + 1, line.trim_ascii_end()).write_line(dead)?;
                        dead.flush()?;
                        engine.skip(pos);
                    }
                }
            }
            _ = interval.tick() => {
                if clock == Clock::Wall {
                    engine.tick(wall_ms());
                }
                engine.poll_acks();
                checkpoint.update(&engine)?;
            }
        }
        engine.poll_acks();
        while let Ok(d) = dead_rx.try_recv() {
            write_dead(dead, &d)?;
        }
    }
    let _ = reader.join();
    if let Some(p) = previous.as_ref().filter(|p| p.lines > s.lines as i64) {
        bail!(identity_error(p, &format!("it has only {} lines", s.lines)));
    }
    if let Some(p) = previous.as_ref().filter(|p| p.lines == s.lines as i64 && digest.hex() != p.sha256) {
        bail!(identity_error(p, "its lines differ"));
    }
    engine.close(now(event_now).max(if clock == Clock::Wall { wall_ms() } else { Millis::MIN }));
    loop {
        let more = engine.drain_step(Duration::from_millis(200)).await;
        checkpoint.update(&engine)?;
        while let Ok(d) = dead_rx.try_recv() {
            write_dead(dead, &d)?;
        }
        if !more {
            break;
        }
    }
    engine.join().await;
    checkpoint.update(&engine)?;
    while let Ok(d) = dead_rx.try_recv() {
        write_dead(dead, &d)?;
    }
    s.sent = sum(&metrics.sent);
    s.dead_lettered = sum(&metrics.failed);
    s.retried = sum(&metrics.retried);
    s.rate_limited = sum(&metrics.rate_limited);
    s.silenced = sum(&metrics.silenced);
    s.skipped_on_resume = engine.skipped_on_resume;
    s.low_water = engine.low_water(0).unwrap_or(0);
    Ok(s)
}

/// `flashpoint notify test`: a clearly marked test message to every channel; one line per channel.
pub fn test(cfg: &Config, out: &mut dyn Write) -> Result<bool> {
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
    let notice = test_notice();
    let results =
        rt.block_on(flashpoint_notify::engine::test_channels(&cfg.notify, &|k| std::env::var(k).ok(), &notice));
    let mut ok = true;
    for r in &results {
        match &r.result {
            Ok(n) => writeln!(out, "ok     {} ({}): test message accepted ({n} request(s))", r.channel, r.kind)?,
            Err(e) => {
                ok = false;
                writeln!(out, "FAILED {} ({}): {}", r.channel, r.kind, sanitize::for_log(e))?
            }
        }
    }
    Ok(ok)
}

/// The test message: an opening for an entity named so that nobody mistakes it for an incident.
fn test_notice() -> flashpoint_notify::message::Notice {
    use flashpoint_core::time::format_rfc3339;
    let now = wall_ms();
    let event = serde_json::json!({
        "schema": flashpoint_core::event::SPIKE_SCHEMA,
        "incident_id": format!("flashpoint-test-{}", now / 1000),
        "seq": 0, "kind": "opened",
        "entity": "TEST MESSAGE from flashpoint notify test (not an incident)",
        "incident_start": format_rfc3339(now - 300_000),
        "window_start": format_rfc3339(now - 300_000), "window_end": format_rfc3339(now),
        "signal": "volume", "observed": 0.0, "baseline": 0.0, "score": 0.0, "severity": "watch",
        "counts": {"volume": 0, "negative": 0, "neutral": 0, "positive": 0},
        "negative_share": 0.0, "mean_compound": 0.0, "reach": 0,
        "evidence": {"most_negative": [], "top_reach": [], "top_terms": []}
    });
    let raw = event.to_string();
    let event: flashpoint_core::event::SpikeEvent = serde_json::from_value(event).expect("a valid test event");
    flashpoint_notify::message::Notice {
        kind: flashpoint_notify::message::NoticeKind::Opened,
        first: true,
        changes: vec!["this is a test: nothing happened".into()],
        event: std::sync::Arc::new(event),
        raw: std::sync::Arc::from(raw.as_str()),
        peak_severity: flashpoint_core::detect::Severity::Watch,
        peak_volume: 0,
        peak_negative_share: 0.0,
        events_seen: 1,
        history: Vec::new(),
    }
}

/// `flashpoint notify silence`: appends a `[[notify.silences]]` entry to the config file, after checking that
/// the file with it still loads.
pub fn add_silence(config: &Path, entity: &str, until: &str, reason: &str) -> Result<()> {
    let text = std::fs::read_to_string(config).with_context(|| format!("reading {}", config.display()))?;
    let q = |s: &str| toml::Value::String(s.to_string()).to_string();
    let entry =
        format!("\n[[notify.silences]]\nentity = {}\nuntil = {}\nreason = {}\n", q(entity), q(until), q(reason));
    let new = format!("{}{entry}", if text.ends_with('\n') { text.clone() } else { format!("{text}\n") });
    Config::from_toml(&new, std::env::vars()).context("the config with this silence")?;
    std::fs::write(config, new).with_context(|| format!("writing {}", config.display()))?;
    Ok(())
}
