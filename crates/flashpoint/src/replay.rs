//! `flashpoint replay`: the whole pipeline over a JSON Lines file, as fast as it can go in event time.
//!
//! The embedded default that needs no broker: the same decoder, matcher, scorer, windows and detector as the
//! Kafka worker, so a replay of a topic's records produces the events the worker would have produced.
//! Records that cannot be decoded and posts diverted by the watermark go to the dead-letter output with
//! their reason; nothing is dropped silently.

use crate::config::Config;
use anyhow::{Context, Result};
use flashpoint_core::event::Output;
use flashpoint_core::partition::SourceRecord;
use flashpoint_core::pipeline::{Pipeline, StageCounters};
use flashpoint_core::post::Decoder;
use flashpoint_core::reject::DeadLetter;
use flashpoint_core::sanitize;
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
                sanitize::write_json_line(events, &e)?;
                *n_events += 1;
            }
            Output::Diverted(d) => {
                sanitize::write_json_line(dead, &d)?;
            }
        }
    }
    Ok(())
}

/// Feeds a batch of lines (line n is offset n - 1 of a one-partition source) to the pipeline and writes a dead
/// letter for each record it rejected.
fn feed(
    p: &mut Pipeline,
    decoder: &Decoder,
    lines: &[u8],
    ends: &[(i64, usize)],
    outputs: &mut Vec<Output>,
    dead: &mut dyn Write,
    tally: &mut (u64, u64),
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
    let b = p.feed(decoder, &sources, outputs);
    tally.1 += b.skipped;
    for r in &b.rejected {
        tally.0 += 1;
        let src = &sources[r.record];
        DeadLetter::new(r.rejection, &r.detail, src.offset as u64 + 1, src.payload).write_line(dead)?;
    }
    Ok(())
}

pub fn run(
    cfg: &Config,
    mut pipeline: Pipeline,
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
    let decoder = cfg.input.decoder();
    // (records dead-lettered, records holding no post)
    let mut tally = (0u64, 0u64);
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
            feed(&mut pipeline, &decoder, &lines, &ends, &mut outputs, dead, &mut tally)?;
            (lines.clear(), ends.clear());
            write_outputs(&mut outputs, events, dead, &mut n_events)?;
        }
        if eof {
            break;
        }
    }
    if opts.flush {
        pipeline.aggregator().flush(&mut outputs);
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
        decode_errors: tally.0,
        skipped_not_posts: tally.1,
        stages: pipeline.counters.clone(),
        aggregator: pipeline.aggregator().counters.clone(),
        events: n_events,
        seconds,
        posts_per_second: pipeline.counters.posts as f64 / seconds.max(1e-9),
    })
}
