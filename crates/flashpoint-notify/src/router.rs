//! Which event goes to which route, and when: a pure state machine driven by `(event, now)` and `tick(now)`.
//!
//! No clock inside: the caller passes the time (wall clock when live, or the events' own time when replaying),
//! so every rule here is tested without sleeping. The router only decides; it returns [`Effects`], and the
//! delivery engine turns them into channel jobs.
//!
//! Rules, per route:
//! - An event matches when its entity matches a pattern and its kind is listed; its severity and signal must
//!   pass too, unless the route already told people about the incident (then its updates and its closing always
//!   follow, so a thread is never left open).
//! - The first message about an incident, an escalation (severity above the last one sent) and the resolution go
//!   at once; other updates at most every `update_interval`, the newest state winning.
//! - Rate limit per route and entity: at most `max` messages per `per_secs`. While limited, only the newest state
//!   of each incident is kept, and it is sent as soon as the window allows.
//! - Digest: incidents at or below `digest.up_to` are gathered and sent as one message every `every_secs`.
//!
//! Every input event has a position. Positions of events held back (rate limit, update interval, digest) are
//! reported as `held`, and `released` once their state was sent or replaced by a newer one; the engine uses that
//! to tell which input positions are completely handled (see `tracker`).

use crate::config::{glob_match, NotifyConfig, RouteConfig};
use crate::message::{Dispatch, Input, Message, Notice, NoticeKind, Point, Position};
use flashpoint_core::detect::{Reason, Severity, Signal};
use flashpoint_core::event::{EventKind, SpikeEvent};
use flashpoint_core::time::Millis;
use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::Arc;

#[derive(Debug, Default)]
///
/// Apply in field order: a position may be released and held again (or dispatched) in one call, and counting
/// it complete in between would be wrong.
pub struct Effects {
    pub dispatches: Vec<Dispatch>,
    /// (route, position) now held back (one hold each) ...
    pub held: Vec<(usize, Position)>,
    /// ... and whose hold ends (their state was dispatched or superseded).
    pub released: Vec<(usize, Position)>,
    /// Routes that held a message back because of their rate limit (one entry per event held).
    pub rate_limited: Vec<usize>,
}

#[derive(Debug)]
struct Pending {
    event: Arc<SpikeEvent>,
    raw: Arc<str>,
    positions: Vec<Position>,
    due: Millis,
}

#[derive(Debug, Default)]
struct IncidentState {
    notified: bool,
    last_sent: Option<Millis>,
    last_severity: Option<Severity>,
    /// What the last message sent said, so the next one can say what changed since.
    last_ratio: Option<(Signal, f64)>,
    last_signals: Vec<Signal>,
    /// The company's responses the last message sent had seen.
    last_response_posts: u64,
    pending: Option<Pending>,
}

#[derive(Debug, Default)]
struct DigestBuf {
    due: Millis,
    from: Millis,
    /// Newest state per incident, in first-seen order.
    items: Vec<(Arc<SpikeEvent>, Arc<str>, Vec<Position>)>,
}

#[derive(Debug, Default)]
struct RouteState {
    incidents: HashMap<String, IncidentState>,
    sends: HashMap<String, VecDeque<Millis>>,
    digest: Option<DigestBuf>,
}

#[derive(Debug, Clone, Copy)]
struct Peak {
    severity: Severity,
    volume: u64,
    negative_share: f64,
    events: u32,
    /// When the resolution was seen: the entry is kept a while for held closing messages, then dropped.
    resolved_at: Option<Millis>,
}

/// Observed over baseline, when there is a baseline.
fn ratio(e: &SpikeEvent) -> Option<f64> {
    (e.baseline > 0.0).then(|| e.observed / e.baseline)
}

/// How long an incident's peaks outlive its resolution (a closing message held by a rate limit still needs them).
const PEAK_RETENTION_MS: Millis = 7 * 24 * 3_600_000;

trait Recent {
    fn is_none_or_recent(&self, now: Millis) -> bool;
}

impl Recent for Option<Millis> {
    fn is_none_or_recent(&self, now: Millis) -> bool {
        match self {
            None => true,
            Some(t) => now.saturating_sub(*t) < PEAK_RETENTION_MS,
        }
    }
}

/// How far before an incident's start the history for its chart reaches.
const HISTORY_BEFORE_MS: Millis = 6 * 3_600_000;
const HISTORY_POINTS: usize = 256;

pub struct Router {
    routes: Vec<RouteConfig>,
    default_interval_ms: Millis,
    state: Vec<RouteState>,
    peaks: HashMap<String, Peak>,
    history: HashMap<String, VecDeque<Point>>,
}

impl Router {
    pub fn new(cfg: &NotifyConfig) -> Router {
        Router {
            routes: cfg.routes.clone(),
            default_interval_ms: cfg.update_interval_secs as Millis * 1000,
            state: cfg.routes.iter().map(|_| RouteState::default()).collect(),
            peaks: HashMap::new(),
            history: HashMap::new(),
        }
    }

    pub fn routes(&self) -> &[RouteConfig] {
        &self.routes
    }

    fn interval_ms(&self, r: usize) -> Millis {
        self.routes[r].update_interval_secs.map(|s| s as Millis * 1000).unwrap_or(self.default_interval_ms)
    }

    /// Static part of a route's filter: entity and kind.
    fn matches_static(route: &RouteConfig, e: &SpikeEvent) -> bool {
        (route.entities.is_empty() || route.entities.iter().any(|p| glob_match(p, &e.entity)))
            && (route.kinds.is_empty() || route.kinds.contains(&e.kind))
    }

    fn matches_level(route: &RouteConfig, e: &SpikeEvent) -> bool {
        e.severity >= route.min_severity
            && (route.signals.is_empty() || route.signals.contains(&e.signal))
            && (route.classes.is_empty() || route.classes.contains(&e.class))
    }

    fn observe(&mut self, e: &SpikeEvent, now: Millis) {
        let p = self.peaks.entry(e.incident_id.clone()).or_insert(Peak {
            severity: e.severity,
            volume: 0,
            negative_share: 0.0,
            events: 0,
            resolved_at: None,
        });
        if e.kind == EventKind::Resolved {
            p.resolved_at = Some(now);
        }
        p.severity = p.severity.max(e.severity);
        p.volume = p.volume.max(e.counts.volume);
        p.negative_share = p.negative_share.max(e.negative_share);
        p.events += 1;
        {
            let at = e.window_end;
            let h = self.history.entry(e.entity.clone()).or_default();
            if h.back().map_or(true, |b| b.at < at) {
                h.push_back(Point { at, volume: e.counts.volume, negative: e.counts.negative, band: None });
                if h.len() > HISTORY_POINTS {
                    h.pop_front();
                }
            }
        }
    }

    fn notice(&self, r: usize, event: Arc<SpikeEvent>, raw: Arc<str>) -> Notice {
        let st = self.state[r].incidents.get(&event.incident_id);
        let first = !st.is_some_and(|s| s.notified);
        let kind = if event.kind == EventKind::Resolved {
            NoticeKind::Resolved
        } else if first {
            NoticeKind::Opened
        } else if st.and_then(|s| s.last_severity).is_some_and(|l| event.severity > l) {
            NoticeKind::Escalated
        } else if event.reasons.contains(&Reason::ResponseOverdue) {
            NoticeKind::Reminder
        } else {
            NoticeKind::Update
        };
        let peak = self.peaks.get(&event.incident_id).copied().unwrap_or(Peak {
            severity: event.severity,
            volume: event.counts.volume,
            negative_share: event.negative_share,
            events: 1,
            resolved_at: None,
        });
        let (start, end) = (event.incident_start, event.window_end);
        let history = self
            .history
            .get(&event.entity)
            .map(|h| {
                h.iter().filter(|p| p.at >= start.saturating_sub(HISTORY_BEFORE_MS) && p.at <= end).copied().collect()
            })
            .unwrap_or_default();
        // What the company did or failed to do leads: it is what the reader acts on.
        let seen = st.map_or(0, |s| s.last_response_posts);
        let mut changes: Vec<String> = crate::format::response_reminder(&event)
            .into_iter()
            .chain(crate::format::responded(&event, seen))
            .collect();
        if let Some(st) = st.filter(|s| s.notified) {
            if let Some(l) = st.last_severity.filter(|l| *l != event.severity) {
                changes.push(format!("{} → {}", l.as_str(), event.severity.as_str()));
            }
            // A ratio compares only with the same signal's (volume ×3 → ×6, not volume with negative volume).
            if let (Some((_, a)), Some(b)) = (st.last_ratio.filter(|l| l.0 == event.signal), ratio(&event)) {
                if format!("{a:.0}") != format!("{b:.0}") {
                    changes.push(format!("{} ×{a:.0} → ×{b:.0}", event.signal.as_str().replace('_', " ")));
                }
            }
            if !st.last_signals.contains(&event.signal) {
                changes.push(format!("{} joined", event.signal.as_str().replace('_', " ")));
            }
        }
        Notice {
            kind,
            first,
            changes,
            peak_severity: peak.severity,
            peak_volume: peak.volume,
            peak_negative_share: peak.negative_share,
            events_seen: peak.events,
            history,
            event,
            raw,
        }
    }

    /// Sends `event` on route `r` now: builds the notice, records the send, returns the dispatch.
    fn send_now(
        &mut self,
        r: usize,
        event: Arc<SpikeEvent>,
        raw: Arc<str>,
        positions: Vec<Position>,
        now: Millis,
    ) -> Dispatch {
        let notice = self.notice(r, event.clone(), raw);
        let st = &mut self.state[r];
        st.sends.entry(event.entity.clone()).or_default().push_back(now);
        if event.kind == EventKind::Resolved {
            st.incidents.remove(&event.incident_id);
        } else {
            let inc = st.incidents.entry(event.incident_id.clone()).or_default();
            inc.notified = true;
            inc.last_sent = Some(now);
            inc.last_severity = Some(event.severity);
            if !inc.last_signals.contains(&event.signal) {
                inc.last_signals.push(event.signal);
            }
            inc.last_ratio = ratio(&event).map(|r| (event.signal, r));
            inc.last_response_posts = event.response.as_ref().map_or(0, |r| r.posts);
        }
        Dispatch { route: r, message: Arc::new(Message::Notice(notice)), positions }
    }

    /// When the rate limit of route `r` allows the next message for `entity` (`now` if it does already).
    fn allowed_at(&mut self, r: usize, entity: &str, now: Millis) -> Millis {
        let Some(limit) = &self.routes[r].rate_limit else { return now };
        let per = limit.per_secs as Millis * 1000;
        let sends = self.state[r].sends.entry(entity.to_string()).or_default();
        while sends.front().is_some_and(|&t| t <= now - per) {
            sends.pop_front();
        }
        if sends.len() < limit.max as usize {
            now
        } else {
            sends[sends.len() - limit.max as usize] + per
        }
    }

    pub fn on_event(&mut self, input: &Input, now: Millis) -> Effects {
        let mut fx = Effects::default();
        let e = &input.event;
        self.observe(e, now);
        for r in 0..self.routes.len() {
            let route = &self.routes[r];
            if !Self::matches_static(route, e) {
                continue;
            }
            let known = self.state[r].incidents.get(&e.incident_id).is_some_and(|s| s.notified || s.pending.is_some());
            let in_digest = self.state[r]
                .digest
                .as_ref()
                .is_some_and(|d| d.items.iter().any(|(ev, _, _)| ev.incident_id == e.incident_id));
            if !(Self::matches_level(route, e) || known || in_digest) {
                continue;
            }
            let notified_directly = self.state[r].incidents.get(&e.incident_id).is_some_and(|s| s.notified);
            // Digest: low-severity incidents never told one by one.
            if let Some(d) = &route.digest {
                if e.severity <= d.up_to && !notified_directly {
                    let every = d.every_secs as Millis * 1000;
                    let buf = self.state[r].digest.get_or_insert_with(|| DigestBuf {
                        due: now + every,
                        from: now,
                        items: vec![],
                    });
                    match buf.items.iter_mut().find(|(ev, _, _)| ev.incident_id == e.incident_id) {
                        Some(item) => {
                            fx.released.extend(item.2.drain(..).map(|p| (r, p)));
                            *item = (e.clone(), input.raw.clone(), vec![input.position]);
                        }
                        None => buf.items.push((e.clone(), input.raw.clone(), vec![input.position])),
                    }
                    fx.held.push((r, input.position));
                    continue;
                }
                if in_digest {
                    // Escalated out of the digest: this message supersedes the digest's copy.
                    let buf = self.state[r].digest.as_mut().expect("in_digest");
                    if let Some(i) = buf.items.iter().position(|(ev, _, _)| ev.incident_id == e.incident_id) {
                        let (_, _, mut pos) = buf.items.remove(i);
                        fx.released.extend(pos.drain(..).map(|p| (r, p)));
                    }
                    if buf.items.is_empty() {
                        self.state[r].digest = None;
                    }
                }
            }
            let interval = self.interval_ms(r);
            let inc = self.state[r].incidents.entry(e.incident_id.clone()).or_default();
            let escalated = inc.last_severity.is_some_and(|l| e.severity > l);
            // An overdue response is a reminder to act now: an update interval must not delay it.
            let overdue = e.reasons.contains(&Reason::ResponseOverdue);
            let urgent = !inc.notified || escalated || overdue || e.kind == EventKind::Resolved;
            // An older held state is superseded by this newer one, whatever happens to it.
            // Its position completes now: the newer event (a later position) carries the state on.
            let positions = vec![input.position];
            if let Some(old) = inc.pending.take() {
                fx.released.extend(old.positions.iter().map(|p| (r, *p)));
            }
            let gate = match inc.last_sent {
                Some(t) if !urgent => t + interval,
                _ => now,
            };
            let allowed = self.allowed_at(r, &e.entity, now);
            let due = gate.max(allowed);
            if due <= now {
                fx.dispatches.push(self.send_now(r, e.clone(), input.raw.clone(), positions, now));
            } else {
                if allowed > now {
                    fx.rate_limited.push(r);
                }
                fx.held.extend(positions.iter().map(|p| (r, *p)));
                let inc = self.state[r].incidents.get_mut(&e.incident_id).expect("entry above");
                inc.pending = Some(Pending { event: e.clone(), raw: input.raw.clone(), positions, due });
            }
        }
        fx
    }

    /// Sends what has come due by `now`: held states whose interval or rate limit has passed, and digests.
    pub fn tick(&mut self, now: Millis) -> Effects {
        self.flush(now, false)
    }

    /// At the end of the input: sends every held state and digest now, limits or not.
    pub fn drain(&mut self, now: Millis) -> Effects {
        self.flush(now, true)
    }

    /// The earliest time something held comes due (for a caller that sleeps until then).
    pub fn next_due(&self) -> Option<Millis> {
        self.state
            .iter()
            .flat_map(|s| {
                s.incidents
                    .values()
                    .filter_map(|i| i.pending.as_ref().map(|p| p.due))
                    .chain(s.digest.as_ref().map(|d| d.due))
            })
            .min()
    }

    fn flush(&mut self, now: Millis, all: bool) -> Effects {
        let mut fx = Effects::default();
        self.peaks.retain(|_, p| p.resolved_at.is_none_or_recent(now));
        for r in 0..self.routes.len() {
            if let Some(d) = self.state[r].digest.take_if(|d| all || d.due <= now) {
                let mut positions = Vec::new();
                let mut items = Vec::new();
                for (ev, raw, pos) in d.items {
                    positions.extend_from_slice(&pos);
                    items.push(self.notice(r, ev, raw));
                }
                fx.released.extend(positions.iter().map(|p| (r, *p)));
                fx.dispatches.push(Dispatch {
                    route: r,
                    message: Arc::new(Message::Digest { items, from: d.from, to: now }),
                    positions,
                });
            }
            // Deterministic order: by due time, then incident id.
            let due: BTreeMap<(Millis, String), ()> = self.state[r]
                .incidents
                .iter()
                .filter_map(|(id, s)| {
                    s.pending.as_ref().filter(|p| all || p.due <= now).map(|p| ((p.due, id.clone()), ()))
                })
                .collect();
            for (_, id) in due.into_keys() {
                let entity = self.state[r].incidents[&id].pending.as_ref().expect("pending").event.entity.clone();
                let allowed = self.allowed_at(r, &entity, now);
                let p = self.state[r].incidents.get_mut(&id).expect("listed").pending.as_mut().expect("pending");
                if allowed > now && !all {
                    p.due = allowed;
                    continue;
                }
                let p = self.state[r].incidents.get_mut(&id).expect("listed").pending.take().expect("pending");
                fx.released.extend(p.positions.iter().map(|x| (r, *x)));
                fx.dispatches.push(self.send_now(r, p.event, p.raw, p.positions, now));
            }
        }
        fx
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{DigestConfig, RateLimit};
    use crate::format::testing::event;
    use flashpoint_core::detect::Signal;

    const MIN: Millis = 60_000;

    fn route(name: &str) -> RouteConfig {
        RouteConfig {
            name: name.into(),
            entities: vec![],
            min_severity: Severity::Watch,
            signals: vec![],
            kinds: vec![],
            classes: vec![],
            channels: vec!["c".into()],
            update_interval_secs: None,
            rate_limit: None,
            digest: None,
        }
    }

    fn router(routes: Vec<RouteConfig>) -> Router {
        Router::new(&NotifyConfig { update_interval_secs: 600, routes, ..NotifyConfig::default() })
    }

    fn input(pos: i64, id: &str, entity: &str, kind: EventKind, seq: u64, sev: Severity) -> Input {
        let mut e = event(kind, seq, sev);
        e.incident_id = id.into();
        e.entity = entity.into();
        Input { position: Position::line(pos), raw: serde_json::to_string(&e).unwrap().into(), event: Arc::new(e) }
    }

    fn held(fx: &Effects) -> Vec<Position> {
        fx.held.iter().map(|h| h.1).collect()
    }

    fn released(fx: &Effects) -> Vec<Position> {
        fx.released.iter().map(|h| h.1).collect()
    }

    fn kinds(fx: &Effects) -> Vec<(NoticeKind, u64)> {
        fx.dispatches
            .iter()
            .map(|d| match &*d.message {
                Message::Notice(n) => (n.kind, n.event.seq),
                Message::Digest { .. } => panic!("digest"),
            })
            .collect()
    }

    #[test]
    fn filters_on_entity_severity_signal_and_kind() {
        let mut r = router(vec![
            RouteConfig { entities: vec!["Acme*".into()], min_severity: Severity::Warning, ..route("a") },
            RouteConfig { signals: vec![Signal::Volume], ..route("b") },
            RouteConfig { kinds: vec![EventKind::Resolved], ..route("c") },
        ]);
        let fx = r.on_event(&input(0, "i1", "Acme Air", EventKind::Opened, 0, Severity::Watch), 0);
        assert!(fx.dispatches.is_empty(), "watch < warning; signal negative_share; kind opened");
        // Escalation into range: route a hears of it for the first time, as an opening.
        let fx = r.on_event(&input(1, "i1", "Acme Air", EventKind::Updated, 1, Severity::Warning), MIN);
        assert_eq!(kinds(&fx), vec![(NoticeKind::Opened, 1)]);
        assert_eq!(fx.dispatches[0].route, 0);
        let fx = r.on_event(&input(2, "i2", "Globex", EventKind::Opened, 0, Severity::Critical), MIN);
        assert!(fx.dispatches.is_empty(), "entity not matched by a, signal not by b");
        let fx = r.on_event(&input(3, "i1", "Acme Air", EventKind::Resolved, 2, Severity::Warning), 2 * MIN);
        assert_eq!(fx.dispatches.iter().map(|d| d.route).collect::<Vec<_>>(), vec![0, 2]);
        assert_eq!(kinds(&fx), vec![(NoticeKind::Resolved, 2), (NoticeKind::Resolved, 2)]);
    }

    #[test]
    fn a_crisis_route_ignores_buzz_until_it_turns_negative() {
        use flashpoint_core::event::IncidentClass;
        let mut r = router(vec![RouteConfig { classes: vec![IncidentClass::Crisis], ..route("page") }]);
        let buzz = |pos, kind, seq, class| {
            let mut i = input(pos, "i1", "Acme Air", kind, seq, Severity::Watch);
            Arc::make_mut(&mut i.event).class = class;
            i
        };
        assert!(r.on_event(&buzz(0, EventKind::Opened, 0, IncidentClass::Buzz), 0).dispatches.is_empty());
        // Turning negative is an update of the incident; the route hears of it first, as an opening.
        let fx = r.on_event(&buzz(1, EventKind::Updated, 1, IncidentClass::Crisis), MIN);
        assert_eq!(kinds(&fx), vec![(NoticeKind::Opened, 1)]);
    }

    #[test]
    fn updates_wait_for_the_interval_escalations_do_not() {
        let mut r = router(vec![route("a")]);
        let ev = |p, seq, sev| {
            input(p, "i1", "Acme Air", if seq == 0 { EventKind::Opened } else { EventKind::Updated }, seq, sev)
        };
        assert_eq!(kinds(&r.on_event(&ev(0, 0, Severity::Watch), 0)), vec![(NoticeKind::Opened, 0)]);
        let fx = r.on_event(&ev(1, 1, Severity::Watch), MIN);
        assert!(fx.dispatches.is_empty());
        assert_eq!(held(&fx), vec![Position::line(1)]);
        let fx = r.on_event(&ev(2, 2, Severity::Watch), 2 * MIN);
        assert_eq!((held(&fx), released(&fx)), (vec![Position::line(2)], vec![Position::line(1)]), "newest state wins");
        assert_eq!(r.next_due(), Some(10 * MIN));
        assert!(r.tick(9 * MIN).dispatches.is_empty());
        let fx = r.tick(10 * MIN);
        assert_eq!(kinds(&fx), vec![(NoticeKind::Update, 2)]);
        assert_eq!(released(&fx), vec![Position::line(2)]);
        // Escalation: at once, even inside the interval.
        let fx = r.on_event(&ev(3, 3, Severity::Critical), 11 * MIN);
        assert_eq!(kinds(&fx), vec![(NoticeKind::Escalated, 3)]);
        let fx = r.on_event(&ev(4, 4, Severity::Critical), 12 * MIN);
        assert!(fx.dispatches.is_empty());
        // Resolution: at once, supersedes the held update.
        let fx = r.on_event(&input(5, "i1", "Acme Air", EventKind::Resolved, 5, Severity::Critical), 13 * MIN);
        assert_eq!(kinds(&fx), vec![(NoticeKind::Resolved, 5)]);
        assert_eq!(released(&fx), vec![Position::line(4)]);
        assert_eq!(r.next_due(), None);
        let Message::Notice(n) = &*fx.dispatches[0].message else { panic!() };
        assert_eq!((n.peak_severity, n.events_seen, n.first), (Severity::Critical, 6, false));
    }

    /// `input` with the company's response as an event of `flashpoint-core` writes it.
    fn responding(pos: i64, seq: u64, reasons: serde_json::Value, response: serde_json::Value) -> Input {
        let e = input(pos, "i", "Acme Air", EventKind::Updated, seq, Severity::Warning).event;
        let mut v = serde_json::to_value(&*e).unwrap();
        v["reasons"] = reasons;
        v["response"] = response;
        let e: SpikeEvent = serde_json::from_value(v).unwrap();
        Input { position: Position::line(pos), raw: serde_json::to_string(&e).unwrap().into(), event: Arc::new(e) }
    }

    #[test]
    fn an_overdue_response_is_a_reminder_sent_at_once_and_a_response_is_news() {
        let mut r = router(vec![route("a")]);
        let opened = input(0, "i", "Acme Air", EventKind::Opened, 0, Severity::Warning);
        assert_eq!(kinds(&r.on_event(&opened, 0)), vec![(NoticeKind::Opened, 0)]);
        let plan = serde_json::json!({"first_response_within_secs": 1800, "update_every_secs": 3600});
        let answered = serde_json::json!({"handle": "@AcmeAir", "plan": plan, "first_at": "2026-03-04T14:26:00.000Z",
            "first_secs": 1500, "posts": 1, "new_posts": 1, "last_at": "2026-03-04T14:26:00.000Z",
            "longest_gap_secs": 0, "silent_secs": 60, "reminders": 0});
        // The first response is an ordinary update: held by the 10-minute interval, it says what happened.
        let fx = r.on_event(&responding(1, 1, serde_json::json!(["responded"]), answered.clone()), MIN);
        assert_eq!(held(&fx), vec![Position::line(1)]);
        let fx = r.tick(11 * MIN);
        let Message::Notice(n) = &*fx.dispatches[0].message else { panic!("a notice") };
        assert_eq!(n.kind, NoticeKind::Update);
        assert_eq!(n.changes, ["@AcmeAir responded (1 post; first response 25 minutes after the opening)"]);
        // 75 minutes of silence against a 60-minute plan: a reminder, not held by the interval.
        let mut overdue = answered;
        overdue["new_posts"] = 0.into();
        overdue["silent_secs"] = (75 * 60).into();
        overdue["reminders"] = 1.into();
        let fx = r.on_event(&responding(2, 2, serde_json::json!(["response_overdue"]), overdue.clone()), 12 * MIN);
        assert_eq!(kinds(&fx), vec![(NoticeKind::Reminder, 2)]);
        let Message::Notice(n) = &*fx.dispatches[0].message else { panic!("a notice") };
        assert_eq!(n.changes, ["no public update from @AcmeAir for 75 minutes; the plan says every 60"]);
        assert_eq!(crate::format::kind_phrase(n), "response overdue");
        // Before any response, the reminder measures from the opening against the first-response time.
        for k in ["first_at", "first_secs", "last_at"] {
            overdue.as_object_mut().unwrap().remove(k);
        }
        overdue["posts"] = 0.into();
        overdue["silent_secs"] = (31 * 60).into();
        let e = responding(3, 3, serde_json::json!(["response_overdue"]), overdue).event;
        assert_eq!(
            crate::format::response_reminder(&e).unwrap(),
            "no public response from @AcmeAir 31 minutes after the incident opened; the plan says within 30"
        );
    }

    #[test]
    fn rate_limit_keeps_the_newest_state_per_entity() {
        let mut r = router(vec![RouteConfig { rate_limit: Some(RateLimit { max: 2, per_secs: 3600 }), ..route("a") }]);
        let hour = 60 * MIN;
        // Two incidents of one entity: two messages pass, the third is limited.
        assert_eq!(r.on_event(&input(0, "i1", "Acme", EventKind::Opened, 0, Severity::Warning), 0).dispatches.len(), 1);
        assert_eq!(
            r.on_event(&input(1, "i2", "Acme", EventKind::Opened, 0, Severity::Warning), MIN).dispatches.len(),
            1
        );
        let fx = r.on_event(&input(2, "i1", "Acme", EventKind::Updated, 1, Severity::Critical), 2 * MIN);
        assert!(fx.dispatches.is_empty());
        assert_eq!(fx.rate_limited, vec![0]);
        let fx = r.on_event(&input(3, "i1", "Acme", EventKind::Resolved, 2, Severity::Critical), 3 * MIN);
        assert!(fx.dispatches.is_empty());
        assert_eq!(released(&fx), vec![Position::line(2)], "the resolution replaces the held escalation");
        // Another entity is not limited by Acme's messages.
        assert_eq!(
            r.on_event(&input(4, "i3", "Globex", EventKind::Opened, 0, Severity::Warning), 3 * MIN).dispatches.len(),
            1
        );
        assert_eq!(r.next_due(), Some(hour));
        assert!(r.tick(hour - 1).dispatches.is_empty());
        let fx = r.tick(hour);
        assert_eq!(kinds(&fx), vec![(NoticeKind::Resolved, 2)]);
        assert_eq!(fx.dispatches[0].positions, vec![Position::line(3)]);
    }

    #[test]
    fn digest_gathers_low_severity_and_lets_escalations_out() {
        let mut r = router(vec![RouteConfig {
            digest: Some(DigestConfig { every_secs: 3600, up_to: Severity::Watch }),
            ..route("a")
        }]);
        let hour = 60 * MIN;
        let fx = r.on_event(&input(0, "i1", "Acme", EventKind::Opened, 0, Severity::Watch), 0);
        assert!(fx.dispatches.is_empty());
        r.on_event(&input(1, "i2", "Globex", EventKind::Opened, 0, Severity::Watch), MIN);
        let fx = r.on_event(&input(2, "i1", "Acme", EventKind::Updated, 1, Severity::Watch), 2 * MIN);
        assert_eq!(released(&fx), vec![Position::line(0)]);
        r.on_event(&input(3, "i3", "Initech", EventKind::Opened, 0, Severity::Watch), 3 * MIN);
        // i3 escalates: out of the digest, sent on its own as an opening.
        let fx = r.on_event(&input(4, "i3", "Initech", EventKind::Updated, 1, Severity::Critical), 4 * MIN);
        assert_eq!(kinds(&fx), vec![(NoticeKind::Opened, 1)]);
        assert_eq!(released(&fx), vec![Position::line(3)]);
        assert!(r.tick(hour - 1).dispatches.is_empty());
        let fx = r.tick(hour);
        assert_eq!(fx.dispatches.len(), 1);
        let Message::Digest { items, .. } = &*fx.dispatches[0].message else { panic!("digest") };
        assert_eq!(
            items.iter().map(|n| (n.event.incident_id.as_str(), n.event.seq)).collect::<Vec<_>>(),
            vec![("i1", 1), ("i2", 0)]
        );
        assert_eq!(fx.dispatches[0].positions, vec![Position::line(2), Position::line(1)]);
    }

    #[test]
    fn drain_sends_everything_held() {
        let mut r = router(vec![
            RouteConfig { rate_limit: Some(RateLimit { max: 1, per_secs: 3600 }), ..route("a") },
            RouteConfig { digest: Some(DigestConfig { every_secs: 3600, up_to: Severity::Warning }), ..route("b") },
        ]);
        r.on_event(&input(0, "i1", "Acme", EventKind::Opened, 0, Severity::Watch), 0);
        r.on_event(&input(1, "i1", "Acme", EventKind::Resolved, 1, Severity::Watch), MIN);
        let fx = r.drain(2 * MIN);
        assert_eq!(fx.dispatches.len(), 2);
        assert_eq!(r.next_due(), None);
    }

    #[test]
    fn resolved_incidents_are_forgotten_after_a_while() {
        let mut r = router(vec![route("a")]);
        r.on_event(&input(0, "i1", "Acme", EventKind::Opened, 0, Severity::Watch), 0);
        r.on_event(&input(1, "i1", "Acme", EventKind::Resolved, 1, Severity::Watch), MIN);
        r.on_event(&input(2, "i2", "Acme", EventKind::Opened, 0, Severity::Watch), 2 * MIN);
        r.tick(3 * MIN);
        assert_eq!(r.peaks.len(), 2);
        r.tick(MIN + PEAK_RETENTION_MS);
        assert_eq!(r.peaks.keys().collect::<Vec<_>>(), vec!["i2"], "the open incident stays");
        assert!(r.state[0].incidents.get("i1").is_none());
    }

    #[test]
    fn history_is_kept_per_entity_for_charts() {
        let mut r = router(vec![route("a")]);
        let mut i = input(0, "i1", "Acme", EventKind::Opened, 0, Severity::Watch);
        r.on_event(&i, 0);
        let mut e = (*i.event).clone();
        e.window_end = flashpoint_core::time::parse_rfc3339("2026-03-04T14:09:00.000Z").unwrap();
        e.kind = EventKind::Updated;
        e.seq = 1;
        e.severity = Severity::Critical;
        i.event = Arc::new(e);
        let fx = r.on_event(&i, MIN);
        let Message::Notice(n) = &*fx.dispatches[0].message else { panic!() };
        assert_eq!(n.history.len(), 2);
        assert_eq!(n.open_for_ms(), 8 * MIN);
    }
}
