//! The windowed aggregator: per-entity panes and detectors, driven by a watermark.
//!
//! It owns all per-entity state of one input (a replay file, or the entity partitions a worker owns). The
//! watermark is the largest event time seen minus the allowed lateness; it advances with every post, so
//! which posts are late and when windows close depend only on the order of the posts, never on batching
//! or wall-clock time. That is what makes a replay and a streaming run of the same records agree.
//!
//! State is bounded: at most `max_entities` entity states (the least recently active quiet one is evicted
//! first), panes only for windows the watermark has not passed, and capped term maps.

use crate::detect::{DetectionConfig, Detector, ResponsePlan, ResponseSetup, ResponseStep, StepCounts, Thresholds};
use crate::entity::EntityId;
use crate::event::{DivertedPost, EventKind, Output, SpikeEvent};
use crate::incident::drivers::Baseline;
use crate::incident::IncidentDigest;
use crate::reject::Rejection;
use crate::time::{format_rfc3339, Millis};
use crate::window::{Pane, PaneLimits, PostView, WindowSpec, WindowStats};
use rustc_hash::FxHashMap;
use serde::{Deserialize, Serialize};
use std::collections::VecDeque;

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct WindowConfig {
    pub size_secs: u64,
    pub slide_secs: u64,
    /// Shifts the window grid (windows start at `offset + k * slide` since the epoch).
    pub offset_secs: u64,
    pub allowed_lateness_secs: u64,
}

impl Default for WindowConfig {
    fn default() -> Self {
        WindowConfig { size_secs: 300, slide_secs: 60, offset_secs: 0, allowed_lateness_secs: 60 }
    }
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Limits {
    /// Entity states kept at once; beyond it the least recently active quiet entity is evicted.
    pub max_entities: usize,
    /// Distinct terms counted per pane; more are dropped (and counted).
    pub max_terms_per_pane: usize,
    /// Evidence posts kept per list (most negative, highest reach).
    pub evidence_posts: usize,
    /// Terms reported per event.
    pub top_terms: usize,
    /// A post more than this ahead of the stream's newest event time is diverted, not aggregated.
    pub max_future_secs: u64,
    /// Empty windows fed to detectors across one gap in the stream, at most (older ones are skipped).
    pub max_gap_windows: u64,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_entities: 10_000,
            max_terms_per_pane: 2_000,
            evidence_posts: 3,
            top_terms: 10,
            max_future_secs: 7 * 86_400,
            max_gap_windows: 7 * 24 * 60,
        }
    }
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AggregatorConfig {
    pub window: WindowConfig,
    pub detection: DetectionConfig,
    pub limits: Limits,
    /// The default response plan (`[response]`); an entity's own `response` overrides it.
    pub response: ResponsePlan,
}

/// Counters for metrics and run summaries.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct Counters {
    pub aggregated: u64,
    pub late: u64,
    pub too_far_ahead: u64,
    pub windows_closed: u64,
    pub windows_skipped: u64,
    pub evicted_entities: u64,
    pub terms_dropped: u64,
    pub opened: u64,
    pub updated: u64,
    pub resolved: u64,
    /// Posts by an entity's own accounts, followed as its responses.
    pub responses: u64,
    /// Events that reminded of an overdue response.
    pub overdue_reminders: u64,
}

/// Sizes of the aggregator's state (see `Aggregator::state_size`).
#[cfg(any(test, feature = "testing"))]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
pub struct StateSize {
    pub entities: usize,
    pub panes: usize,
    pub terms: usize,
    pub max_terms_in_a_pane: usize,
    pub evidence_posts: usize,
}

#[derive(Serialize, Deserialize)]
struct EntityState {
    name: String,
    own_terms: Vec<String>,
    panes: VecDeque<Pane>,
    detector: Detector,
    last_event: Millis,
    /// The company's posts per pane (by pane start), until their step is closed.
    #[serde(default, skip_serializing_if = "VecDeque::is_empty")]
    responses: VecDeque<(Millis, ResponseStep)>,
    /// The entity's usual phrase rates, learned from panes as they leave the window outside incidents.
    phrases: Baseline,
    /// What the open incident has gathered (drivers, storylines, amplifiers, timeline); `Some` exactly while
    /// the detector has an incident open.
    incident: Option<Box<IncidentDigest>>,
}

/// Version of the entity-state layout inside an `AggregatorSnapshot` (panes and detector). Bump it whenever
/// that layout or the meaning of a field changes: a snapshot of another version is refused by `restore`
/// with a message, never read into the wrong fields. 0 is what builds before versioning wrote (the
/// z-score detector); 2 is the CUSUM detector; 3 adds the phrase baseline, pane samples and the incident digest;
/// 4 the company's responses (an incident's response state and the estimated start of its change, the responses
/// per pane, the last hour of steps).
pub const STATE_VERSION: u32 = 4;

/// The aggregator's state as a value (see `Aggregator::snapshot`). Entity states are kept as JSON so their
/// private layout stays private to this module.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct AggregatorSnapshot {
    /// `STATE_VERSION` of the build that wrote it; absent (0) in snapshots of unversioned builds.
    #[serde(default)]
    pub version: u32,
    pub max_seen: Option<Millis>,
    pub next_end: Option<Millis>,
    pub entities: serde_json::Value,
}

/// The last closed window of an entity, for gauges.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct WindowSummary {
    pub volume: u64,
    pub negative_share: f64,
    pub mean_compound: f64,
    pub baseline_volume: f64,
    pub baseline_negative_share: f64,
    /// Highest signal score of the window.
    pub score: f64,
}

/// The index of the item for pane `start` in `q`, kept sorted by start, made by `make` where there is none yet.
/// Searched from the back: posts (and responses) mostly land in the newest pane.
fn slot<T>(q: &mut VecDeque<T>, start: Millis, start_of: impl Fn(&T) -> Millis, make: impl FnOnce() -> T) -> usize {
    match q.iter().rposition(|x| start_of(x) <= start) {
        Some(i) if start_of(&q[i]) == start => i,
        Some(i) => {
            q.insert(i + 1, make());
            i + 1
        }
        None => {
            q.push_front(make());
            0
        }
    }
}

pub struct Aggregator {
    spec: WindowSpec,
    lateness: Millis,
    th: Thresholds,
    limits: Limits,
    pane_limits: PaneLimits,
    states: FxHashMap<EntityId, EntityState>,
    max_seen: Option<Millis>,
    next_end: Option<Millis>,
    pub counters: Counters,
    /// The last closed window per entity, summarised (for gauges).
    pub last_window: FxHashMap<EntityId, WindowSummary>,
    /// Per entity id, its own accounts' setup (`None`: its responses are not followed).
    setups: Vec<Option<ResponseSetup>>,
}

impl Aggregator {
    pub fn new(cfg: &AggregatorConfig) -> Result<Aggregator, String> {
        let w = &cfg.window;
        let spec = WindowSpec::new(
            w.size_secs as Millis * 1000,
            w.slide_secs as Millis * 1000,
            w.offset_secs as Millis * 1000,
        )
        .map_err(|e| format!("window: {e}"))?;
        let th = cfg.detection.resolve(spec.slide, spec.size).map_err(|e| format!("detection: {e}"))?;
        if cfg.limits.max_entities == 0 {
            return Err("limits.max_entities must be at least 1".into());
        }
        Ok(Aggregator {
            spec,
            lateness: w.allowed_lateness_secs as Millis * 1000,
            th,
            pane_limits: PaneLimits {
                evidence_posts: cfg.limits.evidence_posts,
                max_terms: cfg.limits.max_terms_per_pane,
            },
            limits: cfg.limits.clone(),
            states: FxHashMap::default(),
            max_seen: None,
            next_end: None,
            counters: Counters::default(),
            last_window: FxHashMap::default(),
            setups: Vec::new(),
        })
    }

    /// Which entities' responses are followed, by entity id (not state: the config says it at every start).
    pub fn set_responses(&mut self, setups: Vec<Option<ResponseSetup>>) {
        self.setups = setups;
    }

    /// Advances the watermark from an event time seen elsewhere (a watermark tick from an upstream stage),
    /// closing the windows it passes. Keeps entities that received no post recently closing on time.
    pub fn advance(&mut self, event_time: Millis, out: &mut Vec<Output>) {
        if self.max_seen.is_some_and(|m| m >= event_time) {
            return;
        }
        self.max_seen = Some(event_time);
        let wm = self.watermark().expect("set above");
        self.close_until(wm, out);
    }

    /// Everything that decides future outputs, as a serialisable value: panes, detectors, watermark. Counters
    /// and gauges are this process's metrics and are not part of it.
    pub fn snapshot(&self) -> AggregatorSnapshot {
        let mut entities: Vec<(&EntityId, &EntityState)> = self.states.iter().collect();
        entities.sort_unstable_by_key(|(id, _)| **id);
        AggregatorSnapshot {
            version: STATE_VERSION,
            max_seen: self.max_seen,
            next_end: self.next_end,
            entities: serde_json::to_value(entities.into_iter().map(|(_, s)| s).collect::<Vec<_>>())
                .expect("entity state serialises"),
        }
    }

    /// Restores a snapshot taken by `snapshot`. Entity ids are re-resolved by name (`resolve`), so a snapshot
    /// survives a watchlist edit; entities no longer watched are dropped.
    pub fn restore(
        &mut self,
        snap: &AggregatorSnapshot,
        resolve: impl Fn(&str) -> Option<EntityId>,
    ) -> Result<(), String> {
        if snap.version != STATE_VERSION {
            return Err(format!(
                "aggregator snapshot has state version {} but this build reads version {STATE_VERSION} (the \
                 detector changed); refusing to misread it. Delete the state topic's snapshots for this group \
                 (or use a new kafka.state_topic) to rebuild the state from the input, or run the older build",
                snap.version
            ));
        }
        let states: Vec<EntityState> =
            serde_json::from_value(snap.entities.clone()).map_err(|e| format!("aggregator snapshot: {e}"))?;
        self.states.clear();
        for st in states {
            if let Some(id) = resolve(&st.name) {
                self.states.insert(id, st);
            }
        }
        self.max_seen = snap.max_seen;
        self.next_end = snap.next_end;
        Ok(())
    }

    pub fn watermark(&self) -> Option<Millis> {
        self.max_seen.map(|m| m - self.lateness)
    }

    #[cfg(any(test, feature = "testing"))]
    pub fn tracked_entities(&self) -> usize {
        self.states.len()
    }

    /// How much state is held now, for the tests that hold the caps to account.
    #[cfg(any(test, feature = "testing"))]
    pub fn state_size(&self) -> StateSize {
        let mut z = StateSize { entities: self.states.len(), ..StateSize::default() };
        for s in self.states.values() {
            z.panes += s.panes.len();
            for p in &s.panes {
                z.terms += p.terms.len();
                z.max_terms_in_a_pane = z.max_terms_in_a_pane.max(p.terms.len());
                z.evidence_posts += p.most_negative.len() + p.top_reach.len();
            }
        }
        z
    }

    /// The detector's internals for one entity (evaluation and debugging; see `Detector::diagnostics`).
    pub fn detector_diagnostics(&self, entity: EntityId) -> Option<crate::detect::Diagnostics> {
        self.states.get(&entity).map(|s| s.detector.diagnostics(&self.th))
    }

    pub fn open_incidents(&self) -> impl Iterator<Item = (EntityId, &str, crate::detect::Severity)> + '_ {
        self.states.iter().filter_map(|(id, s)| s.detector.open.as_ref().map(|o| (*id, s.name.as_str(), o.severity)))
    }

    /// Adds one post mentioning `entity`, then advances the watermark and closes the windows it passed.
    pub fn process(&mut self, entity: EntityId, name: &str, own_terms: &[String], p: &PostView, out: &mut Vec<Output>) {
        let Some(pane_start) = self.admit(entity, name, own_terms, p, out) else { return };
        // The first mention starts the window grid (a response does not: it may run ahead of the mentions).
        if self.next_end.is_none() {
            self.next_end = Some(pane_start + self.spec.slide);
        }
        let st = self.states.get_mut(&entity).expect("admitted");
        let idx = slot(&mut st.panes, pane_start, |pn| pn.start, || Pane::new(pane_start));
        let before = st.panes[idx].terms_dropped;
        st.panes[idx].add(p, &self.pane_limits, &st.own_terms);
        // During an incident every post is the incident's evidence; outside, a sample feeds the baseline.
        match &mut st.incident {
            Some(d) => d.add_post(p, &st.own_terms),
            None => st.panes[idx].sample(p, &st.own_terms),
        }
        self.counters.terms_dropped += st.panes[idx].terms_dropped - before;
        self.counters.aggregated += 1;
        self.advance_with(p.created_at, out);
    }

    /// Adds one post by `entity`'s own accounts: a response, in no count of the window; it reaches the open
    /// incident when its pane's step closes, like a mention (so late and far-ahead ones are diverted alike).
    /// It does not move the watermark: the company's own posts are a side channel, often on an input partition of
    /// their own that runs ahead of the complaints', and must not make the complaints late.
    pub fn respond(&mut self, entity: EntityId, name: &str, own_terms: &[String], p: &PostView, out: &mut Vec<Output>) {
        let Some(pane_start) = self.admit(entity, name, own_terms, p, out) else { return };
        let st = self.states.get_mut(&entity).expect("admitted");
        let idx = slot(&mut st.responses, pane_start, |r| r.0, || (pane_start, ResponseStep::default()));
        st.responses[idx].1.add(p.created_at);
        self.counters.responses += 1;
    }

    /// What every post of an entity goes through first: diverted if late or far ahead (`None`), else its
    /// entity's state exists (evicting another if full) and its pane start is returned.
    fn admit(
        &mut self,
        entity: EntityId,
        name: &str,
        own_terms: &[String],
        p: &PostView,
        out: &mut Vec<Output>,
    ) -> Option<Millis> {
        if let Some(wm) = self.watermark() {
            // Per entity they are counted where the diverted post is handled (the worker's metric, labelled by
            // the entity the output names), not here a second time.
            let reason = if p.created_at < wm {
                self.counters.late += 1;
                Some(Rejection::Late)
            } else if p.created_at > self.max_seen.unwrap_or(wm) + self.limits.max_future_secs as Millis * 1000 {
                self.counters.too_far_ahead += 1;
                Some(Rejection::TooFarAhead)
            } else {
                None
            };
            if let Some(reason) = reason {
                out.push(Output::Diverted(DivertedPost {
                    reason,
                    entity: name.to_string(),
                    post_id: p.id.to_string(),
                    created_at: format_rfc3339(p.created_at),
                    watermark: format_rfc3339(wm),
                }));
                return None;
            }
        }
        let pane_start = self.spec.pane_start(p.created_at);
        if !self.states.contains_key(&entity) && self.states.len() >= self.limits.max_entities {
            self.evict_one();
        }
        let st = self.states.entry(entity).or_insert_with(|| EntityState {
            name: name.to_string(),
            own_terms: own_terms.to_vec(),
            panes: VecDeque::new(),
            detector: Detector::default(),
            last_event: p.created_at,
            phrases: Baseline::default(),
            incident: None,
            responses: VecDeque::new(),
        });
        st.last_event = st.last_event.max(p.created_at);
        Some(pane_start)
    }

    /// The newest event time seen is now at least `t`: the watermark follows, closing what it passes.
    fn advance_with(&mut self, t: Millis, out: &mut Vec<Output>) {
        self.max_seen = Some(self.max_seen.map_or(t, |m| m.max(t)));
        let wm = self.watermark().expect("set above");
        self.close_until(wm, out);
    }

    /// Closes every window whose end the watermark has passed.
    fn close_until(&mut self, wm: Millis, out: &mut Vec<Output>) {
        let Some(mut end) = self.next_end else { return };
        // A long silence: feed at most `max_gap_windows` empty windows, skipping the rest, as long as no pane
        // would be skipped with them.
        let gap = (wm - end).div_euclid(self.spec.slide);
        if gap > self.limits.max_gap_windows as Millis {
            let target = end + (gap - self.limits.max_gap_windows as Millis) * self.spec.slide;
            let oldest_pane = self.states.values().filter_map(|s| s.panes.front().map(|p| p.start)).min();
            let limit = oldest_pane.map_or(target, |p| target.min(p));
            if limit > end {
                let skip = (limit - end).div_euclid(self.spec.slide);
                end += skip * self.spec.slide;
                self.counters.windows_skipped += skip as u64;
            }
        }
        while end <= wm {
            self.close_window(end, out);
            end += self.spec.slide;
        }
        self.next_end = Some(end);
    }

    fn close_window(&mut self, end: Millis, out: &mut Vec<Output>) {
        let start = end - self.spec.size;
        let keep_from = end + self.spec.slide - self.spec.size;
        let mut ids: Vec<EntityId> = self.states.keys().copied().collect();
        ids.sort_unstable();
        for id in ids {
            let st = self.states.get_mut(&id).expect("listed");
            let in_window = |p: &&Pane| p.start >= start && p.start < end;
            let mut w = WindowStats::from_panes(start, end, st.panes.iter().filter(in_window));
            // The newest pane is the part of the window no earlier window held: the detector's step.
            let step =
                st.panes.iter().rev().find(|p| p.start == end - self.spec.slide).map_or(StepCounts::default(), |p| {
                    StepCounts { volume: p.volume, negative: p.negative, scored: p.volume - p.unscored, reach: p.reach }
                });
            // The company's posts of the step, for an entity whose own accounts are followed.
            let step_start = end - self.spec.slide;
            while st.responses.front().is_some_and(|r| r.0 < step_start) {
                st.responses.pop_front();
            }
            let setup = self.setups.get(id as usize).and_then(Option::as_ref);
            let responded = match st.responses.front() {
                Some(r) if r.0 == step_start => st.responses.pop_front().map(|r| r.1),
                _ => None,
            }
            .unwrap_or_default();
            let responses = setup.map(|s| (&s.plan, &responded));
            let decision = st.detector.on_window_responding(&st.name, &w, &step, responses, &self.th);
            if decision.is_some() {
                w.add_evidence(st.panes.iter().filter(in_window), self.limits.evidence_posts, self.limits.top_terms);
            }
            let b = st.detector.last_step();
            if decision.as_ref().is_some_and(|d| d.kind == EventKind::Opened) {
                // Seeded from the window's panes and any newer one already started: their posts are the
                // incident's, so they are marked to stay out of the phrase baseline.
                let mut dg = IncidentDigest::open(st.panes.iter().filter(|p| p.start >= start), &w, &st.own_terms);
                for p in st.panes.iter_mut().filter(|p| p.start >= start) {
                    p.in_incident = true;
                    if p.start < end {
                        // The window's panes as timeline points, judged against this step's expectation.
                        dg.step(p.start + self.spec.slide, p.volume, p.negative, &b);
                    }
                }
                st.incident = Some(Box::new(dg));
            } else if let Some(dg) = &mut st.incident {
                dg.step(end, step.volume, step.negative, &b);
            }
            if let Some(d) = decision {
                match d.kind {
                    EventKind::Opened => self.counters.opened += 1,
                    EventKind::Updated => self.counters.updated += 1,
                    EventKind::Resolved => self.counters.resolved += 1,
                }
                if d.reasons.contains(&crate::detect::Reason::ResponseOverdue) {
                    self.counters.overdue_reminders += 1;
                }
                let mut e = SpikeEvent::new(&st.name, &w, &d).with_response(&d, setup, self.spec.slide);
                if let Some(dg) = &st.incident {
                    dg.fill(&mut e, &st.phrases);
                }
                if d.kind == EventKind::Resolved {
                    st.incident = None;
                }
                out.push(Output::Spike(e));
            }
            self.last_window.insert(
                id,
                WindowSummary {
                    volume: w.volume,
                    negative_share: w.negative_share,
                    mean_compound: w.mean_compound,
                    baseline_volume: st.detector.last_volume_baseline,
                    baseline_negative_share: st.detector.last_share_baseline,
                    score: st.detector.last_score,
                },
            );
            while st.panes.front().is_some_and(|p| p.start < keep_from) {
                let p = st.panes.pop_front().expect("checked");
                // The baseline learns what the entity usually says: not an incident's posts.
                if st.incident.is_none() && !p.in_incident {
                    st.phrases.learn(p.start, p.sampled, &p.phrase_sample);
                }
            }
        }
        self.counters.windows_closed += 1;
    }

    /// Closes every window that holds data, as if the stream had ended. For finite inputs (`replay --flush`).
    pub fn flush(&mut self, out: &mut Vec<Output>) {
        if let Some(m) = self.max_seen {
            let last = self.spec.pane_start(m) + self.spec.size;
            self.close_until(last, out);
        }
    }

    fn evict_one(&mut self) {
        let victim =
            self.states.iter().min_by_key(|(id, s)| (!s.detector.is_quiet(), s.last_event, **id)).map(|(id, _)| *id);
        if let Some(v) = victim {
            self.states.remove(&v);
            self.last_window.remove(&v);
            self.counters.evicted_entities += 1;
        }
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::detect::{Severity, Signal};
    use crate::event::{EventKind, IncidentClass, SpikeEvent};
    use crate::sentiment::LabelThresholds;

    const MIN: Millis = 60_000;

    /// One-minute windows, an hour of warm-up: what the lifecycle tests here and in `detect::response` share.
    pub(crate) fn cfg(max_entities: usize) -> AggregatorConfig {
        AggregatorConfig {
            window: WindowConfig { size_secs: 60, slide_secs: 60, offset_secs: 0, allowed_lateness_secs: 0 },
            detection: DetectionConfig {
                warmup_secs: 3600,
                seasonal_half_life_days: 0.0,
                resolve_after_secs: 600,
                cooldown_secs: 1800,
                ..DetectionConfig::default()
            },
            limits: Limits { max_entities, ..Limits::default() },
            response: ResponsePlan::default(),
        }
    }

    struct Feeder {
        agg: Aggregator,
        out: Vec<Output>,
        n: u64,
    }

    impl Feeder {
        fn new(c: AggregatorConfig) -> Feeder {
            Feeder { agg: Aggregator::new(&c).unwrap(), out: Vec::new(), n: 0 }
        }
        fn post(&mut self, entity: EntityId, t: Millis, compound: f64) {
            self.post_text(entity, t, compound, "bags lost again", None);
        }
        fn post_text(&mut self, entity: EntityId, t: Millis, compound: f64, text: &str, author: Option<&str>) {
            self.n += 1;
            let id = format!("p{}", self.n);
            let label = LabelThresholds::default().label(compound);
            let v = PostView {
                id: &id,
                text,
                created_at: t,
                author,
                followers: Some(self.n),
                compound,
                label,
                url: None,
                author_url: None,
                platform: None,
            };
            self.agg.process(entity, &format!("e{entity}"), &[], &v, &mut self.out);
        }
        /// `per_min` posts in each minute of [from, to), evenly spaced, with the given compound.
        fn steady(&mut self, entity: EntityId, from_min: i64, to_min: i64, per_min: i64, compound: f64) {
            for m in from_min..to_min {
                for j in 0..per_min {
                    self.post(entity, m * MIN + j * MIN / per_min, compound);
                }
            }
        }
        fn spikes(&self) -> Vec<&SpikeEvent> {
            self.out.iter().filter_map(|o| if let Output::Spike(e) = o { Some(e) } else { None }).collect()
        }
    }

    const ORDINARY: [&str; 8] = [
        "checking in for my flight to denver",
        "the new lounge looks nice this morning",
        "seat upgrade came through today",
        "crew were friendly on the early flight",
        "gate change again but boarding now",
        "coffee on board was decent",
        "booked the summer trip with points",
        "landed early in chicago",
    ];

    /// Three hours of `per_min` ordinary posts a minute, a fifth of them negative, then `surge` for 30 minutes.
    fn background_then(surge: impl Fn(&mut Feeder, i64)) -> Feeder {
        let mut f = Feeder::new(cfg(10));
        let mut k = 0usize;
        for m in 0..180 {
            for j in 0..10 {
                let c = if j % 5 == 0 { -0.5 } else { 0.3 };
                let author = format!("u{}", k % 97);
                f.post_text(0, m * MIN + j * 6_000, c, ORDINARY[k % ORDINARY.len()], Some(&author));
                k += 1;
            }
        }
        for m in 180..210 {
            surge(&mut f, m);
        }
        f.steady(0, 210, 215, 1, 0.3);
        f
    }

    #[test]
    fn a_surge_of_ordinary_posts_is_buzz_and_pages_nobody() {
        let mut f = background_then(|f, m| {
            for j in 0..40i64 {
                let c = if j % 5 == 0 { -0.5 } else { 0.3 };
                let author = format!("fan{}", (m * 40 + j) % 500);
                f.post_text(0, m * MIN + j * 1_500, c, ORDINARY[(j % 8) as usize], Some(&author));
            }
        });
        // Back to the background's pace until it resolves: the resolution carries the incident's impact.
        f.steady(0, 215, 260, 10, 0.3);
        let s = f.spikes();
        assert!(!s.is_empty(), "a ×4 surge opens an incident");
        assert!(
            s.iter().all(|e| e.class == IncidentClass::Buzz),
            "{:?}",
            s.iter().map(|e| e.class).collect::<Vec<_>>()
        );
        // Its negative posts rose with the volume (well past warning_excess_negative), but not beyond the share.
        assert!(s.iter().all(|e| e.severity == Severity::Watch));
        assert!(
            s.iter().any(|e| e.impact.excess_negative > 25),
            "{:?}",
            s.iter().map(|e| (e.kind, e.window_end, e.impact.excess_negative)).collect::<Vec<_>>()
        );
    }

    #[test]
    fn a_complaint_storm_is_a_crisis_whose_drivers_and_storylines_name_it() {
        let f = background_then(|f, m| {
            for j in 0..30i64 {
                let author = format!("angry{}", (m * 30 + j) % 400);
                let text = match j % 3 {
                    0 => "lost my luggage in miami and nobody answers #bagfail",
                    1 => "RT @angry1: lost my luggage in miami and nobody answers #bagfail",
                    _ => "still waiting for my luggage, the desk is closed",
                };
                let c = if j % 10 == 9 { 0.3 } else { -0.7 };
                f.post_text(0, m * MIN + j * 2_000, c, text, Some(&author));
            }
        });
        let s = f.spikes();
        let opened = s.iter().find(|e| e.kind == EventKind::Opened).expect("opened");
        assert_eq!(opened.class, IncidentClass::Crisis);
        let last = s.last().unwrap();
        let top3: Vec<&str> = last.evidence.drivers.iter().take(3).map(|d| d.phrase.as_str()).collect();
        assert!(top3.iter().any(|p| p.contains("luggage") || *p == "#bagfail"), "{top3:?}");
        assert!(
            last.evidence.drivers.iter().all(|d| d.posts as f64 >= 2.0 * d.expected),
            "{:?}",
            last.evidence.drivers
        );
        assert!(
            !last.evidence.drivers.iter().any(|d| ORDINARY.iter().any(|t| t.split(' ').any(|w| w == d.phrase))),
            "what is always said is no driver: {:?}",
            last.evidence.drivers
        );
        // The post and its retweets are one story, counted with all their copies and authors.
        let top = &last.evidence.storylines[0];
        assert!(top.representative.text.starts_with("lost my luggage in miami"), "{:?}", top.representative.text);
        assert!(top.posts >= 100 && top.authors >= 100, "{} posts, {} authors", top.posts, top.authors);
        assert!(last.evidence.storylines.iter().filter(|s| s.representative.text.contains("miami")).count() == 1);
        assert!(!last.timeline.is_empty() && last.timeline.len() <= crate::incident::MAX_TIMELINE);
        assert_eq!(last.evidence.amplifiers.len(), crate::incident::AMPLIFIERS);
    }

    #[test]
    fn windows_close_when_the_watermark_passes_them() {
        let mut f = Feeder::new(cfg(10));
        f.post(0, 10_000, 0.0);
        f.post(0, 50_000, 0.0);
        assert_eq!(f.agg.counters.windows_closed, 0);
        f.post(0, 60_000, 0.0); // watermark reaches 60 s: [0, 60 s) closes
        assert_eq!(f.agg.counters.windows_closed, 1);
        f.post(0, 185_000, 0.0); // passes 120 s and 180 s
        assert_eq!(f.agg.counters.windows_closed, 3);
        assert_eq!(f.agg.last_window[&0].volume, 0, "the [120 s, 180 s) window is empty");
    }

    #[test]
    fn hopping_windows_count_each_post_in_every_window_covering_it() {
        let mut c = cfg(10);
        c.window = WindowConfig { size_secs: 180, slide_secs: 60, offset_secs: 0, allowed_lateness_secs: 0 };
        let mut f = Feeder::new(c);
        f.post(0, 30_000, 0.0); // pane [0, 60 s)
        f.post(0, 90_000, 0.0); // pane [60 s, 120 s)
        f.post(0, 120_000, 0.0); // closes the window ending at 120 s: [-60 s, 120 s) holds 2
        assert_eq!(f.agg.last_window[&0].volume, 2);
        f.post(0, 180_000, 0.0); // window ending at 180 s: [0, 180 s) holds 3
        assert_eq!(f.agg.last_window[&0].volume, 3);
        f.post(0, 300_000, 0.0); // ending at 240 s: [60 s, 240 s) holds 3; at 300 s: [120 s, 300 s) holds 2
        assert_eq!(f.agg.last_window[&0].volume, 2);
    }

    #[test]
    fn late_and_far_future_posts_are_diverted_and_counted() {
        let mut c = cfg(10);
        c.window.allowed_lateness_secs = 30;
        c.limits.max_future_secs = 3600;
        let mut f = Feeder::new(c);
        f.post(3, 100_000, 0.0);
        f.post(3, 75_000, 0.0); // watermark 70 s: on time
        f.post(3, 69_999, 0.0); // behind the watermark: late
        f.post(3, 100_000 + 3_600_001, 0.0); // over an hour ahead of the newest post
        let diverted: Vec<_> =
            f.out.iter().filter_map(|o| if let Output::Diverted(d) = o { Some(d) } else { None }).collect();
        assert_eq!(diverted.len(), 2);
        assert_eq!(diverted[0].reason, Rejection::Late);
        assert_eq!(diverted[0].post_id, "p3");
        assert_eq!(diverted[0].watermark, "1970-01-01T00:01:10.000Z");
        assert_eq!(diverted[1].reason, Rejection::TooFarAhead);
        assert_eq!((f.agg.counters.late, f.agg.counters.too_far_ahead, f.agg.counters.aggregated), (1, 1, 2));
        assert_eq!(diverted[0].entity, "e3");
    }

    #[test]
    fn entity_state_is_capped_with_counted_eviction() {
        let mut f = Feeder::new(cfg(2));
        f.post(0, 1_000, 0.0);
        f.post(1, 2_000, 0.0);
        f.post(2, 3_000, 0.0); // evicts entity 0, the least recently active
        assert_eq!(f.agg.tracked_entities(), 2);
        assert_eq!(f.agg.counters.evicted_entities, 1);
        for e in 10..1000 {
            f.post(e, 4_000, 0.0);
        }
        assert_eq!(f.agg.tracked_entities(), 2);
        assert_eq!(f.agg.counters.evicted_entities, 991);
    }

    #[test]
    fn lifecycle_opened_updated_resolved_then_cooldown() {
        let mut f = Feeder::new(cfg(10));
        // Two hours of 10 mixed posts a minute: the baseline (warm-up is one hour).
        for m in 0..120 {
            for j in 0..10 {
                f.post(0, m * MIN + j * 6_000, if j < 2 { -0.5 } else { 0.3 });
            }
        }
        assert!(f.spikes().is_empty(), "no alert on a steady stream");
        // A complaint storm: 60, then 150 negative posts a minute.
        f.steady(0, 120, 122, 60, -0.7);
        f.steady(0, 122, 125, 150, -0.8);
        // Back to normal for 30 minutes. The storm leaves the windows at 02:10; the evidence for "back at
        // baseline" builds over a few minutes (the incident's residuals did not inflate the dispersions, so
        // calm shows quickly), then ten calm windows resolve the incident at 02:26.
        for m in 125..155 {
            for j in 0..10 {
                f.post(0, m * MIN + j * 6_000, if j < 2 { -0.5 } else { 0.3 });
            }
        }
        // A second storm at 02:35, inside the 30-minute cooldown, opens nothing.
        f.steady(0, 155, 157, 150, -0.8);
        f.steady(0, 157, 160, 10, 0.3);
        let got: Vec<_> =
            f.spikes().iter().map(|e| (e.kind, e.seq, e.severity, crate::time::format_rfc3339(e.window_end))).collect();
        let id = f.spikes()[0].incident_id.clone();
        assert!(f.spikes().iter().all(|e| e.incident_id == id && e.entity == "e0"));
        assert_eq!(
            got,
            vec![
                // 60 negatives where ~2 were expected: 58 excess negative posts make it a warning at once...
                (EventKind::Opened, 0, Severity::Warning, "1970-01-01T02:01:00.000Z".to_string()),
                // ...and 150 a minute pass 250 excess two minutes later.
                (EventKind::Updated, 1, Severity::Critical, "1970-01-01T02:03:00.000Z".to_string()),
                (EventKind::Resolved, 2, Severity::Critical, "1970-01-01T02:26:00.000Z".to_string()),
            ]
        );
        let opened = f.spikes()[0];
        assert_eq!((opened.open_secs, opened.resolution), (0, None));
        let resolved = f.spikes()[2];
        assert_eq!(resolved.open_secs, 25 * 60);
        assert_eq!(resolved.resolution, Some(crate::detect::Resolution::Calm));
        assert_eq!((resolved.peak.volume, resolved.peak.negative), (150, 150));
        assert!(resolved.impact.excess_negative > 500, "{:?}", resolved.impact);
        assert_eq!(opened.counts.volume, 60);
        assert_eq!(opened.counts.negative, 60);
        assert_eq!(opened.evidence.most_negative.len(), 3);
        assert!(matches!(opened.signal, Signal::Volume | Signal::NegativeVolume | Signal::NegativeShare));
        assert_eq!(f.agg.counters.opened, 1);
    }

    #[test]
    fn a_snapshot_of_another_state_version_is_refused_not_misread() {
        let mut f = Feeder::new(cfg(10));
        f.steady(0, 0, 30, 5, 0.2);
        let snap = f.agg.snapshot();
        assert_eq!(snap.version, STATE_VERSION);
        // Round trip through JSON (as in the state topic) restores.
        let json = serde_json::to_value(&snap).unwrap();
        let mut g = Aggregator::new(&cfg(10)).unwrap();
        g.restore(&serde_json::from_value(json.clone()).unwrap(), |n| (n == "e0").then_some(0)).unwrap();
        assert_eq!(g.snapshot(), snap);
        // A snapshot written before versioning (no `version` key) or by another version fails with a message.
        let mut old = json.clone();
        old.as_object_mut().unwrap().remove("version");
        let e = g.restore(&serde_json::from_value(old).unwrap(), |_| Some(0)).unwrap_err();
        assert!(e.contains("state version 0") && e.contains("rebuild"), "{e}");
        let mut newer = json;
        newer["version"] = serde_json::json!(STATE_VERSION + 1);
        assert!(g.restore(&serde_json::from_value(newer).unwrap(), |_| Some(0)).is_err());
    }

    #[test]
    fn low_counts_never_alert() {
        let mut f = Feeder::new(cfg(10));
        // A quiet entity: one post every ten minutes for six hours...
        for m in (0..360).step_by(10) {
            f.post(0, m * MIN, 0.2);
        }
        // ...then three complaints in one minute at "3 a.m.": a huge relative jump, but only three posts.
        for j in 0..3 {
            f.post(0, 360 * MIN + j * 1_000, -0.9);
        }
        f.post(0, 400 * MIN, 0.2);
        assert!(f.spikes().is_empty(), "{:?}", f.spikes());
        // The same jump to thirty complaints does alert.
        f.steady(0, 401, 402, 30, -0.9);
        f.post(0, 403 * MIN, 0.2);
        assert_eq!(f.spikes().len(), 1);
        assert_eq!(f.spikes()[0].kind, EventKind::Opened);
    }
}
