//! The entity matcher and the evidence-term extraction on arbitrary text, against a watchlist with phrases,
//! handles, hashtags, non-ASCII terms and overlapping exclusions.
#![no_main]
use flashpoint_core::entity::{EntityConfig, Matcher};
use flashpoint_core::window::terms_of;
use libfuzzer_sys::fuzz_target;
use std::sync::OnceLock;

fn matcher() -> &'static Matcher {
    static M: OnceLock<Matcher> = OnceLock::new();
    M.get_or_init(|| {
        let e = |name: &str, terms: &[&str], handles: &[&str], tags: &[&str], excl: &[&str]| EntityConfig {
            name: name.into(),
            terms: terms.iter().map(|s| s.to_string()).collect(),
            handles: handles.iter().map(|s| s.to_string()).collect(),
            hashtags: tags.iter().map(|s| s.to_string()).collect(),
            exclude: excl.iter().map(|s| s.to_string()).collect(),
        };
        Matcher::new(&[
            e("Acme Air", &["acme air", "acmeair"], &["@AcmeAir"], &["#AcmeAir"], &["acme air freshener"]),
            e("Apple", &["apple"], &["AppleSupport"], &["apple"], &["apple pie", "big apple", "pie"]),
            e("Pie", &["pie"], &[], &[], &["apple pie recipe"]),
            e("Café", &["café", "ÉTÉ"], &[], &[], &["café au lait"]),
            e("A", &["a"], &[], &[], &[]),
        ])
        .expect("valid watchlist")
    })
}

fuzz_target!(|text: &str| {
    let m = matcher();
    let mut out = Vec::new();
    m.find(text, &mut out);
    assert!(out.windows(2).all(|w| w[0] < w[1]), "sorted, no duplicates: {out:?}");
    assert!(out.iter().all(|&id| (id as usize) < m.len()));
    terms_of(text, |t| assert!((3..=40).contains(&t.chars().count()) && !t.chars().any(char::is_whitespace)));
});
