//! `flashpoint replay`: the whole pipeline over a JSON Lines file, as fast as it can go in event time.
//!
//! The embedded default that needs no broker: the same decoder, matcher, scorer, windows and detector as the
//! Kafka worker, so a replay of a topic's records produces the events the worker would have produced.
//! Records that cannot be decoded and posts diverted by the watermark go to the dead-letter output with
//! their reason; nothing is dropped silently.

use crate::config::Config;
use anyhow::{Context, Result};
use flashpoint_core::event::Output;
use flashpoint_core::pipeline::Pipeline;
use flashpoint_core::post::Post;
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
    pub stages: flashpoint_core::pipeline::StageCounters,
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

pub fn run(
    cfg: &Config,
    pipeline: &mut Pipeline,
    input: Box<dyn BufRead>,
    events: &mut dyn Write,
    dead: &mut dyn Write,
    opts: &Options,
) -> Result<Summary> {
    let decoder = cfg.input.decoder();
    let started = std::time::Instant::now();
    let bar = opts.progress.map(|len| {
        let b = indicatif::ProgressBar::new(len);
        b.set_style(
            indicatif::ProgressStyle::with_template("{bar:40} {bytes}/{total_bytes} {binary_bytes_per_sec} eta {eta}")
                .expect("valid template"),
        );
        b
    });
    let mut input = input;
    let mut line = Vec::new();
    let mut batch: Vec<Post> = Vec::with_capacity(BATCH);
    let mut outputs = Vec::new();
    let (mut records, mut errors, mut skipped, mut n_events) = (0u64, 0u64, 0u64, 0u64);
    loop {
        line.clear();
        let n = input.read_until(b'\n', &mut line).context("reading input")?;
        if let Some(b) = &bar {
            b.inc(n as u64);
        }
        let eof = n == 0;
        if !eof {
            records += 1;
            let mut rec = line.as_slice();
            if let Some(r) = rec.strip_suffix(b"\n") {
                rec = r.strip_suffix(b"\r").unwrap_or(r);
            }
            match decoder.decode(rec) {
                Ok(posts) if posts.is_empty() => skipped += 1,
                Ok(posts) => batch.extend(posts),
                Err(e) => {
                    errors += 1;
                    let shown = String::from_utf8_lossy(&rec[..rec.len().min(64 * 1024)]);
                    let dl = serde_json::json!({"reason": e.reason(), "error": e.to_string(), "line": records, "record": shown});
                    sanitize::to_json_writer(&mut *dead, &dl)?;
                    dead.write_all(b"\n")?;
                }
            }
        }
        if batch.len() >= BATCH || (eof && !batch.is_empty()) {
            pipeline.process_batch(&batch, &mut outputs).context("scoring")?;
            batch.clear();
            write_outputs(&mut outputs, events, dead, &mut n_events)?;
        }
        if eof {
            break;
        }
    }
    if opts.flush {
        pipeline.aggregator.flush(&mut outputs);
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
        decode_errors: errors,
        skipped_not_posts: skipped,
        stages: pipeline.counters.clone(),
        aggregator: pipeline.aggregator.counters.clone(),
        events: n_events,
        seconds,
        posts_per_second: pipeline.counters.posts as f64 / seconds.max(1e-9),
    })
}
