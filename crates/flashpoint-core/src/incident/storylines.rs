//! Storylines: one story, not ten copies. Retweets, quotes and copy-paste campaigns are the same or nearly the
//! same text; they collapse into one storyline with a representative post and counts.
//!
//! Each post gets a MinHash signature (`SIG` minimums over its word pairs, after dropping the retweet prefix,
//! links and @mentions, which copies change freely). Two posts whose signatures agree in at least `MATCH` of
//! `SIG` places have word-pair sets about that similar (Jaccard ≈ `MATCH / SIG`): one changed word in a
//! tweet keeps them together, a different complaint does not. Candidates are found by banding (`BANDS` bands
//! of two minimums: near-copies share a band with high probability), so joining a post costs a few map
//! lookups whatever the number of stories. At most `MAX_STORIES` are kept; when full, the lightest quarter
//! is dropped, so a late-starting story can still enter.

use crate::time::Millis;
use crate::window::EvidencePost;
use rustc_hash::FxHashMap;
use serde::{Deserialize, Serialize};

const SIG: usize = 16;
const BANDS: usize = SIG / 2;
/// Agreeing minimums for "the same story".
const MATCH: usize = 10;
/// Stories kept per incident.
pub const MAX_STORIES: usize = 256;
/// Bits of each story's author bitmap (linear counting: exact while authors are few, within a few percent up
/// to several thousand; 128 bytes a story).
const AUTHOR_BITS: usize = 1024;

type Signature = [u32; SIG];

/// Odd multipliers for the `SIG` hash functions (fixed: signatures must be the same in every process).
const MULT: [u64; SIG] = [
    0x9e37_79b9_7f4a_7c15,
    0xbf58_476d_1ce4_e5b9,
    0x94d0_49bb_1331_11eb,
    0xd6e8_feb8_6659_fd93,
    0xa076_1d64_78bd_642f,
    0xe703_7ed1_a0b4_28db,
    0x8ebc_6af0_9c88_c6e3,
    0x5899_65cc_7537_4cc3,
    0x1d8e_4e27_c47d_124f,
    0xc2b2_ae3d_27d4_eb4f,
    0x1656_67b1_9e37_79f9,
    0x27d4_eb2f_1656_67c5,
    0x85eb_ca77_c2b2_ae63,
    0xff51_afd7_ed55_8ccd,
    0xc4ce_b9fe_1a85_ec53,
    0x2127_599b_f432_5c37,
];

fn mix(x: u64, m: u64) -> u32 {
    let y = (x ^ (x >> 31)).wrapping_mul(m);
    (y >> 32) as u32
}

fn word_hash(w: &str) -> u64 {
    crate::phrase::phrase_hash(w)
}

/// The post's signature; `None` when it has no words to compare (then it is its own story).
pub fn signature(text: &str) -> Option<Signature> {
    let mut words: Vec<u64> = Vec::with_capacity(32);
    let mut toks = text.split_whitespace().peekable();
    // "RT @user: text" is a copy of "text".
    if toks.peek().is_some_and(|t| t.eq_ignore_ascii_case("rt")) {
        toks.next();
        if toks.peek().is_some_and(|t| t.starts_with('@')) {
            toks.next();
        }
    }
    let mut lower = String::new();
    for t in toks {
        if t.starts_with('@') || t.starts_with("http://") || t.starts_with("https://") {
            continue;
        }
        for w in t.split(|c: char| !c.is_alphanumeric()).filter(|w| !w.is_empty()) {
            lower.clear();
            lower.extend(w.chars().flat_map(char::to_lowercase));
            words.push(word_hash(&lower));
        }
    }
    if words.is_empty() {
        return None;
    }
    let mut sig = [u32::MAX; SIG];
    let mut add = |s: u64| {
        for (m, v) in MULT.iter().zip(sig.iter_mut()) {
            *v = (*v).min(mix(s, *m));
        }
    };
    if words.len() == 1 {
        add(words[0]);
    }
    for pair in words.windows(2) {
        add(pair[0].rotate_left(17) ^ pair[1]);
    }
    Some(sig)
}

fn band_key(b: usize, sig: &Signature) -> u64 {
    let x = (sig[2 * b] as u64) << 32 | sig[2 * b + 1] as u64;
    (x ^ (b as u64).wrapping_mul(0x9e37_79b9_7f4a_7c15)).wrapping_mul(0xbf58_476d_1ce4_e5b9)
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Story {
    sig: Option<Signature>,
    pub representative: EvidencePost,
    pub posts: u64,
    pub negative: u64,
    pub reach: u64,
    pub first_seen: Millis,
    /// One bit per author hash (see `AUTHOR_BITS`).
    authors: Vec<u64>,
}

impl Story {
    /// Distinct authors, estimated by linear counting over the bitmap.
    pub fn author_count(&self) -> u64 {
        let set: u32 = self.authors.iter().map(|w| w.count_ones()).sum();
        if set == 0 {
            return 0;
        }
        let m = AUTHOR_BITS as f64;
        let zeros = (m - set as f64).max(0.5);
        (-m * (zeros / m).ln()).round() as u64
    }

    /// What ranks stories: copies and the people behind them.
    pub fn weight(&self) -> u64 {
        self.posts + self.author_count()
    }
}

/// One post as the storylines need it.
pub struct StoryPost<'a> {
    pub text: &'a str,
    pub author: Option<&'a str>,
    pub followers: u64,
    pub negative: bool,
    pub created_at: Millis,
}

/// An incident's storylines. See the module comment.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct Stories {
    next_id: u32,
    stories: FxHashMap<u32, Story>,
    bands: FxHashMap<u64, u32>,
}

impl Stories {
    /// Adds a post; `evidence` builds its representative only if it starts a story (most posts are copies).
    pub fn add(&mut self, p: &StoryPost, evidence: impl FnOnce() -> EvidencePost) {
        let sig = signature(p.text);
        let found = sig.as_ref().and_then(|s| self.find(s));
        let id = match found {
            Some(id) => id,
            None => {
                if self.stories.len() >= MAX_STORIES {
                    self.evict();
                }
                let id = self.next_id;
                self.next_id = self.next_id.wrapping_add(1);
                if let Some(s) = &sig {
                    for b in 0..BANDS {
                        self.bands.entry(band_key(b, s)).or_insert(id);
                    }
                }
                let story = Story {
                    sig,
                    representative: evidence(),
                    posts: 0,
                    negative: 0,
                    reach: 0,
                    first_seen: p.created_at,
                    authors: vec![0; AUTHOR_BITS / 64],
                };
                self.stories.insert(id, story);
                id
            }
        };
        let s = self.stories.get_mut(&id).expect("present");
        s.posts += 1;
        s.negative += p.negative as u64;
        s.reach += p.followers;
        s.first_seen = s.first_seen.min(p.created_at);
        if let Some(a) = p.author {
            let bit = (word_hash(a) % AUTHOR_BITS as u64) as usize;
            s.authors[bit / 64] |= 1 << (bit % 64);
        }
    }

    fn find(&self, sig: &Signature) -> Option<u32> {
        (0..BANDS).filter_map(|b| self.bands.get(&band_key(b, sig)).copied()).find(|id| {
            self.stories
                .get(id)
                .and_then(|s| s.sig.as_ref())
                .is_some_and(|o| o.iter().zip(sig).filter(|(a, b)| a == b).count() >= MATCH)
        })
    }

    fn evict(&mut self) {
        let victim = self
            .stories
            .iter()
            .min_by_key(|(id, s)| (s.weight(), std::cmp::Reverse(s.first_seen), **id))
            .map(|(id, _)| *id);
        if let Some(v) = victim {
            self.stories.remove(&v);
            self.bands.retain(|_, id| *id != v);
        }
    }

    /// The `k` heaviest stories (ties: the earliest first).
    pub fn top(&self, k: usize) -> Vec<&Story> {
        let mut v: Vec<&Story> = self.stories.values().collect();
        v.sort_by(|a, b| {
            b.weight()
                .cmp(&a.weight())
                .then(a.first_seen.cmp(&b.first_seen))
                .then_with(|| a.representative.id.cmp(&b.representative.id))
        });
        v.truncate(k);
        v
    }

    pub fn len(&self) -> usize {
        self.stories.len()
    }

    pub fn is_empty(&self) -> bool {
        self.stories.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ev(id: &str, text: &str) -> EvidencePost {
        EvidencePost {
            id: id.into(),
            text: text.into(),
            created_at: "2026-01-01T00:00:00Z".into(),
            author: None,
            followers: None,
            compound: 0.0,
            url: None,
            author_url: None,
        }
    }

    fn add(s: &mut Stories, id: &str, author: &str, text: &str, t: Millis) {
        let p = StoryPost { text, author: Some(author), followers: 10, negative: true, created_at: t };
        s.add(&p, || ev(id, text));
    }

    #[test]
    fn retweets_quotes_and_near_copies_collapse_other_stories_do_not() {
        let mut s = Stories::default();
        let orig = "Acme Air lost my luggage in Miami and nobody at the desk will tell me where it is";
        add(&mut s, "1", "ann", orig, 10);
        add(&mut s, "2", "bob", &format!("RT @ann: {orig}"), 20);
        add(&mut s, "3", "cat", &format!("{orig} https://t.co/xyz @AcmeAir"), 30);
        add(
            &mut s,
            "4",
            "dan",
            "Acme Air lost my luggage in Miami and nobody at the gate will tell me where it is",
            40,
        );
        add(&mut s, "5", "eve", "The new lounge at Acme Air in Denver is lovely, great coffee and quiet seats", 50);
        add(&mut s, "6", "ann", orig, 60);
        let top = s.top(5);
        assert_eq!(top.len(), 2, "{top:?}");
        assert_eq!(top[0].representative.id, "1");
        assert_eq!((top[0].posts, top[0].author_count(), top[0].reach, top[0].first_seen), (5, 4, 50, 10));
        assert_eq!(top[1].representative.id, "5");
    }

    #[test]
    fn bounded_and_the_heavy_story_survives_a_flood_of_singletons() {
        let mut s = Stories::default();
        for i in 0..50 {
            add(&mut s, &format!("c{i}"), &format!("u{i}"), "refund my cancelled flight now please acme", i);
        }
        for i in 0..5000 {
            add(&mut s, &format!("n{i}"), "x", &format!("word{i} other{i} thing{i} more{i}"), 100 + i);
        }
        assert!(s.len() <= MAX_STORIES);
        // Many authors of one story are counted to within a few percent.
        let mut big = Stories::default();
        for i in 0..3000 {
            add(&mut big, &format!("b{i}"), &format!("author{i}"), "same words every time here", i);
        }
        let n = big.top(1)[0].author_count();
        assert!((2850..=3150).contains(&n), "{n}");
        assert_eq!(s.top(1)[0].representative.id, "c0");
        assert_eq!(s.top(1)[0].posts, 50);
        assert!((49..=52).contains(&s.top(1)[0].author_count()), "linear counting is exact to a few authors at 50");
    }

    #[test]
    fn signatures_are_stable_and_wordless_posts_stand_alone() {
        assert_eq!(signature("Lost luggage again"), signature("RT @x: lost   LUGGAGE again!"));
        assert_eq!(signature("🙂 🙂"), None);
        let mut s = Stories::default();
        add(&mut s, "a", "a", "🙂", 1);
        add(&mut s, "b", "b", "🙂", 2);
        assert_eq!(s.len(), 2);
    }
}
