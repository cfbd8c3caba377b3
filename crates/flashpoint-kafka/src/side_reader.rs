//! The one group-less reader: everything a stage reads outside its group's position (snapshots, the
//! records of a gap, resume probes) goes through `SideReader::read`, which assigns one partition from an
//! offset, polls until the caller has what it needs or a deadline passes, and always unassigns.

use crate::client_config::{base_config, QuietEof};
use crate::config::KafkaConfig;
use crate::error::WorkerError;
use crate::tansu;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::error::KafkaError;
use rdkafka::message::Message;
use rdkafka::topic_partition_list::{Offset, TopicPartitionList};
use std::ops::ControlFlow;
use std::time::{Duration, Instant};
use tracing::warn;

pub struct SideReader {
    c: BaseConsumer<QuietEof>,
}

/// What a read delivers to its caller.
pub enum Event<'a> {
    Record(i64, &'a [u8]),
    /// The broker reported the partition's end (on Tansu it can come early: see `tansu`).
    End,
}

/// What a fetch from an offset delivers first.
#[derive(Debug, PartialEq, Eq)]
pub enum First {
    Record(i64),
    End,
    /// Nothing within the probe's wait: Tansu's answer from inside the last batch.
    Nothing,
}

impl SideReader {
    /// `name` tells its group id apart (it never joins the group; librdkafka wants one).
    pub fn new(cfg: &KafkaConfig, name: &str) -> Result<SideReader, WorkerError> {
        let id = format!("{}-{name}", cfg.group_id);
        let c = base_config(
            cfg,
            &[
                ("group.id", &id),
                ("enable.auto.commit", "false"),
                ("enable.partition.eof", "true"),
                // An empty partition should answer "end of partition" at once, not after a long poll.
                ("fetch.wait.max.ms", "10"),
            ],
        )?;
        Ok(SideReader { c: c.create_with_context(QuietEof)? })
    }

    /// Reads `topic`/`p` from `from`, handing each event to `f` until it breaks (true) or `wait` passes
    /// (false).
    pub fn read(
        &self,
        topic: &str,
        p: i32,
        from: i64,
        wait: Duration,
        mut f: impl FnMut(Event<'_>) -> ControlFlow<()>,
    ) -> Result<bool, WorkerError> {
        let mut tpl = TopicPartitionList::new();
        tpl.add_partition_offset(topic, p, Offset::Offset(from))?;
        self.c.assign(&tpl)?;
        let deadline = Instant::now() + wait;
        let done = loop {
            let Some(left) = deadline.checked_duration_since(Instant::now()) else { break false };
            let flow = match self.c.poll(left.min(Duration::from_millis(200))) {
                Some(Ok(m)) if m.topic() == topic && m.partition() == p => {
                    f(Event::Record(m.offset(), m.payload().unwrap_or_default()))
                }
                Some(Err(KafkaError::PartitionEOF(q))) if q == p => f(Event::End),
                Some(Err(KafkaError::PartitionEOF(_))) | Some(Ok(_)) | None => ControlFlow::Continue(()),
                Some(Err(e)) => {
                    warn!(error = %e, topic, partition = p, "side reader error");
                    ControlFlow::Continue(())
                }
            };
            if flow.is_break() {
                break true;
            }
        };
        self.c.unassign()?;
        Ok(done)
    }

    /// The records of `topic`/`p` with offsets in `[from, to)`. They exist (the stage consumer has already
    /// delivered `to`), so a hole in what arrives is `tansu::BATCH_FETCH`: read again from further back.
    pub fn read_range(&self, topic: &str, p: i32, from: i64, to: i64) -> Result<Vec<(i64, Vec<u8>)>, WorkerError> {
        let mut back = 0i64;
        loop {
            let start = (from - back).max(0);
            let (mut out, mut next, mut hole) = (Vec::new(), from, false);
            let done = from >= to
                || self.read(topic, p, start, Duration::from_secs(60), |ev| match ev {
                    Event::Record(o, _) if o > next => {
                        hole = true;
                        ControlFlow::Break(())
                    }
                    Event::Record(o, b) => {
                        if o == next {
                            out.push((o, b.to_vec()));
                            next = o + 1;
                        }
                        if next >= to {
                            ControlFlow::Break(())
                        } else {
                            ControlFlow::Continue(())
                        }
                    }
                    // Tansu's can come early: the records are known to exist.
                    Event::End => ControlFlow::Continue(()),
                })?;
            if !done {
                return Err(WorkerError::Internal(format!(
                    "timed out re-reading {topic}/{p} from {from} to {to} (at {next})"
                )));
            }
            if !hole {
                return Ok(out);
            }
            if start == 0 {
                return Err(WorkerError::Internal(format!("{topic}/{p}: records from {next} on cannot be read")));
            }
            back = tansu::step_back(back);
            warn!(
                partition = p,
                from = start,
                missing = next,
                "the broker skipped records; reading again from further back"
            );
        }
    }

    /// Every record of `topic`/`p` from `from` to its end, where the end is what the fetch reports and at
    /// least `hi` (the high watermark seen before, possibly low on Tansu: `tansu::LIST_OFFSETS`).
    pub fn scan(
        &self,
        topic: &str,
        p: i32,
        from: i64,
        hi: i64,
        mut f: impl FnMut(i64, &[u8]),
    ) -> Result<(), WorkerError> {
        // An end-of-partition event left from an earlier assignment must not end the scan before the newest
        // record (that chose an older snapshot than the committed offset's): it ends only past `hi`.
        let mut last = from - 1;
        let done = self.read(topic, p, from, Duration::from_secs(30), |ev| match ev {
            Event::Record(o, b) => {
                last = last.max(o);
                f(o, b);
                ControlFlow::Continue(())
            }
            Event::End if last >= hi - 1 => ControlFlow::Break(()),
            Event::End => ControlFlow::Continue(()),
        })?;
        if !done {
            return Err(WorkerError::Internal(format!("timed out reading {topic}/{p} from {from}")));
        }
        Ok(())
    }

    /// What a fetch from `from` delivers first within half a second (a broker that is merely slow only
    /// makes a resume point earlier, which costs dropped re-reads, not records).
    pub fn first(&self, topic: &str, p: i32, from: i64) -> Result<First, WorkerError> {
        let mut first = First::Nothing;
        self.read(topic, p, from, Duration::from_millis(500), |ev| {
            first = match ev {
                Event::Record(o, _) => First::Record(o),
                Event::End => First::End,
            };
            ControlFlow::Break(())
        })?;
        Ok(first)
    }

    pub fn watermarks(&self, topic: &str, p: i32) -> Result<(i64, i64), WorkerError> {
        Ok(self.c.fetch_watermarks(topic, p, Duration::from_secs(10))?)
    }
}
