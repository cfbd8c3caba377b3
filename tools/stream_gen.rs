//! Writes N synthetic posts as JSON Lines (for replay throughput and memory runs): 600 posts a minute of
//! event time about the brands in config/flashpoint.toml plus unrelated chatter, texts drawn from the real
//! VADER tweets so the scorer does real work. Usage: stream-gen N [BRAND_SHARE] > stream.jsonl
//! BRAND_SHARE (default 0.8) is the fraction of posts that mention a watched brand: a filtered stream is
//! mostly matches, a firehose mostly not.

use std::io::Write;

fn main() {
    let n: u64 = std::env::args().nth(1).and_then(|s| s.parse().ok()).unwrap_or(1_000_000);
    let share: f64 = std::env::args().nth(2).and_then(|s| s.parse().ok()).unwrap_or(0.8);
    let tweets = flashpoint_testkit::tweets();
    let brands = ["Acme Air", "@AcmeAir", "Globex", "#AcmeAir", ""];
    let out = std::io::stdout();
    let mut w = std::io::BufWriter::with_capacity(1 << 20, out.lock());
    let start_ms: i64 = 1_772_409_600_000; // 2026-03-02T00:00:00Z
    let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
    for i in 0..n {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        let text = &tweets[(x % tweets.len() as u64) as usize];
        // The first four brands are watched; "" is unrelated chatter.
        let u = ((x >> 11) % 1_000_000) as f64 / 1_000_000.0;
        let brand = if u < share { brands[((x >> 20) % 4) as usize] } else { brands[4] };
        let t = start_ms + (i as i64) * 100;
        let rec = serde_json::json!({
            "id": format!("g{i}"),
            "text": format!("{brand} {text}"),
            "created_at": flashpoint_core::time::format_rfc3339(t),
            "author": format!("u{}", (x >> 8) % 5000),
            "followers": (x >> 32) % 10_000,
        });
        serde_json::to_writer(&mut w, &rec).unwrap();
        w.write_all(b"\n").unwrap();
    }
    w.flush().unwrap();
}
