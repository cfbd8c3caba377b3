//! The whole pure pipeline for one input: the worker's two machines (`ScoreStage::process` and one
//! `AggregatePartition`) back to back, without a topic between them.
//!
//! `flashpoint replay`, the evaluations and the benchmarks all drive it, so they run every decision the Kafka
//! worker runs (de-duplication and offsets included). The stage records are not serialised: `partition`'s tests
//! prove that path equal to the worker's bytes path.

use crate::aggregate::{Aggregator, AggregatorConfig};
use crate::entity::EntityConfig;
use crate::event::Output;
use crate::partition::{AggregatePartition, ScoreBatch, SourceRecord, Step};
use crate::post::{Decoder, Post};
use crate::sentiment::{ScoreError, Scorer};
use crate::stage::{AggregateStage, ScoreStage};
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
    /// Posts by an entity's own account (its responses, see `detect::response`).
    pub responses: u64,
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

/// The source `process_batch`'s posts are records of (they come from no topic).
const POSTS_SOURCE: &str = "posts";

pub struct Pipeline {
    pub score: ScoreStage,
    pub partition: AggregatePartition,
    pub counters: StageCounters,
    batch: ScoreBatch,
    /// Offset of `process_batch`'s next post in its (virtual) source.
    next_post: i64,
}

impl Pipeline {
    /// A pipeline with no state yet over `entities`.
    pub fn new(scorer: Box<dyn Scorer>, entities: &[EntityConfig], cfg: &AggregatorConfig) -> Result<Pipeline, String> {
        let score = ScoreStage::new(Arc::from(scorer), entities)?;
        let partition = AggregatePartition::start(AggregateStage::new(entities, cfg)?, None, 0)?;
        Ok(Pipeline::from_machines(score, partition))
    }

    /// A pipeline over machines the caller set up (a scorer's options, a restored partition).
    pub fn from_machines(score: ScoreStage, partition: AggregatePartition) -> Pipeline {
        Pipeline { score, partition, counters: StageCounters::default(), batch: ScoreBatch::default(), next_post: 0 }
    }

    pub fn scorer_name(&self) -> &'static str {
        self.score.scorer_name()
    }

    pub fn aggregator(&mut self) -> &mut Aggregator {
        &mut self.partition.stage.aggregator
    }

    /// Decodes, matches, scores and aggregates a batch of source records, appending spike events and diverted
    /// posts to `out`. Returns the batch, whose `rejected` records the caller dead-letters.
    pub fn feed(&mut self, decoder: &Decoder, records: &[SourceRecord<'_>], out: &mut Vec<Output>) -> &ScoreBatch {
        self.score.process(decoder, records, &mut self.batch);
        self.aggregate(out);
        &self.batch
    }

    /// `feed` for posts already decoded (each one record of a virtual source). A backend failure is returned:
    /// no caller of this path has a dead-letter output.
    pub fn process_batch(&mut self, posts: Vec<Post>, out: &mut Vec<Output>) -> Result<(), ScoreError> {
        let n = posts.len() as i64;
        self.score.process_posts(POSTS_SOURCE, 0, self.next_post, posts, &mut self.batch);
        self.next_post += n;
        if let Some(r) = self.batch.rejected.first() {
            return Err(ScoreError::Backend(r.detail.clone()));
        }
        self.aggregate(out);
        Ok(())
    }

    fn aggregate(&mut self, out: &mut Vec<Output>) {
        let b = &self.batch;
        self.counters.add_batch(b.posts.len() as u64, b.matched, b.unmatched, b.unscored);
        self.counters.responses += b.responses;
        for (_, _, rec) in b.records(&self.score) {
            // The (virtual) internal topic is this feed: each record is the partition's next offset, so every
            // record applies.
            let at = self.partition.next_offset();
            let step = self.partition.on_decoded(at, &rec, out);
            assert!(matches!(step, Step::Applied(_)), "stage record {at} not applied: {step:?}");
        }
    }
}
