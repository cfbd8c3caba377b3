//! Drivers: which phrases an incident's posts use far more often than the entity's posts usually do.
//!
//! Two pieces, each bounded, over the phrases of `crate::phrase`:
//! - `Baseline` is the entity's usual rate of each phrase: a count-min sketch (conservative update) of the
//!   posts containing it, decayed in event time with a one-day half-life, over the posts it has seen. Fixed
//!   memory (`BASELINE_BYTES` per entity), no strings: a rate is all the baseline must answer.
//! - `Counts` is the incident's own phrase counts: a space-saving summary (`MAX_INCIDENT_PHRASES` entries,
//!   evicted a quarter at a time) that keeps every phrase frequent enough to be a driver, with its text.
//!
//! A driver must explain the change: it is in at least `MIN_SUPPORT` incident posts, at least twice as often as
//! the baseline predicts (`posts ≥ 2 × expected`, and the lift with a one-post prior ≥ 2), and drivers are
//! ranked by the binomial evidence that its rate moved, so a common word that rose a little loses to a new
//! phrase that many posts share.

use crate::time::Millis;
use rustc_hash::FxHashMap;
use serde::{Deserialize, Serialize};

/// Columns and rows of the baseline sketch.
const SKETCH_WIDTH: usize = 512;
const SKETCH_DEPTH: usize = 2;
/// The memory of one entity's phrase baseline: `SKETCH_DEPTH × SKETCH_WIDTH` f32 counters.
pub const BASELINE_BYTES: usize = SKETCH_WIDTH * SKETCH_DEPTH * 4;
/// Half-life of the baseline rates: a day, so "usual" means the entity's last day or two.
const HALF_LIFE_MS: f64 = 86_400_000.0;
/// Weights grow as 2^(age / half-life) instead of old counts decaying (one multiply per update, not one per
/// counter); when they reach this, everything is scaled down at once.
const RESCALE_AT: f32 = 65_536.0;

/// The entity's usual phrase rates. See the module comment.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct Baseline {
    /// Event time at which a post weighs 1.
    origin: Millis,
    /// Weighted posts seen.
    posts: f32,
    /// Allocated at the first learned pane, so an entity that never has a post costs nothing. In snapshots as
    /// base64 of the little-endian f32s (a JSON array of 1,024 floats is four times larger).
    #[serde(with = "sketch_b64", default)]
    cells: Option<Box<[f32]>>,
}

impl Baseline {
    fn weight(&mut self, t: Millis) -> f32 {
        if self.cells.is_none() {
            self.origin = t;
        }
        let mut w = ((t - self.origin) as f64 / HALF_LIFE_MS).exp2() as f32;
        if w >= RESCALE_AT {
            // Move the origin to `t`: every stored weight shrinks by the same factor, rates are unchanged.
            let k = 1.0 / w;
            self.posts *= k;
            for c in self.cells.iter_mut().flat_map(|c| c.iter_mut()) {
                *c *= k;
            }
            self.origin = t;
            w = 1.0;
        }
        w
    }

    fn cols(h: u64) -> [usize; SKETCH_DEPTH] {
        [(h as usize) % SKETCH_WIDTH, ((h >> 32) as usize) % SKETCH_WIDTH + SKETCH_WIDTH]
    }

    /// Learns a pane's sample: `posts` posts were read, and `hashes` lists each phrase hash once per post that
    /// contained it (sorted or not). Conservative update: only the counters at the phrase's current minimum
    /// grow, which keeps a shared column from inflating every phrase in it.
    pub fn learn(&mut self, t: Millis, posts: u32, hashes: &[u64]) {
        if posts == 0 {
            return;
        }
        let w = self.weight(t);
        let cells = self.cells.get_or_insert_with(|| vec![0.0; SKETCH_WIDTH * SKETCH_DEPTH].into_boxed_slice());
        self.posts += w * posts as f32;
        for &h in hashes {
            // Pane samples carry the post's sentiment in the low bit; the baseline counts posts of any.
            let h = h & !1;
            let cs = Self::cols(h);
            let m = cs.iter().map(|&c| cells[c]).fold(f32::INFINITY, f32::min) + w;
            for c in cs {
                if cells[c] < m {
                    cells[c] = m;
                }
            }
        }
    }

    /// The share of the entity's posts that contain the phrase (an overestimate where columns collide, which
    /// only makes a driver harder to claim), and the weighted number of posts behind it.
    pub fn rate(&self, h: u64) -> (f64, f64) {
        let h = h & !1;
        match &self.cells {
            Some(cells) if self.posts > 0.0 => {
                let m = Self::cols(h).iter().map(|&c| cells[c]).fold(f32::INFINITY, f32::min);
                ((m / self.posts).min(1.0) as f64, self.posts as f64)
            }
            _ => (0.0, 0.0),
        }
    }
}

mod sketch_b64 {
    use serde::{Deserialize, Deserializer, Serializer};

    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

    pub fn serialize<S: Serializer>(cells: &Option<Box<[f32]>>, s: S) -> Result<S::Ok, S::Error> {
        match cells {
            None => s.serialize_none(),
            Some(c) => {
                let bytes: Vec<u8> = c.iter().flat_map(|f| f.to_le_bytes()).collect();
                let mut out = String::with_capacity(bytes.len() * 4 / 3 + 4);
                for chunk in bytes.chunks(3) {
                    let b = [chunk[0], *chunk.get(1).unwrap_or(&0), *chunk.get(2).unwrap_or(&0)];
                    let n = (b[0] as u32) << 16 | (b[1] as u32) << 8 | b[2] as u32;
                    for i in 0..4 {
                        if i <= chunk.len() {
                            out.push(ALPHABET[(n >> (18 - 6 * i)) as usize & 63] as char);
                        } else {
                            out.push('=');
                        }
                    }
                }
                s.serialize_some(&out)
            }
        }
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Box<[f32]>>, D::Error> {
        let Some(text) = Option::<String>::deserialize(d)? else { return Ok(None) };
        let mut bytes = Vec::with_capacity(text.len() * 3 / 4);
        let (mut acc, mut bits) = (0u32, 0);
        for c in text.bytes().filter(|&c| c != b'=') {
            let v =
                ALPHABET.iter().position(|&a| a == c).ok_or_else(|| serde::de::Error::custom("sketch: bad base64"))?;
            acc = acc << 6 | v as u32;
            bits += 6;
            if bits >= 8 {
                bits -= 8;
                bytes.push((acc >> bits) as u8);
            }
        }
        if bytes.len() != super::BASELINE_BYTES {
            return Err(serde::de::Error::custom("sketch: wrong size"));
        }
        Ok(Some(bytes.chunks_exact(4).map(|b| f32::from_le_bytes(b.try_into().expect("4 bytes"))).collect()))
    }
}

/// Phrases an incident keeps counts for. Space-saving with batched eviction: when full, the smallest quarter
/// goes, and a phrase entering later starts from the largest count dropped (its `err`, an upper bound on what
/// it had). A phrase in more than about 1/(¾ × `MAX_INCIDENT_PHRASES`) of the incident's phrase occurrences is
/// always kept.
pub const MAX_INCIDENT_PHRASES: usize = 512;

#[derive(Clone, Debug, Serialize, Deserialize)]
struct Entry {
    /// `None` for a phrase known only by hash (seeded from the panes before the opening) until a post during
    /// the incident shows its text.
    text: Option<Box<str>>,
    posts: f64,
    negative: f64,
    /// Space-saving's overestimate: the count the entry inherited when it replaced another.
    err: f64,
}

/// The incident's phrase counts. See the module comment.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct Counts {
    entries: FxHashMap<u64, Entry>,
    /// The largest count dropped so far: what a phrase entering now may have had before (its `err`).
    #[serde(default)]
    floor: f64,
}

impl Counts {
    /// Adds `weight` posts containing the phrase `h` (a sampled pane's posts weigh more than one).
    pub fn add(&mut self, h: u64, text: Option<&str>, weight: f64, negative: bool) {
        let neg = if negative { weight } else { 0.0 };
        if let Some(e) = self.entries.get_mut(&h) {
            e.posts += weight;
            e.negative += neg;
            if e.text.is_none() {
                e.text = text.map(Into::into);
            }
            return;
        }
        if self.entries.len() >= MAX_INCIDENT_PHRASES {
            self.shrink();
        }
        let err = self.floor;
        self.entries.insert(h, Entry { text: text.map(Into::into), posts: err + weight, negative: neg, err });
    }

    /// Drops the smallest quarter at once (ties: the lowest hash, so the summary is deterministic): a flood of
    /// new phrases then costs one sort per `MAX_INCIDENT_PHRASES / 4` of them, not a scan each.
    fn shrink(&mut self) {
        let mut v: Vec<(f64, u64)> = self.entries.iter().map(|(h, e)| (e.posts, *h)).collect();
        v.sort_unstable_by(|a, b| a.0.total_cmp(&b.0).then(a.1.cmp(&b.1)));
        for (posts, h) in v.into_iter().take(MAX_INCIDENT_PHRASES / 4) {
            self.floor = self.floor.max(posts);
            self.entries.remove(&h);
        }
    }

    /// Gives a phrase known only by hash its text (if it is counted and nameless).
    pub fn name(&mut self, h: u64, text: &str) {
        if let Some(e) = self.entries.get_mut(&(h & !1)) {
            if e.text.is_none() {
                e.text = Some(text.into());
            }
        }
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }
}

/// Fewest incident posts (distinct posts, lower bound) a driver needs.
pub const MIN_SUPPORT: f64 = 3.0;
/// A driver is at least this many times as frequent in the incident as in the baseline.
pub const MIN_LIFT: f64 = 2.0;
/// Baseline posts below which the baseline is taken as knowing nothing: every phrase's prior rate is then
/// that of a phrase seen once in `PRIOR_POSTS` posts.
const PRIOR_POSTS: f64 = 200.0;

/// One driver before it is written into an event.
#[derive(Clone, Debug, PartialEq)]
pub struct Scored {
    pub phrase: String,
    pub posts: f64,
    pub expected: f64,
    pub lift: f64,
    pub negative_share: f64,
    /// The binomial log-likelihood ratio of "its rate moved" (nats): the ranking.
    pub evidence: f64,
}

/// The incident's drivers, strongest first, at most `k`. `posts` is the number of incident posts counted.
pub fn drivers(counts: &Counts, baseline: &Baseline, posts: f64, k: usize) -> Vec<Scored> {
    if posts <= 0.0 {
        return Vec::new();
    }
    let mut out: Vec<Scored> = Vec::new();
    for (&h, e) in &counts.entries {
        let Some(text) = &e.text else { continue };
        let support = e.posts - e.err;
        if support < MIN_SUPPORT {
            continue;
        }
        let (rate, seen) = baseline.rate(h);
        // A phrase the baseline never saw still has a small rate: as if seen once in the baseline's posts
        // (or in PRIOR_POSTS while the baseline is young), so a young entity's every word is not a driver.
        let rate = rate.max(1.0 / seen.max(PRIOR_POSTS));
        let expected = rate * posts;
        let lift = (e.posts + 1.0) / (expected + 1.0);
        if e.posts < MIN_LIFT * expected || lift < MIN_LIFT {
            continue;
        }
        let p1 = (e.posts / posts).min(1.0);
        let evidence = binom_llr(e.posts, posts, p1, rate);
        out.push(Scored {
            phrase: text.to_string(),
            posts: e.posts,
            expected,
            lift,
            negative_share: if e.posts > 0.0 { e.negative / e.posts } else { 0.0 },
            evidence,
        });
    }
    out.sort_by(|a, b| b.evidence.total_cmp(&a.evidence).then_with(|| a.phrase.cmp(&b.phrase)));
    // A word whose two-word phrase holds most of its posts says nothing the phrase does not; and the pairs of
    // one sentence copied many times ("baggage system", "system broken", …) chain into each other with the
    // same counts: the first of the chain speaks for it.
    let pairs: Vec<(String, f64)> =
        out.iter().filter(|d| d.phrase.contains(' ')).map(|d| (d.phrase.clone(), d.posts)).collect();
    let covered = |d: &Scored| {
        !d.phrase.contains(' ') && pairs.iter().any(|(p, n)| *n >= 0.8 * d.posts && p.split(' ').any(|w| w == d.phrase))
    };
    let near = |a: f64, b: f64| (a - b).abs() <= 0.1 * a.max(b);
    let chained = |a: &str, b: &str| match (a.split_once(' '), b.split_once(' ')) {
        (Some((a1, a2)), Some((b1, b2))) => a2 == b1 || b2 == a1,
        _ => false,
    };
    // Groups of chained pairs (union-find over the candidates, so the order they rank in does not matter).
    let mut root: Vec<usize> = (0..out.len()).collect();
    fn find(root: &mut [usize], i: usize) -> usize {
        let mut r = i;
        while root[r] != r {
            r = root[r];
        }
        root[i] = r;
        r
    }
    for i in 0..out.len() {
        for j in 0..i {
            if near(out[i].posts, out[j].posts) && chained(&out[i].phrase, &out[j].phrase) {
                let (a, b) = (find(&mut root, i), find(&mut root, j));
                root[a.max(b)] = a.min(b);
            }
        }
    }
    let mut kept: Vec<Scored> = Vec::with_capacity(k);
    let mut groups_used: Vec<usize> = Vec::new();
    for (i, d) in out.into_iter().enumerate() {
        if kept.len() >= k {
            break;
        }
        if covered(&d) {
            continue;
        }
        let g = find(&mut root, i);
        if groups_used.contains(&g) {
            continue;
        }
        groups_used.push(g);
        kept.push(d);
    }
    kept
}

/// `y` successes in `n` at rate `p1` against rate `p0`, in nats (0 where `p1 ≤ p0`).
fn binom_llr(y: f64, n: f64, p1: f64, p0: f64) -> f64 {
    if p1 <= p0 {
        return 0.0;
    }
    let t = |a: f64, b: f64| if a > 0.0 { a * (a / n / b).ln() } else { 0.0 };
    let q1 = 1.0 - p1;
    let q0 = (1.0 - p0).max(1e-12);
    t(y, p0) + if q1 > 0.0 { (n - y) * (q1 / q0).ln() } else { 0.0 }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::phrase::phrase_hash;

    #[test]
    fn baseline_rates_follow_the_posts_and_decay() {
        let mut b = Baseline::default();
        let (lug, other) = (phrase_hash("luggage"), phrase_hash("flight"));
        // Day 0: luggage in 1 of 100 posts, flight in 50.
        for i in 0..100 {
            let mut hs = vec![];
            if i == 0 {
                hs.push(lug);
            }
            if i % 2 == 0 {
                hs.push(other);
            }
            b.learn(0, 1, &hs);
        }
        let (r, seen) = b.rate(lug);
        assert!((r - 0.01).abs() < 0.005, "luggage rate {r}");
        assert!((seen - 100.0).abs() < 1e-3);
        assert!((b.rate(other).0 - 0.5).abs() < 0.02);
        // Three days later, 100 posts all with luggage: the old day weighs 1/8, so the rate is near 8/9.
        for _ in 0..100 {
            b.learn(3 * 86_400_000, 1, &[lug]);
        }
        let r = b.rate(lug).0;
        assert!(r > 0.85 && r < 0.92, "decayed rate {r}");
        // Far in the future the weights rescale without changing rates.
        for _ in 0..10 {
            b.learn(40 * 86_400_000, 1, &[other]);
        }
        assert!(b.rate(other).0 > 0.99);
        // Snapshots round-trip bit for bit.
        let back: Baseline = serde_json::from_str(&serde_json::to_string(&b).unwrap()).unwrap();
        assert_eq!(back.rate(lug), b.rate(lug));
        assert_eq!(back.cells, b.cells);
    }

    #[test]
    fn drivers_name_what_changed_not_what_is_always_said() {
        let mut b = Baseline::default();
        let (flight, lug) = (phrase_hash("flight"), phrase_hash("lost luggage"));
        // Usually: "flight" in half the posts, "lost luggage" in 1%.
        for i in 0..1000 {
            let mut hs = vec![flight];
            if i % 100 == 0 {
                hs.push(lug);
            }
            b.learn(0, 2, &hs);
        }
        let mut c = Counts::default();
        // Incident: 40 posts, "flight" in 20 (as usual), "lost luggage" in 30.
        for i in 0..40 {
            if i % 2 == 0 {
                c.add(flight, Some("flight"), 1.0, false);
            }
            if i < 30 {
                c.add(lug, Some("lost luggage"), 1.0, true);
            }
        }
        let d = drivers(&c, &b, 40.0, 10);
        assert_eq!(d.len(), 1, "{d:?}");
        assert_eq!(d[0].phrase, "lost luggage");
        assert!(d[0].lift > 10.0 && d[0].posts >= 2.0 * d[0].expected);
        assert!((d[0].negative_share - 1.0).abs() < 1e-9);
        // Too few posts is no driver.
        let mut c = Counts::default();
        c.add(phrase_hash("rare"), Some("rare"), 2.0, false);
        assert!(drivers(&c, &b, 40.0, 10).is_empty());
    }

    #[test]
    fn space_saving_keeps_the_frequent_phrases_in_bounded_memory() {
        let mut c = Counts::default();
        for i in 0..20_000u64 {
            c.add(phrase_hash(&format!("noise{i}")), Some("n"), 1.0, false);
            if i % 4 == 0 {
                c.add(phrase_hash("storm"), Some("storm"), 1.0, true);
            }
        }
        assert!(c.len() <= MAX_INCIDENT_PHRASES);
        let e = &c.entries[&phrase_hash("storm")];
        assert!(e.posts - e.err <= 5000.0 && e.posts >= 5000.0, "{} {}", e.posts, e.err);
    }

    #[test]
    fn a_pair_covers_its_words() {
        let b = Baseline::default();
        let mut c = Counts::default();
        for _ in 0..10 {
            for p in ["lost", "luggage", "lost luggage"] {
                c.add(phrase_hash(p), Some(p), 1.0, true);
            }
        }
        let d: Vec<String> = drivers(&c, &b, 10.0, 10).into_iter().map(|d| d.phrase).collect();
        assert_eq!(d, vec!["lost luggage"]);
        // One sentence copied: its chained pairs are one driver; an unchained pair with the same count stays.
        let mut c = Counts::default();
        for _ in 0..10 {
            for p in ["baggage system", "system broken", "broken hundreds", "lost bags"] {
                c.add(phrase_hash(p), Some(p), 1.0, true);
            }
        }
        let d: Vec<String> = drivers(&c, &b, 10.0, 10).into_iter().map(|d| d.phrase).collect();
        assert_eq!(d, vec!["baggage system", "lost bags"]);
    }
}
