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
            negative_per_hour: if self.ms > 0 {
                r2(self.negative as f64 * HOUR_MS as f64 / self.ms as f64)
            } else {
                0.0
            },
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
    pub(super) fn change_start(
        &self,
        d: &Decision,
        opened_at: Millis,
        slide: Millis,
        threshold: &[[f64; 3]; 3],
    ) -> Millis {
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::aggregate::{Aggregator, AggregatorConfig};
    use crate::event::{EventKind, Output, SpikeEvent};
    use crate::sentiment::LabelThresholds;
    use crate::time::parse_rfc3339;
    use crate::window::PostView;

    const MIN: Millis = 60_000;

    fn cfg() -> AggregatorConfig {
        crate::aggregate::tests::cfg(AggregatorConfig::default().limits.max_entities)
    }

    const PLAN: ResponsePlan = ResponsePlan { first_response_within_secs: 300, update_every_secs: 600 };

    fn aggregator(plan: Option<ResponsePlan>) -> Aggregator {
        let mut a = Aggregator::new(&cfg()).unwrap();
        a.set_responses(vec![plan.map(|plan| ResponseSetup { handle: "@AcmeAir".into(), plan })]);
        a
    }

    /// The aggregator test's incident (a storm at 02:00–02:05 over two hours of 10 posts a minute, two of them
    /// negative; then 30 calm minutes), with the company's posts at `replies`, all fed in time order.
    fn posts(replies: &[Millis]) -> Vec<(Millis, Option<f64>)> {
        let mut v: Vec<(Millis, Option<f64>)> = Vec::new();
        for m in 0..155 {
            let n = match m {
                120..=121 => 60,
                122..=124 => 150,
                _ => 10,
            };
            for j in 0..n {
                let c = if (120..125).contains(&m) || j < 2 { -0.6 } else { 0.3 };
                v.push((m * MIN + j * MIN / n, Some(c)));
            }
        }
        v.extend(replies.iter().map(|&t| (t, None)));
        v.sort_by_key(|p| p.0);
        v
    }

    /// Feeds `posts`, the first being post number `first` of the stream (its id).
    fn feed(a: &mut Aggregator, posts: &[(Millis, Option<f64>)], first: usize, out: &mut Vec<Output>) {
        for (n, &(t, c)) in posts.iter().enumerate() {
            let id = format!("p{}", first + n);
            let compound = c.unwrap_or(0.0);
            let v = PostView {
                id: &id,
                text: "bags lost again",
                created_at: t,
                author: Some(if c.is_some() { "someone" } else { "AcmeAir" }),
                followers: Some(100),
                compound,
                label: LabelThresholds::default().label(compound),
                url: None,
                author_url: None,
                platform: None,
            };
            if c.is_some() {
                a.process(0, "Acme Air", &[], &v, out);
            } else {
                a.respond(0, "Acme Air", &[], &v, out);
            }
        }
    }

    fn run(plan: Option<ResponsePlan>, replies: &[Millis]) -> Vec<SpikeEvent> {
        let (mut a, mut out) = (aggregator(plan), Vec::new());
        feed(&mut a, &posts(replies), 0, &mut out);
        spikes(out)
    }

    fn spikes(out: Vec<Output>) -> Vec<SpikeEvent> {
        out.into_iter().filter_map(|o| if let Output::Spike(e) = o { Some(e) } else { None }).collect()
    }

    fn at(hm: &str) -> Millis {
        parse_rfc3339(&format!("1970-01-01T{hm}:00Z")).unwrap()
    }

    fn timeline(events: &[SpikeEvent]) -> Vec<(EventKind, u64, String, Vec<Reason>)> {
        events
            .iter()
            .map(|e| (e.kind, e.seq, crate::time::format_rfc3339(e.window_end)[11..16].to_string(), e.reasons.clone()))
            .collect()
    }

    #[test]
    fn responses_update_the_incident_and_overdue_updates_are_reminded_without_touching_detection() {
        // First reply 3.5 minutes after the opening (02:01), then silence past the 10-minute update deadline,
        // then an update at 02:20:10.
        let replies = [at("02:04") + 30_000, at("02:20") + 10_000];
        let events = run(Some(PLAN), &replies);
        use EventKind::*;
        use Reason::*;
        let tl = |k, s, t: &str, r: &[Reason]| (k, s, t.to_string(), r.to_vec());
        assert_eq!(
            timeline(&events),
            vec![
                tl(Opened, 0, "02:01", &[Threshold]),
                tl(Updated, 1, "02:03", &[Severity]),
                // The reply's pane [02:04, 02:05) closes at 02:05.
                tl(Updated, 2, "02:05", &[Responded]),
                // Due at 02:14:30 (10 minutes after the last response): reminded at the first window end past it.
                tl(Updated, 3, "02:15", &[ResponseOverdue]),
                tl(Updated, 4, "02:21", &[Responded]),
                // The lifecycle is the one without responses: calm resolves it at 02:26, as in the aggregator test.
                tl(Resolved, 5, "02:26", &[Calm]),
            ]
        );
        // The replies are in no count: every event's figures equal those of the run without them.
        let quiet = run(Some(PLAN), &[]);
        for e in &events {
            let q = quiet.iter().find(|q| q.window_end == e.window_end && q.kind == e.kind);
            if let Some(q) = q {
                assert_eq!((&q.counts, q.severity, &q.impact, &q.peak), (&e.counts, e.severity, &e.impact, &e.peak));
            }
        }
        let r = events[2].response.as_ref().unwrap();
        assert_eq!((r.handle.as_str(), r.first_secs, r.posts, r.new_posts), ("@AcmeAir", Some(210), 1, 1));
        assert_eq!(r.first_at, Some(replies[0]));
        let r = events[3].response.as_ref().unwrap();
        assert_eq!((r.posts, r.new_posts, r.silent_secs, r.reminders), (1, 0, 630, 1));
        let r = events[4].response.as_ref().unwrap();
        assert_eq!((r.posts, r.new_posts, r.last_at, r.longest_gap_secs), (2, 1, Some(replies[1]), 940));
        // Before the first response there is nothing to report on recovery.
        assert_eq!((events[0].recovery, events[1].recovery.is_some()), (None, false));
        assert!(events[0].response.as_ref().is_some_and(|r| r.first_at.is_none() && r.posts == 0));
    }

    #[test]
    fn recovery_compares_the_hour_before_the_first_response_with_the_time_since() {
        let events = run(Some(PLAN), &[at("02:04") + 30_000]);
        // The hour before the reply's step (01:04–02:04): 56 minutes with 2 negatives of 10, then 60, 60, 150,
        // 150 negative posts: 532 negatives of 980 posts.
        let first = events.iter().find(|e| e.reasons.contains(&Reason::Responded)).unwrap();
        let rec = first.recovery.unwrap();
        assert_eq!(rec.hour_before, Rates { negative_per_hour: 532.0, negative_share: r4(532.0 / 980.0) });
        // Since (the reply's step on): the storm's last minute, 150 negatives in one minute.
        assert_eq!(rec.since, Rates { negative_per_hour: 9000.0, negative_share: 1.0 });
        // At the resolution (02:26): 150 + 21 × 2 negatives of 150 + 21 × 10 posts in 22 minutes.
        let resolved = events.last().unwrap();
        assert_eq!(resolved.kind, EventKind::Resolved);
        let since = resolved.recovery.unwrap().since;
        assert_eq!(since, Rates { negative_per_hour: r2(192.0 * 60.0 / 22.0), negative_share: r4(192.0 / 360.0) });
        assert!(since.negative_per_hour < rec.hour_before.negative_per_hour);
        // The post-mortem: the storm began at 02:00, the alarm came at 02:01; first reply 210 s after it; calm
        // from 02:16 (ten calm windows before 02:26), 11.5 minutes after the reply.
        let pm = resolved.post_mortem.as_ref().unwrap();
        assert_eq!(
            (pm.time_to_detect_secs, pm.time_to_first_response_secs, pm.responses, pm.first_response_to_calm_secs),
            (60, Some(210), 1, Some(690))
        );
        assert_eq!((pm.peak_severity, pm.longest_silence_secs), (Severity::Critical, 0));
    }

    #[test]
    fn a_missing_first_response_is_reminded_then_again_every_update_period() {
        let events = run(Some(PLAN), &[]);
        let reminders: Vec<_> = events
            .iter()
            .filter(|e| e.reasons == [Reason::ResponseOverdue])
            .map(|e| (crate::time::format_rfc3339(e.window_end)[11..16].to_string(), e.response.clone().unwrap()))
            .collect();
        // Due 5 minutes after the 02:01 opening, then every 10 minutes of silence; none at the resolution.
        assert_eq!(reminders.iter().map(|r| r.0.as_str()).collect::<Vec<_>>(), ["02:06", "02:16"]);
        assert_eq!((reminders[0].1.silent_secs, reminders[0].1.reminders), (300, 1));
        assert_eq!((reminders[1].1.silent_secs, reminders[1].1.reminders), (900, 2));
        let resolved = events.last().unwrap();
        assert_eq!(resolved.kind, EventKind::Resolved);
        let pm = resolved.post_mortem.as_ref().unwrap();
        assert_eq!((pm.time_to_first_response_secs, pm.responses, pm.first_response_to_calm_secs), (None, 0, None));
        assert_eq!(resolved.recovery, None);
        // A plan of 0 turns the reminder off.
        let off = ResponsePlan { first_response_within_secs: 0, update_every_secs: 0 };
        assert!(run(Some(off), &[]).iter().all(|e| !e.reasons.contains(&Reason::ResponseOverdue)));
    }

    #[test]
    fn without_own_handles_events_carry_no_response_but_still_a_post_mortem() {
        let events = run(None, &[at("02:04") + 30_000]);
        assert_eq!(events.len(), 3, "opened, updated, resolved: nothing about responses");
        assert!(events.iter().all(|e| e.response.is_none() && e.recovery.is_none()));
        let pm = events[2].post_mortem.as_ref().unwrap();
        assert_eq!((pm.time_to_detect_secs, pm.time_to_first_response_secs), (60, None));
    }

    #[test]
    fn replies_read_ahead_of_the_complaints_wait_in_their_panes_and_move_no_watermark() {
        // As from an input partition of their own that a worker reads first: the replies come before everything.
        let replies = [at("02:04") + 30_000, at("02:20") + 10_000];
        let in_order = run(Some(PLAN), &replies);
        let (mut a, mut out) = (aggregator(Some(PLAN)), Vec::new());
        let all = posts(&replies);
        let (early, rest): (Vec<_>, Vec<_>) = all.iter().partition(|p| p.1.is_none());
        feed(&mut a, &early, 0, &mut out);
        assert_eq!((a.watermark(), out.len()), (None, 0), "replies neither start the clock nor divert");
        feed(&mut a, &rest, 0, &mut out);
        let ahead = spikes(out);
        assert_eq!(timeline(&ahead), timeline(&in_order));
        assert_eq!(ahead.last().unwrap().response, in_order.last().unwrap().response);
    }

    #[test]
    fn a_snapshot_mid_incident_restores_the_response_state() {
        let replies = [at("02:04") + 30_000, at("02:20") + 10_000];
        let all = posts(&replies);
        let whole = run(Some(PLAN), &replies);
        // Cut after the first reply and after the reminder, while a reply waits in an open pane.
        for cut_at in [at("02:04") + 40_000, at("02:15") + 1, at("02:20") + 20_000] {
            let cut = all.iter().position(|p| p.0 >= cut_at).unwrap();
            let (mut a, mut before) = (aggregator(Some(PLAN)), Vec::new());
            feed(&mut a, &all[..cut], 0, &mut before);
            let json = serde_json::to_value(a.snapshot()).unwrap();
            let mut b = aggregator(Some(PLAN));
            b.restore(&serde_json::from_value(json).unwrap(), |n| (n == "Acme Air").then_some(0)).unwrap();
            let mut after = Vec::new();
            feed(&mut b, &all[cut..], cut, &mut after);
            let mut joined = spikes(before);
            joined.extend(spikes(after));
            assert_eq!(joined, whole, "cut at {}", crate::time::format_rfc3339(cut_at));
        }
    }
}
