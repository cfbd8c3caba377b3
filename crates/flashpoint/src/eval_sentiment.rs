//! `flashpoint eval-sentiment`: a scorer's quality on TweetEval's sentiment validation split.
//!
//! TweetEval's metric is macro-averaged recall over negative / neutral / positive, which does not reward a scorer
//! for calling everything neutral (the majority class). Texts go through the same normalisation as in the
//! pipeline unless `--raw`, so the figure is what a deployment gets.

use anyhow::{bail, Context, Result};
use flashpoint_core::normalize;
use flashpoint_core::sentiment::{Label, Scorer};
use std::borrow::Cow;
use std::fmt;
use std::path::Path;

pub struct Report {
    scorer: &'static str,
    n: usize,
    /// Per true class (negative, neutral, positive): (correct, total).
    per_class: [(usize, usize); 3],
    seconds: f64,
}

impl Report {
    pub fn recall(&self, c: usize) -> f64 {
        let (ok, n) = self.per_class[c];
        if n == 0 {
            0.0
        } else {
            ok as f64 / n as f64
        }
    }

    pub fn macro_recall(&self) -> f64 {
        (0..3).map(|c| self.recall(c)).sum::<f64>() / 3.0
    }

    pub fn accuracy(&self) -> f64 {
        self.per_class.iter().map(|c| c.0).sum::<usize>() as f64 / self.n.max(1) as f64
    }
}

impl fmt::Display for Report {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "scorer          {}", self.scorer)?;
        writeln!(f, "texts           {}", self.n)?;
        writeln!(f, "macro recall    {:.4}", self.macro_recall())?;
        writeln!(
            f,
            "recall          negative {:.4}  neutral {:.4}  positive {:.4}",
            self.recall(0),
            self.recall(1),
            self.recall(2)
        )?;
        writeln!(f, "accuracy        {:.4}", self.accuracy())?;
        writeln!(
            f,
            "seconds         {:.2} ({:.0} texts/s, model load and a warm-up pass excluded)",
            self.seconds,
            self.n as f64 / self.seconds.max(1e-9)
        )
    }
}

fn class(label: Label) -> usize {
    match label {
        Label::Negative => 0,
        Label::Neutral => 1,
        Label::Positive => 2,
    }
}

pub fn run(data: &Path, scorer: &dyn Scorer, raw: bool) -> Result<Report> {
    let text_path = data.join("val_text.txt");
    let label_path = data.join("val_labels.txt");
    let texts = std::fs::read_to_string(&text_path).with_context(|| format!("reading {}", text_path.display()))?;
    let labels = std::fs::read_to_string(&label_path).with_context(|| format!("reading {}", label_path.display()))?;
    let texts: Vec<&str> = texts.lines().collect();
    let labels: Vec<usize> = labels
        .lines()
        .enumerate()
        .map(|(i, l)| match l.trim() {
            "0" => Ok(0),
            "1" => Ok(1),
            "2" => Ok(2),
            other => bail!("{}:{}: label {other:?} is not 0, 1 or 2", label_path.display(), i + 1),
        })
        .collect::<Result<_>>()?;
    if texts.len() != labels.len() {
        bail!("{} has {} lines but {} has {}", text_path.display(), texts.len(), label_path.display(), labels.len());
    }
    let normalized: Vec<Cow<str>> =
        texts.iter().map(|t| if raw { Cow::Borrowed(*t) } else { normalize::for_scoring(t) }).collect();
    let inputs: Vec<&str> = normalized.iter().map(|c| c.as_ref()).collect();
    // Warm-up outside the timing, as the Python reference does: the first pass pays one-off costs (on a GPU the
    // CUDA context, cuBLAS handles and kernel loading, a large part of a 2,000-text run).
    scorer.score_batch(&inputs[..inputs.len().min(256)], &mut Vec::new()).context("scoring (warm-up)")?;
    let started = std::time::Instant::now();
    let mut out = Vec::with_capacity(inputs.len());
    // One call for the whole set: a batching scorer sorts all of it by length, as the Python reference does.
    scorer.score_batch(&inputs, &mut out).context("scoring")?;
    let seconds = started.elapsed().as_secs_f64();
    let mut per_class = [(0, 0); 3];
    for (s, &y) in out.iter().zip(&labels) {
        per_class[y].1 += 1;
        if class(s.label) == y {
            per_class[y].0 += 1;
        }
    }
    Ok(Report { scorer: scorer.name(), n: labels.len(), per_class, seconds })
}
