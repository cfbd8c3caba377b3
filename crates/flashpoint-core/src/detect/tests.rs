use super::sim::Rng;
use super::EventKind;
use super::*;
use std::collections::VecDeque;

const MIN: Millis = 60_000;

/// Drives one detector with steps of one minute inside 5-minute windows, as the default config does.
struct Driver {
    det: Detector,
    th: Thresholds,
    panes: VecDeque<StepCounts>,
    t: Millis,
    events: Vec<(Millis, Decision)>,
}

impl Driver {
    fn new(cfg: &DetectionConfig) -> Driver {
        Driver {
            det: Detector::default(),
            th: cfg.resolve(MIN, 5 * MIN).unwrap(),
            panes: VecDeque::new(),
            t: 0,
            events: vec![],
        }
    }

    fn step(&mut self, volume: u64, negative: u64, reach: u64) -> Option<EventKind> {
        let s = StepCounts { volume, negative, scored: volume, reach };
        self.panes.push_back(s);
        if self.panes.len() > 5 {
            self.panes.pop_front();
        }
        self.t += MIN;
        let (v, n, r) = self.panes.iter().fold((0, 0, 0), |a, p| (a.0 + p.volume, a.1 + p.negative, a.2 + p.reach));
        let w = WindowStats {
            start: self.t - 5 * MIN,
            end: self.t,
            volume: v,
            negative: n,
            neutral: v - n,
            positive: 0,
            unscored: 0,
            negative_share: if v > 0 { n as f64 / v as f64 } else { 0.0 },
            mean_compound: 0.0,
            reach: r,
            most_negative: vec![],
            top_reach: vec![],
            top_terms: vec![],
        };
        let d = self.det.on_window("e", &w, &s, &self.th)?;
        let tr = d.kind;
        self.events.push((self.t, d));
        Some(tr)
    }

    fn opened(&self) -> usize {
        self.events.iter().filter(|e| e.1.kind == EventKind::Opened).count()
    }
}

/// A stationary stream: a daily cycle between `lo` and `hi` posts a minute, negative-binomial noise (v = 0.1),
/// and a negative share that itself wanders (beta noise around `share`).
fn background(rng: &mut Rng, minute: i64, lo: f64, hi: f64, share: f64) -> (u64, u64) {
    let phase = (minute % 1440) as f64 / 1440.0 * 2.0 * std::f64::consts::PI;
    let mean = lo + (hi - lo) * 0.5 * (1.0 - phase.cos());
    let vol = rng.neg_binomial(mean, 0.1);
    let a = 40.0 * share;
    let b = 40.0 * (1.0 - share);
    let (ga, gb) = (rng.gamma(a), rng.gamma(b));
    (vol, rng.binomial(vol, ga / (ga + gb)))
}

#[test]
fn thresholds_follow_the_false_alarm_budget() {
    let c = DetectionConfig::default();
    let th = c.resolve(MIN, 5 * MIN).unwrap();
    // 9 statistics, 10,080 one-minute steps a week, 0.5 alarms a week.
    assert!((th.h - (9.0f64 * 10_080.0 / 0.5).ln()).abs() < 1e-9, "{}", th.h);
    let low = DetectionConfig { sensitivity: Sensitivity::Low, ..c.clone() }.resolve(MIN, 5 * MIN).unwrap();
    let high = DetectionConfig { sensitivity: Sensitivity::High, ..c.clone() }.resolve(MIN, 5 * MIN).unwrap();
    assert!(low.h > th.h && th.h > high.h);
    assert!((low.h - th.h - 5f64.ln()).abs() < 1e-9);
    let explicit = DetectionConfig { false_alarms_per_week: Some(0.1), ..c.clone() }.resolve(MIN, 5 * MIN).unwrap();
    assert_eq!(explicit.h, low.h);
    // A coarser step means fewer tests a week, so a lower threshold for the same budget.
    assert!(c.resolve(5 * MIN, 5 * MIN).unwrap().h < th.h);
    assert!(DetectionConfig { false_alarms_per_week: Some(0.0), ..c.clone() }.resolve(MIN, MIN).is_err());
    assert!(DetectionConfig { escalate_ratio: 1.0, ..c }.resolve(MIN, MIN).is_err());
}

/// The calibration test: on 40 entity-weeks of a stationary, overdispersed, seasonal stream the statistics'
/// measured alarm rate (a reading crossing its threshold while no incident is open) must be within
/// [target / 10, 2 × target] at two presets (the bound the thresholds come from is conservative, so the rate
/// is usually below the target; measured: 0.200/week at medium, 1.150 at high). Openings are fewer (0.025 and
/// 0.300): an alarm on ordinary posts opens only once they surge (`lifecycle::RecentVolume`), which this
/// stream rarely does, so most openings here are the share statistics' alarms.
#[test]
fn false_alarm_rate_on_a_stationary_stream_is_within_budget() {
    for (sens, seed) in [(Sensitivity::High, 1u64), (Sensitivity::Medium, 2)] {
        let cfg = DetectionConfig { sensitivity: sens, cooldown_secs: 0, ..DetectionConfig::default() };
        let mut rng = Rng::new(seed);
        let (mut alarms, mut opened) = (0usize, 0usize);
        let mut weeks = 0.0;
        // Four entities of different sizes, ten weeks each (after a day of warm-up).
        for (lo, hi, share) in [(0.05, 0.4, 0.1), (1.0, 6.0, 0.15), (5.0, 30.0, 0.2), (0.3, 2.0, 0.3)] {
            let mut d = Driver::new(&cfg);
            let minutes = 1440 + 10 * 7 * 1440;
            let mut fired = false;
            for m in 0..minutes {
                let (v, n) = background(&mut rng, m, lo, hi, share);
                let quiet = d.det.open.is_none() && d.det.cooldown_left == 0;
                d.step(v, n, 0);
                let now = d.det.last_score >= 1.0;
                alarms += usize::from(quiet && now && !fired && d.det.steps_seen > d.th.warmup_steps);
                fired = now;
            }
            opened += d.opened();
            weeks += 10.0;
        }
        let rate = alarms as f64 / weeks;
        let target = sens.false_alarms_per_week();
        eprintln!(
            "{sens:?}: {alarms} alarms, {opened} openings in {weeks} entity-weeks = {rate:.3}/week (target {target})"
        );
        assert!(
            rate <= 2.0 * target && rate >= target / 10.0,
            "{sens:?}: {alarms} alarms in {weeks} entity-weeks = {rate}/week, target {target}"
        );
        assert!(opened <= alarms, "an opening is an alarm: {opened} > {alarms}");
    }
}

/// Two days of background, then `surge(minute_since_start) -> (extra volume mean, extra negatives mean)`;
/// returns the minutes from the surge's start to the first opened or updated event.
fn delay_of(lo: f64, hi: f64, share: f64, seed: u64, surge: impl Fn(i64) -> (f64, f64), max_min: i64) -> Option<i64> {
    let mut rng = Rng::new(seed);
    let mut d = Driver::new(&DetectionConfig::default());
    for m in 0..2 * 1440 {
        let (v, n) = background(&mut rng, m, lo, hi, share);
        d.step(v, n, 0);
    }
    assert_eq!(d.opened(), 0, "no alarm on the background");
    for k in 0..max_min {
        let (v, n) = background(&mut rng, 2 * 1440 + k, lo, hi, share);
        let (ev, en) = surge(k);
        let (xv, xn) = (rng.poisson(ev), rng.poisson(en));
        if let Some(EventKind::Opened | EventKind::Updated) = d.step(v + xv + xn, n + xn, 0) {
            return Some(k + 1);
        }
    }
    None
}

#[test]
fn a_burst_of_ordinary_posts_opens_once_it_has_lasted_ten_minutes() {
    // 2-4 posts a minute; a burst at 5× (about 15 extra posts a minute) at the background's share. The × 10
    // statistic, whose evidence is not capped, fires within minutes, but ordinary posts are worth a `watch`
    // only once they have surged for ten minutes: five minutes of it open nothing, twelve open at about the tenth
    // (the first quarter of the ten minutes may still hold a minute of the background).
    let burst = |len: i64| move |k: i64| if k < len { (12.75, 2.25) } else { (0.0, 0.0) };
    assert_eq!(delay_of(2.0, 4.0, 0.15, 11, burst(5), 60), None);
    let d = delay_of(2.0, 4.0, 0.15, 11, burst(12), 60);
    assert!(d.is_some_and(|d| (9..=12).contains(&d)), "{d:?}");
}

#[test]
fn a_day_long_doubling_of_negative_posts_is_detected_within_three_hours() {
    // Negatives run at 15% of 2-6 posts a minute (~0.6 a minute); they double, ramping in over an hour.
    let d = delay_of(2.0, 6.0, 0.15, 12, |k| (0.0, 0.6 * (k as f64 / 60.0).min(1.0)), 24 * 60);
    assert!(d.is_some_and(|d| d <= 180), "{d:?}");
}

#[test]
fn a_day_long_tripling_of_volume_is_detected_within_three_hours_a_doubling_is_not_a_surge() {
    // Extra posts at the background's share, ramping in over an hour. Twice the daily mean is not a surge
    // (the budget's natural surge is × 3): the statistics fire, nothing opens. Four times it is.
    let ramp = |extra: f64| move |k: i64| (extra * 0.85 * (k as f64 / 60.0).min(1.0), extra * 0.15);
    assert_eq!(delay_of(2.0, 6.0, 0.15, 13, ramp(4.0), 24 * 60), None);
    let d = delay_of(2.0, 6.0, 0.15, 13, ramp(12.0), 24 * 60);
    assert!(d.is_some_and(|d| d <= 180), "{d:?}");
}

#[test]
fn a_share_shift_of_twenty_points_over_two_hours_is_detected() {
    // Three posts a minute (180 an hour), 15% negative; for two hours 20 points more of them are negative,
    // with the volume unchanged: replace posts instead of adding them.
    let mut rng = Rng::new(14);
    let mut d = Driver::new(&DetectionConfig::default());
    for m in 0..2 * 1440 {
        let (v, n) = background(&mut rng, m, 3.0, 3.0, 0.15);
        d.step(v, n, 0);
    }
    assert_eq!(d.opened(), 0);
    let mut at = None;
    for k in 0..120 {
        let (v, _) = background(&mut rng, 2 * 1440 + k, 3.0, 3.0, 0.15);
        let n = rng.binomial(v, 0.35);
        if d.step(v, n, 0) == Some(EventKind::Opened) {
            at = Some(k + 1);
            break;
        }
    }
    assert!(at.is_some_and(|k| k <= 60), "{at:?}");
    assert_eq!(d.events[0].1.reading.signal, Signal::NegativeShare, "{:?}", d.events[0].1.reading);
}

#[test]
fn a_five_minute_quadrupling_alone_does_not_open_but_a_lasting_one_does() {
    // 3-5 posts a minute; five minutes at about × 4. Uncapped, the × 2 and × 4 statistics gather more than the
    // ~12-nat medium threshold from it (this seed: opened after 4 minutes with the cap lifted); capped at
    // MAX_NATS_PER_MINUTE they gather at most 10, and the × 10 statistic stays under its threshold: no
    // incident. Lasting fifteen minutes, it opens one.
    let short = delay_of(3.0, 5.0, 0.15, 31, |k| if k < 5 { (12.0, 0.0) } else { (0.0, 0.0) }, 60);
    assert_eq!(short, None);
    let long = delay_of(3.0, 5.0, 0.15, 31, |k| if k < 15 { (12.0, 0.0) } else { (0.0, 0.0) }, 60);
    assert!(long.is_some_and(|d| d <= 10), "{long:?}");
}

/// The statistics' calibration starts halfway through the warm-up, so the first alarms are held to the
/// entity's own tail rather than to the theoretical one; the evidence gathered before the warm-up ends is
/// dropped, so none of it is spent at the first step that may alarm.
#[test]
fn calibration_learns_in_the_second_half_of_the_warm_up() {
    let cfg = DetectionConfig::default();
    let run = |bursts: bool| {
        let mut d = Driver::new(&cfg);
        let mut rng = Rng::new(41);
        let warm = d.th.warmup_steps as i64;
        for m in 0..=warm {
            let (v, n) = background(&mut rng, m, 20.0, 60.0, 0.15);
            // Every three hours, ten minutes at × 4, the last one ending as the warm-up does: a stream whose tail
            // is heavier than its model says.
            d.step(if bursts && (m + 10) % 180 < 10 && m < warm { 4 * v } else { v }, n, 0);
        }
        d
    };
    let (calm, bursty) = (run(false), run(true));
    let (tc, tb) = (calm.det.diagnostics(&calm.th).threshold[0], bursty.det.diagnostics(&bursty.th).threshold[0]);
    // × 4 and × 10 volume statistics: raised by the bursts they saw in the second warm-up day.
    assert!(tb[1] > 1.5 * tc[1] && tb[2] > 1.5 * tc[2], "bursty {tb:?} calm {tc:?}");
    // The warm-up ended on a burst; its evidence did not carry into the first step that may alarm.
    let s = bursty.det.diagnostics(&bursty.th).statistic;
    assert!(s.iter().flatten().all(|&x| x < 3.0), "{s:?}");
    assert_eq!(bursty.opened(), 0);
}

/// A crisis must not leave the detector deaf: its residuals are not taught to the dispersions, and the
/// calibration learns its excursion only up to the alarm threshold (censored). The same surge a week later
/// is detected about as fast as the first one.
#[test]
fn a_second_incident_a_week_later_is_detected_as_fast_as_the_first() {
    let mut rng = Rng::new(41);
    let mut d = Driver::new(&DetectionConfig::default());
    let surges = [3 * 1440 + 600, 10 * 1440 + 600];
    let mut delay = [None, None];
    for m in 0..12 * 1440 {
        let (mut v, mut n) = background(&mut rng, m, 2.0, 6.0, 0.15);
        // Six hours of extra negative posts, 4 a minute: the volume about doubles, the share triples.
        let surge = surges.iter().position(|&at| m >= at && m < at + 360);
        if surge.is_some() {
            let extra = rng.poisson(4.0);
            v += extra;
            n += extra;
        }
        let tr = d.step(v, n, 0);
        if let (Some(i), Some(EventKind::Opened | EventKind::Updated)) = (surge, tr) {
            delay[i] = delay[i].or(Some(m - surges[i] + 1));
        }
    }
    let [Some(first), Some(second)] = delay else { panic!("not detected: {delay:?} {:?}", kinds(&d)) };
    eprintln!("first surge detected after {first} min, the second after {second} min");
    // Before censoring and the dispersion freeze: 2 and 46 minutes. Now 2 and 6: the baseline level still
    // learns during an incident (so a lasting shift is eventually accepted), which costs the second some minutes.
    assert!(second <= first + 10, "first detected after {first} min, second after {second} min: {:?}", kinds(&d));
}

/// When an incident resolves as calm, the baselines are put back to what they were when it opened: three
/// hours of a 40% negative share must not leave the share baseline raised (which would read as a stream below
/// baseline for a day and inflate the share's dispersion).
#[test]
fn a_calm_resolution_puts_the_baselines_back() {
    let mut rng = Rng::new(51);
    let mut d = Driver::new(&DetectionConfig::default());
    for m in 0..2 * 1440 {
        let (v, n) = background(&mut rng, m, 4.0, 8.0, 0.15);
        d.step(v, n, 0);
    }
    let before = d.det.diagnostics(&d.th).share;
    for m in 0..180 {
        let (v, _) = background(&mut rng, 2 * 1440 + m, 4.0, 8.0, 0.15);
        let n = rng.binomial(v, 0.4);
        d.step(v, n, 0);
    }
    let during = d.det.diagnostics(&d.th).share;
    for m in 180..600 {
        let (v, n) = background(&mut rng, 2 * 1440 + m, 4.0, 8.0, 0.15);
        d.step(v, n, 0);
    }
    let k = kinds(&d);
    assert_eq!(k.first().map(|e| e.0), Some(EventKind::Opened), "{k:?}");
    let last = &d.events.last().unwrap().1;
    assert_eq!((last.kind, last.resolution), (EventKind::Resolved, Some(Resolution::Calm)), "{k:?}");
    let after = d.det.diagnostics(&d.th).share;
    assert!(during > before + 0.01, "the baseline learned during the incident: {before} -> {during}");
    assert!((after - before).abs() < 0.005, "put back: before {before}, during {during}, after {after}");
}

#[test]
fn three_posts_at_a_quiet_entity_do_not_alarm_but_a_storm_does() {
    let mut d = Driver::new(&DetectionConfig::default());
    // One post every ten minutes for two days.
    for m in 0..2 * 1440 {
        d.step(u64::from(m % 10 == 0), 0, 0);
    }
    d.step(3, 3, 0);
    for _ in 0..30 {
        d.step(0, 0, 0);
    }
    assert_eq!(d.opened(), 0);
    d.step(30, 30, 0);
    assert_eq!(d.opened(), 1);
}

/// Background at 3-5 posts a minute for two days, then `steps` of (volume, negatives, reach).
fn lifecycle(cfg: &DetectionConfig, steps: impl IntoIterator<Item = (u64, u64, u64)>) -> Driver {
    let mut rng = Rng::new(21);
    let mut d = Driver::new(cfg);
    for m in 0..2 * 1440 {
        let (v, n) = background(&mut rng, m, 3.0, 5.0, 0.15);
        d.step(v, n, 100);
    }
    assert!(d.events.is_empty());
    for (v, n, r) in steps {
        d.step(v, n, r);
    }
    d
}

fn kinds(d: &Driver) -> Vec<(EventKind, Severity, u64)> {
    // A resolution comes with the `resolved` event and only with it.
    assert!(d.events.iter().all(|(_, e)| (e.kind == EventKind::Resolved) == e.resolution.is_some()));
    d.events.iter().map(|(_, e)| (e.kind, e.incident.severity, e.incident.seq)).collect()
}

#[test]
fn lifecycle_opens_escalates_when_the_surge_grows_and_resolves_when_calm() {
    // 10 negative posts a minute for 20 minutes, then 40 a minute for 20, then back to 4 neutral a minute.
    let steps =
        (0..20).map(|_| (14, 10, 100)).chain((0..20).map(|_| (44, 40, 100))).chain((0..180).map(|_| (4, 0, 100)));
    let d = lifecycle(&DetectionConfig::default(), steps);
    let k = kinds(&d);
    assert_eq!(k[0].0, EventKind::Opened);
    assert!(
        k.iter().any(|e| e.0 == EventKind::Updated && e.1 >= Severity::Warning),
        "severity rises with the excess negatives: {k:?}"
    );
    let grown = d.events.iter().find(|(_, e)| e.kind == EventKind::Updated && e.incident.peak_negative >= 150);
    assert!(grown.is_some(), "the fourfold surge escalates: {k:?}");
    let (t_res, res) = d.events.last().unwrap();
    assert_eq!((res.kind, res.resolution), (EventKind::Resolved, Some(Resolution::Calm)), "{k:?}");
    // Calm from minute 40 on: an hour of near-baseline windows (after the 5-minute window drains).
    let surge_end = 2 * 1440 * MIN + 40 * MIN;
    assert!(*t_res >= surge_end + 60 * MIN && *t_res <= surge_end + 70 * MIN, "{}", (t_res - surge_end) / MIN);
    assert!(res.incident.excess_negative > 800.0, "{}", res.incident.excess_negative);
    assert_eq!(res.incident.seq as usize, d.events.len() - 1);
    assert_eq!(res.incident.severity, Severity::Critical);
}

#[test]
fn severity_counts_reach() {
    // A burst of negative posts from accounts with a large audience: few posts, wide reach.
    let steps = (0..8).map(|_| (12, 8, 400_000)).chain((0..10).map(|_| (4, 0, 100)));
    let d = lifecycle(&DetectionConfig::default(), steps);
    let sev: Vec<Severity> = d.events.iter().map(|e| e.1.incident.severity).collect();
    assert!(sev.contains(&Severity::Warning) || sev.contains(&Severity::Critical), "{:?}", kinds(&d));
    assert!(d.events.iter().all(|e| e.1.incident.excess_negative < 100.0));
}

#[test]
fn a_stale_watch_incident_is_reassessed_then_can_reopen() {
    // A lasting surge of ordinary posts: 3.5 times the volume, no negatives, for 12 hours; then a storm.
    let cfg = DetectionConfig::default();
    let steps = (0..12 * 60).map(|_| (14, 0, 10)).chain((0..10).map(|_| (80, 60, 10)));
    let d = lifecycle(&cfg, steps);
    let k = kinds(&d);
    assert_eq!(k[0], (EventKind::Opened, Severity::Watch, 0), "{k:?}");
    let re = d.events.iter().position(|e| e.1.resolution == Some(Resolution::Reassessed));
    let re = re.unwrap_or_else(|| panic!("no re-assessment: {k:?}"));
    let (t_open, t_re) = (d.events[0].0, d.events[re].0);
    assert_eq!((t_re - t_open) / MIN, 6 * 60, "re-assessed after six hours without escalation");
    // Later, the lasting rise or the storm opens a new incident, and the storm is not a watch.
    let reopened = d.events[re + 1..].iter().find(|e| e.1.kind == EventKind::Opened);
    assert!(reopened.is_some_and(|e| e.1.incident.id != d.events[0].1.incident.id), "{k:?}");
    assert!(d.events.last().unwrap().1.incident.severity >= Severity::Warning, "{k:?}");
}

#[test]
fn detector_state_round_trips_through_json() {
    let steps = (0..20).map(|_| (14, 10, 100));
    let d = lifecycle(&DetectionConfig::default(), steps);
    let json = serde_json::to_string(&d.det).unwrap();
    let back: Detector = serde_json::from_str(&json).unwrap();
    assert_eq!(serde_json::to_string(&back).unwrap(), json);
    assert!(back.open.is_some());
}

#[test]
fn incident_ids_are_deterministic_and_distinct() {
    assert_eq!(incident_id("Acme", 1), incident_id("Acme", 1));
    assert_ne!(incident_id("Acme", 1), incident_id("Acme", 2));
    assert_ne!(incident_id("Acme", 1), incident_id("Acm", 1));
}

#[test]
fn a_share_shift_during_an_open_volume_incident_escalates_it() {
    // A neutral volume surge opens an incident; an hour later a third of the posts turn negative: the share
    // signal joins, and the incident is updated with it.
    let steps = (0..60).map(|_| (12, 0, 10)).chain((0..60).map(|_| (12, 5, 10)));
    let d = lifecycle(&DetectionConfig::default(), steps);
    let k = kinds(&d);
    assert_eq!(d.events[0].1.reading.signal, Signal::Volume, "{k:?}");
    let joined = d.events.iter().find(|e| {
        e.1.kind == EventKind::Updated && matches!(e.1.reading.signal, Signal::NegativeShare | Signal::NegativeVolume)
    });
    assert!(joined.is_some(), "{k:?}");
    assert!(joined.unwrap().0 > 2 * 1440 * MIN + 60 * MIN, "after the share shift began");
}

#[test]
fn the_share_joining_a_buzz_incident_makes_it_a_crisis_in_the_same_event() {
    // As above: a neutral surge (buzz), then a third of its posts negative. The event that says the share
    // signal joined says crisis too.
    let steps = (0..60).map(|_| (12, 0, 10)).chain((0..60).map(|_| (12, 5, 10)));
    let d = lifecycle(&DetectionConfig::default(), steps);
    let k = kinds(&d);
    assert_eq!(d.events[0].1.incident.class, IncidentClass::Buzz, "{k:?}");
    let share = d.events.iter().find(|e| e.1.incident.signals_fired & (1 << Signal::NegativeShare as u8) != 0);
    let share = share.unwrap_or_else(|| panic!("the share never joined: {k:?}"));
    assert_eq!((share.1.kind, share.1.incident.class), (EventKind::Updated, IncidentClass::Crisis), "{k:?}");
}

/// Two days of background, then an hour at four times its 3-5 posts a minute with `share` of them negative.
fn surge_at_share(rng: &mut Rng, share: f64) -> Driver {
    let mut steps = Vec::new();
    for _ in 0..60 {
        let v = rng.poisson(16.0);
        steps.push((v, rng.binomial(v, share), 100));
    }
    lifecycle(&DetectionConfig::default(), steps)
}

#[test]
fn a_surge_of_ordinary_posts_is_buzz_and_pages_nobody_until_it_turns_negative() {
    use IncidentClass::{Buzz, Crisis};
    for seed in 1..=6 {
        // At the background's 15% the negative posts rise with the volume, to about 100 above the baseline
        // in the hour (four times the warning level), but not beyond what the share predicts: buzz, at watch.
        let mut rng = Rng::new(seed);
        let mut d = surge_at_share(&mut rng, 0.15);
        let k = kinds(&d);
        assert_eq!(k[0].0, EventKind::Opened, "{k:?}");
        assert!(
            d.events.iter().all(|e| e.1.incident.class == Buzz && e.1.incident.severity == Severity::Watch),
            "{k:?}"
        );
        let open = d.det.open.clone().unwrap();
        assert_eq!((open.class, open.severity), (Buzz, Severity::Watch));
        assert!(open.excess_negative > 25.0, "more than a warning's worth: {}", open.excess_negative);
        // Then 30 points of them turn negative: within ten minutes the incident is updated as a crisis, and
        // it pages (warning or above) soon after.
        let n = d.events.len();
        for _ in 0..30 {
            let v = rng.poisson(16.0);
            d.step(v, rng.binomial(v, 0.45), 100);
        }
        let k = kinds(&d);
        let turned = d.events[n..].iter().position(|e| e.1.incident.class == Crisis);
        let turned = turned.unwrap_or_else(|| panic!("seed {seed}: never turned: {k:?}"));
        let (at, e) = &d.events[n + turned];
        assert_eq!(e.kind, EventKind::Updated, "{k:?}");
        assert!(*at <= 2 * 1440 * MIN + 70 * MIN, "seed {seed}: {} min: {k:?}", (at - 2 * 1440 * MIN) / MIN);
        assert!(d.events[n..].iter().any(|e| e.1.incident.severity >= Severity::Warning), "{k:?}");
    }
}

#[test]
fn a_surge_with_more_negative_posts_than_its_share_predicts_is_a_crisis_within_minutes() {
    for seed in 1..=6 {
        // The same surge at 40% negative. The window that opens it may hold too few of its posts to tell (it
        // opens on the volume within a minute or two); the excess over the share's prediction is clear within
        // minutes, and the incident is updated as a crisis, then pages.
        let d = surge_at_share(&mut Rng::new(seed), 0.40);
        let k = kinds(&d);
        let t0 = d.events[0].0;
        let crisis = d.events.iter().find(|e| e.1.incident.class == IncidentClass::Crisis);
        assert!(crisis.is_some_and(|e| e.0 <= t0 + 5 * MIN), "seed {seed}: {k:?}");
        assert!(k.iter().any(|e| e.1 >= Severity::Warning), "{k:?}");
    }
}

#[test]
fn a_sparse_entity_opens_on_a_lasting_surge_not_on_a_busy_minute() {
    // About one post a minute (0.5 at night, 1.5 by day); every three hours for a week, one minute of five
    // posts: a conversation, not an incident. Then twenty minutes at five a minute.
    let mut rng = Rng::new(41);
    let mut d = Driver::new(&DetectionConfig::default());
    let busy_minutes = 9 * 1440;
    for m in 0..busy_minutes {
        let (v, n) = background(&mut rng, m, 0.5, 1.5, 0.15);
        let (v, n) = if m >= 2 * 1440 && m % 180 == 0 { (5, rng.binomial(5, 0.15)) } else { (v, n) };
        d.step(v, n, 0);
    }
    assert_eq!(d.opened(), 0, "{:?}", kinds(&d));
    for _ in 0..20 {
        let v = rng.poisson(5.0);
        d.step(v, rng.binomial(v, 0.15), 0);
    }
    assert_eq!(d.opened(), 1, "{:?}", kinds(&d));
}

#[test]
fn a_long_surge_of_ordinary_posts_a_little_more_negative_stays_buzz() {
    // Twelve hours at four times the volume, 17% negative against the background's 15%: no change of
    // sentiment anyone would call a crisis (the smallest share shift tested is 10 points). Counted over the
    // incident's thousands of posts, two points are several standard deviations: a rule read at every step
    // on the incident's own posts turned it into a crisis and paged; the share statistics do not.
    for seed in 1..=4 {
        let mut rng = Rng::new(seed);
        let steps: Vec<_> = (0..12 * 60)
            .map(|_| {
                let v = rng.poisson(16.0);
                (v, rng.binomial(v, 0.17), 100)
            })
            .collect();
        let d = lifecycle(&DetectionConfig::default(), steps);
        let k = kinds(&d);
        assert_eq!(k.first().map(|e| e.0), Some(EventKind::Opened), "seed {seed}: {k:?}");
        let crisis = d.events.iter().find(|e| e.1.incident.class == IncidentClass::Crisis);
        assert!(crisis.is_none(), "seed {seed}: a crisis at {:?}: {k:?}", crisis.map(|e| e.0 / MIN - 2 * 1440));
        assert!(d.events.iter().all(|e| e.1.incident.severity == Severity::Watch), "seed {seed}: {k:?}");
    }
}

#[test]
fn a_sparse_entity_s_day_of_more_complaints_is_a_crisis_within_the_day() {
    // About one post a minute, 30% negative (an airline), with a five-minute conversation of five posts a
    // minute every three hours: no opening on these quiet days (before the buzz gate, one of them opened a
    // `watch`). Then a day on which 70% more negative posts arrive (1.7 times its negatives, the
    // share from 30% to about 42%): a crisis within the day, opened by the share, with no surge of volume.
    let mut rng = Rng::new(43);
    let mut d = Driver::new(&DetectionConfig::default());
    for m in 0..7 * 1440 {
        let (v, n) = background(&mut rng, m, 0.5, 1.5, 0.3);
        let (v, n) = if m >= 2 * 1440 && m % 180 < 5 { (5, rng.binomial(5, 0.3)) } else { (v, n) };
        d.step(v, n, 0);
    }
    assert_eq!(d.opened(), 0, "{:?}", kinds(&d));
    for m in 7 * 1440..8 * 1440 {
        let (v, n) = background(&mut rng, m, 0.5, 1.5, 0.3);
        let extra = rng.poisson(0.7 * 0.3);
        d.step(v + extra, n + extra, 0);
    }
    let k = kinds(&d);
    let first = d.events.first().unwrap_or_else(|| panic!("not found within the day: {k:?}"));
    assert_eq!(first.1.kind, EventKind::Opened);
    assert_eq!((first.1.incident.class, first.1.reading.signal), (IncidentClass::Crisis, Signal::NegativeShare));
    eprintln!("opened after {} h", (first.0 / MIN - 7 * 1440) as f64 / 60.0);
}
