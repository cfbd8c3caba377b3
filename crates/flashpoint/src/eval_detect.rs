//! `flashpoint eval-detect`: how well detection keeps its promise (warn early, do not cry wolf) on real
//! backgrounds, with seeded, deterministic injections.
//!
//! 1. NAB standard score on a NAB corpus folder (`eval_nab`), one configuration for all series.
//! 2. Backgrounds: each NAB series' 5-minute counts expanded into posts (at seeded uniform times in the row),
//!    each post a real labelled tweet drawn from a SemEval folder so that the negative share is the corpus's
//!    own (its share of gold-negative tweets); the pipeline's label of a post is its VADER label, as in a
//!    replay. Posts go straight into the aggregator with the configured windows (matching and scoring are
//!    tested elsewhere and would only cost time).
//! 3. False alarms per entity-week: `opened` events on the un-injected backgrounds, outside NAB's labelled
//!    windows (those are real anomalies) and after the warm-up; beside them, the natural surges the
//!    backgrounds hold (`natural_surge_runs`, `NATURAL`) and what each false alarm opened on (`alarm_causes`).
//! 4. Injections, one cell per (kind, size, duration): volume × m (extra posts at m − 1 times the trailing
//!    day's mean rate, same sentiment mix), negative share + d points (posts re-drawn, volume unchanged), and
//!    negative posts × 2 (extra negative posts at the trailing day's negative rate). Each ramps in and out
//!    over a tenth of its duration (at most an hour). Incidents are placed every `duration + 2 days` from day
//!    8, at a seeded time of day, away from labelled windows. An injection counts as detected by the first
//!    `opened` (or `updated`, escalating an open incident) event whose window ends inside it or up to 15
//!    minutes after; the delay is from the injection's start.
//! 5. The targets: recall and median delay pooled over the cells they name, the share detected within the
//!    delay asked, and the share of injections whose first minutes carry the evidence any detector needs at
//!    the false-alarm budget (`information`, Lorden's bound): what no detector can beat on these data.

use crate::config::Config;
use crate::eval_nab;
use anyhow::{bail, Context, Result};
use flashpoint_core::aggregate::Aggregator;
use flashpoint_core::detect::sim::Rng;
use flashpoint_core::event::{EventKind, Output};
use flashpoint_core::normalize::for_scoring;
use flashpoint_core::sentiment::{Label, LexiconScorer, Scorer};
use flashpoint_core::time::Millis;
use flashpoint_core::window::PostView;
use std::fmt::Write as _;
use std::path::Path;

const MIN: Millis = 60_000;
const HOUR: Millis = 3_600_000;
const DAY: Millis = 86_400_000;
const STEP: Millis = 300_000;

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
    let mut files: Vec<_> = std::fs::read_dir(dir)
        .with_context(|| format!("listing {}", dir.display()))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.file_name().is_some_and(|n| n.to_string_lossy().starts_with("twitter-")))
        .collect();
    files.sort();
    let mut seen = std::collections::HashSet::new();
    let (mut texts, mut gold_neg) = (Vec::new(), 0usize);
    for f in &files {
        let body = std::fs::read_to_string(f).with_context(|| format!("reading {}", f.display()))?;
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
    if texts.len() < 1000 {
        bail!("{}: found {} labelled tweets, expected a SemEval 2017 task 4A folder", dir.display(), texts.len());
    }
    let norm: Vec<String> = texts.iter().map(|t| for_scoring(t).into_owned()).collect();
    let refs: Vec<&str> = norm.iter().map(String::as_str).collect();
    let mut scores = Vec::new();
    scorer.score_batch(&refs, &mut scores).map_err(|e| anyhow::anyhow!("scoring: {e}"))?;
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

#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Kind {
    Volume(f64),
    Share(f64),
    NegativeTimes2,
}

impl Kind {
    pub fn name(&self) -> String {
        match self {
            Kind::Volume(m) => format!("volume x{m}"),
            Kind::Share(d) => format!("share +{:.0}", d * 100.0),
            Kind::NegativeTimes2 => "negatives x2".into(),
        }
    }
}

#[derive(Clone, Copy, Debug)]
pub struct Cell {
    pub kind: Kind,
    pub duration: Millis,
}

/// One series' background: 5-minute counts and labelled windows.
pub struct Series {
    pub name: String,
    pub rows: Vec<(Millis, u64)>,
    pub windows: Vec<(Millis, Millis)>,
}

impl Series {
    /// Milliseconds inside labelled windows.
    fn labelled_ms(&self) -> f64 {
        self.windows.iter().map(|&(a, b)| (b - a) as f64).sum()
    }

    fn labelled(&self, t: Millis, margin: Millis) -> bool {
        self.windows.iter().any(|&(a, b)| t >= a - margin && t <= b + margin)
    }
}

/// Where a series' injections of `duration` go: every `duration + 2 days` from day 8, at a seeded time of
/// day, skipping labelled windows (with a day's margin).
pub fn placements(s: &Series, duration: Millis, rng: &mut Rng) -> Vec<Millis> {
    let (first, last) = (s.rows[0].0, s.rows.last().unwrap().0);
    let mut out = Vec::new();
    let mut t = first + 8 * DAY;
    while t + duration + DAY < last {
        let at = t + (rng.below(288) as Millis) * STEP;
        if !s.labelled(at, DAY) && !s.labelled(at + duration, DAY) {
            out.push(at);
        }
        t += duration + 2 * DAY;
    }
    out
}

/// Ramp in and out over a tenth of the duration, at most an hour.
fn ramp(t: Millis, start: Millis, duration: Millis) -> f64 {
    let r = (duration / 10).min(HOUR).max(1) as f64;
    let (a, b) = ((t - start) as f64, (start + duration - t) as f64);
    (a / r).min(b / r).clamp(0.0, 1.0)
}

/// Replays `s` with `injections` of `kind` (starts; empty for the background) and returns the window ends of
/// opened events and of updated events.
pub fn run_series(
    s: &Series,
    texts: &Texts,
    cfg: &Config,
    cell: Option<(Cell, &[Millis])>,
    seed: u64,
) -> Result<(Vec<Millis>, Vec<Millis>)> {
    let mut agg = Aggregator::new(&cfg.aggregator()).map_err(anyhow::Error::msg)?;
    let mut rng = Rng::new(seed);
    let p_bg = texts.gold_negative_share;
    let mut out = Vec::new();
    let (mut opened, mut updated) = (Vec::new(), Vec::new());
    let mut id = String::new();
    let mut n = 0u64;
    // Trailing day's mean count per 5-minute row: the reference rate a surge multiplies.
    let mut trail: std::collections::VecDeque<u64> = std::collections::VecDeque::new();
    let mut trail_sum = 0u64;
    let mut emit = |agg: &mut Aggregator, t: Millis, negative: bool, rng: &mut Rng, out: &mut Vec<Output>| {
        let (text, compound, label) = if negative {
            let (t, c) = &texts.negative[rng.below(texts.negative.len())];
            (t.as_str(), *c, Label::Negative)
        } else {
            let (t, c, l) = &texts.other[rng.below(texts.other.len())];
            (t.as_str(), *c, *l)
        };
        n += 1;
        id.clear();
        let _ = write!(id, "p{n}");
        let v = PostView { id: &id, text, created_at: t, author: None, followers: Some(100), compound, label };
        agg.process(0, "ticker", &[], &v, out);
    };
    // FLASHPOINT_EVAL_TRACE=DIR: every run writes the detector's internals (hourly, and every row of an injection)
    // and its events, one file per series and cell.
    let trace_path = std::env::var_os("FLASHPOINT_EVAL_TRACE").map(|dir| {
        let what = cell.map_or("background".to_string(), |(c, _)| format!("{} {}m", c.kind.name(), c.duration / MIN));
        Path::new(&dir).join(format!("{} {what}.tsv", s.name))
    });
    let mut trace = trace_path.as_ref().map(|_| String::new());
    for &(t, count) in &s.rows {
        let reference = if trail.is_empty() { count as f64 } else { trail_sum as f64 / trail.len() as f64 };
        let (mut extra, mut extra_neg, mut share) = (0u64, 0u64, p_bg);
        if let Some((cell, starts)) = cell {
            let mid = t + STEP / 2;
            if let Some(&st) = starts.iter().find(|&&st| mid >= st && mid < st + cell.duration) {
                let row = Injected::at(cell.kind, reference, ramp(mid, st, cell.duration), p_bg);
                // Only the kind's own draw, so each kind's random sequence is what it always was.
                match cell.kind {
                    Kind::Volume(_) => extra = rng.poisson(row.extra),
                    Kind::Share(_) => share = row.share,
                    Kind::NegativeTimes2 => extra_neg = rng.poisson(row.extra_negative),
                }
            }
        }
        // The row's posts at seeded uniform times in its 5 minutes (posts arrive at random, not on a grid:
        // evenly spread posts would make every minute of a row alike), in time order.
        let n_bg = count + extra;
        let mut posts: Vec<(Millis, bool)> = Vec::with_capacity((n_bg + extra_neg) as usize);
        for j in 0..n_bg + extra_neg {
            let at = t + (rng.uniform() * STEP as f64) as Millis;
            posts.push((at, j >= n_bg || rng.uniform() < share));
        }
        posts.sort_by_key(|p| p.0);
        for (at, negative) in posts {
            emit(&mut agg, at, negative, &mut rng, &mut out);
        }
        for o in out.drain(..) {
            if let Output::Spike(e) = o {
                let end = e.window_end;
                match e.kind {
                    EventKind::Opened => opened.push(end),
                    EventKind::Updated => updated.push(end),
                    EventKind::Resolved => {}
                }
                if let Some(tr) = trace.as_mut() {
                    let _ = writeln!(
                        tr,
                        "# {:?} {end} {} obs {} base {:.1} score {:.2} {:?}",
                        e.kind,
                        e.signal.as_str(),
                        e.observed,
                        e.baseline,
                        e.score,
                        e.severity
                    );
                    // Which statistics were over their thresholds (signal, design index), for an opening.
                    if let (EventKind::Opened, Some(d)) = (e.kind, agg.detector_diagnostics(0)) {
                        let over: Vec<(usize, usize)> = (0..3)
                            .flat_map(|i| (0..3).map(move |j| (i, j)))
                            .filter(|&(i, j)| d.statistic[i][j] >= d.threshold[i][j])
                            .collect();
                        let _ = writeln!(tr, "#   over {over:?}");
                    }
                }
            }
        }
        if let Some(tr) = trace.as_mut() {
            if (t / STEP) % 12 == 0 || cell.is_some_and(|(c, st)| st.iter().any(|&a| t >= a && t <= a + c.duration)) {
                if let Some(d) = agg.detector_diagnostics(0) {
                    let _ = writeln!(tr, "{t}\t{count}\t{}", serde_json::to_string(&d).unwrap_or_default());
                }
            }
        }
        trail.push_back(count);
        trail_sum += count;
        if trail.len() > (DAY / STEP) as usize {
            trail_sum -= trail.pop_front().unwrap();
        }
    }
    if let (Some(buf), Some(path)) = (trace, trace_path) {
        std::fs::write(&path, buf).with_context(|| format!("writing {}", path.display()))?;
    }
    Ok((opened, updated))
}

#[derive(Debug, Default, Clone, serde::Serialize)]
pub struct CellResult {
    pub kind: String,
    pub duration_min: i64,
    pub injected: usize,
    pub detected: usize,
    /// Per injection, minutes to detection (None: missed), with the series' mean posts per hour.
    pub delays: Vec<(f64, Option<f64>)>,
    /// Per injection, the evidence its first `target_horizon` carries (`information`), nats.
    pub information: Vec<f64>,
}

/// What an injection adds to one row: the mean of its extra posts and of its extra negative posts, and the
/// negative share of the row's own posts. `run_series` draws from it and `information` measures it.
struct Injected {
    extra: f64,
    extra_negative: f64,
    share: f64,
}

impl Injected {
    /// `reference`: the trailing day's mean count per row; `r`: the ramp (0 to 1); `p_bg`: the background share.
    fn at(kind: Kind, reference: f64, r: f64, p_bg: f64) -> Injected {
        let none = Injected { extra: 0.0, extra_negative: 0.0, share: p_bg };
        match kind {
            Kind::Volume(m) => Injected { extra: (m - 1.0) * reference * r, ..none },
            Kind::Share(d) => Injected { share: (p_bg + d * r).min(1.0), ..none },
            Kind::NegativeTimes2 => Injected { extra_negative: p_bg * reference * r, ..none },
        }
    }
}

/// How soon the targets ask for a detection: 3 hours for the day-long doubling of negative posts, 10 minutes
/// for the others.
pub fn target_horizon(kind: Kind) -> Millis {
    if kind == Kind::NegativeTimes2 {
        3 * HOUR
    } else {
        10 * MIN
    }
}

/// Expected evidence (nats) that the first `horizon` of an injection at `start` carries against the
/// un-injected background, as if the baseline and the noise were known exactly: each row's own count is its
/// Poisson mean (negatives: that × the background share), the share is binomial, and the injection is what
/// `run_series` draws. By Lorden's bound a detector that raises a false alarm once per `γ` steps needs about
/// `ln γ` nats of evidence on average before it can alarm, whatever its design, so an injection whose first
/// `horizon` carries less cannot, on average, be detected within it at that false-alarm rate. Real baselines
/// are uncertain and real counts overdispersed, so this is an optimistic bound.
pub fn information(s: &Series, kind: Kind, duration: Millis, start: Millis, p_bg: f64, horizon: Millis) -> f64 {
    let i = s.rows.partition_point(|r| r.0 < start);
    let day = (DAY / STEP) as usize;
    let trail = &s.rows[i.saturating_sub(day)..i];
    let reference = if trail.is_empty() {
        s.rows.get(i).map_or(0.0, |r| r.1 as f64)
    } else {
        trail.iter().map(|r| r.1 as f64).sum::<f64>() / trail.len() as f64
    };
    let poisson_kl = |mu0: f64, extra: f64| (mu0 + extra) * ((mu0 + extra) / mu0).ln() - extra;
    s.rows[i..]
        .iter()
        .take_while(|r| r.0 < start + horizon)
        .map(|&(t, count)| {
            let row = Injected::at(kind, reference, ramp(t + STEP / 2, start, duration), p_bg);
            let n = count as f64;
            let p1 = row.share.min(1.0 - 1e-9);
            poisson_kl(n.max(1.0), row.extra)
                + poisson_kl(p_bg * n.max(1.0), row.extra_negative)
                + n * (p1 * (p1 / p_bg).ln() + (1.0 - p1) * ((1.0 - p1) / (1.0 - p_bg)).ln())
        })
        .sum()
}

impl CellResult {
    pub fn recall(&self) -> f64 {
        if self.injected == 0 {
            0.0
        } else {
            self.detected as f64 / self.injected as f64
        }
    }
    pub fn median_delay(&self) -> Option<f64> {
        median(self.delays.iter().filter_map(|d| d.1).collect())
    }
}

pub fn median(mut v: Vec<f64>) -> Option<f64> {
    if v.is_empty() {
        return None;
    }
    v.sort_by(f64::total_cmp);
    let n = v.len();
    Some(if n % 2 == 1 { v[n / 2] } else { (v[n / 2 - 1] + v[n / 2]) / 2.0 })
}

/// Minutes from each start to the first opened/updated event within its duration + 15 minutes.
pub fn delays(starts: &[Millis], duration: Millis, opened: &[Millis], updated: &[Millis]) -> Vec<Option<f64>> {
    starts
        .iter()
        .map(|&st| {
            opened
                .iter()
                .chain(updated)
                .filter(|&&e| e > st && e <= st + duration + 15 * MIN)
                .min()
                .map(|&e| (e - st) as f64 / MIN as f64)
        })
        .collect()
}

pub fn cells() -> Vec<Cell> {
    let durations = [15 * MIN, HOUR, 6 * HOUR, DAY];
    let mut v = Vec::new();
    for m in [1.5, 2.0, 3.0, 5.0, 10.0] {
        for d in durations {
            v.push(Cell { kind: Kind::Volume(m), duration: d });
        }
    }
    for s in [0.10, 0.20, 0.30] {
        for d in durations {
            v.push(Cell { kind: Kind::Share(s), duration: d });
        }
    }
    v.push(Cell { kind: Kind::NegativeTimes2, duration: DAY });
    v
}

pub struct Report {
    pub nab: Vec<eval_nab::SeriesScore>,
    pub nab_total: f64,
    /// (series, opened outside labelled windows, entity-weeks).
    pub false_alarms: Vec<(String, usize, f64)>,
    /// (series, natural surges of each `NATURAL` kind outside labelled windows, entity-weeks they were counted
    /// over): see `natural_surge_runs`.
    pub natural_surges: Vec<(String, [usize; NATURAL.len()], f64)>,
    /// (series, its false alarms by what the background holds there, in `ALARM_CAUSES` order).
    pub false_alarm_causes: Vec<(String, [usize; ALARM_CAUSES.len()])>,
    pub cells: Vec<CellResult>,
}

/// Surges the background already holds, outside NAB's labelled windows, of the kind the recall target asks
/// to catch: runs of at least `min_rows` 5-minute rows whose count is at least `ratio` × a robust seasonal
/// baseline (the median of the same row ± 5 minutes over the previous seven days) + 2. A detector that
/// catches injected surges of that size must also open on these, and each one counts as a false alarm
/// here; so they bound what "false alarms per entity-week" can reach at a given recall. Counted from day 8.
/// Returns the runs (start of the first row, end of the last) and the entity-weeks they were counted over.
pub fn natural_surge_runs(s: &Series, ratio: f64, min_rows: usize) -> (Vec<(Millis, Millis)>, f64) {
    let per_day = (DAY / STEP) as usize;
    let v: Vec<u64> = s.rows.iter().map(|r| r.1).collect();
    let mut found = Vec::new();
    let (mut run, mut touches_label) = (0, false);
    let mut close = |i: usize, run: usize, touches_label: bool| {
        if run >= min_rows && !touches_label {
            found.push((s.rows[i - run].0, s.rows[i - 1].0 + STEP));
        }
    };
    let mut same = Vec::with_capacity(21);
    for i in 7 * per_day + 1..v.len() {
        same.clear();
        for d in 1..=7 {
            same.extend_from_slice(&v[i - d * per_day - 1..=i - d * per_day + 1]);
        }
        same.sort_unstable();
        let base = (same[same.len() / 2] as f64).max(1.0);
        if v[i] as f64 >= ratio * base + 2.0 {
            run += 1;
            touches_label |= s.labelled(s.rows[i].0, 0);
        } else {
            close(i, run, touches_label);
            run = 0;
            touches_label = false;
        }
    }
    close(v.len(), run, touches_label);
    let span = (v.len() - 7 * per_day) as f64 * STEP as f64;
    (found, (span - s.labelled_ms()).max(0.0) / (7.0 * DAY as f64))
}

/// The kinds of natural surge counted in the backgrounds (ratio to the robust baseline, rows of 5 minutes):
/// × 3 lasting 10 minutes (what a detector has seen when the delay target says it must have decided), the × 3
/// surges lasting 30 minutes the recall target names, and the bursts the × 5 and × 10 cells inject.
pub const NATURAL: [(f64, usize, &str); 4] =
    [(3.0, 2, "x3 >= 10 min"), (3.0, 6, "x3 >= 30 min"), (5.0, 3, "x5 >= 15 min"), (10.0, 3, "x10 >= 15 min")];

/// What the background holds where a false alarm opened, from 30 minutes before to 10 minutes after (a
/// detector may be quicker than a surge's definition, and an opening lands after the posts that caused it).
pub const ALARM_CAUSES: [&str; 4] =
    ["first week (no robust baseline yet)", "on a x3 surge >= 30 min", "on a shorter x3 burst", "on neither"];

/// Counts `opened` (false alarms, after the warm-up) by `ALARM_CAUSES`, with the series' × 3 runs of at least
/// 30 minutes (`long`) and of any length (`any`).
pub fn alarm_causes(
    s: &Series,
    opened: &[Millis],
    long: &[(Millis, Millis)],
    any: &[(Millis, Millis)],
) -> [usize; ALARM_CAUSES.len()] {
    let on = |runs: &[(Millis, Millis)], t: Millis| runs.iter().any(|&(a, b)| t >= a - 30 * MIN && t <= b + 10 * MIN);
    let mut n = [0; ALARM_CAUSES.len()];
    for &t in opened {
        let c = if t < s.rows[0].0 + 7 * DAY + STEP {
            0
        } else if on(long, t) {
            1
        } else if on(any, t) {
            2
        } else {
            3
        };
        n[c] += 1;
    }
    n
}

pub fn load_series(nab: &Path) -> Result<Vec<Series>> {
    let mut out = Vec::new();
    for (path, windows) in eval_nab::corpus(nab)? {
        out.push(Series {
            name: path.file_name().unwrap().to_string_lossy().to_string(),
            rows: eval_nab::read_series(&path)?,
            windows,
        });
    }
    Ok(out)
}

/// `isolated`: one injection per replay (the series cut 20 minutes after it), so no injection can teach the
/// detector's self-calibration what the next one looks like; slower.
pub fn run(
    nab: &Path,
    semeval: &Path,
    cfg: &Config,
    seed: u64,
    only: Option<&[Cell]>,
    isolated: bool,
) -> Result<Report> {
    let (nab_scores, nab_total) = eval_nab::run(nab, cfg)?;
    let scorer = LexiconScorer::new(cfg.scorer.thresholds);
    let texts = load_texts(semeval, &scorer)?;
    let series = load_series(nab)?;
    let mut false_alarms = Vec::new();
    let mut natural_surges_found = Vec::new();
    let mut causes = Vec::new();
    for (i, s) in series.iter().enumerate() {
        let (opened, _) = run_series(s, &texts, cfg, None, seed ^ (i as u64) << 32)?;
        let warm = s.rows[0].0 + cfg.detection.warmup_secs as Millis * 1000;
        let fa: Vec<Millis> = opened.into_iter().filter(|&t| t > warm && !s.labelled(t, 0)).collect();
        let span = (s.rows.last().unwrap().0 - warm) as f64;
        let weeks = (span - s.labelled_ms()) / (7.0 * DAY as f64);
        false_alarms.push((s.name.clone(), fa.len(), weeks));
        let counts = NATURAL.map(|(ratio, rows, _)| natural_surge_runs(s, ratio, rows).0.len());
        // Every × 3 run, of any length, and those lasting 30 minutes: what the false alarms opened on.
        let (any, surge_weeks) = natural_surge_runs(s, 3.0, 1);
        natural_surges_found.push((s.name.clone(), counts, surge_weeks));
        let long: Vec<(Millis, Millis)> = any.iter().copied().filter(|r| r.1 - r.0 >= 6 * STEP).collect();
        causes.push((s.name.clone(), alarm_causes(s, &fa, &long, &any)));
    }
    let all_cells = cells();
    let grid = only.unwrap_or(&all_cells);
    let mut results = Vec::new();
    for cell in grid {
        // Seeded by the cell's place in the full grid, so `--only` reproduces the full run's cells.
        let c = all_cells.iter().position(|a| a.kind == cell.kind && a.duration == cell.duration).unwrap_or(0);
        let mut r = CellResult { kind: cell.kind.name(), duration_min: cell.duration / MIN, ..Default::default() };
        for (i, s) in series.iter().enumerate() {
            let run_seed = seed ^ ((i as u64) << 32) ^ ((c as u64 + 1) << 40);
            let starts = placements(s, cell.duration, &mut Rng::new(run_seed ^ 0xabc));
            let per_hour = s.rows.iter().map(|r| r.1).sum::<u64>() as f64 / (s.rows.len() as f64 / 12.0);
            let found = if isolated {
                let mut v = Vec::new();
                for (k, &st) in starts.iter().enumerate() {
                    let end = st + cell.duration + 20 * MIN;
                    let cut = Series {
                        name: s.name.clone(),
                        rows: s.rows.iter().copied().take_while(|r| r.0 < end).collect(),
                        windows: s.windows.clone(),
                    };
                    let (o, u) =
                        run_series(&cut, &texts, cfg, Some((*cell, &[st])), run_seed ^ ((k as u64 + 1) << 16))?;
                    v.extend(delays(&[st], cell.duration, &o, &u));
                }
                v
            } else {
                let (opened, updated) = run_series(s, &texts, cfg, Some((*cell, &starts)), run_seed)?;
                delays(&starts, cell.duration, &opened, &updated)
            };
            for d in found {
                r.injected += 1;
                r.detected += usize::from(d.is_some());
                r.delays.push((per_hour, d));
            }
            let horizon = target_horizon(cell.kind);
            r.information.extend(
                starts
                    .iter()
                    .map(|&st| information(s, cell.kind, cell.duration, st, texts.gold_negative_share, horizon)),
            );
        }
        results.push(r);
    }
    Ok(Report {
        nab: nab_scores,
        nab_total,
        false_alarms,
        false_alarm_causes: causes,
        natural_surges: natural_surges_found,
        cells: results,
    })
}

fn fmt_delay(d: Option<f64>) -> String {
    d.map_or("–".into(), |d| format!("{d:.0}"))
}

/// The report as Markdown tables.
pub fn markdown(r: &Report, cfg: &Config) -> String {
    let mut s = String::new();
    let fa_target = cfg.detection.target_false_alarms_per_week();
    let _ = writeln!(s, "## NAB standard profile (one configuration; nothing is fitted to these series)\n");
    let _ = writeln!(s, "| series | windows | detected | false positives | NAB |\n|---|---|---|---|---|");
    for x in &r.nab {
        let _ = writeln!(
            s,
            "| {} | {} | {} | {} | {:.1} |",
            x.series, x.windows, x.detected_windows, x.false_positives, x.normalized
        );
    }
    let _ = writeln!(s, "| **total** | | | | **{:.1}** |\n", r.nab_total);
    let _ = writeln!(
        s,
        "## False alarms on the un-injected backgrounds (outside labelled windows; target {fa_target}/entity-week)\n"
    );
    per_week_table(&mut s, "opened", &r.false_alarms);
    let _ = writeln!(
        s,
        "Surges already in these backgrounds, outside labelled windows, from day 8: runs of 5-minute counts at least \
         r x a robust seasonal baseline (median of the same 5 minutes +- 5 over the previous week) + 2. Catching \
         injected surges of a kind means opening on these too, and each counts as a false alarm above.\n"
    );
    let _ = writeln!(
        s,
        "| series | entity-weeks |{}\n|---|---|{}",
        NATURAL.map(|k| format!(" {} |", k.2)).concat(),
        NATURAL.map(|_| "---|").concat()
    );
    let (mut tot, mut weeks) = ([0; NATURAL.len()], 0.0);
    for (name, c, w) in &r.natural_surges {
        let _ =
            writeln!(s, "| {name} | {w:.1} |{}", c.map(|n| format!(" {n} ({:.2}) |", n as f64 / w.max(1e-9))).concat());
        weeks += w;
        (0..NATURAL.len()).for_each(|k| tot[k] += c[k]);
    }
    let _ = writeln!(
        s,
        "| **all** | {weeks:.1} |{}\n",
        tot.map(|n| format!(" {n} (**{:.2}**) |", n as f64 / weeks.max(1e-9))).concat()
    );
    let _ = writeln!(s, "Each cell: surges (per entity-week).\n");
    let _ =
        writeln!(s, "What the background holds where each false alarm above opened (30 minutes before to 10 after):\n");
    let _ = writeln!(
        s,
        "| series |{}\n|---|{}",
        ALARM_CAUSES.map(|c| format!(" {c} |")).concat(),
        ALARM_CAUSES.map(|_| "---|").concat()
    );
    let mut tot = [0; ALARM_CAUSES.len()];
    for (name, c) in &r.false_alarm_causes {
        let _ = writeln!(s, "| {name} |{}", c.map(|n| format!(" {n} |")).concat());
        (0..ALARM_CAUSES.len()).for_each(|k| tot[k] += c[k]);
    }
    let _ = writeln!(s, "| **all** |{}\n", tot.map(|n| format!(" **{n}** |")).concat());
    let _ = writeln!(s, "## Injected incidents: recall / median minutes to detect\n");
    let durs: Vec<i64> = {
        let mut d: Vec<i64> = r.cells.iter().map(|c| c.duration_min).collect();
        d.sort_unstable();
        d.dedup();
        d
    };
    let _ = write!(s, "| injection |");
    for d in &durs {
        let _ = write!(s, " {} |", dur_name(*d));
    }
    let _ = write!(s, "\n|---|");
    for _ in &durs {
        let _ = write!(s, "---|");
    }
    let _ = writeln!(s);
    let mut kinds: Vec<String> = r.cells.iter().map(|c| c.kind.clone()).collect();
    kinds.dedup();
    for k in &kinds {
        let _ = write!(s, "| {k} |");
        for d in &durs {
            match r.cells.iter().find(|c| &c.kind == k && c.duration_min == *d) {
                Some(c) => {
                    let _ =
                        write!(s, " {:.0}% / {} ({}) |", 100.0 * c.recall(), fmt_delay(c.median_delay()), c.injected);
                }
                None => {
                    let _ = write!(s, " |");
                }
            }
        }
        let _ = writeln!(s);
    }
    let _ = writeln!(s, "\nEach cell: recall / median minutes from the injection's start to detection (injections).\n");
    // The issue's targets. Lorden: at one false alarm per `γ` steps a detector needs about `ln γ` nats.
    let steps_per_week = 7.0 * 86_400.0 / cfg.window.slide_secs.max(1) as f64;
    let ln_gamma = (steps_per_week / fa_target).ln();
    let _ = writeln!(
        s,
        "## Targets\n\n| target | injections | recall | median delay (min) | detected within the delay target | \
         carry >= {ln_gamma:.1} nats within it |\n|---|---|---|---|---|---|"
    );
    for (label, kind, dur, rate) in [
        ("volume x3, >= 30 min (1 h, 6 h, 24 h)", Kind::Volume(3.0), 60, 0.0),
        ("share +20, >= 1 h, series >= 30 posts/h", Kind::Share(0.2), 60, 30.0),
        ("negatives x2 for a day (target: within 180 min)", Kind::NegativeTimes2, 1440, 0.0),
    ] {
        let horizon = (target_horizon(kind) / MIN) as f64;
        let (mut n, mut hit, mut soon, mut reach) = (0, Vec::new(), 0, 0);
        for c in r.cells.iter().filter(|c| c.kind == kind.name() && c.duration_min >= dur) {
            for (k, &(per_hour, d)) in c.delays.iter().enumerate() {
                if per_hour < rate {
                    continue;
                }
                n += 1;
                hit.extend(d);
                soon += usize::from(d.is_some_and(|d| d <= horizon));
                reach += usize::from(c.information.get(k).is_some_and(|&i| i >= ln_gamma));
            }
        }
        let pct = |k: usize| 100.0 * k as f64 / n.max(1) as f64;
        let _ = writeln!(
            s,
            "| {label} | {n} | {:.0}% | {} | {:.0}% | {:.0}% |",
            pct(hit.len()),
            fmt_delay(median(hit)),
            pct(soon),
            pct(reach)
        );
    }
    let _ = writeln!(
        s,
        "\nThe last column is about the most the one before it can reach, for any detector at this false-alarm \
         rate: the injections whose first 10 minutes (3 hours for negatives) carry, in expectation, the ln(steps \
         per week / budget) nats of evidence that Lorden's bound says a detector needs on average before it \
         alarms, even with the baseline known exactly and Poisson / binomial noise (`eval_detect::information`). \
         It bounds an average, so luck beats it on a few injections."
    );
    s
}

/// A table of (series, count, entity-weeks) rows with each series' rate per entity-week and the pooled rate.
fn per_week_table(s: &mut String, what: &str, rows: &[(String, usize, f64)]) {
    let _ = writeln!(s, "| series | {what} | entity-weeks | per entity-week |\n|---|---|---|---|");
    let (mut total, mut weeks) = (0, 0.0);
    for (n, c, w) in rows {
        let _ = writeln!(s, "| {n} | {c} | {w:.1} | {:.2} |", *c as f64 / w.max(1e-9));
        total += c;
        weeks += w;
    }
    let _ = writeln!(s, "| **all** | {total} | {weeks:.1} | **{:.2}** |\n", total as f64 / f64::max(weeks, 1e-9));
}

fn dur_name(min: i64) -> String {
    if min % 1440 == 0 {
        format!("{} d", min / 1440)
    } else if min % 60 == 0 {
        format!("{} h", min / 60)
    } else {
        format!("{min} min")
    }
}

/// The recall/delay grid as a self-contained SVG: one row per injection kind, one column per duration; the
/// fill is the recall (red 0% to green 100%), the text recall and median delay.
pub fn svg(r: &Report) -> String {
    let mut durs: Vec<i64> = r.cells.iter().map(|c| c.duration_min).collect();
    durs.sort_unstable();
    durs.dedup();
    let mut kinds: Vec<String> = r.cells.iter().map(|c| c.kind.clone()).collect();
    kinds.dedup();
    let (cw, ch, left, top) = (130.0, 34.0, 120.0, 60.0);
    let w = left + cw * durs.len() as f64 + 20.0;
    let h = top + ch * kinds.len() as f64 + 40.0;
    let mut s = String::new();
    let _ = writeln!(
        s,
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{w}" height="{h}" font-family="sans-serif" font-size="12">"#
    );
    let _ = writeln!(s, r#"<rect width="{w}" height="{h}" fill="white"/>"#);
    let _ = writeln!(
        s,
        r#"<text x="10" y="22" font-size="14" font-weight="bold">flashpoint eval-detect: recall / median minutes to detect</text>"#
    );
    for (j, d) in durs.iter().enumerate() {
        let x = left + cw * j as f64 + cw / 2.0;
        let _ = writeln!(s, r#"<text x="{x}" y="{}" text-anchor="middle">{}</text>"#, top - 8.0, dur_name(*d));
    }
    for (i, k) in kinds.iter().enumerate() {
        let y = top + ch * i as f64;
        let _ = writeln!(s, r#"<text x="10" y="{}">{k}</text>"#, y + ch / 2.0 + 4.0);
        for (j, d) in durs.iter().enumerate() {
            let Some(c) = r.cells.iter().find(|c| &c.kind == k && c.duration_min == *d) else { continue };
            let x = left + cw * j as f64;
            let rec = c.recall();
            let (red, green) = ((255.0 * (1.0 - rec)).round(), (200.0 * rec + 55.0).round());
            let _ = writeln!(
                s,
                r#"<rect x="{x}" y="{y}" width="{}" height="{}" fill="rgb({red},{green},90)" stroke="white"/>"#,
                cw - 2.0,
                ch - 2.0
            );
            let _ = writeln!(
                s,
                r#"<text x="{}" y="{}" text-anchor="middle">{:.0}% / {} min</text>"#,
                x + cw / 2.0,
                y + ch / 2.0 + 4.0,
                100.0 * rec,
                fmt_delay(c.median_delay())
            );
        }
    }
    let _ = writeln!(
        s,
        r#"<text x="10" y="{}" font-size="11">Injected on the NAB realTweets backgrounds with SemEval tweets; see README.</text>"#,
        h - 12.0
    );
    let _ = writeln!(s, "</svg>");
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn delays_take_the_first_event_inside_the_injection() {
        let st = [10 * HOUR, 40 * HOUR];
        let d = delays(&st, HOUR, &[9 * HOUR, 10 * HOUR + 7 * MIN, 41 * HOUR + 16 * MIN], &[10 * HOUR + 3 * MIN]);
        assert_eq!(d, vec![Some(3.0), None]);
        assert_eq!(median(vec![5.0, 1.0, 3.0]), Some(3.0));
        assert_eq!(median(vec![4.0, 1.0]), Some(2.5));
    }

    #[test]
    fn ramps_and_placements() {
        assert_eq!(ramp(0, 0, 10 * HOUR), 0.0);
        assert_eq!(ramp(HOUR / 2, 0, 10 * HOUR), 0.5);
        assert_eq!(ramp(5 * HOUR, 0, 10 * HOUR), 1.0);
        assert_eq!(ramp(10 * HOUR - HOUR / 4, 0, 10 * HOUR), 0.25);
        let rows: Vec<(Millis, u64)> = (0..(40 * DAY / STEP)).map(|i| (i * STEP, 5)).collect();
        let s = Series { name: "x".into(), rows, windows: vec![(20 * DAY, 21 * DAY)] };
        let p = placements(&s, DAY, &mut Rng::new(1));
        // From day 8 every 3 days, at a time of day, none within a day of the labelled window.
        assert!(!p.is_empty());
        assert!(p.iter().all(|&t| t >= 8 * DAY && !s.labelled(t, DAY) && !s.labelled(t + DAY, DAY)));
        assert!(p.windows(2).all(|w| w[1] - w[0] >= 2 * DAY));
        assert_eq!(p, placements(&s, DAY, &mut Rng::new(1)), "seeded");
    }

    #[test]
    fn information_is_the_expected_evidence_of_the_injection_as_drawn() {
        // 60 posts a row for 14 days; a one-hour injection at day 9 ramps in over 6 minutes, so its first two
        // rows (10 minutes) are at 2.5/6 and at full strength.
        let rows: Vec<(Millis, u64)> = (0..(14 * DAY / STEP)).map(|i| (i * STEP, 60)).collect();
        let s = Series { name: "x".into(), rows, windows: vec![] };
        let st = 9 * DAY;
        let kl = |p1: f64, p0: f64| p1 * (p1 / p0).ln() + (1.0 - p1) * ((1.0 - p1) / (1.0 - p0)).ln();
        let share = information(&s, Kind::Share(0.2), HOUR, st, 0.15, 10 * MIN);
        let want = 60.0 * (kl(0.15 + 0.2 * 2.5 / 6.0, 0.15) + kl(0.35, 0.15));
        assert!((share - want).abs() < 1e-9, "{share} {want}");
        // Volume × 3: the extra posts are 2 × the trailing day's mean (60) × the ramp, Poisson around 60.
        let poisson = |e: f64| (60.0 + e) * ((60.0 + e) / 60.0).ln() - e;
        let vol = information(&s, Kind::Volume(3.0), HOUR, st, 0.15, 10 * MIN);
        assert!((vol - (poisson(120.0 * 2.5 / 6.0) + poisson(120.0))).abs() < 1e-9, "{vol}");
        // A longer horizon holds more; a quieter series less.
        assert!(information(&s, Kind::Share(0.2), HOUR, st, 0.15, 20 * MIN) > share);
        let quiet = Series { rows: s.rows.iter().map(|r| (r.0, 6)).collect(), ..s };
        assert!(information(&quiet, Kind::Share(0.2), HOUR, st, 0.15, 10 * MIN) < share / 5.0);
    }

    #[test]
    fn natural_surges_are_lasting_unlabelled_runs_only() {
        let mut rows: Vec<(Millis, u64)> = (0..(14 * DAY / STEP)).map(|i| (i * STEP, 10)).collect();
        let row = |t: Millis| (t / STEP) as usize;
        // Day 9: six rows at 40 (>= 3 x 10 + 2): one surge. Day 10: five rows: too short. Day 11: six rows
        // inside a labelled window: NAB's, not natural.
        for (day, n) in [(9, 6), (10, 5), (11, 6)] {
            for k in 0..n {
                rows[row(day * DAY + 12 * HOUR) + k].1 = 40;
            }
        }
        let s = Series { name: "x".into(), rows, windows: vec![(11 * DAY, 11 * DAY + 13 * HOUR)] };
        let (runs, weeks) = natural_surge_runs(&s, 3.0, 6);
        assert_eq!(runs, vec![(9 * DAY + 12 * HOUR, 9 * DAY + 12 * HOUR + 30 * MIN)]);
        // Alarms by cause: from 30 minutes before a run to 10 minutes after it, on it; the first week apart.
        let at = |m: i64| 9 * DAY + 12 * HOUR + m * MIN;
        let short = natural_surge_runs(&s, 3.0, 5).0;
        assert_eq!(short.len(), 2);
        let alarms = [DAY, at(-31), at(-30), at(40), at(41), DAY + at(0)];
        assert_eq!(alarm_causes(&s, &alarms, &runs, &short), [1, 2, 1, 2]);
        assert!((weeks - (7.0 * DAY as f64 - 13.0 * HOUR as f64) / (7.0 * DAY as f64)).abs() < 0.01, "{weeks}");
        // A surge the robust baseline has seen on the same row every day is the daily cycle, not a surge.
        let daily: Vec<(Millis, u64)> =
            (0..(14 * DAY / STEP)).map(|i| (i * STEP, if (i * STEP) % DAY < HOUR { 40 } else { 10 })).collect();
        assert_eq!(natural_surge_runs(&Series { name: "d".into(), rows: daily, windows: vec![] }, 3.0, 6).0, vec![]);
    }

    /// The machinery end to end on a small synthetic background: a flat 40 posts per 5 minutes for 14 days
    /// with synthetic texts; a 10× volume surge must be found and the run must be deterministic.
    #[test]
    fn a_large_injection_is_found_deterministically() {
        let texts = Texts {
            negative: vec![("awful delay again".into(), -0.6)],
            other: vec![("boarding now".into(), 0.0, Label::Neutral), ("great crew".into(), 0.6, Label::Positive)],
            gold_negative_share: 0.15,
        };
        let rows: Vec<(Millis, u64)> = (0..(14 * DAY / STEP)).map(|i| (i * STEP, 40)).collect();
        let s = Series { name: "flat".into(), rows, windows: vec![] };
        let cfg = Config::default();
        let cell = Cell { kind: Kind::Volume(10.0), duration: HOUR };
        let starts = placements(&s, cell.duration, &mut Rng::new(3));
        assert_eq!(starts.len(), 3, "days 8, 10 and 12");
        let a = run_series(&s, &texts, &cfg, Some((cell, &starts)), 9).unwrap();
        let b = run_series(&s, &texts, &cfg, Some((cell, &starts)), 9).unwrap();
        assert_eq!(a, b);
        let d = delays(&starts, cell.duration, &a.0, &a.1);
        assert!(d.iter().all(|d| d.is_some_and(|m| m <= 15.0)), "{d:?}");
        let (bg, _) = run_series(&s, &texts, &cfg, None, 9).unwrap();
        assert!(bg.is_empty(), "{bg:?}");
    }
}
