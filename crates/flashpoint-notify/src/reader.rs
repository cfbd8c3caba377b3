//! The one spike-event reader: what `flashpoint notify` (a line) and the Kafka notify stage (a record) do with
//! each input record before the router sees it. Bytes in; out comes an event, a dead letter to re-send, or a
//! rejection with the core's reason (`not_utf8`, `not_json`, `not_spike_event`), which the caller dead-letters
//! and counts the same way whatever the input. [`crate::Engine::read`] is the entry point.

use crate::message::{Input, NoticeKind, Position};
use flashpoint_core::event::SpikeEvent;
use flashpoint_core::partition::Rejection;
use std::sync::Arc;

/// Why a record is not read; `detail` is safe to log (no record content beyond a sanitised excerpt).
#[derive(Clone, Debug, PartialEq)]
pub struct InputRejection {
    pub reason: Rejection,
    pub detail: String,
}

/// A delivery dead letter read back from `--dead-letter` output: its events, to be re-sent as they were.
#[derive(Clone, Debug)]
pub struct Resend {
    pub channel: String,
    pub route: String,
    pub digest: bool,
    pub inputs: Vec<Input>,
    pub notices: Vec<NoticeKind>,
}

#[derive(Clone, Debug)]
pub enum Record {
    Event(Input),
    Resend(Resend),
}

/// Parses one spike-event JSON line. Lenient about fields it does not use (newer producers may add some), strict
/// about the ones it does. The line is kept as it came for the generic webhook.
pub fn parse_event(line: &str, position: Position) -> Result<Input, String> {
    let event: SpikeEvent = serde_json::from_str(line).map_err(|e| format!("not a spike event: {e}"))?;
    if !event.schema.starts_with("flashpoint.spike.") {
        return Err(format!(
            "schema {:?} is not a flashpoint spike event",
            flashpoint_core::sanitize::for_log_truncated(&event.schema, 60)
        ));
    }
    Ok(Input { position, event: Arc::new(event), raw: Arc::from(line.trim_end()) })
}

#[derive(serde::Deserialize)]
struct DeadLetterLine {
    source: String,
    channel: String,
    route: String,
    message: String,
    events: Vec<serde_json::Value>,
    #[serde(default)]
    notices: Vec<NoticeKind>,
}

/// Classifies one record.
pub fn classify(payload: &[u8], pos: Position) -> Result<Record, InputRejection> {
    let reject = |reason, detail: String| InputRejection { reason, detail };
    let line = std::str::from_utf8(payload)
        .map_err(|e| reject(Rejection::NotUtf8, format!("not UTF-8 (invalid byte at offset {})", e.valid_up_to())))?;
    let line = line.trim_end_matches(['\n', '\r']);
    let value: serde_json::Value =
        serde_json::from_str(line).map_err(|e| reject(Rejection::NotJson, format!("not JSON: {e}")))?;
    if value.get("source").and_then(|s| s.as_str()) == Some("delivery") {
        return read_dead_letter(line, pos);
    }
    parse_event(line, pos).map(Record::Event).map_err(|e| reject(Rejection::NotSpikeEvent, e))
}

fn read_dead_letter(line: &str, pos: Position) -> Result<Record, InputRejection> {
    let bad = |detail: String| InputRejection { reason: Rejection::NotSpikeEvent, detail };
    let d: DeadLetterLine = serde_json::from_str(line).map_err(|e| bad(format!("not a delivery dead letter: {e}")))?;
    debug_assert_eq!(d.source, "delivery");
    let inputs = d
        .events
        .iter()
        .map(|e| parse_event(&e.to_string(), pos))
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| bad(format!("dead letter event: {e}")))?;
    if inputs.is_empty() {
        return Err(bad("a dead letter without events".into()));
    }
    // Dead letters written before `notices` existed: each event's own kind is the best guess.
    let notices = if d.notices.len() == inputs.len() {
        d.notices
    } else {
        inputs
            .iter()
            .map(|i| match i.event.kind {
                flashpoint_core::event::EventKind::Opened => NoticeKind::Opened,
                flashpoint_core::event::EventKind::Updated => NoticeKind::Update,
                flashpoint_core::event::EventKind::Resolved => NoticeKind::Resolved,
            })
            .collect()
    };
    Ok(Record::Resend(Resend { channel: d.channel, route: d.route, digest: d.message == "digest", inputs, notices }))
}

/// The identity of an input's first lines (SHA-256 over their bytes, newlines included), which a checkpoint
/// records so that it is never applied to another input.
#[derive(Clone, Default)]
pub struct InputDigest(sha2::Sha256);

impl InputDigest {
    pub fn update(&mut self, line: &[u8]) {
        use sha2::Digest;
        self.0.update(line);
    }

    pub fn hex(&self) -> String {
        use sha2::Digest;
        hex::encode(self.0.clone().finalize())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::format::testing::event;
    use flashpoint_core::detect::Severity;
    use flashpoint_core::event::EventKind;

    #[test]
    fn every_bad_record_gets_the_core_reason() {
        let p = Position::line(0);
        let r = |b: &[u8]| classify(b, p).map(|_| ()).unwrap_err().reason;
        assert_eq!(r(b"{\"a\":\xff}"), Rejection::NotUtf8);
        assert_eq!(r(b"{nope"), Rejection::NotJson);
        assert_eq!(r(b"{\"schema\":\"x\"}"), Rejection::NotSpikeEvent);
        let e = serde_json::to_string(&event(EventKind::Opened, 0, Severity::Watch)).unwrap();
        assert!(matches!(classify(e.as_bytes(), p), Ok(Record::Event(_))));
    }

    #[test]
    fn a_delivery_dead_letter_reads_back_as_a_resend() {
        let e = serde_json::to_value(event(EventKind::Updated, 3, Severity::Critical)).unwrap();
        let line = serde_json::json!({"source": "delivery", "channel": "hook", "channel_kind": "webhook",
            "route": "r", "message": "notice", "incidents": ["inc:3"], "reason": "HTTP 500", "attempts": 3,
            "events": [e], "notices": ["escalated"]})
        .to_string();
        let Ok(Record::Resend(r)) = classify(line.as_bytes(), Position::line(4)) else { panic!("a resend") };
        assert_eq!((r.channel.as_str(), r.route.as_str(), r.digest), ("hook", "r", false));
        assert_eq!(r.notices, vec![NoticeKind::Escalated]);
        assert_eq!(r.inputs[0].event.seq, 3);
    }
}
