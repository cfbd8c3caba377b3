//! Event-time windows: panes, per-window statistics and the evidence kept for spike events.
//!
//! A hopping window of `size` sliding by `slide` is the sum of `size / slide` consecutive panes of length
//! `slide`, so each post is added to exactly one pane whatever the overlap, and closing a window merges a
//! handful of small panes. Windows sit on a global grid (epoch + `offset`), so every entity's windows close
//! at the same instants and the aggregator closes them in one sweep when the watermark passes.

use crate::sentiment::Label;
use crate::time::Millis;
use rustc_hash::FxHashMap;
use serde::{Deserialize, Serialize};
use std::borrow::Cow;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct WindowSpec {
    pub size: Millis,
    pub slide: Millis,
    pub offset: Millis,
}

impl WindowSpec {
    pub fn new(size: Millis, slide: Millis, offset: Millis) -> Result<WindowSpec, String> {
        if size <= 0 || slide <= 0 {
            return Err("window size and slide must be positive".into());
        }
        if size % slide != 0 {
            return Err(format!("window size ({size} ms) must be a multiple of the slide ({slide} ms)"));
        }
        Ok(WindowSpec { size, slide, offset: offset.rem_euclid(slide) })
    }

    /// Start of the pane holding instant `t`.
    pub fn pane_start(&self, t: Millis) -> Millis {
        (t - self.offset).div_euclid(self.slide) * self.slide + self.offset
    }

    pub fn panes_per_window(&self) -> usize {
        (self.size / self.slide) as usize
    }
}

/// A post kept as evidence: enough for a responder to open it and judge it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct EvidencePost {
    pub id: String,
    pub text: String,
    pub created_at: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub author: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub followers: Option<u64>,
    pub compound: f64,
    /// The post on its platform (`https://` only). Absent in events and snapshots written before links were
    /// carried, and for sources that give none.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
    /// The author's profile, on the same terms as `url`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub author_url: Option<String>,
}

/// What the aggregator needs of a scored post.
pub struct PostView<'a> {
    pub id: &'a str,
    pub text: &'a str,
    pub created_at: Millis,
    pub author: Option<&'a str>,
    pub followers: Option<u64>,
    pub compound: f64,
    pub label: Label,
    pub url: Option<&'a str>,
    pub author_url: Option<&'a str>,
    /// The platform the post came from (`x`, `bluesky`, `reddit`, `mastodon`, or a source's own name).
    pub platform: Option<&'a str>,
}

/// Longest evidence text kept, in characters: a tweet's worth.
const EVIDENCE_TEXT_CHARS: usize = 280;

pub(crate) fn evidence(p: &PostView) -> EvidencePost {
    // Read as people read it: entities decoded, whitespace collapsed (the scorer's normalisation is for scoring).
    let readable = crate::normalize::for_reading(p.text);
    let cut = match readable.char_indices().nth(EVIDENCE_TEXT_CHARS) {
        Some((i, _)) => Cow::Owned(format!("{}…", &readable[..i])),
        None => readable,
    };
    // People read evidence in alerts: a bidi override or a terminal escape must not change what they see.
    let text = crate::sanitize::for_display(&cut).into_owned();
    EvidencePost {
        id: p.id.to_string(),
        text,
        created_at: crate::time::format_rfc3339(p.created_at),
        author: p.author.map(str::to_string),
        followers: p.followers,
        compound: p.compound,
        // Checked again here, not only at decode: stage records come off a topic that may hold anything, and
        // the event carries these links to every alert reader.
        url: p.url.and_then(crate::post::https_url),
        author_url: p.author_url.and_then(crate::post::https_url),
    }
}

/// Keeps the `k` best items by `better` (a strict order, ties broken by id so replays are deterministic).
fn keep_top(
    list: &mut Vec<EvidencePost>,
    k: usize,
    item: EvidencePost,
    better: impl Fn(&EvidencePost, &EvidencePost) -> bool,
) {
    if k == 0 {
        return;
    }
    let pos = list.iter().position(|x| better(&item, x)).unwrap_or(list.len());
    if pos >= k {
        return;
    }
    list.insert(pos, item);
    list.truncate(k);
}

fn more_negative(a: &EvidencePost, b: &EvidencePost) -> bool {
    (a.compound, &a.id) < (b.compound, &b.id)
}

fn more_reach(a: &EvidencePost, b: &EvidencePost) -> bool {
    let (ra, rb) = (a.followers.unwrap_or(0), b.followers.unwrap_or(0));
    ra > rb || (ra == rb && a.id < b.id)
}

/// Would `p` enter a top-k list whose current worst is `worst`? Checked before building the evidence copy.
fn qualifies(
    list: &[EvidencePost],
    k: usize,
    cand: (f64, &str),
    worse_than: impl Fn((f64, &str), &EvidencePost) -> bool,
) -> bool {
    k > 0 && (list.len() < k || list.last().is_some_and(|w| worse_than(cand, w)))
}

/// Lower-case word tokens worth counting as terms.
pub fn terms_of(text: &str, mut f: impl FnMut(&str)) {
    for raw in text.split(|c: char| !(c.is_alphanumeric() || c == '\'')) {
        let w = raw.trim_matches('\'');
        if w.chars().count() < 3 || w.chars().count() > 40 || w.bytes().all(|b| b.is_ascii_digit()) {
            continue;
        }
        if w.bytes().any(|b| b.is_ascii_uppercase()) || !w.is_ascii() {
            let l = w.to_lowercase();
            if !crate::phrase::is_stopword(&l) {
                f(&l);
            }
        } else if !crate::phrase::is_stopword(w) {
            f(w);
        }
    }
}

/// Posts per pane whose phrases feed the entity's phrase baseline (and seed an incident that opens on the
/// pane). Enough for a rate learned over a day; a busy entity's other posts skip the phrase work outside
/// incidents, which keeps the hot path within a few percent of what it was without drivers.
pub const SAMPLE_POSTS_PER_PANE: u32 = 16;

/// Platforms counted per pane and incident (more would be a malformed source).
const MAX_PLATFORMS: usize = 16;

/// Adds a platform's count to a small list (bounded; see `MAX_PLATFORMS`).
pub fn count_platform(list: &mut Vec<(Box<str>, u64)>, platform: &str, n: u64) {
    if let Some(e) = list.iter_mut().find(|(p, _)| &**p == platform) {
        e.1 += n;
    } else if list.len() < MAX_PLATFORMS {
        list.push((platform.into(), n));
    }
}

/// Aggregates of one entity over one pane.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct Pane {
    pub start: Millis,
    pub volume: u64,
    pub negative: u64,
    pub neutral: u64,
    pub positive: u64,
    /// Posts in a language the scorer does not read: in `volume`, in no sentiment count or sum.
    #[serde(default)]
    pub unscored: u64,
    pub sum_compound: f64,
    pub reach: u64,
    pub most_negative: Vec<EvidencePost>,
    pub top_reach: Vec<EvidencePost>,
    /// Terms of the negative posts. Capped: new terms beyond the cap are counted in `terms_dropped`.
    pub terms: FxHashMap<Box<str>, u32>,
    pub terms_dropped: u64,
    /// The phrases (`crate::phrase`) of the first `sampled` posts, one hash per post containing it, the
    /// low bit set when the post was negative: what the entity's phrase baseline learns from when the pane
    /// leaves the window, and what seeds an incident that opens on it.
    #[serde(default)]
    pub phrase_sample: Vec<u64>,
    #[serde(default)]
    pub sampled: u32,
    /// Posts per platform, where the source says which.
    #[serde(default)]
    pub platforms: Vec<(Box<str>, u64)>,
    /// Set when an incident was seeded from this pane: its posts are the incident's, not the baseline's.
    #[serde(default)]
    pub in_incident: bool,
}

/// Limits on what a pane keeps.
#[derive(Clone, Copy, Debug)]
pub struct PaneLimits {
    pub evidence_posts: usize,
    pub max_terms: usize,
}

impl Pane {
    pub fn new(start: Millis) -> Pane {
        Pane { start, ..Pane::default() }
    }

    pub fn add(&mut self, p: &PostView, limits: &PaneLimits, own_terms: &[String]) {
        self.volume += 1;
        match p.label {
            Label::Negative => self.negative += 1,
            Label::Neutral => self.neutral += 1,
            Label::Positive => self.positive += 1,
            Label::Unscored => self.unscored += 1,
        }
        if p.label.is_scored() {
            self.sum_compound += p.compound;
        }
        self.reach += p.followers.unwrap_or(0);
        if let Some(pl) = p.platform {
            count_platform(&mut self.platforms, pl, 1);
        }
        let k = limits.evidence_posts;
        if p.label == Label::Negative
            && qualifies(&self.most_negative, k, (p.compound, p.id), |(c, id), w| (c, id) < (w.compound, w.id.as_str()))
        {
            keep_top(&mut self.most_negative, k, evidence(p), more_negative);
        }
        if let Some(f) = p.followers {
            if qualifies(&self.top_reach, k, (f as f64, p.id), |(c, id), w| {
                let wf = w.followers.unwrap_or(0) as f64;
                c > wf || (c == wf && id < w.id.as_str())
            }) {
                keep_top(&mut self.top_reach, k, evidence(p), more_reach);
            }
        }
        if p.label == Label::Negative {
            let (terms, dropped, cap) = (&mut self.terms, &mut self.terms_dropped, limits.max_terms);
            terms_of(p.text, |t| {
                if own_terms.iter().any(|o| o == t) {
                    return;
                }
                if let Some(c) = terms.get_mut(t) {
                    *c += 1;
                } else if terms.len() < cap {
                    terms.insert(t.into(), 1);
                } else {
                    *dropped += 1;
                }
            });
        }
    }
}

impl Pane {
    /// Samples the post's phrases for the baseline, if the pane has not sampled enough yet (see
    /// `SAMPLE_POSTS_PER_PANE`). `own` as for `phrase::phrases_of`.
    pub fn sample(&mut self, p: &PostView, own: &[String]) {
        if self.sampled >= SAMPLE_POSTS_PER_PANE {
            return;
        }
        self.sampled += 1;
        let neg = (p.label == Label::Negative) as u64;
        let sample = &mut self.phrase_sample;
        crate::phrase::phrases_of(p.text, own, |_, h| sample.push(h & !1 | neg));
    }
}

/// Statistics of one closed window of one entity: the input of spike detection and the body of events.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct WindowStats {
    pub start: Millis,
    pub end: Millis,
    pub volume: u64,
    pub negative: u64,
    pub neutral: u64,
    pub positive: u64,
    /// Posts not scored (another language); `volume - unscored` were scored.
    #[serde(default)]
    pub unscored: u64,
    /// Negative posts over *scored* posts: unscored posts would only dilute it.
    pub negative_share: f64,
    /// Mean compound over scored posts.
    pub mean_compound: f64,
    pub reach: u64,
    pub most_negative: Vec<EvidencePost>,
    pub top_reach: Vec<EvidencePost>,
    pub top_terms: Vec<TermCount>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct TermCount {
    pub term: String,
    pub count: u32,
}

impl WindowStats {
    /// Sums the counts of the panes of `[start, end)`: all that detection needs. Evidence is merged only
    /// for windows that produce an event (`add_evidence`), since cloning posts and merging term maps for every
    /// entity at every window close would be wasted work on the hot path.
    pub fn from_panes<'a>(start: Millis, end: Millis, panes: impl Iterator<Item = &'a Pane>) -> WindowStats {
        let mut s = WindowStats {
            start,
            end,
            volume: 0,
            negative: 0,
            neutral: 0,
            positive: 0,
            unscored: 0,
            negative_share: 0.0,
            mean_compound: 0.0,
            reach: 0,
            most_negative: Vec::new(),
            top_reach: Vec::new(),
            top_terms: Vec::new(),
        };
        let mut sum_compound = 0.0;
        for p in panes {
            s.volume += p.volume;
            s.negative += p.negative;
            s.neutral += p.neutral;
            s.positive += p.positive;
            s.unscored += p.unscored;
            s.reach += p.reach;
            sum_compound += p.sum_compound;
        }
        let scored = s.scored();
        if scored > 0 {
            s.negative_share = s.negative as f64 / scored as f64;
            s.mean_compound = sum_compound / scored as f64;
        }
        s
    }

    /// Posts the scorer read.
    pub fn scored(&self) -> u64 {
        self.volume - self.unscored
    }

    /// Merges the evidence of the same panes: the `k` most negative and highest-reach posts and the
    /// `n_terms` most frequent terms.
    pub fn add_evidence<'a>(&mut self, panes: impl Iterator<Item = &'a Pane>, k: usize, n_terms: usize) {
        let mut terms: FxHashMap<&str, u32> = FxHashMap::default();
        for p in panes {
            for e in &p.most_negative {
                keep_top(&mut self.most_negative, k, e.clone(), more_negative);
            }
            for e in &p.top_reach {
                keep_top(&mut self.top_reach, k, e.clone(), more_reach);
            }
            for (t, c) in &p.terms {
                *terms.entry(t).or_default() += c;
            }
        }
        let mut tv: Vec<(&str, u32)> = terms.into_iter().collect();
        tv.sort_unstable_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(b.0)));
        self.top_terms =
            tv.into_iter().take(n_terms).map(|(t, c)| TermCount { term: t.to_string(), count: c }).collect();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn evidence_reads_as_people_read_it() {
        let e = evidence(&view("1", "SAP-&gt;Mia &amp; Mia\n\n  lost   my bag", 0, -0.5, None));
        assert_eq!(e.text, "SAP->Mia & Mia lost my bag");
    }

    fn view<'a>(id: &'a str, text: &'a str, t: Millis, compound: f64, followers: Option<u64>) -> PostView<'a> {
        let label = crate::sentiment::LabelThresholds::default().label(compound);
        PostView {
            id,
            text,
            created_at: t,
            author: None,
            followers,
            compound,
            label,
            url: None,
            author_url: None,
            platform: None,
        }
    }

    #[test]
    fn evidence_links_are_optional_in_json_and_in_the_schema() {
        let full = EvidencePost {
            id: "1".into(),
            text: "t".into(),
            created_at: "2026-03-04T14:05:00.000Z".into(),
            author: Some("ann".into()),
            followers: Some(3),
            compound: -0.5,
            url: Some("https://x.com/ann/status/1".into()),
            author_url: Some("https://x.com/ann".into()),
        };
        let v = serde_json::to_value(&full).unwrap();
        let schema: serde_json::Value =
            serde_json::from_str(include_str!("../../../schema/spike-event.schema.json")).unwrap();
        let def = &schema["$defs"]["post"];
        let mut fields: Vec<&String> = v.as_object().unwrap().keys().collect();
        let mut described: Vec<&String> = def["properties"].as_object().unwrap().keys().collect();
        fields.sort();
        described.sort();
        assert_eq!(fields, described);
        assert!(!def["required"].as_array().unwrap().iter().any(|r| r == "url" || r == "author_url"));
        // Written before links: reads back with none, and writing it again adds no keys.
        let old = r#"{"id":"1","text":"t","created_at":"2026-03-04T14:05:00.000Z","compound":-0.5}"#;
        let back: EvidencePost = serde_json::from_str(old).unwrap();
        assert_eq!((back.url.as_deref(), back.author_url.as_deref()), (None, None));
        assert_eq!(serde_json::to_string(&back).unwrap(), old);
    }

    #[test]
    fn pane_assignment_on_an_offset_grid() {
        let w = WindowSpec::new(300_000, 60_000, 173_000).unwrap();
        assert_eq!(w.offset, 53_000);
        assert_eq!(w.pane_start(53_000), 53_000);
        assert_eq!(w.pane_start(112_999), 53_000);
        assert_eq!(w.pane_start(113_000), 113_000);
        assert_eq!(w.pane_start(-1), -7_000);
        assert_eq!(w.panes_per_window(), 5);
        assert!(WindowSpec::new(300_000, 70_000, 0).is_err());
        assert!(WindowSpec::new(0, 0, 0).is_err());
    }

    #[test]
    fn merge_keeps_counts_evidence_and_terms() {
        let lim = PaneLimits { evidence_posts: 2, max_terms: 3 };
        let mut a = Pane::new(0);
        let mut b = Pane::new(60_000);
        a.add(&view("1", "lost luggage again", 1, -0.6, Some(10)), &lim, &[]);
        a.add(&view("2", "great crew", 2, 0.6, Some(5000)), &lim, &[]);
        b.add(&view("3", "luggage lost, refund now acme", 60_001, -0.8, None), &lim, &["acme".to_string()]);
        b.add(&view("4", "meh", 60_002, 0.0, Some(7)), &lim, &[]);
        b.add(&view("5", "worst delay ever zzz yyy", 60_003, -0.9, Some(1)), &lim, &[]);
        assert_eq!(b.terms.len(), 3);
        assert!(b.terms_dropped > 0);
        let mut s = WindowStats::from_panes(0, 120_000, [&a, &b].into_iter());
        assert!(s.most_negative.is_empty() && s.top_terms.is_empty());
        s.add_evidence([&a, &b].into_iter(), 2, 2);
        assert_eq!((s.volume, s.negative, s.neutral, s.positive, s.reach), (5, 3, 1, 1, 5018));
        assert!((s.negative_share - 0.6).abs() < 1e-12);
        assert_eq!(s.most_negative.iter().map(|e| e.id.as_str()).collect::<Vec<_>>(), ["5", "3"]);
        assert_eq!(s.top_reach.iter().map(|e| e.id.as_str()).collect::<Vec<_>>(), ["2", "1"]);
        assert_eq!(s.top_terms[0], TermCount { term: "lost".into(), count: 2 });
        assert_eq!(s.top_terms[1], TermCount { term: "luggage".into(), count: 2 });
    }

    #[test]
    fn unscored_posts_count_toward_volume_and_reach_only() {
        let lim = PaneLimits { evidence_posts: 3, max_terms: 10 };
        let mut a = Pane::new(0);
        a.add(&view("1", "lost luggage", 1, -0.6, Some(10)), &lim, &[]);
        a.add(&view("2", "great crew", 2, 0.6, None), &lim, &[]);
        let foreign = |id: &'static str, f| PostView {
            id,
            text: "valise perdue encore une fois",
            created_at: 3,
            author: None,
            followers: Some(f),
            compound: 0.0,
            label: Label::Unscored,
            url: None,
            author_url: None,
            platform: None,
        };
        a.add(&foreign("3", 900), &lim, &[]);
        a.add(&foreign("4", 5), &lim, &[]);
        assert_eq!((a.volume, a.negative, a.neutral, a.positive, a.unscored), (4, 1, 0, 1, 2));
        let mut s = WindowStats::from_panes(0, 60_000, [&a].into_iter());
        assert_eq!((s.volume, s.scored(), s.unscored, s.reach), (4, 2, 2, 915));
        // Over the two scored posts, not the four: the French ones would have halved it.
        assert!((s.negative_share - 0.5).abs() < 1e-12, "{}", s.negative_share);
        assert!(s.mean_compound.abs() < 1e-12);
        s.add_evidence([&a].into_iter(), 3, 5);
        assert_eq!(s.most_negative.iter().map(|e| e.id.as_str()).collect::<Vec<_>>(), ["1"]);
        assert_eq!(s.top_reach[0].id, "3", "reach does not depend on language");
        assert!(s.top_terms.iter().all(|t| t.term != "valise"), "unscored posts give no negative terms");
        // Only unscored posts: no share at all rather than a division by zero.
        let mut b = Pane::new(0);
        b.add(&foreign("5", 1), &lim, &[]);
        let s = WindowStats::from_panes(0, 60_000, [&b].into_iter());
        assert_eq!((s.volume, s.scored(), s.negative_share, s.mean_compound), (1, 0, 0.0, 0.0));
    }
}
