//! The worker's Prometheus metrics, and the health flags behind `/readyz`.
//!
//! Label sets are bounded by construction: stages, reasons and severities are fixed enums; partitions are
//! bounded by the topics' partition counts; entities come from the configured watchlist and anything past
//! `max_entity_labels` shares the label `other`, so a huge watchlist cannot explode the series count.

pub use crate::health::{now_ms, Health, Progress, STALL_MS, STATS_STALE_MS};
use crate::role::Stage;
use flashpoint_core::aggregate::WindowSummary;
use flashpoint_core::detect::Severity;
use prometheus::{
    Encoder, GaugeVec, Histogram, HistogramOpts, HistogramVec, IntCounter, IntCounterVec, IntGauge, IntGaugeVec, Opts,
    Registry,
};
use rustc_hash::FxHashMap;
use std::sync::Mutex;

pub struct Metrics {
    pub registry: Registry,
    /// Records read from Kafka, by stage.
    pub consumed: IntCounterVec,
    /// Posts decoded from input records.
    pub decoded: IntCounter,
    /// Input records that held no post (e.g. a Bluesky delete): not errors.
    pub skipped: IntCounter,
    pub matched: IntCounter,
    pub unmatched: IntCounter,
    pub scored: IntCounter,
    /// Matched posts in a language the scorer does not read (label `unscored`).
    pub unscored: IntCounter,
    pub aggregated: IntCounter,
    /// Stage records dropped as re-deliveries of already-applied posts.
    pub duplicates: IntCounter,
    pub dead_lettered: IntCounterVec,
    pub late: IntCounterVec,
    pub evicted: IntCounter,
    pub terms_dropped: IntCounter,
    pub batch_size: Histogram,
    pub score_seconds: Histogram,
    /// Wall-clock time from the end of the window to the spike event's publication: how long after the
    /// evidence existed the responders could know.
    pub event_lag_seconds: Histogram,
    pub checkpoint_seconds: Histogram,
    pub consumer_lag: IntGaugeVec,
    pub rebalances: IntCounterVec,
    pub commit_failures: IntCounterVec,
    pub produce_failures: IntCounter,
    pub spike_events: IntCounterVec,
    pub incidents_opened: IntCounterVec,
    pub incidents_resolved: IntCounterVec,
    /// The company's own posts applied as responses (`flashpoint-core::detect::response`).
    pub responses: IntCounter,
    pub first_response_seconds: HistogramVec,
    pub response_overdue: IntCounterVec,
    pub window_volume: GaugeVec,
    pub negative_share: GaugeVec,
    pub mean_compound: GaugeVec,
    pub baseline_volume: GaugeVec,
    pub baseline_negative_share: GaugeVec,
    pub anomaly_score: GaugeVec,
    pub open_incidents: IntGaugeVec,
    pub assigned_partitions: IntGaugeVec,
    /// Seconds a stage's oldest output has waited (0 when nothing waits): see `Progress`.
    pub stalled_seconds: IntGaugeVec,
    pub ready: IntGauge,
    entity_labels: Mutex<FxHashMap<String, String>>,
    max_entity_labels: usize,
    /// The (stage, topic, partition) lag series set by the last statistics report of each stage, so a
    /// partition that moved to another worker loses its series here (sums across workers stay right).
    lag_series: Mutex<FxHashMap<&'static str, Vec<(String, i32)>>>,
    pub health: Health,
}

fn counter(r: &Registry, name: &str, help: &str) -> IntCounter {
    let c = IntCounter::new(name, help).expect("valid metric");
    r.register(Box::new(c.clone())).expect("unique metric");
    c
}

fn counter_vec(r: &Registry, name: &str, help: &str, labels: &[&str]) -> IntCounterVec {
    let c = IntCounterVec::new(Opts::new(name, help), labels).expect("valid metric");
    r.register(Box::new(c.clone())).expect("unique metric");
    c
}

fn gauge_vec(r: &Registry, name: &str, help: &str, labels: &[&str]) -> GaugeVec {
    let g = GaugeVec::new(Opts::new(name, help), labels).expect("valid metric");
    r.register(Box::new(g.clone())).expect("unique metric");
    g
}

fn int_gauge_vec(r: &Registry, name: &str, help: &str, labels: &[&str]) -> IntGaugeVec {
    let g = IntGaugeVec::new(Opts::new(name, help), labels).expect("valid metric");
    r.register(Box::new(g.clone())).expect("unique metric");
    g
}

fn histogram(r: &Registry, name: &str, help: &str, buckets: Vec<f64>) -> Histogram {
    let h = Histogram::with_opts(HistogramOpts::new(name, help).buckets(buckets)).expect("valid metric");
    r.register(Box::new(h.clone())).expect("unique metric");
    h
}

impl Metrics {
    pub fn new(max_entity_labels: usize) -> Metrics {
        let r = Registry::new();
        #[cfg(target_os = "linux")]
        r.register(Box::new(prometheus::process_collector::ProcessCollector::for_self())).expect("process metrics");
        let ready = IntGauge::new("flashpoint_ready", "1 when /readyz would answer 200").expect("valid metric");
        r.register(Box::new(ready.clone())).expect("unique metric");
        let m = Metrics {
            consumed: counter_vec(&r, "flashpoint_records_consumed_total", "Kafka records read, by stage", &["stage"]),
            decoded: counter(&r, "flashpoint_posts_decoded_total", "Posts decoded from input records"),
            skipped: counter(&r, "flashpoint_records_skipped_total", "Input records holding no post (e.g. deletes)"),
            matched: counter(&r, "flashpoint_posts_matched_total", "Posts mentioning at least one watched entity"),
            unmatched: counter(&r, "flashpoint_posts_unmatched_total", "Posts mentioning no watched entity"),
            scored: counter(&r, "flashpoint_posts_scored_total", "Matched posts scored for sentiment"),
            unscored: counter(
                &r,
                "flashpoint_posts_unscored_total",
                "Matched posts not scored: in a language the scorer does not read",
            ),
            aggregated: counter(&r, "flashpoint_posts_aggregated_total", "(post, entity) pairs added to windows"),
            duplicates: counter(
                &r,
                "flashpoint_duplicate_records_total",
                "Re-delivered stage records dropped by de-duplication",
            ),
            dead_lettered: counter_vec(
                &r,
                "flashpoint_dead_letter_records_total",
                "Records sent to the dead-letter topic, by reason",
                &["reason"],
            ),
            late: counter_vec(&r, "flashpoint_late_posts_total", "Posts behind the watermark, by entity", &["entity"]),
            evicted: counter(&r, "flashpoint_evicted_entities_total", "Entity states evicted by the state cap"),
            terms_dropped: counter(
                &r,
                "flashpoint_terms_dropped_total",
                "Terms not counted because a pane hit its term cap",
            ),
            batch_size: histogram(
                &r,
                "flashpoint_score_batch_size",
                "Posts per scoring batch",
                vec![1.0, 8.0, 32.0, 64.0, 128.0, 256.0, 512.0, 1024.0, 2048.0],
            ),
            score_seconds: histogram(
                &r,
                "flashpoint_score_batch_duration_seconds",
                "Time to decode, match and score one batch",
                vec![
                    0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0,
                    10.0,
                ],
            ),
            event_lag_seconds: histogram(
                &r,
                "flashpoint_spike_event_lag_seconds",
                "Wall-clock delay from window end to spike event publication",
                vec![0.1, 0.5, 1.0, 5.0, 15.0, 30.0, 60.0, 120.0, 300.0, 900.0, 3600.0, 86400.0],
            ),
            checkpoint_seconds: histogram(
                &r,
                "flashpoint_checkpoint_duration_seconds",
                "Time to make outputs durable, write state and commit",
                vec![0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0],
            ),
            consumer_lag: int_gauge_vec(
                &r,
                "flashpoint_consumer_lag_messages",
                "Messages behind the partition's end, from librdkafka statistics",
                &["stage", "topic", "partition"],
            ),
            rebalances: counter_vec(
                &r,
                "flashpoint_rebalances_total",
                "Consumer group rebalances, by stage and kind",
                &["stage", "kind"],
            ),
            commit_failures: counter_vec(
                &r,
                "flashpoint_commit_failures_total",
                "Failed offset commits, by stage",
                &["stage"],
            ),
            produce_failures: counter(
                &r,
                "flashpoint_produce_failures_total",
                "Records librdkafka failed to deliver (the worker stops without committing)",
            ),
            spike_events: counter_vec(
                &r,
                "flashpoint_spike_events_total",
                "Spike events published, by kind",
                &["kind"],
            ),
            incidents_opened: counter_vec(
                &r,
                "flashpoint_incidents_opened_total",
                "Incidents opened, by entity",
                &["entity"],
            ),
            incidents_resolved: counter_vec(
                &r,
                "flashpoint_incidents_resolved_total",
                "Incidents resolved, by entity",
                &["entity"],
            ),
            responses: counter(
                &r,
                "flashpoint_response_posts_total",
                "Posts by watched entities' own accounts, followed as their responses",
            ),
            first_response_seconds: {
                let opts = HistogramOpts::new(
                    "flashpoint_incident_first_response_seconds",
                    "From an incident's opening to the company's first response, by entity",
                )
                .buckets(vec![60.0, 300.0, 600.0, 900.0, 1800.0, 3600.0, 7200.0, 14400.0, 43200.0]);
                let h = HistogramVec::new(opts, &["entity"]).expect("valid metric");
                r.register(Box::new(h.clone())).expect("unique metric");
                h
            },
            response_overdue: counter_vec(
                &r,
                "flashpoint_response_overdue_reminders_total",
                "Incident events reminding that the response plan's first response or next update is overdue, by entity",
                &["entity"],
            ),
            window_volume: gauge_vec(
                &r,
                "flashpoint_entity_window_volume",
                "Posts in the entity's last closed window",
                &["entity"],
            ),
            negative_share: gauge_vec(
                &r,
                "flashpoint_entity_negative_share",
                "Negative share of the last closed window",
                &["entity"],
            ),
            mean_compound: gauge_vec(
                &r,
                "flashpoint_entity_mean_compound",
                "Mean compound sentiment of the last closed window",
                &["entity"],
            ),
            baseline_volume: gauge_vec(
                &r,
                "flashpoint_entity_baseline_volume",
                "Expected window volume from the baseline",
                &["entity"],
            ),
            baseline_negative_share: gauge_vec(
                &r,
                "flashpoint_entity_baseline_negative_share",
                "Baseline negative share",
                &["entity"],
            ),
            anomaly_score: gauge_vec(
                &r,
                "flashpoint_entity_anomaly_score",
                "Highest signal score of the last closed window: the strongest statistic over its calibrated threshold (1 = alarm)",
                &["entity"],
            ),
            open_incidents: int_gauge_vec(
                &r,
                "flashpoint_open_incidents",
                "Open incidents, by entity and severity",
                &["entity", "severity"],
            ),
            stalled_seconds: int_gauge_vec(
                &r,
                "flashpoint_stage_stalled_seconds",
                "Seconds the stage's oldest output has waited to be enqueued or acknowledged (0: none waits)",
                &["stage"],
            ),
            assigned_partitions: int_gauge_vec(
                &r,
                "flashpoint_assigned_partitions",
                "Partitions this worker owns, by stage",
                &["stage"],
            ),
            ready,
            entity_labels: Mutex::new(FxHashMap::default()),
            max_entity_labels,
            lag_series: Mutex::new(FxHashMap::default()),
            health: Health::default(),
            registry: r,
        };
        // Series that exist from the start, so rate() and alerts see zeros rather than nothing.
        for s in Stage::ALL.map(Stage::as_str) {
            m.consumed.with_label_values(&[s]);
            m.commit_failures.with_label_values(&[s]);
            m.assigned_partitions.with_label_values(&[s]);
            m.stalled_seconds.with_label_values(&[s]);
            for kind in ["assign", "revoke"] {
                m.rebalances.with_label_values(&[s, kind]);
            }
        }
        for reason in flashpoint_core::reject::Rejection::ALL.map(|r| r.reason()) {
            m.dead_lettered.with_label_values(&[reason]);
        }
        for kind in ["opened", "updated", "resolved"] {
            m.spike_events.with_label_values(&[kind]);
        }
        m
    }

    /// The response figures of one spike event (entity already mapped to its bounded label): the first
    /// response's delay on the event that first carries it, and each overdue reminder.
    pub fn observe_response(&self, label: &str, e: &flashpoint_core::event::SpikeEvent) {
        use flashpoint_core::detect::Reason;
        if let Some(r) = &e.response {
            if let Some(first) = r.first_secs.filter(|_| r.new_posts > 0 && r.new_posts == r.posts) {
                self.first_response_seconds.with_label_values(&[label]).observe(first as f64);
            }
        }
        if e.reasons.contains(&Reason::ResponseOverdue) {
            self.response_overdue.with_label_values(&[label]).inc();
        }
    }

    /// Registers the watchlist's names in order; the first `max_entity_labels` get their own label.
    pub fn set_entities(&self, names: &[String]) {
        let mut map = self.entity_labels.lock().expect("not poisoned");
        map.clear();
        for (i, n) in names.iter().enumerate() {
            let label = if i < self.max_entity_labels { n.clone() } else { "other".to_string() };
            map.insert(n.clone(), label);
        }
        for label in map.values() {
            self.incidents_opened.with_label_values(&[label]);
            self.incidents_resolved.with_label_values(&[label]);
            self.late.with_label_values(&[label]);
            // From zero, so the first reminder shows as an increase. (The first-response histogram is left to its
            // first observation: ten buckets per watched entity for a figure most entities never have.)
            self.response_overdue.with_label_values(&[label]);
            for sev in ["watch", "warning", "critical"] {
                self.open_incidents.with_label_values(&[label, sev]);
            }
        }
    }

    pub fn entity_label(&self, name: &str) -> String {
        self.entity_labels.lock().expect("not poisoned").get(name).cloned().unwrap_or_else(|| "other".to_string())
    }

    /// Replaces the per-entity gauges with the current windows and incidents of the partitions this worker
    /// owns (entities that moved to another worker disappear from here, so sums across workers stay right).
    pub fn set_entity_gauges<'a>(
        &self,
        windows: impl Iterator<Item = (&'a str, &'a WindowSummary)>,
        open: impl Iterator<Item = (&'a str, Severity)>,
    ) {
        let gauges = [
            &self.window_volume,
            &self.negative_share,
            &self.mean_compound,
            &self.baseline_volume,
            &self.baseline_negative_share,
            &self.anomaly_score,
        ];
        let mut seen: FxHashMap<String, [f64; 6]> = FxHashMap::default();
        let mut other_n = 0.0;
        for (name, w) in windows {
            let label = self.entity_label(name);
            let v = [
                w.volume as f64,
                w.negative_share,
                w.mean_compound,
                w.baseline_volume,
                w.baseline_negative_share,
                w.score,
            ];
            if label == "other" {
                // Sums for volumes, means for shares would need weights; keep `other` simple: totals and maxima.
                let e = seen.entry(label).or_insert([0.0, 0.0, 0.0, 0.0, 0.0, f64::MIN]);
                e[0] += v[0];
                e[3] += v[3];
                e[1] += v[1];
                e[2] += v[2];
                e[4] += v[4];
                e[5] = e[5].max(v[5]);
                other_n += 1.0;
            } else {
                seen.insert(label, v);
            }
        }
        if let Some(e) = seen.get_mut("other") {
            for i in [1, 2, 4] {
                e[i] /= other_n;
            }
        }
        for g in gauges {
            g.reset();
        }
        for (label, v) in &seen {
            for (g, x) in gauges.iter().zip(v) {
                g.with_label_values(&[label]).set(*x);
            }
        }
        let mut counts: FxHashMap<(String, Severity), i64> = FxHashMap::default();
        for (name, sev) in open {
            *counts.entry((self.entity_label(name), sev)).or_default() += 1;
        }
        for label in self.entity_labels.lock().expect("not poisoned").values() {
            for sev in [Severity::Watch, Severity::Warning, Severity::Critical] {
                let n = counts.get(&(label.clone(), sev)).copied().unwrap_or(0);
                self.open_incidents.with_label_values(&[label, sev.as_str()]).set(n);
            }
        }
    }

    /// Sets one stage's consumer lag from a statistics report: `lags` holds (topic, partition, lag) for
    /// the partitions the stage consumes and whose lag librdkafka knows. Series of partitions absent from
    /// the report (revoked, or lag unknown) are removed rather than left at a stale value.
    pub fn set_consumer_lag(&self, stage: &'static str, lags: &[(&str, i32, i64)]) {
        let mut all = self.lag_series.lock().expect("not poisoned");
        let prev = all.entry(stage).or_default();
        for (topic, p) in prev.iter() {
            if !lags.iter().any(|(t, q, _)| t == topic && q == p) {
                let _ = self.consumer_lag.remove_label_values(&[stage, topic, &p.to_string()]);
            }
        }
        prev.clear();
        for (topic, p, lag) in lags {
            self.consumer_lag.with_label_values(&[stage, topic, &p.to_string()]).set(*lag);
            prev.push((topic.to_string(), *p));
        }
    }

    /// The text exposition for `/metrics`.
    pub fn render(&self) -> String {
        let now = now_ms();
        self.ready.set(self.health.ready_at(now).is_ok() as i64);
        for stage in Stage::ALL {
            let s = self.health.progress(stage).stalled_ms(now) / 1000;
            self.stalled_seconds.with_label_values(&[stage.as_str()]).set(s as i64);
        }
        let mut buf = Vec::new();
        prometheus::TextEncoder::new().encode(&self.registry.gather(), &mut buf).expect("text encoding cannot fail");
        String::from_utf8(buf).expect("prometheus text is UTF-8")
    }
}
