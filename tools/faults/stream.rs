//! The input: a generated stream over five entities with a daily baseline, five known incidents after the
//! detector's warm-up, and a few bad and late records; and the producers that feed it to the broker.

use rdkafka::config::ClientConfig;
use rdkafka::producer::{BaseProducer, BaseRecord, Producer};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

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
pub const START_MS: i64 = 1_772_409_600_000; // 2026-03-02T00:00:00Z

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

pub fn xorshift(x: &mut u64) -> u64 {
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

pub fn rand_between(x: &mut u64, lo: f64, hi: f64) -> f64 {
    lo + (xorshift(x) % 10_000) as f64 / 10_000.0 * (hi - lo)
}

/// Produces `records` in order to partition 0, at most `rate` a second (0: as fast as possible), in a
/// thread; `acked` counts acknowledgements. Survives broker outages (librdkafka retries for ever).
pub fn spawn_producer(
    brokers: String,
    topic: String,
    records: Arc<Vec<Vec<u8>>>,
    rate: u64,
    acked: Arc<AtomicU64>,
) -> std::thread::JoinHandle<()> {
    // One in-flight request keeps the order without idempotence (see `broker` in docs/reliability.md: Tansu's sqlite
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
pub fn send_paced(p: &BaseProducer, topic: &str, payload: &[u8], sent: &mut u64, rate: u64, started: Instant) {
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
