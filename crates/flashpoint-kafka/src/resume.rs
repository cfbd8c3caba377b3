//! The resume probe: where a group member's assigned partition must really start so that a broker serving
//! fetches from batch starts only (`tansu::BATCH_FETCH`) still delivers the committed offset.

use crate::role::Stage;
use crate::side_reader::{First, SideReader};
use crate::tansu::step_back;
use rdkafka::consumer::{BaseConsumer, Consumer, ConsumerContext};
use rdkafka::topic_partition_list::{Offset, TopicPartitionList};
use std::time::Duration;
use tracing::{info, warn};

/// The offset from which `topic`/`p` delivers offset `at`: `at` itself when the broker serves a fetch from it
/// (Kafka always does; so does Tansu at a batch start or the end of the partition), else the nearest earlier
/// offset that does (`BATCH_FETCH`). Falls back to `at` (with a warning) if none is found.
pub fn batch_start(probe: &SideReader, topic: &str, p: i32, at: i64) -> i64 {
    let mut back = 0i64;
    loop {
        let from = (at - back).max(0);
        match probe.first(topic, p, from) {
            Ok(First::Record(r)) if r <= at => return from,
            Ok(First::End) if from == at => return at,
            Ok(_) if from > 0 => back = step_back(back),
            Ok(_) => {
                warn!(topic, partition = p, at, "no fetch position delivers the committed offset; resuming there");
                return at;
            }
            Err(e) => {
                warn!(topic, partition = p, at, error = %e, "resume probe failed; resuming at the committed offset");
                return at;
            }
        }
    }
}

/// Re-assigns the partitions of `assigned` whose committed offset lies inside a broker batch from the
/// start of that batch (`BATCH_FETCH`); returns their floors `(topic, partition, committed offset)`, below
/// which the stage must drop what it reads.
pub fn resume_starts<C: ConsumerContext>(
    stage: Stage,
    c: &BaseConsumer<C>,
    probe: &SideReader,
    assigned: &TopicPartitionList,
) -> Vec<(String, i32, i64)> {
    let stage = stage.as_str();
    let committed = match c.committed_offsets(assigned.clone(), Duration::from_secs(10)) {
        Ok(t) => t,
        Err(e) => {
            warn!(stage, error = %e, "could not read committed offsets to check the resume points");
            return Vec::new();
        }
    };
    let (mut tpl, mut floors) = (TopicPartitionList::new(), Vec::new());
    for e in committed.elements() {
        let (topic, p) = (e.topic(), e.partition());
        let at = match e.offset() {
            Offset::Offset(o) if o > 0 => {
                let start = batch_start(probe, topic, p, o);
                if start < o {
                    info!(
                        stage,
                        topic,
                        partition = p,
                        committed = o,
                        from = start,
                        "resuming from the start of the broker batch holding the committed offset"
                    );
                    floors.push((topic.to_string(), p, o));
                }
                Offset::Offset(start)
            }
            other => other,
        };
        if let Err(e) = tpl.add_partition_offset(topic, p, at) {
            warn!(stage, error = %e, "resume check skipped");
            return Vec::new();
        }
    }
    // Replaces the assignment just made, before the stage has received anything from it.
    if !floors.is_empty() {
        if let Err(e) = c.assign(&tpl) {
            warn!(stage, error = %e, "could not re-assign from the batch starts; records may be skipped");
            return Vec::new();
        }
    }
    floors
}
