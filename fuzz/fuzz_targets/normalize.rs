//! The scoring normaliser and the output sanitisers on arbitrary text.
#![no_main]
use flashpoint_core::{normalize, sanitize};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|text: &str| {
    let n = normalize::for_scoring(text);
    // It only removes or shortens (entities decode to fewer bytes, controls become one space).
    assert!(n.len() <= text.len());
    assert!(!n.chars().any(|c| matches!(c, '\u{202A}'..='\u{202E}' | '\u{2066}'..='\u{2069}' | '\u{200B}')));
    let l = sanitize::for_log(text);
    assert!(!l.chars().any(|c| c.is_control() || c == '\u{2028}' || c == '\u{202E}'));
    let d = sanitize::for_display(text);
    assert!(!d.chars().any(|c| c.is_control() || c == '\u{202E}'));
    let j = sanitize::to_json_string(text).unwrap();
    assert_eq!(serde_json::from_str::<String>(&j).unwrap(), text, "JsonSafe output decodes to the same text");
});
