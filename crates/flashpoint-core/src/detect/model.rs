//! The count and share models behind detection, and the evidence (log-likelihood ratios) a step gives
//! against them.
//!
//! Counts are negative binomial around a seasonal baseline: `mean = level × hour-of-day factor`, with a
//! relative excess variance `v` (`var = mean + v·mean²`) learned from the prediction residuals themselves, at
//! the step scale and at the hour scale (errors of the baseline that persist for an hour make a sum of steps
//! more variable than independent steps would; the larger of the two is used, so a CUSUM summing many steps
//! is not over-confident). The negative share is binomial around a learned share, with a quasi-likelihood
//! dispersion `φ` learned the same way. Everything updates online, with residuals winsorised before they
//! teach anything, so a surge does not teach the baseline that surges are normal. The priors and bounds are
//! in `config`.

use super::config::{
    CLIP_MIN_SD, CLIP_SD, PHI_MAX, PHI_PRIOR_WEIGHT, SEASON_PRIOR, SHARE_MAX, SHARE_MIN, SHARE_PRIOR,
    SHARE_PRIOR_POSTS, V_MAX, V_PRIOR, V_PRIOR_WEIGHT,
};
use serde::{Deserialize, Serialize};

/// EWMA weight with start-up bias correction: a plain mean over the first `1/alpha` observations.
pub(crate) fn weight(alpha: f64, n: u64) -> f64 {
    alpha.max(1.0 / n.max(1) as f64)
}

/// Per-step decay for a half-life measured in steps.
pub(crate) fn decay_for(half_life_steps: f64) -> f64 {
    if half_life_steps <= 0.0 {
        0.0
    } else {
        0.5f64.powf(1.0 / half_life_steps.max(1.0))
    }
}

/// log NB(x; r·mu, k) − log NB(x; mu, k), k = 1/v: the evidence one step gives for "rate × r".
pub fn nb_llr(x: f64, mu: f64, v: f64, r: f64) -> f64 {
    let mu = mu.max(1e-9);
    if v <= 1e-9 {
        return x * r.ln() - (r - 1.0) * mu;
    }
    let k = 1.0 / v;
    k * ((k + mu) / (k + r * mu)).ln() + x * (r * (k + mu) / (k + r * mu)).ln()
}

/// Binomial log-likelihood ratio of share `p1` against `p0` for `y` negatives out of `n`.
pub fn binom_llr(y: f64, n: f64, p0: f64, p1: f64) -> f64 {
    y * (p1 / p0).ln() + (n - y) * ((1.0 - p1) / (1.0 - p0)).ln()
}

/// Online negative-binomial baseline of one count per step.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct CountModel {
    /// Deseasonalised rate per step.
    level: f64,
    /// Decayed sums of (count, level) per hour of day: the factor is their ratio, shrunk towards 1.
    season_num: [f64; 24],
    season_den: [f64; 24],
    /// The same per day of the week, over what the hour-of-day profile expects.
    week_num: [f64; 7],
    week_den: [f64; 7],
    /// Decayed steps seen per weekday: a weekday's factor is trusted in proportion to the days behind it.
    week_seen: [f64; 7],
    /// Weighted moment estimate of v at the step scale: Σ((x−μ)²−μ) / Σμ².
    v_num: f64,
    v_den: f64,
    /// The same at the hour scale, over blocks of steps.
    vb_num: f64,
    vb_den: f64,
    block_x: f64,
    block_mu: f64,
    block_n: u64,
    seen: u64,
    /// Steps per day (from the rates), kept so `predict` needs no rates.
    day_steps: f64,
}

impl Default for CountModel {
    fn default() -> Self {
        CountModel {
            level: 0.0,
            season_num: [0.0; 24],
            season_den: [0.0; 24],
            week_num: [0.0; 7],
            week_den: [0.0; 7],
            week_seen: [0.0; 7],
            v_num: 0.0,
            v_den: 0.0,
            vb_num: 0.0,
            vb_den: 0.0,
            block_x: 0.0,
            block_mu: 0.0,
            block_n: 0,
            seen: 0,
            day_steps: 1.0,
        }
    }
}

/// Learning rates of the models, resolved from half-lives and the step length.
#[derive(Clone, Copy, Debug)]
pub struct Rates {
    pub alpha_level: f64,
    /// Decay of an hour-of-day bin's sums, per step that falls in that hour.
    pub season_decay: f64,
    /// Decay of a day-of-week bin's sums, per step that falls on that day (0 disables the profile).
    pub week_decay: f64,
    pub steps_per_day: f64,
    pub dispersion_decay: f64,
    /// Steps per dispersion block (an hour).
    pub block_steps: u64,
}

/// The model's prediction for one step.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Prediction {
    pub mean: f64,
    /// Relative excess variance: var = mean + v·mean².
    pub v: f64,
}

impl Prediction {
    pub fn sd(&self) -> f64 {
        (self.mean + self.v * self.mean * self.mean).sqrt()
    }
}

impl CountModel {
    pub fn seen(&self) -> u64 {
        self.seen
    }

    /// The seasonal factor of a step in hour-of-day `h`, day-of-week `d`.
    fn season(&self, h: usize, d: usize) -> f64 {
        let hod = (self.season_num[h] + SEASON_PRIOR) / (self.season_den[h] + SEASON_PRIOR);
        hod * self.weekday(d)
    }

    /// A weekday's factor, shrunk towards 1 until that weekday has been seen for about a day: one day's
    /// ratio is mostly the level's lag, not a weekly cycle.
    fn weekday(&self, d: usize) -> f64 {
        let raw = (self.week_num[d] + SEASON_PRIOR) / (self.week_den[d] + SEASON_PRIOR);
        let trust = self.week_seen[d] / (self.week_seen[d] + self.steps_per_day_seen());
        1.0 + (raw - 1.0) * trust
    }

    fn steps_per_day_seen(&self) -> f64 {
        // Stored implicitly: week_seen counts steps, and a weekday bin gets one day of steps a week.
        self.day_steps.max(1.0)
    }

    pub fn predict(&self, h: usize, d: usize) -> Prediction {
        let mean = self.level * self.season(h, d);
        let v_step = (self.v_num + V_PRIOR * V_PRIOR_WEIGHT) / (self.v_den + V_PRIOR_WEIGHT);
        let v_block = (self.vb_num + V_PRIOR * V_PRIOR_WEIGHT) / (self.vb_den + V_PRIOR_WEIGHT);
        Prediction { mean, v: v_step.max(v_block).clamp(0.0, V_MAX) }
    }

    /// Learns from count `x` observed in hour `h` of weekday `d`, after it has been scored against `predict`.
    /// `dispersion`: false while an incident is open, so an incident's residuals do not teach the model that
    /// such residuals are noise (one crisis would otherwise leave the detector deaf for weeks).
    pub fn learn(&mut self, x: f64, h: usize, d: usize, rates: &Rates, dispersion: bool) {
        let p = self.predict(h, d);
        self.seen += 1;
        if self.seen == 1 {
            self.level = x / self.season(h, d);
            return;
        }
        let xc = x.min(p.mean + CLIP_SD * p.sd().max(CLIP_MIN_SD));
        let s = self.season(h, d);
        self.level += weight(rates.alpha_level, self.seen) * (xc / s - self.level);
        // Each profile learns what the level and the other profile do not explain.
        self.day_steps = rates.steps_per_day;
        let dow = self.weekday(d);
        let hod = s / dow;
        if rates.season_decay > 0.0 {
            self.season_num[h] = self.season_num[h] * rates.season_decay + xc / dow;
            self.season_den[h] = self.season_den[h] * rates.season_decay + self.level;
        }
        if rates.week_decay > 0.0 {
            self.week_num[d] = self.week_num[d] * rates.week_decay + xc / hod;
            self.week_den[d] = self.week_den[d] * rates.week_decay + self.level;
            self.week_seen[d] = self.week_seen[d] * rates.week_decay + 1.0;
        }
        if !dispersion {
            return;
        }
        let d = rates.dispersion_decay;
        let r = xc - p.mean;
        self.v_num = self.v_num * d + (r * r - p.mean);
        self.v_den = self.v_den * d + p.mean * p.mean;
        self.block_x += xc;
        self.block_mu += p.mean;
        self.block_n += 1;
        if self.block_n >= rates.block_steps {
            // Winsorised like the steps (see `ShareModel::learn`): a shift that lasts hours is not noise.
            let c = CLIP_SD * (self.block_mu + p.v * self.block_mu * self.block_mu).sqrt().max(CLIP_MIN_SD);
            let r = (self.block_x - self.block_mu).clamp(-c, c);
            let db = d.powf(rates.block_steps as f64);
            self.vb_num = self.vb_num * db + (r * r - self.block_mu);
            self.vb_den = self.vb_den * db + self.block_mu * self.block_mu;
            self.block_x = 0.0;
            self.block_mu = 0.0;
            self.block_n = 0;
        }
        self.v_num = self.v_num.max(0.0);
        self.vb_num = self.vb_num.max(0.0);
    }
}

/// Online quasi-binomial baseline of the negative share.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct ShareModel {
    /// Decayed negatives and posts: the share is their ratio.
    neg: f64,
    vol: f64,
    /// Σ(y − n·p)² / Σ n·p(1−p), at the step and at the block scale.
    phi_num: f64,
    phi_den: f64,
    phib_num: f64,
    phib_den: f64,
    block_y: f64,
    block_e: f64,
    block_var: f64,
    block_n: u64,
}

impl ShareModel {
    pub fn share(&self) -> f64 {
        ((self.neg + SHARE_PRIOR * SHARE_PRIOR_POSTS) / (self.vol + SHARE_PRIOR_POSTS)).clamp(SHARE_MIN, SHARE_MAX)
    }

    pub fn phi(&self) -> f64 {
        let s = (self.phi_num + PHI_PRIOR_WEIGHT) / (self.phi_den + PHI_PRIOR_WEIGHT);
        let b = (self.phib_num + PHI_PRIOR_WEIGHT) / (self.phib_den + PHI_PRIOR_WEIGHT);
        s.max(b).clamp(1.0, PHI_MAX)
    }

    /// Learns from `y` negatives out of `n` posts; `dispersion` as for `CountModel::learn`.
    pub fn learn(&mut self, y: f64, n: f64, rates: &Rates, dispersion: bool) {
        if n <= 0.0 {
            return;
        }
        let p = self.share();
        let var = n * p * (1.0 - p);
        let yc = y.min(n * p + CLIP_SD * (var * self.phi()).sqrt().max(CLIP_MIN_SD));
        // The share learns at the level's pace, weighted by volume: a busy hour counts more than a quiet one.
        let a = rates.alpha_level;
        self.neg = self.neg * (1.0 - a) + yc;
        self.vol = self.vol * (1.0 - a) + n;
        if !dispersion {
            return;
        }
        let d = rates.dispersion_decay;
        let r = yc - n * p;
        self.phi_num = self.phi_num * d + r * r;
        self.phi_den = self.phi_den * d + var;
        self.block_y += yc;
        self.block_e += n * p;
        self.block_var += var;
        self.block_n += 1;
        if self.block_n >= rates.block_steps {
            // The block's residual is winsorised too. Each step's is, but a shift of the share that lasts hours
            // (a day of complaints, before the alarm) adds clipped steps into a block residual many sd wide, and
            // one such hour taught φ about as much as a day of noise: on the eval-detect replays φ climbed from 1
            // to 5 over repeated day-long shifts and the detector slowed from an hour to most of a day.
            let c = CLIP_SD * (self.block_var * self.phi()).sqrt().max(CLIP_MIN_SD);
            let r = (self.block_y - self.block_e).clamp(-c, c);
            let db = d.powf(rates.block_steps as f64);
            self.phib_num = self.phib_num * db + r * r;
            self.phib_den = self.phib_den * db + self.block_var;
            self.block_y = 0.0;
            self.block_e = 0.0;
            self.block_var = 0.0;
            self.block_n = 0;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nb_llr_reduces_to_poisson_and_saturates_with_dispersion() {
        // v → 0: Poisson, x·ln r − (r−1)·μ.
        let p = nb_llr(10.0, 4.0, 0.0, 2.0);
        assert!((p - (10.0 * 2f64.ln() - 4.0)).abs() < 1e-12);
        assert!((nb_llr(10.0, 4.0, 1e-7, 2.0) - p).abs() < 1e-4);
        // Overdispersion shrinks the evidence of the same excess.
        assert!(nb_llr(10.0, 4.0, 0.5, 2.0) < p);
        // At the baseline mean the evidence is negative.
        assert!(nb_llr(4.0, 4.0, 0.2, 2.0) < 0.0);
    }

    #[test]
    fn binomial_llr_sign() {
        assert!(binom_llr(30.0, 100.0, 0.15, 0.35) > 0.0);
        assert!(binom_llr(15.0, 100.0, 0.15, 0.35) < 0.0);
    }

    #[test]
    fn hours_of_a_shifted_share_teach_the_dispersion_little() {
        let rates = Rates {
            alpha_level: 1.0 - decay_for(1440.0),
            season_decay: 0.0,
            week_decay: 0.0,
            steps_per_day: 1440.0,
            dispersion_decay: decay_for(7.0 * 1440.0),
            block_steps: 60,
        };
        // A week of 4 posts a minute at a binomial 15%, then five hours at 27% (negative posts doubled).
        let mut rng = super::super::sim::Rng::new(5);
        let mut m = ShareModel::default();
        for _ in 0..7 * 1440 {
            m.learn(rng.binomial(4, 0.15) as f64, 4.0, &rates, true);
        }
        let before = m.phi();
        for _ in 0..5 * 60 {
            m.learn(rng.binomial(4, 0.27) as f64, 4.0, &rates, true);
        }
        // Unclipped, the five hour-blocks (each about 5 sd) took φ from 1.20 to 2.08; clipped at 3 sd, to 1.65.
        assert!(before < 1.3 && m.phi() < before + 0.6, "{before} -> {}", m.phi());
    }

    #[test]
    fn count_model_learns_level_season_and_dispersion() {
        let rates = Rates {
            alpha_level: 0.01,
            season_decay: decay_for(600.0),
            week_decay: 0.0,
            steps_per_day: 288.0,
            dispersion_decay: decay_for(3000.0),
            block_steps: 12,
        };
        let mut m = CountModel::default();
        let mut rng = 12345u64;
        for t in 0..20_000u64 {
            let h = ((t / 12) % 24) as usize;
            let mean = if h < 12 { 10.0 } else { 30.0 };
            // Gamma-ish overdispersion: a multiplicative factor uniform in [0.5, 1.5] (v ≈ 1/12).
            rng = rng.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
            let f = 0.5 + (rng >> 11) as f64 / (1u64 << 53) as f64;
            let x = (mean * f).round();
            m.learn(x, h, 0, &rates, true);
        }
        let lo = m.predict(3, 0);
        let hi = m.predict(15, 0);
        assert!((lo.mean - 10.0).abs() < 1.5, "{lo:?}");
        assert!((hi.mean - 30.0).abs() < 4.0, "{hi:?}");
        assert!(hi.v > 0.04 && hi.v < 0.2, "{hi:?}");
    }
}
