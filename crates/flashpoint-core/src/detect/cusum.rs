//! The CUSUM statistics and their calibration: nine of them per detector (three sizes of change for each of
//! the volume, the negative posts and the negative share), how a step advances them, and the threshold each
//! is held to.
//!
//! A CUSUM of the log-likelihood ratio of "rate × r" (or "share + δ") against the baseline accumulates
//! evidence over however many steps a change lasts: one statistic covers a burst of minutes and a drift over
//! a day. By Lorden's bound a CUSUM on an exact likelihood ratio with threshold `h` raises a false alarm at
//! most once per `e^h` steps on average, which is how `config` sets the theoretical threshold from the
//! false-alarm budget; each statistic then moves it by its own measured tail (`Cusum::threshold`).

use super::config::{
    Thresholds, CALIB_BASE, CALIB_EXCESS_CAP, CALIB_FLOOR, MAX_SHARE_HYPOTHESIS, RATE_RATIOS, SHARE_LIFTS,
};
use super::model::{binom_llr, nb_llr};
use super::{Detector, Predicted, StepCounts};
use serde::{Deserialize, Serialize};

/// One CUSUM: `max(0, S + llr)`, with the totals of its current run (since it last left zero), which
/// estimate where the change began and how big it is, and its own empirical calibration.
///
/// Calibration (peaks over threshold): on an exact likelihood ratio, the maximum of an excursion exceeds
/// `CALIB_BASE + x` with probability about `e^{-x}` once it exceeds `CALIB_BASE`. Real data have heavier tails
/// (the model is never exact), so each statistic measures its own: the rate `λ` of excursions past
/// `CALIB_BASE` per step, and the exponential rate `θ` of their excesses. The threshold that keeps alarms at
/// `e^{-h₀}` per step (`h₀` the theoretical threshold) is then `CALIB_BASE + (ln λ + h₀) / θ`; both are
/// seeded with a day's worth of the theoretical values (`λ = e^{-CALIB_BASE}`, `θ = 1`, which give `h₀`
/// back). The threshold may fall to `CALIB_FLOOR × h₀` where the measured tail is lighter than Lorden's bound
/// assumes.
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq)]
pub struct Cusum {
    pub(crate) s: f64,
    /// Steps, observed and expected totals since the run began.
    pub(crate) run_steps: u64,
    pub(crate) run_observed: f64,
    pub(crate) run_expected: f64,
    excursion_max: f64,
    /// Decayed steps, excursions past `CALIB_BASE`, and the sum of their (capped) excesses.
    cal_steps: f64,
    cal_exceed: f64,
    cal_excess: f64,
    /// Of `cal_exceed`, the excursions censored at the alarm threshold (`censor`): they count towards how
    /// often excursions pass `CALIB_BASE` and their excess up to the threshold is exposure, but their true
    /// size is unknown, so they do not count as observed tail sizes (the censored exponential estimate).
    #[serde(default)]
    cal_censored: f64,
    #[serde(default)]
    censored: bool,
}

impl Cusum {
    pub fn step(&mut self, llr: f64, observed: f64, expected: f64, calib_decay: f64) {
        self.cal_steps = self.cal_steps * calib_decay + 1.0;
        self.cal_exceed *= calib_decay;
        self.cal_excess *= calib_decay;
        self.cal_censored *= calib_decay;
        let s = self.s + llr;
        if s <= 0.0 {
            self.reset();
        } else {
            self.s = s;
            self.excursion_max = self.excursion_max.max(s);
            self.run_steps += 1;
            self.run_observed += observed;
            self.run_expected += expected;
        }
    }

    /// Caps what the current excursion can teach the calibration at `ceiling` (the alarm threshold): an
    /// excursion past it raised an alarm, and how far past says nothing about the tail of the noise. Without
    /// this, one real incident would raise the threshold for weeks. (The detector censors its negative-post
    /// and share statistics, not volume: see `Detector::advance_statistics`.)
    pub fn censor(&mut self, ceiling: f64) {
        if self.excursion_max > ceiling {
            self.excursion_max = ceiling;
            self.censored = true;
        }
    }

    /// Ends the current run (an excursion's maximum joins the calibration sample); keeps the calibration.
    pub fn reset(&mut self) {
        if self.excursion_max > CALIB_BASE {
            self.cal_exceed += 1.0;
            self.cal_excess += (self.excursion_max - CALIB_BASE).min(CALIB_EXCESS_CAP);
            if self.censored {
                self.cal_censored += 1.0;
            }
        }
        self.censored = false;
        self.s = 0.0;
        self.excursion_max = 0.0;
        self.run_steps = 0;
        self.run_observed = 0.0;
        self.run_expected = 0.0;
    }

    /// The alarm threshold for a theoretical threshold `h0`, with `prior_steps` steps of prior weight.
    pub fn threshold(&self, h0: f64, prior_steps: f64) -> f64 {
        let lambda = (self.cal_exceed + prior_steps * (-CALIB_BASE).exp()) / (self.cal_steps + prior_steps);
        let prior_n = prior_steps * (-CALIB_BASE).exp();
        let theta = (self.cal_exceed - self.cal_censored + prior_n) / (self.cal_excess + prior_n);
        (CALIB_FLOOR * h0).max(CALIB_BASE + (lambda.ln() + h0) / theta)
    }
}

/// Per statistic family (volume, negatives, share), each design's value, in `RATE_RATIOS` / `SHARE_LIFTS` order.
pub(crate) type PerStatistic = [[f64; 3]; 3];

impl Detector {
    /// Advances the nine statistics by one step scored against `p`, censors the alarmed excursions of the
    /// negative-post and share statistics, and returns every statistic's calibrated threshold after the step.
    pub(super) fn advance_statistics(&mut self, step: &StepCounts, p: &Predicted, th: &Thresholds) -> PerStatistic {
        let (xv, xn, xs) = (step.volume as f64, step.negative as f64, step.scored as f64);
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
                c.step(nb_llr(xv, p.volume.mean, p.volume.v, r).min(cap(r)), xv, p.volume.mean, th.calib_decay);
            }
            for (c, r) in self.cusum_negative.iter_mut().zip(RATE_RATIOS) {
                c.step(nb_llr(xn, p.negative.mean, p.negative.v, r).min(cap(r)), xn, p.negative.mean, th.calib_decay);
            }
            if step.scored > 0 {
                for (c, d) in self.cusum_share.iter_mut().zip(SHARE_LIFTS) {
                    let p1 = (p.share + d).min(MAX_SHARE_HYPOTHESIS);
                    c.step(binom_llr(xn, xs, p.share, p1) / p.phi, xn, xs * p.share, th.calib_decay);
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
        threshold
    }

    /// Each statistic's calibrated threshold.
    pub(super) fn thresholds(&self, th: &Thresholds) -> PerStatistic {
        let t = |cs: &[Cusum; 3]| cs.each_ref().map(|c| c.threshold(th.h, th.calib_prior_steps));
        [t(&self.cusum_volume), t(&self.cusum_negative), t(&self.cusum_share)]
    }

    /// Each statistic's current value.
    pub(super) fn statistics(&self) -> PerStatistic {
        let s = |cs: &[Cusum; 3]| cs.each_ref().map(|c| c.s);
        [s(&self.cusum_volume), s(&self.cusum_negative), s(&self.cusum_share)]
    }

    /// Ends every statistic's run (their calibration is kept).
    pub(super) fn reset_statistics(&mut self) {
        for c in self.cusum_volume.iter_mut().chain(&mut self.cusum_negative).chain(&mut self.cusum_share) {
            c.reset();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cusum_tracks_its_run() {
        let mut c = Cusum::default();
        c.step(-1.0, 1.0, 1.0, 1.0);
        assert_eq!((c.s, c.run_steps), (0.0, 0));
        c.step(2.0, 5.0, 1.0, 1.0);
        c.step(1.0, 4.0, 1.0, 1.0);
        assert_eq!((c.s, c.run_steps, c.run_observed, c.run_expected), (3.0, 2, 9.0, 2.0));
        c.step(-5.0, 0.0, 1.0, 1.0);
        assert_eq!(c.s, 0.0);
        c.step(1.0, 3.0, 1.0, 1.0);
        assert_eq!((c.run_steps, c.run_observed), (1, 3.0));
    }

    #[test]
    fn calibration_starts_at_the_theoretical_threshold_and_rises_with_heavy_tails() {
        let c = Cusum::default();
        assert!((c.threshold(12.0, 1440.0) - 12.0).abs() < 1e-9);
        // A statistic whose excursions past 5 nats are frequent (one every 50 steps) and large (excess 10):
        // the tail is heavier than the model claims, so the threshold rises.
        let mut c = Cusum::default();
        for i in 0..20_000 {
            if i % 50 == 0 {
                c.step(15.0, 0.0, 0.0, 1.0);
                c.step(-100.0, 0.0, 0.0, 1.0);
            } else {
                c.step(-1.0, 0.0, 0.0, 1.0);
            }
        }
        let h = c.threshold(12.0, 1440.0);
        assert!(h > 30.0, "{h}");
    }
}
