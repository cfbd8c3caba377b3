//! What `eval-detect` injects into a background: the kinds and sizes of incident (`Cell`, the grid `cells`),
//! where they go in a series (`placements`), what each adds to a 5-minute row (`Injected`, ramped in and
//! out), and the evidence the first minutes of one carry against the background (`information`), which
//! bounds what any detector can achieve on these data.
//!
//! Injections: volume × m (extra posts at m − 1 times the trailing day's mean rate, same sentiment mix),
//! negative share + d points (posts re-drawn, volume unchanged), and negative posts × 2 (extra negative posts
//! at the trailing day's negative rate). Each ramps in and out over a tenth of its duration (at most an hour).
//! Incidents are placed every `duration + 2 days` from day 8, at a seeded time of day, away from labelled
//! windows. Each injection has a topic (`Topic`): a two-word phrase that a share of its posts carry on top of
//! their ordinary text, as a story people talk about would, so the incident's drivers have something to find.

use crate::corpus::Series;
use crate::time::{DAY, HOUR, MIN, STEP};
use flashpoint_core::detect::sim::Rng;
use flashpoint_core::time::Millis;

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

/// The grid `eval-detect` runs: every kind and size at every duration (and the day-long negatives × 2).
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

/// Where a series' injections of `duration` go: every `duration + 2 days` from day 8, at a seeded time of
/// day, skipping labelled windows (with a day's margin).
pub fn placements(s: &Series, duration: Millis, rng: &mut Rng) -> Vec<Millis> {
    let (first, last) = (s.rows[0].0, s.rows.last().unwrap().0);
    let mut out = Vec::new();
    let mut t = first + 8 * DAY;
    while t + duration + DAY < last {
        let at = t + (rng.below((DAY / STEP) as usize) as Millis) * STEP;
        if !s.labelled(at, DAY) && !s.labelled(at + duration, DAY) {
            out.push(at);
        }
        t += duration + 2 * DAY;
    }
    out
}

/// What an injection is about: `phrase` is added to each of its posts with probability `rate`; the rest are
/// ordinary texts. Real stories are named by a minority of the posts about them, so the rate is drawn between
/// `TOPIC_RATE.0` and `TOPIC_RATE.1`.
#[derive(Clone, Debug, PartialEq)]
pub struct Topic {
    pub phrase: String,
    pub rate: f64,
}

/// The share of an injection's posts that carry its phrase: drawn uniformly in this range per injection.
pub const TOPIC_RATE: (f64, f64) = (0.3, 0.6);

/// The topics' words: things people complain or talk about, and what happened to them. No word is a stopword
/// or shorter than three letters (`core::phrase` would skip it); some also occur in the background texts, as
/// "update" or "battery" do in real streams.
const TOPIC_WHAT: [&str; 16] = [
    "battery", "screen", "update", "refund", "delivery", "billing", "login", "outage", "pricing", "warranty",
    "shipping", "privacy", "keynote", "layoffs", "earnings", "checkout",
];
const TOPIC_HOW: [&str; 16] = [
    "fire", "glitch", "delay", "scandal", "leak", "crash", "fees", "rumor", "failure", "strike", "shortage", "breach",
    "backlash", "probe", "meltdown", "hike",
];

/// The topic of the injection seeded by `seed` (deterministic).
pub fn topic(seed: u64) -> Topic {
    let mut rng = Rng::new(seed ^ 0x7091_c5ee_d000_0001);
    let phrase = format!("{} {}", TOPIC_WHAT[rng.below(TOPIC_WHAT.len())], TOPIC_HOW[rng.below(TOPIC_HOW.len())]);
    Topic { phrase, rate: TOPIC_RATE.0 + (TOPIC_RATE.1 - TOPIC_RATE.0) * rng.uniform() }
}

/// Ramp in and out of the duration, at most an hour.
pub(crate) fn ramp(t: Millis, start: Millis, duration: Millis) -> f64 {
    let r = (duration / 10).clamp(1, HOUR) as f64;
    let (a, b) = ((t - start) as f64, (start + duration - t) as f64);
    (a / r).min(b / r).clamp(0.0, 1.0)
}

/// What an injection adds to one row: the mean of its extra posts and of its extra negative posts, and the
/// negative share of the row's own posts. `simulate::run_series` draws from it and `information` measures it.
pub(crate) struct Injected {
    pub(crate) extra: f64,
    pub(crate) extra_negative: f64,
    pub(crate) share: f64,
}

impl Injected {
    /// `reference`: the trailing day's mean count per row; `r`: the ramp (0 to 1); `p_bg`: the background share.
    pub(crate) fn at(kind: Kind, reference: f64, r: f64, p_bg: f64) -> Injected {
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
/// `simulate::run_series` draws. By Lorden's bound a detector that raises a false alarm once per `γ` steps needs about
/// `ln γ` nats of evidence on average before it can alarm, whatever its design, so an injection whose first
/// `horizon` carries less cannot, on average, be detected within it at that false-alarm rate. Real baselines
/// are uncertain and real counts overdispersed, so this is an optimistic bound.
pub fn information(s: &Series, kind: Kind, duration: Millis, start: Millis, p_bg: f64, horizon: Millis) -> f64 {
    let i = s.rows.partition_point(|r| r.0 < start);
    let reference = trailing_mean(s, i);
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

/// Whether the injection at `start`, in expectation (each row its background count plus the injection's mean
/// extra posts), is a natural surge by the budget's rule (`analysis::natural_surge_runs`): `rows` rows in a
/// row at `ratio` × the robust baseline + 2. A volume injection is sized against the trailing day's mean, so at
/// busy hours a "× 3" injection may be no × 3 surge against the same time of other days.
pub fn makes_surge(s: &Series, kind: Kind, duration: Millis, start: Millis, ratio: f64, rows: usize) -> bool {
    let i = s.rows.partition_point(|r| r.0 + STEP / 2 < start);
    let mut run = 0;
    for (k, &(t, count)) in s.rows.iter().enumerate().skip(i).take_while(|r| r.1 .0 + STEP / 2 < start + duration) {
        // Each row's reference is the trailing day before it, as `simulate::run_series` draws it.
        let row = Injected::at(kind, trailing_mean(s, k), ramp(t + STEP / 2, start, duration), 0.0);
        run = if s.surge_row(k, count as f64 + row.extra + row.extra_negative, ratio) { run + 1 } else { 0 };
        if run >= rows {
            return true;
        }
    }
    false
}

/// The trailing day's mean count per row before row `i` (row `i`'s own count if it is the first).
fn trailing_mean(s: &Series, i: usize) -> f64 {
    let trail = &s.rows[i.saturating_sub((DAY / STEP) as usize)..i];
    if trail.is_empty() {
        s.rows.get(i).map_or(0.0, |r| r.1 as f64)
    } else {
        trail.iter().map(|r| r.1 as f64).sum::<f64>() / trail.len() as f64
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
    fn topics_are_seeded_phrases_at_a_minority_rate() {
        let mut own = Vec::new();
        for seed in 0..200 {
            let t = topic(seed);
            assert_eq!(t, topic(seed), "deterministic");
            assert!((TOPIC_RATE.0..TOPIC_RATE.1).contains(&t.rate), "{t:?}");
            // What the driver code will see: the phrase is one two-word phrase (plus its words).
            let mut p = Vec::new();
            flashpoint_core::phrase::phrases_of(&t.phrase, &[], |s, _| p.push(s.to_string()));
            assert_eq!(p.len(), 3, "{t:?}: {p:?}");
            assert_eq!(p[2], t.phrase);
            own.push(t.phrase);
        }
        own.sort();
        own.dedup();
        assert!(own.len() > 100, "topics vary between injections: {}", own.len());
    }

    #[test]
    fn an_injection_makes_a_surge_where_it_is_three_times_the_same_hour_of_other_days() {
        // 10 posts a row, but 40 from 12:00 to 14:00 every day: the day's mean is 12.5 a row.
        let rows: Vec<(Millis, u64)> = (0..(14 * DAY / STEP))
            .map(|i| (i * STEP, if (12 * HOUR..14 * HOUR).contains(&(i * STEP % DAY)) { 40 } else { 10 }))
            .collect();
        let s = Series { name: "x".into(), rows, windows: vec![] };
        // "× 3" adds twice the day's mean, 25 a row: 35 at night is 3.5 × 10; 65 at noon is 1.6 × 40.
        assert!(makes_surge(&s, Kind::Volume(3.0), HOUR, 9 * DAY + 2 * HOUR, 3.0, 2));
        assert!(!makes_surge(&s, Kind::Volume(3.0), HOUR, 9 * DAY + 12 * HOUR, 3.0, 2));
        // A × 5 at noon (50 extra, 90 in all) is not one either; a × 10 (152.5) is. A share shift never is.
        assert!(!makes_surge(&s, Kind::Volume(5.0), HOUR, 9 * DAY + 12 * HOUR, 3.0, 2));
        assert!(makes_surge(&s, Kind::Volume(10.0), HOUR, 9 * DAY + 12 * HOUR, 3.0, 2));
        assert!(!makes_surge(&s, Kind::Share(0.3), HOUR, 9 * DAY + 2 * HOUR, 3.0, 2));
        // A day-long × 3 is a surge by night, but not for twenty hours in a row: its noon rows break the run.
        assert!(makes_surge(&s, Kind::Volume(3.0), DAY, 9 * DAY + 2 * HOUR, 3.0, 12 * 8));
        assert!(!makes_surge(&s, Kind::Volume(3.0), DAY, 9 * DAY + 2 * HOUR, 3.0, 12 * 20));
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
}
