//! Dead-letter records: the original bytes, plus where they came from and why they were not processed.
//!
//! Everything is in headers so the payload stays byte-identical to the input (a fixed record can be
//! re-published as is). Reasons are a fixed set: they are also the `reason` label of
//! `flashpoint_dead_letter_records_total`.

use rdkafka::message::{Header, OwnedHeaders};

/// Every reason a record can be dead-lettered for.
pub const REASONS: [&str; 12] = [
    // The decoder's reasons (`DecodeError::reason`).
    "oversize",
    "not_utf8",
    "not_json",
    "no_text",
    "no_id",
    "no_time",
    "bad_time",
    // The scoring backend failed on the batch holding the record.
    "score_failed",
    // The aggregator's diverted posts.
    "late",
    "too_far_ahead",
    // Internal-topic records this version cannot read, or for entities missing from this watchlist.
    "bad_stage_record",
    "unknown_entity",
];

pub const H_REASON: &str = "flashpoint.reason";
pub const H_DETAIL: &str = "flashpoint.detail";
pub const H_STAGE: &str = "flashpoint.stage";
pub const H_TOPIC: &str = "flashpoint.source.topic";
pub const H_PARTITION: &str = "flashpoint.source.partition";
pub const H_OFFSET: &str = "flashpoint.source.offset";

/// Longest detail kept: enough for a parse error, not a copy of a huge record.
const DETAIL_CHARS: usize = 512;

pub struct DeadLetter {
    pub reason: &'static str,
    pub detail: String,
    pub stage: &'static str,
    pub key: Option<Vec<u8>>,
    pub payload: Vec<u8>,
    pub topic: String,
    pub partition: i32,
    pub offset: i64,
}

impl DeadLetter {
    pub fn headers(&self) -> OwnedHeaders {
        let partition = self.partition.to_string();
        let offset = self.offset.to_string();
        let detail = escape(&self.detail);
        OwnedHeaders::new_with_capacity(6)
            .insert(Header { key: H_REASON, value: Some(self.reason) })
            .insert(Header { key: H_DETAIL, value: Some(&detail) })
            .insert(Header { key: H_STAGE, value: Some(self.stage) })
            .insert(Header { key: H_TOPIC, value: Some(&self.topic) })
            .insert(Header { key: H_PARTITION, value: Some(&partition) })
            .insert(Header { key: H_OFFSET, value: Some(&offset) })
    }
}

/// Control characters escaped and length capped: a detail may quote the hostile record, and headers end up
/// in terminals and log lines.
pub fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len().min(DETAIL_CHARS));
    for (i, c) in s.chars().enumerate() {
        if i == DETAIL_CHARS {
            out.push('…');
            break;
        }
        if c.is_control() || matches!(c, '\u{200b}'..='\u{200f}' | '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}') {
            out.extend(c.escape_default());
        } else {
            out.push(c);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use rdkafka::message::Headers;

    #[test]
    fn headers_carry_source_and_reason_with_escaped_detail() {
        let d = DeadLetter {
            reason: "not_json",
            detail: "bad\n\x1b[31mFAKE LOG LINE\u{202e}".into(),
            stage: "score",
            key: None,
            payload: b"{".to_vec(),
            topic: "posts".into(),
            partition: 3,
            offset: 42,
        };
        let h = d.headers();
        let get = |k: &str| {
            h.iter().find(|x| x.key == k).and_then(|x| x.value).map(|v| String::from_utf8(v.to_vec()).unwrap())
        };
        assert_eq!(get(H_REASON).as_deref(), Some("not_json"));
        assert_eq!(get(H_PARTITION).as_deref(), Some("3"));
        assert_eq!(get(H_OFFSET).as_deref(), Some("42"));
        let detail = get(H_DETAIL).unwrap();
        assert!(!detail.contains('\n') && !detail.contains('\x1b') && !detail.contains('\u{202e}'), "{detail}");
        assert!(detail.contains("\\n") && detail.contains("FAKE LOG LINE"));
        assert_eq!(escape(&"x".repeat(10_000)).chars().count(), DETAIL_CHARS + 1);
    }
}
