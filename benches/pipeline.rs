//! Criterion benchmarks of the windowing + detection path, and of the whole pure pipeline (match, score,
//! aggregate). `cargo bench -p flashpoint-benches --bench pipeline`.

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use flashpoint_core::aggregate::{Aggregator, AggregatorConfig};
use flashpoint_core::entity::EntityConfig;
use flashpoint_core::pipeline::Pipeline;
use flashpoint_core::post::Post;
use flashpoint_core::sentiment::{Label, LexiconScorer};
use flashpoint_core::window::PostView;
use flashpoint_testkit::tweets;

const N: usize = 50_000;

fn posts() -> Vec<Post> {
    let t = tweets();
    (0..N)
        .map(|i| Post {
            id: format!("p{i}"),
            text: format!("{} {}", if i % 3 == 0 { "Acme Air" } else { "Globex" }, t[i % t.len()]),
            created_at: 1_772_409_600_000 + i as i64 * 100,
            author: None,
            followers: Some((i * 37 % 10_000) as u64),
            lang: None,
            url: None,
            author_url: None,
            platform: None,
        })
        .collect()
}

fn entities() -> Vec<EntityConfig> {
    vec![
        EntityConfig {
            name: "Acme Air".into(),
            terms: vec!["acme air".into()],
            handles: vec![],
            hashtags: vec![],
            exclude: vec![],
            ..EntityConfig::default()
        },
        EntityConfig {
            name: "Globex".into(),
            terms: vec!["globex".into()],
            handles: vec![],
            hashtags: vec![],
            exclude: vec![],
            ..EntityConfig::default()
        },
    ]
}

fn bench(c: &mut Criterion) {
    let posts = posts();
    let mut g = c.benchmark_group("pipeline");
    g.throughput(Throughput::Elements(N as u64));
    g.sample_size(20);
    g.bench_function("window+detect", |b| {
        b.iter(|| {
            let mut agg = Aggregator::new(&AggregatorConfig::default()).unwrap();
            let mut out = Vec::new();
            for (i, p) in posts.iter().enumerate() {
                let compound = if i % 4 == 0 { -0.5 } else { 0.2 };
                let v = PostView {
                    id: &p.id,
                    text: &p.text,
                    created_at: p.created_at,
                    author: None,
                    followers: p.followers,
                    compound,
                    label: if compound < 0.0 { Label::Negative } else { Label::Positive },
                    url: None,
                    author_url: None,
                    platform: None,
                };
                agg.process((i % 2) as u32, if i % 2 == 0 { "Acme Air" } else { "Globex" }, &[], &v, &mut out);
            }
            out.len()
        })
    });
    g.bench_function("match+score+window+detect", |b| {
        b.iter(|| {
            let mut p =
                Pipeline::new(Box::new(LexiconScorer::default()), &entities(), &AggregatorConfig::default()).unwrap();
            let mut out = Vec::new();
            for chunk in posts.chunks(512) {
                p.process_batch(chunk.to_vec(), &mut out).unwrap();
            }
            out.len()
        })
    });
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
