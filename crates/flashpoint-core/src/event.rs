//! The events Flashpoint emits: spike events for the downstream topic, and late/dead-letter records.
//!
//! The JSON shape of `SpikeEvent` is a public contract, described by `schema/spike-event.schema.json` at the
//! repository root and checked against it in the tests. Events carry no processing-time field, so the same
//! input always yields byte-identical events (what lets consumers de-duplicate replays by `incident_id` and
//! `seq`).

use crate::detect::response::{self, PostMortem, Recovery, ResponseReport, ResponseSetup};
use crate::detect::{Decision, EventKind as Kind, Reason, Resolution, Severity, Signal};
use crate::reject::Rejection;
use crate::time::Millis;
use crate::window::{EvidencePost, TermCount, WindowStats};
use serde::{Deserialize, Serialize};

pub const SPIKE_SCHEMA: &str = "flashpoint.spike.v3";

/// Defined with the incident lifecycle that decides it (`detect::lifecycle`), so the detector needs nothing
/// of this module.
pub use crate::detect::{EventKind, IncidentClass};

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Counts {
    pub volume: u64,
    pub negative: u64,
    pub neutral: u64,
    pub positive: u64,
    /// Posts the scorer read (`negative + neutral + positive`); `negative_share` is over these.
    #[serde(default)]
    pub scored: u64,
    /// Posts in a language the scorer does not read: in `volume`, in no sentiment figure.
    #[serde(default)]
    pub unscored: u64,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Evidence {
    pub most_negative: Vec<EvidencePost>,
    pub top_reach: Vec<EvidencePost>,
    pub top_terms: Vec<TermCount>,
    /// v3: what people say now that they did not before, strongest first (`incident::drivers`). Over the
    /// incident since it opened, not the newest window. Empty in v2 events.
    #[serde(default)]
    pub drivers: Vec<Driver>,
    /// v3: the incident's stories, copies collapsed, heaviest first.
    #[serde(default)]
    pub storylines: Vec<Storyline>,
    /// v3: the authors who carried the incident furthest.
    #[serde(default)]
    pub amplifiers: Vec<Amplifier>,
    /// v3: the incident's posts per platform, where the source says which (largest first).
    #[serde(default)]
    pub platforms: Vec<PlatformCount>,
}

/// A phrase that explains the change: its rate in the incident's posts against the entity's baseline rate.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Driver {
    pub phrase: String,
    /// Incident posts containing it (estimated where posts were sampled; see `incident`).
    pub posts: u64,
    /// Posts the entity's baseline rate predicts among as many posts.
    pub expected: f64,
    /// `posts / expected`, with a prior of one post on both sides (so a phrase never seen before is not
    /// infinitely surprising).
    pub lift: f64,
    /// Share of the posts containing it that were negative.
    pub negative_share: f64,
}

/// One story told by many posts: retweets, quotes and copy-paste collapsed into one representative.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Storyline {
    pub representative: EvidencePost,
    pub posts: u64,
    /// Distinct authors (exact up to `incident::MAX_AUTHORS_COUNTED`, then a lower bound).
    pub authors: u64,
    /// Followers of the posts' authors, summed over posts.
    pub reach: u64,
    #[serde(with = "crate::time::rfc3339")]
    pub first_seen: Millis,
    pub negative_share: f64,
}

/// An author who carried the incident: by the reach of their posts in it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Amplifier {
    pub author: String,
    pub followers: u64,
    pub posts: u64,
    pub first_post_id: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub first_post_url: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub author_url: Option<String>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PlatformCount {
    pub platform: String,
    pub posts: u64,
}

/// One step of the incident's series, with the baseline it was judged against.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct TimelinePoint {
    #[serde(with = "crate::time::rfc3339")]
    pub window_end: Millis,
    /// Posts in the step (the newest pane; points may merge several steps, see `incident::MAX_TIMELINE`).
    pub volume: u64,
    pub negative: u64,
    /// The baseline's expectation for the step, and its band (expected ± 2 sd, floored at 0).
    pub volume_expected: f64,
    pub volume_band: [f64; 2],
    pub negative_expected: f64,
    pub negative_band: [f64; 2],
}

/// The incident's largest windows so far.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Peak {
    pub volume: u64,
    pub negative: u64,
    /// Largest negative share of a window with at least 10 posts (or of the opening window).
    pub negative_share: f64,
}

/// What the incident has cost so far: what its severity is judged on.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Impact {
    /// Negative posts above the baseline since the incident opened (the opening window's excess included).
    pub excess_negative: u64,
    /// Followers reached by those negative posts (estimated per pane as reach × negative share).
    pub negative_reach: u64,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SpikeEvent {
    pub schema: String,
    pub incident_id: String,
    /// 0 for `opened`, +1 for each later event of the incident.
    pub seq: u64,
    pub kind: EventKind,
    pub entity: String,
    /// Event times are kept as milliseconds and written as RFC 3339 (UTC) by serde only.
    #[serde(with = "crate::time::rfc3339")]
    pub incident_start: Millis,
    /// Seconds since the incident opened (0 on `opened`). The v2 fields read as defaults from a v1 event, so a
    /// consumer of the spikes topic (the notifier) keeps working across a producer upgrade.
    #[serde(default)]
    pub open_secs: u64,
    #[serde(with = "crate::time::rfc3339")]
    pub window_start: Millis,
    #[serde(with = "crate::time::rfc3339")]
    pub window_end: Millis,
    pub signal: Signal,
    pub observed: f64,
    pub baseline: f64,
    pub score: f64,
    pub severity: Severity,
    /// v3. Absent from v2 events, which read as `crisis` (they were all routed as such).
    #[serde(default)]
    pub class: IncidentClass,
    #[serde(default)]
    pub peak: Peak,
    #[serde(default)]
    pub impact: Impact,
    /// On `resolved` only: `calm` (back near baseline) or `reassessed` (a watch that neither grew nor faded).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resolution: Option<Resolution>,
    pub counts: Counts,
    pub negative_share: f64,
    pub mean_compound: f64,
    pub reach: u64,
    pub evidence: Evidence,
    /// v3: the incident's series since it opened (at most `incident::MAX_TIMELINE` points).
    #[serde(default)]
    pub timeline: Vec<TimelinePoint>,
    /// Why this event was emitted (`threshold`, `severity`, `growth`, `new_signal`, `responded`,
    /// `response_overdue`, `calm`, `reassessed`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub reasons: Vec<Reason>,
    /// The company's own response so far, for an entity with `own_handles`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub response: Option<ResponseReport>,
    /// Complaints in the hour before the first response and since, once there was one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub recovery: Option<Recovery>,
    /// On `resolved`: the summary for the post-mortem.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub post_mortem: Option<PostMortem>,
}

fn r4(x: f64) -> f64 {
    if x.is_finite() {
        (x * 10_000.0).round() / 10_000.0
    } else {
        0.0
    }
}

impl SpikeEvent {
    pub fn new(entity: &str, w: &WindowStats, d: &Decision) -> SpikeEvent {
        SpikeEvent {
            schema: SPIKE_SCHEMA.into(),
            incident_id: d.incident.id.clone(),
            seq: d.incident.seq,
            kind: d.kind,
            entity: entity.to_string(),
            incident_start: d.incident.started,
            open_secs: ((w.end - d.incident.opened_at).max(0) / 1000) as u64,
            window_start: w.start,
            window_end: w.end,
            signal: d.reading.signal,
            observed: r4(d.reading.observed),
            baseline: r4(d.reading.baseline),
            score: r4(d.reading.score),
            severity: d.incident.severity,
            class: d.incident.class,
            peak: Peak {
                volume: d.incident.peak_volume,
                negative: d.incident.peak_negative,
                negative_share: r4(d.incident.peak_negative_share),
            },
            impact: Impact {
                excess_negative: d.incident.excess_negative.max(0.0).round() as u64,
                negative_reach: d.incident.negative_reach.max(0.0).round() as u64,
            },
            resolution: d.resolution,
            counts: Counts {
                volume: w.volume,
                negative: w.negative,
                neutral: w.neutral,
                positive: w.positive,
                scored: w.scored(),
                unscored: w.unscored,
            },
            negative_share: r4(w.negative_share),
            mean_compound: r4(w.mean_compound),
            reach: w.reach,
            evidence: Evidence {
                most_negative: w.most_negative.clone(),
                top_reach: w.top_reach.clone(),
                top_terms: w.top_terms.clone(),
                drivers: Vec::new(),
                storylines: Vec::new(),
                amplifiers: Vec::new(),
                platforms: Vec::new(),
            },
            timeline: Vec::new(),
            reasons: d.reasons.clone(),
            response: None,
            recovery: None,
            post_mortem: None,
        }
    }

    /// Adds what the event says about the response: the report and recovery where the entity's own accounts
    /// are watched (`setup`), and on `resolved` the post-mortem; `slide` is the window slide.
    pub fn with_response(mut self, d: &Decision, setup: Option<&ResponseSetup>, slide: Millis) -> SpikeEvent {
        if let Some(setup) = setup {
            self.response = Some(response::report(&d.incident, setup, self.window_end));
            self.recovery = response::recovery(&d.incident);
        }
        if d.kind == Kind::Resolved {
            self.post_mortem = Some(response::post_mortem(d, self.window_end, slide));
        }
        self
    }
}

/// A post that was not aggregated, with the reason; written to the late/dead-letter output.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct DivertedPost {
    /// `Rejection::Late` (its event time is behind the watermark: its windows have closed) or
    /// `Rejection::TooFarAhead` (implausibly far ahead of the stream: a clock or parsing error).
    pub reason: Rejection,
    pub entity: String,
    pub post_id: String,
    pub created_at: String,
    pub watermark: String,
}

/// Everything the aggregator emits, in order.
// Unboxed although an event is far larger than a diverted post: outputs are few (window closes, late posts) and
// moved once into the writer, so a box would only add an allocation per event.
#[allow(clippy::large_enum_variant)]
#[derive(Clone, Debug, PartialEq)]
pub enum Output {
    Spike(SpikeEvent),
    Diverted(DivertedPost),
}

#[cfg(test)]
mod tests {
    use crate::detect::Reason;

    #[test]
    fn a_reason_from_a_newer_producer_is_read_not_rejected() {
        let r: Vec<Reason> = serde_json::from_str(r#"["growth", "budget_exhausted"]"#).unwrap();
        assert_eq!(r, vec![Reason::Growth, Reason::Other]);
    }
}
