//! The company's own response to an incident: when it first answered, how often it updated, whether an update
//! is overdue under its response plan, and whether complaints fell once it spoke.
//!
//! A post by one of an entity's own accounts (`own_handles`) is a *response*: it never counts as a mention, it
//! is gathered per pane like a mention (`ResponseStep`), and the pane's responses reach the open incident at
//! the window close that makes that pane the step. So what this module decides — `responded`,
//! `response_overdue`, the recovery figures — is a function of event time and the window sequence alone, and a
//! replay, a worker and a restored snapshot agree on it.
//!
//! Overdue is judged against the plan at each window end: the first response is due `first_response_within`
//! after the opening, each later update `update_every` after the last response. A deadline passed gives one
//! reminder; silence that goes on gives another every `update_every`.

use super::lifecycle::{EventKind, OpenIncident, Resolution};
use super::{Decision, Detector, Reading, Reason, Severity, StepCounts};
use crate::time::Millis;
use serde::{Deserialize, Serialize};
use std::collections::VecDeque;

const HOUR_MS: Millis = 3_600_000;

/// What the company promised: how soon it answers an incident, and how often it posts updates while it is
/// open (seconds of event time; 0 turns that reminder off). The `[response]` section holds the defaults.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ResponsePlan {
    pub first_response_within_secs: u64,
    pub update_every_secs: u64,
}

impl Default for ResponsePlan {
    fn default() -> Self {
        ResponsePlan { first_response_within_secs: 1800, update_every_secs: 3600 }
    }
}

/// An entity's own `response = { ... }`: the keys it sets replace the `[response]` defaults.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PlanOverride {
    #[serde(default)]
    pub first_response_within_secs: Option<u64>,
    #[serde(default)]
    pub update_every_secs: Option<u64>,
}

impl PlanOverride {
    pub fn over(&self, defaults: &ResponsePlan) -> ResponsePlan {
        ResponsePlan {
            first_response_within_secs: self.first_response_within_secs.unwrap_or(defaults.first_response_within_secs),
            update_every_secs: self.update_every_secs.unwrap_or(defaults.update_every_secs),
        }
    }
}

/// An entity whose own accounts are watched: the account named in reminders, and its plan.
#[derive(Clone, Debug, PartialEq)]
pub struct ResponseSetup {
    /// The first own handle as configured, with its `@` (`@AcmeAir`).
    pub handle: String,
    pub plan: ResponsePlan,
}

/// The company's posts in one pane: how many, the first and the last.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ResponseStep {
    pub posts: u64,
    pub first: Millis,
    pub last: Millis,
}

impl ResponseStep {
    pub fn add(&mut self, at: Millis) {
        if self.posts == 0 {
            (self.first, self.last) = (at, at);
        } else {
            self.first = self.first.min(at);
            self.last = self.last.max(at);
        }
        self.posts += 1;
    }
}

/// Negative and scored posts over a span of steps.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Tally {
    pub negative: u64,
    pub scored: u64,
    pub ms: Millis,
}

impl Tally {
    fn add(&mut self, negative: u64, scored: u64, ms: Millis) {
        self.negative += negative;
        self.scored += scored;
        self.ms += ms;
    }

    fn rates(&self) -> Rates {
        Rates {
            negative_per_hour: if self.ms > 0 { r2(self.negative as f64 * HOUR_MS as f64 / self.ms as f64) } else { 0.0 },
            negative_share: if self.scored > 0 { r4(self.negative as f64 / self.scored as f64) } else { 0.0 },
        }
    }
}

/// The last hour of steps (end, length, negative, scored) of an entity whose responses are watched: what the
/// "hour before the first response" is measured on, since that hour usually starts before the incident.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct RecentSteps(VecDeque<(Millis, Millis, u64, u64)>);

impl RecentSteps {
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    fn push(&mut self, end: Millis, len: Millis, step: &StepCounts) {
        // A gap in the sequence (skipped windows, a restart of the stream) leaves nothing worth comparing.
        if self.0.back().is_some_and(|b| b.0 != end - len) {
            self.0.clear();
        }
        self.0.push_back((end, len, step.negative, step.scored));
        while self.0.front().is_some_and(|f| f.0 - f.1 < end - HOUR_MS) {
            self.0.pop_front();
        }
    }

    fn hour_before(&self, at: Millis) -> Tally {
        let mut t = Tally::default();
        for &(_, len, neg, scored) in self.0.iter().filter(|s| s.0 - s.1 >= at - HOUR_MS && s.0 <= at) {
            t.add(neg, scored, len);
        }
        t
    }
}

/// The response part of an open incident (snapshotted with it). `change_start` is kept for every incident,
/// the rest only where the entity's own accounts are watched.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct ResponseState {
    /// Estimated start of the change: where the opening statistic's run began.
    pub change_start: Millis,
    pub first_at: Option<Millis>,
    pub last_at: Option<Millis>,
    pub posts: u64,
    /// `posts` at the previous event, so an event says what is new.
    pub posts_at_event: u64,
    pub longest_gap: Millis,
    /// Reminders given since the last response (each deadline is reminded once, then every `update_every`).
    pub reminders_since_post: u64,
    pub reminders: u64,
    /// Negatives in the hour before the first response, and since its step.
    pub before: Option<Tally>,
    pub since: Tally,
}

impl ResponseState {
    /// The time the next reminder is due under `plan` (`None`: that reminder is off).
    fn due(&self, opened_at: Millis, plan: &ResponsePlan) -> Option<Millis> {
        let every = plan.update_every_secs as Millis * 1000;
        let (base, within) = match self.last_at {
            None => (opened_at, plan.first_response_within_secs as Millis * 1000),
            Some(last) => (last, every),
        };
        if within == 0 || (self.reminders_since_post > 0 && every == 0) {
            return None;
        }
        Some(base + within + self.reminders_since_post as Millis * every)
    }

    fn add(&mut self, s: &ResponseStep) {
        if s.posts == 0 {
            return;
        }
        if let Some(last) = self.last_at {
            self.longest_gap = self.longest_gap.max(s.first - last);
        }
        self.first_at.get_or_insert(s.first);
        self.last_at = Some(self.last_at.map_or(s.last, |l| l.max(s.last)));
        self.posts += s.posts;
        self.reminders_since_post = 0;
    }
}

impl Detector {
    /// Where the change an opening alarm is about began: the opening signal's firing statistic has been
    /// accumulating since then (its run), so the estimate does not depend on the window size.
    pub(super) fn change_start(&self, d: &Decision, opened_at: Millis, slide: Millis, threshold: &[[f64; 3]; 3]) -> Millis {
        let i = d.reading.signal as usize;
        let cs = [&self.cusum_volume, &self.cusum_negative, &self.cusum_share][i];
        let fired = cs.iter().zip(threshold[i]).filter(|(c, t)| c.s >= *t).map(|(c, _)| c.run_steps).max();
        let run = fired.unwrap_or_else(|| cs.iter().map(|c| c.run_steps).max().unwrap_or(0)).max(1);
        opened_at - run as Millis * slide
    }

    /// Follows the company's responses for one window, after the lifecycle decided `d`: adds the step's
    /// responses to the open incident, measures recovery, and reminds when the plan's deadline has passed.
    /// With no lifecycle event, a response or an overdue deadline is news of its own: an `updated` event.
    pub(super) fn follow_response(
        &mut self,
        mut d: Option<Decision>,
        x: &super::lifecycle::WindowEvidence,
        readings: &[Reading; 3],
        slide: Millis,
        plan: &ResponsePlan,
        responses: &ResponseStep,
    ) -> Option<Decision> {
        let end = x.stats.end;
        // The hour before the first response ends where this step begins: measured before the step joins it.
        let hour_before = (responses.posts > 0).then(|| self.recent.hour_before(end - slide));
        self.recent.push(end, slide, x.step);
        let inc = match (&mut d, self.open.as_mut()) {
            (Some(d), _) => &mut d.incident,
            (None, Some(open)) => open,
            (None, None) => return None,
        };
        let r = &mut inc.response;
        let mut reasons = Vec::new();
        if responses.posts > 0 {
            if r.first_at.is_none() {
                r.before = hour_before;
            }
            r.add(responses);
            reasons.push(Reason::Responded);
        }
        if r.first_at.is_some() {
            r.since.add(x.step.negative, x.step.scored, slide);
        }
        let resolving = d.as_ref().is_some_and(|d| d.kind == EventKind::Resolved);
        let inc = match &mut d {
            Some(d) => &mut d.incident,
            None => self.open.as_mut().expect("open above"),
        };
        if !resolving && inc.response.due(inc.opened_at, plan).is_some_and(|due| end >= due) {
            inc.response.reminders_since_post += 1;
            inc.response.reminders += 1;
            reasons.push(Reason::ResponseOverdue);
        }
        // The event keeps `posts_at_event` as it was (its report says what is new since the previous event);
        // the incident that goes on starts counting anew from here.
        match d {
            Some(mut d) => {
                d.reasons.extend(reasons);
                if d.kind != EventKind::Resolved {
                    let mut open = d.incident.clone();
                    open.response.posts_at_event = open.response.posts;
                    self.open = Some(open);
                }
                Some(d)
            }
            None if reasons.is_empty() => None,
            None => {
                let inc = self.open.as_mut().expect("open above");
                // Not an escalation: the re-assessment clock (`steps_since_event`) and the rate the next doubling
                // is judged from stay as they were.
                inc.seq += 1;
                let event = inc.clone();
                inc.response.posts_at_event = inc.response.posts;
                Some(Decision {
                    kind: EventKind::Updated,
                    resolution: None,
                    reading: readings[event.signal as usize],
                    incident: event,
                    reasons,
                })
            }
        }
    }
}

fn r2(x: f64) -> f64 {
    (x * 100.0).round() / 100.0
}

fn r4(x: f64) -> f64 {
    (x * 10_000.0).round() / 10_000.0
}

/// What an event says about the company's response (on every event of an entity whose accounts are watched).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ResponseReport {
    pub handle: String,
    pub plan: ResponsePlan,
    #[serde(default, with = "crate::time::rfc3339::option", skip_serializing_if = "Option::is_none")]
    pub first_at: Option<Millis>,
    /// Seconds from the opening to the first response (0: it came before the alarm).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub first_secs: Option<u64>,
    pub posts: u64,
    /// Posts since the previous event of the incident.
    pub new_posts: u64,
    #[serde(default, with = "crate::time::rfc3339::option", skip_serializing_if = "Option::is_none")]
    pub last_at: Option<Millis>,
    /// Longest gap between two responses so far (to a pane's resolution, a minute by default).
    pub longest_gap_secs: u64,
    /// Seconds since the last response (or, before the first, since the opening), at the window's end.
    pub silent_secs: u64,
    /// Overdue reminders given so far.
    pub reminders: u64,
}

/// Negatives per hour and the negative share, over a span.
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Rates {
    pub negative_per_hour: f64,
    pub negative_share: f64,
}

/// Did complaints fall once the company spoke? The hour before its first response against the time since.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct Recovery {
    pub hour_before: Rates,
    pub since: Rates,
}

/// The `resolved` event's summary for the post-mortem (seconds).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct PostMortem {
    /// From the estimated start of the change to the opening.
    pub time_to_detect_secs: u64,
    /// From the opening to the first response; absent when none came (or the accounts are not watched).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub time_to_first_response_secs: Option<u64>,
    pub responses: u64,
    /// Longest gap between two responses.
    pub longest_silence_secs: u64,
    pub peak_severity: Severity,
    /// From the first response to the start of the calm that resolved the incident.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub first_response_to_calm_secs: Option<u64>,
}

fn secs(ms: Millis) -> u64 {
    (ms.max(0) / 1000) as u64
}

/// The event's response report for an incident at `end`.
pub fn report(inc: &OpenIncident, setup: &ResponseSetup, end: Millis) -> ResponseReport {
    let r = &inc.response;
    ResponseReport {
        handle: setup.handle.clone(),
        plan: setup.plan,
        first_at: r.first_at,
        first_secs: r.first_at.map(|f| secs(f - inc.opened_at)),
        posts: r.posts,
        new_posts: r.posts - r.posts_at_event.min(r.posts),
        last_at: r.last_at,
        longest_gap_secs: secs(r.longest_gap),
        silent_secs: secs(end - r.last_at.unwrap_or(inc.opened_at)),
        reminders: r.reminders,
    }
}

/// The recovery figures, once the company has responded.
pub fn recovery(inc: &OpenIncident) -> Option<Recovery> {
    let r = &inc.response;
    r.first_at?;
    Some(Recovery { hour_before: r.before.unwrap_or_default().rates(), since: r.since.rates() })
}

/// The post-mortem of a resolved incident; `slide` is the step length (how long each calm step lasted).
pub fn post_mortem(d: &Decision, end: Millis, slide: Millis) -> PostMortem {
    let (inc, r) = (&d.incident, &d.incident.response);
    let calm_start = (d.resolution == Some(Resolution::Calm)).then(|| end - inc.calm_steps as Millis * slide);
    PostMortem {
        time_to_detect_secs: secs(inc.opened_at - r.change_start),
        time_to_first_response_secs: r.first_at.map(|f| secs(f - inc.opened_at)),
        responses: r.posts,
        longest_silence_secs: secs(r.longest_gap),
        peak_severity: inc.severity,
        first_response_to_calm_secs: r.first_at.zip(calm_start).map(|(f, c)| secs(c - f)),
    }
}
