//! The broker seen from a test: which one (`FLASHPOINT_TEST_BROKERS`), topic names of its own, topics,
//! raw produce, read-back with headers, committed offsets, and the key that identifies a spike event.
//! The `_on` functions take the broker's address (the fault driver's own brokers); the others use the
//! test broker.

use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, CommitMode, Consumer};
use rdkafka::message::{Headers, Message};
use rdkafka::producer::{BaseProducer, BaseRecord, Producer};
use rdkafka::topic_partition_list::{Offset, TopicPartitionList};
use std::collections::BTreeMap;
use std::time::{Duration, Instant};

/// The broker the tests use. Never skipped: without it the test fails and says how to get one.
pub fn brokers() -> String {
    std::env::var("FLASHPOINT_TEST_BROKERS").unwrap_or_else(|_| {
        panic!(
            "FLASHPOINT_TEST_BROKERS is not set. These tests need the local Kafka-compatible broker: run \
             scripts/test.sh (installs and starts Tansu), or `scripts/tansu.sh start 19092` and \
             `export FLASHPOINT_TEST_BROKERS=127.0.0.1:19092`"
        )
    })
}

/// The topics and group of one worker deployment.
#[derive(Clone, Debug)]
pub struct Topics {
    pub input: String,
    pub scored: String,
    pub spikes: String,
    pub dead: String,
    pub state: String,
    pub group: String,
}

impl Topics {
    /// Names no other test (or earlier run against the same broker) uses, from [`crate::paths::unique`].
    pub fn new(name: &str) -> Topics {
        Topics::with_prefix(&crate::paths::unique(name))
    }

    /// `<prefix>-posts`, `<prefix>-scored`, ... and the group `<prefix>`, as given.
    pub fn with_prefix(p: &str) -> Topics {
        Topics {
            input: format!("{p}-posts"),
            scored: format!("{p}-scored"),
            spikes: format!("{p}-spikes"),
            dead: format!("{p}-dead"),
            state: format!("{p}-state"),
            group: p.to_string(),
        }
    }

    /// The score stage's consumer group.
    pub fn score_group(&self) -> String {
        format!("{}-score", self.group)
    }

    /// The aggregate stage's consumer group.
    pub fn aggregate_group(&self) -> String {
        format!("{}-aggregate", self.group)
    }
}

pub fn create_topic(name: &str, partitions: i32) {
    create_topic_on(&brokers(), name, partitions)
}

pub fn create_topic_on(brokers: &str, name: &str, partitions: i32) {
    let admin: AdminClient<DefaultClientContext> =
        ClientConfig::new().set("bootstrap.servers", brokers).create().unwrap();
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    let r = rt.block_on(admin.create_topics(
        &[NewTopic::new(name, partitions, TopicReplication::Fixed(1))],
        &AdminOptions::new().operation_timeout(Some(Duration::from_secs(10))),
    ));
    for t in r.expect("create_topics") {
        t.unwrap_or_else(|(t, e)| panic!("creating topic {t}: {e}"));
    }
}

/// Produces raw payloads to partition 0 of `topic`, in order, and waits until the broker has acknowledged
/// all of them.
pub fn produce(topic: &str, payloads: &[Vec<u8>]) {
    produce_to(topic, 0, payloads)
}

/// [`produce`] to partition `partition`.
pub fn produce_to(topic: &str, partition: i32, payloads: &[Vec<u8>]) {
    let p: BaseProducer = ClientConfig::new()
        .set("bootstrap.servers", brokers())
        .set("linger.ms", "5")
        .set("enable.idempotence", "true")
        // Tests send records over the worker's limits on purpose.
        .set("message.max.bytes", "10000000")
        .create()
        .unwrap();
    for pl in payloads {
        let mut rec: BaseRecord<'_, (), [u8]> = BaseRecord::to(topic).payload(&pl[..]).partition(partition);
        loop {
            match p.send(rec) {
                Ok(()) => break,
                Err((e, r)) if e.rdkafka_error_code() == Some(rdkafka::types::RDKafkaErrorCode::QueueFull) => {
                    rec = r;
                    p.poll(Duration::from_millis(10));
                }
                Err((e, _)) => panic!("producing {} bytes to {topic}: {e}", pl.len()),
            }
        }
        p.poll(Duration::ZERO);
    }
    p.flush(Duration::from_secs(30)).expect("all records acknowledged");
}

/// Commits `offsets` ((partition, next offset to read) pairs of `topic`) for `group`, as if its members had.
pub fn commit(group: &str, topic: &str, offsets: &[(i32, i64)]) {
    commit_on(&brokers(), group, topic, offsets)
}

pub fn commit_on(brokers: &str, group: &str, topic: &str, offsets: &[(i32, i64)]) {
    let c: BaseConsumer =
        ClientConfig::new().set("bootstrap.servers", brokers).set("group.id", group).create().unwrap();
    let mut tpl = TopicPartitionList::new();
    for &(p, o) in offsets {
        tpl.add_partition_offset(topic, p, Offset::Offset(o)).unwrap();
    }
    c.commit(&tpl, CommitMode::Sync).unwrap();
}

/// Committed offset of `group` on `topic`/`partition`; None if there is none or the broker does not answer.
pub fn committed(group: &str, topic: &str, partition: i32) -> Option<i64> {
    committed_on(&brokers(), group, topic, partition)
}

pub fn committed_on(brokers: &str, group: &str, topic: &str, partition: i32) -> Option<i64> {
    let c: BaseConsumer = ClientConfig::new().set("bootstrap.servers", brokers).set("group.id", group).create().ok()?;
    let mut tpl = TopicPartitionList::new();
    tpl.add_partition(topic, partition);
    let got = c.committed_offsets(tpl, Duration::from_secs(10)).ok()?;
    match got.find_partition(topic, partition)?.offset() {
        Offset::Offset(o) => Some(o),
        _ => None,
    }
}

/// Waits (at most `timeout`) until `group` has committed `end` on `topic`/`partition`; returns the last
/// committed offset seen.
pub fn wait_committed(group: &str, topic: &str, partition: i32, end: i64, timeout: Duration) -> Option<i64> {
    let deadline = Instant::now() + timeout;
    loop {
        let c = committed(group, topic, partition);
        if c == Some(end) || Instant::now() > deadline {
            return c;
        }
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// One record read back from a topic.
pub struct Record {
    pub partition: i32,
    pub offset: i64,
    pub key: Option<Vec<u8>>,
    pub payload: Vec<u8>,
    pub headers: Vec<(String, String)>,
}

impl Record {
    pub fn header(&self, k: &str) -> Option<&str> {
        self.headers.iter().find(|(a, _)| a == k).map(|(_, v)| v.as_str())
    }

    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.payload).unwrap()
    }

    /// An internal-topic record (core's stage-record format), as the JSON of its fields.
    pub fn stage_json(&self) -> serde_json::Value {
        let rec = flashpoint_core::stage::StageRecord::decode(&self.payload).expect("a stage record");
        serde_json::to_value(&rec).unwrap()
    }
}

/// Reads every partition of `topic` from the start until `want(records)` holds or `timeout` passes;
/// returns what it read. Ends by end-of-partition from fetches, never by ListOffsets (see aggregate.rs on
/// Tansu's ListOffsets).
pub fn read_until(topic: &str, timeout: Duration, want: impl Fn(&[Record]) -> bool) -> Vec<Record> {
    let c: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", brokers())
        .set("group.id", crate::paths::unique("reader"))
        .set("enable.auto.commit", "false")
        .create()
        .unwrap();
    // The worker creates its output topics at start: wait for the topic to exist.
    let deadline = Instant::now() + timeout;
    let n = loop {
        let md = c.fetch_metadata(Some(topic), Duration::from_secs(10)).unwrap();
        let n = md.topics().first().map_or(0, |t| if t.error().is_some() { 0 } else { t.partitions().len() as i32 });
        if n > 0 {
            break n;
        }
        assert!(Instant::now() < deadline, "topic {topic} never appeared");
        std::thread::sleep(Duration::from_millis(200));
    };
    let mut tpl = TopicPartitionList::new();
    for p in 0..n {
        tpl.add_partition_offset(topic, p, Offset::Beginning).unwrap();
    }
    c.assign(&tpl).unwrap();
    let mut out = Vec::new();
    while Instant::now() < deadline {
        if want(&out) {
            break;
        }
        if let Some(m) = c.poll(Duration::from_millis(200)) {
            let m = m.unwrap();
            let headers = m
                .headers()
                .map(|h| {
                    h.iter()
                        .map(|x| (x.key.to_string(), String::from_utf8_lossy(x.value.unwrap_or_default()).into_owned()))
                        .collect()
                })
                .unwrap_or_default();
            out.push(Record {
                partition: m.partition(),
                offset: m.offset(),
                key: m.key().map(<[u8]>::to_vec),
                payload: m.payload().unwrap_or_default().to_vec(),
                headers,
            });
        }
    }
    out
}

/// Reads everything there is: until no record arrived for `idle`.
pub fn read_all(topic: &str, idle: Duration) -> Vec<Record> {
    let last = std::cell::Cell::new((0usize, Instant::now()));
    read_until(topic, Duration::from_secs(120), |r| {
        let (n, t) = last.get();
        if r.len() != n {
            last.set((r.len(), Instant::now()));
            false
        } else {
            t.elapsed() > idle
        }
    })
}

/// What identifies a spike event: (incident id, seq). Two events with the same key must be byte-identical
/// (an exact replay after a restore); de-duplicating by it gives the run's events.
pub fn event_key(e: &serde_json::Value) -> (String, u64) {
    (e["incident_id"].as_str().unwrap().to_string(), e["seq"].as_u64().unwrap())
}

/// Events by [`event_key`], asserting that every duplicate is an exact replay.
pub fn dedupe_events<'a>(
    events: impl IntoIterator<Item = &'a serde_json::Value>,
) -> BTreeMap<(String, u64), serde_json::Value> {
    let mut m = BTreeMap::new();
    for e in events {
        if let Some(prev) = m.insert(event_key(e), e.clone()) {
            assert_eq!(&prev, e, "a duplicate event must be an exact replay");
        }
    }
    m
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn topic_names_are_unique_per_call_and_share_the_group_prefix() {
        let (a, b) = (Topics::new("t"), Topics::new("t"));
        assert_ne!(a.group, b.group);
        assert_eq!(a.input, format!("{}-posts", a.group));
        assert_eq!(a.score_group(), format!("{}-score", a.group));
        assert_eq!(Topics::with_prefix("x").state, "x-state");
    }

    #[test]
    #[should_panic(expected = "a duplicate event must be an exact replay")]
    fn a_duplicate_that_differs_is_refused() {
        let a = serde_json::json!({"incident_id": "i", "seq": 1, "kind": "opened"});
        let b = serde_json::json!({"incident_id": "i", "seq": 1, "kind": "updated"});
        dedupe_events([&a, &b]);
    }
}
