//! `flashpoint replay`: the whole pipeline over a JSON Lines file, as fast as it can go in event time.
//!
//! The embedded default that needs no broker: the same decoder, matcher, scorer, windows and detector as the
//! Kafka worker, so a replay of a topic's records produces the events the worker would have produced.
//! Records that cannot be decoded and posts diverted by the watermark go to the dead-letter output with
//! their reason; nothing is dropped silently.

use crate::config::Config;
use anyhow::{Context, Result};
use flashpoint_core::event::Output;
use flashpoint_core::partition::{AggregatePartition, ScoreBatch, SourceRecord, Step};
use flashpoint_core::pipeline::StageCounters;
use flashpoint_core::sanitize;
use flashpoint_core::stage::ScoreStage;
use std::io::{BufRead, Write};

const BATCH: usize = 512;

pub struct Options {
    pub flush: bool,
    pub progress: Option<u64>,
}

#[derive(serde::Serialize)]
pub struct Summary {
    pub records: u64,
    pub decode_errors: u64,
    pub skipped_not_posts: u64,
    pub stages: StageCounters,
    pub aggregator: flashpoint_core::aggregate::Counters,
    pub events: u64,
    pub seconds: f64,
    pub posts_per_second: f64,
}

fn write_outputs(
    outputs: &mut Vec<Output>,
    events: &mut dyn Write,
    dead: &mut dyn Write,
    n_events: &mut u64,
) -> Result<()> {
    for o in outputs.drain(..) {
        match o {
            // JsonSafe: evidence and ids are untrusted and both outputs may be a terminal.
            Output::Spike(e) => {
                sanitize::to_json_writer(&mut *events, &e)?;
                events.write_all(b"\n")?;
                *n_events += 1;
            }
            Output::Diverted(d) => {
                sanitize::to_json_writer(&mut *dead, &d)?;
                dead.write_all(b"\n")?;
            }
        }
    }
    Ok(())
}

/// The worker's two machines back to back, without a topic between them: `ScoreStage::process` on batches
/// of lines (line n is offset n - 1 of a one-partition source), each stage record straight into one
/// `AggregatePartition`. The stage records are not serialised: `partition`'s tests prove that path equal
/// to the worker's bytes path.
struct Machines {
    score: ScoreStage,
    partition: AggregatePartition,
    batch: ScoreBatch,
    /// Offset of the next stage record in the (virtual) internal topic.
    next: i64,
    counters: StageCounters,
    decode_errors: u64,
    skipped: u64,
}

impl Machines {
    fn feed(
        &mut self,
        cfg: &Config,
        lines: &[u8],
        ends: &[(i64, usize)],
        outputs: &mut Vec<Output>,
        dead: &mut dyn Write,
    ) -> Result<()> {
        let mut start = 0;
        let sources: Vec<SourceRecord<'_>> = ends
            .iter()
            .map(|&(offset, end)| {
                let r = SourceRecord { topic: "replay", partition: 0, offset, payload: &lines[start..end] };
                start = end;
                r
            })
            .collect();
        let decoder = cfg.input.decoder();
        self.score.process(&decoder, &sources, &mut self.batch);
        let b = &self.batch;
        self.counters.add_batch(b.posts.len() as u64, b.matched, b.unmatched, b.unscored);
        self.skipped += b.skipped;
        for r in &b.rejected {
            self.decode_errors += 1;
            let rec = sources[r.record].payload;
            let shown = String::from_utf8_lossy(&rec[..rec.len().min(64 * 1024)]);
            let line = sources[r.record].offset + 1;
            let dl =
                serde_json::json!({"reason": r.rejection.reason(), "error": r.detail, "line": line, "record": shown});
            sanitize::to_json_writer(&mut *dead, &dl)?;
            dead.write_all(b"\n")?;
        }
        for (_, _, rec) in b.records(&self.score) {
            match self.partition.on_decoded(self.next, &rec, outputs) {
                Step::Applied(_) => {}
                other => anyhow::bail!("replay: stage record {} was not applied ({other:?})", self.next),
            }
            self.next += 1;
        }
        Ok(())
    }
}

pub fn run(
    cfg: &Config,
    score: ScoreStage,
    partition: AggregatePartition,
    input: Box<dyn BufRead>,
    events: &mut dyn Write,
    dead: &mut dyn Write,
    opts: &Options,
) -> Result<Summary> {
    let started = std::time::Instant::now();
    let bar = opts.progress.map(|len| {
        let b = indicatif::ProgressBar::new(len);
        b.set_style(
            indicatif::ProgressStyle::with_template("{bar:40} {bytes}/{total_bytes} {binary_bytes_per_sec} eta {eta}")
                .expect("valid template"),
        );
        b
    });
    let mut m = Machines {
        score,
        partition,
        batch: ScoreBatch::default(),
        next: 0,
        counters: StageCounters::default(),
        decode_errors: 0,
        skipped: 0,
    };
    let mut input = input;
    let mut line = Vec::new();
    // The batch's lines back to back, and where each ends (with its offset).
    let (mut lines, mut ends): (Vec<u8>, Vec<(i64, usize)>) = (Vec::new(), Vec::with_capacity(BATCH));
    let mut outputs = Vec::new();
    let (mut records, mut n_events) = (0u64, 0u64);
    loop {
        line.clear();
        let n = input.read_until(b'\n', &mut line).context("reading input")?;
        if let Some(b) = &bar {
            b.inc(n as u64);
        }
        let eof = n == 0;
        if !eof {
            let mut rec = line.as_slice();
            if let Some(r) = rec.strip_suffix(b"\n") {
                rec = r.strip_suffix(b"\r").unwrap_or(r);
            }
            lines.extend_from_slice(rec);
            ends.push((records as i64, lines.len()));
            records += 1;
        }
        if ends.len() >= BATCH || (eof && !ends.is_empty()) {
            m.feed(cfg, &lines, &ends, &mut outputs, dead)?;
            (lines.clear(), ends.clear());
            write_outputs(&mut outputs, events, dead, &mut n_events)?;
        }
        if eof {
            break;
        }
    }
    if opts.flush {
        m.partition.stage.aggregator.flush(&mut outputs);
        write_outputs(&mut outputs, events, dead, &mut n_events)?;
    }
    if let Some(b) = bar {
        b.finish_and_clear();
    }
    events.flush()?;
    dead.flush()?;
    let seconds = started.elapsed().as_secs_f64();
    Ok(Summary {
        records,
        decode_errors: m.decode_errors,
        skipped_not_posts: m.skipped,
        stages: m.counters.clone(),
        aggregator: m.partition.stage.aggregator.counters.clone(),
        events: n_events,
        seconds,
        posts_per_second: m.counters.posts as f64 / seconds.max(1e-9),
    })
}
