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
}
