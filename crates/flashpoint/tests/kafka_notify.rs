//! The notify stage (`flashpoint run --role notify`, and in `--role all`) against the real local broker (Tansu,
//! started by scripts/test.sh) and a real HTTP receiver on 127.0.0.1 (the one `tests/notify.rs` uses): the sample
//! stream end to end to a signed webhook, the notify group's committed offsets, a SIGKILL mid-stream, and the
//! dead-letter topic for bad spike records and permanent delivery failures.

use flashpoint_notify::channel::webhook;
use flashpoint_testkit::*;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

const KEY: &str = "whsec_kafka_test";

/// A [notify] section: one signed webhook channel per (name, url), each routed by a route of its own name.
/// Secrets come from files (the worker's environment is the test's own).
fn notify_section(dir: &Path, hooks: &[(&str, String)]) -> String {
    std::fs::write(dir.join("signing.key"), KEY).unwrap();
    let mut s = String::from(
        "[notify]\n[notify.delivery]\ninitial_backoff_ms = 100\nmax_backoff_ms = 500\ntimeout_secs = 60\nmax_attempts = 3\n",
    );
    for (name, url) in hooks {
        let url_file = dir.join(format!("{name}.url"));
        std::fs::write(&url_file, url).unwrap();
        s += &format!(
            "[[notify.channels]]\nkind = \"webhook\"\nname = \"{name}\"\nurl = {{ file = \"{}\" }}\n\
             signing_key = {{ file = \"{}\" }}\n[[notify.routes]]\nname = \"{name}\"\nchannels = [\"{name}\"]\n\
             update_interval_secs = 1\n",
            url_file.display(),
            dir.join("signing.key").display()
        );
    }
    s
}

fn config(dir: &Path, t: &Topics, hooks: &[(&str, String)]) -> PathBuf {
    write_config(dir, t, "", &notify_section(dir, hooks))
}

fn now_secs() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs() as i64
}

/// Checks every request's signature and idempotency key against its body; returns the (incident, seq) of the
/// acknowledged ones in arrival order, and asserts a key seen twice always carried the same body.
fn delivered(reqs: &[Request]) -> Vec<(String, u64)> {
    let mut bodies: BTreeMap<String, Vec<u8>> = BTreeMap::new();
    let mut out = Vec::new();
    for r in reqs {
        let sig = r.header(webhook::SIGNATURE_HEADER).expect("signed");
        webhook::verify(KEY.as_bytes(), sig, &r.body, now_secs()).expect("the signature verifies");
        let e = r.json();
        let key = r.header(webhook::IDEMPOTENCY_HEADER).expect("idempotency key").to_string();
        assert_eq!(key, format!("{}:{}", e["incident_id"].as_str().unwrap(), e["seq"]), "key names incident and seq");
        if let Some(b) = bodies.insert(key.clone(), r.body.clone()) {
            assert_eq!(b, r.body, "a duplicate is the same message under the same key {key}");
        }
        if r.ok() {
            out.push(event_key(&e));
        }
    }
    out
}

#[test]
fn the_sample_stream_reaches_a_signed_webhook_in_order_and_the_notify_group_commits_everything() {
    let dir = tempdir("notify-e2e");
    let t = Topics::new("notify-e2e");
    create_topic(&t.input, 1);
    let rx = Receiver::start();
    let cfg = config(&dir, &t, &[("hook", rx.url("/hook"))]);
    let input = lines(&repo("data/sample/stream.jsonl"));
    produce(&t.input, &input);
    let expected = replay(&cfg, &repo("data/sample/stream.jsonl"));
    let resolved = expected.iter().find(|e| e["kind"] == "resolved").expect("the sample incident resolves");

    let w = Worker::start(&cfg, "all", "127.0.0.1:0", dir.join("worker.log"));
    let want = event_key(resolved);
    let deadline = Instant::now() + Duration::from_secs(120);
    while !delivered(&rx.requests("/hook")).contains(&want) {
        assert!(Instant::now() < deadline, "the resolution never arrived; log:\n{}", w.log_text());
        std::thread::sleep(Duration::from_millis(200));
    }
    let log = w.log_text();
    assert_eq!(w.stop(), 0, "clean exit on SIGTERM; log:\n{log}");

    let spikes = read_all(&t.spikes, Duration::from_secs(3));
    let on_topic: BTreeMap<(String, u64), Vec<u8>> =
        spikes.iter().map(|r| (event_key(&r.json()), r.payload.clone())).collect();
    let reqs = rx.requests("/hook");
    let mut got = delivered(&reqs);
    got.dedup();
    // Each delivered message is the event as it is on the topic, byte for byte.
    for r in reqs.iter().filter(|r| r.ok()) {
        assert_eq!(Some(&r.body), on_topic.get(&event_key(&r.json())), "the webhook body is the spike event");
    }
    // In order, never backwards; the opening, every escalation and the resolution go at once (updates in between
    // may be folded into the newest state by the route's update interval).
    assert!(got.windows(2).all(|w| w[0].1 < w[1].1), "opened → updated → resolved: {got:?}");
    let rank = |e: &serde_json::Value| ["watch", "warning", "critical"].iter().position(|s| e["severity"] == *s);
    let mut must: Vec<(String, u64)> = Vec::new();
    let mut top = None;
    for e in &expected {
        if e["kind"] != "updated" || rank(e) > top {
            must.push(event_key(e));
        }
        top = top.max(rank(e));
    }
    assert!(must.len() >= 3, "{must:?}");
    for k in &must {
        assert!(got.contains(k), "{k:?} (opening, escalation or resolution) delivered: {got:?}");
    }
    assert_eq!(got.first(), must.first());
    assert_eq!(got.last(), Some(&want));
    // SIGTERM drained and committed every partition of the spikes topic to its end.
    let group = format!("{}-notify", t.group);
    for p in 0..4 {
        let len = spikes.iter().filter(|r| r.partition == p).map(|r| r.offset + 1).max().unwrap_or(0);
        assert_eq!(committed(&group, &t.spikes, p).unwrap_or(0), len, "partition {p}");
    }
    assert!(spikes.len() >= expected.len());
}

/// Waits (bounded) for the worker's /readyz to answer 200; returns the last answer.
fn wait_ready(addr: &str) -> (u16, String) {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let r = try_http_get(addr, "/readyz").unwrap_or((0, String::new()));
        if r.0 == 200 || Instant::now() > deadline {
            return r;
        }
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// Waits (bounded) until the receiver has had `n` requests to `path`.
fn wait_requests(rx: &Receiver, path: &str, n: usize, w: &Worker) {
    let deadline = Instant::now() + Duration::from_secs(60);
    while rx.requests(path).len() < n {
        assert!(Instant::now() < deadline, "{} of {n} requests; log:\n{}", rx.requests(path).len(), w.log_text());
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn notify_worker_killed_mid_stream_and_restarted_loses_nothing() {
    let dir = tempdir("notify-kill");
    let t = Topics::new("notify-kill");
    create_topic(&t.spikes, 1);
    let rx = Receiver::start();
    // Three deliveries, then no answer: the worker is stuck on the fourth when killed.
    rx.script("/hook", &[Reply::Status(200), Reply::Status(200), Reply::Status(200)]);
    rx.default_reply("/hook", Reply::Hang);
    let cfg = config(&dir, &t, &[("hook", rx.url("/hook"))]);
    let events: Vec<Vec<u8>> = sample_events().into_iter().map(String::into_bytes).collect();
    let group = format!("{}-notify", t.group);
    let addr = format!("127.0.0.1:{}", free_port());
    let w = Worker::start(&cfg, "notify", &addr, dir.join("a.log"));
    assert_eq!(wait_ready(&addr).0, 200, "log:\n{}", w.log_text());
    // One event at a time, each a little more than the route's update interval after the last message, so each
    // is a message of its own (the interval would fold quick updates into the newest state).
    let step = Duration::from_millis(1100);
    for (i, e) in events[..4].iter().enumerate() {
        produce(&t.spikes, &[e.clone()]);
        wait_requests(&rx, "/hook", i + 1, &w);
        std::thread::sleep(step);
    }
    assert_eq!(
        wait_committed(&group, &t.spikes, 0, 3, Duration::from_secs(30)),
        Some(3),
        "the three acknowledged events are committed"
    );
    w.kill(); // SIGKILL while the fourth message waits for its answer: no drain, no commit
    rx.default_reply("/hook", Reply::Status(200));
    // The dead member's session (6 s) must expire on Tansu before a new member gets its partition (DEAD_MEMBER).
    std::thread::sleep(Duration::from_secs(7));
    let addr = format!("127.0.0.1:{}", free_port());
    let w = Worker::start(&cfg, "notify", &addr, dir.join("b.log"));
    // It resumes at the committed offset: the fourth event again.
    wait_requests(&rx, "/hook", 5, &w);
    std::thread::sleep(step);
    for (i, e) in events.iter().enumerate().skip(4) {
        produce(&t.spikes, &[e.clone()]);
        wait_requests(&rx, "/hook", i + 2, &w);
        std::thread::sleep(step);
    }
    let end = events.len() as i64;
    assert_eq!(wait_committed(&group, &t.spikes, 0, end, Duration::from_secs(30)), Some(end), "log:\n{}", w.log_text());
    let log = w.log_text();
    assert_eq!(w.stop(), 0, "clean exit on SIGTERM; log:\n{log}");
    assert_eq!(committed(&group, &t.spikes, 0), Some(end));

    let reqs = rx.requests("/hook");
    let mut got = delivered(&reqs);
    let want: Vec<(String, u64)> = events.iter().map(|e| event_key(&serde_json::from_slice(e).unwrap())).collect();
    got.dedup();
    assert_eq!(got, want, "every event delivered to a 200, in order; none twice to a 200");
    assert_eq!(reqs.len(), want.len() + 1, "the one duplicate is the message in flight at the kill, same key");
}

/// Tansu's `BATCH_FETCH` (crates/flashpoint-kafka/src/tansu.rs): a fetch from an offset inside a producer batch
/// returns only the later batches. Three events in one batch, the group committed at the third: the restarted
/// worker must be re-assigned from the batch start and drop the first two, or the third is never re-read.
#[test]
fn a_restart_resuming_inside_a_producer_batch_re_reads_the_rest_of_the_batch() {
    let dir = tempdir("notify-batch");
    let t = Topics::new("notify-batch");
    create_topic(&t.spikes, 1);
    let rx = Receiver::start();
    // The opening is delivered; the escalation (the third event: the update between is folded into it by the
    // update interval) gets no answer. The sample's opening and escalation, with a plain update between them a
    // minute after the opening (same severity: inside the 15-minute update interval, so not sent on its own).
    rx.script("/hook", &[Reply::Status(200)]);
    rx.default_reply("/hook", Reply::Hang);
    let cfg = config(&dir, &t, &[("hook", rx.url("/hook"))]);
    let sample: Vec<serde_json::Value> = sample_events().iter().map(|e| serde_json::from_str(e).unwrap()).collect();
    let (opening, mut escalation) = (sample[0].clone(), sample[1].clone());
    assert_eq!((opening["kind"].as_str(), escalation["kind"].as_str()), (Some("opened"), Some("updated")));
    let mut update = opening.clone();
    update["kind"] = "updated".into();
    update["seq"] = 1.into();
    update["window_end"] = "2026-03-04T14:10:00.000Z".into();
    escalation["seq"] = 2.into();
    let kinds = vec![opening, update, escalation];
    let events: Vec<Vec<u8>> = kinds.iter().map(|e| serde_json::to_vec(e).unwrap()).collect();
    assert_eq!((kinds[2]["severity"].as_str(), kinds[1]["severity"].as_str()), (Some("warning"), Some("watch")));
    produce(&t.spikes, &events); // one producer batch
    let group = format!("{}-notify", t.group);
    let w = Worker::start(&cfg, "notify", "127.0.0.1:0", dir.join("a.log"));
    wait_requests(&rx, "/hook", 2, &w);
    assert_eq!(wait_committed(&group, &t.spikes, 0, 2, Duration::from_secs(30)), Some(2), "log:\n{}", w.log_text());
    w.kill();
    rx.default_reply("/hook", Reply::Status(200));
    std::thread::sleep(Duration::from_secs(7)); // DEAD_MEMBER, as above
    let w = Worker::start(&cfg, "notify", "127.0.0.1:0", dir.join("b.log"));
    assert_eq!(wait_committed(&group, &t.spikes, 0, 3, Duration::from_secs(30)), Some(3), "log:\n{}", w.log_text());
    let log = w.log_text();
    assert_eq!(w.stop(), 0, "clean exit on SIGTERM; log:\n{log}");
    assert!(log.contains("resuming from the start of the broker batch"), "the batch-start path was taken:\n{log}");
    let reqs = rx.requests("/hook");
    let got = delivered(&reqs);
    assert_eq!(got, vec![event_key(&kinds[0]), event_key(&kinds[2])], "the opening once, the escalation re-sent");
    assert_eq!(reqs.len(), 3, "the escalation twice under one key (in flight at the kill), nothing else");
}

#[test]
fn bad_spike_records_and_permanent_delivery_failures_go_to_the_dead_letter_topic() {
    let dir = tempdir("notify-dlq");
    let t = Topics::new("notify-dlq");
    create_topic(&t.spikes, 1);
    let rx = Receiver::start();
    rx.default_reply("/gone", Reply::Status(410));
    let cfg = config(&dir, &t, &[("hook", rx.url("/hook")), ("gone", rx.url("/gone"))]);
    let event = sample_events().remove(0);
    let records: Vec<Vec<u8>> =
        vec![b"not json at all".to_vec(), br#"{"schema":"something.else","x":1}"#.to_vec(), event.clone().into_bytes()];
    produce(&t.spikes, &records);
    let addr = format!("127.0.0.1:{}", free_port());
    let w = Worker::start(&cfg, "notify", &addr, dir.join("worker.log"));
    let dead = read_until(&t.dead, Duration::from_secs(60), |r| r.len() >= 3);
    let group = format!("{}-notify", t.group);
    assert_eq!(wait_committed(&group, &t.spikes, 0, 3, Duration::from_secs(30)), Some(3), "log:\n{}", w.log_text());
    let mut brief: Vec<(String, String, String)> = dead
        .iter()
        .map(|r| {
            assert_eq!(r.header("flashpoint.stage"), Some("notify"));
            assert_eq!(r.header("flashpoint.source.topic"), Some(t.spikes.as_str()));
            (
                r.header("flashpoint.source.offset").unwrap().to_string(),
                r.header("flashpoint.reason").unwrap().to_string(),
                r.header("flashpoint.detail").unwrap().to_string(),
            )
        })
        .collect();
    brief.sort();
    let reasons: Vec<(&str, &str)> = brief.iter().map(|(o, r, _)| (o.as_str(), r.as_str())).collect();
    assert_eq!(reasons, vec![("0", "not_json"), ("1", "not_spike_event"), ("2", "notification_failed")], "{brief:?}");
    assert!(brief[2].2.contains("channel gone (webhook), route gone") && brief[2].2.contains("HTTP 410"), "{brief:?}");
    // The bad records are kept byte for byte; the delivery dead letter carries the event and never the secret.
    let by_offset = |o: &str| dead.iter().find(|r| r.header("flashpoint.source.offset") == Some(o)).unwrap();
    assert_eq!(by_offset("0").payload, records[0]);
    assert_eq!(by_offset("1").payload, records[1]);
    let failed = by_offset("2").json();
    assert_eq!(failed["channel"], "gone");
    assert_eq!(failed["events"][0], serde_json::from_str::<serde_json::Value>(&event).unwrap());
    assert!(!String::from_utf8_lossy(&by_offset("2").payload).contains(KEY));
    // The healthy channel got the event; the refusing one was not retried.
    assert_eq!(delivered(&rx.requests("/hook")).len(), 1);
    assert_eq!(rx.requests("/gone").len(), 1, "a 410 is permanent: no retry");
    // /readyz includes the notifier; its metrics are on the worker's registry.
    let ready = wait_ready(&addr);
    assert_eq!(ready.0, 200, "{}", ready.1);
    let m = http_get(&addr, "/metrics").1;
    assert_eq!(metric(&m, r#"flashpoint_dead_letter_records_total{reason="not_json"}"#), Some(1.0));
    assert_eq!(metric(&m, r#"flashpoint_dead_letter_records_total{reason="not_spike_event"}"#), Some(1.0));
    assert_eq!(metric(&m, r#"flashpoint_dead_letter_records_total{reason="notification_failed"}"#), Some(1.0));
    assert_eq!(metric(&m, r#"flashpoint_notify_input_dead_letters_total{reason="not_spike_event"}"#), Some(1.0));
    assert_eq!(metric(&m, r#"flashpoint_notifications_sent_total{channel="hook",route="hook"}"#), Some(1.0));
    assert_eq!(metric(&m, r#"flashpoint_notifications_failed_total{channel="gone",route="gone"}"#), Some(1.0));
    assert_eq!(metric(&m, r#"flashpoint_assigned_partitions{stage="notify"}"#), Some(1.0));
    let log = w.log_text();
    assert_eq!(w.stop(), 0, "clean exit on SIGTERM; log:\n{log}");
}

#[test]
fn role_notify_without_routes_fails_at_start_naming_the_key() {
    let dir = tempdir("notify-noroutes");
    let t = Topics::new("notify-noroutes");
    let cfg = write_config(&dir, &t, "", "");
    let out = flashpoint()
        .args(["run", "-c"])
        .arg(&cfg)
        .args(["--role", "notify", "--metrics-listen", "127.0.0.1:0"])
        .output();
    let out = out.unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("notify.routes"), "{err}");
}

/// Produces `payloads` to one partition of `topic` and waits for the broker's acknowledgements.
fn produce_to(topic: &str, partition: i32, payloads: &[Vec<u8>]) {
    use rdkafka::producer::{BaseProducer, BaseRecord, Producer};
    let p: BaseProducer =
        rdkafka::ClientConfig::new().set("bootstrap.servers", brokers()).set("linger.ms", "5").create().unwrap();
    for pl in payloads {
        p.send(BaseRecord::<(), [u8]>::to(topic).payload(&pl[..]).partition(partition)).unwrap();
    }
    p.flush(Duration::from_secs(30)).expect("acknowledged");
}

/// A second notify worker joins: the first one's partitions are revoked (and forgotten) and shared out; every
/// incident still reaches its resolution and both partitions are committed to their ends.
#[test]
fn a_rebalance_between_two_notify_workers_loses_nothing() {
    let dir = tempdir("notify-rebalance");
    let t = Topics::new("notify-rebalance");
    create_topic(&t.spikes, 2);
    let rx = Receiver::start();
    let cfg = config(&dir, &t, &[("hook", rx.url("/hook"))]);
    // The sample incident on partition 0, and a copy of it under another incident id on partition 1.
    let a: Vec<Vec<u8>> = sample_events().into_iter().map(String::into_bytes).collect();
    let b: Vec<Vec<u8>> = a
        .iter()
        .map(|e| {
            let mut v: serde_json::Value = serde_json::from_slice(e).unwrap();
            v["incident_id"] = format!("{}-b", v["incident_id"].as_str().unwrap()).into();
            serde_json::to_vec(&v).unwrap()
        })
        .collect();
    let addr1 = format!("127.0.0.1:{}", free_port());
    let w1 = Worker::start(&cfg, "notify", &addr1, dir.join("w1.log"));
    assert_eq!(wait_ready(&addr1).0, 200, "log:\n{}", w1.log_text());
    produce_to(&t.spikes, 0, &a[..4]);
    produce_to(&t.spikes, 1, &b[..4]);
    wait_requests(&rx, "/hook", 2, &w1);
    let addr2 = format!("127.0.0.1:{}", free_port());
    let w2 = Worker::start(&cfg, "notify", &addr2, dir.join("w2.log"));
    // Both members hold one partition each (bounded wait).
    let assigned =
        |addr: &str| metric(&http_get(addr, "/metrics").1, r#"flashpoint_assigned_partitions{stage="notify"}"#);
    let deadline = Instant::now() + Duration::from_secs(60);
    while assigned(&addr1) != Some(1.0) || assigned(&addr2) != Some(1.0) {
        assert!(Instant::now() < deadline, "no rebalance; logs:\n{}\n{}", w1.log_text(), w2.log_text());
        std::thread::sleep(Duration::from_millis(200));
    }
    produce_to(&t.spikes, 0, &a[4..]);
    produce_to(&t.spikes, 1, &b[4..]);
    let group = format!("{}-notify", t.group);
    let end = a.len() as i64;
    for p in 0..2 {
        assert_eq!(
            wait_committed(&group, &t.spikes, p, end, Duration::from_secs(30)),
            Some(end),
            "partition {p}; log:\n{}",
            w1.log_text()
        );
    }
    let (l1, l2) = (w1.log_text(), w2.log_text());
    assert_eq!(w1.stop(), 0, "{l1}");
    assert_eq!(w2.stop(), 0, "{l2}");
    assert!(l1.contains("partitions revoked"), "{l1}");
    let got = delivered(&rx.requests("/hook"));
    for events in [&a, &b] {
        let last = event_key(&serde_json::from_slice(events.last().unwrap()).unwrap());
        let first = event_key(&serde_json::from_slice(&events[0]).unwrap());
        assert!(got.contains(&first) && got.contains(&last), "{first:?} and {last:?} delivered: {got:?}");
    }
}
