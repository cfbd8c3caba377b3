//! The runs of `eval-detect` and what is measured from them.
//!
//! 1. NAB standard score on the NAB corpus folder (`nab`), one configuration for all series.
//! 2. False alarms per entity-week: `opened` events on the un-injected backgrounds (`simulate`), outside NAB's
//!    labelled windows (those are real anomalies) and after the warm-up; beside them, the natural surges the
//!    backgrounds hold (`natural_surge_runs`, `NATURAL`) and what each false alarm opened on (`alarm_causes`).
//! 3. Injections, one cell per (kind, size, duration) (`injection`). An injection counts as detected by the
//!    first `opened` (or `updated`, escalating an open incident) event whose window ends inside it or up to
//!    `DETECTION_GRACE` after; the delay is from the injection's start.
//! 4. The targets (`report`): recall and median delay pooled over the cells they name, the share detected
//!    within the delay asked, and the share of injections whose first minutes carry the evidence any detector
//!    needs at the false-alarm budget (`injection::information`, Lorden's bound).

use crate::corpus::{load_series, load_texts, Series};
use crate::error::Result;
use crate::injection::{cells, information, placements, target_horizon, Cell};
use crate::nab;
use crate::simulate::run_series;
use crate::time::{DAY, MIN, STEP};
use flashpoint_core::aggregate::AggregatorConfig;
use flashpoint_core::detect::sim::Rng;
use flashpoint_core::sentiment::{LabelThresholds, LexiconScorer};
use flashpoint_core::time::Millis;
use std::path::Path;

/// An event this long after an injection ends still counts as detecting it (a window ends after its posts).
const DETECTION_GRACE: Millis = 15 * MIN;
/// With `isolated`, each replay is cut this long after its injection: long enough for the grace above.
const ISOLATED_TAIL: Millis = 20 * MIN;

/// How `run` runs: what `eval-detect`'s flags choose besides the corpora and the configuration.
#[derive(Clone, Debug, Default)]
pub struct DetectOptions<'a> {
    pub seed: u64,
    /// Only these cells of the grid (`injection::cells`); all when `None`.
    pub only: Option<&'a [Cell]>,
    /// One injection per replay (the series cut `ISOLATED_TAIL` after it), so no injection can teach the
    /// detector's self-calibration what the next one looks like; slower.
    pub isolated: bool,
    /// Write each run's detector internals to a file in this folder (`simulate::run_series`).
    pub trace: Option<&'a Path>,
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

/// Minutes from each start to the first opened/updated event within its duration + `DETECTION_GRACE`.
pub fn delays(starts: &[Millis], duration: Millis, opened: &[Millis], updated: &[Millis]) -> Vec<Option<f64>> {
    starts
        .iter()
        .map(|&st| {
            opened
                .iter()
                .chain(updated)
                .filter(|&&e| e > st && e <= st + duration + DETECTION_GRACE)
                .min()
                .map(|&e| (e - st) as f64 / MIN as f64)
        })
        .collect()
}

pub struct Report {
    pub nab: Vec<nab::SeriesScore>,
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

/// Runs the whole evaluation on a NAB corpus folder (`nab_dir`) and a SemEval folder (the texts), with the
/// windows, detection and limits of `cfg` and posts labelled by VADER at `thresholds`.
pub fn run(
    nab_dir: &Path,
    semeval: &Path,
    cfg: &AggregatorConfig,
    thresholds: LabelThresholds,
    opts: &DetectOptions,
) -> Result<Report> {
    let DetectOptions { seed, only, isolated, trace } = *opts;
    let (nab_scores, nab_total) = nab::run(nab_dir, cfg, thresholds)?;
    let scorer = LexiconScorer::new(thresholds);
    let texts = load_texts(semeval, &scorer)?;
    let series = load_series(nab_dir)?;
    let mut false_alarms = Vec::new();
    let mut natural_surges_found = Vec::new();
    let mut causes = Vec::new();
    for (i, s) in series.iter().enumerate() {
        let (opened, _) = run_series(s, &texts, cfg, None, seed ^ (i as u64) << 32, trace)?;
        let warm = s.rows[0].0 + cfg.detection.warmup_secs as Millis * 1000;
        let fa: Vec<Millis> = opened.into_iter().filter(|&t| t > warm && !s.labelled(t, 0)).collect();
        let weeks = s.weeks_unlabelled_after(warm);
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
                    let end = st + cell.duration + ISOLATED_TAIL;
                    let cut = Series {
                        name: s.name.clone(),
                        rows: s.rows.iter().copied().take_while(|r| r.0 < end).collect(),
                        windows: s.windows.clone(),
                    };
                    let k_seed = run_seed ^ ((k as u64 + 1) << 16);
                    let (o, u) = run_series(&cut, &texts, cfg, Some((*cell, &[st])), k_seed, trace)?;
                    v.extend(delays(&[st], cell.duration, &o, &u));
                }
                v
            } else {
                let (opened, updated) = run_series(s, &texts, cfg, Some((*cell, &starts)), run_seed, trace)?;
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::time::HOUR;

    #[test]
    fn delays_take_the_first_event_inside_the_injection() {
        let st = [10 * HOUR, 40 * HOUR];
        let d = delays(&st, HOUR, &[9 * HOUR, 10 * HOUR + 7 * MIN, 41 * HOUR + 16 * MIN], &[10 * HOUR + 3 * MIN]);
        assert_eq!(d, vec![Some(3.0), None]);
        assert_eq!(median(vec![5.0, 1.0, 3.0]), Some(3.0));
        assert_eq!(median(vec![4.0, 1.0]), Some(2.5));
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
}
