//! The harness shared by the binary's integration tests (`crates/flashpoint/tests`), the benchmarks and the
//! fault driver (`tools/faults.rs`): the committed text fixture, where the `flashpoint` binary is, ports,
//! seeds, HTTP scrapes of a worker, broker administration (topics, committed offsets) and event keys for
//! exact-replay de-duplication. Everything talks to a real broker given by address; nothing is mocked.

use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, CommitMode, Consumer};
use rdkafka::topic_partition_list::{Offset, TopicPartitionList};
use std::path::PathBuf;
use std::time::Duration;

/// A path in the repository.
pub fn repo(rel: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..").join(rel)
}

/// The `flashpoint` binary: `FLASHPOINT_BIN` if set, else the one beside the running executable (a test
/// binary in `target/<profile>/deps`, or a tool in `target/<profile>`).
pub fn flashpoint_bin() -> PathBuf {
    if let Some(p) = std::env::var_os("FLASHPOINT_BIN") {
        return PathBuf::from(p);
    }
    let exe = std::env::current_exe().expect("current executable");
    let mut dir = exe.parent().expect("executable's directory").to_path_buf();
    if dir.ends_with("deps") {
        dir.pop();
    }
    dir.join("flashpoint")
}

/// The 4,200 tweets of the VADER ground truth (the committed parity fixture): real texts for generated
/// streams and benchmarks, so nothing needs `../shared`.
pub fn tweets() -> Vec<String> {
    let path = repo("tests/fixtures/vader/tweets.jsonl");
    let data = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    data.lines()
        .map(|l| {
            let v: serde_json::Value = serde_json::from_str(l).expect("fixture line");
            v["text"].as_str().expect("text").to_string()
        })
        .collect()
}

pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

/// A seed for randomised choices: `var` if set (to replay a run), else the clock. Callers print it.
pub fn seed_from_env(var: &str) -> u64 {
    match std::env::var(var) {
        Ok(v) => v.parse().unwrap_or_else(|_| panic!("{var}={v:?}: not a number")),
        Err(_) => std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().subsec_nanos() as u64,
    }
}

/// A plain HTTP/1.0 GET of a worker's endpoint (no chunked encoding to undo; the server closes the
/// connection): (status, body), or None if the worker does not answer.
pub fn try_http_get(addr: &str, path: &str) -> Option<(u16, String)> {
    use std::io::{Read, Write};
    let sock: std::net::SocketAddr = addr.parse().ok()?;
    let mut c = std::net::TcpStream::connect_timeout(&sock, Duration::from_secs(2)).ok()?;
    c.set_read_timeout(Some(Duration::from_secs(10))).ok()?;
    write!(c, "GET {path} HTTP/1.0\r\nHost: {addr}\r\n\r\n").ok()?;
    let mut buf = Vec::new();
    c.read_to_end(&mut buf).ok()?;
    let text = String::from_utf8_lossy(&buf).into_owned();
    let (head, body) = text.split_once("\r\n\r\n")?;
    let status = head.split(' ').nth(1)?.parse().ok()?;
    Some((status, body.to_string()))
}

pub fn http_get(addr: &str, path: &str) -> (u16, String) {
    try_http_get(addr, path).unwrap_or_else(|| panic!("GET http://{addr}{path} failed"))
}

/// The value of one series in a Prometheus text exposition (`name{labels}` exactly as rendered).
pub fn metric(text: &str, series: &str) -> Option<f64> {
    text.lines().find_map(|l| l.strip_prefix(series)?.strip_prefix(' ')?.trim().parse().ok())
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

/// Commits `offsets` ((partition, next offset to read) pairs of `topic`) for `group`, as if its members had.
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

/// What identifies a spike event: (incident id, seq). Two events with the same key must be byte-identical
/// (an exact replay after a restore); de-duplicating by it gives the run's events.
pub fn event_key(e: &serde_json::Value) -> (String, u64) {
    (e["incident_id"].as_str().unwrap().to_string(), e["seq"].as_u64().unwrap())
}
