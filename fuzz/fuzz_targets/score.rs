//! The VADER lexicon scorer on arbitrary text, raw and normalised: no panic, scores in range.
#![no_main]
use flashpoint_core::normalize;
use flashpoint_core::sentiment::{LexiconScorer, Scorer};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|text: &str| {
    let scorer = LexiconScorer::default();
    let norm = normalize::for_scoring(text);
    let mut out = Vec::new();
    scorer.score_batch(&[text, &norm], &mut out).unwrap();
    for s in out {
        assert!((-1.0..=1.0).contains(&s.compound), "{s:?}");
        for v in [s.neg, s.neu, s.pos] {
            assert!((0.0..=1.0).contains(&v), "{s:?}");
        }
    }
});
