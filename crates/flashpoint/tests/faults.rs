//! The lighter, regular-suite version of `scripts/faults.sh kill`: one worker SIGKILLed three times at
//! random points of the sample stream and restarted each time (what a supervisor does), then every input
//! record is accounted for and the spike events equal replay's.

use flashpoint_testkit::*;
use std::collections::{BTreeMap, HashSet};
use std::time::{Duration, Instant};

fn consumed(w: &Worker, stage: &str) -> f64 {
    w.metric(&format!("flashpoint_records_consumed_total{{stage=\"{stage}\"}}")).unwrap_or(0.0)
}

#[test]
fn a_worker_killed_at_random_points_and_restarted_loses_nothing() {
    let fx = Fixture::new("kill").kafka_line("checkpoint_interval_ms = 400").build();
    let t = &fx.topics;
    let sample = sample_stream();
    let input = lines(&sample);
    let n = input.len() as i64;
    // Replay: the reference events and counts.
    let dead_file = fx.dir.join("replay-dead.jsonl");
    let out = flashpoint()
        .args(["replay", "-c"])
        .arg(&fx.config)
        .arg("-i")
        .arg(&sample)
        .arg("--dead-letter")
        .arg(&dead_file)
        .output()
        .unwrap();
    assert!(out.status.success());
    let expected: Vec<serde_json::Value> =
        String::from_utf8(out.stdout).unwrap().lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    let summary: serde_json::Value = serde_json::from_str(
        String::from_utf8_lossy(&out.stderr).lines().filter(|l| l.starts_with('{')).last().unwrap(),
    )
    .unwrap();
    let matched = summary["stages"]["matched"].as_u64().unwrap();
    let decode_errors = summary["decode_errors"].as_u64().unwrap();
    let late = summary["aggregator"]["late"].as_u64().unwrap();
    assert!(
        !expected.is_empty() && late > 0 && decode_errors > 0,
        "the sample has an incident, a late post and a bad line"
    );

    // Kill points: random fractions of the input, in increasing order; the seed comes from FLASHPOINT_TEST_SEED
    // when set (to rerun a failure), else from the clock, and is printed either way.
    let seed = seed_from_env("FLASHPOINT_TEST_SEED") | 1;
    let mut x = seed;
    let mut next = || {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        (x % 1000) as f64 / 1000.0
    };
    let mut points: Vec<f64> = (0..3).map(|i| (i as f64 + 0.15 + 0.7 * next()) / 3.0).collect();
    points.sort_by(f64::total_cmp);
    eprintln!(
        "kill points (fractions of the input consumed by the score stage, per worker life): {points:?} (seed {seed})"
    );

    produce(&t.input, &input);
    let mut w = fx.worker("all", "w0");
    let started = Instant::now();
    for (k, f) in points.iter().enumerate() {
        // Each life re-reads from the last commit, so "consumed" counts from there: kill after a fraction of
        // what remains.
        let from = fx.input_committed(0).unwrap_or(0);
        let target = ((n - from) as f64 * f).max(1.0);
        while consumed(&w, "score") < target && started.elapsed() < Duration::from_secs(60) {
            std::thread::sleep(Duration::from_millis(20));
        }
        eprintln!("kill {}: consumed {} from {from}", k + 1, consumed(&w, "score"));
        w.kill();
        w = fx.worker("all", &format!("w{}", k + 1));
    }
    // Done when the score group committed everything and the events are all there.
    let want: BTreeMap<(String, u64), serde_json::Value> = expected.iter().map(|e| (event_key(e), e.clone())).collect();
    let got = read_until(&t.spikes, Duration::from_secs(90), |r| {
        let keys: HashSet<(String, u64)> = r.iter().map(|x| event_key(&x.json())).collect();
        keys.len() >= want.len()
    });
    wait_committed(&t.score_group(), &t.input, 0, n, Duration::from_secs(30));
    let log = w.log_text();
    assert_eq!(w.stop(), 0, "clean exit; log:\n{log}");
    assert_eq!(fx.input_committed(0), Some(n), "every input record committed");

    // Events: duplicates only as exact replays; the set equals replay's.
    let events = dedupe_events(&got.iter().map(Record::json).collect::<Vec<_>>());
    assert_eq!(events.keys().collect::<Vec<_>>(), want.keys().collect::<Vec<_>>(), "(incident id, seq) as replay");
    assert_eq!(events, want, "events equal replay's");

    // Accounting: every input record scored, dead-lettered or unmatched, in replay's numbers.
    let scored = read_all(&t.scored, Duration::from_secs(2));
    let mut sources = HashSet::new();
    let mut pairs = HashSet::new();
    // The company's own replies travel as response records, apart from the matched posts replay counts.
    for r in scored.iter().map(Record::stage_json).filter(|j| j["t"] == "post" && j["response"] != true) {
        let off = r["off"].as_i64().unwrap();
        sources.insert(off);
        pairs.insert((off, r["sub"].as_u64().unwrap_or(0), r["entity"].as_str().unwrap().to_string()));
    }
    let dead = read_all(&t.dead, Duration::from_secs(2));
    let dead_score: HashSet<i64> = dead
        .iter()
        .filter(|r| r.header("flashpoint.stage") == Some("score"))
        .map(|r| r.header("flashpoint.source.offset").unwrap().parse().unwrap())
        .collect();
    let dead_late: HashSet<(i64, u64, String)> = dead
        .iter()
        .filter(|r| r.header("flashpoint.reason") == Some("late"))
        .map(|r| {
            let j = r.stage_json();
            (j["off"].as_i64().unwrap(), j["sub"].as_u64().unwrap_or(0), j["entity"].as_str().unwrap().to_string())
        })
        .collect();
    assert_eq!(sources.len() as u64, matched, "every matched input record scored");
    assert_eq!(dead_score.len() as u64, decode_errors, "every bad input record dead-lettered");
    assert!(sources.is_disjoint(&dead_score));
    assert_eq!(dead_late.len() as u64, late, "late posts dead-lettered as in replay");
    assert!(dead_late.is_subset(&pairs));
    let replay_dead = std::fs::read_to_string(&dead_file).unwrap().lines().count() as u64;
    assert_eq!(replay_dead, late + decode_errors, "replay's dead-letter output: the bad records and the late posts");
}

/// A gaining worker whose newest snapshot is older than the committed offset must apply the records in
/// between. Made here on purpose: the aggregate group's commits are moved ahead of its snapshots over
/// records that were scored while no aggregator ran. The worker used to seek its group consumer back; under
/// rebalance storms (`scripts/faults.sh rebalance`) that seek sometimes had no effect and the records were
/// lost to the windows. That race is not reproducible on demand (here the old seek happens to work), so this
/// test pins down the replacement: the gap is re-read and the events still equal replay's.
#[test]
fn records_between_a_snapshot_and_a_later_commit_are_not_lost() {
    let fx = Fixture::new("gap").kafka_line("checkpoint_interval_ms = 300").build();
    let t = &fx.topics;
    let expected = fx.replay(&sample_stream());
    let input = lines(&sample_stream());
    let (first, second) = input.split_at(input.len() * 3 / 5);
    let (score_group, agg_group) = (t.score_group(), t.aggregate_group());
    let wait_input_committed = |n: i64| {
        assert_eq!(wait_committed(&score_group, &t.input, 0, n, Duration::from_secs(60)), Some(n));
    };

    // 1. Both stages over the first part; a clean stop leaves a snapshot at each committed offset.
    produce(&t.input, first);
    let w = fx.worker("all", "w1");
    wait_input_committed(first.len() as i64);
    let mut last = Vec::new();
    for _ in 0..100 {
        let now: Vec<Option<i64>> = (0..4).map(|p| committed(&agg_group, &t.scored, p)).collect();
        if now == last && now.iter().any(Option::is_some) {
            break;
        }
        last = now;
        std::thread::sleep(Duration::from_millis(500));
    }
    assert_eq!(w.stop(), 0);
    // 2. Only the score stage over the rest: scored records beyond the aggregate group's commits.
    produce(&t.input, second);
    let w = fx.worker("score", "w2");
    wait_input_committed(input.len() as i64);
    assert_eq!(w.stop(), 0);
    // 3. Move the aggregate commits halfway into those records, past every snapshot.
    let scored = read_all(&t.scored, Duration::from_secs(2));
    let mut offsets = Vec::new();
    let mut moved = 0;
    for p in 0..4 {
        let end = scored.iter().filter(|r| r.partition == p).map(|r| r.offset + 1).max().unwrap_or(0);
        let from = committed(&agg_group, &t.scored, p).unwrap_or(0);
        let to = from + (end - from) / 2;
        moved += to - from;
        offsets.push((p, to));
    }
    assert!(moved > 1000, "a real gap: {moved} records");
    commit(&agg_group, &t.scored, &offsets);
    // 4. An aggregator restores the older snapshots and must apply the gap before going on.
    let w = fx.worker("aggregate", "w3");
    let want: BTreeMap<(String, u64), serde_json::Value> = expected.iter().map(|e| (event_key(e), e.clone())).collect();
    let got = read_until(&t.spikes, Duration::from_secs(60), |r| {
        let keys: HashSet<(String, u64)> = r.iter().map(|x| event_key(&x.json())).collect();
        keys.len() >= want.len()
    });
    let log = w.log_text();
    assert_eq!(w.stop(), 0, "log:\n{log}");
    let events = dedupe_events(&got.iter().map(Record::json).collect::<Vec<_>>());
    let brief = |m: &BTreeMap<(String, u64), serde_json::Value>| {
        m.values()
            .map(|e| format!("{} {} {} {}", e["incident_id"], e["seq"], e["kind"], e["baseline"]))
            .collect::<Vec<_>>()
    };
    assert_eq!(brief(&events), brief(&want), "events equal replay's");
    assert_eq!(events, want, "events equal replay's");
    // The gap was there and was filled: re-read through the side reader, or delivered by the group consumer
    // itself when it was re-assigned from a broker batch starting at or before the snapshot (Tansu, see the
    // Kafka crate's `tansu` notes).
    assert!(
        log.contains("re-reading the records between the snapshot and the committed offset")
            || log.contains("resuming from the start of the broker batch holding the committed offset"),
        "the gap was seen; log:\n{log}"
    );
}

/// A stage that fails must take the process down (non-zero exit, for the supervisor to restart it) instead
/// of leaving the other stage running alone. Here the aggregate stage fails on a snapshot it cannot restore;
/// in `scripts/faults.sh pause` it was a snapshot read timing out while the broker was frozen, after which
/// the score stage went on feeding an internal topic nobody aggregated, and /readyz said 503 for ever.
#[test]
fn a_failing_stage_stops_the_whole_worker() {
    let fx = Fixture::new("fail").build();
    let t = &fx.topics;
    create_topic(&t.state, 4);
    // Parses as a snapshot, but its aggregator state is not one: restoring it fails.
    let bogus =
        br#"{"next_offset":0,"applied":{},"aggregator":{"max_seen":null,"next_end":null,"entities":"bogus"}}"#.to_vec();
    produce(&t.state, &[bogus]);
    produce(&t.input, &lines(&sample_stream())[..2000]);
    let mut w = fx.worker("all", "w");
    let status = w.wait_exit(Duration::from_secs(60));
    let log = w.log_text();
    let status = status
        .unwrap_or_else(|| panic!("the worker is still running 60 s after its aggregate stage failed; log:\n{log}"));
    assert!(!status.success(), "non-zero exit; log:\n{log}");
    assert!(log.contains("aggregate stage failed"), "log:\n{log}");
}

/// A score worker that resumes from a committed offset inside a producer batch must read every record from
/// that offset on. Kafka serves the whole batch and the client drops the records before the offset; Tansu
/// 0.6.0 serves only the batches that start at or after it, so without a guard the rest of the batch would
/// never be scored.
#[test]
fn a_score_worker_resuming_inside_a_producer_batch_skips_nothing() {
    let fx = Fixture::new("midbatch").build();
    let t = &fx.topics;
    // One fast burst: the producer packs it into a few large batches.
    let input = &lines(&sample_stream())[..3000];
    produce(&t.input, input);
    let n = input.len() as i64;
    let start = n / 2 + 7;
    let score_group = t.score_group();
    commit(&score_group, &t.input, &[(0, start)]);

    let w = fx.worker("score", "w");
    wait_committed(&score_group, &t.input, 0, n, Duration::from_secs(60));
    let got = consumed(&w, "score");
    let log = w.log_text();
    assert_eq!(w.stop(), 0);
    assert_eq!(committed(&score_group, &t.input, 0), Some(n), "log:\n{log}");
    assert_eq!(got as i64, n - start, "records {start}..{n} all consumed by the score stage; log:\n{log}");
}

/// The same for the aggregate stage, at the end of its partition: a group whose committed offset lies inside
/// the last producer batch of the scored topic gets nothing at all from Tansu 0.6.0 unless it is assigned from
/// the batch start. The records from the committed offset on must all be applied, those before it not.
#[test]
fn an_aggregate_worker_resuming_inside_the_last_producer_batch_applies_the_rest() {
    use flashpoint_core::sentiment::Label;
    use flashpoint_core::stage::{ScoredPost, StageRecord};
    let fx = Fixture::new("aggmid").build();
    let t = &fx.topics;
    create_topic(&t.scored, 1);
    // One fast burst of stage records: the producer packs it into a few large batches.
    let n = 3000i64;
    let records: Vec<Vec<u8>> = (0..n)
        .map(|i| {
            StageRecord::Post(ScoredPost {
                entity: "Acme Air".into(),
                id: i.to_string().into(),
                text: "Acme Air lost my bag".into(),
                created_at: 1_772_409_600_000 + i * 1000,
                author: None,
                followers: None,
                compound: -0.5,
                label: Label::Negative,
                url: None,
                author_url: None,
                platform: None,
                src: format!("{}/0", t.input).into(),
                off: i,
                sub: 0,
                response: false,
            })
            .encode()
        })
        .collect();
    produce(&t.scored, &records);
    let start = n - 5;
    let group = t.aggregate_group();
    commit(&group, &t.scored, &[(0, start)]);

    let w = fx.worker("aggregate", "w");
    wait_committed(&group, &t.scored, 0, n, Duration::from_secs(60));
    let aggregated = w.metric("flashpoint_posts_aggregated_total");
    let log = w.log_text();
    assert_eq!(w.stop(), 0);
    assert_eq!(committed(&group, &t.scored, 0), Some(n), "log:\n{log}");
    assert_eq!(aggregated, Some((n - start) as f64), "records {start}..{n} applied, none before; log:\n{log}");
}
