//! The generic decoder's field-path mapping: the first line holds six `|`-separated dotted paths (id, text,
//! created_at, author, followers, lang), the rest is the record.
#![no_main]
use flashpoint_core::post::{Decoder, FieldPaths, Format};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Some(nl) = data.iter().position(|&b| b == b'\n') else { return };
    let Ok(head) = std::str::from_utf8(&data[..nl]) else { return };
    let mut f = head.split('|').map(str::to_string);
    let mut next = || f.next().unwrap_or_default();
    let paths =
        FieldPaths { id: next(), text: next(), created_at: next(), author: next(), followers: next(), lang: next() };
    let d = Decoder { max_record_bytes: 1 << 16, ..Decoder::new(Format::Generic, paths) };
    let _ = d.decode(&data[nl + 1..]);
});
