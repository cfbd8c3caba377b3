//! Every decision the Kafka worker takes about a record, as pure functions and state machines.
//!
//! The worker's stages only move bytes and offsets; what a record means is decided here, so it is unit
//! tested without a broker and `replay` drives the very same code:
//! - `ScoreStage::process`: a batch of source records to stage records and rejections (decoding, matching,
//!   scoring, the failure policy, the de-duplication key of each output).
//! - `ResumeFloors`: which re-read records a score stage drops after resuming inside a broker batch.
//! - `AggregatePartition`: one internal-topic partition, record by record: skip what a restored snapshot
//!   already holds, report a gap the transport must fill, apply, checkpoint.
//! - `choose_snapshot` / `needs_full_scan`: which snapshot a new owner restores.

use crate::entity::EntityId;
use crate::event::Output;
use crate::post::{Decoder, Post};
pub use crate::reject::Rejection;
use crate::stage::{AggregateStage, Applied, ScoreStage, ScoredPost, StageRecord, StageSnapshot};
use crate::time::Millis;

/// The de-duplication key of a source partition, carried by each stage record (`ScoredPost::src`) and
/// parsed back from snapshots: "topic/partition".
pub fn source_key(topic: &str, partition: i32) -> String {
    format!("{topic}/{partition}")
}

/// One record read from an input topic.
#[derive(Clone, Copy, Debug)]
pub struct SourceRecord<'a> {
    pub topic: &'a str,
    pub partition: i32,
    pub offset: i64,
    pub payload: &'a [u8],
}

/// A source record that was not processed.
#[derive(Clone, Debug, PartialEq)]
pub struct Rejected {
    /// Index of the record in the batch.
    pub record: usize,
    pub rejection: Rejection,
    pub detail: String,
}

/// What `ScoreStage::process` made of a batch of source records.
#[derive(Default)]
pub struct ScoreBatch {
    pub posts: Vec<Post>,
    /// For each post: (index of its record in the batch, index within the record).
    pub origin: Vec<(usize, u32)>,
    /// For each record: its source partition's de-duplication key (an index into `keys`) and offset.
    sources: Vec<(usize, i64)>,
    keys: Vec<String>,
    pub scored: Vec<crate::stage::Scored>,
    pub rejected: Vec<Rejected>,
    /// Records holding no post (e.g. a Bluesky delete): not errors.
    pub skipped: u64,
    pub matched: u64,
    pub unmatched: u64,
    /// Of the matched posts, those in a language the scorer does not read (labelled unscored).
    pub unscored: u64,
    /// Posts by an entity's own account: its responses (in neither `matched` nor `unmatched` unless they name
    /// another entity).
    pub responses: u64,
    pub max_matched_time: Option<Millis>,
}

impl ScoreBatch {
    pub fn clear(&mut self) {
        self.posts.clear();
        self.origin.clear();
        self.sources.clear();
        self.keys.clear();
        self.scored.clear();
        self.rejected.clear();
        (self.skipped, self.matched, self.unmatched, self.unscored, self.max_matched_time) = (0, 0, 0, 0, None);
        self.responses = 0;
    }

    /// The stage records of the batch, in order: (index of the source record, entity, record).
    pub fn records<'a>(
        &'a self,
        stage: &'a ScoreStage,
    ) -> impl Iterator<Item = (usize, EntityId, StageRecord<'a>)> + 'a {
        self.scored.iter().map(move |s| {
            let p = &self.posts[s.post];
            let (ri, sub) = self.origin[s.post];
            let (k, off) = self.sources[ri];
            let name = stage.matcher().name(s.entity);
            let post = ScoredPost::new(p, name, &s.sentiment, &self.keys[k], off, sub);
            (ri, s.entity, StageRecord::Post(ScoredPost { response: s.response, ..post }))
        })
    }
}

impl ScoreBatch {
    /// Notes the next source record of the batch; returns its index.
    fn push_source(&mut self, topic: &str, partition: i32, offset: i64) -> usize {
        let k = match self.keys.iter().position(|k| is_key(k, topic, partition)) {
            Some(k) => k,
            None => {
                self.keys.push(source_key(topic, partition));
                self.keys.len() - 1
            }
        };
        self.sources.push((k, offset));
        self.sources.len() - 1
    }

    fn push_posts(&mut self, record: usize, posts: impl IntoIterator<Item = Post>) {
        for (sub, p) in posts.into_iter().enumerate() {
            self.posts.push(p);
            self.origin.push((record, sub as u32));
        }
    }
}

impl ScoreStage {
    /// Decodes, matches and scores a batch of source records. Records that cannot be decoded are rejected
    /// with their reason; if the backend fails, every record that yielded a post is rejected once as
    /// `ScoreFailed` (the batch is not retried: a backend failing on some input must not stall the stage).
    pub fn process(&self, decoder: &Decoder, records: &[SourceRecord<'_>], out: &mut ScoreBatch) {
        out.clear();
        for r in records {
            let i = out.push_source(r.topic, r.partition, r.offset);
            match decoder.decode(r.payload) {
                Ok(ps) if ps.is_empty() => out.skipped += 1,
                Ok(ps) => out.push_posts(i, ps),
                Err(e) => out.rejected.push(Rejected { record: i, rejection: e.rejection, detail: e.detail }),
            }
        }
        self.score_batch(out);
    }

    /// `process` for posts already decoded (the evaluations and benchmarks, which make posts, not records):
    /// each post is one record of `topic`/`partition`, at consecutive offsets from `first_offset`.
    pub fn process_posts(
        &self,
        topic: &str,
        partition: i32,
        first_offset: i64,
        posts: impl IntoIterator<Item = Post>,
        out: &mut ScoreBatch,
    ) {
        out.clear();
        for (n, p) in posts.into_iter().enumerate() {
            let i = out.push_source(topic, partition, first_offset + n as i64);
            out.push_posts(i, [p]);
        }
        self.score_batch(out);
    }

    fn score_batch(&self, out: &mut ScoreBatch) {
        match self.score_counted(&out.posts, &mut out.scored) {
            Ok(counts) => {
                let matched = counts.matched;
                out.matched = matched as u64;
                out.unscored = counts.unscored as u64;
                out.responses = counts.responses as u64;
                out.unmatched = (out.posts.len() - matched - counts.responses_only) as u64;
                // Responses do not move the watermark (`Aggregator::respond`), so they do not move the ticks either.
                out.max_matched_time =
                    out.scored.iter().filter(|s| !s.response).map(|s| out.posts[s.post].created_at).max();
            }
            Err(e) => {
                out.scored.clear();
                let mut last = None;
                for &(ri, _) in &out.origin {
                    if last != Some(ri) {
                        last = Some(ri);
                        out.rejected.push(Rejected {
                            record: ri,
                            rejection: Rejection::ScoreFailed,
                            detail: e.to_string(),
                        });
                    }
                }
                out.rejected.sort_by_key(|r| r.record);
            }
        }
    }
}

fn is_key(k: &str, topic: &str, partition: i32) -> bool {
    k.len() > topic.len()
        && k.starts_with(topic)
        && k.as_bytes()[topic.len()] == b'/'
        && k[topic.len() + 1..].parse() == Ok(partition)
}

/// Resume floors of a score stage: partitions assigned from before their committed offset (a broker that
/// serves a fetch from inside a batch with the following batches only, see the Kafka crate's `tansu`
/// notes) re-deliver records already scored; those below the floor are dropped, as a Kafka client drops
/// the start of a batch fetched from its middle.
#[derive(Default, Debug)]
pub struct ResumeFloors {
    floors: Vec<(String, i32, i64)>,
}

impl ResumeFloors {
    /// Records of `topic`/`partition` below `offset` were processed before.
    pub fn set(&mut self, topic: String, partition: i32, offset: i64) {
        self.forget(&topic, partition);
        self.floors.push((topic, partition, offset));
    }

    /// Sets every floor of `floors` (as the Kafka crate's rebalance context hands them over).
    pub fn set_all(&mut self, floors: impl IntoIterator<Item = (String, i32, i64)>) {
        for (t, p, o) in floors {
            self.set(t, p, o);
        }
    }

    /// False for a record below its partition's floor; the first record at or past it lifts the floor.
    pub fn admit(&mut self, topic: &str, partition: i32, offset: i64) -> bool {
        let Some(i) = self.find(topic, partition) else { return true };
        if offset < self.floors[i].2 {
            return false;
        }
        self.floors.swap_remove(i);
        true
    }

    /// Where a partition's processing starts when its first record is at `offset`: its floor if that is
    /// later (a machine that skips on its own, like `AggregatePartition`, starts there), else `offset`. Lifts
    /// the floor.
    pub fn start(&mut self, topic: &str, partition: i32, offset: i64) -> i64 {
        match self.find(topic, partition) {
            Some(i) => self.floors.swap_remove(i).2.max(offset),
            None => offset,
        }
    }

    /// Drops a revoked partition's floor: a later owner sets its own.
    pub fn forget(&mut self, topic: &str, partition: i32) {
        self.floors.retain(|x| !(x.0 == topic && x.1 == partition));
    }

    fn find(&self, topic: &str, partition: i32) -> Option<usize> {
        self.floors.iter().position(|x| x.1 == partition && x.0 == topic)
    }
}

/// What `AggregatePartition::on_record` did with one internal-topic record.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Step {
    /// Already reflected in the state (a restored snapshot ahead of the consumer's position).
    Skipped,
    /// The state ends at `from`, before this record: feed the records from `from` up to this one first,
    /// then this one again. Nothing was applied.
    Gap {
        from: i64,
    },
    Applied(Applied),
    /// Consumed but not applied: the record goes to the dead-letter topic with this reason.
    Rejected(Rejection),
}

/// One partition of the internal topic as an aggregate stage owns it: its stage and the offsets that tie
/// the stage to the topic. Every record before `next_offset` is reflected in the stage; the last durable
/// snapshot covers everything before `checkpointed`.
pub struct AggregatePartition {
    pub stage: AggregateStage,
    next_offset: i64,
    checkpointed: i64,
}

impl AggregatePartition {
    /// A partition gained at `first_offset` (the group's position): restored from `snapshot` if there is one,
    /// else empty from `first_offset`.
    pub fn start(
        mut stage: AggregateStage,
        snapshot: Option<&StageSnapshot>,
        first_offset: i64,
    ) -> Result<AggregatePartition, String> {
        let next_offset = match snapshot {
            Some(s) => {
                stage.restore(s)?;
                s.next_offset
            }
            None => first_offset,
        };
        Ok(AggregatePartition { stage, next_offset, checkpointed: next_offset })
    }

    pub fn next_offset(&self) -> i64 {
        self.next_offset
    }

    /// Takes the record at `offset` (its bytes as read from the topic), appending what it produced to `out`.
    pub fn on_record(&mut self, offset: i64, bytes: &[u8], out: &mut Vec<Output>) -> Step {
        if let Some(step) = self.position(offset) {
            return step;
        }
        match StageRecord::decode(bytes) {
            Ok(rec) => self.apply(offset, &rec, out),
            Err(_) => {
                self.next_offset = offset + 1;
                Step::Rejected(Rejection::BadStageRecord)
            }
        }
    }

    /// `on_record` for a record already decoded (replay, which never serialises its stage records).
    pub fn on_decoded(&mut self, offset: i64, rec: &StageRecord<'_>, out: &mut Vec<Output>) -> Step {
        self.position(offset).unwrap_or_else(|| self.apply(offset, rec, out))
    }

    fn position(&self, offset: i64) -> Option<Step> {
        match offset.cmp(&self.next_offset) {
            std::cmp::Ordering::Less => Some(Step::Skipped),
            std::cmp::Ordering::Equal => None,
            std::cmp::Ordering::Greater => Some(Step::Gap { from: self.next_offset }),
        }
    }

    fn apply(&mut self, offset: i64, rec: &StageRecord<'_>, out: &mut Vec<Output>) -> Step {
        self.next_offset = offset + 1;
        match self.stage.apply(rec, out) {
            Applied::UnknownEntity => Step::Rejected(Rejection::UnknownEntity),
            a => Step::Applied(a),
        }
    }

    /// The snapshot to make durable, if anything changed since the last one.
    pub fn checkpoint_due(&self) -> Option<StageSnapshot> {
        (self.next_offset != self.checkpointed).then(|| self.stage.snapshot(self.next_offset))
    }

    /// The snapshot up to `next_offset` is durable and that offset committed.
    pub fn checkpointed(&mut self, next_offset: i64) {
        self.checkpointed = next_offset;
    }
}

/// The snapshot a new owner restores, among those read from a state partition: the most advanced, since a
/// worker that lost the partition may append a stale snapshot after the new owner's (two at the same
/// offset are equal, the stage being deterministic; the later one is taken).
pub fn choose_snapshot(candidates: impl IntoIterator<Item = StageSnapshot>) -> Option<StageSnapshot> {
    candidates.into_iter().fold(None, |best: Option<StageSnapshot>, s| match best {
        Some(b) if b.next_offset > s.next_offset => Some(b),
        _ => Some(s),
    })
}

/// Whether the snapshot found near a state partition's end cannot be the newest, so the whole partition
/// must be scanned: every commit follows a durable snapshot at or after it, so a best snapshot behind the
/// group's resume offset (or none, past offset 0) means the newest records were missed.
pub fn needs_full_scan(best: Option<&StageSnapshot>, resume_at: i64) -> bool {
    best.map_or(resume_at > 0, |b| b.next_offset < resume_at)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sentiment::{Label, LabelThresholds, LexiconScorer, ScoreError, Scorer, Sentiment};
    use crate::stage::tests::{cfg, entities};
    use std::sync::Arc;

    fn stage() -> AggregateStage {
        AggregateStage::new(&entities(), &cfg()).unwrap()
    }

    fn post(entity: &str, t: Millis, off: i64, compound: f64) -> StageRecord<'static> {
        crate::stage::tests::rec(entity, off as u32, t, off, compound)
    }

    /// The internal topic's records: a quiet baseline, a burst of negative posts (an incident), ticks, and
    /// a score worker's re-delivery of records it had published before a crash.
    fn topic() -> Vec<Vec<u8>> {
        let mut v = Vec::new();
        let mut off = 0;
        for minute in 0..90i64 {
            let burst = (70..76).contains(&minute);
            for k in 0..if burst { 30 } else { 2 } {
                v.push(post("Acme", minute * 60_000 + k * 100, off, if burst { -0.8 } else { 0.3 }).encode());
                off += 1;
            }
            // The company answers during the burst and once after (responses, restored like the rest).
            if [71, 73, 79].contains(&minute) {
                let r = post("Acme", minute * 60_000 + 30_000, off, 0.0);
                let StageRecord::Post(p) = r else { unreachable!() };
                v.push(StageRecord::Post(ScoredPost { response: true, ..p }).encode());
                off += 1;
            }
            if minute % 10 == 0 {
                v.push(StageRecord::Tick { max_event_time: minute * 60_000 }.encode());
            }
        }
        let redelivered: Vec<Vec<u8>> = v[150..170].to_vec();
        v.extend(redelivered);
        v.push(b"{not a stage record".to_vec());
        v.push(post("Initech", 91 * 60_000, off, 0.1).encode());
        v
    }

    /// The machine over `records[from..]`, as a worker feeds it (gaps filled from the same records).
    fn feed(p: &mut AggregatePartition, records: &[Vec<u8>], from: usize, out: &mut Vec<Output>) -> Vec<Step> {
        let mut steps = Vec::new();
        for (o, r) in records.iter().enumerate().skip(from) {
            let mut step = p.on_record(o as i64, r, out);
            if let Step::Gap { from } = step {
                for (g, r) in records.iter().enumerate().take(o).skip(from as usize) {
                    steps.push(p.on_record(g as i64, r, out));
                }
                step = p.on_record(o as i64, r, out);
            }
            steps.push(step);
        }
        steps
    }

    fn whole() -> (Vec<Vec<u8>>, Vec<Output>, Vec<Step>) {
        let records = topic();
        let mut p = AggregatePartition::start(stage(), None, 0).unwrap();
        let mut out = Vec::new();
        let steps = feed(&mut p, &records, 0, &mut out);
        (records, out, steps)
    }

    #[test]
    fn every_record_is_applied_once_rejected_or_a_duplicate() {
        let (records, out, steps) = whole();
        assert!(out.iter().any(|o| matches!(o, Output::Spike(_))), "the stream must open an incident");
        assert_eq!(steps.len(), records.len());
        let count = |s: Step| steps.iter().filter(|x| **x == s).count();
        assert_eq!(count(Step::Applied(Applied::Duplicate)), 20, "the re-delivered records");
        assert_eq!(count(Step::Rejected(Rejection::BadStageRecord)), 1);
        assert_eq!(count(Step::Rejected(Rejection::UnknownEntity)), 1);
        assert_eq!(count(Step::Applied(Applied::Tick)), 9);
        assert_eq!(count(Step::Applied(Applied::Responded)), 3);
        let reasons: Vec<_> =
            out.iter().filter_map(|o| if let Output::Spike(e) = o { Some(e.reasons.clone()) } else { None }).collect();
        use crate::detect::Reason;
        assert!(reasons.iter().any(|r| r.contains(&Reason::Responded)), "{reasons:?}");
        assert!(reasons.iter().any(|r| r.contains(&Reason::ResponseOverdue)), "{reasons:?}");
        assert!(!steps.iter().any(|s| matches!(s, Step::Skipped | Step::Gap { .. })));
    }

    /// A new owner restores the snapshot taken at `cut` and the group resumes at `resume` (at or before the
    /// cut: a commit follows its snapshot; after it: the broker skipped records). Whatever the cut, the events
    /// before it plus those after the restore equal the uninterrupted run's, byte for byte.
    #[test]
    fn a_restore_at_every_cut_point_reproduces_the_uninterrupted_run() {
        let (records, whole, _) = whole();
        for cut in 0..=records.len() {
            let mut a = AggregatePartition::start(stage(), None, 0).unwrap();
            let mut out = Vec::new();
            feed(&mut a, &records[..cut], 0, &mut out);
            let snap = a.checkpoint_due();
            assert_eq!(snap.is_some(), cut > 0, "a snapshot is due once anything was applied");
            // Through JSON, as it travels through the state topic.
            let snap: Option<StageSnapshot> =
                snap.map(|s| serde_json::from_slice(&serde_json::to_vec(&s).unwrap()).unwrap());
            // Resuming past the snapshot (the Gap branch) needs a snapshot: without one the group's offset is
            // where the state starts.
            let past = if snap.is_some() { (cut + 5).min(records.len()) } else { cut };
            for resume in [cut.saturating_sub(7), cut, past] {
                let mut b = AggregatePartition::start(stage(), snap.as_ref(), resume as i64).unwrap();
                let mut after = out.clone();
                let steps = feed(&mut b, &records, resume, &mut after);
                assert_eq!(after, whole, "cut {cut}, resumed at {resume}");
                let skipped = steps.iter().filter(|s| **s == Step::Skipped).count();
                assert_eq!(skipped, cut.saturating_sub(resume), "records before the snapshot are skipped");
            }
        }
    }

    #[test]
    fn without_a_snapshot_the_state_starts_empty_at_the_groups_offset() {
        let (records, _, _) = whole();
        let mut p = AggregatePartition::start(stage(), None, 40).unwrap();
        assert_eq!(p.next_offset(), 40);
        assert!(p.checkpoint_due().is_none());
        assert_eq!(p.on_record(39, &records[39], &mut Vec::new()), Step::Skipped);
        assert_eq!(p.on_record(41, &records[41], &mut Vec::new()), Step::Gap { from: 40 });
        assert_eq!(p.next_offset(), 40, "a gap applies nothing");
        assert!(matches!(p.on_record(40, &records[40], &mut Vec::new()), Step::Applied(_)));
        let snap = p.checkpoint_due().unwrap();
        assert_eq!(snap.next_offset, 41);
        p.checkpointed(41);
        assert!(p.checkpoint_due().is_none(), "nothing new since the durable snapshot");
    }

    #[test]
    fn the_most_advanced_snapshot_wins_over_a_stale_one_appended_later() {
        let mut a = AggregatePartition::start(stage(), None, 0).unwrap();
        let records = topic();
        feed(&mut a, &records[..100], 0, &mut Vec::new());
        let newer = a.checkpoint_due().unwrap();
        let mut b = AggregatePartition::start(stage(), None, 0).unwrap();
        feed(&mut b, &records[..60], 0, &mut Vec::new());
        let stale = b.checkpoint_due().unwrap();
        let chosen = choose_snapshot([newer.clone(), stale.clone()]).unwrap();
        assert_eq!(chosen.next_offset, 100);
        assert_eq!(choose_snapshot([stale.clone()]).unwrap().next_offset, 60);
        assert!(choose_snapshot([]).is_none());
        // Found near the end: enough unless it is behind the group's resume offset.
        assert!(!needs_full_scan(Some(&newer), 100));
        assert!(needs_full_scan(Some(&stale), 100));
        assert!(needs_full_scan(None, 1));
        assert!(!needs_full_scan(None, 0));
    }

    #[test]
    fn resume_floors_drop_records_before_the_committed_offset_once() {
        let mut f = ResumeFloors::default();
        assert!(f.admit("posts", 0, 3));
        f.set("posts".into(), 0, 10);
        f.set("posts".into(), 0, 12);
        assert!(!f.admit("posts", 0, 11));
        assert!(f.admit("posts", 1, 0), "other partitions are not affected");
        assert!(f.admit("posts", 0, 12));
        assert!(f.admit("posts", 0, 5), "the floor is lifted by the first record past it");
    }

    #[test]
    fn resume_floors_start_a_partition_at_its_floor_once_and_forget_revoked_ones() {
        let mut f = ResumeFloors::default();
        f.set_all([("scored".to_string(), 0, 10), ("scored".to_string(), 1, 4), ("other".to_string(), 0, 99)]);
        assert_eq!(f.start("scored", 0, 7), 10, "a re-read from a batch start begins at the committed offset");
        assert_eq!(f.start("scored", 0, 7), 7, "the floor is lifted");
        assert_eq!(f.start("scored", 1, 6), 6, "a first record past the floor starts where it is");
        f.forget("other", 0);
        assert!(f.admit("other", 0, 0));
    }

    struct Failing;
    impl Scorer for Failing {
        fn name(&self) -> &'static str {
            "failing"
        }
        fn score_batch(&self, _: &[&str], _: &mut Vec<Sentiment>) -> Result<(), ScoreError> {
            Err(ScoreError::Backend("boom".into()))
        }
    }

    fn sources(payloads: &[&'static str]) -> Vec<SourceRecord<'static>> {
        payloads
            .iter()
            .enumerate()
            .map(|(i, p)| SourceRecord { topic: "posts", partition: 2, offset: 100 + i as i64, payload: p.as_bytes() })
            .collect()
    }

    const GOOD: &str = r#"{"id":"1","text":"acme and globex are terrible","created_at":"2026-03-04T10:00:00Z"}"#;
    const OTHER: &str = r#"{"id":"2","text":"nothing here","created_at":"2026-03-04T10:01:00Z"}"#;

    #[test]
    fn the_score_stage_keys_each_output_by_its_source_and_rejects_bad_records() {
        let st = ScoreStage::new(Arc::new(LexiconScorer::new(LabelThresholds::default())), &entities()).unwrap();
        let recs = sources(&[GOOD, "not json", OTHER]);
        let mut b = ScoreBatch::default();
        st.process(&Decoder::default(), &recs, &mut b);
        assert_eq!((b.matched, b.unmatched, b.skipped), (1, 1, 0));
        assert_eq!(
            b.rejected,
            vec![Rejected { record: 1, rejection: Rejection::NotJson, detail: b.rejected[0].detail.clone() }]
        );
        let out: Vec<(usize, String)> = b
            .records(&st)
            .map(|(ri, _, r)| match r {
                StageRecord::Post(p) => (ri, format!("{}#{}@{}/{}", p.entity, p.src, p.off, p.sub)),
                StageRecord::Tick { .. } => unreachable!(),
            })
            .collect();
        assert_eq!(out, vec![(0, "Acme#posts/2@100/0".into()), (0, "Globex#posts/2@100/0".into())]);
        assert_eq!(b.max_matched_time, Some(crate::time::parse_rfc3339("2026-03-04T10:00:00Z").unwrap()));
    }

    #[test]
    fn a_failing_backend_rejects_each_record_with_posts_once_and_publishes_nothing() {
        let st = ScoreStage::new(Arc::new(Failing), &entities()).unwrap();
        let recs = sources(&[GOOD, "not json", OTHER]);
        let mut b = ScoreBatch::default();
        st.process(&Decoder::default(), &recs, &mut b);
        let got: Vec<(usize, Rejection)> = b.rejected.iter().map(|r| (r.record, r.rejection)).collect();
        assert_eq!(got, vec![(0, Rejection::ScoreFailed), (1, Rejection::NotJson), (2, Rejection::ScoreFailed)]);
        assert_eq!(b.records(&st).count(), 0);
    }

    /// What replay does (decoded stage records straight into the machine) equals what the worker does
    /// (records encoded to the topic and decoded back), outputs and steps alike.
    #[test]
    fn the_decoded_path_equals_the_bytes_path() {
        let st = ScoreStage::new(Arc::new(LexiconScorer::new(LabelThresholds::default())), &entities()).unwrap();
        let lines: Vec<String> = (0..300)
            .map(|i| {
                let text = if (200..260).contains(&i) { "acme is awful, I hate acme" } else { "acme is fine" };
                format!(r#"{{"id":"{i}","text":"{text}","created_at":{}}}"#, 1_770_000_000_000i64 + i * 20_000)
            })
            .collect();
        let recs: Vec<SourceRecord> = lines
            .iter()
            .enumerate()
            .map(|(i, l)| SourceRecord { topic: "posts", partition: 0, offset: i as i64, payload: l.as_bytes() })
            .collect();
        let mut b = ScoreBatch::default();
        st.process(&Decoder::default(), &recs, &mut b);
        let (mut direct, mut bytes) = (
            AggregatePartition::start(stage(), None, 0).unwrap(),
            AggregatePartition::start(stage(), None, 0).unwrap(),
        );
        let (mut o1, mut o2) = (Vec::new(), Vec::new());
        for (i, (_, _, r)) in b.records(&st).enumerate() {
            let s1 = direct.on_decoded(i as i64, &r, &mut o1);
            let s2 = bytes.on_record(i as i64, &r.encode(), &mut o2);
            assert_eq!(s1, s2);
        }
        assert_eq!(o1, o2);
        assert_eq!(direct.checkpoint_due(), bytes.checkpoint_due());
    }

    #[test]
    fn a_post_by_an_own_account_is_a_response_record_never_a_mention() {
        let stage = ScoreStage::new(Arc::new(LexiconScorer::new(LabelThresholds::default())), &entities()).unwrap();
        let post = |id: &str, text: &str, author: &str| Post {
            id: id.into(),
            text: text.into(),
            created_at: 0,
            author: Some(author.into()),
            followers: None,
            lang: None,
            url: None,
            author_url: None,
            platform: None,
        };
        let posts = vec![
            post("1", "acme is terrible", "ann"),
            // Naming itself is not a mention; naming no entity at all it still reaches Acme's aggregator.
            post("2", "Sorry about your bags, Acme is on it", "ACMEHELP"),
            post("3", "We are looking into it", "@acmehelp"),
            // Naming another entity, that one is mentioned as usual.
            post("4", "unlike globex, acme answers", "AcmeHelp"),
            post("5", "nothing here", "bob"),
        ];
        let mut batch = ScoreBatch::default();
        stage.process_posts("posts", 0, 0, posts, &mut batch);
        let got: Vec<(usize, EntityId, bool)> = batch.scored.iter().map(|s| (s.post, s.entity, s.response)).collect();
        assert_eq!(got, vec![(0, 0, false), (1, 0, true), (2, 0, true), (3, 0, true), (3, 1, false)]);
        assert!(batch.scored.iter().filter(|s| s.response).all(|s| s.sentiment.label == Label::Unscored));
        // Posts 1 and 4 are mentions, 2 and 3 only responses, 5 matches nothing.
        assert_eq!((batch.matched, batch.unmatched, batch.responses), (2, 1, 3));
        // The response travels as a record kind of its own and is applied as a response.
        let mut agg = AggregateStage::new(&entities(), &cfg()).unwrap();
        for (_, _, rec) in batch.records(&stage) {
            let bytes = rec.encode();
            let back = StageRecord::decode(&bytes).unwrap();
            assert_eq!(back, rec);
            let response = matches!(&rec, StageRecord::Post(p) if p.response);
            // A kind byte of its own (0xB3; a post is 0xB1), which older workers dead-letter as unknown.
            assert_eq!(bytes[0], if response { 0xB3 } else { 0xB1 });
            // JSON (as older workers wrote records) keeps the mark too.
            assert_eq!(StageRecord::decode(&serde_json::to_vec(&rec).unwrap()).unwrap(), rec);
            let applied = agg.apply(&back, &mut Vec::new());
            assert_eq!(applied, if response { Applied::Responded } else { Applied::Aggregated });
        }
        assert_eq!((agg.aggregator.counters.aggregated, agg.aggregator.counters.responses), (2, 3));
    }
}
