//! Every behaviour of Tansu 0.6.0 (the Kafka-compatible broker of the tests and the fault runs) that the
//! worker works around, where it lives in Tansu, and what the workaround costs against Apache Kafka.
//!
//! - `BATCH_FETCH`: a fetch from an offset inside a producer batch returns only the batches *after* it.
//!   tansu-storage 0.6.0, src/dynostore.rs, `Storage::fetch` (~line 1040): batches are selected with
//!   `offsets.split_off(&offset)` over their base offsets. Kafka returns the whole batch and the client drops
//!   the records before the offset. Workarounds: a group resuming at a committed offset is re-assigned from
//!   the start of the batch holding it (`resume_starts` here, both stages) and drops what lies before (the
//!   score stage through `flashpoint_core::partition::ResumeFloors`, the aggregate stage by starting its
//!   `AggregatePartition` at the committed offset, which then skips the records below it); without it a
//!   group resuming inside a partition's last batch receives nothing at all; a gap re-read that sees a hole steps back
//!   (`SideReader::read_range`). Cost on Kafka: one half-second probe per assigned partition.
//! - `LIST_OFFSETS`: ListOffsets(latest) answers the base offset of the newest batch plus one, not the high
//!   watermark. tansu-storage 0.6.0, src/dynostore.rs, `list_offsets` (~line 1273, `ListOffset::Latest =>
//!   offset + 1`). So snapshots are read to the end a fetch reports (`SideReader::scan`), the watermark is
//!   only where to start, and a snapshot behind the group's offset triggers a full scan
//!   (`flashpoint_core::partition::needs_full_scan`). Test readers end by end-of-partition too.
//! - `EARLY_EOF`: an end-of-partition event can arrive before records known to exist (seen with a reused
//!   group-less consumer); `SideReader::read_range` ignores it and `scan` ends only past the watermark.
//! - `DEAD_MEMBER`: a member that stops heart-beating is expired inside `Inner<Formed>::heartbeat`
//!   (tansu-broker 0.6.0, src/coordinator/group/administrator.rs, `missed_heartbeat`, ~line 2089) but the
//!   group stays Formed, so a survivor's re-join gets the previous assignment back; a new member joining
//!   starts a real rebalance. The tests and the fault driver restart a killed worker, as a supervisor would.

use crate::side_reader::{First, SideReader};
use crate::Stage;
use rdkafka::consumer::{BaseConsumer, Consumer, ConsumerContext};
use rdkafka::topic_partition_list::{Offset, TopicPartitionList};
use std::time::Duration;
use tracing::{info, warn};

/// How far back the next attempt starts after stepping back `back` records (large steps: records re-read
/// before the wanted offset are only dropped, while each fruitless attempt costs a fetch).
pub fn step_back(back: i64) -> i64 {
    (back * 4).max(64)
}

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
