//! Spike detection: per-entity online baselines, robust surge tests and the incident lifecycle.
//!
//! Each closed window is tested on four signals: its volume, its volume summed over a longer span (a slow
//! build-up that no single window shows), its count of negative posts, and its negative share. The count
//! signals are compared in log space with a baseline that learns online: an EWMA level, an hour-of-day
//! profile for daily cycles, and an EWMA of absolute residuals for dispersion. Residuals are winsorised
//! before they update anything, so a spike cannot teach the baseline that spikes are normal. A count
//! signal fires only if it is also improbable under a Poisson law with the baseline mean and above a minimum
//! volume: that is the low-count guard (three complaints at 3 a.m. are not a crisis). The share signal uses
//! a binomial z-test against a learned share.
//!
//! The lifecycle turns firing signals into incidents: `opened`, then `updated` when the severity changes or
//! the volume sets a new peak, then `resolved` after a calm period. A cooldown after resolution keeps one
//! incident from becoming ten alerts. Everything here is a pure function of the window sequence.

use crate::time::{hour_of_day, Millis};
use crate::window::WindowStats;
use serde::{Deserialize, Serialize};

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum Sensitivity {
    Low,
    #[default]
    Medium,
    High,
}

/// Detection settings. Unset thresholds come from the sensitivity preset; durations are in seconds.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DetectionConfig {
    pub sensitivity: Sensitivity,
    /// Robust z-score at which a signal fires (preset: low 6, medium 4, high 3).
    pub z_open: Option<f64>,
    /// All signals below this z for `resolve_after_secs` resolve an incident.
    pub z_resolve: f64,
    /// Poisson tail probability below which a count is improbable (preset: 1e-5, 1e-3, 1e-2).
    pub p_value: Option<f64>,
    /// Minimum posts in a window for any signal to fire (preset: 20, 5, 3).
    pub min_volume: Option<u64>,
    /// Minimum rise of the negative share above its baseline for the share signal (0.15 = 15 points).
    pub min_share_lift: f64,
    /// No detection before the baseline has seen this much event time.
    pub warmup_secs: u64,
    /// Half-life of the level and dispersion baselines.
    pub baseline_half_life_secs: u64,
    /// Half-life of the hour-of-day profile (0 disables the daily cycle).
    pub daily_profile_half_life_secs: u64,
    /// Span of the sustained-volume signal.
    pub sustained_secs: u64,
    pub resolve_after_secs: u64,
    pub cooldown_secs: u64,
    /// Score at or above which an incident is `warning` / `critical` (default 2x and 3x `z_open`).
    pub warning_score: Option<f64>,
    pub critical_score: Option<f64>,
    /// `critical` also needs observed >= this multiple of the baseline.
    pub critical_ratio: f64,
}

impl Default for DetectionConfig {
    fn default() -> Self {
        DetectionConfig {
            sensitivity: Sensitivity::Medium,
            z_open: None,
            z_resolve: 1.5,
            p_value: None,
            min_volume: None,
            min_share_lift: 0.15,
            warmup_secs: 86_400,
            baseline_half_life_secs: 86_400,
            daily_profile_half_life_secs: 3 * 86_400,
            sustained_secs: 3_600,
            resolve_after_secs: 3 * 3_600,
            cooldown_secs: 24 * 3_600,
            warning_score: None,
            critical_score: None,
            critical_ratio: 5.0,
        }
    }
}

/// Thresholds resolved from the config and the window slide.
#[derive(Clone, Debug)]
pub struct Thresholds {
    pub z_open: f64,
    pub z_resolve: f64,
    pub p_value: f64,
    pub min_volume: u64,
    pub min_share_lift: f64,
    pub warmup_windows: u64,
    pub alpha_level: f64,
    pub alpha_daily: f64,
    pub sustained_windows: usize,
    pub resolve_after_windows: u64,
    pub cooldown_windows: u64,
    pub warning_score: f64,
    pub critical_score: f64,
    pub critical_ratio: f64,
}

fn alpha(half_life_secs: u64, slide_ms: Millis) -> f64 {
    if half_life_secs == 0 {
        return 0.0;
    }
    let n = (half_life_secs as f64 * 1000.0 / slide_ms as f64).max(1.0);
    1.0 - 0.5f64.powf(1.0 / n)
}

impl DetectionConfig {
    pub fn resolve(&self, slide_ms: Millis) -> Result<Thresholds, String> {
        let (z, p, v) = match self.sensitivity {
            Sensitivity::Low => (6.0, 1e-5, 20),
            Sensitivity::Medium => (4.0, 1e-3, 5),
            Sensitivity::High => (3.0, 1e-2, 3),
        };
        let z_open = self.z_open.unwrap_or(z);
        let p_value = self.p_value.unwrap_or(p);
        if !(z_open > 0.0) || !(self.z_resolve >= 0.0) || self.z_resolve >= z_open {
            return Err(format!("need 0 <= z_resolve ({}) < z_open ({z_open})", self.z_resolve));
        }
        if !(p_value > 0.0 && p_value < 1.0) {
            return Err(format!("p_value must be in (0, 1), got {p_value}"));
        }
        if self.baseline_half_life_secs == 0 {
            return Err("baseline_half_life_secs must be positive".into());
        }
        let windows = |secs: u64| ((secs as f64 * 1000.0) / slide_ms as f64).ceil() as u64;
        let warning = self.warning_score.unwrap_or(2.0 * z_open);
        let critical = self.critical_score.unwrap_or(3.0 * z_open);
        if !(warning >= z_open && critical >= warning) {
            return Err(format!("need z_open <= warning_score ({warning}) <= critical_score ({critical})"));
        }
        Ok(Thresholds {
            z_open,
            z_resolve: self.z_resolve,
            p_value,
            min_volume: self.min_volume.unwrap_or(v),
            min_share_lift: self.min_share_lift,
            warmup_windows: windows(self.warmup_secs),
            alpha_level: alpha(self.baseline_half_life_secs, slide_ms),
            alpha_daily: alpha(self.daily_profile_half_life_secs, slide_ms),
            sustained_windows: windows(self.sustained_secs).max(1) as usize,
            resolve_after_windows: windows(self.resolve_after_secs).max(1),
            cooldown_windows: windows(self.cooldown_secs),
            warning_score: warning,
            critical_score: critical,
            critical_ratio: self.critical_ratio,
        })
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize, PartialOrd, Ord)]
#[serde(rename_all = "snake_case")]
pub enum Signal {
    Volume,
    SustainedVolume,
    NegativeVolume,
    NegativeShare,
}

impl Signal {
    pub fn as_str(self) -> &'static str {
        match self {
            Signal::Volume => "volume",
            Signal::SustainedVolume => "sustained_volume",
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

/// One signal's reading for one window.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Reading {
    pub signal: Signal,
    pub observed: f64,
    pub baseline: f64,
    pub score: f64,
    pub fired: bool,
}

/// P(X >= x) for X ~ Poisson(mu), summed from the mode-side term (exact enough for thresholds ≥ 1e-12).
pub fn poisson_sf(x: u64, mu: f64) -> f64 {
    if x == 0 {
        return 1.0;
    }
    if mu <= 0.0 {
        return 0.0;
    }
    let xf = x as f64;
    if xf <= mu {
        return 1.0;
    }
    let mut term = (xf * mu.ln() - mu - ln_gamma(xf + 1.0)).exp();
    let mut sum = term;
    let mut k = xf;
    for _ in 0..10_000 {
        k += 1.0;
        term *= mu / k;
        sum += term;
        if term < 1e-15 * sum {
            break;
        }
    }
    sum.min(1.0)
}

/// Lanczos approximation of ln Γ(x), x > 0.
fn ln_gamma(x: f64) -> f64 {
    const G: [f64; 9] = [
        0.999_999_999_999_809_9,
        676.520_368_121_885_1,
        -1_259.139_216_722_402_8,
        771.323_428_777_653_1,
        -176.615_029_162_140_6,
        12.507_343_278_686_905,
        -0.138_571_095_265_720_12,
        9.984_369_578_019_572e-6,
        1.505_632_735_149_311_6e-7,
    ];
    if x < 0.5 {
        return (std::f64::consts::PI / (std::f64::consts::PI * x).sin()).ln() - ln_gamma(1.0 - x);
    }
    let x = x - 1.0;
    let mut a = G[0];
    let t = x + 7.5;
    for (i, g) in G.iter().enumerate().skip(1) {
        a += g / (x + i as f64);
    }
    0.5 * (2.0 * std::f64::consts::PI).ln() + (x + 0.5) * t.ln() - t + a.ln()
}

/// Online baseline of a count in log space, with an hour-of-day profile.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct CountBaseline {
    level: Option<f64>,
    daily: [f64; 24],
    daily_seen: [u64; 24],
    dev: f64,
    seen: u64,
}

/// Winsorising bound: residuals beyond this many scales update the baseline as if they were at it.
const CLIP: f64 = 2.5;
/// Smallest dispersion (log units) a baseline may claim; keeps a flat series from dividing by ~0.
const MIN_SCALE: f64 = 0.1;

impl Default for CountBaseline {
    fn default() -> Self {
        CountBaseline { level: None, daily: [0.0; 24], daily_seen: [0; 24], dev: 0.3, seen: 0 }
    }
}

/// EWMA weight with start-up bias correction: a plain mean over the first `1/alpha` observations, so a
/// baseline is usable after hours rather than after several half-lives.
fn weight(alpha: f64, n: u64) -> f64 {
    alpha.max(1.0 / n.max(1) as f64)
}

impl CountBaseline {
    /// Scores `x` against the baseline, then learns from it. Returns (z, expected).
    pub fn observe(&mut self, x: f64, end: Millis, th: &Thresholds) -> (f64, f64) {
        let y = x.ln_1p();
        let h = hour_of_day(end - 1);
        let level = *self.level.get_or_insert(y);
        let base = level + self.daily[h];
        let expected = base.max(0.0).exp_m1();
        let scale = (self.dev * 1.2533).max(MIN_SCALE);
        let z = (y - base) / scale;
        let rc = z.clamp(-CLIP, CLIP) * scale;
        self.seen += 1;
        self.daily_seen[h] += 1;
        let a = weight(th.alpha_level, self.seen);
        self.level = Some(level + a * rc);
        if th.alpha_daily > 0.0 {
            // The profile learns what the level does not explain, hour by hour.
            self.daily[h] += weight(th.alpha_daily, self.daily_seen[h]) * (1.0 - a) * rc;
        }
        self.dev += a * (rc.abs() - self.dev);
        (z, expected)
    }
}

/// Online baseline of the negative share.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct ShareBaseline {
    share: Option<f64>,
    seen: u64,
}

impl ShareBaseline {
    /// Returns (z, baseline share); z is 0 until a window with enough posts has set the baseline.
    pub fn observe(&mut self, neg: u64, vol: u64, th: &Thresholds) -> (f64, f64) {
        if vol < th.min_volume.max(1) {
            return (0.0, self.share.unwrap_or(0.0));
        }
        let obs = neg as f64 / vol as f64;
        let Some(p0) = self.share else {
            self.share = Some(obs);
            self.seen = 1;
            return (0.0, obs);
        };
        let p = p0.clamp(0.02, 0.98);
        let sd = (p * (1.0 - p) / vol as f64).sqrt();
        let z = (obs - p) / sd;
        self.seen += 1;
        // Winsorised like the counts: a surge moves the baseline by at most CLIP standard errors' worth.
        let step = (obs - p0).clamp(-CLIP * sd, CLIP * sd);
        self.share = Some(p0 + weight(th.alpha_level, self.seen) * step);
        (z, p0)
    }
}

/// An incident in progress.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct OpenIncident {
    pub id: String,
    pub started: Millis,
    pub seq: u64,
    pub severity: Severity,
    pub peak_volume: u64,
    pub calm_windows: u64,
}

/// What a window did to an entity's incident.
#[derive(Clone, Debug, PartialEq)]
pub enum Transition {
    Opened,
    Updated,
    Resolved,
}

/// A lifecycle transition with the reading that explains it.
#[derive(Clone, Debug)]
pub struct Decision {
    pub transition: Transition,
    pub incident: OpenIncident,
    pub reading: Reading,
}

/// The per-entity detector: baselines plus lifecycle state. Serialisable so a worker can checkpoint it.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct Detector {
    volume: CountBaseline,
    sustained: CountBaseline,
    negative: CountBaseline,
    share: ShareBaseline,
    /// Recent window volumes (newest last), for the sustained signal.
    recent: std::collections::VecDeque<u64>,
    windows_seen: u64,
    cooldown_left: u64,
    pub open: Option<OpenIncident>,
    /// Readings of the last window, for gauges.
    pub last_score: f64,
    pub last_volume_baseline: f64,
    pub last_share_baseline: f64,
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

impl Detector {
    fn severity(&self, r: &Reading, th: &Thresholds) -> Severity {
        let ratio = if r.baseline > 0.0 { r.observed / r.baseline } else { f64::INFINITY };
        if r.score >= th.critical_score && ratio >= th.critical_ratio {
            Severity::Critical
        } else if r.score >= th.warning_score {
            Severity::Warning
        } else {
            Severity::Watch
        }
    }

    fn readings(&mut self, w: &WindowStats, th: &Thresholds) -> [Reading; 4] {
        let end = w.end;
        // A count signal fires on a high robust z that is also improbable under Poisson and large enough.
        let count_reading = |signal, base: &mut CountBaseline, x: u64, min_vol: u64| {
            let (z, mu) = base.observe(x as f64, end, th);
            let fired = z >= th.z_open && x >= min_vol && poisson_sf(x, mu.max(0.3)) < th.p_value;
            Reading { signal, observed: x as f64, baseline: mu, score: z, fired }
        };
        let vol = count_reading(Signal::Volume, &mut self.volume, w.volume, th.min_volume);
        self.recent.push_back(w.volume);
        while self.recent.len() > th.sustained_windows {
            self.recent.pop_front();
        }
        let span: u64 = self.recent.iter().sum();
        let k = self.recent.len() as u64;
        // The sustained signal starts once its span is full, so its baseline never sees partial sums.
        let sus = if k == th.sustained_windows as u64 {
            count_reading(Signal::SustainedVolume, &mut self.sustained, span, th.min_volume * k)
        } else {
            Reading { signal: Signal::SustainedVolume, observed: span as f64, baseline: 0.0, score: 0.0, fired: false }
        };
        let neg = count_reading(Signal::NegativeVolume, &mut self.negative, w.negative, th.min_volume);
        let (z, p0) = self.share.observe(w.negative, w.scored(), th);
        let share = Reading {
            signal: Signal::NegativeShare,
            observed: w.negative_share,
            baseline: p0,
            score: z,
            fired: w.scored() >= th.min_volume && z >= th.z_open && w.negative_share >= p0 + th.min_share_lift,
        };
        [vol, sus, neg, share]
    }

    /// Feeds one closed window; returns the lifecycle transition it caused, if any.
    pub fn on_window(&mut self, entity: &str, w: &WindowStats, th: &Thresholds) -> Option<Decision> {
        let readings = self.readings(w, th);
        self.windows_seen += 1;
        self.last_score = readings.iter().map(|r| r.score).fold(f64::MIN, f64::max);
        self.last_volume_baseline = readings[0].baseline;
        self.last_share_baseline = readings[3].baseline;
        let warmed = self.windows_seen > th.warmup_windows;
        // The strongest firing reading explains an opening; the strongest overall describes an open incident.
        let strongest = |only_fired: bool| {
            readings
                .iter()
                .filter(|r| !only_fired || r.fired)
                .max_by(|a, b| a.score.total_cmp(&b.score).then(b.signal.cmp(&a.signal)))
                .copied()
        };
        match self.open.take() {
            None => {
                if self.cooldown_left > 0 {
                    self.cooldown_left -= 1;
                    return None;
                }
                let r = strongest(true).filter(|_| warmed)?;
                let inc = OpenIncident {
                    id: incident_id(entity, w.start),
                    started: w.start,
                    seq: 0,
                    severity: self.severity(&r, th),
                    peak_volume: w.volume,
                    calm_windows: 0,
                };
                self.open = Some(inc.clone());
                Some(Decision { transition: Transition::Opened, incident: inc, reading: r })
            }
            Some(mut inc) => {
                let r = strongest(false).expect("four readings");
                if readings.iter().all(|r| r.score < th.z_resolve) {
                    inc.calm_windows += 1;
                } else {
                    inc.calm_windows = 0;
                }
                if inc.calm_windows >= th.resolve_after_windows {
                    inc.seq += 1;
                    self.cooldown_left = th.cooldown_windows;
                    return Some(Decision { transition: Transition::Resolved, incident: inc, reading: r });
                }
                let sev = if r.fired { self.severity(&r, th) } else { inc.severity };
                // Grow-only while open: a briefly quieter window does not downgrade the incident.
                let new_sev = sev.max(inc.severity);
                let new_peak = w.volume as f64 >= 1.5 * inc.peak_volume.max(1) as f64 && r.fired;
                if new_sev != inc.severity || new_peak {
                    inc.seq += 1;
                    inc.severity = new_sev;
                    inc.peak_volume = inc.peak_volume.max(w.volume);
                    self.open = Some(inc.clone());
                    return Some(Decision { transition: Transition::Updated, incident: inc, reading: r });
                }
                self.open = Some(inc);
                None
            }
        }
    }

    /// True when the detector holds nothing worth keeping beyond its baselines (for eviction).
    pub fn is_quiet(&self) -> bool {
        self.open.is_none()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn poisson_tail_matches_known_values() {
        // scipy.stats.poisson.sf(x - 1, mu)
        assert!((poisson_sf(10, 2.0) - 4.649807e-5).abs() < 1e-9);
        assert!((poisson_sf(3, 1.0) - 0.0803014).abs() < 1e-6);
        assert_eq!(poisson_sf(0, 5.0), 1.0);
        assert!(poisson_sf(200, 50.0) < 1e-30);
    }

    #[test]
    fn incident_ids_are_deterministic_and_distinct() {
        assert_eq!(incident_id("Acme", 1), incident_id("Acme", 1));
        assert_ne!(incident_id("Acme", 1), incident_id("Acme", 2));
        assert_ne!(incident_id("Acme", 1), incident_id("Acm", 1));
    }

    #[test]
    fn invalid_thresholds_are_rejected() {
        let c = DetectionConfig { z_open: Some(1.0), z_resolve: 2.0, ..DetectionConfig::default() };
        assert!(c.resolve(60_000).is_err());
        let c = DetectionConfig { p_value: Some(1.5), ..DetectionConfig::default() };
        assert!(c.resolve(60_000).is_err());
    }
}
