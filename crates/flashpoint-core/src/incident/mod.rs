//! What an open incident keeps so its events can say what changed and who carries it: drivers (`drivers`),
//! storylines (`storylines`), amplifiers, platforms and the timeline.
//!
//! An `IncidentDigest` lives beside the entity's detector from the `opened` event to the `resolved` one (the
//! aggregator owns it, and it is in the snapshot). It is seeded at the opening from the panes that hold the
//! opening window (and any newer pane already started): their phrase samples, platform counts and evidence
//! posts, so the posts that made the alarm are in it. From then on every post of the entity is added whole.
//! Outside incidents the entity pays only for its phrase baseline, learned from a sample of each pane's
//! posts (`window::SAMPLE_POSTS_PER_PANE`), so a busy entity's hot path stays cheap.
//!
//! Memory: the baseline is `drivers::BASELINE_BYTES` per entity (allocated at its first learned pane); a pane
//! holds at most `window::SAMPLE_POSTS_PER_PANE × 48` phrase hashes; an open incident at most
//! `drivers::MAX_INCIDENT_PHRASES` phrases, `storylines::MAX_STORIES` stories, `MAX_AUTHORS` authors and
//! `MAX_TIMELINE` points.

pub mod drivers;
pub mod storylines;

pub use crate::detect::StepBaseline;
use crate::event::{Amplifier, Driver, PlatformCount, Storyline, TimelinePoint};
use crate::time::Millis;
use crate::window::{EvidencePost, Pane, PostView, WindowStats};
use rustc_hash::FxHashMap;
use serde::{Deserialize, Serialize};
use storylines::{Stories, StoryPost};

/// Authors an incident keeps (the largest audiences win a place once full).
pub const MAX_AUTHORS: usize = 1024;
/// Timeline points an event carries at most (a day at one-minute steps is 1,440: adjacent points merge).
pub const MAX_TIMELINE: usize = 288;
/// Driver, storyline and amplifier lists in an event.
pub const DRIVERS: usize = 10;
pub const STORYLINES: usize = 5;
pub const AMPLIFIERS: usize = 5;

#[derive(Clone, Debug, Serialize, Deserialize)]
struct Author {
    followers: u64,
    posts: u64,
    first_at: Millis,
    first_post_id: String,
    first_post_url: Option<String>,
    author_url: Option<String>,
}

/// One point of the timeline: sums over `steps` steps, with the baseline's means and variances summed alike.
#[derive(Clone, Debug, Serialize, Deserialize)]
struct Point {
    end: Millis,
    steps: u32,
    volume: u64,
    negative: u64,
    vol_mean: f64,
    vol_var: f64,
    neg_mean: f64,
    neg_var: f64,
}

impl Point {
    /// Takes the later point `q` into this one: counts, means and variances add, the end moves to `q`'s.
    fn absorb(&mut self, q: &Point) {
        self.end = q.end;
        self.steps += q.steps;
        self.volume += q.volume;
        self.negative += q.negative;
        self.vol_mean += q.vol_mean;
        self.vol_var += q.vol_var;
        self.neg_mean += q.neg_mean;
        self.neg_var += q.neg_var;
    }
}

/// The evidence an open incident accumulates. See the module comment.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct IncidentDigest {
    /// Posts counted (the seeded panes' volumes, then every post added).
    posts: f64,
    phrases: drivers::Counts,
    stories: Stories,
    authors: Authors,
    platforms: Vec<(Box<str>, u64)>,
    timeline: Vec<Point>,
    /// Steps per timeline point (doubles each time the timeline is halved).
    per_point: u32,
}

/// The incident's authors, bounded: when full, the smallest audiences (a quarter) make room, and from then on an
/// author enters only with a larger audience than any dropped.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
struct Authors {
    by_name: FxHashMap<String, Author>,
    /// The largest audience dropped so far.
    floor: u64,
}

impl Authors {
    fn add_evidence(&mut self, e: &EvidencePost, at: Millis) {
        let Some(a) = &e.author else { return };
        self.add(a, e.followers.unwrap_or(0), at, || (e.id.clone(), e.url.clone(), e.author_url.clone()));
    }

    fn add(
        &mut self,
        name: &str,
        followers: u64,
        at: Millis,
        first: impl FnOnce() -> (String, Option<String>, Option<String>),
    ) {
        if let Some(a) = self.by_name.get_mut(name) {
            a.followers = a.followers.max(followers);
            a.posts += 1;
            return;
        }
        if self.by_name.len() >= MAX_AUTHORS {
            let mut v: Vec<(u64, String)> = self.by_name.iter().map(|(n, a)| (a.followers, n.clone())).collect();
            v.sort_unstable();
            for (f, n) in v.into_iter().take(MAX_AUTHORS / 4) {
                self.floor = self.floor.max(f);
                self.by_name.remove(&n);
            }
        }
        if self.floor > 0 && followers <= self.floor {
            return;
        }
        let (first_post_id, first_post_url, author_url) = first();
        self.by_name.insert(
            name.to_string(),
            Author { followers, posts: 1, first_at: at, first_post_id, first_post_url, author_url },
        );
    }
}

impl IncidentDigest {
    /// A digest for an incident opening on `window`: seeded from `panes` (those of the window and any newer one)
    /// and the window's evidence posts.
    pub fn open<'a>(panes: impl Iterator<Item = &'a Pane>, window: &WindowStats, own: &[String]) -> IncidentDigest {
        let mut d = IncidentDigest { per_point: 1, ..IncidentDigest::default() };
        let mut panes_terms = Vec::new();
        for p in panes {
            panes_terms.push(p.terms.keys());
            d.posts += p.volume as f64;
            if p.sampled > 0 {
                // Each sampled post stands for volume / sampled posts of the pane.
                let w = p.volume as f64 / p.sampled as f64;
                for &h in &p.phrase_sample {
                    d.phrases.add(h & !1, None, w, h & 1 == 1);
                }
            }
            for (name, n) in &p.platforms {
                crate::window::count_platform(&mut d.platforms, name, *n);
            }
        }
        // The seeds are hashes; the phrases' text comes from the window's negative-post terms and evidence posts,
        // which hold the words of a storm (the opening event is the one people read first).
        for p in panes_terms {
            for t in p {
                d.phrases.name(crate::phrase::phrase_hash(t), t);
            }
        }
        for e in window.most_negative.iter().chain(&window.top_reach) {
            let phrases = &mut d.phrases;
            crate::phrase::phrases_of(&e.text, own, |t, h| phrases.name(h, t));
        }
        // The posts the alarm is about start the storylines and amplifiers. They are counted in `posts` already
        // (through the panes' volumes), so their stories start from what these posts show.
        let mut seen: Vec<&str> = Vec::new();
        for e in window.most_negative.iter().chain(&window.top_reach) {
            if seen.contains(&e.id.as_str()) {
                continue;
            }
            seen.push(&e.id);
            let at = crate::time::parse_rfc3339(&e.created_at).unwrap_or(window.end);
            let sp = StoryPost {
                text: &e.text,
                author: e.author.as_deref(),
                followers: e.followers.unwrap_or(0),
                negative: e.compound < 0.0 && window.most_negative.iter().any(|m| m.id == e.id),
                created_at: at,
            };
            d.stories.add(&sp, || e.clone());
            d.authors.add_evidence(e, at);
        }
        d
    }

    /// Adds one post of the entity while the incident is open. `own` as for `crate::phrase::phrases_of`.
    pub fn add_post(&mut self, p: &PostView, own: &[String]) {
        self.posts += 1.0;
        let negative = p.label == crate::sentiment::Label::Negative;
        let phrases = &mut self.phrases;
        crate::phrase::phrases_of(p.text, own, |text, h| phrases.add(h & !1, Some(text), 1.0, negative));
        let readable = crate::normalize::for_reading(p.text);
        let sp = StoryPost {
            text: &readable,
            author: p.author,
            followers: p.followers.unwrap_or(0),
            negative,
            created_at: p.created_at,
        };
        self.stories.add(&sp, || crate::window::evidence(p));
        if let Some(a) = p.author {
            self.authors.add(a, p.followers.unwrap_or(0), p.created_at, || {
                let e = crate::window::evidence(p);
                (e.id, e.url, e.author_url)
            });
        }
        if let Some(pl) = p.platform {
            crate::window::count_platform(&mut self.platforms, pl, 1);
        }
    }

    /// Adds a step to the timeline (one per closed window while the incident is open).
    pub fn step(&mut self, end: Millis, volume: u64, negative: u64, b: &StepBaseline) {
        let point = Point {
            end,
            steps: 1,
            volume,
            negative,
            vol_mean: b.volume_mean,
            vol_var: b.volume_var,
            neg_mean: b.negative_mean,
            neg_var: b.negative_var,
        };
        self.add_point(point);
    }

    fn add_point(&mut self, point: Point) {
        let per = self.per_point.max(1);
        if let Some(last) = self.timeline.last_mut().filter(|l| l.steps < per) {
            last.absorb(&point);
        } else if self.timeline.len() >= MAX_TIMELINE {
            // Halved, the last point may take this step after all (the points now hold twice as many).
            self.halve();
            self.add_point(point);
        } else {
            self.timeline.push(point);
        }
    }

    /// Merges adjacent timeline points: the series keeps its whole span at half the resolution.
    fn halve(&mut self) {
        let old = std::mem::take(&mut self.timeline);
        for pair in old.chunks(2) {
            let mut p = pair[0].clone();
            if let Some(q) = pair.get(1) {
                p.absorb(q);
            }
            self.timeline.push(p);
        }
        self.per_point = self.per_point.max(1) * 2;
    }

    /// Phrases, stories and authors held (for the state-size tests).
    pub fn size(&self) -> (usize, usize, usize) {
        (self.phrases.len(), self.stories.len(), self.authors.by_name.len())
    }

    pub fn drivers(&self, baseline: &drivers::Baseline) -> Vec<Driver> {
        drivers::drivers(&self.phrases, baseline, self.posts, DRIVERS)
            .into_iter()
            .map(|d| Driver {
                phrase: d.phrase,
                posts: d.posts.round() as u64,
                expected: r2(d.expected),
                lift: r2(d.lift),
                negative_share: r2(d.negative_share),
            })
            .collect()
    }

    pub fn storylines(&self) -> Vec<Storyline> {
        self.stories
            .top(STORYLINES)
            .into_iter()
            .map(|s| Storyline {
                representative: s.representative.clone(),
                posts: s.posts,
                authors: s.author_count(),
                reach: s.reach,
                first_seen: s.first_seen,
                negative_share: r2(s.negative as f64 / s.posts.max(1) as f64),
            })
            .collect()
    }

    pub fn amplifiers(&self) -> Vec<Amplifier> {
        let mut v: Vec<(&String, &Author)> = self.authors.by_name.iter().collect();
        v.sort_by(|a, b| b.1.followers.cmp(&a.1.followers).then(b.1.posts.cmp(&a.1.posts)).then(a.0.cmp(b.0)));
        v.into_iter()
            .take(AMPLIFIERS)
            .map(|(name, a)| Amplifier {
                author: name.clone(),
                followers: a.followers,
                posts: a.posts,
                first_post_id: a.first_post_id.clone(),
                first_post_url: a.first_post_url.clone(),
                author_url: a.author_url.clone(),
            })
            .collect()
    }

    pub fn platforms(&self) -> Vec<PlatformCount> {
        let mut v: Vec<PlatformCount> =
            self.platforms.iter().map(|(p, n)| PlatformCount { platform: p.to_string(), posts: *n }).collect();
        v.sort_by(|a, b| b.posts.cmp(&a.posts).then_with(|| a.platform.cmp(&b.platform)));
        v
    }

    pub fn timeline(&self) -> Vec<TimelinePoint> {
        let band = |mean: f64, var: f64| [r2((mean - 2.0 * var.sqrt()).max(0.0)), r2(mean + 2.0 * var.sqrt())];
        self.timeline
            .iter()
            .map(|p| TimelinePoint {
                window_end: p.end,
                volume: p.volume,
                negative: p.negative,
                volume_expected: r2(p.vol_mean),
                volume_band: band(p.vol_mean, p.vol_var),
                negative_expected: r2(p.neg_mean),
                negative_band: band(p.neg_mean, p.neg_var),
            })
            .collect()
    }

    /// Fills an event's v3 evidence and timeline.
    pub fn fill(&self, e: &mut crate::event::SpikeEvent, baseline: &drivers::Baseline) {
        e.evidence.drivers = self.drivers(baseline);
        e.evidence.storylines = self.storylines();
        e.evidence.amplifiers = self.amplifiers();
        e.evidence.platforms = self.platforms();
        e.timeline = self.timeline();
    }
}

fn r2(x: f64) -> f64 {
    if x.is_finite() {
        (x * 100.0).round() / 100.0
    } else {
        0.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_timeline_stays_bounded_and_keeps_its_span_and_sums() {
        let mut d =
            IncidentDigest::open(std::iter::empty(), &WindowStats::from_panes(0, 60_000, std::iter::empty()), &[]);
        let b = StepBaseline { volume_mean: 2.0, volume_var: 4.0, negative_mean: 1.0, negative_var: 1.0 };
        for i in 0..1000u64 {
            d.step(60_000 * (i as i64 + 1), 3, 1, &b);
        }
        let t = d.timeline();
        assert!(t.len() <= MAX_TIMELINE && t.len() > MAX_TIMELINE / 2, "{}", t.len());
        assert_eq!(t.iter().map(|p| p.volume).sum::<u64>(), 3000);
        assert_eq!(t.last().unwrap().window_end, 60_000_000);
        // A point of 4 steps: expected 8, band 8 ± 2 × sqrt(16).
        let p = &t[0];
        assert_eq!((p.volume, p.volume_expected, p.volume_band), (12, 8.0, [0.0, 16.0]));
    }

    #[test]
    fn a_digest_flooded_with_distinct_posts_stays_within_its_caps() {
        let mut d =
            IncidentDigest::open(std::iter::empty(), &WindowStats::from_panes(0, 60_000, std::iter::empty()), &[]);
        for i in 0..20_000u64 {
            let (text, author, id) =
                (format!("w{i} x{i} y{} z{} #t{i} @m{i}", i * 7, i * 13), format!("a{i}"), format!("p{i}"));
            let v = PostView {
                id: &id,
                text: &text,
                created_at: i as Millis,
                author: Some(&author),
                followers: Some(i),
                compound: -0.5,
                label: crate::sentiment::Label::Negative,
                url: None,
                author_url: None,
                platform: Some(if i % 2 == 0 { "x" } else { "bluesky" }),
            };
            d.add_post(&v, &[]);
        }
        let (phrases, stories, authors) = d.size();
        assert!(
            phrases <= drivers::MAX_INCIDENT_PHRASES && stories <= storylines::MAX_STORIES && authors <= MAX_AUTHORS
        );
        // What a snapshot holds for it, at the caps: a few hundred kilobytes, whatever the incident's size.
        let bytes = serde_json::to_vec(&d).unwrap().len();
        assert!(bytes < 600_000, "{bytes}");
        assert_eq!(d.platforms().iter().map(|p| p.posts).sum::<u64>(), 20_000);
    }

    #[test]
    fn authors_are_bounded_and_the_largest_audiences_stay() {
        let mut list = Authors::default();
        for i in 0..(MAX_AUTHORS as u64 + 500) {
            list.add(&format!("a{i}"), i, 0, || (format!("p{i}"), None, None));
        }
        assert!(list.by_name.len() <= MAX_AUTHORS);
        assert!(list.by_name.contains_key(&format!("a{}", MAX_AUTHORS + 499)));
        assert!(!list.by_name.contains_key("a0"));
        // A small audience arriving late does not push out a larger one.
        list.add("late", 3, 0, || ("p".into(), None, None));
        assert!(!list.by_name.contains_key("late"));
    }
}
