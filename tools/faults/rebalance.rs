//! `rebalance`: three workers; one at a time stopped (SIGTERM) and replaced (`--kills` times), so the groups
//! rebalance repeatedly while the stream flows.

use crate::run::{committed_or_none, finish, setup, term, wait_done, worker, Totals};
use crate::stream::{rand_between, spawn_producer, xorshift};
use crate::{log, Opts};
use flashpoint_testkit::{free_port, Collectors, Tansu, Worker};
use std::sync::atomic::AtomicU64;
use std::sync::Arc;
use std::time::Duration;

pub fn run(o: &Opts) -> bool {
    let broker = Tansu::start(&o.dir, free_port(), "memory://tansu/");
    let b = broker.brokers();
    let s = setup(o, "rebalance", &b, None);
    let n = s.records.len() as u64;
    let acked = Arc::new(AtomicU64::new(0));
    let producer = spawn_producer(b.clone(), s.fx.topics.input.clone(), s.records.clone(), o.rate, acked.clone());
    let col = Collectors::start(&b, &s.fx.topics.scored, &s.fx.topics.dead, &s.fx.topics.spikes);
    let mut totals = Totals::new();
    let mut x = o.seed.wrapping_add(99);
    let mut ws: Vec<Worker> = (0..3).map(|i| worker(&s, &format!("w{i}"))).collect();
    let mut next = 3;
    let mut extra = Vec::new();
    let mut bad_exits = 0;
    for _ in 0..o.kills {
        std::thread::sleep(Duration::from_secs_f64(rand_between(&mut x, 3.0, 10.0)));
        let i = (xorshift(&mut x) % ws.len() as u64) as usize;
        let w = ws.remove(i);
        let name = w.name.clone();
        let peak = w.peak_rss();
        let (code, last) = term(w);
        if code != 0 {
            bad_exits += 1;
        }
        totals.add(&last, peak);
        let c = committed_or_none(&b, &s.fx.topics.score_group(), &s.fx.topics.input, 0);
        log(format!("{name} left (exit {code}); input committed {c}; starting w{next}"));
        ws.push(worker(&s, &format!("w{next}")));
        next += 1;
    }
    extra.push(format!(
        "{} workers stopped with SIGTERM and replaced, 3 running at any time; {bad_exits} unclean exits",
        o.kills
    ));
    producer.join().unwrap();
    let done = wait_done(&s, n, &col.seen, Duration::from_secs(600));
    for w in ws {
        let peak = w.peak_rss();
        let (code, last) = term(w);
        if code != 0 {
            bad_exits += 1;
        }
        totals.add(&last, peak);
    }
    finish("rebalance", n, &s, col, &totals, extra, done && bad_exits == 0)
}
