//! `kill`: one worker SIGKILLed 1-5 s after it is ready (`--kills` times), restarted each time, as a
//! supervisor would; nothing may be lost.

use crate::run::{committed_or_none, finish, setup, term, wait_done, worker, Totals};
use crate::stream::{rand_between, spawn_producer};
use crate::{log, Opts};
use flashpoint_testkit::{free_port, Collectors, Tansu};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

pub fn run(o: &Opts) -> bool {
    let broker = Tansu::start(&o.dir, free_port(), "memory://tansu/");
    let b = broker.brokers();
    log(format!("generating {} posts", o.posts));
    let s = setup(o, "kill", &b, None);
    let n = s.records.len() as u64;
    let acked = Arc::new(AtomicU64::new(0));
    let producer = spawn_producer(b.clone(), s.fx.topics.input.clone(), s.records.clone(), o.rate, acked.clone());
    let col = Collectors::start(&b, &s.fx.topics.scored, &s.fx.topics.dead, &s.fx.topics.spikes);
    let mut totals = Totals::new();
    let mut x = o.seed.wrapping_add(0x1234_5678);
    let started = Instant::now();
    let mut w = worker(&s, "w0");
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
        let peak = w.peak_rss();
        let before = committed_or_none(&b, &s.fx.topics.score_group(), &s.fx.topics.input, 0);
        let last = w.kill();
        totals.add(&last, peak);
        kills.push(format!("kill {}: ready {to_ready:.1} s after start, killed {wait:.1} s later; input committed {before}; this life consumed {} (score) / {} (aggregate)", k + 1, sc.consumed_score, sc.consumed_aggregate));
        log(kills.last().unwrap());
        if before >= n as i64 && acked.load(Ordering::Relaxed) >= n {
            log("input fully consumed before this kill; no more kills");
            w = worker(&s, &format!("w{}", k + 1));
            break;
        }
        w = worker(&s, &format!("w{}", k + 1));
    }
    producer.join().unwrap();
    let done = wait_done(&s, n, &col.seen, Duration::from_secs(600));
    let elapsed = started.elapsed().as_secs_f64();
    let peak = w.peak_rss();
    let (code, last) = term(w);
    totals.add(&last, peak);
    let mut extra = kills;
    extra.push(format!(
        "{n} records processed in {elapsed:.0} s with {} kills; last worker exit code {code}",
        extra.len()
    ));
    finish("kill", n, &s, col, &totals, extra, done && code == 0)
}
