//! `flashpoint eval-sentiment`: a scorer's quality on TweetEval's sentiment validation split, and what the
//! language gate makes of a set.
//!
//! TweetEval's metric is macro-averaged recall over negative / neutral / positive, which does not reward a scorer
//! for calling everything neutral (the majority class). Texts go through the same normalisation as in the
//! pipeline unless `--raw`, so the figure is what a deployment gets. The headline recall scores every labelled
//! text (as published figures do); a second line gives it over the texts the language gate lets through, and
//! a table counts the set's texts per language. Everything but the timing line is deterministic.

use crate::error::{read, EvalError, Result};
use flashpoint_core::lang::{LanguageGate, Source, Verdict};
use flashpoint_core::normalize;
use flashpoint_core::sentiment::{Label, Scorer};
use std::collections::BTreeMap;
use std::fmt;
use std::path::Path;

/// An evaluation set: TweetEval's layout (a folder with `val_text.txt` and `val_labels.txt`) or JSON Lines
/// (`{"text": .., "label": "negative"|"neutral"|"positive"|0|1|2|null, "lang": ..}`; unlabelled lines only
/// count toward the language table).
pub struct Sample {
    texts: Vec<String>,
    labels: Vec<Option<usize>>,
    langs: Vec<Option<String>>,
    /// The texts as the scorer sees them.
    inputs: Vec<String>,
}

fn parse_label(v: &serde_json::Value) -> Result<Option<usize>, String> {
    Ok(match v {
        serde_json::Value::Null => None,
        serde_json::Value::String(s) => match s.as_str() {
            "negative" => Some(0),
            "neutral" => Some(1),
            "positive" => Some(2),
            other => return Err(format!("label {other:?} is not negative, neutral or positive")),
        },
        serde_json::Value::Number(n) => match n.as_u64() {
            Some(c @ 0..=2) => Some(c as usize),
            _ => return Err(format!("label {n} is not 0, 1 or 2")),
        },
        other => return Err(format!("label {other} is not a class")),
    })
}

impl Sample {
    pub fn load(data: &Path, raw: bool) -> Result<Sample> {
        let (texts, labels, langs) = if data.is_dir() { Self::tweeteval(data)? } else { Self::jsonl(data)? };
        let inputs =
            texts.iter().map(|t| if raw { t.clone() } else { normalize::for_scoring(t).into_owned() }).collect();
        Ok(Sample { texts, labels, langs, inputs })
    }

    #[allow(clippy::type_complexity)]
    fn tweeteval(data: &Path) -> Result<(Vec<String>, Vec<Option<usize>>, Vec<Option<String>>)> {
        let text_path = data.join("val_text.txt");
        let label_path = data.join("val_labels.txt");
        let texts = read(&text_path)?;
        let labels = read(&label_path)?;
        let texts: Vec<String> = texts.lines().map(str::to_string).collect();
        let labels: Vec<Option<usize>> = labels
            .lines()
            .enumerate()
            .map(|(i, l)| match l.trim() {
                "0" => Ok(Some(0)),
                "1" => Ok(Some(1)),
                "2" => Ok(Some(2)),
                other => Err(EvalError::Syntax {
                    at: format!("{}:{}", label_path.display(), i + 1),
                    msg: format!("label {other:?} is not 0, 1 or 2"),
                }),
            })
            .collect::<Result<_>>()?;
        if texts.len() != labels.len() {
            return Err(EvalError::Corpus(format!(
                "{} has {} lines but {} has {}",
                text_path.display(),
                texts.len(),
                label_path.display(),
                labels.len()
            )));
        }
        let langs = vec![None; texts.len()];
        Ok((texts, labels, langs))
    }

    #[allow(clippy::type_complexity)]
    fn jsonl(path: &Path) -> Result<(Vec<String>, Vec<Option<usize>>, Vec<Option<String>>)> {
        let body = read(path)?;
        let (mut texts, mut labels, mut langs) = (Vec::new(), Vec::new(), Vec::new());
        for (i, line) in body.lines().enumerate().filter(|(_, l)| !l.trim().is_empty()) {
            let bad = |msg: String| EvalError::Syntax { at: format!("{}:{}", path.display(), i + 1), msg };
            let v: serde_json::Value = serde_json::from_str(line).map_err(|e| bad(e.to_string()))?;
            let text = v["text"].as_str().ok_or_else(|| bad("no string `text`".into()))?;
            texts.push(text.to_string());
            labels.push(parse_label(&v["label"]).map_err(bad)?);
            langs.push(v["lang"].as_str().map(str::to_string));
        }
        Ok((texts, labels, langs))
    }

    pub fn len(&self) -> usize {
        self.texts.len()
    }

    /// The gate's decision for every text (its tag, if the set has one, and the text as scored).
    pub fn judge(&self, gate: &LanguageGate) -> Vec<Verdict> {
        self.inputs.iter().zip(&self.langs).map(|(t, l)| gate.judge(l.as_deref(), t)).collect()
    }
}

/// Texts per language, as the language gate decides them.
pub struct LanguageTable {
    gate: String,
    /// Language ("-" when assumed) -> (texts, scored, by tag, detected, assumed).
    rows: BTreeMap<String, [u64; 5]>,
}

impl LanguageTable {
    pub fn new(gate: &LanguageGate, verdicts: &[Verdict]) -> LanguageTable {
        let mut rows: BTreeMap<String, [u64; 5]> = BTreeMap::new();
        for v in verdicts {
            let key = v.lang.map(|l| l.to_string()).unwrap_or_else(|| "-".into());
            let r = rows.entry(key).or_default();
            r[0] += 1;
            r[1] += v.scored as u64;
            r[match v.source {
                Source::Tag => 2,
                Source::Detected => 3,
                Source::Assumed => 4,
            }] += 1;
        }
        let gate = if gate.is_all() {
            "* (every language)".to_string()
        } else {
            gate.languages().collect::<Vec<_>>().join(", ")
        };
        LanguageTable { gate, rows }
    }
}

impl fmt::Display for LanguageTable {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "languages scored: {} (\"-\": no tag and no evidence, read as the scorer's language)", self.gate)?;
        writeln!(f, "  language    texts   scored  unscored   by tag  detected  assumed")?;
        let mut rows: Vec<(&String, &[u64; 5])> = self.rows.iter().collect();
        // Largest first; ties by code, so the table is the same every run.
        rows.sort_by(|a, b| b.1[0].cmp(&a.1[0]).then(a.0.cmp(b.0)));
        for (lang, r) in rows {
            writeln!(
                f,
                "  {:<8} {:>8} {:>8} {:>9} {:>8} {:>9} {:>8}",
                lang,
                r[0],
                r[1],
                r[0] - r[1],
                r[2],
                r[3],
                r[4]
            )?;
        }
        Ok(())
    }
}

pub struct Report {
    scorer: String,
    n: usize,
    labelled: usize,
    /// Per true class (negative, neutral, positive): (correct, total), over every labelled text.
    per_class: [(usize, usize); 3],
    /// The same over the labelled texts the language gate scores.
    per_class_gated: [(usize, usize); 3],
    seconds: f64,
}

fn recall_of(per_class: &[(usize, usize); 3], c: usize) -> f64 {
    let (ok, n) = per_class[c];
    if n == 0 {
        0.0
    } else {
        ok as f64 / n as f64
    }
}

impl Report {
    pub fn recall(&self, c: usize) -> f64 {
        recall_of(&self.per_class, c)
    }

    pub fn macro_recall(&self) -> f64 {
        (0..3).map(|c| self.recall(c)).sum::<f64>() / 3.0
    }

    fn gated_macro_recall(&self) -> f64 {
        (0..3).map(|c| recall_of(&self.per_class_gated, c)).sum::<f64>() / 3.0
    }

    pub fn accuracy(&self) -> f64 {
        self.per_class.iter().map(|c| c.0).sum::<usize>() as f64 / self.labelled.max(1) as f64
    }
}

impl fmt::Display for Report {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "scorer          {}", self.scorer)?;
        writeln!(f, "texts           {} ({} labelled)", self.n, self.labelled)?;
        if self.labelled == 0 {
            return writeln!(f, "macro recall    - (no labelled texts)");
        }
        writeln!(f, "macro recall    {:.4}", self.macro_recall())?;
        writeln!(
            f,
            "recall          negative {:.4}  neutral {:.4}  positive {:.4}",
            self.recall(0),
            self.recall(1),
            self.recall(2)
        )?;
        writeln!(f, "accuracy        {:.4}", self.accuracy())?;
        let gated: usize = self.per_class_gated.iter().map(|c| c.1).sum();
        writeln!(
            f,
            "gated recall    {:.4} over the {} labelled texts the language gate scores ({} unscored)",
            self.gated_macro_recall(),
            gated,
            self.labelled - gated
        )?;
        writeln!(
            f,
            "seconds         {:.2} ({:.0} texts/s, model load and a warm-up pass excluded)",
            self.seconds,
            self.n as f64 / self.seconds.max(1e-9)
        )
    }
}

fn class(label: Label) -> Option<usize> {
    match label {
        Label::Negative => Some(0),
        Label::Neutral => Some(1),
        Label::Positive => Some(2),
        Label::Unscored => None,
    }
}

/// Texts of the untimed warm-up pass: enough to pay a backend's one-off costs, few enough not to matter.
const WARM_UP_TEXTS: usize = 256;

/// Scores every text of `sample` with `scorer` (the gate does not stop it: the headline figure is over all
/// labelled texts) and counts recall overall and over the texts `verdicts` marks scored.
pub fn run(sample: &Sample, verdicts: &[Verdict], scorer: &dyn Scorer, name: &str) -> Result<Report> {
    let inputs: Vec<&str> = sample.inputs.iter().map(String::as_str).collect();
    // Warm-up outside the timing, as the Python reference does: the first pass pays one-off costs (on a GPU the
    // CUDA context, cuBLAS handles and kernel loading, a large part of a 2,000-text run).
    scorer
        .score_batch(&inputs[..inputs.len().min(WARM_UP_TEXTS)], &mut Vec::new())
        .map_err(|source| EvalError::Score { what: "scoring (warm-up)", source })?;
    let started = std::time::Instant::now();
    let mut out = Vec::with_capacity(inputs.len());
    // One call for the whole set: a batching scorer sorts all of it by length, as the Python reference does.
    scorer.score_batch(&inputs, &mut out).map_err(|source| EvalError::Score { what: "scoring", source })?;
    let seconds = started.elapsed().as_secs_f64();
    let mut per_class = [(0, 0); 3];
    let mut per_class_gated = [(0, 0); 3];
    let mut labelled = 0;
    for ((s, y), v) in out.iter().zip(&sample.labels).zip(verdicts) {
        let Some(y) = *y else { continue };
        labelled += 1;
        let hit = class(s.label) == Some(y);
        per_class[y].1 += 1;
        per_class[y].0 += hit as usize;
        if v.scored {
            per_class_gated[y].1 += 1;
            per_class_gated[y].0 += hit as usize;
        }
    }
    Ok(Report { scorer: name.to_string(), n: sample.len(), labelled, per_class, per_class_gated, seconds })
}

/// One line per backend, for `--all-backends`.
pub fn summary(reports: &[Report]) -> String {
    let mut s = String::from("backend                 macro recall  negative  neutral  positive  gated recall\n");
    for r in reports {
        s.push_str(&format!(
            "{:<24}{:>12.4}{:>10.4}{:>9.4}{:>10.4}{:>14.4}\n",
            r.scorer,
            r.macro_recall(),
            r.recall(0),
            r.recall(1),
            r.recall(2),
            r.gated_macro_recall()
        ));
    }
    s
}
