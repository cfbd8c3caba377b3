//! Background readers of a worker deployment's output topics (scored, dead-letter, spikes; all partitions,
//! from the beginning) that account for every input record: which source offsets reached the scored topic,
//! which were dead-lettered and why, which (post, entity) pairs were late, and every spike event.

use flashpoint_core::stage::StageRecord;
use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::{Headers, Message};
use rdkafka::topic_partition_list::{Offset, TopicPartitionList};
use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// What the collectors saw on the output topics.
#[derive(Default)]
pub struct Seen {
    /// Scored topic: post records (with re-publications), distinct (src offset, sub, entity), ticks.
    pub scored_records: u64,
    pub scored_pairs: HashSet<(i64, u32, String)>,
    pub scored_sources: HashSet<i64>,
    pub ticks: u64,
    /// Per scored partition, one past the highest offset read.
    pub scored_end: BTreeMap<i32, i64>,
    /// Dead letters by stage: score ones by source offset and reason; aggregate ones by the scored key.
    pub dead_records: u64,
    pub dead_score: HashMap<i64, String>,
    pub dead_late: HashSet<(i64, u32, String)>,
    pub dead_other: u64,
    /// Spike events, in arrival order.
    pub events: Vec<serde_json::Value>,
    pub event_header_mismatch: u64,
}

/// One reader thread per output topic, filling one [`Seen`].
pub struct Collectors {
    pub seen: Arc<Mutex<Seen>>,
    stop: Arc<AtomicBool>,
    threads: Vec<std::thread::JoinHandle<()>>,
}

#[derive(Clone, Copy)]
enum Kind {
    Scored,
    Dead,
    Spikes,
}

impl Collectors {
    /// Starts reading `scored`, `dead` and `spikes` on `brokers` (each waits for its topic to exist).
    pub fn start(brokers: &str, scored: &str, dead: &str, spikes: &str) -> Collectors {
        let seen = Arc::new(Mutex::new(Seen::default()));
        let stop = Arc::new(AtomicBool::new(false));
        let mut threads = Vec::new();
        for (kind, topic) in [(Kind::Scored, scored), (Kind::Dead, dead), (Kind::Spikes, spikes)] {
            let (seen, stop, brokers, topic) = (seen.clone(), stop.clone(), brokers.to_string(), topic.to_string());
            threads.push(std::thread::spawn(move || collect(kind, &brokers, &topic, &seen, &stop)));
        }
        Collectors { seen, stop, threads }
    }

    /// Stops the readers once each has seen two seconds without records, and returns what they saw.
    pub fn finish(self) -> Seen {
        self.stop.store(true, Ordering::Relaxed);
        for t in self.threads {
            t.join().unwrap();
        }
        Arc::try_unwrap(self.seen).ok().unwrap().into_inner().unwrap()
    }
}

fn collect(kind: Kind, brokers: &str, topic: &str, seen: &Mutex<Seen>, stop: &AtomicBool) {
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
            // Drain what is there: stop only after a while without records.
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
            Kind::Scored => {
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
            Kind::Dead => {
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
            Kind::Spikes => {
                let j: serde_json::Value = serde_json::from_slice(payload).unwrap();
                if header("flashpoint.incident_id").as_deref() != j["incident_id"].as_str() {
                    s.event_header_mismatch += 1;
                }
                s.events.push(j);
            }
        }
    }
}
