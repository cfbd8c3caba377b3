//! The whole pure pipeline for one input: match, score, aggregate, detect.
//!
//! `flashpoint replay` drives it directly; the Kafka worker drives the same pieces split over two stages.
//! Posts are matched before they are scored, so the scorer's batch holds only posts that mention a watched
//! entity (in a firehose most do not).

use crate::aggregate::{Aggregator, AggregatorConfig};
use crate::entity::{EntityConfig, EntityId, Matcher};
use crate::event::Output;
use crate::normalize;
use crate::post::Post;
use crate::sentiment::{ScoreError, Scorer, Sentiment};
use crate::window::PostView;
use std::borrow::Cow;

/// Counters of the stages before aggregation.
#[derive(Clone, Debug, Default, PartialEq, serde::Serialize)]
pub struct StageCounters {
    pub posts: u64,
    pub matched: u64,
    pub unmatched: u64,
    pub scored: u64,
    pub batches: u64,
}

pub struct Pipeline {
    scorer: Box<dyn Scorer>,
    matcher: Matcher,
    pub aggregator: Aggregator,
    /// Apply the social-text normaliser before scoring (see `normalize`).
    pub normalize: bool,
    pub counters: StageCounters,
    // Buffers kept across batches.
    matches: Vec<EntityId>,
    spans: Vec<(usize, usize, usize)>,
    sentiments: Vec<Sentiment>,
}

impl Pipeline {
    pub fn new(scorer: Box<dyn Scorer>, entities: &[EntityConfig], cfg: &AggregatorConfig) -> Result<Pipeline, String> {
        let matcher = Matcher::new(entities).map_err(|e| format!("entities: {e}"))?;
        if matcher.is_empty() {
            return Err("entities: the watchlist is empty; add at least one [[entities]] entry".into());
        }
        Ok(Pipeline {
            scorer,
            matcher,
            aggregator: Aggregator::new(cfg)?,
            normalize: true,
            counters: StageCounters::default(),
            matches: Vec::new(),
            spans: Vec::new(),
            sentiments: Vec::new(),
        })
    }

    pub fn matcher(&self) -> &Matcher {
        &self.matcher
    }

    pub fn scorer_name(&self) -> &'static str {
        self.scorer.name()
    }

    /// Processes a batch of posts in order, appending spike events and diverted posts to `out`.
    pub fn process_batch(&mut self, posts: &[Post], out: &mut Vec<Output>) -> Result<(), ScoreError> {
        self.matches.clear();
        self.spans.clear();
        for (i, p) in posts.iter().enumerate() {
            let from = self.matches.len();
            self.matcher.find(&p.text, &mut self.matches);
            if self.matches.len() > from {
                self.spans.push((i, from, self.matches.len()));
            }
        }
        self.counters.posts += posts.len() as u64;
        self.counters.matched += self.spans.len() as u64;
        self.counters.unmatched += (posts.len() - self.spans.len()) as u64;
        if self.spans.is_empty() {
            return Ok(());
        }
        let texts: Vec<Cow<str>> = self
            .spans
            .iter()
            .map(|&(i, _, _)| if self.normalize { normalize::for_scoring(&posts[i].text) } else { Cow::Borrowed(posts[i].text.as_str()) })
            .collect();
        let refs: Vec<&str> = texts.iter().map(|t| t.as_ref()).collect();
        self.sentiments.clear();
        self.scorer.score_batch(&refs, &mut self.sentiments)?;
        self.counters.scored += refs.len() as u64;
        self.counters.batches += 1;
        for (k, &(i, from, to)) in self.spans.iter().enumerate() {
            let p = &posts[i];
            let s = self.sentiments[k];
            let view = PostView {
                id: &p.id,
                text: &p.text,
                created_at: p.created_at,
                author: p.author.as_deref(),
                followers: p.followers,
                compound: s.compound,
                label: s.label,
            };
            for &e in &self.matches[from..to] {
                self.aggregator.process(e, self.matcher.name(e), self.matcher.own_terms(e), &view, out);
            }
        }
        Ok(())
    }
}
