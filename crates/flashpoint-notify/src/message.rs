//! The messages the notifier moves around: an input event with its position, what a message about an incident
//! says ([`Notice`]), a digest, and a [`Dispatch`] (one message for every channel of a route). Shared by the
//! router that decides them, the channels that render them and the engine that delivers them.

use flashpoint_core::detect::Severity;
use flashpoint_core::event::SpikeEvent;
use flashpoint_core::time::Millis;
use std::sync::Arc;

/// An input event's place in its input: a line number (partition 0), or a Kafka partition and offset.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Position {
    pub partition: i32,
    pub offset: i64,
}

impl Position {
    pub fn line(n: i64) -> Position {
        Position { partition: 0, offset: n }
    }
}

/// One input event, parsed, with the JSON it came as (the generic webhook forwards that, unknown fields and all).
#[derive(Clone, Debug)]
pub struct Input {
    pub position: Position,
    pub event: Arc<SpikeEvent>,
    pub raw: Arc<str>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum NoticeKind {
    /// The first message about this incident on this route.
    Opened,
    /// Severity went up since the last message.
    Escalated,
    /// A status message with the latest numbers.
    Update,
    /// The company's response is overdue under its plan (no first response, or no update, in time).
    Reminder,
    /// The closing message.
    Resolved,
}

impl NoticeKind {
    pub fn as_str(self) -> &'static str {
        match self {
            NoticeKind::Opened => "opened",
            NoticeKind::Escalated => "escalated",
            NoticeKind::Update => "update",
            NoticeKind::Reminder => "reminder",
            NoticeKind::Resolved => "resolved",
        }
    }
}

/// One point of a chart: a step of the incident's timeline (v3 events), or a window of an event seen (v2).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Point {
    pub at: Millis,
    pub volume: u64,
    pub negative: u64,
    /// The volume's usual range (the baseline band), where the event carries it.
    pub band: Option<[f64; 2]>,
}

impl Point {
    /// The chart's points for a notice: the event's own timeline when it has one (each step against its
    /// baseline band), else the entity's recent events.
    pub fn series(n: &Notice) -> Vec<Point> {
        if n.event.timeline.is_empty() {
            return n.history.clone();
        }
        n.event
            .timeline
            .iter()
            .map(|t| Point { at: t.window_end, volume: t.volume, negative: t.negative, band: Some(t.volume_band) })
            .collect()
    }
}

/// What a message about one incident says.
#[derive(Clone, Debug)]
pub struct Notice {
    pub kind: NoticeKind,
    /// First message of the incident on this route: email threads start here.
    pub first: bool,
    /// What changed since the last message on this route (`watch → warning`, `volume ×3 → ×6`,
    /// `negative share joined`); empty on the first.
    pub changes: Vec<String>,
    pub event: Arc<SpikeEvent>,
    pub raw: Arc<str>,
    pub peak_severity: Severity,
    pub peak_volume: u64,
    pub peak_negative_share: f64,
    /// Events seen for the incident so far (opened, updates, resolved).
    pub events_seen: u32,
    /// The entity's points from shortly before the incident to this event.
    pub history: Vec<Point>,
}

impl Notice {
    /// How long the incident has been open at this event (its window end minus its start), in milliseconds.
    pub fn open_for_ms(&self) -> Millis {
        self.event.window_end - self.event.incident_start
    }

    /// A key unique per incident and event: receivers de-duplicate on it.
    pub fn idempotency_key(&self) -> String {
        format!("{}:{}", self.event.incident_id, self.event.seq)
    }
}

#[derive(Clone, Debug)]
pub enum Message {
    Notice(Notice),
    /// Several low-severity incidents in one message; each item is the newest state of one incident.
    Digest {
        items: Vec<Notice>,
        from: Millis,
        to: Millis,
    },
}

impl Message {
    /// The notices the message is about: one, or a digest's.
    pub fn notices(&self) -> Vec<&Notice> {
        match self {
            Message::Notice(n) => vec![n],
            Message::Digest { items, .. } => items.iter().collect(),
        }
    }
}

/// One message for every channel of one route.
#[derive(Clone, Debug)]
pub struct Dispatch {
    pub route: usize,
    pub message: Arc<Message>,
    /// Input positions this message completes (once every channel of the route has delivered it).
    pub positions: Vec<Position>,
}
