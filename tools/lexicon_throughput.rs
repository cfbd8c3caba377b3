//! Single-core throughput of the lexicon scorer on the VADER tweets, for `scripts/bench-lexicon.sh`.
//! Prints one JSON line: {"tweets_per_s": f, "texts": n, "seconds": f}.

use flashpoint_core::sentiment::{LexiconScorer, Scorer};
use flashpoint_testkit::tweets;
use std::time::{Duration, Instant};

fn main() {
    let min_secs: f64 = std::env::args().nth(1).and_then(|s| s.parse().ok()).unwrap_or(3.0);
    let texts = tweets();
    let refs: Vec<&str> = texts.iter().map(String::as_str).collect();
    let scorer = LexiconScorer::default();
    let mut out = Vec::with_capacity(512);
    let mut checksum = 0.0;
    // Warm-up pass (page faults, lexicon init, branch predictors).
    for chunk in refs.chunks(512) {
        out.clear();
        scorer.score_batch(chunk, &mut out).unwrap();
    }
    let start = Instant::now();
    let mut n = 0u64;
    while start.elapsed() < Duration::from_secs_f64(min_secs) {
        for chunk in refs.chunks(512) {
            out.clear();
            scorer.score_batch(chunk, &mut out).unwrap();
            checksum += out.iter().map(|s| s.compound).sum::<f64>();
        }
        n += refs.len() as u64;
    }
    let secs = start.elapsed().as_secs_f64();
    println!(
        "{{\"tweets_per_s\": {:.1}, \"texts\": {n}, \"seconds\": {secs:.3}, \"checksum\": {checksum:.4}}}",
        n as f64 / secs
    );
}
