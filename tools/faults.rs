//! Fault and load driver for the cluster worker (`scripts/faults.sh`, `scripts/soak.sh`): starts a Tansu
//! broker and `flashpoint run` workers, feeds a generated stream with known incidents, injects a fault, and
//! then accounts for every input record and compares the spike events with `flashpoint replay` of the same
//! stream.
//!
//! Scenarios (`faults SCENARIO [--posts N] [--seed S] ...`):
//! - `kill`: one worker SIGKILLed at random points and restarted each time.
//! - `broker`: the broker (persistent sqlite storage) stopped and restarted mid-stream; /readyz must turn
//!   503 meanwhile and 200 again after.
//! - `rebalance`: three workers; one at a time is stopped (SIGTERM) and a new one started, repeatedly.
//! - `pause`: the broker SIGSTOPped for a while (every topic, the spikes topic included, stops taking
//!   writes): the worker's RSS must stay bounded and nothing may be lost.
//! - `soak`: a steady rate for M minutes; throughput and RSS every 10 s to a CSV.
//!
//! Accounting: every input offset is either in the scored topic (as `src`/`off` of at least one scored
//! record), in the dead-letter topic (stage `score`, with its source offset), or was unmatched; the three
//! counts must equal replay's. Late posts diverted by the aggregate stage are counted by their source key.
//! Events are keyed by (incident id, seq); a duplicate must be byte-for-byte the same event (an exact
//! replay), and the de-duplicated set must equal replay's.

use flashpoint_core::stage::StageRecord;
use flashpoint_testkit::{committed_on, create_topic_on, event_key, flashpoint_bin, free_port, repo, try_http_get};
use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::{Headers, Message};
use rdkafka::producer::{BaseProducer, BaseRecord, Producer};
use rdkafka::topic_partition_list::{Offset, TopicPartitionList};
use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

fn http_get(port: u16, path: &str) -> Option<(u16, String)> {
    try_http_get(&format!("127.0.0.1:{port}"), path)
}

/// The committed offset, -1 when there is none (or the broker does not answer: it may be stopped).
fn committed_or_none(brokers: &str, group: &str, topic: &str, p: i32) -> i64 {
    committed_on(brokers, group, topic, p).unwrap_or(-1)
}

fn log(msg: impl AsRef<str>) {
    static T0: std::sync::OnceLock<Instant> = std::sync::OnceLock::new();
    let t = T0.get_or_init(Instant::now).elapsed().as_secs_f64();
    eprintln!("[faults {t:7.1}s] {}", msg.as_ref());
}

// ---------------------------------------------------------------------------------------------------------
// The stream: several entities, a daily baseline, several known incidents, a few bad and late records.

pub const ENTITIES: [(&str, &str); 5] = [
    ("Acme Air", "Acme Air"),
    ("Globex", "Globex"),
    ("Initech", "Initech"),
    ("Umbrella Corp", "Umbrella Corp"),
    ("Hooli", "Hooli"),
];

/// (entity index, start hour from the stream's start, minutes): after the detector's two-day warm-up.
const INCIDENTS: [(usize, f64, f64); 5] =
    [(0, 62.0, 50.0), (1, 68.5, 40.0), (2, 74.0, 45.0), (3, 80.0, 60.0), (4, 85.0, 40.0)];
const SPAN_HOURS: f64 = 90.0;
const START_MS: i64 = 1_772_409_600_000; // 2026-03-02T00:00:00Z

const NEGATIVE: [&str; 8] = [
    "lost my luggage again, worst service ever",
    "is a disaster today, furious and never flying with them again",
    "app is down and support hung up on me. terrible!",
    "charged me twice and refuses to refund. awful",
    "cancelled my booking without notice, horrible experience",
    "outage for hours, this is unacceptable and pathetic",
    "the worst customer care I have ever seen, so angry",
    "broken again. I hate this, complete failure",
];

fn xorshift(x: &mut u64) -> u64 {
    *x ^= *x << 13;
    *x ^= *x >> 7;
    *x ^= *x << 17;
    *x
}

/// N records, in event-time order (one input partition keeps replay-equivalence exact).
pub fn generate(n: u64, seed: u64) -> Vec<Vec<u8>> {
    let tweets = flashpoint_testkit::tweets();
    let dt = SPAN_HOURS * 3_600_000.0 / n as f64;
    let mut x = 0x9e37_79b9_7f4a_7c15 ^ seed.wrapping_mul(0x2545_f491_4f6c_dd1d);
    let mut out = Vec::with_capacity(n as usize);
    for i in 0..n {
        let r = xorshift(&mut x);
        let t = START_MS + (i as f64 * dt) as i64;
        let hour = (t - START_MS) as f64 / 3_600_000.0;
        if i % 100_003 == 77 {
            out.push(format!("not json {i}").into_bytes());
            continue;
        }
        if i % 250_007 == 91 {
            out.push(
                format!(r#"{{"id":"g{i}","created_at":"{}"}}"#, flashpoint_core::time::format_rfc3339(t)).into_bytes(),
            );
            continue;
        }
        let incident = INCIDENTS.iter().find(|(_, h, m)| hour >= *h && hour < h + m / 60.0);
        let (text, created) = if i % 200_009 == 13 {
            // Three hours behind: late for every aggregator.
            (format!("{} {}", ENTITIES[0].1, tweets[(r % tweets.len() as u64) as usize]), t - 3 * 3_600_000)
        } else if let Some(&(e, _, _)) = incident.filter(|_| r % 100 < 65) {
            (format!("{} {}", ENTITIES[e].1, NEGATIVE[((r >> 8) % NEGATIVE.len() as u64) as usize]), t)
        } else {
            let k = (r >> 16) % 6;
            let brand = if k < 5 { ENTITIES[k as usize].1 } else { "" };
            (format!("{brand} {}", tweets[((r >> 24) % tweets.len() as u64) as usize]), t)
        };
        let rec = serde_json::json!({
            "id": format!("g{i}"),
            "text": text,
            "created_at": flashpoint_core::time::format_rfc3339(created),
            "author": format!("u{}", (r >> 40) % 5000),
            "followers": (r >> 32) % 10_000,
        });
        out.push(serde_json::to_vec(&rec).unwrap());
    }
    out
}

// ---------------------------------------------------------------------------------------------------------
// Processes: the broker and the workers.

struct Broker {
    child: Option<Child>,
    port: u16,
    dir: PathBuf,
    storage: String,
}

impl Broker {
    fn start(dir: &Path, port: u16, storage: &str) -> Broker {
        let mut b = Broker { child: None, port, dir: dir.to_path_buf(), storage: storage.to_string() };
        b.spawn();
        b
    }
    fn spawn(&mut self) {
        let bin = std::env::var("TANSU_BIN")
            .unwrap_or_else(|_| format!("{}/.cache/flashpoint/tansu/bin/tansu", std::env::var("HOME").unwrap()));
        let url = format!("tcp://127.0.0.1:{}", self.port);
        let logf = std::fs::OpenOptions::new().create(true).append(true).open(self.dir.join("tansu.log")).unwrap();
        let child = Command::new(bin)
            .current_dir(&self.dir)
            .args([
                "broker",
                "--listener-url",
                &url,
                "--advertised-listener-url",
                &url,
                "--storage-engine",
                &self.storage,
            ])
            .stdout(logf.try_clone().unwrap())
            .stderr(logf)
            .spawn()
            .expect("starting tansu");
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(30);
        while std::net::TcpStream::connect(("127.0.0.1", self.port)).is_err() {
            assert!(Instant::now() < deadline, "broker did not start; see {}", self.dir.join("tansu.log").display());
            std::thread::sleep(Duration::from_millis(100));
        }
    }
    fn pid(&self) -> u32 {
        self.child.as_ref().unwrap().id()
    }
    fn signal(&self, sig: &str) {
        Command::new("kill").args([&format!("-{sig}"), &self.pid().to_string()]).status().unwrap();
    }
    fn stop(&mut self, sig: &str) {
        if let Some(mut c) = self.child.take() {
            let _ = Command::new("kill").args([&format!("-{sig}"), &c.id().to_string()]).status();
            let deadline = Instant::now() + Duration::from_secs(10);
            while c.try_wait().unwrap().is_none() && Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(50));
            }
            let _ = c.kill();
            let _ = c.wait();
        }
    }
    fn brokers(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }
}

impl Drop for Broker {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = Command::new("kill").args(["-CONT", &c.id().to_string()]).status();
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

/// Counters scraped from one worker's /metrics.
#[derive(Clone, Debug, Default)]
struct Scrape {
    consumed_score: f64,
    consumed_aggregate: f64,
    decoded: f64,
    scored: f64,
    aggregated: f64,
    duplicates: f64,
    dead: f64,
    spikes: f64,
    rss: f64,
}

fn parse_metrics(text: &str) -> Scrape {
    let mut s = Scrape::default();
    for l in text.lines().filter(|l| !l.starts_with('#')) {
        let Some((name, v)) = l.rsplit_once(' ') else { continue };
        let v: f64 = v.parse().unwrap_or(0.0);
        match name {
            "flashpoint_records_consumed_total{stage=\"score\"}" => s.consumed_score = v,
            "flashpoint_records_consumed_total{stage=\"aggregate\"}" => s.consumed_aggregate = v,
            "flashpoint_posts_decoded_total" => s.decoded = v,
            "flashpoint_posts_scored_total" => s.scored = v,
            "flashpoint_posts_aggregated_total" => s.aggregated = v,
            "flashpoint_duplicate_records_total" => s.duplicates = v,
            "process_resident_memory_bytes" => s.rss = v,
            _ if name.starts_with("flashpoint_dead_letter_records_total") => s.dead += v,
            _ if name.starts_with("flashpoint_spike_events_total") => s.spikes += v,
            _ => {}
        }
    }
    s
}

struct Worker {
    child: Option<Child>,
    port: u16,
    name: String,
    /// Last successful scrape (what a kill loses is at most the last second).
    last: Arc<Mutex<Scrape>>,
    peak_rss: Arc<AtomicU64>,
    stop: Arc<AtomicBool>,
}

impl Worker {
    fn start(cfg: &Path, dir: &Path, name: &str) -> Worker {
        let port = free_port();
        let logf = std::fs::File::create(dir.join(format!("{name}.log"))).unwrap();
        let child = Command::new(flashpoint_bin())
            .args(["run", "-c"])
            .arg(cfg)
            .args(["--role", "all", "--metrics-listen", &format!("127.0.0.1:{port}")])
            .env("FLASHPOINT_LOG", "info,librdkafka=warn,rdkafka=warn")
            .stdout(Stdio::null())
            .stderr(logf)
            .spawn()
            .expect("starting flashpoint run (build it: cargo build --release -p flashpoint)");
        let last = Arc::new(Mutex::new(Scrape::default()));
        let peak_rss = Arc::new(AtomicU64::new(0));
        let stop = Arc::new(AtomicBool::new(false));
        {
            let (last, peak, stop) = (last.clone(), peak_rss.clone(), stop.clone());
            std::thread::spawn(move || {
                while !stop.load(Ordering::Relaxed) {
                    if let Some((200, text)) = http_get(port, "/metrics") {
                        let s = parse_metrics(&text);
                        peak.fetch_max(s.rss as u64, Ordering::Relaxed);
                        *last.lock().unwrap() = s;
                    }
                    std::thread::sleep(Duration::from_millis(500));
                }
            });
        }
        Worker { child: Some(child), port, name: name.to_string(), last, peak_rss, stop }
    }
    /// The exit code if the process has exited.
    fn exited(&mut self) -> Option<i32> {
        self.child.as_mut().and_then(|c| c.try_wait().unwrap()).map(|s| s.code().unwrap_or(-1))
    }
    fn scrape(&self) -> Scrape {
        self.last.lock().unwrap().clone()
    }
    fn ready(&self) -> Option<u16> {
        http_get(self.port, "/readyz").map(|(c, _)| c)
    }
    fn kill(mut self) -> Scrape {
        let mut c = self.child.take().unwrap();
        c.kill().unwrap();
        c.wait().unwrap();
        self.stop.store(true, Ordering::Relaxed);
        self.scrape()
    }
    /// SIGTERM and wait; returns the exit code and the final scrape (taken just before the signal).
    fn term(mut self) -> (i32, Scrape) {
        if let Some((200, text)) = http_get(self.port, "/metrics") {
            *self.last.lock().unwrap() = parse_metrics(&text);
        }
        let mut c = self.child.take().unwrap();
        let _ = Command::new("kill").args(["-TERM", &c.id().to_string()]).status();
        let deadline = Instant::now() + Duration::from_secs(90);
        let code = loop {
            if let Some(s) = c.try_wait().unwrap() {
                break s.code().unwrap_or(-1);
            }
            if Instant::now() > deadline {
                log(format!("{}: no exit 90 s after SIGTERM; killing", self.name));
                let _ = c.kill();
                let _ = c.wait();
                break -9;
            }
            std::thread::sleep(Duration::from_millis(100));
        };
        self.stop.store(true, Ordering::Relaxed);
        (code, self.scrape())
    }
}

impl Drop for Worker {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

// ---------------------------------------------------------------------------------------------------------
// Kafka helpers: topics, a background producer, background collectors of the output topics.

/// Produces `records` in order to partition 0, at most `rate` a second (0: as fast as possible), in a
/// thread; `acked` counts acknowledgements. Survives broker outages (librdkafka retries for ever).
fn spawn_producer(
    brokers: String,
    topic: String,
    records: Arc<Vec<Vec<u8>>>,
    rate: u64,
    acked: Arc<AtomicU64>,
) -> std::thread::JoinHandle<()> {
    // One in-flight request keeps the order without idempotence (see `broker` in the README: Tansu's sqlite
    // engine panics on idempotent produces after a restart).
    let idempotent = std::env::var("FAULTS_IDEMPOTENT_INPUT").map_or(true, |v| v != "0");
    std::thread::spawn(move || {
        let p: BaseProducer = ClientConfig::new()
            .set("bootstrap.servers", &brokers)
            .set("linger.ms", "20")
            .set("batch.num.messages", "10000")
            .set("enable.idempotence", idempotent.to_string())
            .set("max.in.flight.requests.per.connection", if idempotent { "5" } else { "1" })
            .set("message.timeout.ms", "0")
            .set("queue.buffering.max.messages", "200000")
            .create()
            .unwrap();
        let started = Instant::now();
        let mut sent: u64 = 0;
        let mut last_flush = 0;
        for pl in records.iter() {
            send_paced(&p, &topic, pl, &mut sent, rate, started);
            if sent - last_flush >= 5000 {
                last_flush = sent;
                acked.store(sent - p.in_flight_count() as u64, Ordering::Relaxed);
            }
        }
        p.flush(Duration::from_secs(3600)).expect("every input record acknowledged");
        acked.store(sent, Ordering::Relaxed);
    })
}

/// Enqueues `payload` to partition 0 of `topic`, waiting while the producer's queue is full (backpressure, never
/// a dropped record), counts it in `sent`, and then sleeps as needed to hold `rate` records a second since
/// `started` (0: no pacing).
fn send_paced(p: &BaseProducer, topic: &str, payload: &[u8], sent: &mut u64, rate: u64, started: Instant) {
    let mut rec: BaseRecord<'_, (), [u8]> = BaseRecord::to(topic).payload(payload).partition(0);
    loop {
        match p.send(rec) {
            Ok(()) => break,
            Err((_, r)) => {
                rec = r;
                p.poll(Duration::from_millis(10));
            }
        }
    }
    *sent += 1;
    p.poll(Duration::ZERO);
    if rate > 0 {
        let due = Duration::from_secs_f64(*sent as f64 / rate as f64);
        if let Some(w) = due.checked_sub(started.elapsed()) {
            std::thread::sleep(w);
        }
    }
}

/// What the collectors saw on the output topics (all partitions, from the beginning).
#[derive(Default)]
struct Seen {
    /// Scored topic: post records (with re-publications), distinct (src offset, sub, entity), ticks.
    scored_records: u64,
    scored_pairs: HashSet<(i64, u32, String)>,
    scored_sources: HashSet<i64>,
    ticks: u64,
    scored_end: BTreeMap<i32, i64>,
    /// Dead letters by stage: score ones by source offset and reason; aggregate ones by the scored key.
    dead_records: u64,
    dead_score: HashMap<i64, String>,
    dead_late: HashSet<(i64, u32, String)>,
    dead_other: u64,
    /// Spike events, in arrival order.
    events: Vec<serde_json::Value>,
    event_header_mismatch: u64,
}

struct Collectors {
    seen: Arc<Mutex<Seen>>,
    stop: Arc<AtomicBool>,
    threads: Vec<std::thread::JoinHandle<()>>,
}

impl Collectors {
    fn start(brokers: &str, scored: &str, dead: &str, spikes: &str) -> Collectors {
        let seen = Arc::new(Mutex::new(Seen::default()));
        let stop = Arc::new(AtomicBool::new(false));
        let mut threads = Vec::new();
        for (kind, topic) in [(0, scored), (1, dead), (2, spikes)] {
            let (seen, stop, brokers, topic) = (seen.clone(), stop.clone(), brokers.to_string(), topic.to_string());
            threads.push(std::thread::spawn(move || collect(kind, &brokers, &topic, &seen, &stop)));
        }
        Collectors { seen, stop, threads }
    }
    fn finish(self) -> Seen {
        self.stop.store(true, Ordering::Relaxed);
        for t in self.threads {
            t.join().unwrap();
        }
        Arc::try_unwrap(self.seen).ok().unwrap().into_inner().unwrap()
    }
}

fn collect(kind: u8, brokers: &str, topic: &str, seen: &Mutex<Seen>, stop: &AtomicBool) {
    let c: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", brokers)
        .set("group.id", format!("faults-collector-{topic}"))
        .set("enable.auto.commit", "false")
        .create()
        .unwrap();
    let n = loop {
        if stop.load(Ordering::Relaxed) {
            return;
        }
        if let Ok(md) = c.fetch_metadata(Some(topic), Duration::from_secs(5)) {
            let n =
                md.topics().first().map_or(0, |t| if t.error().is_some() { 0 } else { t.partitions().len() as i32 });
            if n > 0 {
                break n;
            }
        }
        std::thread::sleep(Duration::from_millis(300));
    };
    let mut tpl = TopicPartitionList::new();
    for p in 0..n {
        tpl.add_partition_offset(topic, p, Offset::Beginning).unwrap();
    }
    c.assign(&tpl).unwrap();
    let mut idle_since: Option<Instant> = None;
    loop {
        if stop.load(Ordering::Relaxed) {
            // Drain what is there: stop only after a second without records.
            if idle_since.is_some_and(|t| t.elapsed() > Duration::from_secs(2)) {
                return;
            }
        }
        let Some(m) = c.poll(Duration::from_millis(200)) else {
            idle_since.get_or_insert_with(Instant::now);
            continue;
        };
        idle_since = None;
        let Ok(m) = m else { continue };
        let payload = m.payload().unwrap_or_default();
        let header = |k: &str| {
            m.headers().and_then(|h| {
                h.iter().find(|x| x.key == k).and_then(|x| x.value).map(|v| String::from_utf8_lossy(v).into_owned())
            })
        };
        let mut s = seen.lock().unwrap();
        match kind {
            0 => {
                let e = s.scored_end.entry(m.partition()).or_insert(0);
                *e = (*e).max(m.offset() + 1);
                // Read with the worker's own decoder: the internal topic's format is core's.
                match StageRecord::decode(payload).expect("a stage record") {
                    StageRecord::Tick { .. } => s.ticks += 1,
                    StageRecord::Post(p) => {
                        s.scored_records += 1;
                        s.scored_sources.insert(p.off);
                        s.scored_pairs.insert((p.off, p.sub, p.entity.into_owned()));
                    }
                }
            }
            1 => {
                s.dead_records += 1;
                let reason = header("flashpoint.reason").unwrap_or_default();
                match header("flashpoint.stage").as_deref() {
                    Some("score") => {
                        let off: i64 = header("flashpoint.source.offset").unwrap().parse().unwrap();
                        s.dead_score.insert(off, reason);
                    }
                    _ if reason == "late" => match StageRecord::decode(payload).expect("a late stage record") {
                        StageRecord::Post(p) => {
                            s.dead_late.insert((p.off, p.sub, p.entity.into_owned()));
                        }
                        StageRecord::Tick { .. } => s.dead_other += 1,
                    },
                    _ => s.dead_other += 1,
                }
            }
            _ => {
                let j: serde_json::Value = serde_json::from_slice(payload).unwrap();
                if header("flashpoint.incident_id").as_deref() != j["incident_id"].as_str() {
                    s.event_header_mismatch += 1;
                }
                s.events.push(j);
            }
        }
    }
}

/// Committed offset of `group` on `topic`/`p` (-1 when none).

// ---------------------------------------------------------------------------------------------------------
// The reference run and the verdict.

struct Reference {
    events: Vec<serde_json::Value>,
    records: u64,
    decode_errors: u64,
    matched: u64,
    unmatched: u64,
    skipped: u64,
    aggregated: u64,
    late: u64,
}

fn replay(cfg: &Path, input: &Path, dir: &Path) -> Reference {
    let (ev, dl) = (dir.join("replay-events.jsonl"), dir.join("replay-dead.jsonl"));
    let out = Command::new(flashpoint_bin())
        .args(["replay", "-c"])
        .arg(cfg)
        .arg("-i")
        .arg(input)
        .arg("-o")
        .arg(&ev)
        .arg("--dead-letter")
        .arg(&dl)
        .output()
        .unwrap();
    assert!(out.status.success(), "replay failed: {}", String::from_utf8_lossy(&out.stderr));
    let err = String::from_utf8_lossy(&out.stderr);
    let s: serde_json::Value =
        serde_json::from_str(err.lines().filter(|l| l.starts_with('{')).last().expect("replay summary")).unwrap();
    let events = std::fs::read_to_string(&ev).unwrap().lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    let u = |v: &serde_json::Value| v.as_u64().unwrap_or(0);
    Reference {
        events,
        records: u(&s["records"]),
        decode_errors: u(&s["decode_errors"]),
        matched: u(&s["stages"]["matched"]),
        unmatched: u(&s["stages"]["unmatched"]),
        skipped: u(&s["skipped_not_posts"]),
        aggregated: u(&s["aggregator"]["aggregated"]),
        late: u(&s["aggregator"]["late"]),
    }
}

/// Checks everything; returns (report lines, failures).
fn verdict(n: u64, seen: &Seen, r: &Reference, diff_to: Option<&Path>) -> (Vec<String>, Vec<String>) {
    let mut report = Vec::new();
    let mut fail = Vec::new();
    let mut check = |ok: bool, what: String| {
        report.push(format!("  [{}] {what}", if ok { " ok " } else { "FAIL" }));
        if !ok {
            fail.push(what);
        }
    };
    let both = seen.scored_sources.iter().filter(|o| seen.dead_score.contains_key(o)).count();
    let covered: HashSet<i64> = seen.scored_sources.iter().copied().chain(seen.dead_score.keys().copied()).collect();
    let out_of_range = covered.iter().filter(|&&o| o < 0 || o >= n as i64).count();
    let unaccounted = n - covered.len() as u64;
    check(r.records == n, format!("replay read {} records of {n}", r.records));
    check(
        seen.scored_sources.len() as u64 == r.matched,
        format!(
            "input records scored (distinct source offsets in the scored topic): {} (replay matched {})",
            seen.scored_sources.len(),
            r.matched
        ),
    );
    check(
        seen.dead_score.len() as u64 == r.decode_errors,
        format!(
            "input records dead-lettered by the score stage: {} (replay {})",
            seen.dead_score.len(),
            r.decode_errors
        ),
    );
    check(
        unaccounted == r.unmatched + r.skipped,
        format!(
            "input records with no output (unmatched/skipped): {unaccounted} (replay {} + {})",
            r.unmatched, r.skipped
        ),
    );
    check(
        both == 0 && out_of_range == 0,
        format!("records both scored and dead-lettered: {both}; offsets out of range: {out_of_range}"),
    );
    check(
        seen.dead_late.len() as u64 == r.late,
        format!(
            "(post, entity) pairs dead-lettered late by the aggregate stage: {} distinct (replay {})",
            seen.dead_late.len(),
            r.late
        ),
    );
    let aggregated = seen.scored_pairs.len() as u64 - seen.dead_late.len() as u64;
    check(
        aggregated == r.aggregated,
        format!(
            "(post, entity) pairs aggregated: {aggregated} distinct of {} scored records, {} re-published (replay {})",
            seen.scored_records,
            seen.scored_records - seen.scored_pairs.len() as u64,
            r.aggregated
        ),
    );
    check(
        seen.dead_other == 0,
        format!("other dead letters (bad_stage_record, unknown_entity, ...): {}", seen.dead_other),
    );
    // Events.
    let mut got: BTreeMap<(String, u64), &serde_json::Value> = BTreeMap::new();
    let mut dup = 0;
    let mut inexact = 0;
    for e in &seen.events {
        if let Some(prev) = got.insert(event_key(e), e) {
            dup += 1;
            if prev != e {
                inexact += 1;
            }
        }
    }
    let want: BTreeMap<(String, u64), &serde_json::Value> = r.events.iter().map(|e| (event_key(e), e)).collect();
    let missing = want.keys().filter(|k| !got.contains_key(*k)).count();
    let extra = got.keys().filter(|k| !want.contains_key(*k)).count();
    let differ = want.iter().filter(|(k, v)| got.get(*k).is_some_and(|g| g != *v)).count();
    if let Some(path) = diff_to {
        // Field-level differences, for the report's reader.
        let mut f = std::fs::File::create(path).unwrap();
        for (k, v) in &want {
            let Some(g) = got.get(k) else { continue };
            if g == v {
                continue;
            }
            writeln!(f, "{k:?}").unwrap();
            for (field, wv) in v.as_object().unwrap() {
                if g.get(field) != Some(wv) {
                    writeln!(
                        f,
                        "  {field}: replay {wv}\n  {field}: cluster {}",
                        g.get(field).unwrap_or(&serde_json::Value::Null)
                    )
                    .unwrap();
                }
            }
        }
    }
    let incidents: BTreeSet<&str> = want.keys().map(|k| k.0.as_str()).collect();
    let finals = |m: &BTreeMap<(String, u64), &serde_json::Value>| -> BTreeMap<String, String> {
        let mut f = BTreeMap::new();
        for ((id, _), e) in m {
            f.insert(
                id.clone(),
                format!("{}/{}", e["kind"].as_str().unwrap_or("?"), e["severity"].as_str().unwrap_or("?")),
            );
        }
        f
    };
    check(
        missing == 0 && extra == 0 && differ == 0,
        format!("spike events: {} distinct ({} published, {dup} duplicates) vs replay {} over {} incidents; missing {missing}, extra {extra}, different {differ}", got.len(), seen.events.len(), want.len(), incidents.len()),
    );
    check(inexact == 0, format!("duplicate events that are not exact replays: {inexact}"));
    check(finals(&got) == finals(&want), format!("final incident states equal replay's: {:?}", finals(&want)));
    check(
        seen.event_header_mismatch == 0,
        format!("events whose incident-id header differs from the body: {}", seen.event_header_mismatch),
    );
    report.insert(0, format!("  records in: {n}; scored topic: {} post records + {} ticks; dead-letter topic: {} records ({} score-stage, {} late pairs); spikes topic: {} events", seen.scored_records, seen.ticks, seen.dead_records, seen.dead_score.len(), seen.dead_late.len(), seen.events.len()));
    (report, fail)
}

// ---------------------------------------------------------------------------------------------------------
// Scenarios.

struct Opts {
    posts: u64,
    seed: u64,
    kills: u32,
    rate: u64,
    minutes: f64,
    csv: Option<PathBuf>,
    dir: PathBuf,
    checkpoint_ms: u64,
    /// Broker scenario: how the broker is stopped (KILL: a crash; TERM: Tansu's graceful shutdown).
    broker_signal: String,
    /// Extra `[kafka.librdkafka]` lines for the workers (e.g. `"enable.idempotence" = "false"`).
    librdkafka: String,
}

struct Setup {
    dir: PathBuf,
    cfg: PathBuf,
    input: String,
    group: String,
    scored: String,
    spikes: String,
    dead: String,
    stream: PathBuf,
    records: Arc<Vec<Vec<u8>>>,
}

fn setup(o: &Opts, name: &str, brokers: &str, records: Option<Arc<Vec<Vec<u8>>>>) -> Setup {
    let dir = o.dir.clone();
    let p = format!("{name}-{}", std::process::id());
    let s = Setup {
        cfg: dir.join(format!("{name}.toml")),
        input: format!("{p}-posts"),
        group: p.clone(),
        scored: format!("{p}-scored"),
        spikes: format!("{p}-spikes"),
        dead: format!("{p}-dead"),
        stream: dir.join(format!("{name}-stream.jsonl")),
        records: records.unwrap_or_else(|| Arc::new(generate(o.posts, o.seed))),
        dir,
    };
    let base = std::fs::read_to_string(repo("config/flashpoint.toml")).unwrap();
    let at = base.find("[[entities]]").unwrap();
    let mut text = base[..at].to_string();
    text.push_str(&format!(
        "[kafka]\nbrokers = \"{brokers}\"\ninput_topics = [\"{}\"]\ngroup_id = \"{}\"\nscored_topic = \"{}\"\nspikes_topic = \"{}\"\n\
         dead_letter_topic = \"{}\"\nstate_topic = \"{p}-state\"\ninternal_partitions = 4\ncheckpoint_interval_ms = {}\n\
         [kafka.librdkafka]\n\"session.timeout.ms\" = \"6000\"\n\"heartbeat.interval.ms\" = \"500\"\n{}\n\n",
        s.input, s.group, s.scored, s.spikes, s.dead, o.checkpoint_ms, o.librdkafka
    ));
    for (name, term) in ENTITIES {
        text.push_str(&format!("[[entities]]\nname = \"{name}\"\nterms = [\"{}\"]\n\n", term.to_lowercase()));
    }
    std::fs::write(&s.cfg, text).unwrap();
    if !s.stream.exists() || records_differ(&s) {
        let mut f = std::io::BufWriter::new(std::fs::File::create(&s.stream).unwrap());
        for r in s.records.iter() {
            f.write_all(r).unwrap();
            f.write_all(b"\n").unwrap();
        }
    }
    create_topic_on(brokers, &s.input, 1);
    s
}

fn records_differ(s: &Setup) -> bool {
    std::fs::metadata(&s.stream).map(|m| m.len()).unwrap_or(0)
        != s.records.iter().map(|r| r.len() as u64 + 1).sum::<u64>()
}

/// Waits until the score group committed every input record and the aggregate group committed every
/// scored record the collector saw (stable for two looks), or `limit` passes.
fn wait_done(brokers: &str, s: &Setup, n: u64, seen: &Mutex<Seen>, limit: Duration) -> bool {
    let deadline = Instant::now() + limit;
    let mut stable = 0;
    let mut last_report = Instant::now();
    while Instant::now() < deadline {
        let score = committed_or_none(brokers, &format!("{}-score", s.group), &s.input, 0);
        let ends = seen.lock().unwrap().scored_end.clone();
        let mut behind = 0i64;
        for p in 0..4 {
            let end = ends.get(&p).copied().unwrap_or(0);
            let c = committed_or_none(brokers, &format!("{}-aggregate", s.group), &s.scored, p).max(0);
            behind += (end - c).max(0);
        }
        if last_report.elapsed() > Duration::from_secs(15) {
            log(format!("waiting: score committed {score}/{n}, aggregate behind by {behind}"));
            last_report = Instant::now();
        }
        if score == n as i64 && behind == 0 && !ends.is_empty() {
            stable += 1;
            if stable >= 2 {
                return true;
            }
        } else {
            stable = 0;
        }
        std::thread::sleep(Duration::from_secs(2));
    }
    false
}

struct Totals {
    consumed_score: f64,
    consumed_aggregate: f64,
    scored: f64,
    aggregated: f64,
    duplicates: f64,
    dead: f64,
    spikes: f64,
    peak_rss: u64,
}

impl Totals {
    fn new() -> Totals {
        Totals {
            consumed_score: 0.0,
            consumed_aggregate: 0.0,
            scored: 0.0,
            aggregated: 0.0,
            duplicates: 0.0,
            dead: 0.0,
            spikes: 0.0,
            peak_rss: 0,
        }
    }
    fn add(&mut self, s: &Scrape, peak: u64) {
        self.consumed_score += s.consumed_score;
        self.consumed_aggregate += s.consumed_aggregate;
        self.scored += s.scored;
        self.aggregated += s.aggregated;
        self.duplicates += s.duplicates;
        self.dead += s.dead;
        self.spikes += s.spikes;
        self.peak_rss = self.peak_rss.max(peak);
    }
    fn line(&self) -> String {
        format!(
            "  worker metrics summed over lifetimes (last scrape before each exit/kill): consumed score {} / aggregate {}, scored {}, aggregated {}, duplicates dropped {}, dead-lettered {}, spike events {}; peak worker RSS {:.1} MiB",
            self.consumed_score, self.consumed_aggregate, self.scored, self.aggregated, self.duplicates, self.dead, self.spikes, self.peak_rss as f64 / 1048576.0
        )
    }
}

fn finish(name: &str, n: u64, s: &Setup, col: Collectors, totals: &Totals, extra: Vec<String>, done: bool) -> bool {
    let seen = col.finish();
    log("replaying the same stream for the reference");
    let r = replay(&s.cfg, &s.stream, &s.dir);
    let diff = s.dir.join(format!("{name}-event-diff.txt"));
    let (report, mut fail) = verdict(n, &seen, &r, Some(&diff));
    let mut f = std::io::BufWriter::new(std::fs::File::create(s.dir.join(format!("{name}-events.jsonl"))).unwrap());
    for e in &seen.events {
        writeln!(f, "{e}").unwrap();
    }
    if !done {
        fail.push("the run did not finish in time (offsets not all committed)".into());
    }
    println!("== {name}: {} ==", if fail.is_empty() { "PASS" } else { "FAIL" });
    for l in extra {
        println!("  {l}");
    }
    println!("{}", totals.line());
    for l in report {
        println!("{l}");
    }
    for f in &fail {
        println!("  failure: {f}");
    }
    fail.is_empty()
}

fn rand_between(x: &mut u64, lo: f64, hi: f64) -> f64 {
    lo + (xorshift(x) % 10_000) as f64 / 10_000.0 * (hi - lo)
}

fn scenario_kill(o: &Opts) -> bool {
    let broker = Broker::start(&o.dir, free_port(), "memory://tansu/");
    let b = broker.brokers();
    log(format!("generating {} posts", o.posts));
    let s = setup(o, "kill", &b, None);
    let n = s.records.len() as u64;
    let acked = Arc::new(AtomicU64::new(0));
    let producer = spawn_producer(b.clone(), s.input.clone(), s.records.clone(), o.rate, acked.clone());
    let col = Collectors::start(&b, &s.scored, &s.dead, &s.spikes);
    let mut totals = Totals::new();
    let mut x = o.seed.wrapping_add(0x1234_5678);
    let started = Instant::now();
    let mut w = Worker::start(&s.cfg, &s.dir, "w0");
    let mut kills = Vec::new();
    for k in 0..o.kills {
        // Kill while it works: once it has its partitions (after a kill that takes the dead member's session
        // timeout, see the report), then at a random point 1-5 s later.
        let t = Instant::now();
        while w.ready() != Some(200) && t.elapsed() < Duration::from_secs(120) {
            std::thread::sleep(Duration::from_millis(100));
        }
        let to_ready = t.elapsed().as_secs_f64();
        let wait = rand_between(&mut x, 1.0, 5.0);
        std::thread::sleep(Duration::from_secs_f64(wait));
        let sc = w.scrape();
        let peak = w.peak_rss.load(Ordering::Relaxed);
        let before = committed_or_none(&b, &format!("{}-score", s.group), &s.input, 0);
        let last = w.kill();
        totals.add(&last, peak);
        kills.push(format!("kill {}: ready {to_ready:.1} s after start, killed {wait:.1} s later; input committed {before}; this life consumed {} (score) / {} (aggregate)", k + 1, sc.consumed_score, sc.consumed_aggregate));
        log(kills.last().unwrap());
        if before >= n as i64 && acked.load(Ordering::Relaxed) >= n {
            log("input fully consumed before this kill; no more kills");
            w = Worker::start(&s.cfg, &s.dir, &format!("w{}", k + 1));
            break;
        }
        w = Worker::start(&s.cfg, &s.dir, &format!("w{}", k + 1));
    }
    producer.join().unwrap();
    let done = wait_done(&b, &s, n, &col.seen, Duration::from_secs(600));
    let elapsed = started.elapsed().as_secs_f64();
    let peak = w.peak_rss.load(Ordering::Relaxed);
    let (code, last) = w.term();
    totals.add(&last, peak);
    let mut extra = kills;
    extra.push(format!(
        "{n} records processed in {elapsed:.0} s with {} kills; last worker exit code {code}",
        extra.len()
    ));
    finish("kill", n, &s, col, &totals, extra, done && code == 0)
}

fn scenario_broker(o: &Opts) -> bool {
    let bdir = o.dir.join("broker-sqlite");
    let _ = std::fs::remove_dir_all(&bdir);
    std::fs::create_dir_all(&bdir).unwrap();
    let mut broker = Broker::start(&bdir, free_port(), "sqlite://tansu.db");
    let b = broker.brokers();
    let s = setup(o, "broker", &b, None);
    let n = s.records.len() as u64;
    let acked = Arc::new(AtomicU64::new(0));
    let producer = spawn_producer(b.clone(), s.input.clone(), s.records.clone(), o.rate, acked.clone());
    let col = Collectors::start(&b, &s.scored, &s.dead, &s.spikes);
    let mut totals = Totals::new();
    let w = Worker::start(&s.cfg, &s.dir, "w0");
    let mut extra = Vec::new();
    // Wait until ready and working, then stop the broker mid-stream.
    let t0 = Instant::now();
    while w.ready() != Some(200) && t0.elapsed() < Duration::from_secs(60) {
        std::thread::sleep(Duration::from_millis(200));
    }
    extra.push(format!("ready (200) {:.1} s after start", t0.elapsed().as_secs_f64()));
    while (acked.load(Ordering::Relaxed) < n / 3 || w.scrape().consumed_score < (n / 4) as f64)
        && t0.elapsed() < Duration::from_secs(600)
    {
        std::thread::sleep(Duration::from_millis(200));
    }
    let before = w.scrape();
    log(format!("stopping the broker (SIG{}); worker consumed {} so far", o.broker_signal, before.consumed_score));
    broker.stop(&o.broker_signal);
    let down = Instant::now();
    let mut first_503 = None;
    let mut codes = BTreeMap::new();
    while down.elapsed() < Duration::from_secs(20) {
        let c = w.ready();
        *codes.entry(format!("{c:?}")).or_insert(0) += 1;
        if c == Some(503) && first_503.is_none() {
            first_503 = Some(down.elapsed().as_secs_f64());
        }
        std::thread::sleep(Duration::from_millis(250));
    }
    let during = w.scrape();
    extra.push(format!(
        "broker down 20 s: /readyz answers {codes:?}; first 503 after {} s; worker RSS {:.1} MiB",
        first_503.map_or("never".into(), |t| format!("{t:.1}")),
        during.rss / 1048576.0
    ));
    broker.spawn();
    log("broker restarted on the same storage");
    let up = Instant::now();
    let mut back = None;
    while up.elapsed() < Duration::from_secs(120) {
        if w.ready() == Some(200) {
            back = Some(up.elapsed().as_secs_f64());
            break;
        }
        std::thread::sleep(Duration::from_millis(250));
    }
    extra.push(format!(
        "/readyz back to 200 {} s after the broker restart",
        back.map_or("never (within 120 s)".into(), |t| format!("{t:.1}"))
    ));
    producer.join().unwrap();
    let done = wait_done(&b, &s, n, &col.seen, Duration::from_secs(600));
    let peak = w.peak_rss.load(Ordering::Relaxed);
    let (code, last) = w.term();
    totals.add(&last, peak);
    extra.push(format!("worker exit code {code}; it was never restarted (one process across the outage)"));
    finish("broker", n, &s, col, &totals, extra, done && code == 0 && first_503.is_some() && back.is_some())
}

fn scenario_rebalance(o: &Opts) -> bool {
    let broker = Broker::start(&o.dir, free_port(), "memory://tansu/");
    let b = broker.brokers();
    let s = setup(o, "rebalance", &b, None);
    let n = s.records.len() as u64;
    let acked = Arc::new(AtomicU64::new(0));
    let producer = spawn_producer(b.clone(), s.input.clone(), s.records.clone(), o.rate, acked.clone());
    let col = Collectors::start(&b, &s.scored, &s.dead, &s.spikes);
    let mut totals = Totals::new();
    let mut x = o.seed.wrapping_add(99);
    let mut ws: Vec<Worker> = (0..3).map(|i| Worker::start(&s.cfg, &s.dir, &format!("w{i}"))).collect();
    let mut next = 3;
    let mut extra = Vec::new();
    let mut bad_exits = 0;
    for _ in 0..o.kills {
        std::thread::sleep(Duration::from_secs_f64(rand_between(&mut x, 3.0, 10.0)));
        let i = (xorshift(&mut x) % ws.len() as u64) as usize;
        let w = ws.remove(i);
        let name = w.name.clone();
        let peak = w.peak_rss.load(Ordering::Relaxed);
        let (code, last) = w.term();
        if code != 0 {
            bad_exits += 1;
        }
        totals.add(&last, peak);
        let c = committed_or_none(&b, &format!("{}-score", s.group), &s.input, 0);
        log(format!("{name} left (exit {code}); input committed {c}; starting w{next}"));
        ws.push(Worker::start(&s.cfg, &s.dir, &format!("w{next}")));
        next += 1;
    }
    extra.push(format!(
        "{} workers stopped with SIGTERM and replaced, 3 running at any time; {bad_exits} unclean exits",
        o.kills
    ));
    producer.join().unwrap();
    let done = wait_done(&b, &s, n, &col.seen, Duration::from_secs(600));
    for w in ws {
        let peak = w.peak_rss.load(Ordering::Relaxed);
        let (code, last) = w.term();
        if code != 0 {
            bad_exits += 1;
        }
        totals.add(&last, peak);
    }
    finish("rebalance", n, &s, col, &totals, extra, done && bad_exits == 0)
}

fn scenario_pause(o: &Opts) -> bool {
    let broker = Broker::start(&o.dir, free_port(), "memory://tansu/");
    let b = broker.brokers();
    let s = setup(o, "pause", &b, None);
    let n = s.records.len() as u64;
    let acked = Arc::new(AtomicU64::new(0));
    // All input first: the worker has everything to read when the broker freezes.
    let producer = spawn_producer(b.clone(), s.input.clone(), s.records.clone(), 0, acked.clone());
    producer.join().unwrap();
    let col = Collectors::start(&b, &s.scored, &s.dead, &s.spikes);
    let mut totals = Totals::new();
    let w = Worker::start(&s.cfg, &s.dir, "w0");
    let mut extra = Vec::new();
    let t0 = Instant::now();
    while w.scrape().consumed_score < (n / 4) as f64 && t0.elapsed() < Duration::from_secs(600) {
        std::thread::sleep(Duration::from_millis(200));
    }
    let rss_before = w.scrape().rss;
    let mut rss_paused: f64 = 0.0;
    for round in 0..2 {
        log(format!("pausing the broker (SIGSTOP) for 25 s, round {}", round + 1));
        broker.signal("STOP");
        let p0 = Instant::now();
        let c0 = w.scrape().consumed_score;
        while p0.elapsed() < Duration::from_secs(25) {
            rss_paused = rss_paused.max(w.scrape().rss);
            std::thread::sleep(Duration::from_millis(500));
        }
        let c1 = w.scrape().consumed_score;
        broker.signal("CONT");
        extra.push(format!(
            "pause {}: records consumed while frozen {} (backpressure stops reading)",
            round + 1,
            c1 - c0
        ));
        std::thread::sleep(Duration::from_secs(10));
    }
    // A freeze longer than the session timeout expires the worker's group sessions. On Tansu 0.6.0 the
    // rejoining member then gets no partitions until another member joins (as after a SIGKILL): do what a
    // supervisor's readiness restart would do, and say so.
    let t = Instant::now();
    let mut w = w;
    while w.ready() != Some(200) && t.elapsed() < Duration::from_secs(20) {
        if let Some(code) = w.exited() {
            // A stage failed during the freeze and the worker exited: restart it, as a supervisor would.
            extra.push(format!("the worker exited with code {code} after the freeze (see w0.log); restarted"));
            log(format!("worker exited ({code}); restarting it"));
            totals.add(&w.scrape(), w.peak_rss.load(Ordering::Relaxed));
            w.child.take();
            w = Worker::start(&s.cfg, &s.dir, "w0b");
        }
        std::thread::sleep(Duration::from_millis(250));
    }
    let mut helper = None;
    if w.ready() != Some(200) {
        extra.push(format!(
            "not ready 20 s after the broker resumed ({:?}): a second worker joined to trigger a rebalance",
            w.ready()
        ));
        log("worker not ready after the pauses; starting a second worker");
        helper = Some(Worker::start(&s.cfg, &s.dir, "w1"));
    } else {
        extra.push(format!("ready again {:.1} s after the broker resumed", t.elapsed().as_secs_f64()));
    }
    let done = wait_done(&b, &s, n, &col.seen, Duration::from_secs(600));
    let peak = w.peak_rss.load(Ordering::Relaxed);
    let (code, last) = w.term();
    totals.add(&last, peak);
    let mut code = code;
    if let Some(h) = helper {
        let peak = h.peak_rss.load(Ordering::Relaxed);
        let (c2, last) = h.term();
        totals.add(&last, peak);
        code = code.max(c2);
    }
    let bound = 512.0 * 1048576.0;
    extra.push(format!(
        "worker RSS before the pauses {:.1} MiB, peak while paused {:.1} MiB, peak over the run {:.1} MiB (bound {:.0} MiB)",
        rss_before / 1048576.0,
        rss_paused / 1048576.0,
        peak as f64 / 1048576.0,
        bound / 1048576.0
    ));
    finish("pause", n, &s, col, &totals, extra, done && code == 0 && (peak as f64) < bound)
}

/// Steady-rate soak: an endless generated stream at `rate` posts/s for `minutes`; one worker; a CSV line
/// every 10 s. Fails if throughput decays (a late interval under 80 % of the rate while input is waiting)
/// or RSS keeps growing (the last third's peak over 1.5x the second third's peak and over 64 MiB more).
fn scenario_soak(o: &Opts) -> bool {
    let broker = Broker::start(&o.dir, free_port(), "memory://tansu/");
    let b = broker.brokers();
    let total = (o.rate as f64 * o.minutes * 60.0) as u64;
    // One day-and-a-half of event time per 1M posts as in the other scenarios, but looped over a pool of
    // 200k generated records rewritten with fresh ids and times so the input never runs dry.
    let pool = generate(200_000, o.seed);
    let s = setup(o, "soak", &b, Some(Arc::new(Vec::new())));
    let acked = Arc::new(AtomicU64::new(0));
    let stop = Arc::new(AtomicBool::new(false));
    let prod = {
        let (b, topic, acked, rate, stop) = (b.clone(), s.input.clone(), acked.clone(), o.rate, stop.clone());
        std::thread::spawn(move || {
            let p: BaseProducer = ClientConfig::new()
                .set("bootstrap.servers", &b)
                .set("linger.ms", "20")
                .set("batch.num.messages", "10000")
                .set("queue.buffering.max.messages", "200000")
                .create()
                .unwrap();
            let started = Instant::now();
            let mut sent = 0u64;
            while sent < total && !stop.load(Ordering::Relaxed) {
                let src: serde_json::Value = match serde_json::from_slice(&pool[(sent % pool.len() as u64) as usize]) {
                    Ok(v) => v,
                    Err(_) => {
                        sent += 1;
                        continue;
                    }
                };
                let mut v = src;
                let t = START_MS + (sent as i64) * 1000 / 50; // 50 posts per event-time second
                if v.get("created_at").is_some() {
                    v["created_at"] = flashpoint_core::time::format_rfc3339(t).into();
                }
                v["id"] = format!("s{sent}").into();
                let pl = serde_json::to_vec(&v).unwrap();
                send_paced(&p, &topic, &pl, &mut sent, rate, started);
                acked.store(sent, Ordering::Relaxed);
            }
            let _ = p.flush(Duration::from_secs(60));
        })
    };
    let w = Worker::start(&s.cfg, &s.dir, "w0");
    let csv_path = o.csv.clone().unwrap_or_else(|| o.dir.join("soak.csv"));
    let mut csv = std::fs::File::create(&csv_path).unwrap();
    writeln!(csv, "elapsed_s,produced,consumed,records_per_s,rss_mib,dead_lettered,spike_events,broker_rss_mib")
        .unwrap();
    let t0 = Instant::now();
    let mut rows: Vec<(f64, f64, f64, f64)> = Vec::new(); // (elapsed, rate, rss, backlog)
    let mut prev = (0.0, 0.0);
    let end = Duration::from_secs_f64(o.minutes * 60.0);
    while t0.elapsed() < end {
        std::thread::sleep(Duration::from_secs(10));
        let sc = match http_get(w.port, "/metrics") {
            Some((200, t)) => parse_metrics(&t),
            _ => w.scrape(),
        };
        let el = t0.elapsed().as_secs_f64();
        let rate = (sc.consumed_score - prev.1) / (el - prev.0);
        prev = (el, sc.consumed_score);
        let produced = acked.load(Ordering::Relaxed) as f64;
        let broker_rss = std::fs::read_to_string(format!("/proc/{}/status", broker.pid()))
            .ok()
            .and_then(|t| {
                t.lines()
                    .find(|l| l.starts_with("VmRSS:"))
                    .and_then(|l| l.split_whitespace().nth(1)?.parse::<f64>().ok())
            })
            .unwrap_or(0.0)
            / 1024.0;
        writeln!(
            csv,
            "{el:.0},{produced},{},{rate:.0},{:.1},{},{},{broker_rss:.0}",
            sc.consumed_score,
            sc.rss / 1048576.0,
            sc.dead,
            sc.spikes
        )
        .unwrap();
        log(format!("soak {el:.0}s: produced {produced}, consumed {}, {rate:.0}/s, RSS {:.1} MiB, broker RSS {broker_rss:.0} MiB", sc.consumed_score, sc.rss / 1048576.0));
        rows.push((el, rate, sc.rss, produced - sc.consumed_score));
    }
    stop.store(true, Ordering::Relaxed);
    prod.join().unwrap();
    let (code, last) = w.term();
    let third = rows.len() / 3;
    let peak = |r: &[(f64, f64, f64, f64)]| r.iter().map(|x| x.2).fold(0.0, f64::max);
    let (mid, late) = (peak(&rows[third..2 * third]), peak(&rows[2 * third..]));
    let mean_rate = last.consumed_score / t0.elapsed().as_secs_f64();
    // A decaying worker falls behind: its backlog grows. Interval rates jitter with batching, so judge the
    // last third's mean rate and the backlog at the end.
    let late_rate = rows[2 * third..].iter().map(|x| x.1).sum::<f64>() / (rows.len() - 2 * third) as f64;
    let backlog_end = rows.last().map_or(0.0, |x| x.3);
    let grows = late > 1.5 * mid && late - mid > 64.0 * 1048576.0;
    let decays = late_rate < 0.8 * o.rate as f64;
    let behind = backlog_end > 10.0 * o.rate as f64;
    println!("== soak: {} ==", if !grows && !decays && !behind && code == 0 { "PASS" } else { "FAIL" });
    println!("  {} min at a target {} posts/s; CSV: {}", o.minutes, o.rate, csv_path.display());
    println!(
        "  consumed {} records, mean {:.0}/s, last third {:.0}/s; backlog at the end {}",
        last.consumed_score, mean_rate, late_rate, backlog_end
    );
    println!(
        "  worker RSS: peak {:.1} MiB, middle third peak {:.1} MiB, last third peak {:.1} MiB",
        peak(&rows) / 1048576.0,
        mid / 1048576.0,
        late / 1048576.0
    );
    println!("  dead-lettered {}, spike events {}, exit code {code}", last.dead, last.spikes);
    !grows && !decays && !behind && code == 0
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let usage = "usage: faults kill|broker|rebalance|pause|soak|all [--posts N] [--seed S] [--kills K] [--rate R] [--minutes M] [--csv FILE] [--dir DIR] [--checkpoint-ms MS] [--broker-signal KILL|TERM] [--librdkafka '\"key\" = \"value\"']";
    let Some(scenario) = args.first().cloned() else {
        eprintln!("{usage}");
        std::process::exit(2);
    };
    let mut o = Opts {
        posts: 1_000_000,
        // FLASHPOINT_FAULTS_SEED sets the default; --seed overrides it; the seed is printed either way.
        seed: std::env::var("FLASHPOINT_FAULTS_SEED")
            .map_or(7, |v| v.parse().expect("FLASHPOINT_FAULTS_SEED: a number")),
        kills: 10,
        rate: 0,
        minutes: 10.0,
        csv: None,
        dir: std::env::temp_dir().join(format!("flashpoint-faults-{}", std::process::id())),
        checkpoint_ms: 1000,
        broker_signal: "KILL".into(),
        librdkafka: String::new(),
    };
    let mut i = 1;
    while i < args.len() {
        let v = args.get(i + 1).cloned().unwrap_or_default();
        match args[i].as_str() {
            "--posts" => o.posts = v.parse().expect("--posts N"),
            "--seed" => o.seed = v.parse().expect("--seed S"),
            "--kills" => o.kills = v.parse().expect("--kills K"),
            "--rate" => o.rate = v.parse().expect("--rate R"),
            "--minutes" => o.minutes = v.parse().expect("--minutes M"),
            "--csv" => o.csv = Some(PathBuf::from(v)),
            "--dir" => o.dir = PathBuf::from(v),
            "--checkpoint-ms" => o.checkpoint_ms = v.parse().expect("--checkpoint-ms MS"),
            "--broker-signal" => o.broker_signal = v,
            "--librdkafka" => o.librdkafka.push_str(&format!("{v}\n")),
            a => {
                eprintln!("unknown argument {a}\n{usage}");
                std::process::exit(2);
            }
        }
        i += 2;
    }
    std::fs::create_dir_all(&o.dir).unwrap();
    log(format!(
        "work dir {}; seed {} (rerun with --seed {} or FLASHPOINT_FAULTS_SEED)",
        o.dir.display(),
        o.seed,
        o.seed
    ));
    let ok = match scenario.as_str() {
        "kill" => scenario_kill(&o),
        "broker" => scenario_broker(&o),
        "rebalance" => scenario_rebalance(&o),
        "pause" => scenario_pause(&o),
        "soak" => scenario_soak(&o),
        "all" => [scenario_kill, scenario_broker, scenario_rebalance, scenario_pause]
            .iter()
            .map(|f| f(&o))
            .fold(true, |a, b| a & b),
        _ => {
            eprintln!("{usage}");
            std::process::exit(2);
        }
    };
    std::process::exit(if ok { 0 } else { 1 });
}
