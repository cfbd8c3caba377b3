//! The runs of `eval-detect` and what is measured from them.
//!
//! 1. NAB standard score on the NAB corpus folder (`nab`), one configuration for all series.
//! 2. False alarms per entity-week: `opened` events on the un-injected backgrounds (`simulate`), outside NAB's
//!    labelled windows (those are real anomalies) and after the warm-up; beside them, the natural surges the
//!    backgrounds hold (`natural_surge_runs`, `NATURAL`) and what each false alarm opened on (`alarm_causes`).
//! 3. Injections, one cell per (kind, size, duration) (`injection`). An injection counts as detected by the
//!    first `opened` (or `updated`, escalating an open incident) event whose window ends inside it or up to
//!    `DETECTION_GRACE` after; the delay is from the injection's start.
//! 4. What a detected injection's events say (`judge`): whether its topic's phrase is among the top three
//!    drivers of the event that detected it, or of any event of that incident while the injection lasts; and
//!    whether its class is right (a volume surge at the background's sentiment is `buzz`, a share shift or a
//!    doubling of negative posts `crisis`).
//! 5. The budget (`budget`): on the un-injected backgrounds, the openings on neither a labelled window nor a
//!    natural × 3 surge of at least 10 minutes (an opening on one is a true `watch` detection of it), and the
//!    pages (incidents that were `crisis` at `warning` or above), per entity-week.
//! 6. The targets (`targets`): recall and median delay pooled over the cells they name, the share detected
//!    within the delay asked, and the share of injections whose first minutes carry the evidence any detector
//!    needs (`injection::information`, Lorden's bound) at the realised false-alarm rate (openings on neither
//!    a labelled window nor a natural surge), at the rate of all openings, and at the budget; the ratio of
//!    the share detected in time to the share that carries the evidence at the realised false-alarm rate is
//!    how close the detector comes to what is knowable.

use crate::corpus::{load_series, load_texts, Series};
use crate::error::Result;
use crate::injection::{cells, information, makes_surge, placements, target_horizon, topic, Cell, Kind, Topic};
use crate::nab;
use crate::simulate::{run_series, Injections, RunEvent};
use crate::time::{DAY, MIN, STEP};
use flashpoint_core::aggregate::AggregatorConfig;
use flashpoint_core::detect::sim::Rng;
use flashpoint_core::detect::{IncidentClass, Severity};
use flashpoint_core::event::EventKind;
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
    /// Per injection, whether it is a natural surge by the budget's rule in expectation (`makes_surge`).
    pub surge: Vec<bool>,
    /// Of the detected injections (`judge`): the topic among the top drivers of the detecting event, of any
    /// event of that incident during the injection; the class right at the detecting event, at the last
    /// event during the injection.
    pub topic_first: usize,
    pub topic_best: usize,
    pub class_first: usize,
    pub class_last: usize,
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

/// For each start, the first opened/updated event (its index in `events`, which are in time order) whose
/// window ends within the injection's duration + `DETECTION_GRACE`.
pub fn detections(starts: &[Millis], duration: Millis, events: &[RunEvent]) -> Vec<Option<usize>> {
    starts
        .iter()
        .map(|&st| {
            events
                .iter()
                .position(|e| e.kind != EventKind::Resolved && e.end > st && e.end <= st + duration + DETECTION_GRACE)
        })
        .collect()
}

/// Minutes from each start to its detection (`detections`).
pub fn delays(starts: &[Millis], duration: Millis, events: &[RunEvent]) -> Vec<Option<f64>> {
    detections(starts, duration, events)
        .into_iter()
        .zip(starts)
        .map(|(i, &st)| i.map(|i| (events[i].end - st) as f64 / MIN as f64))
        .collect()
}

/// The class an injection of `kind` should get: surges of ordinary posts are buzz, the rest crisis.
pub fn expected_class(kind: Kind) -> IncidentClass {
    match kind {
        Kind::Volume(_) => IncidentClass::Buzz,
        Kind::Share(_) | Kind::NegativeTimes2 => IncidentClass::Crisis,
    }
}

/// What the events of a detected injection say, against what was injected (see the module comment).
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Judged {
    pub topic_first: bool,
    pub topic_best: bool,
    pub class_first: bool,
    pub class_last: bool,
}

/// Judges the injection at `start` detected by `events[first]`: the events of that incident from the
/// detecting one to the injection's end + `DETECTION_GRACE`.
pub fn judge(
    events: &[RunEvent],
    first: usize,
    start: Millis,
    duration: Millis,
    topic: &Topic,
    class: IncidentClass,
) -> Judged {
    let d = &events[first];
    let has = |e: &RunEvent| e.drivers.contains(&topic.phrase);
    let mut j = Judged { topic_first: has(d), topic_best: false, class_first: d.class == class, class_last: false };
    let mut last = d;
    for e in events[first..].iter().filter(|e| e.incident == d.incident && e.end <= start + duration + DETECTION_GRACE)
    {
        j.topic_best |= has(e);
        last = e;
    }
    j.class_last = last.class == class;
    j
}

/// The budget's counts on one un-injected background (`budget`).
#[derive(Clone, Debug, Default, PartialEq, serde::Serialize)]
pub struct Budget {
    pub series: String,
    /// Openings after the warm-up outside labelled windows, and the entity-weeks they were counted over.
    pub openings: usize,
    pub weeks_unlabelled: f64,
    /// Of those, openings on a natural × 3 surge of at least 10 minutes; and on neither.
    pub on_natural: usize,
    pub unexplained: usize,
    /// Incidents opened after the warm-up that were `crisis` at `warning` or above at some event, anywhere (a
    /// labelled window holds posts at the background's sentiment too), and the entity-weeks after the warm-up.
    pub pages: usize,
    pub weeks: f64,
}

/// Counts `events` of an un-injected background against its labelled windows and `natural` surges (an opening
/// from 30 minutes before a surge to 10 minutes after it is on it, as in `alarm_causes`).
pub fn budget(s: &Series, events: &[RunEvent], warm: Millis, natural: &[(Millis, Millis)]) -> Budget {
    let on = |t: Millis| natural.iter().any(|&(a, b)| t >= a - 30 * MIN && t <= b + 10 * MIN);
    let mut b = Budget {
        series: s.name.clone(),
        weeks_unlabelled: s.weeks_unlabelled_after(warm),
        weeks: (s.rows.last().map_or(warm, |r| r.0) - warm).max(0) as f64 / (7 * DAY) as f64,
        ..Budget::default()
    };
    let mut opened_after: Vec<&str> = Vec::new();
    let mut paged: Vec<&str> = Vec::new();
    for e in events {
        if e.kind == EventKind::Opened && e.end > warm {
            opened_after.push(&e.incident);
            if !s.labelled(e.end, 0) {
                b.openings += 1;
                if on(e.end) {
                    b.on_natural += 1;
                } else {
                    b.unexplained += 1;
                }
            }
        }
        let page = e.class == IncidentClass::Crisis && e.severity >= Severity::Warning;
        if page && opened_after.contains(&e.incident.as_str()) && !paged.contains(&e.incident.as_str()) {
            paged.push(&e.incident);
        }
    }
    b.pages = paged.len();
    b
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
    /// Per series, the two budget rates' counts (`budget`).
    pub budget: Vec<Budget>,
    pub cells: Vec<CellResult>,
}

impl Report {
    /// The realised false-alarm rate: openings per entity-week on the backgrounds after the warm-up on neither
    /// a labelled window nor a natural surge (an opening on one of those is a true detection of a change). With
    /// none, one over the whole run: an upper estimate, and what keeps Lorden's `ln γ` finite.
    pub fn false_alarm_rate(&self) -> f64 {
        let (n, w) = self.budget.iter().fold((0, 0.0), |a, b| (a.0 + b.unexplained, a.1 + b.weeks_unlabelled));
        n.max(1) as f64 / f64::max(w, 1e-9)
    }

    /// Every opening per entity-week on the backgrounds after the warm-up outside labelled windows, natural
    /// surges included: how often the detector alarms on these streams when nothing is injected.
    pub fn opening_rate(&self) -> f64 {
        let (n, w) = self.budget.iter().fold((0, 0.0), |a, b| (a.0 + b.openings, a.1 + b.weeks_unlabelled));
        n.max(1) as f64 / f64::max(w, 1e-9)
    }
}

/// One target (`targets`).
#[derive(Clone, Debug, PartialEq, serde::Serialize)]
pub struct Target {
    pub label: &'static str,
    pub injections: usize,
    pub recall: f64,
    pub median_delay: Option<f64>,
    /// How soon the target asks (minutes), and the share detected that soon.
    pub horizon_min: f64,
    pub within: f64,
    /// The share of injections whose first `horizon_min` carry Lorden's evidence (`ln γ`, nats) at the realised
    /// false-alarm rate (`Report::false_alarm_rate`), at the rate of all openings (`Report::opening_rate`, a
    /// harder bound), and at the budget.
    pub nats_realised: f64,
    pub carry_realised: f64,
    pub nats_openings: f64,
    pub carry_openings: f64,
    pub nats_budget: f64,
    pub carry_budget: f64,
    /// `within / carry_realised`: the share of what is knowable that the detector knew in time.
    pub bound_ratio: Option<f64>,
    /// The goal for `bound_ratio`.
    pub goal: f64,
}

/// The targets, pooled over the cells they name: (label, kind, shortest duration in minutes, least posts an
/// hour of the series, goal for the bound ratio).
pub const TARGETS: [(&str, Kind, i64, f64, f64); 3] = [
    ("volume x3, >= 1 h", Kind::Volume(3.0), 60, 0.0, 0.8),
    ("share +20, >= 1 h, >= 30 posts/h", Kind::Share(0.2), 60, 30.0, 0.8),
    ("negatives x2 for a day", Kind::NegativeTimes2, 1440, 0.0, 0.9),
];

/// The targets from the cells, with Lorden's `ln γ` at the realised false-alarm rate, at the rate of all
/// openings and at the budget (each per entity-week; `steps_per_week` detector steps in a week).
pub fn targets(cells: &[CellResult], steps_per_week: f64, realised: f64, openings: f64, budget: f64) -> Vec<Target> {
    let nats = |rate: f64| (steps_per_week / rate).ln();
    let (nats_realised, nats_openings, nats_budget) = (nats(realised), nats(openings), nats(budget));
    TARGETS
        .iter()
        .map(|&(label, kind, dur, rate, goal)| {
            let horizon = (target_horizon(kind) / MIN) as f64;
            let (mut n, mut hit, mut soon) = (0, Vec::new(), 0);
            let (mut carry_r, mut carry_o, mut carry_b) = (0, 0, 0);
            for c in cells.iter().filter(|c| c.kind == kind.name() && c.duration_min >= dur) {
                for (k, &(per_hour, d)) in c.delays.iter().enumerate() {
                    if per_hour < rate {
                        continue;
                    }
                    n += 1;
                    hit.extend(d);
                    soon += usize::from(d.is_some_and(|d| d <= horizon));
                    let info = c.information.get(k).copied().unwrap_or(0.0);
                    carry_r += usize::from(info >= nats_realised);
                    carry_o += usize::from(info >= nats_openings);
                    carry_b += usize::from(info >= nats_budget);
                }
            }
            let share = |k: usize| k as f64 / n.max(1) as f64;
            Target {
                label,
                injections: n,
                recall: share(hit.len()),
                median_delay: median(hit),
                horizon_min: horizon,
                within: share(soon),
                nats_realised,
                carry_realised: share(carry_r),
                nats_openings,
                carry_openings: share(carry_o),
                nats_budget,
                carry_budget: share(carry_b),
                bound_ratio: (carry_r > 0).then(|| soon as f64 / carry_r as f64),
                goal,
            }
        })
        .collect()
}

/// The budget's natural surge: × 3 the robust baseline for two 5-minute rows (ten minutes).
pub const BUDGET_SURGE: (f64, usize) = (3.0, 2);

/// Surges the background already holds, outside NAB's labelled windows, of the kind the recall target asks
/// to catch: runs of at least `min_rows` 5-minute rows whose count is at least `ratio` × a robust seasonal
/// baseline (the median of the same row ± 5 minutes over the previous seven days) + 2. A detector that
/// catches injected surges of that size must also open on these, and each one counts as a false alarm
/// here; so they bound what "false alarms per entity-week" can reach at a given recall. Counted from day 8.
/// Returns the runs (start of the first row, end of the last) and the entity-weeks they were counted over.
pub fn natural_surge_runs(s: &Series, ratio: f64, min_rows: usize) -> (Vec<(Millis, Millis)>, f64) {
    natural_surge_runs_from(s, ratio, min_rows, 7, false)
}

/// `natural_surge_runs` from day `from_day` + 1 on (at least 1), the baseline over the previous seven days or
/// as many as there are: the budget judges openings from the end of the warm-up, before a week has passed.
/// With `labelled`, also the runs that reach into a labelled window: for the budget, an opening on the rise of
/// a labelled anomaly, before its window begins, is on a surge, not on nothing.
pub fn natural_surge_runs_from(
    s: &Series,
    ratio: f64,
    min_rows: usize,
    from_day: usize,
    labelled: bool,
) -> (Vec<(Millis, Millis)>, f64) {
    let per_day = (DAY / STEP) as usize;
    let first = from_day.max(1) * per_day + 1;
    let mut found = Vec::new();
    let (mut run, mut touches_label) = (0, false);
    let mut close = |i: usize, run: usize, touches_label: bool| {
        if run >= min_rows && (labelled || !touches_label) {
            found.push((s.rows[i - run].0, s.rows[i - 1].0 + STEP));
        }
    };
    for (i, &(t, count)) in s.rows.iter().enumerate().skip(first) {
        if s.surge_row(i, count as f64, ratio) {
            run += 1;
            touches_label |= s.labelled(t, 0);
        } else {
            close(i, run, touches_label);
            run = 0;
            touches_label = false;
        }
    }
    close(s.rows.len(), run, touches_label);
    let span = s.rows.len().saturating_sub(first - 1) as f64 * STEP as f64;
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
    let mut budgets = Vec::new();
    // The natural surges the budget excuses are judged from the end of the warm-up.
    let warm_days = cfg.detection.warmup_secs.div_ceil(86_400) as usize;
    for (i, s) in series.iter().enumerate() {
        let events = run_series(s, &texts, cfg, None, seed ^ (i as u64) << 32, trace)?;
        let warm = s.rows[0].0 + cfg.detection.warmup_secs as Millis * 1000;
        budgets.push(budget(
            s,
            &events,
            warm,
            &natural_surge_runs_from(s, BUDGET_SURGE.0, BUDGET_SURGE.1, warm_days, true).0,
        ));
        let opened = events.iter().filter(|e| e.kind == EventKind::Opened).map(|e| e.end);
        let fa: Vec<Millis> = opened.filter(|&t| t > warm && !s.labelled(t, 0)).collect();
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
        let class = expected_class(cell.kind);
        for (i, s) in series.iter().enumerate() {
            let run_seed = seed ^ ((i as u64) << 32) ^ ((c as u64 + 1) << 40);
            let starts = placements(s, cell.duration, &mut Rng::new(run_seed ^ 0xabc));
            let topics: Vec<Topic> = starts.iter().map(|&st| topic(run_seed ^ st as u64)).collect();
            let per_hour = s.rows.iter().map(|r| r.1).sum::<u64>() as f64 / (s.rows.len() as f64 / 12.0);
            // Per injection: its delay, and what its events say if detected.
            let mut found: Vec<(Option<f64>, Option<Judged>)> = Vec::new();
            let mut judged = |events: &[RunEvent], starts: &[Millis], topics: &[Topic]| {
                for ((det, &st), tp) in detections(starts, cell.duration, events).into_iter().zip(starts).zip(topics) {
                    let delay = det.map(|k| (events[k].end - st) as f64 / MIN as f64);
                    found.push((delay, det.map(|k| judge(events, k, st, cell.duration, tp, class))));
                }
            };
            if isolated {
                for (k, &st) in starts.iter().enumerate() {
                    let end = st + cell.duration + ISOLATED_TAIL;
                    let cut = Series {
                        name: s.name.clone(),
                        rows: s.rows.iter().copied().take_while(|r| r.0 < end).collect(),
                        windows: s.windows.clone(),
                    };
                    let k_seed = run_seed ^ ((k as u64 + 1) << 16);
                    let one = Injections { cell: *cell, starts: &starts[k..=k], topics: &topics[k..=k] };
                    let events = run_series(&cut, &texts, cfg, Some(one), k_seed, trace)?;
                    judged(&events, &starts[k..=k], &topics[k..=k]);
                }
            } else {
                let all = Injections { cell: *cell, starts: &starts, topics: &topics };
                let events = run_series(s, &texts, cfg, Some(all), run_seed, trace)?;
                judged(&events, &starts, &topics);
            }
            for (d, j) in found {
                r.injected += 1;
                r.detected += usize::from(d.is_some());
                r.delays.push((per_hour, d));
                if let Some(j) = j {
                    r.topic_first += usize::from(j.topic_first);
                    r.topic_best += usize::from(j.topic_best);
                    r.class_first += usize::from(j.class_first);
                    r.class_last += usize::from(j.class_last);
                }
            }
            let (ratio, rows) = (BUDGET_SURGE.0, BUDGET_SURGE.1);
            r.surge.extend(starts.iter().map(|&st| makes_surge(s, cell.kind, cell.duration, st, ratio, rows)));
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
        budget: budgets,
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
        let ev = |kind, end| RunEvent {
            kind,
            end,
            incident: String::new(),
            class: IncidentClass::Buzz,
            severity: Severity::Watch,
            drivers: vec![],
        };
        let events = [
            ev(EventKind::Opened, 9 * HOUR),
            ev(EventKind::Updated, 10 * HOUR + 3 * MIN),
            ev(EventKind::Opened, 10 * HOUR + 7 * MIN),
            ev(EventKind::Resolved, 40 * HOUR + 5 * MIN),
            ev(EventKind::Opened, 41 * HOUR + 16 * MIN),
        ];
        assert_eq!(delays(&st, HOUR, &events), vec![Some(3.0), None], "a resolution detects nothing");
        assert_eq!(detections(&st, HOUR, &events), vec![Some(1), None]);
        assert_eq!(median(vec![5.0, 1.0, 3.0]), Some(3.0));
        assert_eq!(median(vec![4.0, 1.0]), Some(2.5));
    }

    fn event(kind: EventKind, end: Millis, incident: &str, class: IncidentClass, severity: Severity) -> RunEvent {
        RunEvent { kind, end, incident: incident.into(), class, severity, drivers: vec![] }
    }

    #[test]
    fn judging_reads_the_detecting_event_and_its_incident_while_the_injection_lasts() {
        use EventKind::*;
        use IncidentClass::*;
        let tp = Topic { phrase: "battery fire".into(), rate: 0.5 };
        let with = |mut e: RunEvent, d: &[&str]| {
            e.drivers = d.iter().map(|s| s.to_string()).collect();
            e
        };
        let st = 10 * HOUR;
        let events = vec![
            with(event(Opened, st + 5 * MIN, "a", Buzz, Severity::Watch), &["screen", "crash", "glitch"]),
            event(Opened, st + 6 * MIN, "other", Crisis, Severity::Watch),
            with(event(Updated, st + 30 * MIN, "a", Crisis, Severity::Warning), &["x", "y", "battery fire"]),
            // After the injection and its grace: not read.
            with(event(Updated, st + HOUR + 16 * MIN, "a", Buzz, Severity::Watch), &["battery fire"]),
        ];
        let j = judge(&events, 0, st, HOUR, &tp, Buzz);
        assert_eq!(j, Judged { topic_first: false, topic_best: true, class_first: true, class_last: false });
        let j = judge(&events, 0, st, HOUR, &tp, Crisis);
        assert_eq!((j.class_first, j.class_last), (false, true));
        // Only the top three count: `RunEvent` keeps no more, and a fourth-ranked phrase is not found.
        let deep = [with(event(Opened, st + 5 * MIN, "b", Buzz, Severity::Watch), &["a", "b", "c"])];
        assert!(!judge(&deep, 0, st, HOUR, &tp, Buzz).topic_best);
        assert_eq!(expected_class(Kind::Volume(3.0)), Buzz);
        assert_eq!(expected_class(Kind::Share(0.2)), Crisis);
        assert_eq!(expected_class(Kind::NegativeTimes2), Crisis);
    }

    #[test]
    fn the_budget_excuses_natural_surges_and_counts_each_page_once() {
        use EventKind::*;
        use IncidentClass::*;
        let rows: Vec<(Millis, u64)> = (0..(14 * DAY / STEP)).map(|i| (i * STEP, 10)).collect();
        let s = Series { name: "x".into(), rows, windows: vec![(11 * DAY, 11 * DAY + HOUR)] };
        let warm = 2 * DAY;
        let natural = [(9 * DAY, 9 * DAY + 20 * MIN)];
        let w = Severity::Warning;
        let events = [
            event(Opened, DAY, "warm", Crisis, w), // in the warm-up: nothing
            event(Opened, 9 * DAY - 20 * MIN, "n", Buzz, Severity::Watch), // on the surge, early
            event(Opened, 9 * DAY + 31 * MIN, "late", Crisis, Severity::Watch), // 11 min after it: neither
            event(Updated, 9 * DAY + 40 * MIN, "late", Crisis, w), // a page
            event(Updated, 9 * DAY + 50 * MIN, "late", Crisis, Severity::Critical), // the same page
            event(Opened, 11 * DAY + 10 * MIN, "lab", Buzz, Severity::Watch), // labelled window
            event(Updated, 11 * DAY + 20 * MIN, "lab", Crisis, w), // still a page
            event(Opened, 12 * DAY, "buzz", Buzz, w), // buzz is never a page
        ];
        let b = budget(&s, &events, warm, &natural);
        assert_eq!((b.openings, b.on_natural, b.unexplained, b.pages), (3, 1, 2, 2), "{b:?}");
        assert!((b.weeks - (14.0 * DAY as f64 - STEP as f64 - warm as f64) / (7.0 * DAY as f64)).abs() < 1e-9);
        assert!((b.weeks_unlabelled - (b.weeks - HOUR as f64 / (7.0 * DAY as f64))).abs() < 1e-9);
    }

    #[test]
    fn targets_compare_the_share_detected_in_time_with_the_share_that_carries_the_evidence() {
        let steps = 10_080.0;
        // Four x3 injections of an hour: detected at 5, 8 and 30 minutes, and missed; the first three carry
        // 12 nats in their first 10 minutes, the last 3.
        let cell = CellResult {
            kind: Kind::Volume(3.0).name(),
            duration_min: 60,
            injected: 4,
            detected: 3,
            delays: vec![(100.0, Some(5.0)), (100.0, Some(8.0)), (100.0, Some(30.0)), (100.0, None)],
            information: vec![12.0, 12.0, 12.0, 3.0],
            ..CellResult::default()
        };
        // A 15-minute cell is not part of the target.
        let short = CellResult { duration_min: 15, delays: vec![(100.0, Some(1.0))], ..cell.clone() };
        let t = &targets(&[cell.clone(), short.clone()], steps, 2.0, 1000.0, 0.5)[0];
        assert_eq!(t.injections, 4);
        assert_eq!((t.recall, t.within, t.median_delay), (0.75, 0.5, Some(8.0)));
        // ln(10080 / 2) = 8.5 nats at the realised rate, ln(10080 / 0.5) = 9.9 at the budget.
        assert!((t.nats_realised - (steps / 2.0).ln()).abs() < 1e-12 && (t.nats_budget - 9.911).abs() < 1e-3);
        assert_eq!((t.carry_realised, t.carry_budget), (0.75, 0.75));
        // At 1,000 openings a week (2.3 nats) even the quiet one carries enough.
        assert_eq!(t.carry_openings, 1.0);
        assert!((t.bound_ratio.unwrap() - 2.0 / 3.0).abs() < 1e-12);
        // Alarming far less often needs more evidence: at 0.001 a week (16.1 nats) none carries it.
        let t = &targets(&[cell], steps, 0.001, 1000.0, 0.5)[0];
        assert_eq!((t.carry_realised, t.bound_ratio), (0.0, None));
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
        // From the warm-up, with the days there are: the day-9 surge, and one on day 3 against two days.
        let mut rows = s.rows.clone();
        for k in 0..2 {
            rows[row(2 * DAY + 6 * HOUR) + k].1 = 40;
        }
        let s = Series { rows, ..s };
        let (runs, weeks) = natural_surge_runs_from(&s, 3.0, 2, 2, false);
        assert_eq!(runs.len(), 3, "{runs:?}");
        assert_eq!(runs[0], (2 * DAY + 6 * HOUR, 2 * DAY + 6 * HOUR + 10 * MIN));
        assert!((weeks - (12.0 * DAY as f64 - 13.0 * HOUR as f64) / (7.0 * DAY as f64)).abs() < 0.01, "{weeks}");
        assert_eq!(natural_surge_runs(&s, 3.0, 2).0.len(), 2, "from day 8 the day-3 surge is not counted");
        // For the budget, the run inside the labelled window counts too.
        let with_labelled = natural_surge_runs_from(&s, 3.0, 2, 2, true).0;
        assert_eq!(with_labelled.len(), 4, "{with_labelled:?}");
        assert!(with_labelled.contains(&(11 * DAY + 12 * HOUR, 11 * DAY + 12 * HOUR + 30 * MIN)));
    }
}
