//! What every scenario shares: the setup (a fixture on the scenario's broker with the generated stream's
//! watchlist, the stream written beside it), waiting until everything is committed, the totals of the
//! workers' own counters, the reference replay, and the verdict that accounts for every input record.

use crate::stream::{generate, ENTITIES};
use crate::{log, Opts};
use flashpoint_testkit::{committed_on, event_key, flashpoint, Collectors, Fixture, Scrape, Seen, Topics, Worker};
use std::collections::{BTreeMap, BTreeSet, HashSet};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// The committed offset, -1 when there is none (or the broker does not answer: it may be stopped).
pub fn committed_or_none(brokers: &str, group: &str, topic: &str, p: i32) -> i64 {
    committed_on(brokers, group, topic, p).unwrap_or(-1)
}

pub struct Setup {
    pub fx: Fixture,
    /// The input as a file, for the reference replay.
    pub stream: PathBuf,
    pub records: Arc<Vec<Vec<u8>>>,
}

/// The scenario `name`'s fixture on `brokers` (topics `<name>-<pid>-*`, config `<dir>/<name>.toml`, the
/// generated stream's entities), the input topic created, and the stream in `<dir>/<name>-stream.jsonl`
/// (rewritten only when it differs, so a rerun with the same size and seed reuses it).
pub fn setup(o: &Opts, name: &str, brokers: &str, records: Option<Arc<Vec<Vec<u8>>>>) -> Setup {
    let fx = Fixture::new(name)
        .brokers(brokers)
        .dir(&o.dir)
        .topics(Topics::with_prefix(&format!("{name}-{}", std::process::id())))
        .kafka_line(&format!("checkpoint_interval_ms = {}", o.checkpoint_ms))
        .librdkafka(&o.librdkafka)
        .entities(&ENTITIES)
        .build();
    let s = Setup {
        stream: o.dir.join(format!("{name}-stream.jsonl")),
        records: records.unwrap_or_else(|| Arc::new(generate(o.posts, o.seed))),
        fx,
    };
    if !s.stream.exists() || records_differ(&s) {
        let mut f = std::io::BufWriter::new(std::fs::File::create(&s.stream).unwrap());
        for r in s.records.iter() {
            f.write_all(r).unwrap();
            f.write_all(b"\n").unwrap();
        }
    }
    s
}

/// A worker with every stage on the scenario's config, scraped in the background.
pub fn worker(s: &Setup, name: &str) -> Worker {
    s.fx.worker("all", name).watch()
}

/// SIGTERM and wait (90 s, then SIGKILL: exit code -9); the exit code and the final scrape.
pub fn term(w: Worker) -> (i32, Scrape) {
    let name = w.name.clone();
    match w.stop_within(Duration::from_secs(90)) {
        (Some(code), last) => (code, last),
        (None, last) => {
            log(format!("{name}: no exit 90 s after SIGTERM; killing"));
            (-9, last)
        }
    }
}

fn records_differ(s: &Setup) -> bool {
    std::fs::metadata(&s.stream).map(|m| m.len()).unwrap_or(0)
        != s.records.iter().map(|r| r.len() as u64 + 1).sum::<u64>()
}

/// Waits until the score group committed every input record and the aggregate group committed every
/// scored record the collector saw (stable for two looks), or `limit` passes.
pub fn wait_done(s: &Setup, n: u64, seen: &Mutex<Seen>, limit: Duration) -> bool {
    let (brokers, t) = (s.fx.brokers.as_str(), &s.fx.topics);
    let deadline = Instant::now() + limit;
    let mut stable = 0;
    let mut last_report = Instant::now();
    while Instant::now() < deadline {
        let score = committed_or_none(brokers, &t.score_group(), &t.input, 0);
        let ends = seen.lock().unwrap().scored_end.clone();
        let mut behind = 0i64;
        for p in 0..4 {
            let end = ends.get(&p).copied().unwrap_or(0);
            let c = committed_or_none(brokers, &t.aggregate_group(), &t.scored, p).max(0);
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

pub struct Totals {
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
    pub fn new() -> Totals {
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
    pub fn add(&mut self, s: &Scrape, peak: u64) {
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

pub fn finish(name: &str, n: u64, s: &Setup, col: Collectors, totals: &Totals, extra: Vec<String>, done: bool) -> bool {
    let seen = col.finish();
    log("replaying the same stream for the reference");
    let r = replay(&s.fx.config, &s.stream, &s.fx.dir);
    let diff = s.fx.dir.join(format!("{name}-event-diff.txt"));
    let (report, mut fail) = verdict(n, &seen, &r, Some(&diff));
    let mut f = std::io::BufWriter::new(std::fs::File::create(s.fx.dir.join(format!("{name}-events.jsonl"))).unwrap());
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
    let out = flashpoint()
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
