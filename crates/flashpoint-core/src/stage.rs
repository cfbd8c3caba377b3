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
    /// (post, entity) pair, in post order; returns how many posts matched at least one entity.
    pub fn score(&self, posts: &[Post], out: &mut Vec<Scored>) -> Result<usize, ScoreError> {
        self.score_counted(posts, out).map(|c| c.matched)
    }

    /// `score`, also counting the matched posts the language gate left unscored (they are in `out` with
    /// `Sentiment::UNSCORED`, so they still count toward volume).
    pub fn score_counted(&self, posts: &[Post], out: &mut Vec<Scored>) -> Result<ScoreCounts, ScoreError> {
        let mut matches = Vec::new();
        let mut spans = Vec::new();
        for (i, p) in posts.iter().enumerate() {
            let from = matches.len();
            self.matcher.find(&p.text, &mut matches);
            if matches.len() > from {
                spans.push((i, from, matches.len()));
            }
        }
        if spans.is_empty() {
            return Ok(ScoreCounts::default());
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
        for (&(i, from, to), &r) in spans.iter().zip(&read) {
            let sentiment = if r { scored.next().expect("one result per read text") } else { Sentiment::UNSCORED };
            for &e in &matches[from..to] {
                out.push(Scored { post: i, entity: e, sentiment });
            }
        }
        Ok(ScoreCounts { matched: spans.len(), unscored: read.iter().filter(|r| !**r).count() })
    }
}

/// A record of the internal topic between the stages.
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
    /// Where the post came from ("topic/partition") and its offset there: the de-duplication key.
    #[serde(borrow)]
    pub src: Cow<'a, str>,
    pub off: i64,
    /// Index of the post within its source record (a Twitter v2 page holds several).
    #[serde(default, skip_serializing_if = "is_zero")]
    pub sub: u32,
}

fn is_zero(v: &u32) -> bool {
    *v == 0
}

impl<'a> ScoredPost<'a> {
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
            src: Cow::Borrowed(src),
            off,
            sub,
        }
    }
}

/// What `AggregateStage::apply` did with a record.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Applied {
    Aggregated,
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
        Ok(AggregateStage {
            aggregator: Aggregator::new(cfg)?,
            ids,
            names: matcher.names().to_vec(),
            own_terms,
            applied: FxHashMap::default(),
        })
    }

    pub fn entity_name(&self, id: EntityId) -> &str {
        &self.names[id as usize]
    }

    pub fn entity_id(&self, name: &str) -> Option<EntityId> {
        self.ids.get(name).copied()
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
                let view = PostView {
                    id: &p.id,
                    text: &p.text,
                    created_at: p.created_at,
                    author: p.author.as_deref(),
                    followers: p.followers,
                    compound: p.compound,
                    label: p.label,
                };
                self.aggregator.process(id, &p.entity, &self.own_terms[id as usize], &view, out);
                Applied::Aggregated
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
mod tests {
    use super::*;
    use crate::aggregate::WindowConfig;
    use crate::sentiment::{LabelThresholds, LexiconScorer};

    fn entities() -> Vec<EntityConfig> {
        vec![
            EntityConfig {
                name: "Acme".into(),
                terms: vec!["acme".into()],
                handles: vec![],
                hashtags: vec![],
                exclude: vec![],
            },
            EntityConfig {
                name: "Globex".into(),
                terms: vec!["globex".into()],
                handles: vec![],
                hashtags: vec![],
                exclude: vec![],
            },
        ]
    }

    fn cfg() -> AggregatorConfig {
        let mut c = AggregatorConfig::default();
        c.window = WindowConfig { size_secs: 120, slide_secs: 60, offset_secs: 0, allowed_lateness_secs: 10 };
        c.detection.warmup_secs = 0;
        c
    }

    fn rec(entity: &str, id: u32, t: Millis, off: i64, compound: f64) -> StageRecord<'static> {
        StageRecord::Post(ScoredPost {
            entity: entity.to_string().into(),
            id: id.to_string().into(),
            text: "acme is awful".into(),
            created_at: t,
            author: None,
            followers: None,
            compound,
            label: if compound < 0.0 { Label::Negative } else { Label::Neutral },
            src: "posts/0".into(),
            off,
            sub: 0,
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
        };
        let posts =
            vec![post("1", "acme and globex are terrible"), post("2", "nothing here"), post("3", "I love acme")];
        let mut out = Vec::new();
        assert_eq!(stage.score(&posts, &mut out).unwrap(), 2);
        let got: Vec<(usize, EntityId, Label)> = out.iter().map(|s| (s.post, s.entity, s.sentiment.label)).collect();
        assert_eq!(got, vec![(0, 0, Label::Negative), (0, 1, Label::Negative), (2, 0, Label::Positive)]);
    }
}
