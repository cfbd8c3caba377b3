//! The corpora the evaluations read: a NAB corpus folder (5-minute count series and the anomaly windows NAB
//! labelled in them) and a SemEval 2017 task 4A folder (real tweets, labelled here by the pipeline's own
//! scorer so an injected post carries the label a replay would give it).

use crate::error::{read, EvalError, Result};
use crate::time::{DAY, STEP};
use flashpoint_core::normalize::for_scoring;
use flashpoint_core::sentiment::{Label, LexiconScorer, Scorer};
use flashpoint_core::time::{parse_rfc3339, Millis};
use std::path::{Path, PathBuf};

/// One series' background: 5-minute counts and labelled windows.
pub struct Series {
    pub name: String,
    pub rows: Vec<(Millis, u64)>,
    pub windows: Vec<(Millis, Millis)>,
}

impl Series {
    /// Milliseconds inside labelled windows.
    pub(crate) fn labelled_ms(&self) -> f64 {
        self.windows.iter().map(|&(a, b)| (b - a) as f64).sum()
    }

    pub(crate) fn labelled(&self, t: Millis, margin: Millis) -> bool {
        self.windows.iter().any(|&(a, b)| t >= a - margin && t <= b + margin)
    }

    /// The robust seasonal baseline of row `i` (from day 1 on): the median of the same row ± 5 minutes over the
    /// previous seven days, or as many as there are, at least 1. What a natural surge is measured against.
    pub(crate) fn robust_baseline(&self, i: usize) -> f64 {
        let per_day = (DAY / STEP) as usize;
        let mut same: Vec<u64> = (1..=7.min(i.saturating_sub(1) / per_day))
            .flat_map(|d| self.rows[i - d * per_day - 1..=i - d * per_day + 1].iter().map(|r| r.1))
            .collect();
        same.sort_unstable();
        same.get(same.len() / 2).map_or(1.0, |&m| (m as f64).max(1.0))
    }

    /// Whether `count` posts in row `i` are a surge row: at least `ratio` × the robust baseline + 2 posts.
    pub(crate) fn surge_row(&self, i: usize, count: f64, ratio: f64) -> bool {
        count >= ratio * self.robust_baseline(i) + 2.0
    }

    /// Entity-weeks from `from` to the last row, less the labelled windows.
    pub(crate) fn weeks_unlabelled_after(&self, from: Millis) -> f64 {
        let span = (self.rows.last().map_or(from, |r| r.0) - from) as f64;
        (span - self.labelled_ms()) / (7.0 * DAY as f64)
    }
}

fn list(dir: &Path) -> Result<Vec<PathBuf>> {
    let rd = std::fs::read_dir(dir).map_err(|source| EvalError::Read { path: dir.to_path_buf(), source })?;
    let mut files: Vec<PathBuf> = rd.filter_map(|e| e.ok().map(|e| e.path())).collect();
    files.sort();
    Ok(files)
}

/// Reads one NAB series (`timestamp,value` with a header line), values rounded to counts.
pub fn read_series(path: &Path) -> Result<Vec<(Millis, u64)>> {
    let text = read(path)?;
    let mut rows = Vec::new();
    for (n, line) in text.lines().enumerate().skip(1) {
        let bad = |msg: String| EvalError::Syntax { at: format!("{}:{}", path.display(), n + 1), msg };
        let (ts, v) = line.split_once(',').ok_or_else(|| bad("expected timestamp,value".into()))?;
        let t = parse_rfc3339(ts).ok_or_else(|| bad(format!("bad timestamp {ts}")))?;
        let v: f64 = v.trim().parse().map_err(|e| bad(format!("bad value: {e}")))?;
        rows.push((t, v.max(0.0).round() as u64));
    }
    Ok(rows)
}

/// A NAB series file and the windows NAB labelled in it.
pub type LabelledFile = (PathBuf, Vec<(Millis, Millis)>);

/// The labelled series of a NAB corpus folder: each `data/*.csv` with its windows in `combined_windows.json`.
pub fn nab_corpus(dir: &Path) -> Result<Vec<LabelledFile>> {
    let wpath = dir.join("combined_windows.json");
    let wtext = read(&wpath)?;
    let bad = |msg: String| EvalError::Syntax { at: wpath.display().to_string(), msg };
    let all: serde_json::Map<String, serde_json::Value> =
        serde_json::from_str(&wtext).map_err(|e| bad(format!("parsing: {e}")))?;
    let mut out = Vec::new();
    for path in list(&dir.join("data"))?.into_iter().filter(|p| p.extension().is_some_and(|e| e == "csv")) {
        let fname = file_name(&path);
        let Some((_, wins)) = all.iter().find(|(k, _)| k.ends_with(&format!("/{fname}"))) else { continue };
        let windows: Vec<(Millis, Millis)> = wins
            .as_array()
            .ok_or_else(|| bad(format!("{fname}: expected a list of windows")))?
            .iter()
            .map(|w| {
                // NAB writes microseconds; the bounds are read to the second.
                let a = w[0].as_str().and_then(|s| parse_rfc3339(&s[..19.min(s.len())]));
                let b = w[1].as_str().and_then(|s| parse_rfc3339(&s[..19.min(s.len())]));
                a.zip(b).ok_or_else(|| bad(format!("{fname}: bad window bounds {w}")))
            })
            .collect::<Result<_>>()?;
        out.push((path, windows));
    }
    if out.is_empty() {
        return Err(EvalError::Corpus(format!("no labelled series found under {}", dir.display())));
    }
    Ok(out)
}

pub(crate) fn file_name(path: &Path) -> String {
    path.file_name().map(|n| n.to_string_lossy().to_string()).unwrap_or_default()
}

/// Every labelled series of a NAB corpus folder, read.
pub fn load_series(nab: &Path) -> Result<Vec<Series>> {
    let mut out = Vec::new();
    for (path, windows) in nab_corpus(nab)? {
        out.push(Series { name: file_name(&path), rows: read_series(&path)?, windows });
    }
    Ok(out)
}

/// A pool of real texts, split by the pipeline's label.
pub struct Texts {
    pub negative: Vec<(String, f64)>,
    pub other: Vec<(String, f64, Label)>,
    /// Share of gold-negative tweets in the corpus: the background's negative share.
    pub gold_negative_share: f64,
}

/// Reads `twitter-*.txt` of a SemEval 2017 task 4A folder (`id \t label \t text`) and labels each text with
/// VADER (normalised as the pipeline does).
pub fn load_texts(dir: &Path, scorer: &LexiconScorer) -> Result<Texts> {
    let files: Vec<PathBuf> = list(dir)?
        .into_iter()
        .filter(|p| p.file_name().is_some_and(|n| n.to_string_lossy().starts_with("twitter-")))
        .collect();
    let mut seen = std::collections::HashSet::new();
    let (mut texts, mut gold_neg) = (Vec::new(), 0usize);
    for f in &files {
        let body = read(f)?;
        for line in body.lines() {
            let mut it = line.splitn(3, '\t');
            let (Some(id), Some(label), Some(text)) = (it.next(), it.next(), it.next()) else { continue };
            if !matches!(label, "positive" | "negative" | "neutral") || !seen.insert(id.to_string()) {
                continue;
            }
            gold_neg += usize::from(label == "negative");
            texts.push(text.trim_end_matches('\t').to_string());
        }
    }
    // Fewer than this and the draws would repeat a handful of texts: not the corpus asked for.
    const MIN_TEXTS: usize = 1000;
    if texts.len() < MIN_TEXTS {
        return Err(EvalError::Corpus(format!(
            "{}: found {} labelled tweets, expected a SemEval 2017 task 4A folder",
            dir.display(),
            texts.len()
        )));
    }
    let norm: Vec<String> = texts.iter().map(|t| for_scoring(t).into_owned()).collect();
    let refs: Vec<&str> = norm.iter().map(String::as_str).collect();
    let mut scores = Vec::new();
    scorer.score_batch(&refs, &mut scores).map_err(|source| EvalError::Score { what: "scoring the texts", source })?;
    let gold_negative_share = gold_neg as f64 / texts.len() as f64;
    let (mut negative, mut other) = (Vec::new(), Vec::new());
    for (t, s) in texts.into_iter().zip(scores) {
        if s.label == Label::Negative {
            negative.push((t, s.compound));
        } else {
            other.push((t, s.compound, s.label));
        }
    }
    Ok(Texts { negative, other, gold_negative_share })
}
