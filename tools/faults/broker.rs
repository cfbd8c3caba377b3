//! `broker`: the broker (persistent sqlite storage) stopped mid-stream for 20 s and restarted; `/readyz` must
//! turn 503 meanwhile and 200 again after, with one worker process across the outage.

use crate::run::{finish, setup, term, wait_done, worker, Totals};
use crate::stream::spawn_producer;
use crate::{log, Opts};
use flashpoint_testkit::{free_port, Collectors, Tansu};
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

pub fn run(o: &Opts) -> bool {
    let bdir = o.dir.join("broker-sqlite");
    let _ = std::fs::remove_dir_all(&bdir);
    std::fs::create_dir_all(&bdir).unwrap();
    let mut broker = Tansu::start(&bdir, free_port(), "sqlite://tansu.db");
    let b = broker.brokers();
    let s = setup(o, "broker", &b, None);
    let n = s.records.len() as u64;
    let acked = Arc::new(AtomicU64::new(0));
    let producer = spawn_producer(b.clone(), s.fx.topics.input.clone(), s.records.clone(), o.rate, acked.clone());
    let col = Collectors::start(&b, &s.fx.topics.scored, &s.fx.topics.dead, &s.fx.topics.spikes);
    let mut totals = Totals::new();
    let w = worker(&s, "w0");
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
    let done = wait_done(&s, n, &col.seen, Duration::from_secs(600));
    let peak = w.peak_rss();
    let (code, last) = term(w);
    totals.add(&last, peak);
    extra.push(format!("worker exit code {code}; it was never restarted (one process across the outage)"));
    finish("broker", n, &s, col, &totals, extra, done && code == 0 && first_503.is_some() && back.is_some())
}
