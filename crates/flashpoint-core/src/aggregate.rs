//! The windowed aggregator: per-entity panes and detectors, driven by a watermark.
//!
//! It owns all per-entity state of one input (a replay file, or the entity partitions a worker owns). The
//! watermark is the largest event time seen minus the allowed lateness; it advances with every post, so
//! which posts are late and when windows close depend only on the order of the posts, never on batching
//! or wall-clock time. That is what makes a replay and a streaming run of the same records agree.
//!
//! State is bounded: at most `max_entities` entity states (the least recently active quiet one is evicted
//! first), panes only for windows the watermark has not passed, and capped term maps.

use crate::detect::{DetectionConfig, Detector, Thresholds};
use crate::entity::EntityId;
use crate::event::{DivertReason, DivertedPost, Output, SpikeEvent};
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
}

struct EntityState {
    name: String,
    own_terms: Vec<String>,
    panes: VecDeque<Pane>,
    detector: Detector,
    last_event: Millis,
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
    /// Late posts per entity id.
    pub late_by_entity: FxHashMap<EntityId, u64>,
    /// The last closed window per entity, summarised (for gauges).
    pub last_window: FxHashMap<EntityId, WindowSummary>,
}

impl Aggregator {
    pub fn new(cfg: &AggregatorConfig) -> Result<Aggregator, String> {
        let w = &cfg.window;
        let spec = WindowSpec::new(w.size_secs as Millis * 1000, w.slide_secs as Millis * 1000, w.offset_secs as Millis * 1000)
            .map_err(|e| format!("window: {e}"))?;
        let th = cfg.detection.resolve(spec.slide).map_err(|e| format!("detection: {e}"))?;
        if cfg.limits.max_entities == 0 {
            return Err("limits.max_entities must be at least 1".into());
        }
        Ok(Aggregator {
            spec,
            lateness: w.allowed_lateness_secs as Millis * 1000,
            th,
            pane_limits: PaneLimits { evidence_posts: cfg.limits.evidence_posts, max_terms: cfg.limits.max_terms_per_pane },
            limits: cfg.limits.clone(),
            states: FxHashMap::default(),
            max_seen: None,
            next_end: None,
            counters: Counters::default(),
            late_by_entity: FxHashMap::default(),
            last_window: FxHashMap::default(),
        })
    }

    pub fn watermark(&self) -> Option<Millis> {
        self.max_seen.map(|m| m - self.lateness)
    }

    pub fn tracked_entities(&self) -> usize {
        self.states.len()
    }

    pub fn open_incidents(&self) -> impl Iterator<Item = (EntityId, &str, crate::detect::Severity)> + '_ {
        self.states.iter().filter_map(|(id, s)| s.detector.open.as_ref().map(|o| (*id, s.name.as_str(), o.severity)))
    }

    /// Adds one post mentioning `entity`, then advances the watermark and closes the windows it passed.
    pub fn process(&mut self, entity: EntityId, name: &str, own_terms: &[String], p: &PostView, out: &mut Vec<Output>) {
        if let Some(wm) = self.watermark() {
            let reason = if p.created_at < wm {
                Some(DivertReason::Late)
            } else if p.created_at > self.max_seen.unwrap_or(wm) + self.limits.max_future_secs as Millis * 1000 {
                Some(DivertReason::TooFarAhead)
            } else {
                None
            };
            if let Some(reason) = reason {
                match reason {
                    DivertReason::Late => {
                        self.counters.late += 1;
                        *self.late_by_entity.entry(entity).or_default() += 1;
                    }
                    DivertReason::TooFarAhead => self.counters.too_far_ahead += 1,
                }
                out.push(Output::Diverted(DivertedPost {
                    reason,
                    entity: name.to_string(),
                    post_id: p.id.to_string(),
                    created_at: format_rfc3339(p.created_at),
                    watermark: format_rfc3339(wm),
                }));
                return;
            }
        }
        let pane_start = self.spec.pane_start(p.created_at);
        if self.next_end.is_none() {
            self.next_end = Some(pane_start + self.spec.slide);
        }
        if !self.states.contains_key(&entity) && self.states.len() >= self.limits.max_entities {
            self.evict_one();
        }
        let st = self.states.entry(entity).or_insert_with(|| EntityState {
            name: name.to_string(),
            own_terms: own_terms.to_vec(),
            panes: VecDeque::new(),
            detector: Detector::default(),
            last_event: p.created_at,
        });
        st.last_event = st.last_event.max(p.created_at);
        // Panes are kept sorted by start; posts mostly land in the newest one.
        let idx = match st.panes.iter().rposition(|pn| pn.start <= pane_start) {
            Some(i) if st.panes[i].start == pane_start => i,
            Some(i) => {
                st.panes.insert(i + 1, Pane::new(pane_start));
                i + 1
            }
            None => {
                st.panes.push_front(Pane::new(pane_start));
                0
            }
        };
        let before = st.panes[idx].terms_dropped;
        st.panes[idx].add(p, &self.pane_limits, &st.own_terms);
        self.counters.terms_dropped += st.panes[idx].terms_dropped - before;
        self.counters.aggregated += 1;
        self.max_seen = Some(self.max_seen.map_or(p.created_at, |m| m.max(p.created_at)));
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
            let w = WindowStats::from_panes(
                start,
                end,
                st.panes.iter().filter(|p| p.start >= start && p.start < end),
                self.limits.evidence_posts,
                self.limits.top_terms,
            );
            if let Some(d) = st.detector.on_window(&st.name, &w, &self.th) {
                match d.transition {
                    crate::detect::Transition::Opened => self.counters.opened += 1,
                    crate::detect::Transition::Updated => self.counters.updated += 1,
                    crate::detect::Transition::Resolved => self.counters.resolved += 1,
                }
                out.push(Output::Spike(SpikeEvent::new(&st.name, &w, &d)));
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
                st.panes.pop_front();
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
        let victim = self
            .states
            .iter()
            .min_by_key(|(id, s)| (!s.detector.is_quiet(), s.last_event, **id))
            .map(|(id, _)| *id);
        if let Some(v) = victim {
            self.states.remove(&v);
            self.last_window.remove(&v);
            self.counters.evicted_entities += 1;
        }
    }
}
