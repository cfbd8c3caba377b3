//! The worker's metrics as a scraper sees them: label caps, series that follow partition moves, and every
//! series the README, the dashboard and the alert rules name present from the start.

use flashpoint_core::aggregate::WindowSummary;
use flashpoint_core::detect::Severity;
use flashpoint_kafka::metrics::Metrics;

#[test]
fn entity_labels_are_capped() {
    let m = Metrics::new(2);
    m.set_entities(&["a".into(), "b".into(), "c".into(), "d".into()]);
    assert_eq!(m.entity_label("a"), "a");
    assert_eq!(m.entity_label("c"), "other");
    assert_eq!(m.entity_label("unknown"), "other");
    let w = WindowSummary { volume: 10, negative_share: 0.5, ..Default::default() };
    let w2 = WindowSummary { volume: 30, negative_share: 0.1, ..Default::default() };
    m.set_entity_gauges([("a", &w), ("c", &w), ("d", &w2)].into_iter(), [("c", Severity::Critical)].into_iter());
    let text = m.render();
    assert!(text.contains("flashpoint_entity_window_volume{entity=\"other\"} 40"), "{text}");
    assert!(text.contains("flashpoint_entity_window_volume{entity=\"a\"} 10"), "{text}");
    assert!(text.contains("flashpoint_open_incidents{entity=\"other\",severity=\"critical\"} 1"), "{text}");
    assert!(!text.contains("entity=\"c\""), "{text}");
}

#[test]
fn consumer_lag_series_of_revoked_partitions_disappear() {
    let m = Metrics::new(10);
    m.set_consumer_lag("score", &[("posts", 0, 5), ("posts", 1, 7)]);
    m.set_consumer_lag("aggregate", &[("scored", 0, 3)]);
    let text = m.render();
    assert!(
        text.contains(r#"flashpoint_consumer_lag_messages{partition="1",stage="score",topic="posts"} 7"#),
        "{text}"
    );
    // Partition 1 moved to another worker: its series goes, the other stage's stays.
    m.set_consumer_lag("score", &[("posts", 0, 2)]);
    let text = m.render();
    assert!(
        text.contains(r#"flashpoint_consumer_lag_messages{partition="0",stage="score",topic="posts"} 2"#),
        "{text}"
    );
    assert!(!text.contains(r#"partition="1",stage="score""#), "{text}");
    assert!(
        text.contains(r#"flashpoint_consumer_lag_messages{partition="0",stage="aggregate",topic="scored"} 3"#),
        "{text}"
    );
    m.set_consumer_lag("score", &[]);
    assert!(!m.render().contains(r#"stage="score",topic="posts""#));
}

/// The metrics the README, the dashboard and the alert rules name exist from the start, as zeros, so
/// rate() and alerts see zeros rather than nothing: only what the worker does at start (registering the
/// watchlist) happens before the render, nothing here creates a series it then looks for. The entity
/// gauges are the exception: they are set at each checkpoint, through `set_entity_gauges`.
#[test]
fn every_documented_metric_is_exposed() {
    let m = Metrics::new(10);
    m.set_entities(&["Acme Air".into()]);
    let w = WindowSummary { volume: 3, ..Default::default() };
    m.set_entity_gauges([("Acme Air", &w)].into_iter(), std::iter::empty());
    let text = m.render();
    for name in [
        "flashpoint_records_consumed_total{stage=\"score\"} 0",
        "flashpoint_records_consumed_total{stage=\"aggregate\"} 0",
        "flashpoint_records_consumed_total{stage=\"notify\"} 0",
        "flashpoint_posts_decoded_total 0",
        "flashpoint_posts_matched_total 0",
        "flashpoint_posts_unmatched_total 0",
        "flashpoint_posts_scored_total 0",
        "flashpoint_posts_unscored_total 0",
        "flashpoint_posts_aggregated_total 0",
        "flashpoint_records_skipped_total 0",
        "flashpoint_duplicate_records_total 0",
        "flashpoint_dead_letter_records_total{reason=\"not_json\"} 0",
        "flashpoint_dead_letter_records_total{reason=\"late\"} 0",
        "flashpoint_dead_letter_records_total{reason=\"not_spike_event\"} 0",
        "flashpoint_dead_letter_records_total{reason=\"notification_failed\"} 0",
        "flashpoint_late_posts_total{entity=\"Acme Air\"} 0",
        "flashpoint_evicted_entities_total 0",
        "flashpoint_terms_dropped_total 0",
        "flashpoint_score_batch_size_bucket{le=\"512\"} 0",
        "flashpoint_score_batch_duration_seconds_bucket{le=\"0.001\"} 0",
        "flashpoint_spike_event_lag_seconds_bucket{le=\"5\"} 0",
        "flashpoint_checkpoint_duration_seconds_count 0",
        "flashpoint_rebalances_total{kind=\"assign\",stage=\"score\"} 0",
        "flashpoint_rebalances_total{kind=\"revoke\",stage=\"aggregate\"} 0",
        "flashpoint_stage_stalled_seconds{stage=\"score\"} 0",
        "flashpoint_commit_failures_total{stage=\"aggregate\"} 0",
        "flashpoint_produce_failures_total 0",
        "flashpoint_spike_events_total{kind=\"opened\"} 0",
        "flashpoint_incidents_opened_total{entity=\"Acme Air\"} 0",
        "flashpoint_incidents_resolved_total{entity=\"Acme Air\"} 0",
        "flashpoint_response_posts_total 0",
        "flashpoint_response_overdue_reminders_total{entity=\"Acme Air\"} 0",
        "flashpoint_entity_window_volume{entity=\"Acme Air\"} 3",
        "flashpoint_entity_negative_share{entity=\"Acme Air\"} 0",
        "flashpoint_entity_mean_compound{entity=\"Acme Air\"} 0",
        "flashpoint_entity_baseline_volume{entity=\"Acme Air\"} 0",
        "flashpoint_entity_baseline_negative_share{entity=\"Acme Air\"} 0",
        "flashpoint_entity_anomaly_score{entity=\"Acme Air\"} 0",
        "flashpoint_open_incidents{entity=\"Acme Air\",severity=\"critical\"} 0",
        "flashpoint_assigned_partitions{stage=\"score\"} 0",
        "flashpoint_assigned_partitions{stage=\"notify\"} 0",
        "flashpoint_ready 0",
    ] {
        assert!(text.contains(name), "missing {name}:\n{text}");
    }
    #[cfg(target_os = "linux")]
    assert!(text.contains("process_resident_memory_bytes"), "{text}");
}

#[test]
fn the_first_response_is_observed_once_and_reminders_are_counted_within_the_label_cap() {
    use flashpoint_core::event::SpikeEvent;
    let m = Metrics::new(1);
    m.set_entities(&["Acme Air".into(), "Globex".into()]);
    let event = |entity: &str, reasons: &[&str], posts: u64, new_posts: u64| -> SpikeEvent {
        serde_json::from_value(serde_json::json!({
            "schema": "flashpoint.spike.v2", "incident_id": "inc-0000000000000001", "seq": 1, "kind": "updated",
            "entity": entity, "incident_start": "2026-03-04T14:04:00.000Z", "window_start": "2026-03-04T14:30:00.000Z",
            "window_end": "2026-03-04T14:35:00.000Z", "signal": "volume", "observed": 1.0, "baseline": 1.0,
            "score": 1.0, "severity": "critical", "negative_share": 0.5, "mean_compound": 0.0, "reach": 0,
            "counts": {"volume": 1, "negative": 1, "neutral": 0, "positive": 0},
            "evidence": {"most_negative": [], "top_reach": [], "top_terms": []},
            "reasons": reasons,
            "response": {"handle": "@AcmeAir", "plan": {"first_response_within_secs": 1800, "update_every_secs": 3600},
                "first_at": "2026-03-04T14:34:10.000Z", "first_secs": 1510, "posts": posts, "new_posts": new_posts,
                "longest_gap_secs": 0, "silent_secs": 0, "reminders": 0},
        }))
        .unwrap()
    };
    for (entity, reasons, posts, new_posts) in [
        ("Acme Air", &["responded"][..], 1, 1),
        ("Acme Air", &["growth"][..], 1, 0),
        ("Acme Air", &["response_overdue"][..], 1, 0),
        ("Acme Air", &["responded"][..], 2, 1),
        ("Globex", &["response_overdue"][..], 0, 0),
    ] {
        let e = event(entity, reasons, posts, new_posts);
        m.observe_response(&m.entity_label(entity), &e);
    }
    let text = m.render();
    for line in [
        "flashpoint_incident_first_response_seconds_count{entity=\"Acme Air\"} 1",
        "flashpoint_incident_first_response_seconds_sum{entity=\"Acme Air\"} 1510",
        "flashpoint_response_overdue_reminders_total{entity=\"Acme Air\"} 1",
        // Past `max_entity_labels`, an entity shares the label `other`.
        "flashpoint_response_overdue_reminders_total{entity=\"other\"} 1",
    ] {
        assert!(text.contains(line), "missing {line}:\n{text}");
    }
}
