//! The two stages of a distributed run, as pure logic, and the record format that travels between them.
//!
//! Windows are per entity, so all of an entity's posts must reach one aggregator. A cluster run therefore
//! has two stages: the *score* stage (any worker, any input partition) matches and scores posts and
//! republishes each (post, entity) pair keyed by entity to an internal topic; the *aggregate* stage owns
//! some partitions of that topic and, with them, every window of the entities hashed to them. The Kafka
//! crate moves bytes and offsets; everything that decides what a record means lives here, so it is tested
//! without a broker and `replay` runs the very same code.
//!
//! Two things make the aggregate stage exact under at-least-once delivery:
//! - Each stage record carries its *source* (input topic/partition) and offset. A score worker that
//!   re-consumes after a crash or rebalance republishes records the topic already holds; each producer's
//!   records are in offset order, so keeping the highest offset applied per source and dropping anything
//!   at or below it applies every input record once (see `AggregateStage::apply`).
//! - Its whole state (aggregator + those per-source offsets) is a serialisable `StageSnapshot` tied to the
//!   internal topic's offset it covers; restoring one and re-reading from that offset reproduces the same
//!   events, with the same incident ids and sequence numbers.

use crate::aggregate::{Aggregator, AggregatorConfig, AggregatorSnapshot};
use crate::detect::ResponseSetup;
use crate::entity::{EntityConfig, EntityId, Matcher};
use crate::event::Output;
use crate::lang::LanguageGate;
use crate::normalize;
use crate::post::Post;
use crate::sentiment::{Label, ScoreError, Scorer, Sentiment};
use crate::time::Millis;
use crate::window::PostView;
use rustc_hash::FxHashMap;
use serde::{Deserialize, Serialize};
use std::borrow::Cow;
use std::collections::BTreeMap;
use std::sync::Arc;

/// One matched post's score for one entity.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Scored {
    /// Index of the post in the batch.
    pub post: usize,
    pub entity: EntityId,
    pub sentiment: Sentiment,
    /// A post by the entity's own account: its response, not a mention (`Sentiment::UNSCORED`, never scored).
    pub response: bool,
}

/// Matching and scoring: stateless, so any number of threads may share one (`&self`).
pub struct ScoreStage {
    scorer: Arc<dyn Scorer>,
    matcher: Matcher,
    /// Apply the social-text normaliser before scoring (see `normalize`).
    pub normalize: bool,
    /// Which matched posts the scorer reads; the others get `Label::Unscored` (see `lang`). Defaults to the
    /// scorer's declared languages.
    pub language: LanguageGate,
}

/// What one `ScoreStage::score_counted` call did.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ScoreCounts {
    /// Posts that matched at least one entity.
    pub matched: usize,
    /// Of those, posts in a language the scorer does not read.
    pub unscored: usize,
    /// Posts by an entity's own account (its responses; counted in `matched` only if they name another).
    pub responses: usize,
    /// Of those, the ones that name no other entity (neither matched nor unmatched: they are responses).
    pub responses_only: usize,
}

impl ScoreStage {
    pub fn new(scorer: Arc<dyn Scorer>, entities: &[EntityConfig]) -> Result<ScoreStage, String> {
        let matcher = Matcher::new(entities).map_err(|e| format!("entities: {e}"))?;
        if matcher.is_empty() {
            return Err("entities: the watchlist is empty; add at least one [[entities]] entry".into());
        }
        let language = LanguageGate::for_languages(scorer.languages());
        Ok(ScoreStage { scorer, matcher, normalize: true, language })
    }

    pub fn matcher(&self) -> &Matcher {
        &self.matcher
    }

    pub fn scorer_name(&self) -> &'static str {
        self.scorer.name()
    }

    /// Matches every post, then scores only the matched ones in one batch (in a firehose most posts match
    /// nothing, and the transformer backend's cost is per scored text). Appends one `Scored` per
    /// (post, entity) pair, in post order; returns how many posts matched at least one entity. (For the unit
    /// tests; the stages use `score_counted`.)
    #[cfg(test)]
    pub fn score(&self, posts: &[Post], out: &mut Vec<Scored>) -> Result<usize, ScoreError> {
        self.score_counted(posts, out).map(|c| c.matched)
    }

    /// `score`, also counting the matched posts the language gate left unscored (they are in `out` with
    /// `Sentiment::UNSCORED`, so they still count toward volume).
    pub fn score_counted(&self, posts: &[Post], out: &mut Vec<Scored>) -> Result<ScoreCounts, ScoreError> {
        let mut matches = Vec::new();
        let mut spans = Vec::new();
        // (post, entity) of the posts by an entity's own account, in post order.
        let mut responses: Vec<(usize, EntityId)> = Vec::new();
        for (i, p) in posts.iter().enumerate() {
            let from = matches.len();
            self.matcher.find(&p.text, &mut matches);
            if let Some(e) = self.matcher.responder(p.author.as_deref()) {
                responses.push((i, e));
                // The company naming itself is not a mention of it.
                if let Some(k) = matches[from..].iter().position(|&m| m == e) {
                    matches.remove(from + k);
                }
            }
            if matches.len() > from {
                spans.push((i, from, matches.len()));
            }
        }
        if spans.is_empty() {
            for &(i, e) in &responses {
                out.push(Scored { post: i, entity: e, sentiment: Sentiment::UNSCORED, response: true });
            }
            let n = responses.len();
            return Ok(ScoreCounts { responses: n, responses_only: n, ..ScoreCounts::default() });
        }
        let texts: Vec<Cow<str>> = spans
            .iter()
            .map(|&(i, _, _)| {
                if self.normalize {
                    normalize::for_scoring(&posts[i].text)
                } else {
                    Cow::Borrowed(posts[i].text.as_str())
                }
            })
            .collect();
        // Judged on the normalised text: URLs and mentions are letters in no language.
        let read: Vec<bool> = if self.language.is_all() {
            vec![true; spans.len()]
        } else {
            spans
                .iter()
                .zip(&texts)
                .map(|(&(i, _, _), t)| self.language.judge(posts[i].lang.as_deref(), t).scored)
                .collect()
        };
        let refs: Vec<&str> = texts.iter().zip(&read).filter(|(_, r)| **r).map(|(t, _)| t.as_ref()).collect();
        let mut sentiments = Vec::with_capacity(refs.len());
        if !refs.is_empty() {
            self.scorer.score_batch(&refs, &mut sentiments)?;
        }
        if sentiments.len() != refs.len() {
            return Err(ScoreError::Backend(format!(
                "scorer returned {} results for {} texts",
                sentiments.len(),
                refs.len()
            )));
        }
        let mut scored = sentiments.into_iter();
        let mut own = responses.iter().peekable();
        for (&(i, from, to), &r) in spans.iter().zip(&read) {
            while let Some(&(j, e)) = own.next_if(|o| o.0 <= i) {
                out.push(Scored { post: j, entity: e, sentiment: Sentiment::UNSCORED, response: true });
            }
            let sentiment = if r { scored.next().expect("one result per read text") } else { Sentiment::UNSCORED };
            for &e in &matches[from..to] {
                out.push(Scored { post: i, entity: e, sentiment, response: false });
            }
        }
        for &(j, e) in own {
            out.push(Scored { post: j, entity: e, sentiment: Sentiment::UNSCORED, response: true });
        }
        Ok(ScoreCounts {
            matched: spans.len(),
            unscored: read.iter().filter(|r| !**r).count(),
            responses: responses.len(),
            responses_only: responses.iter().filter(|r| spans.binary_search_by_key(&r.0, |s| s.0).is_err()).count(),
        })
    }
}

/// A record of the internal topic between the stages.
// Unboxed although a post is far larger than a tick: posts are nearly every record, and a box would cost each
// one an allocation on the aggregate stage's hot path to save bytes on the rare tick.
#[allow(clippy::large_enum_variant)]
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "t", rename_all = "lowercase")]
pub enum StageRecord<'a> {
    /// A scored post for one entity (keyed by the entity, so one aggregator sees all of them). Borrowed
    /// from the record's bytes where JSON allows, since the aggregate stage parses one per record.
    #[serde(borrow)]
    Post(ScoredPost<'a>),
    /// The largest event time a score worker has seen, broadcast to every partition so that aggregators
    /// whose entities are quiet still close windows (a partition's own posts would not advance it).
    Tick { max_event_time: Millis },
}

/// First byte of a binary post record (v1). JSON records start with `{`, so both can share a topic during a
/// rolling upgrade: `decode` reads either.
const BIN_POST: u8 = 0xB1;
const BIN_TICK: u8 = 0xB2;
/// A post by the entity's own account (`ScoredPost::response`), laid out as a post. A kind of its own rather
/// than a flag: a worker of an older build dead-letters it as unknown instead of counting the company's own
/// posts as complaints.
const BIN_RESPONSE: u8 = 0xB3;
/// Flag bits of a binary post record.
const HAS_AUTHOR: u8 = 1;
const HAS_FOLLOWERS: u8 = 2;
/// Added with post links; records written before have these bits clear and decode with no links.
const HAS_URL: u8 = 4;
const HAS_AUTHOR_URL: u8 = 8;
/// Added with platforms (schema v3); clear in older records, which decode with no platform.
const HAS_PLATFORM: u8 = 16;

impl<'a> StageRecord<'a> {
    /// The record's bytes on the internal topic: a compact binary layout (the worker writes and reads one
    /// per (post, entity) pair, and JSON's escaping and parsing of the text dominated that cost).
    ///
    /// Post: `0xB1`, flags, `created_at` i64, `compound` f64 bits, `off` i64, `sub` u32, `followers` u64 if
    /// flagged (little endian), then length-prefixed (LEB128) UTF-8 strings: entity, id, text, src, label
    /// (its serde name, so a new label needs no format change), author, url, author url, platform, each if
    /// flagged.
    /// Tick: `0xB2`, i64.
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::new();
        self.encode_into(&mut out);
        out
    }

    pub fn encode_into(&self, out: &mut Vec<u8>) {
        match self {
            StageRecord::Tick { max_event_time } => {
                out.push(BIN_TICK);
                out.extend_from_slice(&max_event_time.to_le_bytes());
            }
            StageRecord::Post(p) => {
                let (author, url, author_url) = (p.author.as_deref(), p.url.as_deref(), p.author_url.as_deref());
                let platform = p.platform.as_deref();
                let optional = [author, url, author_url, platform].iter().map(|s| s.map_or(0, str::len)).sum::<usize>();
                out.reserve(48 + p.entity.len() + p.id.len() + p.text.len() + p.src.len() + optional);
                let flags = if author.is_some() { HAS_AUTHOR } else { 0 }
                    | if p.followers.is_some() { HAS_FOLLOWERS } else { 0 }
                    | if url.is_some() { HAS_URL } else { 0 }
                    | if author_url.is_some() { HAS_AUTHOR_URL } else { 0 }
                    | if platform.is_some() { HAS_PLATFORM } else { 0 };
                out.extend_from_slice(&[if p.response { BIN_RESPONSE } else { BIN_POST }, flags]);
                out.extend_from_slice(&p.created_at.to_le_bytes());
                out.extend_from_slice(&p.compound.to_bits().to_le_bytes());
                out.extend_from_slice(&p.off.to_le_bytes());
                out.extend_from_slice(&p.sub.to_le_bytes());
                if let Some(f) = p.followers {
                    out.extend_from_slice(&f.to_le_bytes());
                }
                for s in [&*p.entity, &*p.id, &*p.text, &*p.src, p.label.as_str()]
                    .into_iter()
                    .chain(author)
                    .chain(url)
                    .chain(author_url)
                    .chain(platform)
                {
                    put_str(out, s);
                }
            }
        }
    }

    /// Reads a record from the internal topic (binary, or JSON as older workers wrote it), borrowing its
    /// strings from `bytes`.
    pub fn decode(bytes: &'a [u8]) -> Result<StageRecord<'a>, String> {
        let mut r = Reader { b: bytes };
        let kind = r.u8()?;
        match kind {
            BIN_TICK => Ok(StageRecord::Tick { max_event_time: r.i64()? }).and_then(|t| r.end(t)),
            BIN_POST | BIN_RESPONSE => {
                let flags = r.u8()?;
                let (created_at, compound) = (r.i64()?, f64::from_bits(r.i64()? as u64));
                let (off, sub) = (r.i64()?, r.u32()?);
                let followers = if flags & HAS_FOLLOWERS != 0 { Some(r.i64()? as u64) } else { None };
                let (entity, id, text, src) = (r.str()?, r.str()?, r.str()?, r.str()?);
                let label = r.str()?;
                let label =
                    Label::deserialize(serde::de::value::StrDeserializer::<serde::de::value::Error>::new(label))
                        .map_err(|e| format!("stage record: label: {e}"))?;
                let mut optional = |flag: u8| -> Result<Option<Cow<'a, str>>, String> {
                    Ok(if flags & flag != 0 { Some(Cow::Borrowed(r.str()?)) } else { None })
                };
                let author = optional(HAS_AUTHOR)?;
                let url = optional(HAS_URL)?;
                let author_url = optional(HAS_AUTHOR_URL)?;
                let platform = optional(HAS_PLATFORM)?;
                let (entity, id, text, src) =
                    (Cow::Borrowed(entity), Cow::Borrowed(id), Cow::Borrowed(text), Cow::Borrowed(src));
                let p = ScoredPost {
                    entity,
                    id,
                    text,
                    created_at,
                    author,
                    followers,
                    compound,
                    label,
                    url,
                    author_url,
                    platform,
                    src,
                    off,
                    sub,
                    response: kind == BIN_RESPONSE,
                };
                r.end(StageRecord::Post(p))
            }
            b'{' => serde_json::from_slice(bytes).map_err(|e| e.to_string()),
            b => Err(format!("stage record: unknown kind {b:#04x}")),
        }
    }
}

fn put_str(out: &mut Vec<u8>, s: &str) {
    let mut n = s.len() as u64;
    while n >= 0x80 {
        out.push((n as u8) | 0x80);
        n >>= 7;
    }
    out.push(n as u8);
    out.extend_from_slice(s.as_bytes());
}

/// A cursor over a binary stage record; every read is bounds-checked (the topic may hold anything).
struct Reader<'a> {
    b: &'a [u8],
}

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], String> {
        if self.b.len() < n {
            return Err("stage record: truncated".into());
        }
        let (head, rest) = self.b.split_at(n);
        self.b = rest;
        Ok(head)
    }
    fn u8(&mut self) -> Result<u8, String> {
        Ok(self.take(1)?[0])
    }
    fn u32(&mut self) -> Result<u32, String> {
        Ok(u32::from_le_bytes(self.take(4)?.try_into().expect("4 bytes")))
    }
    fn i64(&mut self) -> Result<i64, String> {
        Ok(i64::from_le_bytes(self.take(8)?.try_into().expect("8 bytes")))
    }
    fn str(&mut self) -> Result<&'a str, String> {
        let (mut n, mut shift) = (0u64, 0);
        loop {
            let b = self.u8()?;
            n |= u64::from(b & 0x7f) << shift;
            if b < 0x80 {
                break;
            }
            shift += 7;
            if shift > 56 {
                return Err("stage record: bad length".into());
            }
        }
        let n = usize::try_from(n).map_err(|_| "stage record: bad length".to_string())?;
        std::str::from_utf8(self.take(n)?).map_err(|_| "stage record: not UTF-8".into())
    }
    fn end<T>(&self, v: T) -> Result<T, String> {
        if self.b.is_empty() {
            Ok(v)
        } else {
            Err("stage record: trailing bytes".into())
        }
    }
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ScoredPost<'a> {
    #[serde(borrow)]
    pub entity: Cow<'a, str>,
    #[serde(borrow)]
    pub id: Cow<'a, str>,
    #[serde(borrow)]
    pub text: Cow<'a, str>,
    pub created_at: Millis,
    #[serde(borrow, default, skip_serializing_if = "Option::is_none")]
    pub author: Option<Cow<'a, str>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub followers: Option<u64>,
    pub compound: f64,
    pub label: Label,
    #[serde(borrow, default, skip_serializing_if = "Option::is_none")]
    pub url: Option<Cow<'a, str>>,
    #[serde(borrow, default, skip_serializing_if = "Option::is_none")]
    pub author_url: Option<Cow<'a, str>>,
    #[serde(borrow, default, skip_serializing_if = "Option::is_none")]
    pub platform: Option<Cow<'a, str>>,
    /// Where the post came from ("topic/partition") and its offset there: the de-duplication key.
    #[serde(borrow)]
    pub src: Cow<'a, str>,
    pub off: i64,
    /// Index of the post within its source record (a Twitter v2 page holds several).
    #[serde(default, skip_serializing_if = "is_zero")]
    pub sub: u32,
    /// Posted by the entity's own account: a response (`Aggregator::respond`), not a mention.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub response: bool,
}

fn is_zero(v: &u32) -> bool {
    *v == 0
}

impl<'a> ScoredPost<'a> {
    /// A mention of `entity` (`response` is false; see `ScoreBatch::records` for a response).
    pub fn new(p: &'a Post, entity: &'a str, s: &Sentiment, src: &'a str, off: i64, sub: u32) -> ScoredPost<'a> {
        ScoredPost {
            entity: Cow::Borrowed(entity),
            id: Cow::Borrowed(&p.id),
            text: Cow::Borrowed(&p.text),
            created_at: p.created_at,
            author: p.author.as_deref().map(Cow::Borrowed),
            followers: p.followers,
            compound: s.compound,
            label: s.label,
            url: p.url.as_deref().map(Cow::Borrowed),
            author_url: p.author_url.as_deref().map(Cow::Borrowed),
            platform: p.platform.as_deref().map(Cow::Borrowed),
            src: Cow::Borrowed(src),
            off,
            sub,
            response: false,
        }
    }

    /// What the aggregator reads of this post: the one place a stage record becomes a `PostView`.
    pub fn view(&self) -> PostView<'_> {
        PostView {
            id: &self.id,
            text: &self.text,
            created_at: self.created_at,
            author: self.author.as_deref(),
            followers: self.followers,
            compound: self.compound,
            label: self.label,
            url: self.url.as_deref(),
            author_url: self.author_url.as_deref(),
            platform: self.platform.as_deref(),
        }
    }
}

/// What `AggregateStage::apply` did with a record.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Applied {
    Aggregated,
    /// A post by the entity's own account, followed as its response.
    Responded,
    /// A re-delivery of a source record already applied (at-least-once upstream).
    Duplicate,
    /// Names an entity this worker's watchlist lacks (stages running different configs).
    UnknownEntity,
    Tick,
}

/// The aggregate stage for one partition of the internal topic.
pub struct AggregateStage {
    pub aggregator: Aggregator,
    ids: FxHashMap<String, EntityId>,
    names: Vec<String>,
    own_terms: Vec<Vec<String>>,
    /// Highest (offset, index in record) applied, per source ("topic/partition") and entity.
    applied: FxHashMap<Box<str>, FxHashMap<EntityId, (i64, u32)>>,
}

/// Everything an aggregate stage needs to resume exactly, tied to the internal-topic offset it covers.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct StageSnapshot {
    /// The next internal-topic offset to read: every record before it is reflected here.
    pub next_offset: i64,
    pub applied: BTreeMap<String, (i64, u32)>,
    pub aggregator: AggregatorSnapshot,
}

impl AggregateStage {
    pub fn new(entities: &[EntityConfig], cfg: &AggregatorConfig) -> Result<AggregateStage, String> {
        let matcher = Matcher::new(entities).map_err(|e| format!("entities: {e}"))?;
        let ids = matcher.names().iter().enumerate().map(|(i, n)| (n.clone(), i as EntityId)).collect();
        let own_terms = (0..matcher.len()).map(|i| matcher.own_terms(i as EntityId).to_vec()).collect();
        let mut aggregator = Aggregator::new(cfg)?;
        aggregator.set_responses(
            entities
                .iter()
                .map(|e| {
                    let handle = e.own_handles.first()?.trim();
                    let handle = if handle.starts_with('@') { handle.to_string() } else { format!("@{handle}") };
                    let plan = e.response.map_or(cfg.response, |o| o.over(&cfg.response));
                    Some(ResponseSetup { handle, plan })
                })
                .collect(),
        );
        Ok(AggregateStage {
            aggregator,
            ids,
            names: matcher.names().to_vec(),
            own_terms,
            applied: FxHashMap::default(),
        })
    }

    pub fn entity_name(&self, id: EntityId) -> &str {
        &self.names[id as usize]
    }

    pub fn apply(&mut self, rec: &StageRecord, out: &mut Vec<Output>) -> Applied {
        match rec {
            StageRecord::Tick { max_event_time } => {
                self.aggregator.advance(*max_event_time, out);
                Applied::Tick
            }
            StageRecord::Post(p) => {
                let Some(&id) = self.ids.get(p.entity.as_ref()) else { return Applied::UnknownEntity };
                // Per entity, not per source: one source post mentioning two entities yields two records
                // with the same offset, and both must count.
                let seen = match self.applied.get_mut(p.src.as_ref()) {
                    Some(m) => m,
                    None => self.applied.entry(p.src.as_ref().into()).or_default(),
                };
                if seen.get(&id).is_some_and(|&o| (p.off, p.sub) <= o) {
                    return Applied::Duplicate;
                }
                seen.insert(id, (p.off, p.sub));
                if p.response {
                    self.aggregator.respond(id, &p.entity, &self.own_terms[id as usize], &p.view(), out);
                    Applied::Responded
                } else {
                    self.aggregator.process(id, &p.entity, &self.own_terms[id as usize], &p.view(), out);
                    Applied::Aggregated
                }
            }
        }
    }

    pub fn snapshot(&self, next_offset: i64) -> StageSnapshot {
        // Keyed "source#entity" by name, so a snapshot survives a watchlist edit (ids are positions).
        let mut applied = BTreeMap::new();
        for (src, per) in &self.applied {
            for (id, o) in per {
                applied.insert(format!("{src}#{}", self.names[*id as usize]), *o);
            }
        }
        StageSnapshot { next_offset, applied, aggregator: self.aggregator.snapshot() }
    }

    pub fn restore(&mut self, snap: &StageSnapshot) -> Result<(), String> {
        let ids = &self.ids;
        self.aggregator.restore(&snap.aggregator, |n| ids.get(n).copied())?;
        self.applied.clear();
        for (key, o) in &snap.applied {
            // Source names hold '/', never '#'; entity names may hold '#', so split at the first one.
            let (src, name) = key.split_once('#').ok_or_else(|| format!("snapshot: bad de-duplication key {key:?}"))?;
            if let Some(&id) = ids.get(name) {
                self.applied.entry(src.into()).or_default().insert(id, *o);
            }
        }
        Ok(())
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::aggregate::WindowConfig;
    use crate::sentiment::{LabelThresholds, LexiconScorer};

    pub(crate) fn entities() -> Vec<EntityConfig> {
        vec![
            EntityConfig {
                name: "Acme".into(),
                terms: vec!["acme".into()],
                handles: vec![],
                hashtags: vec![],
                exclude: vec![],
                own_handles: vec!["@AcmeHelp".into()],
                response: Some(crate::detect::response::PlanOverride {
                    first_response_within_secs: Some(120),
                    update_every_secs: Some(240),
                }),
            },
            EntityConfig {
                name: "Globex".into(),
                terms: vec!["globex".into()],
                handles: vec![],
                hashtags: vec![],
                exclude: vec![],
                ..EntityConfig::default()
            },
        ]
    }

    pub(crate) fn cfg() -> AggregatorConfig {
        let mut c = AggregatorConfig::default();
        c.window = WindowConfig { size_secs: 120, slide_secs: 60, offset_secs: 0, allowed_lateness_secs: 10 };
        c.detection.warmup_secs = 0;
        c
    }

    pub(crate) fn rec(entity: &str, id: u32, t: Millis, off: i64, compound: f64) -> StageRecord<'static> {
        StageRecord::Post(ScoredPost {
            entity: entity.to_string().into(),
            id: id.to_string().into(),
            text: "acme is awful".into(),
            created_at: t,
            author: None,
            followers: None,
            compound,
            label: if compound < 0.0 { Label::Negative } else { Label::Neutral },
            url: None,
            author_url: None,
            platform: None,
            src: "posts/0".into(),
            off,
            sub: 0,
            response: false,
        })
    }

    /// A quiet baseline, then a burst of negative posts: enough to open an incident.
    fn stream() -> Vec<StageRecord<'static>> {
        let mut v = Vec::new();
        let mut off = 0;
        for minute in 0..180i64 {
            let n = if (150..160).contains(&minute) { 60 } else { 3 };
            for k in 0..n {
                let c = if (150..160).contains(&minute) { -0.8 } else { 0.3 };
                v.push(rec("Acme", off as u32, minute * 60_000 + k * 100, off, c));
                off += 1;
            }
        }
        v
    }

    fn run(records: &[StageRecord]) -> Vec<Output> {
        let mut st = AggregateStage::new(&entities(), &cfg()).unwrap();
        let mut out = Vec::new();
        for r in records {
            st.apply(r, &mut out);
        }
        out
    }

    #[test]
    fn stage_records_round_trip_as_json() {
        let r = rec("Acme", 1, 5, 7, -0.25);
        let text = serde_json::to_string(&r).unwrap();
        let back: StageRecord = serde_json::from_str(&text).unwrap();
        assert_eq!(back, r);
        let t = StageRecord::Tick { max_event_time: 42 };
        assert_eq!(serde_json::to_string(&t).unwrap(), r#"{"t":"tick","max_event_time":42}"#);
    }

    #[test]
    fn stage_records_round_trip_in_the_binary_format_and_json_is_still_read() {
        let mut p = rec("Acme", 1, 5, 7, -0.25);
        if let StageRecord::Post(sp) = &mut p {
            sp.author = Some("ann \u{1F600}".into());
            sp.followers = Some(u64::MAX);
            sp.text = "x".repeat(300).into();
            sp.sub = 3;
        }
        for r in [p, rec("Globex", 2, -9, 0, 0.5), StageRecord::Tick { max_event_time: -3 }] {
            let bytes = r.encode();
            assert_ne!(bytes[0], b'{');
            assert_eq!(StageRecord::decode(&bytes).unwrap(), r);
            // What a worker of the previous version wrote.
            assert_eq!(StageRecord::decode(&serde_json::to_vec(&r).unwrap()).unwrap(), r);
            // Truncations and trailing bytes are errors, never panics.
            for cut in 0..bytes.len() {
                assert!(StageRecord::decode(&bytes[..cut]).is_err(), "cut {cut}");
            }
            let mut long = bytes.clone();
            long.push(0);
            assert!(StageRecord::decode(&long).is_err());
        }
        // The label travels by its serde name, so the format needs no change for a new label.
        for l in [Label::Negative, Label::Neutral, Label::Positive] {
            assert_eq!(serde_json::to_string(&l).unwrap(), format!("\"{}\"", l.as_str()));
        }
        assert!(StageRecord::decode(&[0xB1, 0, 1]).is_err());
        assert!(StageRecord::decode(b"garbage").is_err());
    }

    fn with_links(
        r: StageRecord<'static>,
        url: Option<&'static str>,
        author_url: Option<&'static str>,
    ) -> StageRecord<'static> {
        match r {
            StageRecord::Post(mut p) => {
                p.url = url.map(Cow::Borrowed);
                p.author_url = author_url.map(Cow::Borrowed);
                StageRecord::Post(p)
            }
            t => t,
        }
    }

    #[test]
    fn post_links_round_trip_in_every_combination() {
        let (u, a) = (Some("https://x.com/ann/status/1"), Some("https://x.com/ann"));
        for (url, author_url) in [(None, None), (u, None), (None, a), (u, a)] {
            let r = with_links(rec("Acme", 1, 5, 7, -0.25), url, author_url);
            let bytes = r.encode();
            assert_eq!(bytes[1] & HAS_URL != 0, url.is_some());
            assert_eq!(bytes[1] & HAS_AUTHOR_URL != 0, author_url.is_some());
            assert_eq!(StageRecord::decode(&bytes).unwrap(), r);
            assert_eq!(StageRecord::decode(&serde_json::to_vec(&r).unwrap()).unwrap(), r);
            for cut in 0..bytes.len() {
                assert!(StageRecord::decode(&bytes[..cut]).is_err(), "cut {cut}");
            }
        }
    }

    #[test]
    fn the_platform_round_trips_after_the_links_and_is_absent_from_older_records() {
        let mut r = with_links(rec("Acme", 1, 5, 7, -0.25), Some("https://bsky.app/profile/did:plc:a/post/1"), None);
        if let StageRecord::Post(p) = &mut r {
            p.platform = Some("bluesky".into());
        }
        let bytes = r.encode();
        assert_ne!(bytes[1] & HAS_PLATFORM, 0);
        assert_eq!(StageRecord::decode(&bytes).unwrap(), r);
        assert_eq!(StageRecord::decode(&serde_json::to_vec(&r).unwrap()).unwrap(), r);
        let plain = rec("Acme", 1, 5, 7, -0.25).encode();
        let StageRecord::Post(p) = StageRecord::decode(&plain).unwrap() else { panic!("not a post") };
        assert_eq!(p.platform, None);
    }

    #[test]
    fn a_record_written_before_links_still_decodes() {
        // Laid out by hand as the previous version wrote it: author and followers flagged, no link bits.
        let mut old = vec![BIN_POST, HAS_AUTHOR | HAS_FOLLOWERS];
        for n in [5i64, (-0.25f64).to_bits() as i64, 7] {
            old.extend_from_slice(&n.to_le_bytes());
        }
        old.extend_from_slice(&0u32.to_le_bytes());
        old.extend_from_slice(&12u64.to_le_bytes());
        for s in ["Acme", "1", "acme is awful", "posts/0", "negative", "ann"] {
            put_str(&mut old, s);
        }
        let StageRecord::Post(p) = StageRecord::decode(&old).unwrap() else { panic!("not a post") };
        assert_eq!((p.author.as_deref(), p.followers, p.id.as_ref()), (Some("ann"), Some(12), "1"));
        assert_eq!((p.url, p.author_url), (None, None));
        // And a post without links is still written exactly as before, so old readers take it.
        let mut same = rec("Acme", 1, 5, 7, -0.25);
        if let StageRecord::Post(sp) = &mut same {
            sp.author = Some("ann".into());
            sp.followers = Some(12);
        }
        assert_eq!(same.encode(), old);
        // JSON records from before links have no such fields.
        let json = br#"{"t":"post","entity":"Acme","id":"1","text":"t","created_at":5,"compound":0.1,"label":"neutral","src":"posts/0","off":7}"#;
        let StageRecord::Post(p) = StageRecord::decode(json).unwrap() else { panic!("not a post") };
        assert_eq!((p.url, p.author_url), (None, None));
    }

    #[test]
    fn links_reach_the_evidence_and_hostile_ones_do_not() {
        let mut a = AggregateStage::new(&entities(), &cfg()).unwrap();
        let mut out = Vec::new();
        let good =
            with_links(rec("Acme", 1, 1_000, 1, -0.9), Some("https://x.com/ann/status/1"), Some("https://x.com/ann"));
        let bad = with_links(rec("Acme", 2, 2_000, 2, -0.8), Some("javascript:alert(1)"), Some("https://x.com/a|b"));
        assert_eq!(a.apply(&good, &mut out), Applied::Aggregated);
        assert_eq!(a.apply(&bad, &mut out), Applied::Aggregated);
        let snap = serde_json::to_string(&a.snapshot(3)).unwrap();
        assert!(snap.contains(r#""url":"https://x.com/ann/status/1""#), "{snap}");
        assert!(snap.contains(r#""author_url":"https://x.com/ann""#), "{snap}");
        assert!(!snap.contains("javascript") && !snap.contains("a|b"), "{snap}");
    }

    #[test]
    fn redelivered_records_are_applied_once() {
        let s = stream();
        let once = run(&s);
        assert!(once.iter().any(|o| matches!(o, Output::Spike(_))), "the stream must produce an incident");
        // A score worker crashed after publishing up to 4000 and re-consumed from its commit at 3000.
        let mut twice: Vec<StageRecord> = s[..800].to_vec();
        twice.extend_from_slice(&s[450..]);
        assert_eq!(run(&twice), once);
    }

    #[test]
    fn a_post_for_two_entities_counts_for_both() {
        let mut st = AggregateStage::new(&entities(), &cfg()).unwrap();
        let mut out = Vec::new();
        assert_eq!(st.apply(&rec("Acme", 1, 0, 9, 0.1), &mut out), Applied::Aggregated);
        assert_eq!(st.apply(&rec("Globex", 1, 0, 9, 0.1), &mut out), Applied::Aggregated);
        assert_eq!(st.apply(&rec("Globex", 1, 0, 9, 0.1), &mut out), Applied::Duplicate);
        assert_eq!(st.apply(&rec("Initech", 2, 0, 10, 0.1), &mut out), Applied::UnknownEntity);
    }

    #[test]
    fn restoring_a_snapshot_mid_stream_reproduces_the_same_events() {
        let s = stream();
        let whole = run(&s);
        for cut in [1, 300, 600, 1000, s.len() - 1] {
            let mut a = AggregateStage::new(&entities(), &cfg()).unwrap();
            let mut out = Vec::new();
            for r in &s[..cut] {
                a.apply(r, &mut out);
            }
            // Through JSON, as it travels through the state topic.
            let text = serde_json::to_string(&a.snapshot(cut as i64)).unwrap();
            let snap: StageSnapshot = serde_json::from_str(&text).unwrap();
            let mut b = AggregateStage::new(&entities(), &cfg()).unwrap();
            b.restore(&snap).unwrap();
            for r in &s[snap.next_offset as usize..] {
                b.apply(r, &mut out);
            }
            assert_eq!(out, whole, "cut at {cut}");
        }
    }

    #[test]
    fn ticks_close_windows_of_quiet_partitions() {
        let mut st = AggregateStage::new(&entities(), &cfg()).unwrap();
        let mut out = Vec::new();
        st.apply(&rec("Acme", 1, 0, 0, 0.1), &mut out);
        let closed = st.aggregator.counters.windows_closed;
        st.apply(&StageRecord::Tick { max_event_time: 10 * 60_000 }, &mut out);
        assert!(st.aggregator.counters.windows_closed > closed);
        // A tick from the past changes nothing.
        let c = st.aggregator.counters.windows_closed;
        st.apply(&StageRecord::Tick { max_event_time: 0 }, &mut out);
        assert_eq!(st.aggregator.counters.windows_closed, c);
    }

    #[test]
    fn score_stage_scores_only_matched_posts() {
        let stage = ScoreStage::new(Arc::new(LexiconScorer::new(LabelThresholds::default())), &entities()).unwrap();
        let post = |id: &str, text: &str| Post {
            id: id.into(),
            text: text.into(),
            created_at: 0,
            author: None,
            followers: None,
            lang: None,
            url: None,
            author_url: None,
            platform: None,
        };
        let posts =
            vec![post("1", "acme and globex are terrible"), post("2", "nothing here"), post("3", "I love acme")];
        let mut out = Vec::new();
        assert_eq!(stage.score(&posts, &mut out).unwrap(), 2);
        let got: Vec<(usize, EntityId, Label)> = out.iter().map(|s| (s.post, s.entity, s.sentiment.label)).collect();
        assert_eq!(got, vec![(0, 0, Label::Negative), (0, 1, Label::Negative), (2, 0, Label::Positive)]);
    }
}
