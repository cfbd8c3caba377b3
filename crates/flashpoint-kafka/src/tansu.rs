//! Every behaviour of Tansu 0.6.0 (the Kafka-compatible broker of the tests and the fault runs) that the
//! worker works around, where it lives in Tansu, and what the workaround costs against Apache Kafka.
//!
//! - `BATCH_FETCH`: a fetch from an offset inside a producer batch returns only the batches *after* it.
//!   tansu-storage 0.6.0, src/dynostore.rs, `Storage::fetch` (~line 1040): batches are selected with
//!   `offsets.split_off(&offset)` over their base offsets. Kafka returns the whole batch and the client drops
//!   the records before the offset. Workarounds: a group resuming at a committed offset is re-assigned from
//!   the start of the batch holding it (`resume::resume_starts`, every stage) and drops what lies before (the
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

/// How far back the next attempt starts after stepping back `back` records (large steps: records re-read
/// before the wanted offset are only dropped, while each fruitless attempt costs a fetch).
pub fn step_back(back: i64) -> i64 {
    (back * 4).max(64)
}
