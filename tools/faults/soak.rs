//! `soak`: a steady input rate for `--minutes`; throughput and RSS every 10 s to a CSV; fails on memory
//! growth, throughput decay or a growing backlog.

use crate::run::{setup, term, worker};
use crate::stream::{generate, send_paced, START_MS};
use crate::{log, Opts};
use flashpoint_testkit::{free_port, try_http_get, Scrape, Tansu};
use rdkafka::config::ClientConfig;
use rdkafka::producer::{BaseProducer, Producer};
use std::io::Write;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Steady-rate soak: an endless generated stream at `rate` posts/s for `minutes`; one worker; a CSV line
/// every 10 s. Fails if throughput decays (a late interval under 80 % of the rate while input is waiting)
/// or RSS keeps growing (the last third's peak over 1.5x the second third's peak and over 64 MiB more).
pub fn run(o: &Opts) -> bool {
    let broker = Tansu::start(&o.dir, free_port(), "memory://tansu/");
    let b = broker.brokers();
    let total = (o.rate as f64 * o.minutes * 60.0) as u64;
    // One day-and-a-half of event time per 1M posts as in the other scenarios, but looped over a pool of
    // 200k generated records rewritten with fresh ids and times so the input never runs dry.
    let pool = generate(200_000, o.seed);
    let s = setup(o, "soak", &b, Some(Arc::new(Vec::new())));
    let acked = Arc::new(AtomicU64::new(0));
    let stop = Arc::new(AtomicBool::new(false));
    let prod = {
        let (b, topic, acked, rate, stop) = (b.clone(), s.fx.topics.input.clone(), acked.clone(), o.rate, stop.clone());
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
    let w = worker(&s, "w0");
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
        let sc = match try_http_get(&w.addr, "/metrics") {
            Some((200, t)) => Scrape::parse(&t),
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
    let (code, last) = term(w);
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
