//! Harness for the binary's integration tests: running the binary, and for tests against the real local broker
//! (Tansu, started by scripts/test.sh) unique topics per test, raw produce, read-back with headers, worker
//! processes, configs.
#![allow(dead_code)]

pub use flashpoint_testkit::*;

use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::{Headers, Message};
use rdkafka::producer::{BaseProducer, BaseRecord, Producer};
use rdkafka::topic_partition_list::{Offset, TopicPartitionList};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

pub fn bin() -> Command {
    Command::new(env!("CARGO_BIN_EXE_flashpoint"))
}

/// Runs the binary with `args`, `stdin` piped in, and returns (exit code, stdout, stderr). FLASHPOINT_MODEL_DIR
/// is removed so a test sees only the model directory it passes.
pub fn run_with_stdin(args: &[&str], stdin: &str) -> (i32, String, String) {
    use std::io::Write;
    let mut child = bin()
        .args(args)
        .env_remove("FLASHPOINT_MODEL_DIR")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // A command that refuses its arguments exits before reading stdin; the pipe closing then is its answer, not a
    // failure of the test.
    match child.stdin.take().unwrap().write_all(stdin.as_bytes()) {
        Err(e) if e.kind() != std::io::ErrorKind::BrokenPipe => panic!("writing stdin: {e}"),
        _ => {}
    }
    let out = child.wait_with_output().unwrap();
    (out.status.code().unwrap_or(-1), String::from_utf8(out.stdout).unwrap(), String::from_utf8(out.stderr).unwrap())
}

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

/// A topic-name prefix no other test (or earlier run against the same broker) uses.
pub fn unique(name: &str) -> String {
    static N: AtomicU32 = AtomicU32::new(0);
    let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_nanos() % 1_000_000_000;
    format!("{name}-{}-{}-{nanos}", std::process::id(), N.fetch_add(1, Ordering::Relaxed))
}

pub fn create_topic(name: &str, partitions: i32) {
    create_topic_on(&brokers(), name, partitions)
}

/// Produces raw payloads (in order, to partition 0 unless the topic has more and `partition` is None),
/// and waits until the broker has acknowledged all of them.
pub fn produce(topic: &str, payloads: &[Vec<u8>]) {
    let p: BaseProducer = ClientConfig::new()
        .set("bootstrap.servers", brokers())
        .set("linger.ms", "5")
        .set("enable.idempotence", "true")
        // Tests send records over the worker's limits on purpose.
        .set("message.max.bytes", "10000000")
        .create()
        .unwrap();
    for pl in payloads {
        let mut rec: BaseRecord<'_, (), [u8]> = BaseRecord::to(topic).payload(&pl[..]).partition(0);
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

pub fn lines(path: &Path) -> Vec<Vec<u8>> {
    std::fs::read_to_string(path).unwrap().lines().filter(|l| !l.is_empty()).map(|l| l.as_bytes().to_vec()).collect()
}

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
        .set("group.id", unique("reader"))
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

pub struct Topics {
    pub input: String,
    pub scored: String,
    pub spikes: String,
    pub dead: String,
    pub state: String,
    pub group: String,
}

impl Topics {
    pub fn new(name: &str) -> Topics {
        let p = unique(name);
        Topics {
            input: format!("{p}-posts"),
            scored: format!("{p}-scored"),
            spikes: format!("{p}-spikes"),
            dead: format!("{p}-dead"),
            state: format!("{p}-state"),
            group: p,
        }
    }
}

/// The repo's example config (watchlist, windows, detection) with a [kafka] section for these topics.
/// `extra_kafka` lines go into [kafka]; `extra` is appended as more sections (before the watchlist).
pub fn write_config(dir: &Path, t: &Topics, extra_kafka: &str, extra: &str) -> PathBuf {
    let base = std::fs::read_to_string(repo("config/flashpoint.toml")).unwrap();
    let at = base.find("[[entities]]").expect("example config has a watchlist");
    let kafka = format!(
        "[kafka]\nbrokers = \"{}\"\ninput_topics = [\"{}\"]\ngroup_id = \"{}\"\nscored_topic = \"{}\"\nspikes_topic = \"{}\"\n\
         dead_letter_topic = \"{}\"\nstate_topic = \"{}\"\ninternal_partitions = 4\n{extra_kafka}\n\
         [kafka.librdkafka]\n\"session.timeout.ms\" = \"6000\"\n\"heartbeat.interval.ms\" = \"500\"\n{extra}\n",
        brokers(), t.input, t.group, t.scored, t.spikes, t.dead, t.state
    );
    let text = format!("{}{kafka}\n{}", &base[..at], &base[at..]);
    let path = dir.join(format!("{}.toml", t.group));
    std::fs::write(&path, text).unwrap();
    path
}

pub fn tempdir(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(unique(name));
    std::fs::create_dir_all(&d).unwrap();
    d
}

/// A worker process; killed (SIGKILL) when dropped unless it was stopped.
pub struct Worker {
    pub child: Option<Child>,
    pub log: PathBuf,
}

impl Worker {
    pub fn start(config: &Path, role: &str, metrics_listen: &str, log: PathBuf) -> Worker {
        let f = std::fs::File::create(&log).unwrap();
        let child = Command::new(env!("CARGO_BIN_EXE_flashpoint"))
            .args(["run", "-c"])
            .arg(config)
            .args(["--role", role, "--metrics-listen", metrics_listen])
            .env("FLASHPOINT_LOG", "info,librdkafka=warn,rdkafka=warn")
            .stdout(Stdio::null())
            .stderr(f)
            .spawn()
            .unwrap();
        Worker { child: Some(child), log }
    }

    pub fn pid(&self) -> i32 {
        self.child.as_ref().unwrap().id() as i32
    }

    pub fn signal(&self, sig: &str) {
        let ok = Command::new("kill").args([&format!("-{sig}"), &self.pid().to_string()]).status().unwrap().success();
        assert!(ok, "kill -{sig}");
    }

    pub fn alive(&mut self) -> bool {
        self.child.as_mut().unwrap().try_wait().unwrap().is_none()
    }

    /// SIGTERM, then wait for the exit status (bounded).
    pub fn stop(mut self) -> i32 {
        self.signal("TERM");
        let deadline = Instant::now() + Duration::from_secs(60);
        let mut child = self.child.take().unwrap();
        loop {
            if let Some(s) = child.try_wait().unwrap() {
                return s.code().unwrap_or(-1);
            }
            if Instant::now() > deadline {
                let _ = child.kill();
                panic!("worker did not stop within 60 s of SIGTERM; log:\n{}", self.log_text());
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    pub fn kill(mut self) {
        let mut c = self.child.take().unwrap();
        c.kill().unwrap();
        c.wait().unwrap();
    }

    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

impl Drop for Worker {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

/// `flashpoint replay` of `input` with `config`: the reference the cluster run must equal.
pub fn replay(config: &Path, input: &Path) -> Vec<serde_json::Value> {
    let out = Command::new(env!("CARGO_BIN_EXE_flashpoint"))
        .args(["replay", "-c"])
        .arg(config)
        .arg("-i")
        .arg(input)
        .stderr(Stdio::null())
        .output()
        .unwrap();
    assert!(out.status.success());
    String::from_utf8(out.stdout).unwrap().lines().map(|l| serde_json::from_str(l).unwrap()).collect()
}

/// Commits `offsets` ((partition, next offset to read) pairs of `topic`) for `group`, as if its members had.
pub fn commit(group: &str, topic: &str, offsets: &[(i32, i64)]) {
    commit_on(&brokers(), group, topic, offsets)
}

/// Committed offset of `group` on `topic`/`partition`.
pub fn committed(group: &str, topic: &str, partition: i32) -> Option<i64> {
    committed_on(&brokers(), group, topic, partition)
}
