//! The cluster worker against a real Kafka-protocol broker (Tansu on 127.0.0.1, started by scripts/test.sh).
//!
//! Each test uses its own topics and groups, so they run in parallel against one broker.

use flashpoint_testkit::*;
use std::collections::BTreeMap;
use std::time::Duration;

/// Asserts two event sets are equal, printing only their keys when they are not (events are large).
fn assert_same_events(
    got: &BTreeMap<(String, u64), serde_json::Value>,
    want: &BTreeMap<(String, u64), serde_json::Value>,
    what: &str,
) {
    let (gk, wk): (Vec<_>, Vec<_>) = (got.keys().collect(), want.keys().collect());
    assert_eq!(gk, wk, "{what}: (incident id, seq) differ");
    for (k, v) in want {
        assert_eq!(&got[k], v, "{what}: event {k:?} differs");
    }
}

#[test]
fn worker_publishes_the_same_events_as_replay_and_commits_on_sigterm() {
    let fx = Fixture::new("e2e").build();
    let t = &fx.topics;
    let expected = fx.replay(&sample_stream());
    assert!(expected.len() >= 3, "the sample stream holds an incident");
    let input = lines(&sample_stream());
    produce(&t.input, &input);

    let w = fx.worker("all", "worker");
    let got = read_until(&t.spikes, Duration::from_secs(90), |r| r.len() >= expected.len());
    let events: Vec<serde_json::Value> = got.iter().map(Record::json).collect();
    let log = w.log_text();
    assert_eq!(w.stop(), 0, "clean exit on SIGTERM; log:\n{log}");
    assert_same_events(&dedupe_events(&events), &dedupe_events(&expected), "cluster run equals replay");
    // Headers let consumers de-duplicate without parsing.
    let first = &got[0];
    assert_eq!(first.header("flashpoint.incident_id"), events[0]["incident_id"].as_str());
    assert_eq!(first.key.as_deref(), Some(events[0]["entity"].as_str().unwrap().as_bytes()));
    // Shutdown drained and committed everything it read.
    assert_eq!(fx.input_committed(0), Some(input.len() as i64));
    // The one late post of the sample went to the dead-letter topic, as in replay.
    let dead = read_all(&t.dead, Duration::from_secs(3));
    let reasons: Vec<&str> = dead.iter().filter_map(|r| r.header("flashpoint.reason")).collect();
    assert!(reasons.contains(&"late"), "{reasons:?}");
}

/// The airline's replies arrive on another input partition than the complaints (as a separate feed of the
/// company's own account would): keyed by entity on the scored topic, they reach the aggregator that holds the
/// complaints, and the worker's events, response state and reminder included, equal replay's.
#[test]
fn responses_on_another_partition_than_the_complaints_reach_the_incident() {
    let fx = Fixture::new("respond").input_partitions(Some(2)).build();
    let t = &fx.topics;
    let expected = fx.replay(&sample_stream());
    let reasons = |e: &serde_json::Value, r: &str| e["reasons"].as_array().is_some_and(|a| a.iter().any(|x| x == r));
    assert_eq!(expected.iter().filter(|e| reasons(e, "responded")).count(), 3, "the sample's three replies");
    assert_eq!(expected.iter().filter(|e| reasons(e, "response_overdue")).count(), 1);
    let (replies, complaints): (Vec<Vec<u8>>, Vec<Vec<u8>>) = lines(&sample_stream())
        .into_iter()
        .partition(|l| String::from_utf8_lossy(l).contains(r#""author": "AcmeAir""#));
    assert_eq!(replies.len(), 3);
    // The replies first, and only once they are on the scored topic the complaints: a reply is then read ahead
    // of the complaints of its time, which is what a faster partition does (it waits in its pane).
    produce_to(&t.input, 1, &replies);
    let w = fx.worker("all", "worker");
    let scored = read_until(&t.scored, Duration::from_secs(60), |r| {
        r.iter().filter(|x| x.payload.first() == Some(&0xB3)).count() >= 3
    });
    let keys: Vec<_> = scored.iter().filter(|x| x.payload.first() == Some(&0xB3)).map(|x| x.key.clone()).collect();
    assert_eq!(keys, vec![Some(b"Acme Air".to_vec()); 3], "response records keyed by their entity");
    produce_to(&t.input, 0, &complaints);
    let got = read_until(&t.spikes, Duration::from_secs(90), |r| r.len() >= expected.len());
    let events: Vec<serde_json::Value> = got.iter().map(Record::json).collect();
    let log = w.log_text();
    assert_eq!(w.stop(), 0, "clean exit on SIGTERM; log:\n{log}");
    assert_same_events(&dedupe_events(&events), &dedupe_events(&expected), "responses from another partition");
    let last = &events[events.len() - 1];
    assert_eq!((last["response"]["posts"].as_u64(), last["post_mortem"]["responses"].as_u64()), (Some(3), Some(3)));
}

#[test]
fn bad_records_go_to_the_dead_letter_topic_with_reasons_and_valid_ones_are_processed() {
    let fx = Fixture::new("dlq").build();
    let t = &fx.topics;
    let text = std::fs::read_to_string(&fx.config).unwrap();
    assert!(text.contains("max_record_bytes = 1048576"));
    std::fs::write(&fx.config, text.replace("max_record_bytes = 1048576", "max_record_bytes = 4096")).unwrap();
    let valid = |i: u32| {
        format!(r#"{{"id":"v{i}","text":"Acme Air lost my bag again","created_at":"2026-03-04T10:{:02}:00Z"}}"#, i % 60)
            .into_bytes()
    };
    let mut bad: Vec<(&str, Vec<u8>)> = vec![
        ("not_json", b"this is not json".to_vec()),
        ("not_utf8", vec![b'{', 0xff, 0xfe, b'}']),
        ("no_text", br#"{"id":"x1","created_at":"2026-03-04T10:00:00Z"}"#.to_vec()),
        ("no_id", br#"{"text":"Acme Air","created_at":"2026-03-04T10:00:00Z"}"#.to_vec()),
        ("no_time", br#"{"id":"x2","text":"Acme Air"}"#.to_vec()),
        ("bad_time", br#"{"id":"x3","text":"Acme Air","created_at":"yesterday-ish"}"#.to_vec()),
        (
            "oversize",
            format!(r#"{{"id":"x4","text":"{}","created_at":"2026-03-04T10:00:00Z"}}"#, "a".repeat(5000)).into_bytes(),
        ),
        ("not_json", Vec::new()),
    ];
    // Deeply nested JSON: a parse error, never a stack overflow.
    bad.push(("not_json", format!("{}{}", "[".repeat(1500), "]".repeat(1500)).into_bytes()));
    let mut payloads = Vec::new();
    let mut expected_bad = Vec::new();
    let mut n_valid = 0;
    for (i, (reason, b)) in bad.iter().enumerate() {
        for k in 0..3 {
            payloads.push(valid(i as u32 * 3 + k));
            n_valid += 1;
        }
        expected_bad.push((payloads.len() as i64, *reason, b.clone()));
        payloads.push(b.clone());
    }
    produce(&t.input, &payloads);
    let mut w = fx.worker("all", "worker");
    let dead = read_until(&t.dead, Duration::from_secs(60), |r| r.len() >= expected_bad.len());
    let scored = read_until(&t.scored, Duration::from_secs(60), |r| {
        r.iter().filter(|x| x.stage_json()["t"] == "post").count() >= n_valid
    });
    assert!(w.alive(), "bad input never crashes the worker; log:\n{}", w.log_text());
    assert_eq!(w.stop(), 0);
    let mut got: Vec<(i64, String, Vec<u8>)> = dead
        .iter()
        .map(|r| {
            assert_eq!(r.header("flashpoint.source.topic"), Some(t.input.as_str()));
            assert_eq!(r.header("flashpoint.source.partition"), Some("0"));
            assert_eq!(r.header("flashpoint.stage"), Some("score"));
            (
                r.header("flashpoint.source.offset").unwrap().parse().unwrap(),
                r.header("flashpoint.reason").unwrap().to_string(),
                r.payload.clone(),
            )
        })
        .collect();
    got.sort();
    let want: Vec<(i64, String, Vec<u8>)> =
        expected_bad.iter().map(|(o, r, b)| (*o, r.to_string(), b.clone())).collect();
    let brief =
        |v: &[(i64, String, Vec<u8>)]| v.iter().map(|(o, r, b)| format!("{o}:{r}:{}B", b.len())).collect::<Vec<_>>();
    assert_eq!(brief(&got), brief(&want), "offsets and reasons");
    assert_eq!(got, want, "every bad record, with its reason, source offset and original bytes");
    let posts: Vec<String> = scored
        .iter()
        .map(Record::stage_json)
        .filter(|j| j["t"] == "post")
        .map(|j| j["id"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(posts.len(), n_valid, "every valid record scored and republished once");
}

/// Two workers in one group; one is SIGKILLed mid-stream and, as a supervisor would, started again.
///
/// Why the restart: on Tansu 0.6.0 a survivor alone never gets a dead member's partitions. Its group
/// coordinator expires the dead member inside `Inner<Formed>::heartbeat`
/// (tansu-broker src/coordinator/group/administrator.rs, `missed_heartbeat`, ~line 2089) and answers
/// RebalanceInProgress, but leaves the group in the Formed state, so the survivor's re-join and SyncGroup
/// hand back the previous generation's assignment (reproduced with a bare librdkafka consumer pair). A new
/// member joining starts a real rebalance, which is what a restarted pod does. Against Apache Kafka the
/// survivor takes over by itself.
#[test]
fn two_workers_share_the_work_and_survive_a_sigkill_without_losing_an_incident() {
    // Short checkpoints so a kill lands between them often.
    let fx = Fixture::new("pair").kafka_line("checkpoint_interval_ms = 300").build();
    let t = &fx.topics;
    let expected = fx.replay(&sample_stream());
    let input = lines(&sample_stream());
    let (first, second) = input.split_at(input.len() / 2);

    let a = fx.worker("all", "a");
    let b = fx.worker("all", "b");
    produce(&t.input, first);
    // Let both join and work on the first half, then kill one without warning.
    let scored = read_until(&t.scored, Duration::from_secs(60), |r| r.len() >= 3000);
    assert!(scored.len() >= 3000, "workers are scoring; log:\n{}", a.log_text());
    a.kill();
    produce(&t.input, second);
    // After the dead member's session (6 s) expired, its replacement joins.
    std::thread::sleep(Duration::from_secs(8));
    let c = fx.worker("all", "c");
    // Wait for every expected event (not merely as many events): a wrong run must not end the wait early.
    let want = dedupe_events(&expected);
    let got = read_until(&t.spikes, Duration::from_secs(120), |r| {
        let have = dedupe_events(&r.iter().map(Record::json).collect::<Vec<_>>());
        want.keys().all(|k| have.contains_key(k))
    });
    let events: Vec<serde_json::Value> = got.iter().map(Record::json).collect();
    let log = b.log_text();
    assert_eq!(b.stop(), 0, "survivor exits cleanly; log:\n{log}");
    let log = c.log_text();
    assert_eq!(c.stop(), 0, "replacement exits cleanly; log:\n{log}");
    assert_same_events(
        &dedupe_events(&events),
        &dedupe_events(&expected),
        "no incident lost or changed; duplicates only as exact replays",
    );
}

/// A small valid post mentioning a watched entity.
fn small_post(i: usize) -> Vec<u8> {
    // One minute apart and in order from 10:00 (past 10:59 into the next hour, not back to 10:00: a post an hour
    // behind the watermark is late, and its dead letter would race the one these tests wait for).
    let (h, m) = (10 + i / 60, i % 60);
    format!(r#"{{"id":"p{i}","text":"Acme Air lost my bag again","created_at":"2026-03-04T{h:02}:{m:02}:00Z"}}"#)
        .into_bytes()
}

/// A valid post of exactly `size` bytes (its text padded).
fn post_of(size: usize, id: &str) -> Vec<u8> {
    let head = format!(r#"{{"id":"{id}","created_at":"2026-03-04T10:30:00Z","text":"Acme Air "#);
    let pad = size - head.len() - 2;
    let mut v = head.into_bytes();
    v.extend(std::iter::repeat(b'a').take(pad));
    v.extend_from_slice(b"\"}");
    assert_eq!(v.len(), size);
    v
}

/// Waits for the worker's /readyz to answer 200 (bounded), returning the last answer.
fn wait_ready(w: &Worker) -> (u16, String) {
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    loop {
        let r = try_http_get(&w.addr, "/readyz").unwrap_or((0, String::new()));
        if r.0 == 200 || std::time::Instant::now() > deadline {
            return r;
        }
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// Waits (bounded) for the score group to commit `end` on the input partition (the auto-commit runs every
/// second) and asserts it did, that the worker is ready; returns its metrics.
fn committed_past_and_ready(t: &Topics, end: i64, w: &Worker) -> String {
    let got = wait_committed(&t.score_group(), &t.input, 0, end, Duration::from_secs(30));
    assert_eq!(got, Some(end), "committed past the records over the limits");
    let (code, body) = wait_ready(w);
    assert_eq!(code, 200, "ready: {body}");
    http_get(&w.addr, "/metrics").1
}

/// The outage this guards against: one input record over `input.max_record_bytes` (1,071,070 bytes, as in the
/// report, between small posts, `--role all`, one partition). Its dead letter used to exceed librdkafka's
/// default `message.max.bytes`, the enqueue was retried forever in silence, the score group never committed,
/// /readyz said ready and SIGTERM hung. Now: dead letter written, offsets committed past it, ready, clean exit.
#[test]
fn a_record_over_the_input_limit_is_dead_lettered_and_the_stage_commits_past_it() {
    let fx = Fixture::new("poison").build();
    let t = &fx.topics;
    let mut payloads: Vec<Vec<u8>> = (0..51).map(small_post).collect();
    let big_at = payloads.len() as i64;
    let big = post_of(1_071_070, "big");
    payloads.push(big.clone());
    payloads.extend((51..102).map(small_post));
    produce(&t.input, &payloads);

    let w = fx.worker("all", "worker");
    let dead = read_until(&t.dead, Duration::from_secs(60), |r| !r.is_empty());
    assert_eq!(dead.len(), 1, "one dead letter; log:\n{}", w.log_text());
    let d = &dead[0];
    assert_eq!(d.header("flashpoint.reason"), Some("oversize"));
    assert_eq!(d.header("flashpoint.source.offset"), Some(big_at.to_string().as_str()));
    assert_eq!(d.header("flashpoint.size"), Some("1071070"));
    assert!(big.starts_with(&d.payload) && !d.payload.is_empty(), "the payload is the record or its head");
    assert_eq!(d.header("flashpoint.truncated") == Some("true"), d.payload.len() < big.len());
    let scored = read_until(&t.scored, Duration::from_secs(60), |r| {
        r.iter().filter(|x| x.stage_json()["t"] == "post").count() >= 102
    });
    assert_eq!(scored.iter().filter(|x| x.stage_json()["t"] == "post").count(), 102, "every small post scored once");
    let m = committed_past_and_ready(t, payloads.len() as i64, &w);
    assert_eq!(metric(&m, r#"flashpoint_dead_letter_records_total{reason="oversize"}"#), Some(1.0));
    assert_eq!(metric(&m, r#"flashpoint_stage_stalled_seconds{stage="score"}"#), Some(0.0));
    let log = w.log_text();
    // Worker::stop bounds the wait for the exit (60 s) and fails the test past it.
    assert_eq!(w.stop(), 0, "clean exit on SIGTERM; log:\n{log}");
}

/// Records just over each size limit, with the producer's limit (300,000 bytes, set through the librdkafka
/// pass-through) below the input limit (400,000): a record over the input limit whose dead letter is too
/// large for the producer goes out as its head; a valid record whose scored output is too large for the
/// producer is dead-lettered (head, size, reason `output_too_large`) instead of stalling the stage.
#[test]
fn records_over_the_producer_limit_go_to_the_dead_letter_topic_as_heads() {
    let fx = Fixture::new("toolarge").librdkafka("\"message.max.bytes\" = \"300000\"").build();
    let t = &fx.topics;
    let text = std::fs::read_to_string(&fx.config).unwrap();
    std::fs::write(&fx.config, text.replace("max_record_bytes = 1048576", "max_record_bytes = 400000")).unwrap();
    let over_input = post_of(400_001, "over-input");
    let over_output = post_of(299_990, "over-output");
    let mut payloads: Vec<Vec<u8>> = (0..10).map(small_post).collect();
    payloads.push(over_input.clone());
    payloads.extend((10..20).map(small_post));
    payloads.push(over_output.clone());
    payloads.extend((20..30).map(small_post));
    produce(&t.input, &payloads);

    let w = fx.worker("all", "worker");
    let mut dead = read_until(&t.dead, Duration::from_secs(60), |r| r.len() >= 2);
    dead.sort_by_key(|r| r.header("flashpoint.source.offset").map(str::to_string));
    let brief: Vec<(Option<&str>, Option<&str>, Option<&str>, Option<&str>)> = dead
        .iter()
        .map(|r| {
            (
                r.header("flashpoint.reason"),
                r.header("flashpoint.source.offset"),
                r.header("flashpoint.truncated"),
                r.header("flashpoint.stage"),
            )
        })
        .collect();
    assert_eq!(
        brief,
        vec![
            (Some("oversize"), Some("10"), Some("true"), Some("score")),
            (Some("output_too_large"), Some("21"), Some("true"), Some("score")),
        ],
        "log:\n{}",
        w.log_text()
    );
    assert_eq!(dead[0].header("flashpoint.size"), Some("400001"));
    assert!(over_input.starts_with(&dead[0].payload) && dead[0].payload.len() > 250_000);
    // The second is the head of the scored record that did not fit: larger than the producer's limit.
    let size: usize = dead[1].header("flashpoint.size").unwrap().parse().unwrap();
    assert!(size > 300_000, "{size}");
    assert!(dead.iter().all(|d| d.payload.len() < 300_000));
    assert!(String::from_utf8_lossy(&dead[1].payload).contains("over-output"));
    let m = committed_past_and_ready(t, payloads.len() as i64, &w);
    assert_eq!(metric(&m, r#"flashpoint_dead_letter_records_total{reason="output_too_large"}"#), Some(1.0));
    assert_eq!(metric(&m, r#"flashpoint_dead_letter_records_total{reason="oversize"}"#), Some(1.0));
    let log = w.log_text();
    assert_eq!(w.stop(), 0, "clean exit on SIGTERM; log:\n{log}");
}
