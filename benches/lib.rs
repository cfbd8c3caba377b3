//! Shared inputs for the benchmarks: real texts from the committed fixtures, so no benchmark needs `../shared`.

use std::path::PathBuf;

/// The 4,200 tweets of the VADER ground truth (the committed parity fixture).
pub fn tweets() -> Vec<String> {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../tests/fixtures/vader/tweets.jsonl");
    let data = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    data.lines()
        .map(|l| {
            let v: serde_json::Value = serde_json::from_str(l).expect("fixture line");
            v["text"].as_str().expect("text").to_string()
        })
        .collect()
}
