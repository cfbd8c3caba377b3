//! Parity of the lexicon scorer with the reference `vaderSentiment` 3.3.2 on all 23,703 ground-truth texts.
//!
//! The bar is 99.9% of texts within 1e-4 on every field; the scorer is in fact exact, so this test
//! asserts that and prints any differing text, which then has to be explained in docs/sentiment.md.

use flashpoint_core::sentiment::{LexiconScorer, Scorer};
use flashpoint_testkit::repo;
use serde::Deserialize;

#[derive(Deserialize)]
struct Ref {
    id: String,
    text: String,
    neg: f64,
    neu: f64,
    pos: f64,
    compound: f64,
}

fn check(name: &str, expected_count: usize) {
    let path = repo(&format!("tests/fixtures/vader/{name}.jsonl"));
    let data = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("{}: {e} (regenerate with scripts/gen_vader_reference.py)", path.display()));
    let refs: Vec<Ref> = data.lines().map(|l| serde_json::from_str(l).expect("fixture line parses")).collect();
    assert_eq!(refs.len(), expected_count, "{name}: fixture is incomplete");
    let texts: Vec<&str> = refs.iter().map(|r| r.text.as_str()).collect();
    let mut got = Vec::new();
    LexiconScorer::default().score_batch(&texts, &mut got).unwrap();
    assert_eq!(got.len(), refs.len());
    let mut within = 0usize;
    let mut exact = 0usize;
    let mut diffs = Vec::new();
    for (r, g) in refs.iter().zip(&got) {
        let d = [(r.neg - g.neg).abs(), (r.neu - g.neu).abs(), (r.pos - g.pos).abs(), (r.compound - g.compound).abs()];
        if d.iter().all(|&x| x <= 1e-4) {
            within += 1;
        } else {
            diffs.push(format!(
                "  id {}: ref ({}, {}, {}, {}) got ({}, {}, {}, {}): {:?}",
                r.id, r.neg, r.neu, r.pos, r.compound, g.neg, g.neu, g.pos, g.compound, r.text
            ));
        }
        if d.iter().all(|&x| x == 0.0) {
            exact += 1;
        }
    }
    let share = within as f64 / refs.len() as f64;
    eprintln!("{name}: {within}/{} within 1e-4 ({:.4}%), {exact} bit-identical", refs.len(), 100.0 * share);
    assert!(share >= 0.999, "{name}: only {:.4}% within 1e-4:\n{}", 100.0 * share, diffs.join("\n"));
    assert!(diffs.is_empty(), "{name}: texts that differ from the reference:\n{}", diffs.join("\n"));
}

#[test]
fn tweets() {
    check("tweets", 4200);
}

#[test]
fn movie_review_snippets() {
    check("movieReviewSnippets", 10605);
}

#[test]
fn nyt_editorial_snippets() {
    check("nytEditorialSnippets", 5190);
}

#[test]
fn amazon_review_snippets() {
    check("amazonReviewSnippets", 3708);
}
