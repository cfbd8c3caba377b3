//! Spike detection: per-entity count models, CUSUM statistics calibrated to a false-alarm budget, and the
//! incident lifecycle.
//!
//! Each closed window brings one *step*: the posts of its newest pane (the part no earlier window held), so
//! steps never overlap. Three signals are tested on every step: the volume, the count of negative posts and
//! the negative share. Counts are negative binomial around a seasonal baseline, the share quasi-binomial
//! (`model`). For each signal, three CUSUMs test three sizes of change (volume and negatives × 2, × 4 and
//! × 10; share + 10, + 20 and + 35 points): a CUSUM sums evidence over however long a change lasts, so one
//! statistic sees a ten-minute burst and a day-long doubling alike.
//!
//! Calibration: a CUSUM on an exact likelihood ratio with threshold `h` raises a false alarm at most once per
//! `e^h` steps (Lorden). With `m` statistics OR-ed, `h = ln(m × steps per week / false_alarms_per_week)` keeps
//! the whole detector within the weekly budget, whatever the window slide. The models' dispersions are
//! learned from their own prediction errors, at the step and the hour scale, so the likelihood ratios are
//! honest on overdispersed, autocorrelated social data rather than on a textbook Poisson stream. Low counts
//! need no minimum volume: one post is worth at most `ln 10` nats of evidence, so an entity that is usually
//! silent needs about `h / ln 10` posts within a short span to open an incident.
//!
//! The lifecycle: `opened` when a statistic crosses `h`; `updated` when the incident escalates (its
//! severity rises, its signal's smoothed rate doubles since the last event, or another signal fires); `resolved` when every window
//! has been near baseline for `resolve_after_secs`, or, for a `watch` incident that has neither grown nor
//! faded for `reassess_after_secs`, on re-assessment (the baseline has had time to learn the new level; if
//! the surge grows again it re-opens). Severity comes from impact: excess negative posts since opening and
//! the reach of the negative posts. Everything here is a pure function of the window sequence.

pub mod model;
pub mod sim;

use crate::time::{hour_of_day, Millis};
use crate::window::WindowStats;
use model::{binom_llr, decay_for, nb_llr, CountModel, Cusum, Rates, ShareModel};
use serde::{Deserialize, Serialize};

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum Sensitivity {
    /// 0.1 false alarms per entity-week.
    Low,
    /// 0.5 false alarms per entity-week.
    #[default]
    Medium,
    /// 2 false alarms per entity-week.
    High,
}

impl Sensitivity {
    pub fn false_alarms_per_week(self) -> f64 {
        match self {
            Sensitivity::Low => 0.1,
            Sensitivity::Medium => 0.5,
            Sensitivity::High => 2.0,
        }
    }
}

/// Detection settings; durations are in seconds.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DetectionConfig {
    pub sensitivity: Sensitivity,
    /// Target false alarms per entity and week on a stream without incidents (overrides the preset).
    pub false_alarms_per_week: Option<f64>,
    /// No incident opens before the baseline has seen this much event time.
    pub warmup_secs: u64,
    /// Half-life of the baseline level (and of the negative share).
    pub baseline_half_life_secs: u64,
    /// Half-life of the hour-of-day profile, in days of that hour (0 disables the daily cycle).
    pub seasonal_half_life_days: f64,
    /// Half-life of the day-of-week profile, in weeks (0 disables the weekly cycle).
    pub weekly_half_life_weeks: f64,
    /// Half-life of the learned dispersions.
    pub dispersion_half_life_secs: u64,
    /// An incident resolves after this long with every window near baseline.
    pub resolve_after_secs: u64,
    /// A `watch` incident with no escalation for this long is re-assessed: resolved (0 disables).
    pub reassess_after_secs: u64,
    /// No new incident for this long after one resolves.
    pub cooldown_secs: u64,
    /// An open incident is updated when its signal's smoothed rate reaches this multiple of the last event's.
    pub escalate_ratio: f64,
    /// Excess negative posts since opening (above baseline) that make an incident `warning` / `critical`.
    pub warning_excess_negative: f64,
    pub critical_excess_negative: f64,
    /// Followers reached by the incident's negative posts that make it `warning` / `critical`.
    pub warning_negative_reach: u64,
    pub critical_negative_reach: u64,
}

impl Default for DetectionConfig {
    fn default() -> Self {
        DetectionConfig {
            sensitivity: Sensitivity::Medium,
            false_alarms_per_week: None,
            warmup_secs: 2 * 86_400,
            baseline_half_life_secs: 86_400,
            seasonal_half_life_days: 7.0,
            weekly_half_life_weeks: 4.0,
            dispersion_half_life_secs: 7 * 86_400,
            resolve_after_secs: 3_600,
            reassess_after_secs: 6 * 3_600,
            cooldown_secs: 3_600,
            escalate_ratio: 2.0,
            warning_excess_negative: 25.0,
            critical_excess_negative: 250.0,
            warning_negative_reach: 1_000_000,
            critical_negative_reach: 10_000_000,
        }
    }
}

/// Sizes of change each signal's CUSUMs are tuned to.
pub const RATE_RATIOS: [f64; 3] = [2.0, 4.0, 10.0];
pub const SHARE_LIFTS: [f64; 3] = [0.10, 0.20, 0.35];
/// Most evidence a minute of posts may add to the volume and negatives statistics of the sustained designs
/// (× 2 and × 4; the × 10 design is the burst detector and is not capped). A moderate change must last to be
/// believed: at about 12 nats (the `medium` threshold at one-minute steps) it takes six minutes of it, so the
/// short blips that real tweet streams show many times a week stay below, and do not teach those statistics'
/// calibration an enormous tail, while a lasting surge is not held to the burst detector's heavy-tailed
/// threshold. Chosen on the `eval-detect` backgrounds (see README, "Evaluating detection").
pub const MAX_NATS_PER_MINUTE: f64 = 2.0;
/// Statistics OR-ed by the detector: the multiple test the budget is split over.
pub const STATISTICS: usize = 2 * RATE_RATIOS.len() + SHARE_LIFTS.len();

/// Thresholds and rates resolved from the config and the window spec.
#[derive(Clone, Debug)]
pub struct Thresholds {
    pub false_alarms_per_week: f64,
    /// Theoretical CUSUM threshold, nats (each statistic's calibrated threshold is at least this).
    pub h: f64,
    /// Decay per step of the statistics' calibration samples (two-week half-life), and their prior weight.
    pub calib_decay: f64,
    pub calib_prior_steps: f64,
    /// Most evidence one step may add to a count statistic (nats): a change must last to be believed.
    pub llr_cap: f64,
    pub rates: Rates,
    pub warmup_steps: u64,
    pub resolve_after_steps: u64,
    pub reassess_after_steps: u64,
    pub cooldown_steps: u64,
    pub escalate_ratio: f64,
    /// Smoothing weight of the incident intensity (a 15-minute half-life).
    pub alpha_intensity: f64,
    pub panes_per_window: f64,
    pub warning_excess_negative: f64,
    pub critical_excess_negative: f64,
    pub warning_negative_reach: f64,
    pub critical_negative_reach: f64,
}

const WEEK_MS: f64 = 7.0 * 86_400_000.0;

impl DetectionConfig {
    pub fn target_false_alarms_per_week(&self) -> f64 {
        self.false_alarms_per_week.unwrap_or(self.sensitivity.false_alarms_per_week())
    }

    pub fn resolve(&self, slide_ms: Millis, size_ms: Millis) -> Result<Thresholds, String> {
        let fa = self.target_false_alarms_per_week();
        if !(fa > 0.0 && fa.is_finite()) {
            return Err(format!("false_alarms_per_week must be positive, got {fa}"));
        }
        if self.baseline_half_life_secs == 0 {
            return Err("baseline_half_life_secs must be positive".into());
        }
        if !(self.seasonal_half_life_days >= 0.0) || !(self.weekly_half_life_weeks >= 0.0) {
            return Err("seasonal_half_life_days and weekly_half_life_weeks must be >= 0".into());
        }
        if !(self.escalate_ratio > 1.0) {
            return Err(format!("escalate_ratio must be > 1, got {}", self.escalate_ratio));
        }
        if !(self.warning_excess_negative >= 0.0 && self.critical_excess_negative >= self.warning_excess_negative) {
            return Err("need 0 <= warning_excess_negative <= critical_excess_negative".into());
        }
        if self.critical_negative_reach < self.warning_negative_reach {
            return Err("need warning_negative_reach <= critical_negative_reach".into());
        }
        let slide = slide_ms as f64;
        let steps = |secs: u64| ((secs as f64 * 1000.0) / slide).ceil() as u64;
        let steps_f = |secs: f64| secs * 1000.0 / slide;
        let steps_per_week = WEEK_MS / slide;
        let h = (STATISTICS as f64 * steps_per_week / fa).ln().max(1.0);
        // Each hour-of-day bin sees `3600 s / slide` steps a day.
        let season_decay = if self.seasonal_half_life_days > 0.0 {
            decay_for(self.seasonal_half_life_days * steps_f(3_600.0))
        } else {
            0.0
        };
        Ok(Thresholds {
            false_alarms_per_week: fa,
            h,
            calib_decay: decay_for(steps_f(14.0 * 86_400.0)),
            calib_prior_steps: steps_f(86_400.0),
            llr_cap: MAX_NATS_PER_MINUTE * slide / 60_000.0,
            rates: Rates {
                alpha_level: 1.0 - decay_for(steps_f(self.baseline_half_life_secs as f64)),
                season_decay,
                // Each weekday bin sees `86400 s / slide` steps a week.
                week_decay: if self.weekly_half_life_weeks > 0.0 {
                    decay_for(self.weekly_half_life_weeks * steps_f(86_400.0))
                } else {
                    0.0
                },
                steps_per_day: steps_f(86_400.0),
                dispersion_decay: decay_for(steps_f(self.dispersion_half_life_secs as f64)),
                block_steps: steps(3_600).max(1),
            },
            warmup_steps: steps(self.warmup_secs),
            resolve_after_steps: steps(self.resolve_after_secs).max(1),
            reassess_after_steps: steps(self.reassess_after_secs),
            cooldown_steps: steps(self.cooldown_secs),
            escalate_ratio: self.escalate_ratio,
            alpha_intensity: 1.0 - decay_for(steps_f(900.0)),
            panes_per_window: (size_ms as f64 / slide).max(1.0),
            warning_excess_negative: self.warning_excess_negative,
            critical_excess_negative: self.critical_excess_negative,
            warning_negative_reach: self.warning_negative_reach as f64,
            critical_negative_reach: self.critical_negative_reach as f64,
        })
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize, PartialOrd, Ord)]
#[serde(rename_all = "snake_case")]
pub enum Signal {
    Volume,
    NegativeVolume,
    NegativeShare,
}

impl Signal {
    pub fn as_str(self) -> &'static str {
        match self {
            Signal::Volume => "volume",
            Signal::NegativeVolume => "negative_volume",
            Signal::NegativeShare => "negative_share",
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize, PartialOrd, Ord)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    Watch,
    Warning,
    Critical,
}

impl Severity {
    pub fn as_str(self) -> &'static str {
        match self {
            Severity::Watch => "watch",
            Severity::Warning => "warning",
            Severity::Critical => "critical",
        }
    }
}

/// Why an incident resolved.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Resolution {
    /// Every window near baseline for `resolve_after_secs`.
    Calm,
    /// A `watch` incident that neither grew nor faded for `reassess_after_secs`.
    Reassessed,
}

/// One signal's reading for one window.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Reading {
    pub signal: Signal,
    /// The window's value (a count, or the share) and what the baseline expected for it.
    pub observed: f64,
    pub baseline: f64,
    /// The signal's strongest CUSUM over the threshold `h`: 1 is the calibrated alarm level.
    pub score: f64,
    pub fired: bool,
}

/// The newest pane of a window: the step the statistics consume.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Step {
    pub volume: u64,
    pub negative: u64,
    /// Posts the scorer read (the rest are in a language it does not read): the negative share's trials.
    pub scored: u64,
    pub reach: u64,
}

/// An incident in progress.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct OpenIncident {
    pub id: String,
    pub started: Millis,
    /// End of the window that opened it (the detection time).
    pub opened_at: Millis,
    pub seq: u64,
    pub severity: Severity,
    /// The signal that opened it; its smoothed rate drives escalation.
    pub signal: Signal,
    /// Signals whose statistic has crossed its threshold during the incident (bit `Signal as u8`): a signal
    /// that joins later (a share shift during a volume surge) is news, and escalates the incident.
    pub signals_fired: u8,
    pub peak_volume: u64,
    pub peak_negative: u64,
    pub peak_negative_share: f64,
    /// Negative posts above the baseline since opening (may dip below 0 while calm).
    pub excess_negative: f64,
    /// Followers reached by negative posts since opening (each step's reach × its negative share).
    pub negative_reach: f64,
    /// Smoothed per-step rate of the signal's count, and its value at the last event.
    pub intensity: f64,
    pub intensity_at_event: f64,
    pub steps_open: u64,
    pub steps_since_event: u64,
    /// Per signal, a CUSUM of the evidence for "back at baseline"; the incident is calm while each signal
    /// it watches holds `CALM_NATS`.
    pub calm_evidence: [f64; 3],
    pub calm_steps: u64,
}

/// What a window did to an entity's incident.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Transition {
    Opened,
    Updated,
    Resolved(Resolution),
}

/// A lifecycle transition with the reading that explains it.
#[derive(Clone, Debug)]
pub struct Decision {
    pub transition: Transition,
    pub incident: OpenIncident,
    pub reading: Reading,
}

/// The per-entity detector: models, statistics and lifecycle state. Serialisable so a worker can checkpoint
/// it (the layout is versioned by `aggregate::STATE_VERSION`).
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct Detector {
    volume: CountModel,
    negative: CountModel,
    share: ShareModel,
    cusum_volume: [Cusum; 3],
    cusum_negative: [Cusum; 3],
    cusum_share: [Cusum; 3],
    steps_seen: u64,
    cooldown_left: u64,
    pub open: Option<OpenIncident>,
    /// The models as they were when the open incident opened. The baselines keep learning during an incident
    /// (so a lasting shift can end it), but when it ends as calm, the data are back where they were and what
    /// the baselines learned from the incident is a bias: left in place, it reads as a stream below baseline
    /// for a day, which inflates the dispersions and the calibration, and the next incident is missed. So a
    /// calm resolution puts these back; a re-assessed one keeps the new level.
    #[serde(default)]
    before_incident: Option<Box<(CountModel, CountModel, ShareModel)>>,
    /// Readings of the last window, for gauges.
    pub last_score: f64,
    pub last_volume_baseline: f64,
    pub last_share_baseline: f64,
}

/// A detector's internals at one moment: what each statistic holds against its calibrated threshold, and
/// what the models believe. For evaluation and debugging, not for decisions.
#[derive(Clone, Debug, Serialize)]
pub struct Diagnostics {
    /// Volume, negatives, share; each in `RATE_RATIOS` / `SHARE_LIFTS` order.
    pub statistic: [[f64; 3]; 3],
    pub threshold: [[f64; 3]; 3],
    /// What the baseline expected of the last window's volume (the window, not one step).
    pub volume_mean: f64,
    pub volume_v: f64,
    pub negative_v: f64,
    pub share: f64,
    pub share_phi: f64,
}

/// Deterministic incident id from the entity and the start of the window that opened it.
pub fn incident_id(entity: &str, start: Millis) -> String {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in entity.as_bytes().iter().chain(b"\x1f").chain(start.to_le_bytes().iter()) {
        h ^= *b as u64;
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    format!("inc-{h:016x}")
}

/// 0 = Thursday (the epoch's weekday); only the grouping matters.
fn day_of_week(ms: Millis) -> usize {
    ms.div_euclid(86_400_000).rem_euclid(7) as usize
}

/// What the models expected of this step and of the window, and whether the window was near baseline.
struct Expectation {
    neg_step: f64,
    vol_window: f64,
    neg_window: f64,
    share: f64,
    /// Evidence this step gives for "back at baseline" against `CALM_RATIO` / `CALM_LIFT`, per signal.
    calm_llr: [f64; 3],
    /// Each statistic's calibrated threshold after this step (volume, negatives, share).
    threshold: [[f64; 3]; 3],
}

/// Odds (in nats) for "back at baseline" that a signal must hold, step after step, for an incident to be calm.
const CALM_NATS: f64 = 3.0;
/// "Back at baseline" is tested against "still × 1.5" (counts) and "still + 10 points" (share): stricter than
/// the smallest change that opens an incident, so a surge that settles at a lower but raised level is not calm.
const CALM_RATIO: f64 = 1.5;
const CALM_LIFT: f64 = 0.10;

impl Detector {
    /// Scores the step against the models, advances the CUSUMs, then lets the models learn from it.
    fn observe(&mut self, w: &WindowStats, step: &Step, th: &Thresholds) -> Expectation {
        let h = hour_of_day(w.end - 1);
        let d = day_of_week(w.end - 1);
        let pv = self.volume.predict(h, d);
        let pn = self.negative.predict(h, d);
        let p0 = self.share.share();
        let phi = self.share.phi();
        let (xv, xn, xs) = (step.volume as f64, step.negative as f64, step.scored as f64);
        let calm_llr = [
            -nb_llr(xv, pv.mean, pv.v, CALM_RATIO),
            -nb_llr(xn, pn.mean, pn.v, CALM_RATIO),
            if step.scored > 0 { -binom_llr(xn, xs, p0, (p0 + CALM_LIFT).min(0.99)) / phi } else { 0.0 },
        ];
        // The statistics start halfway through the warm-up, so their calibration has a day of the entity's own
        // tail behind it when alarms start (with only the theoretical prior, the first days after a warm-up held
        // about a quarter of all false alarms on the eval-detect backgrounds). Their evidence is dropped when the
        // alarms start: gathered against a baseline still being learned, it would be spent at the first step.
        if self.steps_seen == th.warmup_steps {
            self.reset_statistics();
        }
        if self.volume.seen() > 0 && self.steps_seen >= th.warmup_steps / 2 {
            let burst = RATE_RATIOS[RATE_RATIOS.len() - 1];
            let cap = |r: f64| if r < burst { th.llr_cap } else { f64::INFINITY };
            for (c, r) in self.cusum_volume.iter_mut().zip(RATE_RATIOS) {
                // Not censored: on real streams most volume excursions past the threshold are news and retweet
                // storms nobody would call a crisis, and their full size is the heavy tail this statistic must
                // calibrate to (censoring them cost 6 NAB points in more false positives). Negative posts and
                // the share, below, are where an alarm is the incident itself.
                c.step(nb_llr(xv, pv.mean, pv.v, r).min(cap(r)), xv, pv.mean, th.calib_decay);
            }
            for (c, r) in self.cusum_negative.iter_mut().zip(RATE_RATIOS) {
                c.step(nb_llr(xn, pn.mean, pn.v, r).min(cap(r)), xn, pn.mean, th.calib_decay);
            }
            if step.scored > 0 {
                for (c, d) in self.cusum_share.iter_mut().zip(SHARE_LIFTS) {
                    let p1 = (p0 + d).min(0.99);
                    c.step(binom_llr(xn, xs, p0, p1) / phi, xn, xs * p0, th.calib_decay);
                }
            }
        }
        // One threshold per statistic and step, for the censoring here and the readings. Censoring a statistic
        // that did not step is a no-op: its calibration and excursion are as the last step left them.
        let threshold = self.thresholds(th);
        for (cs, t) in [(&mut self.cusum_negative, threshold[1]), (&mut self.cusum_share, threshold[2])] {
            for (c, t) in cs.iter_mut().zip(t) {
                c.censor(t);
            }
        }
        let quiet = self.open.is_none();
        self.volume.learn(xv, h, d, &th.rates, quiet);
        self.negative.learn(xn, h, d, &th.rates, quiet);
        self.share.learn(xn, xs, &th.rates, quiet);
        let k = th.panes_per_window;
        Expectation {
            neg_step: pn.mean,
            vol_window: k * pv.mean,
            neg_window: k * pn.mean,
            share: p0,
            calm_llr,
            threshold,
        }
    }

    fn readings(&self, w: &WindowStats, e: &Expectation) -> [Reading; 3] {
        // A signal's score is its strongest statistic over that statistic's calibrated threshold.
        let score = |cs: &[Cusum; 3], t: [f64; 3]| cs.iter().zip(t).map(|(c, t)| c.s / t).fold(0.0, f64::max);
        let r =
            |signal, observed, baseline, score: f64| Reading { signal, observed, baseline, score, fired: score >= 1.0 };
        [
            r(Signal::Volume, w.volume as f64, e.vol_window, score(&self.cusum_volume, e.threshold[0])),
            r(Signal::NegativeVolume, w.negative as f64, e.neg_window, score(&self.cusum_negative, e.threshold[1])),
            r(Signal::NegativeShare, w.negative_share, e.share, score(&self.cusum_share, e.threshold[2])),
        ]
    }

    fn reset_statistics(&mut self) {
        for c in self.cusum_volume.iter_mut().chain(&mut self.cusum_negative).chain(&mut self.cusum_share) {
            c.reset();
        }
    }

    fn severity(inc: &OpenIncident, th: &Thresholds) -> Severity {
        if inc.excess_negative >= th.critical_excess_negative || inc.negative_reach >= th.critical_negative_reach {
            Severity::Critical
        } else if inc.excess_negative >= th.warning_excess_negative || inc.negative_reach >= th.warning_negative_reach {
            Severity::Warning
        } else {
            Severity::Watch
        }
    }

    /// Feeds one closed window and its newest pane; returns the lifecycle transition it caused, if any.
    pub fn on_window(&mut self, entity: &str, w: &WindowStats, step: &Step, th: &Thresholds) -> Option<Decision> {
        let e = self.observe(w, step, th);
        let readings = self.readings(w, &e);
        self.steps_seen += 1;
        self.last_score = readings.iter().map(|r| r.score).fold(0.0, f64::max);
        self.last_volume_baseline = e.vol_window;
        self.last_share_baseline = e.share;
        let count_of = |s: Signal, v: u64, n: u64| if s == Signal::Volume { v as f64 } else { n as f64 };
        match self.open.take() {
            None => {
                if self.cooldown_left > 0 {
                    self.cooldown_left -= 1;
                    return None;
                }
                if self.steps_seen <= th.warmup_steps {
                    return None;
                }
                // The strongest firing signal explains the opening (ties: the first in signal order).
                let r = readings
                    .iter()
                    .filter(|r| r.fired)
                    .max_by(|a, b| a.score.total_cmp(&b.score).then(b.signal.cmp(&a.signal)))
                    .copied()?;
                let intensity = count_of(r.signal, step.volume, step.negative)
                    .max(count_of(r.signal, w.volume, w.negative) / th.panes_per_window);
                let mut inc = OpenIncident {
                    id: incident_id(entity, w.start),
                    started: w.start,
                    opened_at: w.end,
                    seq: 0,
                    severity: Severity::Watch,
                    signal: r.signal,
                    signals_fired: readings.iter().filter(|r| r.fired).fold(0, |m, r| m | 1 << r.signal as u8),
                    peak_volume: w.volume,
                    peak_negative: w.negative,
                    peak_negative_share: w.negative_share,
                    // The excess of the window that opened it: the posts the alarm is about.
                    excess_negative: w.negative as f64 - e.neg_window,
                    negative_reach: w.reach as f64 * w.negative_share,
                    intensity,
                    intensity_at_event: intensity,
                    steps_open: 0,
                    steps_since_event: 0,
                    calm_evidence: [0.0; 3],
                    calm_steps: 0,
                };
                inc.severity = Self::severity(&inc, th);
                self.open = Some(inc.clone());
                self.before_incident = Some(Box::new((self.volume.clone(), self.negative.clone(), self.share.clone())));
                Some(Decision { transition: Transition::Opened, incident: inc, reading: r })
            }
            Some(mut inc) => {
                inc.steps_open += 1;
                inc.steps_since_event += 1;
                inc.excess_negative += step.negative as f64 - e.neg_step;
                if step.volume > 0 {
                    inc.negative_reach += step.reach as f64 * step.negative as f64 / step.volume as f64;
                }
                inc.peak_volume = inc.peak_volume.max(w.volume);
                inc.peak_negative = inc.peak_negative.max(w.negative);
                if w.volume >= 10 {
                    inc.peak_negative_share = inc.peak_negative_share.max(w.negative_share);
                }
                let x = count_of(inc.signal, step.volume, step.negative);
                inc.intensity += th.alpha_intensity * (x - inc.intensity);
                let mut reading = readings[inc.signal as usize];
                let joined =
                    readings.iter().find(|r| r.fired && inc.signals_fired & (1 << r.signal as u8) == 0).copied();
                for (c, l) in inc.calm_evidence.iter_mut().zip(e.calm_llr) {
                    *c = (*c + l).max(0.0);
                }
                // Volume and negatives always; the share only for an incident about the share (at low volume its
                // evidence accrues slowly, and the negative count already covers a share-driven surge).
                let watched = if inc.signal == Signal::NegativeShare { 3 } else { 2 };
                let calm = inc.calm_evidence[..watched].iter().all(|&c| c >= CALM_NATS);
                inc.calm_steps = if calm { inc.calm_steps + 1 } else { 0 };
                let stale = inc.severity == Severity::Watch
                    && th.reassess_after_steps > 0
                    && inc.steps_since_event >= th.reassess_after_steps;
                if inc.calm_steps >= th.resolve_after_steps || stale {
                    let why = if inc.calm_steps >= th.resolve_after_steps {
                        Resolution::Calm
                    } else {
                        Resolution::Reassessed
                    };
                    inc.seq += 1;
                    self.cooldown_left = th.cooldown_steps;
                    self.reset_statistics();
                    if let (Resolution::Calm, Some(before)) = (why, self.before_incident.take()) {
                        (self.volume, self.negative, self.share) = *before;
                    }
                    return Some(Decision { transition: Transition::Resolved(why), incident: inc, reading });
                }
                let sev = Self::severity(&inc, th).max(inc.severity);
                // Doubling of the smoothed rate, by more than its own noise (Poisson, ~2/alpha steps).
                let noise = 3.0 * (inc.intensity_at_event.max(1.0) * th.alpha_intensity / 2.0).sqrt();
                let grew = inc.intensity >= th.escalate_ratio * inc.intensity_at_event
                    && inc.intensity - inc.intensity_at_event > noise;
                if let Some(j) = joined {
                    inc.signals_fired |= 1 << j.signal as u8;
                    reading = j;
                }
                if sev != inc.severity || grew || joined.is_some() {
                    inc.seq += 1;
                    inc.severity = sev;
                    inc.steps_since_event = 0;
                    inc.intensity_at_event = inc.intensity.max(inc.intensity_at_event);
                    self.open = Some(inc.clone());
                    return Some(Decision { transition: Transition::Updated, incident: inc, reading });
                }
                self.open = Some(inc);
                None
            }
        }
    }

    /// Each statistic's calibrated threshold (volume, negatives, share; `RATE_RATIOS` / `SHARE_LIFTS` order).
    fn thresholds(&self, th: &Thresholds) -> [[f64; 3]; 3] {
        let t = |cs: &[Cusum; 3]| cs.each_ref().map(|c| c.threshold(th.h, th.calib_prior_steps));
        [t(&self.cusum_volume), t(&self.cusum_negative), t(&self.cusum_share)]
    }

    pub fn diagnostics(&self, th: &Thresholds) -> Diagnostics {
        let s = |cs: &[Cusum; 3]| cs.each_ref().map(|c| c.s);
        Diagnostics {
            statistic: [s(&self.cusum_volume), s(&self.cusum_negative), s(&self.cusum_share)],
            threshold: self.thresholds(th),
            volume_mean: self.last_volume_baseline,
            volume_v: self.volume.predict(0, 0).v,
            negative_v: self.negative.predict(0, 0).v,
            share: self.share.share(),
            share_phi: self.share.phi(),
        }
    }

    /// True when the detector holds nothing worth keeping beyond its baselines (for eviction).
    pub fn is_quiet(&self) -> bool {
        self.open.is_none()
    }
}

#[cfg(test)]
mod tests;
