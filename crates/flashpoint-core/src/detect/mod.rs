//! Spike detection: per entity, count and share models, CUSUM statistics calibrated to a false-alarm budget,
//! and the incident lifecycle, fed one closed window at a time.
//!
//! Each closed window brings one *step*: the posts of its newest pane (the part no earlier window held), so
//! steps never overlap. Three signals are tested on every step: the volume, the count of negative posts and
//! the negative share. Counts are negative binomial around a seasonal baseline, the share quasi-binomial
//! (`model`). For each signal, three CUSUMs test three sizes of change (volume and negatives × 2, × 4 and
//! × 10; share + 10, + 20 and + 35 points): a CUSUM sums evidence over however long a change lasts, so one
//! statistic sees a ten-minute burst and a day-long doubling alike (`cusum`).
//!
//! Calibration: a CUSUM on an exact likelihood ratio with threshold `h` raises a false alarm at most once per
//! `e^h` steps (Lorden). With `m` statistics OR-ed, `h = ln(m × steps per week / false_alarms_per_week)` keeps
//! the whole detector within the weekly budget, whatever the window slide (`config`). The models' dispersions
//! are learned from their own prediction errors, at the step and the hour scale, so the likelihood ratios are
//! honest on overdispersed, autocorrelated social data rather than on a textbook Poisson stream. Low counts
//! need no minimum volume: one post is worth at most `ln 10` nats of evidence, so an entity that is usually
//! silent needs about `h / ln 10` posts within a short span to open an incident.
//!
//! Where to look: `config` for the budget and every tuning number, `cusum` for the statistics and their
//! calibration, `model` for the baselines, `lifecycle` for opening, escalation, calm, re-assessment and
//! severity. `Detector::on_window` here ties them together. Everything is a pure function of the window
//! sequence.

mod config;
mod cusum;
mod lifecycle;
pub mod model;
pub mod response;
#[cfg(any(test, feature = "sim"))]
pub mod sim;

pub use config::{DetectionConfig, Sensitivity, Thresholds, MAX_NATS_PER_MINUTE, RATE_RATIOS, SHARE_LIFTS, STATISTICS};
pub use lifecycle::{incident_id, EventKind, IncidentClass, OpenIncident, Resolution, Severity};
pub use response::{ResponsePlan, ResponseSetup, ResponseStep};

use crate::time::{hour_of_day, Millis};
use crate::window::WindowStats;
use cusum::{Cusum, PerStatistic};
use lifecycle::{RecentVolume, WindowEvidence};
use model::{CountModel, Prediction, ShareModel};
use serde::{Deserialize, Serialize};

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

/// The counts of a window's newest pane: the step the statistics consume. (Not `partition::Step`, which is
/// what an aggregate partition did with a record.)
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct StepCounts {
    pub volume: u64,
    pub negative: u64,
    /// Posts the scorer read (the rest are in a language it does not read): the negative share's trials.
    pub scored: u64,
    pub reach: u64,
}

/// Why an event was emitted (an event may have several reasons).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize, PartialOrd, Ord)]
#[serde(rename_all = "snake_case")]
pub enum Reason {
    /// A statistic crossed its threshold: the incident opened.
    Threshold,
    /// The severity rose.
    Severity,
    /// The incident's signal doubled its rate since the last event.
    Growth,
    /// Another signal fired.
    NewSignal,
    /// The company posted from its own accounts.
    Responded,
    /// The response plan's deadline (first response or next update) has passed in silence.
    ResponseOverdue,
    /// Resolved: back near baseline.
    Calm,
    /// Resolved: a `watch` incident that neither grew nor faded.
    Reassessed,
    /// Buzz turned negative: the incident became a crisis.
    Class,
    /// A reason this build does not know, from a newer producer: the event is still read, never dead-lettered
    /// for it (consumers of the spikes topic must survive a producer upgrade). Never emitted.
    #[serde(other)]
    Other,
}

/// What the models expected of one step, before learning from it: the means and variances of its volume and
/// negative posts (the timeline's baseline band).
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct StepBaseline {
    pub volume_mean: f64,
    pub volume_var: f64,
    pub negative_mean: f64,
    pub negative_var: f64,
}

/// A lifecycle transition with the reading that explains it: the event's kind, and for `resolved` why.
#[derive(Clone, Debug)]
pub struct Decision {
    pub kind: EventKind,
    /// `Some` exactly when `kind` is `Resolved`.
    pub resolution: Option<Resolution>,
    pub incident: OpenIncident,
    pub reading: Reading,
    /// Why the event is emitted, in `Reason` order of discovery (the lifecycle's first, then the response's).
    pub reasons: Vec<Reason>,
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
    pub(crate) open: Option<OpenIncident>,
    /// The models as they were when the open incident opened. The baselines keep learning during an incident
    /// (so a lasting shift can end it), but when it ends as calm, the data are back where they were and what
    /// the baselines learned from the incident is a bias: left in place, it reads as a stream below baseline
    /// for a day, which inflates the dispersions and the calibration, and the next incident is missed. So a
    /// calm resolution puts these back; a re-assessed one keeps the new level.
    #[serde(default)]
    before_incident: Option<Box<(CountModel, CountModel, ShareModel)>>,
    /// The last `Thresholds::surge_steps` steps' volume against the baseline: what a buzz opening waits for.
    #[serde(default)]
    recent_volume: RecentVolume,
    /// The last hour of steps, kept only for an entity whose own accounts are watched (`response`).
    #[serde(default, skip_serializing_if = "response::RecentSteps::is_empty")]
    recent: response::RecentSteps,
    /// Readings of the last window, for gauges.
    pub(crate) last_score: f64,
    pub(crate) last_volume_baseline: f64,
    pub(crate) last_share_baseline: f64,
    /// What the models expected of the last step (recomputed every step, so not in snapshots).
    #[serde(skip)]
    pub(crate) last_step: StepBaseline,
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

/// 0 = Thursday (the epoch's weekday); only the grouping matters.
fn day_of_week(ms: Millis) -> usize {
    ms.div_euclid(86_400_000).rem_euclid(7) as usize
}

/// What the models predict for one step, before they learn from it.
pub(crate) struct Predicted {
    volume: Prediction,
    negative: Prediction,
    share: f64,
    phi: f64,
}

/// What the models expected of this step and of the window, and whether the window was near baseline.
pub(crate) struct Expectation {
    neg_step: f64,
    vol_window: f64,
    neg_window: f64,
    share: f64,
    /// Evidence this step gives for "back at baseline", per signal (`lifecycle::calm_evidence`).
    calm_llr: [f64; 3],
    /// Each statistic's calibrated threshold after this step.
    threshold: PerStatistic,
}

impl Detector {
    /// Feeds one closed window and its newest pane; returns the lifecycle transition it caused, if any.
    pub fn on_window(&mut self, entity: &str, w: &WindowStats, step: &StepCounts, th: &Thresholds) -> Option<Decision> {
        self.on_window_responding(entity, w, step, None, th)
    }

    /// `on_window` for an entity whose own accounts are watched: also the company's responses in the step
    /// (`response`), under its plan.
    pub fn on_window_responding(
        &mut self,
        entity: &str,
        w: &WindowStats,
        step: &StepCounts,
        responses: Option<(&ResponsePlan, &ResponseStep)>,
        th: &Thresholds,
    ) -> Option<Decision> {
        let expected = self.observe(w, step, th);
        let readings = self.readings(w, &expected);
        self.steps_seen += 1;
        self.last_score = readings.iter().map(|r| r.score).fold(0.0, f64::max);
        self.last_volume_baseline = expected.vol_window;
        self.last_share_baseline = expected.share;
        let x = WindowEvidence { entity, stats: w, step, readings: &readings, expected: &expected };
        let slide = ((w.end - w.start) as f64 / th.panes_per_window).round() as Millis;
        let mut d = match self.open.take() {
            None => self.consider_opening(&x, th),
            Some(inc) => self.follow_incident(inc, &x, th),
        };
        if let Some(d) = d.as_mut().filter(|d| d.kind == EventKind::Opened) {
            d.incident.response.change_start = self.change_start(d, d.incident.opened_at, slide, &expected.threshold);
            self.open = Some(d.incident.clone());
        }
        match responses {
            Some((plan, rs)) => self.follow_response(d, &x, &readings, slide, plan, rs),
            None => d,
        }
    }

    /// Scores the step against the models, advances the statistics, then lets the models learn from it.
    fn observe(&mut self, w: &WindowStats, step: &StepCounts, th: &Thresholds) -> Expectation {
        let (h, d) = (hour_of_day(w.end - 1), day_of_week(w.end - 1));
        let p = Predicted {
            volume: self.volume.predict(h, d),
            negative: self.negative.predict(h, d),
            share: self.share.share(),
            phi: self.share.phi(),
        };
        let calm_llr = lifecycle::calm_evidence(step, &p);
        let var = |q: &Prediction| q.mean + q.v * q.mean * q.mean;
        self.last_step = StepBaseline {
            volume_mean: p.volume.mean,
            volume_var: var(&p.volume),
            negative_mean: p.negative.mean,
            negative_var: var(&p.negative),
        };
        let threshold = self.advance_statistics(step, &p, th);
        self.recent_volume.push(step.volume as f64, p.volume.mean, th.surge_steps);
        // Dispersions learn only while no incident is open, so a crisis does not teach them that crises are noise.
        let quiet = self.open.is_none();
        let (xv, xn, xs) = (step.volume as f64, step.negative as f64, step.scored as f64);
        self.volume.learn(xv, h, d, &th.rates, quiet);
        self.negative.learn(xn, h, d, &th.rates, quiet);
        self.share.learn(xn, xs, &th.rates, quiet);
        let k = th.panes_per_window;
        Expectation {
            neg_step: p.negative.mean,
            vol_window: k * p.volume.mean,
            neg_window: k * p.negative.mean,
            share: p.share,
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

    pub fn diagnostics(&self, th: &Thresholds) -> Diagnostics {
        Diagnostics {
            statistic: self.statistics(),
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

    /// What the models expected of the last step fed (see `StepBaseline`).
    pub fn last_step(&self) -> StepBaseline {
        self.last_step
    }
}

#[cfg(test)]
mod tests;
