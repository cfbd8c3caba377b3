//! `pause`: the broker frozen (SIGSTOP) twice for 25 s (every topic, the spikes topic included, stops taking
//! writes): the worker's RSS must stay bounded and nothing may be lost.

use crate::run::{finish, setup, term, wait_done, worker, Totals};
use crate::stream::spawn_producer;
use crate::{log, Opts};
use flashpoint_testkit::{free_port, Collectors, Tansu};
use std::sync::atomic::AtomicU64;
use std::sync::Arc;
use std::time::{Duration, Instant};

pub fn run(o: &Opts) -> bool {
    let broker = Tansu::start(&o.dir, free_port(), "memory://tansu/");
    let b = broker.brokers();
    let s = setup(o, "pause", &b, None);
    let n = s.records.len() as u64;
    let acked = Arc::new(AtomicU64::new(0));
    // All input first: the worker has everything to read when the broker freezes.
    let producer = spawn_producer(b.clone(), s.fx.topics.input.clone(), s.records.clone(), 0, acked.clone());
    producer.join().unwrap();
    let col = Collectors::start(&b, &s.fx.topics.scored, &s.fx.topics.dead, &s.fx.topics.spikes);
    let mut totals = Totals::new();
    let w = worker(&s, "w0");
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
        if let Some(code) = w.exit_code() {
            // A stage failed during the freeze and the worker exited: restart it, as a supervisor would.
            extra.push(format!("the worker exited with code {code} after the freeze (see w0.log); restarted"));
            log(format!("worker exited ({code}); restarting it"));
            totals.add(&w.scrape(), w.peak_rss());
            w = worker(&s, "w0b");
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
        helper = Some(worker(&s, "w1"));
    } else {
        extra.push(format!("ready again {:.1} s after the broker resumed", t.elapsed().as_secs_f64()));
    }
    let done = wait_done(&s, n, &col.seen, Duration::from_secs(600));
    let peak = w.peak_rss();
    let (code, last) = term(w);
    totals.add(&last, peak);
    let mut code = code;
    if let Some(h) = helper {
        let peak = h.peak_rss();
        let (c2, last) = term(h);
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
