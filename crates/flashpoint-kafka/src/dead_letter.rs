//! Dead-letter records: the original bytes, plus where they came from and why they were not processed.
//!
//! Everything is in headers so the payload stays byte-identical to the input (a fixed record can be
//! re-published as is), unless the record is too large for the dead-letter topic itself: then the payload is
//! its head, `flashpoint.truncated` says so and `flashpoint.size` keeps the original size. Reasons are a
//! fixed set, `flashpoint_core::reject::Rejection`: they are also the `reason` label of
//! `flashpoint_dead_letter_records_total`.

use crate::role::Stage;
use flashpoint_core::reject::Rejection;
use rdkafka::message::{Header, OwnedHeaders};

pub const H_REASON: &str = "flashpoint.reason";
pub const H_DETAIL: &str = "flashpoint.detail";
pub const H_STAGE: &str = "flashpoint.stage";
pub const H_TOPIC: &str = "flashpoint.source.topic";
pub const H_PARTITION: &str = "flashpoint.source.partition";
pub const H_OFFSET: &str = "flashpoint.source.offset";
/// Size in bytes of the record the dead letter stands for (its payload may be only the head of it).
pub const H_SIZE: &str = "flashpoint.size";
pub const H_TRUNCATED: &str = "flashpoint.truncated";

/// Room kept for the record's framing and headers when a payload is cut to fit `message.max.bytes`
/// (librdkafka counts its v2 message overhead, key and headers against the limit).
const FRAME_ALLOWANCE: usize = 2048;
/// Longest key kept when a dead letter has to be cut: keys are routing hints, the payload is the evidence.
const KEY_HEAD: usize = 1024;

/// Longest detail kept: enough for a parse error, not a copy of a huge record.
const DETAIL_CHARS: usize = 512;

pub struct DeadLetter {
    pub reason: Rejection,
    pub detail: String,
    pub stage: Stage,
    pub key: Option<Vec<u8>>,
    pub payload: Vec<u8>,
    pub topic: String,
    pub partition: i32,
    pub offset: i64,
}

/// A dead letter cut to what the dead-letter topic accepts: headers, key and payload to send.
pub struct Fitted<'a> {
    pub headers: OwnedHeaders,
    pub key: Option<&'a [u8]>,
    pub payload: &'a [u8],
    pub truncated: bool,
}

impl DeadLetter {
    /// The record as it will be sent when at most `limit` bytes (the producer's `message.max.bytes`) may
    /// go out: whole if it fits, else the head of its key and payload.
    pub fn fit(&self, limit: usize) -> Fitted<'_> {
        let detail = escape(&self.detail);
        let fixed = [H_REASON, H_DETAIL, H_STAGE, H_TOPIC, H_PARTITION, H_OFFSET, H_SIZE, H_TRUNCATED]
            .iter()
            .map(|h| h.len() + 8)
            .sum::<usize>()
            + self.reason.reason().len()
            + detail.len()
            + self.topic.len()
            + 64;
        let key_len = self.key.as_ref().map_or(0, Vec::len);
        let whole = fixed + key_len + self.payload.len() + FRAME_ALLOWANCE;
        let (key, payload, truncated) = if whole <= limit {
            (self.key.as_deref(), &self.payload[..], false)
        } else {
            let key = self.key.as_deref().map(|k| &k[..k.len().min(KEY_HEAD)]);
            let room = limit.saturating_sub(fixed + key.map_or(0, <[u8]>::len) + FRAME_ALLOWANCE);
            (key, &self.payload[..self.payload.len().min(room)], true)
        };
        let (partition, offset, size) =
            (self.partition.to_string(), self.offset.to_string(), self.payload.len().to_string());
        let headers = OwnedHeaders::new_with_capacity(8)
            .insert(Header { key: H_REASON, value: Some(self.reason.reason()) })
            .insert(Header { key: H_DETAIL, value: Some(&detail) })
            .insert(Header { key: H_STAGE, value: Some(self.stage.as_str()) })
            .insert(Header { key: H_TOPIC, value: Some(&self.topic) })
            .insert(Header { key: H_PARTITION, value: Some(&partition) })
            .insert(Header { key: H_OFFSET, value: Some(&offset) })
            .insert(Header { key: H_SIZE, value: Some(&size) })
            .insert(Header { key: H_TRUNCATED, value: Some(if truncated { "true" } else { "false" }) });
        Fitted { headers, key, payload, truncated }
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
            reason: Rejection::NotJson,
            detail: "bad\n\x1b[31mFAKE LOG LINE\u{202e}".into(),
            stage: Stage::Score,
            key: None,
            payload: b"{".to_vec(),
            topic: "posts".into(),
            partition: 3,
            offset: 42,
        };
        let f = d.fit(1_000_000);
        assert!(!f.truncated && f.payload == b"{");
        let h = f.headers;
        let get = |k: &str| {
            h.iter().find(|x| x.key == k).and_then(|x| x.value).map(|v| String::from_utf8(v.to_vec()).unwrap())
        };
        assert_eq!(get(H_REASON).as_deref(), Some("not_json"));
        assert_eq!(get(H_PARTITION).as_deref(), Some("3"));
        assert_eq!(get(H_OFFSET).as_deref(), Some("42"));
        let detail = get(H_DETAIL).unwrap();
        assert!(!detail.contains('\n') && !detail.contains('\x1b') && !detail.contains('\u{202e}'), "{detail}");
        assert!(detail.contains("\\n") && detail.contains("FAKE LOG LINE"));
        assert_eq!(get(H_SIZE).as_deref(), Some("1"));
        assert_eq!(escape(&"x".repeat(10_000)).chars().count(), DETAIL_CHARS + 1);
    }

    #[test]
    fn a_record_larger_than_the_limit_is_cut_to_its_head_and_says_so() {
        let d = DeadLetter {
            reason: Rejection::Oversize,
            detail: "record of 1071070 bytes".into(),
            stage: Stage::Score,
            key: Some(vec![b'k'; 5000]),
            payload: vec![b'a'; 1_071_070],
            topic: "posts".into(),
            partition: 0,
            offset: 101,
        };
        let f = d.fit(1_000_000);
        assert!(f.truncated);
        assert_eq!(f.key.map(<[u8]>::len), Some(KEY_HEAD));
        let headers_len: usize =
            f.headers.iter().map(|h| h.key.len() + h.value.map_or(0, <[u8]>::len) + 8).sum::<usize>();
        let total = f.payload.len() + KEY_HEAD + headers_len;
        assert!(total + 1024 <= 1_000_000 && total > 990_000, "{total}");
        let h = f.headers;
        let get = |k: &str| h.iter().find(|x| x.key == k).and_then(|x| x.value).map(|v| v.to_vec());
        assert_eq!(get(H_SIZE), Some(b"1071070".to_vec()));
        assert_eq!(get(H_TRUNCATED), Some(b"true".to_vec()));
        assert!(d.payload.starts_with(f.payload));
    }
}
