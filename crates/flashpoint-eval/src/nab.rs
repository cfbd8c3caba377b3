//! `flashpoint eval-nab`: scores the spike detector on Numenta Anomaly Benchmark series.
//!
//! Each 5-minute count becomes that many posts mentioning one entity, spread evenly over the 5 minutes; the
//! posts are replayed through the real pipeline (5-minute tumbling windows aligned with the series) and each
//! `opened` event's window end is a detection at the first row at or after it. Detections are scored with
//! NAB's standard profile: the earliest detection inside a labelled window earns a scaled sigmoid of its
//! position, windows without one cost `fnWeight`, detections outside windows cost `fpWeight` scaled by their
//! distance after the previous window, and rows in the probationary period (the first 15%, at most 750
//! rows) are ignored. Normalised scores are 100 * (raw - null) / (perfect - null), as NAB reports them.

use crate::corpus::{file_name, nab_corpus, read_series};
use crate::error::{EvalError, Result};
use crate::time::STEP;
use flashpoint_core::aggregate::AggregatorConfig;
use flashpoint_core::entity::EntityConfig;
use flashpoint_core::event::{EventKind, Output};
use flashpoint_core::pipeline::Pipeline;
use flashpoint_core::post::Post;
use flashpoint_core::sentiment::{LabelThresholds, LexiconScorer};
use flashpoint_core::time::{format_rfc3339, Millis};
use std::path::Path;

pub struct Costs {
    pub tp: f64,
    pub fp: f64,
    pub fn_: f64,
}

pub const STANDARD: Costs = Costs { tp: 1.0, fp: 0.11, fn_: 1.0 };

fn scaled_sigmoid(y: f64) -> f64 {
    if y > 3.0 {
        -1.0
    } else {
        2.0 / (1.0 + (5.0 * y).exp()) - 1.0
    }
}

#[derive(Debug, serde::Serialize)]
pub struct SeriesScore {
    pub series: String,
    pub rows: usize,
    pub windows: usize,
    pub detected_windows: usize,
    pub false_positives: usize,
    pub raw: f64,
    pub normalized: f64,
    pub detections: Vec<String>,
}

/// NAB's sweep for binary detections: `det` are row indices, `windows` inclusive row ranges.
pub fn nab_score(n_rows: usize, det: &[usize], windows: &[(usize, usize)], c: &Costs) -> (f64, usize, usize) {
    let probation = ((0.15 * n_rows as f64).floor() as usize).min(750);
    let max_tp = scaled_sigmoid(-1.0);
    let mut dets: Vec<usize> = det.iter().copied().filter(|&i| i >= probation).collect();
    dets.sort_unstable();
    dets.dedup();
    let mut raw = 0.0;
    let mut detected = vec![false; windows.len()];
    let mut fps = 0;
    for i in dets {
        match windows.iter().position(|&(l, r)| l <= i && i <= r) {
            Some(w) => {
                if detected[w] {
                    continue;
                }
                let (l, r) = windows[w];
                let width = (r - l + 1) as f64;
                let pos = -((r - i + 1) as f64) / width;
                raw += scaled_sigmoid(pos) * c.tp / max_tp;
                detected[w] = true;
            }
            None => {
                fps += 1;
                let prev = windows.iter().rev().find(|&&(_, r)| r < i);
                let u = match prev {
                    None => -1.0,
                    Some(&(l, r)) => scaled_sigmoid((i - r) as f64 / (r - l) as f64),
                };
                raw += u * c.fp;
            }
        }
    }
    let hits = detected.iter().filter(|d| **d).count();
    raw -= c.fn_ * (windows.len() - hits) as f64;
    (raw, hits, fps)
}

/// Moves the window ends of `opened` events out of `out` (the detection times), with what fired.
fn collect_opened(out: &mut Vec<Output>, ends: &mut Vec<(Millis, String)>) -> Result<()> {
    for o in out.drain(..) {
        if let Output::Spike(e) = o {
            if e.kind == EventKind::Opened {
                let why = format!("{} {} vs {} (score {})", e.signal.as_str(), e.observed, e.baseline, e.score);
                ends.push((e.window_end, why));
            }
        }
    }
    Ok(())
}

/// Posts per call into the pipeline: large enough that scoring is batched, small enough to bound memory.
const BATCH: usize = 4096;

/// Replays one series through the pipeline (5-minute tumbling windows aligned with it) and scores the
/// `opened` events against its labelled windows.
pub fn evaluate_series(
    name: &str,
    rows: &[(Millis, u64)],
    windows: &[(Millis, Millis)],
    cfg: &AggregatorConfig,
    thresholds: LabelThresholds,
) -> Result<SeriesScore> {
    let mut cfg = cfg.clone();
    let first = rows.first().ok_or_else(|| EvalError::Corpus(format!("{name}: empty series")))?.0;
    cfg.window.size_secs = (STEP / 1000) as u64;
    cfg.window.slide_secs = (STEP / 1000) as u64;
    cfg.window.offset_secs = (first.rem_euclid(STEP) / 1000) as u64;
    let entities = [EntityConfig {
        name: "ticker".into(),
        terms: vec!["ticker".into()],
        handles: vec![],
        hashtags: vec![],
        exclude: vec![],
        ..EntityConfig::default()
    }];
    let mut pipe =
        Pipeline::new(Box::new(LexiconScorer::new(thresholds)), &entities, &cfg).map_err(EvalError::Config)?;
    let scoring = |source| EvalError::Score { what: "scoring", source };
    let mut out = Vec::new();
    let mut batch = Vec::with_capacity(BATCH);
    let mut ends = Vec::new();
    let mut id = 0u64;
    for &(t, count) in rows {
        for j in 0..count {
            batch.push(Post {
                id: id.to_string(),
                text: "people talking about the ticker today".into(),
                created_at: t + (j as i64 * STEP) / count as i64,
                author: None,
                followers: None,
                lang: None,
                url: None,
                author_url: None,
                platform: None,
            });
            id += 1;
        }
        if batch.len() >= BATCH {
            pipe.process_batch(std::mem::take(&mut batch), &mut out).map_err(scoring)?;
        }
        collect_opened(&mut out, &mut ends)?;
    }
    pipe.process_batch(batch, &mut out).map_err(scoring)?;
    pipe.aggregator().flush(&mut out);
    collect_opened(&mut out, &mut ends)?;
    let row_at = |t: Millis| rows.partition_point(|r| r.0 < t);
    let det: Vec<usize> = ends.iter().map(|&(t, _)| row_at(t)).filter(|&i| i < rows.len()).collect();
    let win_rows: Vec<(usize, usize)> = windows
        .iter()
        .filter_map(|&(a, b)| {
            let l = row_at(a);
            let r = rows.partition_point(|x| x.0 <= b);
            (r > l).then(|| (l, r - 1))
        })
        .collect();
    let (raw, hits, fps) = nab_score(rows.len(), &det, &win_rows, &STANDARD);
    let w = win_rows.len() as f64;
    Ok(SeriesScore {
        series: name.to_string(),
        rows: rows.len(),
        windows: win_rows.len(),
        detected_windows: hits,
        false_positives: fps,
        raw,
        normalized: if w > 0.0 { 100.0 * (raw + w * STANDARD.fn_) / (w * STANDARD.tp + w * STANDARD.fn_) } else { 0.0 },
        detections: ends.iter().map(|(t, why)| format!("{} {why}", format_rfc3339(*t))).collect(),
    })
}

/// Evaluates every `data/*.csv` of a NAB corpus folder that has labelled windows; returns each series' score
/// and the corpus's normalised total.
pub fn run(dir: &Path, cfg: &AggregatorConfig, thresholds: LabelThresholds) -> Result<(Vec<SeriesScore>, f64)> {
    let mut scores = Vec::new();
    for (path, windows) in nab_corpus(dir)? {
        let rows = read_series(&path)?;
        scores.push(evaluate_series(&file_name(&path), &rows, &windows, cfg, thresholds)?);
    }
    let raw: f64 = scores.iter().map(|s| s.raw).sum();
    let w: f64 = scores.iter().map(|s| s.windows as f64).sum();
    Ok((scores, 100.0 * (raw + w) / (2.0 * w)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nab_scoring_rules() {
        // 1000 rows: probation is 150 rows; one window [400, 499].
        let w = [(400, 499)];
        let (raw, hits, fps) = nab_score(1000, &[], &w, &STANDARD);
        assert_eq!((raw, hits, fps), (-1.0, 0, 0));
        // Detection at the window start earns ~1; a second one in the window is ignored.
        let (raw, hits, _) = nab_score(1000, &[400, 450], &w, &STANDARD);
        assert!((raw - 1.0).abs() < 1e-9 && hits == 1, "{raw}");
        // Detection at the window end earns ~0 (scaledSigmoid(-1/100) / maxTP).
        let (raw, _, _) = nab_score(1000, &[499], &w, &STANDARD);
        assert!(raw > 0.0 && raw < 0.05, "{raw}");
        // A false positive before any window costs the full fpWeight; one in probation costs nothing.
        let (raw, _, fps) = nab_score(1000, &[100, 200, 400], &w, &STANDARD);
        assert!((raw - (1.0 - 0.11)).abs() < 1e-9 && fps == 1, "{raw}");
    }
}
