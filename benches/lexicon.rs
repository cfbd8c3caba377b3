//! Criterion benchmark of the lexicon scorer on the 4,200 real tweets of the VADER ground truth.
//!
//! `cargo bench -p flashpoint-benches --bench lexicon`. Throughput is reported in tweets per second; the
//! batch size matches the worker's default so the figure is what the pipeline gets.

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use flashpoint_core::normalize;
use flashpoint_core::sentiment::{LexiconScorer, Scorer};
use flashpoint_testkit::tweets;

fn bench(c: &mut Criterion) {
    let texts = tweets();
    let refs: Vec<&str> = texts.iter().map(String::as_str).collect();
    let scorer = LexiconScorer::default();
    let mut g = c.benchmark_group("lexicon");
    g.throughput(Throughput::Elements(refs.len() as u64));
    g.bench_function("score_batch_512/tweets", |b| {
        let mut out = Vec::with_capacity(512);
        b.iter(|| {
            for chunk in refs.chunks(512) {
                out.clear();
                scorer.score_batch(chunk, &mut out).unwrap();
            }
        })
    });
    g.bench_function("normalize+score_batch_512/tweets", |b| {
        let mut out = Vec::with_capacity(512);
        b.iter(|| {
            for chunk in refs.chunks(512) {
                let norm: Vec<_> = chunk.iter().map(|t| normalize::for_scoring(t)).collect();
                let texts: Vec<&str> = norm.iter().map(|c| c.as_ref()).collect();
                out.clear();
                scorer.score_batch(&texts, &mut out).unwrap();
            }
        })
    });
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
