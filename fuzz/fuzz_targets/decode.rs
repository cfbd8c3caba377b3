//! Every platform decoder on arbitrary bytes: the first byte picks the format, the rest is the record.
//! Decoding may fail, never panic; a decoded post's fields come from the record, so none may exceed it.
#![no_main]
use flashpoint_core::post::{Decoder, FieldPaths, Format};
use libfuzzer_sys::fuzz_target;

const FORMATS: [Format; 6] =
    [Format::Generic, Format::TwitterV1, Format::TwitterV2, Format::BlueskyJetstream, Format::Reddit, Format::Mastodon];

fuzz_target!(|data: &[u8]| {
    let Some((&sel, rec)) = data.split_first() else { return };
    let d = Decoder { max_record_bytes: 1 << 16, ..Decoder::new(FORMATS[sel as usize % 6], FieldPaths::default()) };
    match d.decode(rec) {
        Ok(posts) => {
            for p in posts {
                // Bluesky's id is built from two fields plus a fixed prefix.
                assert!(p.text.len() <= rec.len() && p.id.len() <= rec.len() + 40);
            }
        }
        Err(e) => {
            let _ = e.reason();
        }
    }
});
