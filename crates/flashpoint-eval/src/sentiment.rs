//! `flashpoint eval-sentiment`: a scorer's quality on TweetEval's sentiment validation split, a SemEval file or
//! a brand-relative set, and what the language gate makes of a set.
//!
//! TweetEval's metric is macro-averaged recall over negative / neutral / positive, which does not reward a scorer
//! for calling everything neutral (the majority class). Texts go through the same normalisation as in the
//! pipeline unless `--raw`, so the figure is what a deployment gets. The headline recall scores every labelled
//! text (as published figures do); a second line gives it over the texts the language gate lets through, and
//! a table counts the set's texts per language. Precision and the negative share (predicted against labelled,
//! over the set and per day where the texts carry tweet ids) are printed because the detector reads the share:
//! a scorer that calls ordinary tweets negative inflates it. Everything but the timing line is deterministic.

use crate::error::{read, EvalError, Result};
use crate::time::DAY;
use flashpoint_core::lang::{LanguageGate, Source, Verdict};
use flashpoint_core::normalize;
use flashpoint_core::sentiment::{Label, Scorer};
use std::collections::BTreeMap;
use std::fmt;
use std::path::Path;

/// An evaluation set: TweetEval's layout (a folder with `val_text.txt` and `val_labels.txt`), a SemEval Twitter
/// file (`.txt`/`.tsv`: `id \t label \t text`), or JSON Lines (`{"text": .., "label":
/// "negative"|"neutral"|"positive"|0|1|2|null, "lang": ..}`; unlabelled lines only count toward the language
/// table).
pub struct Sample {
    texts: Vec<String>,
    labels: Vec<Option<usize>>,
    langs: Vec<Option<String>>,
    /// The UTC day (days since the epoch) a text was posted, where its id is a tweet's snowflake id.
    days: Vec<Option<i64>>,
    /// The texts as the scorer sees them.
    inputs: Vec<String>,
}

/// A set as read, before normalisation.
#[derive(Default)]
struct Parts {
    texts: Vec<String>,
    labels: Vec<Option<usize>>,
    langs: Vec<Option<String>>,
    days: Vec<Option<i64>>,
}

/// Which part of a brand-relative row's tweet is scored.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BrandScope {
    /// The whole tweet, as the pipeline scores it.
    Tweet,
    /// Only the sentence that names the brand (the whole tweet when no sentence does): the simple treatment
    /// for "stuck in the snow but @united crew were great", where the rest of the tweet is about something else.
    Sentence,
}

/// Twitter's snowflake ids (from November 2010) carry their millisecond time above bit 22, after this epoch.
const SNOWFLAKE_EPOCH_MS: i64 = 1_288_834_974_657;

fn day_of_tweet_id(id: u64) -> Option<i64> {
    // Older sequential ids are below 2^32 and carry no time.
    (id > 1 << 32).then(|| ((id >> 22) as i64 + SNOWFLAKE_EPOCH_MS).div_euclid(DAY))
}

/// The 2013 SemEval files carry `\uXXXX` escapes literally.
fn unescape_u(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(at) = rest.find("\\u") {
        out.push_str(&rest[..at]);
        let hex = rest.get(at + 2..at + 6);
        match hex.and_then(|h| u32::from_str_radix(h, 16).ok()).and_then(char::from_u32) {
            Some(c) => {
                out.push(c);
                rest = &rest[at + 6..];
            }
            None => {
                out.push_str("\\u");
                rest = &rest[at + 2..];
            }
        }
    }
    out.push_str(rest);
    out
}

/// The sentence of `text` holding `mention` (sentences end at `.`, `!`, `?` or a line break).
fn sentence_of<'a>(text: &'a str, mention: &str) -> &'a str {
    let Some(at) = text.find(mention) else { return text };
    let is_end = |c: char| matches!(c, '.' | '!' | '?' | '\n');
    let start = text[..at].rfind(is_end).map_or(0, |i| i + 1);
    let end = text[at + mention.len()..].find(is_end).map_or(text.len(), |i| at + mention.len() + i + 1);
    text[start..end].trim()
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
        let parts = if data.is_dir() {
            Self::tweeteval(data)?
        } else if matches!(data.extension().and_then(|e| e.to_str()), Some("txt" | "tsv")) {
            Self::semeval(data)?
        } else {
            Self::jsonl(data)?
        };
        Ok(Self::from_parts(parts, raw))
    }

    fn from_parts(p: Parts, raw: bool) -> Sample {
        let inputs =
            p.texts.iter().map(|t| if raw { t.clone() } else { normalize::for_scoring(t).into_owned() }).collect();
        Sample { texts: p.texts, labels: p.labels, langs: p.langs, days: p.days, inputs }
    }

    /// A brand-relative set: rows of `brands` (a TSV with a header naming at least `line`, `mention` and
    /// `label`) point at lines of TweetEval's validation texts in `data` and label the tweet's sentiment toward
    /// the brand it names, so the texts themselves are never copied into the set.
    pub fn brands(data: &Path, brands: &Path, raw: bool, scope: BrandScope) -> Result<Sample> {
        let tweets = Self::tweeteval(data)?.texts;
        let body = read(brands)?;
        let mut lines = body.lines().enumerate().filter(|(_, l)| !l.trim().is_empty());
        let header: Vec<&str> = lines.next().map(|(_, h)| h.split('\t').collect()).unwrap_or_default();
        let col = |name: &str| {
            header.iter().position(|h| *h == name).ok_or_else(|| EvalError::Syntax {
                at: format!("{}:1", brands.display()),
                msg: format!("the header names no `{name}` column"),
            })
        };
        let (c_line, c_mention, c_label) = (col("line")?, col("mention")?, col("label")?);
        let mut parts = Parts::default();
        for (i, row) in lines {
            let bad = |msg: String| EvalError::Syntax { at: format!("{}:{}", brands.display(), i + 1), msg };
            let f: Vec<&str> = row.split('\t').collect();
            let field = |c: usize| f.get(c).copied().ok_or_else(|| bad(format!("no column {}", c + 1)));
            let line: usize = field(c_line)?.parse().map_err(|_| bad("`line` is not a number".into()))?;
            let tweet = tweets
                .get(line.wrapping_sub(1))
                .ok_or_else(|| bad(format!("line {line} is not in {}", data.display())))?;
            let mention = field(c_mention)?;
            if !tweet.contains(mention) {
                return Err(bad(format!("{mention:?} is not in line {line}")));
            }
            let label = parse_label(&serde_json::Value::String(field(c_label)?.to_string())).map_err(bad)?;
            parts.texts.push(match scope {
                BrandScope::Tweet => tweet.clone(),
                BrandScope::Sentence => sentence_of(tweet, mention).to_string(),
            });
            parts.labels.push(label);
            parts.langs.push(None);
            parts.days.push(None);
        }
        Ok(Self::from_parts(parts, raw))
    }

    fn semeval(path: &Path) -> Result<Parts> {
        let body = read(path)?;
        let mut parts = Parts::default();
        for (i, line) in body.lines().enumerate() {
            let f: Vec<&str> = line.split('\t').collect();
            let id = f.first().and_then(|id| id.parse::<u64>().ok());
            let label = f.get(1).and_then(|l| parse_label(&serde_json::Value::String(l.to_string())).ok());
            match (id, label, f.get(2)) {
                (Some(id), Some(label), Some(text)) => {
                    parts.texts.push(unescape_u(text));
                    parts.labels.push(label);
                    parts.langs.push(None);
                    parts.days.push(day_of_tweet_id(id));
                }
                // The 2016 test file has one record with a line break in its text.
                _ if !parts.texts.is_empty() && !line.trim().is_empty() => {
                    let last = parts.texts.last_mut().expect("not empty");
                    last.push(' ');
                    last.push_str(&unescape_u(line));
                }
                _ if line.trim().is_empty() => {}
                _ => {
                    return Err(EvalError::Syntax {
                        at: format!("{}:{}", path.display(), i + 1),
                        msg: "not `id \\t negative|neutral|positive \\t text`".into(),
                    })
                }
            }
        }
        Ok(parts)
    }

    fn tweeteval(data: &Path) -> Result<Parts> {
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
        let days = vec![None; texts.len()];
        Ok(Parts { texts, labels, langs, days })
    }

    fn jsonl(path: &Path) -> Result<Parts> {
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
        let days = vec![None; texts.len()];
        Ok(Parts { texts, labels, langs, days })
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
    /// Labelled texts per predicted class (precision's denominator).
    predicted: [usize; 3],
    /// Per UTC day: (labelled texts, predicted negative, labelled negative).
    days: BTreeMap<i64, (usize, usize, usize)>,
    seconds: f64,
}

/// Days with fewer labelled texts than this are left out of the per-day negative share: its noise would hide
/// the scorer's bias.
const MIN_TEXTS_PER_DAY: usize = 200;

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

    /// Of the texts predicted class `c`, the share that are `c`.
    pub fn precision(&self, c: usize) -> f64 {
        self.per_class[c].0 as f64 / self.predicted[c].max(1) as f64
    }

    /// The negative share predicted and labelled, over the labelled texts.
    pub fn negative_share(&self) -> (f64, f64) {
        let n = self.labelled.max(1) as f64;
        (self.predicted[0] as f64 / n, self.per_class[0].1 as f64 / n)
    }

    /// Predicted minus labelled negative share on each day with at least `MIN_TEXTS_PER_DAY` texts, and the
    /// day's texts.
    pub fn daily_share_excess(&self) -> Vec<(i64, usize, f64)> {
        self.days
            .iter()
            .filter(|(_, d)| d.0 >= MIN_TEXTS_PER_DAY)
            .map(|(day, &(n, pred, truth))| (*day, n, (pred as f64 - truth as f64) / n as f64))
            .collect()
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
        writeln!(
            f,
            "precision       negative {:.4}  neutral {:.4}  positive {:.4}",
            self.precision(0),
            self.precision(1),
            self.precision(2)
        )?;
        writeln!(f, "accuracy        {:.4}", self.accuracy())?;
        let (pred, truth) = self.negative_share();
        writeln!(f, "negative share  predicted {pred:.4}  labelled {truth:.4}  excess {:+.4}", pred - truth)?;
        let daily = self.daily_share_excess();
        if let Some(big) = daily.iter().max_by_key(|d| (d.1, std::cmp::Reverse(d.0))) {
            let mean = daily.iter().map(|d| d.2).sum::<f64>() / daily.len() as f64;
            let (lo, hi) = daily.iter().fold((f64::MAX, f64::MIN), |(lo, hi), d| (lo.min(d.2), hi.max(d.2)));
            writeln!(
                f,
                "per day         {} days with ≥ {MIN_TEXTS_PER_DAY} texts: excess mean {mean:+.4}, from {lo:+.4} to \
                 {hi:+.4}; the largest day, {} ({} texts): {:+.4}",
                daily.len(),
                &flashpoint_core::time::format_rfc3339(big.0 * DAY)[..10],
                big.1,
                big.2
            )?;
        }
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
    let mut predicted = [0; 3];
    let mut days: BTreeMap<i64, (usize, usize, usize)> = BTreeMap::new();
    let mut labelled = 0;
    for (((s, y), v), day) in out.iter().zip(&sample.labels).zip(verdicts).zip(&sample.days) {
        let Some(y) = *y else { continue };
        labelled += 1;
        let hit = class(s.label) == Some(y);
        per_class[y].1 += 1;
        per_class[y].0 += hit as usize;
        if let Some(c) = class(s.label) {
            predicted[c] += 1;
        }
        if let Some(day) = day {
            let d = days.entry(*day).or_default();
            d.0 += 1;
            d.1 += (class(s.label) == Some(0)) as usize;
            d.2 += (y == 0) as usize;
        }
        if v.scored {
            per_class_gated[y].1 += 1;
            per_class_gated[y].0 += hit as usize;
        }
    }
    Ok(Report {
        scorer: name.to_string(),
        n: sample.len(),
        labelled,
        per_class,
        per_class_gated,
        predicted,
        days,
        seconds,
    })
}

/// One line per backend, for `--all-backends`.
pub fn summary(reports: &[Report]) -> String {
    let mut s = String::from(
        "backend                 macro recall  negative  neutral  positive  gated recall   precision neg / neu / pos  \
         neg share excess\n",
    );
    for r in reports {
        let (pred, truth) = r.negative_share();
        s.push_str(&format!(
            "{:<24}{:>12.4}{:>10.4}{:>9.4}{:>10.4}{:>14.4}   {:>6.4} / {:.4} / {:.4}  {:>+16.4}\n",
            r.scorer,
            r.macro_recall(),
            r.recall(0),
            r.recall(1),
            r.recall(2),
            r.gated_macro_recall(),
            r.precision(0),
            r.precision(1),
            r.precision(2),
            pred - truth
        ));
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn snowflake_ids_carry_their_day_and_old_ids_none() {
        // 2015-08-31T12:34:56Z as a snowflake id; the sequential ids of 2009 carry no time.
        let ms: i64 = 1_441_024_496_000;
        let id = ((ms - SNOWFLAKE_EPOCH_MS) as u64) << 22 | 12345;
        assert_eq!(day_of_tweet_id(id), Some(ms.div_euclid(DAY)));
        assert_eq!(&flashpoint_core::time::format_rfc3339(day_of_tweet_id(id).unwrap() * DAY)[..10], "2015-08-31");
        assert_eq!(day_of_tweet_id(2_345_678_901), None);
    }

    #[test]
    fn literal_u_escapes_are_decoded_and_broken_ones_kept() {
        assert_eq!(unescape_u(r"it\u2019s \u002c fine"), "it’s , fine");
        assert_eq!(unescape_u(r"C:\users \u12"), r"C:\users \u12");
    }

    #[test]
    fn the_sentence_naming_the_brand_is_scored_alone() {
        let t = "Stuck in the snow for 6 hours. But the @united crew were great! Never again this airport";
        assert_eq!(sentence_of(t, "@united"), "But the @united crew were great!");
        assert_eq!(sentence_of("no brand here", "@united"), "no brand here");
        assert_eq!(sentence_of("@united at the end", "@united"), "@united at the end");
    }

    fn write(name: &str, body: &str) -> std::path::PathBuf {
        let dir = std::env::temp_dir().join(format!("fp-eval-sentiment-{}-{name}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let p = dir.join(name);
        std::fs::write(&p, body).unwrap();
        p
    }

    #[test]
    fn semeval_files_read_with_their_quirks() {
        let p = write(
            "semeval.txt",
            "641234567890123456\tnegative\tdelayed again \\u2019\t\n\
             641234567890123457\tneutral\ta tweet\nwith a line break\n\
             641234567890123458\tpositive\tlove it\n",
        );
        let s = Sample::load(&p, true).unwrap();
        assert_eq!(s.texts, ["delayed again ’", "a tweet with a line break", "love it"]);
        assert_eq!(s.labels, [Some(0), Some(1), Some(2)]);
        assert!(s.days.iter().all(|d| d.is_some()));
        let bad = write("bad.tsv", "not a record\n");
        assert!(matches!(Sample::load(&bad, true), Err(EvalError::Syntax { .. })));
    }

    #[test]
    fn brand_rows_relabel_tweeteval_lines_and_refuse_a_missing_mention() {
        let dir = write("val_text.txt", "my day was awful, watching Netflix. @Netflix is the best\nplain\n");
        let dir = dir.parent().unwrap();
        std::fs::write(dir.join("val_labels.txt"), "0\n1\n").unwrap();
        let rows = write("brands.tsv", "line\tbrand\tmention\tlabel\n1\tnetflix\t@Netflix\tpositive\n");
        let s = Sample::brands(dir, &rows, true, BrandScope::Tweet).unwrap();
        assert_eq!(s.labels, [Some(2)]);
        assert_eq!(s.inputs[0], "my day was awful, watching Netflix. @Netflix is the best");
        let s = Sample::brands(dir, &rows, true, BrandScope::Sentence).unwrap();
        assert_eq!(s.inputs[0], "@Netflix is the best");
        let missing = write("missing.tsv", "line\tmention\tlabel\n2\t@Netflix\tneutral\n");
        let err = Sample::brands(dir, &missing, true, BrandScope::Tweet).err().unwrap().to_string();
        assert!(err.contains("not in line 2"), "{err}");
        let out_of_range = write("range.tsv", "line\tmention\tlabel\n3\tx\tneutral\n");
        assert!(Sample::brands(dir, &out_of_range, true, BrandScope::Tweet).is_err());
    }
}
