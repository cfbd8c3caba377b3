//! `flashpoint notify`: spike events from a JSON Lines file or a pipe to people, with no broker.
//!
//! `flashpoint replay ... | flashpoint notify --config FILE --input -` delivers what a replay detects. Lines
//! are read on a thread and handed to the notifier's engine (crate `flashpoint-notify`) with their line number
//! as position; a line that is not a spike event goes to the dead-letter output with the reason and is
//! counted. At the end of the input, held states and digests are sent at once and the command waits until
//! every message is delivered or dead-lettered, then prints a summary and exits (1 if anything was
//! dead-lettered).
//!
//! `--checkpoint FILE` makes a restart safe: the low-water mark (every line before it delivered or
//! dead-lettered on every route) is written to FILE as it advances, and a restart with the same FILE and input
//! skips the lines before it. Killed at any point, a restart re-sends at most what was in flight: at least
//! once, with the same idempotency keys, dedup keys and Message-IDs.
//!
//! Time: with `--clock event` (default) the router's clock is the events' own window end, so a replay of a
//! day applies update intervals, rate limits and digests as they would have applied live, and the same input
//! gives the same messages. `--clock wall` uses the system clock (a live pipe).

use crate::config::Config;
use anyhow::{Context, Result};
use flashpoint_core::sanitize;
use flashpoint_core::time::Millis;
use flashpoint_notify::{parse_event, DeadLetter, Engine, NotifyMetrics, Position};
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
    /// Every line before this one is delivered or dead-lettered on every route.
    pub low_water: i64,
}

#[derive(serde::Serialize)]
struct InputDeadLetter<'a> {
    source: &'static str,
    line: u64,
    reason: &'a str,
    excerpt: &'a str,
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
}

/// The line to resume from: what the checkpoint file says, 0 without one.
fn read_checkpoint(path: &Path) -> Result<i64> {
    match std::fs::read_to_string(path) {
        Ok(s) => s.trim().parse::<i64>().with_context(|| format!("checkpoint {}: not a line number", path.display())),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(0),
        Err(e) => Err(e).with_context(|| format!("reading checkpoint {}", path.display())),
    }
}

/// Writes the mark atomically (a crash leaves the old or the new value, never half of one).
fn write_checkpoint(path: &Path, mark: i64) -> Result<()> {
    let tmp = path.with_extension("tmp");
    std::fs::write(&tmp, format!("{mark}\n")).with_context(|| format!("writing {}", tmp.display()))?;
    std::fs::rename(&tmp, path).with_context(|| format!("renaming {} to {}", tmp.display(), path.display()))?;
    Ok(())
}

struct Checkpoint {
    path: Option<PathBuf>,
    written: i64,
}

impl Checkpoint {
    fn update(&mut self, engine: &Engine) -> Result<()> {
        let Some(path) = &self.path else { return Ok(()) };
        let mark = engine.low_water(0).unwrap_or(self.written);
        if mark > self.written {
            write_checkpoint(path, mark)?;
            self.written = mark;
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

async fn run_async(
    cfg: &Config,
    input: Box<dyn BufRead + Send>,
    dead: &mut dyn Write,
    opts: &Options,
) -> Result<Summary> {
    let clock = opts.clock;
    let resume = match &opts.checkpoint {
        Some(p) => read_checkpoint(p)?,
        None => 0,
    };
    let mut checkpoint = Checkpoint { path: opts.checkpoint.clone(), written: resume };
    let registry = prometheus::Registry::new();
    let metrics = NotifyMetrics::new(&registry)?;
    let (dead_tx, mut dead_rx) = mpsc::unbounded_channel::<DeadLetter>();
    let mut engine = Engine::start(&cfg.notify, &|k| std::env::var(k).ok(), metrics.clone(), dead_tx)
        .context("starting the notifier")?;
    // Blocking reads on their own thread; a bounded channel keeps a fast file from racing ahead of delivery.
    let (line_tx, mut line_rx) = mpsc::channel::<(u64, std::io::Result<String>)>(256);
    let reader = std::thread::spawn(move || {
        let mut input = input;
        let mut n = 0u64;
        loop {
            let mut buf = String::new();
            let r = input.read_line(&mut buf);
            match r {
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
    let mut event_now: Millis = Millis::MIN;
    let now = |event_now: Millis| if clock == Clock::Wall { wall_ms() } else { event_now };
    let mut interval = tokio::time::interval(Duration::from_millis(200));
    interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
    let write_dead = |dead: &mut dyn Write, d: &DeadLetter| -> Result<()> {
        sanitize::to_json_writer(&mut *dead, &DeliveryDeadLetter { source: "delivery", dead: d })?;
        dead.write_all(b"\n")?;
        dead.flush()?;
        Ok(())
    };
    loop {
        tokio::select! {
            line = line_rx.recv() => {
                let Some((n, line)) = line else { break };
                let line = line.with_context(|| format!("reading input line {}", n + 1))?;
                s.lines += 1;
                if line.trim().is_empty() || (n as i64) < resume {
                    engine.skip(Position::line(n as i64));
                    continue;
                }
                match parse_event(&line, Position::line(n as i64)) {
                    Ok(input) => {
                        s.events += 1;
                        if let Some(end) = input.event.window_end_ms() {
                            event_now = event_now.max(end);
                        }
                        engine.submit(&input, now(event_now));
                        engine.tick(now(event_now));
                    }
                    Err(reason) => {
                        s.bad_lines += 1;
                        metrics.input_dead_letters.with_label_values(&["not_a_spike_event"]).inc();
                        engine.skip(Position::line(n as i64));
                        let excerpt = sanitize::for_log_truncated(line.trim_end(), 200);
                        sanitize::to_json_writer(&mut *dead, &InputDeadLetter { source: "input", line: n + 1, reason: &reason, excerpt: &excerpt })?;
                        dead.write_all(b"\n")?;
                        dead.flush()?;
                    }
                }
            }
            _ = interval.tick() => {
                if clock == Clock::Wall {
                    engine.tick(wall_ms());
                }
                checkpoint.update(&engine)?;
            }
        }
        engine.poll_acks();
        while let Ok(d) = dead_rx.try_recv() {
            write_dead(dead, &d)?;
        }
    }
    let _ = reader.join();
    engine.close(now(event_now).max(if clock == Clock::Wall { wall_ms() } else { Millis::MIN }));
    loop {
        let more = match tokio::time::timeout(Duration::from_millis(200), engine.next_ack()).await {
            Ok(more) => more,
            Err(_) => true,
        };
        engine.poll_acks();
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
    s.low_water = engine.low_water(0).unwrap_or(resume);
    Ok(s)
}
