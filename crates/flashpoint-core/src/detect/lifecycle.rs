//! The incident lifecycle: when an incident opens, what it has cost so far (impact, peaks, its signal's
//! smoothed rate), when it escalates (its severity rises, its rate doubles, another signal fires), when it is
//! calm, when a stale `watch` is re-assessed, and how severe it is.
//!
//! An incident opens when a statistic crosses its threshold, after the warm-up and outside the cooldown: at
//! once as a crisis (a share statistic fired), or as buzz once the volume has surged for ten minutes
//! (`RecentVolume`), so a burst of minutes or a doubling of ordinary mentions needs nobody's attention. It
//! is `updated` when it escalates, and `resolved` when every watched signal has held `CALM_NATS` of evidence
//! for "back at baseline" for `resolve_after_secs`, or, for a `watch` incident that has neither grown nor
//! faded for `reassess_after_secs`, on re-assessment (the baseline has had time to learn the new level; if
//! the surge grows again it re-opens). Severity comes from impact: excess negative posts since opening and
//! the reach of the negative posts.

use super::config::{
    Thresholds, CALM_LIFT, CALM_NATS, CALM_RATIO, ESCALATION_MIN_RATE, ESCALATION_NOISE_SDS, MAX_SHARE_HYPOTHESIS,
    PEAK_SHARE_MIN_VOLUME, SURGE_MIN_EXCESS, SURGE_PARTS, SURGE_RATIO,
};
use super::model::{binom_llr, nb_llr};
use super::response::ResponseState;
use super::{Decision, Detector, Expectation, Predicted, Reading, Reason, Signal, StepCounts};
use crate::time::Millis;
use crate::window::WindowStats;
use serde::{Deserialize, Serialize};
use std::collections::VecDeque;

/// What happened to an incident: the kind of a spike event, and of the detector's `Decision` that made it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum EventKind {
    Opened,
    Updated,
    Resolved,
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

/// Crisis or buzz: whether the negative signals are part of the incident.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum IncidentClass {
    /// Negative posts or the negative share rose beyond what the volume explains. The default, so a v2 event
    /// (which had no class) is routed as before.
    #[default]
    Crisis,
    /// Only the volume moved; sentiment stayed at the baseline. Stays at `watch` unless it turns negative.
    Buzz,
}

impl IncidentClass {
    pub fn as_str(self) -> &'static str {
        match self {
            IncidentClass::Crisis => "crisis",
            IncidentClass::Buzz => "buzz",
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

/// An incident in progress.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct OpenIncident {
    pub id: String,
    pub started: Millis,
    /// End of the window that opened it (the detection time).
    pub opened_at: Millis,
    pub seq: u64,
    pub severity: Severity,
    /// Crisis or buzz (see `classify`); serde default so a v2 snapshot's incident reads as a crisis.
    #[serde(default)]
    pub class: IncidentClass,
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
    /// The company's response and the estimated start of the change (`detect::response`).
    #[serde(default)]
    pub response: ResponseState,
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

/// Evidence one step gives for "back at baseline" against `CALM_RATIO` / `CALM_LIFT`, per signal.
pub(super) fn calm_evidence(step: &StepCounts, p: &Predicted) -> [f64; 3] {
    let (xv, xn, xs) = (step.volume as f64, step.negative as f64, step.scored as f64);
    [
        -nb_llr(xv, p.volume.mean, p.volume.v, CALM_RATIO),
        -nb_llr(xn, p.negative.mean, p.negative.v, CALM_RATIO),
        if step.scored > 0 {
            -binom_llr(xn, xs, p.share, (p.share + CALM_LIFT).min(MAX_SHARE_HYPOTHESIS)) / p.phi
        } else {
            0.0
        },
    ]
}

/// The count an incident about `signal` follows (the share's incidents follow the negative posts).
fn count_of(signal: Signal, volume: u64, negative: u64) -> f64 {
    if signal == Signal::Volume {
        volume as f64
    } else {
        negative as f64
    }
}

fn severity(inc: &OpenIncident, th: &Thresholds) -> Severity {
    // Buzz pages nobody: it stays at watch until it turns negative.
    if inc.class == IncidentClass::Buzz {
        return Severity::Watch;
    }
    if inc.excess_negative >= th.critical_excess_negative || inc.negative_reach >= th.critical_negative_reach {
        Severity::Critical
    } else if inc.excess_negative >= th.warning_excess_negative || inc.negative_reach >= th.warning_negative_reach {
        Severity::Warning
    } else {
        Severity::Watch
    }
}

/// Crisis when the negative share is part of the incident: a share statistic fired, at opening or since. A
/// surge of ordinary posts raises the negative count with the volume but not its share: that is buzz, and a
/// negative-post statistic firing with it says no more. The share statistics are the test because they are
/// calibrated to the budget: a 3-sd rule on the incident's negative posts, read at every step of a long
/// incident, was crossed by chance and turned surges of ordinary posts into pages (four on the `eval-detect`
/// backgrounds, which hold no sentiment change at all).
pub(super) fn classify(signals_fired: u8) -> IncidentClass {
    if signals_fired & (1 << Signal::NegativeShare as u8) != 0 {
        IncidentClass::Crisis
    } else {
        IncidentClass::Buzz
    }
}

/// The volume of the last `Thresholds::surge_steps` steps against what the baseline expected of each, oldest
/// first: whether ordinary posts surge enough to be worth a `watch` (`surging`).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct RecentVolume(VecDeque<(f64, f64)>);

impl RecentVolume {
    pub(super) fn push(&mut self, observed: f64, expected: f64, keep: usize) {
        self.0.push_back((observed, expected));
        while self.0.len() > keep {
            self.0.pop_front();
        }
    }

    /// Each of `SURGE_PARTS` parts of the last `keep` steps (fewer if `keep` is smaller) at least
    /// `SURGE_RATIO` times its baseline plus `SURGE_MIN_EXCESS` posts: a surge that has lasted.
    pub(super) fn surging(&self, keep: usize) -> bool {
        if self.0.len() < keep {
            return false;
        }
        let parts = SURGE_PARTS.min(keep);
        (0..parts).all(|i| {
            let part = self.0.range(i * keep / parts..(i + 1) * keep / parts);
            let (x, mu) = part.fold((0.0, 0.0), |s, r| (s.0 + r.0, s.1 + r.1));
            x >= SURGE_RATIO * mu + SURGE_MIN_EXCESS
        })
    }
}

/// What one window tells the lifecycle: the window, its newest pane, the readings and the expectation.
pub(super) struct WindowEvidence<'a> {
    pub entity: &'a str,
    pub stats: &'a WindowStats,
    pub step: &'a StepCounts,
    pub readings: &'a [Reading; 3],
    pub expected: &'a Expectation,
}

impl Detector {
    /// With no incident open: opens one if a statistic fired, after the warm-up and outside the cooldown.
    pub(super) fn consider_opening(&mut self, x: &WindowEvidence, th: &Thresholds) -> Option<Decision> {
        if self.cooldown_left > 0 {
            self.cooldown_left -= 1;
            return None;
        }
        if self.steps_seen <= th.warmup_steps {
            return None;
        }
        let (w, step) = (x.stats, x.step);
        // The strongest firing signal explains the opening (ties: the first in signal order).
        let r = x
            .readings
            .iter()
            .filter(|r| r.fired)
            .max_by(|a, b| a.score.total_cmp(&b.score).then(b.signal.cmp(&a.signal)))
            .copied()?;
        let intensity = count_of(r.signal, step.volume, step.negative)
            .max(count_of(r.signal, w.volume, w.negative) / th.panes_per_window);
        let mut inc = OpenIncident {
            id: incident_id(x.entity, w.start),
            started: w.start,
            opened_at: w.end,
            seq: 0,
            severity: Severity::Watch,
            class: IncidentClass::Crisis,
            signal: r.signal,
            signals_fired: x.readings.iter().filter(|r| r.fired).fold(0, |m, r| m | 1 << r.signal as u8),
            peak_volume: w.volume,
            peak_negative: w.negative,
            peak_negative_share: w.negative_share,
            // The excess of the window that opened it: the posts the alarm is about.
            excess_negative: w.negative as f64 - x.expected.neg_window,
            negative_reach: w.reach as f64 * w.negative_share,
            intensity,
            intensity_at_event: intensity,
            steps_open: 0,
            steps_since_event: 0,
            calm_evidence: [0.0; 3],
            calm_steps: 0,
            response: ResponseState::default(),
        };
        inc.class = classify(inc.signals_fired);
        // Ordinary posts are worth a `watch` once they surge for long enough; until then the statistics keep
        // their evidence, and the next step asks again.
        if inc.class == IncidentClass::Buzz && !self.recent_volume.surging(th.surge_steps) {
            return None;
        }
        inc.severity = severity(&inc, th);
        self.open = Some(inc.clone());
        self.before_incident = Some(Box::new((self.volume.clone(), self.negative.clone(), self.share.clone())));
        Some(Decision {
            kind: EventKind::Opened,
            resolution: None,
            incident: inc,
            reading: r,
            reasons: vec![Reason::Threshold],
        })
    }

    /// With an incident open: accounts the window to it, then resolves it (calm or stale), escalates it, or
    /// keeps it open quietly.
    pub(super) fn follow_incident(
        &mut self,
        mut inc: OpenIncident,
        x: &WindowEvidence,
        th: &Thresholds,
    ) -> Option<Decision> {
        account(&mut inc, x, th);
        let mut reading = x.readings[inc.signal as usize];
        if let Some(why) = resolution(&mut inc, th) {
            inc.seq += 1;
            self.cooldown_left = th.cooldown_steps;
            self.reset_statistics();
            // A calm resolution means the data are back where they were: what the baselines learned from the
            // incident is a bias, so they are put back (see `before_incident`).
            if let (Resolution::Calm, Some(before)) = (why, self.before_incident.take()) {
                (self.volume, self.negative, self.share) = *before;
            }
            let reasons = vec![if why == Resolution::Calm { Reason::Calm } else { Reason::Reassessed }];
            return Some(Decision {
                kind: EventKind::Resolved,
                resolution: Some(why),
                incident: inc,
                reading,
                reasons,
            });
        }
        // A signal that joins is noted before the class is judged: a share shift joining a buzz incident makes
        // it a crisis in the same event, not one step later with an event of its own.
        let joined = x.readings.iter().find(|r| r.fired && inc.signals_fired & (1 << r.signal as u8) == 0).copied();
        if let Some(j) = joined {
            inc.signals_fired |= 1 << j.signal as u8;
            reading = j;
        }
        // Buzz turning negative is news: the incident becomes a crisis, and its severity counts from now on.
        let turned = inc.class == IncidentClass::Buzz && classify(inc.signals_fired) == IncidentClass::Crisis;
        if turned {
            inc.class = IncidentClass::Crisis;
        }
        let sev = severity(&inc, th).max(inc.severity);
        let grew = rate_doubled(&inc, th);
        if sev != inc.severity || grew || joined.is_some() || turned {
            let rose = sev != inc.severity;
            inc.seq += 1;
            inc.severity = sev;
            inc.steps_since_event = 0;
            inc.intensity_at_event = inc.intensity.max(inc.intensity_at_event);
            self.open = Some(inc.clone());
            let why = [
                (rose, Reason::Severity),
                (grew, Reason::Growth),
                (joined.is_some(), Reason::NewSignal),
                (turned, Reason::Class),
            ];
            let reasons = why.into_iter().filter(|r| r.0).map(|r| r.1).collect();
            return Some(Decision { kind: EventKind::Updated, resolution: None, incident: inc, reading, reasons });
        }
        self.open = Some(inc);
        None
    }
}

/// What the window adds to an open incident: its age, impact, peaks, smoothed rate and calm evidence.
fn account(inc: &mut OpenIncident, x: &WindowEvidence, th: &Thresholds) {
    let (w, step) = (x.stats, x.step);
    inc.steps_open += 1;
    inc.steps_since_event += 1;
    inc.excess_negative += step.negative as f64 - x.expected.neg_step;
    if step.volume > 0 {
        inc.negative_reach += step.reach as f64 * step.negative as f64 / step.volume as f64;
    }
    inc.peak_volume = inc.peak_volume.max(w.volume);
    inc.peak_negative = inc.peak_negative.max(w.negative);
    if w.volume >= PEAK_SHARE_MIN_VOLUME {
        inc.peak_negative_share = inc.peak_negative_share.max(w.negative_share);
    }
    let count = count_of(inc.signal, step.volume, step.negative);
    inc.intensity += th.alpha_intensity * (count - inc.intensity);
    for (c, l) in inc.calm_evidence.iter_mut().zip(x.expected.calm_llr) {
        *c = (*c + l).max(0.0);
    }
}

/// Whether the incident ends with this window, and why: calm for long enough, or a stale `watch`.
fn resolution(inc: &mut OpenIncident, th: &Thresholds) -> Option<Resolution> {
    // Volume and negatives always; the share only for an incident about the share (at low volume its evidence
    // accrues slowly, and the negative count already covers a share-driven surge).
    let watched = if inc.signal == Signal::NegativeShare { 3 } else { 2 };
    let calm = inc.calm_evidence[..watched].iter().all(|&c| c >= CALM_NATS);
    inc.calm_steps = if calm { inc.calm_steps + 1 } else { 0 };
    let stale = inc.severity == Severity::Watch
        && th.reassess_after_steps > 0
        && inc.steps_since_event >= th.reassess_after_steps;
    if inc.calm_steps >= th.resolve_after_steps {
        Some(Resolution::Calm)
    } else if stale {
        Some(Resolution::Reassessed)
    } else {
        None
    }
}

/// A doubling of the smoothed rate since the last event, by more than its own noise (Poisson, ~2/alpha steps).
fn rate_doubled(inc: &OpenIncident, th: &Thresholds) -> bool {
    let noise =
        ESCALATION_NOISE_SDS * (inc.intensity_at_event.max(ESCALATION_MIN_RATE) * th.alpha_intensity / 2.0).sqrt();
    inc.intensity >= th.escalate_ratio * inc.intensity_at_event && inc.intensity - inc.intensity_at_event > noise
}
