//! The whole pure pipeline for one input: match, score, aggregate, detect.
//!
//! The evaluation commands and benchmarks drive it; `flashpoint replay` and the Kafka worker drive the
//! per-record machines of `partition` instead, which add the worker's de-duplication and offsets.

use crate::aggregate::{Aggregator, AggregatorConfig};
use crate::entity::EntityConfig;
use crate::event::Output;
use crate::post::Post;
use crate::sentiment::{ScoreError, Scorer};
use crate::stage::{ScoreStage, Scored};
use crate::window::PostView;
use std::sync::Arc;

/// Counters of the stages before aggregation.
#[derive(Clone, Debug, Default, PartialEq, serde::Serialize)]
pub struct StageCounters {
    pub posts: u64,
    pub matched: u64,
    pub unmatched: u64,
    /// Matched posts the scorer read.
    pub scored: u64,
    /// Matched posts in a language the scorer does not read (see `lang`).
    pub unscored: u64,
    pub batches: u64,
}

impl StageCounters {
    /// Counts one scored batch: `posts` decoded, `matched` of them naming an entity and `unmatched` naming none
    /// (a batch the backend failed on has neither), `unscored` of the matched in a language the scorer does not
    /// read. The one place these sums are made, so every driver reports the same.
    pub fn add_batch(&mut self, posts: u64, matched: u64, unmatched: u64, unscored: u64) {
        self.posts += posts;
        self.matched += matched;
        self.unmatched += unmatched;
        if matched > 0 {
            self.scored += matched - unscored;
            self.unscored += unscored;
            self.batches += 1;
        }
    }
}

pub struct Pipeline {
    pub score: ScoreStage,
    pub aggregator: Aggregator,
    pub counters: StageCounters,
    scored: Vec<Scored>,
}

impl Pipeline {
    pub fn new(scorer: Box<dyn Scorer>, entities: &[EntityConfig], cfg: &AggregatorConfig) -> Result<Pipeline, String> {
        Ok(Pipeline {
            score: ScoreStage::new(Arc::from(scorer), entities)?,
            aggregator: Aggregator::new(cfg)?,
            counters: StageCounters::default(),
            scored: Vec::new(),
        })
    }

    pub fn scorer_name(&self) -> &'static str {
        self.score.scorer_name()
    }

    /// Processes a batch of posts in order, appending spike events and diverted posts to `out`.
    pub fn process_batch(&mut self, posts: &[Post], out: &mut Vec<Output>) -> Result<(), ScoreError> {
        self.scored.clear();
        let counts = self.score.score_counted(posts, &mut self.scored)?;
        let (n, matched) = (posts.len() as u64, counts.matched as u64);
        self.counters.add_batch(n, matched, n - matched, counts.unscored as u64);
        if counts.matched == 0 {
            return Ok(());
        }
        let matcher = self.score.matcher();
        for s in &self.scored {
            let p = &posts[s.post];
            let view = PostView {
                id: &p.id,
                text: &p.text,
                created_at: p.created_at,
                author: p.author.as_deref(),
                followers: p.followers,
                compound: s.sentiment.compound,
                label: s.sentiment.label,
            };
            self.aggregator.process(s.entity, matcher.name(s.entity), matcher.own_terms(s.entity), &view, out);
        }
        Ok(())
    }
}
