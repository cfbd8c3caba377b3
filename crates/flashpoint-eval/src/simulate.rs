//! One series replayed through the aggregator as posts, with or without injections: what `eval-detect`
//! measures everything on.
//!
//! Each NAB series' 5-minute counts are expanded into posts at seeded uniform times in the row, each post a
//! real labelled tweet drawn from the SemEval pool so that the negative share is the corpus's own; the
//! pipeline's label of a post is its VADER label, as in a replay. Posts enter the worker's aggregate machine
//! (an `AggregatePartition`, as stage records of one source) with the configured windows, through `Feed::post`;
//! matching and scoring are tested elsewhere and would only cost time.
//!
//! An injection's own posts (the extra posts of a surge, the posts a share shift turns negative) carry its
//! topic's phrase at the topic's rate, appended to their ordinary text. Whether a post carries it is drawn
//! from a generator of its own, so the counts and labels, and with them every detection, are the same draws
//! as without topics. A run returns its events as `RunEvent`s: what `analysis` measures.

use crate::corpus::{Series, Texts};
use crate::error::{EvalError, Result};
use crate::injection::{ramp, Cell, Injected, Kind, Topic};
use crate::time::{DAY, MIN, STEP};
use flashpoint_core::aggregate::{Aggregator, AggregatorConfig};
use flashpoint_core::detect::sim::Rng;
use flashpoint_core::detect::{IncidentClass, Severity};
use flashpoint_core::entity::EntityConfig;
use flashpoint_core::event::{EventKind, Output, SpikeEvent};
use flashpoint_core::partition::{AggregatePartition, Step};
use flashpoint_core::sentiment::Label;
use flashpoint_core::stage::{AggregateStage, ScoredPost, StageRecord};
use flashpoint_core::time::Millis;
use std::collections::VecDeque;
use std::fmt::Write as _;
use std::path::Path;

/// Every simulated post has this audience, so reach plays no part in what is measured.
const FOLLOWERS: u64 = 100;

/// The one entity of a run: every simulated post mentions it.
const ENTITY: &str = "ticker";

/// The aggregate machine of one run, and the texts its posts are drawn from.
struct Feed<'a> {
    partition: AggregatePartition,
    texts: &'a Texts,
    /// Posts so far, and the current post's id (reused to spare an allocation per post).
    n: u64,
    id: String,
}

impl Feed<'_> {
    /// One post at `t`, negative or not, with a text drawn from the pool (and `topic` appended); what it
    /// closes goes to `out`.
    fn post(&mut self, t: Millis, negative: bool, topic: Option<&str>, rng: &mut Rng, out: &mut Vec<Output>) {
        let (text, compound, label) = if negative {
            let (t, c) = &self.texts.negative[rng.below(self.texts.negative.len())];
            (t.as_str(), *c, Label::Negative)
        } else {
            let (t, c, l) = &self.texts.other[rng.below(self.texts.other.len())];
            (t.as_str(), *c, *l)
        };
        self.n += 1;
        self.id.clear();
        let _ = write!(self.id, "p{}", self.n);
        let off = self.n as i64 - 1;
        let rec = StageRecord::Post(ScoredPost {
            entity: ENTITY.into(),
            id: self.id.as_str().into(),
            text: match topic {
                Some(p) => format!("{text} {p}").into(),
                None => text.into(),
            },
            created_at: t,
            author: None,
            followers: Some(FOLLOWERS),
            compound,
            label,
            url: None,
            author_url: None,
            platform: None,
            src: "eval/0".into(),
            off,
            sub: 0,
            response: false,
        });
        let step = self.partition.on_decoded(off, &rec, out);
        debug_assert!(matches!(step, Step::Applied(_)), "{step:?}");
    }

    fn aggregator(&self) -> &Aggregator {
        &self.partition.stage.aggregator
    }
}

/// The drivers of an event that `RunEvent` keeps: the topic measure asks for the top three.
pub const TOP_DRIVERS: usize = 3;

/// One spike event of a run, as `analysis` reads it.
#[derive(Clone, Debug, PartialEq)]
pub struct RunEvent {
    pub kind: EventKind,
    /// The end of the window that emitted it.
    pub end: Millis,
    pub incident: String,
    pub class: IncidentClass,
    pub severity: Severity,
    /// Its first `TOP_DRIVERS` drivers' phrases, strongest first.
    pub drivers: Vec<String>,
}

impl RunEvent {
    fn of(e: &SpikeEvent) -> RunEvent {
        RunEvent {
            kind: e.kind,
            end: e.window_end,
            incident: e.incident_id.clone(),
            class: e.class,
            severity: e.severity,
            drivers: e.evidence.drivers.iter().take(TOP_DRIVERS).map(|d| d.phrase.clone()).collect(),
        }
    }
}

/// What a run injects: the cell (kind and duration), each injection's start, and its topic (same order).
#[derive(Clone, Copy, Debug)]
pub struct Injections<'a> {
    pub cell: Cell,
    pub starts: &'a [Millis],
    pub topics: &'a [Topic],
}

/// The detector's internals along a run (`--trace`): hourly, and every row of an injection, plus its events.
struct Trace {
    path: std::path::PathBuf,
    buf: String,
}

impl Trace {
    /// One file per series and cell in `dir`.
    fn new(dir: &Path, s: &Series, inj: Option<Injections>) -> Trace {
        let what =
            inj.map_or("background".to_string(), |i| format!("{} {}m", i.cell.kind.name(), i.cell.duration / MIN));
        Trace { path: dir.join(format!("{} {what}.tsv", s.name)), buf: String::new() }
    }

    fn event(&mut self, e: &SpikeEvent, end: Millis, agg: &Aggregator) {
        let _ = writeln!(
            self.buf,
            "# {:?} {end} {} obs {} base {:.1} score {:.2} {:?} {}",
            e.kind,
            e.signal.as_str(),
            e.observed,
            e.baseline,
            e.score,
            e.severity,
            e.class.as_str()
        );
        // Which statistics were over their thresholds (signal, design index), for an opening.
        if let (EventKind::Opened, Some(d)) = (e.kind, agg.detector_diagnostics(0)) {
            let over: Vec<(usize, usize)> = (0..3)
                .flat_map(|i| (0..3).map(move |j| (i, j)))
                .filter(|&(i, j)| d.statistic[i][j] >= d.threshold[i][j])
                .collect();
            let _ = writeln!(self.buf, "#   over {over:?}");
        }
    }

    fn row(&mut self, t: Millis, count: u64, agg: &Aggregator) {
        if let Some(d) = agg.detector_diagnostics(0) {
            let _ = writeln!(self.buf, "{t}\t{count}\t{}", serde_json::to_string(&d).unwrap_or_default());
        }
    }

    fn write(self) -> Result<()> {
        std::fs::write(&self.path, self.buf).map_err(|source| EvalError::Write { path: self.path, source })
    }
}

/// Replays `s` with `injections` (`None` for the background) and returns its events in order. With `trace`,
/// writes the detector's internals along the run to a file in that folder.
pub fn run_series(
    s: &Series,
    texts: &Texts,
    cfg: &AggregatorConfig,
    injections: Option<Injections>,
    seed: u64,
    trace: Option<&Path>,
) -> Result<Vec<RunEvent>> {
    let entity = EntityConfig {
        name: ENTITY.into(),
        terms: vec![ENTITY.into()],
        handles: vec![],
        hashtags: vec![],
        exclude: vec![],
        ..EntityConfig::default()
    };
    let stage = AggregateStage::new(&[entity], cfg).map_err(EvalError::Config)?;
    let partition = AggregatePartition::start(stage, None, 0).map_err(EvalError::Config)?;
    let mut feed = Feed { partition, texts, n: 0, id: String::new() };
    let mut rng = Rng::new(seed);
    // Whether an injected post carries its topic: a generator of its own (see the module comment).
    let mut topic_rng = Rng::new(seed ^ 0x70b1_c000_0000_0000);
    let p_bg = texts.gold_negative_share;
    let mut out = Vec::new();
    let mut events = Vec::new();
    // Trailing day's mean count per 5-minute row: the reference rate a surge multiplies.
    let mut trail: VecDeque<u64> = VecDeque::new();
    let mut trail_sum = 0u64;
    let mut trace = trace.map(|dir| Trace::new(dir, s, injections));
    for &(t, count) in &s.rows {
        let reference = if trail.is_empty() { count as f64 } else { trail_sum as f64 / trail.len() as f64 };
        let (mut extra, mut extra_neg, mut share) = (0u64, 0u64, p_bg);
        let mut topic = None;
        if let Some(Injections { cell, starts, topics }) = injections {
            let mid = t + STEP / 2;
            if let Some(k) = starts.iter().position(|&st| mid >= st && mid < st + cell.duration) {
                let st = starts[k];
                topic = topics.get(k);
                let row = Injected::at(cell.kind, reference, ramp(mid, st, cell.duration), p_bg);
                // Only the kind's own draw, so each kind's random sequence is what it always was.
                match cell.kind {
                    Kind::Volume(_) => extra = rng.poisson(row.extra),
                    Kind::Share(_) => share = row.share,
                    Kind::NegativeTimes2 => extra_neg = rng.poisson(row.extra_negative),
                }
            }
        }
        // The row's posts at seeded uniform times in its 5 minutes (posts arrive at random, not on a grid:
        // evenly spread posts would make every minute of a row alike), in time order.
        // A post is the injection's own when it is one of the extra posts, or one the shifted share made
        // negative (its draw between the background share and the shifted one).
        let n_bg = count + extra;
        let mut posts: Vec<(Millis, bool, bool)> = Vec::with_capacity((n_bg + extra_neg) as usize);
        for j in 0..n_bg + extra_neg {
            let at = t + (rng.uniform() * STEP as f64) as Millis;
            let (negative, injected) = if j >= n_bg {
                (true, true)
            } else {
                let u = rng.uniform();
                (u < share, j >= count || (u >= p_bg && u < share))
            };
            posts.push((at, negative, injected));
        }
        posts.sort_by_key(|p| p.0);
        for (at, negative, injected) in posts {
            let phrase = topic.filter(|tp| injected && topic_rng.uniform() < tp.rate).map(|tp| tp.phrase.as_str());
            feed.post(at, negative, phrase, &mut rng, &mut out);
        }
        for o in out.drain(..) {
            if let Output::Spike(e) = o {
                if let Some(tr) = trace.as_mut() {
                    tr.event(&e, e.window_end, feed.aggregator());
                }
                events.push(RunEvent::of(&e));
            }
        }
        if let Some(tr) = trace.as_mut() {
            let hourly = (t / STEP) % (60 * MIN / STEP) == 0;
            if hourly || injections.is_some_and(|i| i.starts.iter().any(|&a| t >= a && t <= a + i.cell.duration)) {
                tr.row(t, count, feed.aggregator());
            }
        }
        trail.push_back(count);
        trail_sum += count;
        if trail.len() > (DAY / STEP) as usize {
            trail_sum -= trail.pop_front().unwrap_or(0);
        }
    }
    if let Some(tr) = trace {
        tr.write()?;
    }
    Ok(events)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::analysis::{delays, detections, expected_class, judge};
    use crate::injection::{placements, topic};
    use crate::time::HOUR;

    /// The machinery end to end on a small synthetic background: a flat 40 posts per 5 minutes for 14 days
    /// with synthetic texts; a 10× volume surge must be found and the run must be deterministic.
    #[test]
    fn a_large_injection_is_found_deterministically() {
        let texts = Texts {
            negative: vec![("awful service again".into(), -0.6)],
            other: vec![("boarding now".into(), 0.0, Label::Neutral), ("great crew".into(), 0.6, Label::Positive)],
            gold_negative_share: 0.15,
        };
        let rows: Vec<(Millis, u64)> = (0..(14 * DAY / STEP)).map(|i| (i * STEP, 40)).collect();
        let s = Series { name: "flat".into(), rows, windows: vec![] };
        let cfg = AggregatorConfig::default();
        let cell = Cell { kind: Kind::Volume(10.0), duration: HOUR };
        let starts = placements(&s, cell.duration, &mut Rng::new(3));
        assert_eq!(starts.len(), 3, "days 8, 10 and 12");
        let topics: Vec<Topic> = starts.iter().map(|&st| topic(st as u64)).collect();
        let inj = Injections { cell, starts: &starts, topics: &topics };
        let a = run_series(&s, &texts, &cfg, Some(inj), 9, None).unwrap();
        let b = run_series(&s, &texts, &cfg, Some(inj), 9, None).unwrap();
        assert_eq!(a, b);
        let d = delays(&starts, cell.duration, &a);
        assert!(d.iter().all(|d| d.is_some_and(|m| m <= 15.0)), "{d:?}");
        // A surge at the background's sentiment is buzz, and its topic is among the drivers while it lasts.
        // The opening event names what the opening window's terms and evidence posts show: the phrase, or
        // for posts that are not negative often only its words; later events, whose posts are counted with
        // their text, name the phrase itself.
        for ((k, &st), tp) in detections(&starts, cell.duration, &a).into_iter().zip(&starts).zip(&topics) {
            let k = k.unwrap();
            let j = judge(&a, k, st, cell.duration, tp, expected_class(cell.kind));
            assert!(j.topic_best && j.class_first && j.class_last, "{j:?} {:?}", &a[k..]);
            let named = |d: &String| *d == tp.phrase || tp.phrase.split(' ').any(|w| d == w);
            assert!(a[k].drivers.iter().any(named), "{:?}", a[k]);
        }
        let bg = run_series(&s, &texts, &cfg, None, 9, None).unwrap();
        assert!(bg.is_empty(), "{bg:?}");
    }

    /// Topics change the texts only: the counts and labels, and so every detection, are the draws they were.
    #[test]
    fn topics_leave_the_detections_as_they_were() {
        let texts = Texts {
            negative: ["awful service again", "worst queue ever", "terrible wait", "angry customers"]
                .map(|t| (t.to_string(), -0.6))
                .to_vec(),
            other: vec![("boarding now".into(), 0.0, Label::Neutral)],
            gold_negative_share: 0.15,
        };
        let rows: Vec<(Millis, u64)> = (0..(12 * DAY / STEP)).map(|i| (i * STEP, 40)).collect();
        let s = Series { name: "flat".into(), rows, windows: vec![] };
        let cfg = AggregatorConfig::default();
        let cell = Cell { kind: Kind::Share(0.3), duration: HOUR };
        let starts = [8 * DAY + 3 * HOUR, 10 * DAY + 5 * HOUR];
        let with = [topic(1), topic(2)];
        let none = [Topic { phrase: String::new(), rate: 0.0 }, Topic { phrase: String::new(), rate: 0.0 }];
        let ends = |topics: &[Topic]| -> Vec<(EventKind, Millis)> {
            let inj = Injections { cell, starts: &starts, topics };
            run_series(&s, &texts, &cfg, Some(inj), 4, None).unwrap().iter().map(|e| (e.kind, e.end)).collect()
        };
        let a = ends(&with);
        assert!(!a.is_empty());
        assert_eq!(a, ends(&none));
        // A share shift's own posts are the ones it turned negative: the topic rides on negative posts, and
        // the incident is a crisis.
        let inj = Injections { cell, starts: &starts, topics: &with };
        let ev = run_series(&s, &texts, &cfg, Some(inj), 4, None).unwrap();
        let k = detections(&starts, HOUR, &ev)[0].unwrap();
        let j = judge(&ev, k, starts[0], HOUR, &with[0], IncidentClass::Crisis);
        assert!(j.topic_best && j.class_first, "{j:?} {:?}", &ev[k..]);
    }

    /// `--trace`: one file per run in the folder, with the detector's internals by row and its events.
    #[test]
    fn a_trace_holds_the_rows_and_the_events() {
        let texts = Texts {
            negative: vec![("awful delay again".into(), -0.6)],
            other: vec![("boarding now".into(), 0.0, Label::Neutral)],
            gold_negative_share: 0.15,
        };
        let rows: Vec<(Millis, u64)> = (0..(10 * DAY / STEP)).map(|i| (i * STEP, 40)).collect();
        let s = Series { name: "flat".into(), rows, windows: vec![] };
        let cell = Cell { kind: Kind::Volume(10.0), duration: HOUR };
        let starts = [8 * DAY];
        let dir = std::env::temp_dir().join(format!("flashpoint-eval-trace-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let cfg = AggregatorConfig::default();
        let topics = [topic(1)];
        let inj = Injections { cell, starts: &starts, topics: &topics };
        let traced = run_series(&s, &texts, &cfg, Some(inj), 9, Some(&dir)).unwrap();
        assert_eq!(traced, run_series(&s, &texts, &cfg, Some(inj), 9, None).unwrap(), "tracing changes nothing");
        let body = std::fs::read_to_string(dir.join("flat volume x10 60m.tsv")).unwrap();
        std::fs::remove_dir_all(&dir).unwrap();
        // Hourly rows over the days the detector runs, plus every row of the injection.
        let rows = body.lines().filter(|l| !l.starts_with('#')).count();
        assert!((10 * 24 - 48..=10 * 24 + 13).contains(&rows), "{rows}");
        assert!(body.lines().any(|l| l.starts_with("# Opened")), "the opening is traced");
        assert!(body.lines().any(|l| l.starts_with("#   over [")), "with the statistics over their thresholds");
    }
}
