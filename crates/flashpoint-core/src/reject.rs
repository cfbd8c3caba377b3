//! Why a record or post was not processed: the one set of reasons for every dead letter.
//!
//! A leaf module (it imports nothing of the crate), so the decoder, the aggregator and the worker's machines
//! can all name a reason without depending on each other. Each reason has one stable, low-cardinality name,
//! used alike as the dead-letter `reason` (Kafka header, replay's dead-letter JSON, diverted posts) and as the
//! `reason` label of `flashpoint_dead_letter_records_total`.

use serde::{Deserialize, Serialize};

/// Why a record was not processed: the dead-letter reason, the replay dead-letter `reason` and the
/// `reason` label of `flashpoint_dead_letter_records_total` are all `Rejection::reason`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Rejection {
    Oversize,
    NotUtf8,
    NotJson,
    NoText,
    NoId,
    NoTime,
    BadTime,
    /// The scoring backend failed on the batch holding the record.
    ScoreFailed,
    /// Posts the aggregator diverted (behind the watermark, or implausibly far ahead of it).
    Late,
    TooFarAhead,
    /// An internal-topic record this version cannot read.
    BadStageRecord,
    /// An internal-topic record for an entity missing from this worker's watchlist.
    UnknownEntity,
    /// An output larger than the producer or the broker accepts.
    OutputTooLarge,
    /// A spikes-topic record the notify stage cannot read as a spike event (valid JSON, wrong shape).
    NotSpikeEvent,
    /// A notification a channel refused for good, or gave up on (the notify stage's delivery dead letters).
    NotificationFailed,
}

impl Rejection {
    pub const ALL: [Rejection; 15] = [
        Rejection::Oversize,
        Rejection::NotUtf8,
        Rejection::NotJson,
        Rejection::NoText,
        Rejection::NoId,
        Rejection::NoTime,
        Rejection::BadTime,
        Rejection::ScoreFailed,
        Rejection::Late,
        Rejection::TooFarAhead,
        Rejection::BadStageRecord,
        Rejection::UnknownEntity,
        Rejection::OutputTooLarge,
        Rejection::NotSpikeEvent,
        Rejection::NotificationFailed,
    ];

    /// The stable, low-cardinality name (headers, metric labels, replay's dead-letter JSON).
    pub fn reason(self) -> &'static str {
        match self {
            Rejection::Oversize => "oversize",
            Rejection::NotUtf8 => "not_utf8",
            Rejection::NotJson => "not_json",
            Rejection::NoText => "no_text",
            Rejection::NoId => "no_id",
            Rejection::NoTime => "no_time",
            Rejection::BadTime => "bad_time",
            Rejection::ScoreFailed => "score_failed",
            Rejection::Late => "late",
            Rejection::TooFarAhead => "too_far_ahead",
            Rejection::BadStageRecord => "bad_stage_record",
            Rejection::UnknownEntity => "unknown_entity",
            Rejection::OutputTooLarge => "output_too_large",
            Rejection::NotSpikeEvent => "not_spike_event",
            Rejection::NotificationFailed => "notification_failed",
        }
    }
}

/// A record that was not processed, as a file sink writes it (one JSON line): the one dead-letter record of
/// `flashpoint replay` and `flashpoint notify`'s input. The Kafka sink writes the same fields its own way
/// (headers for the reason, detail and source position; the original bytes as the payload).
#[derive(Debug, Serialize)]
pub struct DeadLetter<'a> {
    // Fields in the order of their names: the file format's keys are sorted, as they were when this was a map.
    /// What was wrong, for a person.
    #[serde(rename = "error")]
    pub detail: &'a str,
    /// The record's position in its input: line 1 is the first.
    pub line: u64,
    pub reason: Rejection,
    /// The start of the original record (at most `DeadLetter::HEAD_BYTES`, invalid UTF-8 replaced): enough to
    /// find and fix it, never a second copy of a huge record.
    pub record: std::borrow::Cow<'a, str>,
}

impl<'a> DeadLetter<'a> {
    pub const HEAD_BYTES: usize = 64 * 1024;

    pub fn new(reason: Rejection, detail: &'a str, line: u64, original: &'a [u8]) -> DeadLetter<'a> {
        let head = &original[..original.len().min(Self::HEAD_BYTES)];
        DeadLetter { reason, detail, line, record: String::from_utf8_lossy(head) }
    }

    /// The one file writer: a JSON line, made safe for terminals and log readers (`sanitize`), since the
    /// record is untrusted and the sink may be stderr.
    pub fn write_line(&self, out: &mut dyn std::io::Write) -> std::io::Result<()> {
        crate::sanitize::write_json_line(out, self)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_rejection_has_one_distinct_reason_and_serialises_as_it() {
        let mut names: Vec<&str> = Rejection::ALL.iter().map(|r| r.reason()).collect();
        names.sort();
        names.dedup();
        assert_eq!(names.len(), Rejection::ALL.len());
        for r in Rejection::ALL {
            assert_eq!(serde_json::to_string(&r).unwrap(), format!("\"{}\"", r.reason()));
        }
    }

    #[test]
    fn a_dead_letter_line_holds_the_reason_detail_position_and_head_inert() {
        let big = [b"{\"text\":\"\x1b[31m".as_slice(), &vec![b'x'; DeadLetter::HEAD_BYTES], b"\xff"].concat();
        let mut out = Vec::new();
        DeadLetter::new(Rejection::NotJson, "record is not valid JSON", 7, &big).write_line(&mut out).unwrap();
        let line = String::from_utf8(out).unwrap();
        assert!(line.ends_with('\n') && !line.contains('\x1b'), "control characters escaped");
        let v: serde_json::Value = serde_json::from_str(&line).unwrap();
        assert_eq!(
            (v["reason"].as_str(), v["error"].as_str(), v["line"].as_u64()),
            (Some("not_json"), Some("record is not valid JSON"), Some(7))
        );
        assert_eq!(v["record"].as_str().unwrap().len(), DeadLetter::HEAD_BYTES, "the head only");
        assert_eq!(v.as_object().unwrap().keys().collect::<Vec<_>>(), ["error", "line", "reason", "record"]);
    }
}
