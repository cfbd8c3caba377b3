//! Normalisation of social text before scoring, and for reading (`for_reading`: evidence shown to people).
//!
//! Posts arrive with HTML entities (`&amp;` from Twitter's API), links, @mentions and #hashtags. Users expect
//! "I &lt;3 this" to read as "I <3 this", a link or a mention not to dilute the sentiment of the words around it,
//! and "#fail" to count like "fail". So, for *scoring* only (entity matching sees the raw text):
//!
//! - HTML entities are decoded: the five XML ones, `&nbsp;`, and numeric `&#NN;` / `&#xHH;` forms;
//! - URLs (`http://…`, `https://…`, `www.…`) and @mentions are removed;
//! - a leading `#` of a hashtag is dropped, keeping the word;
//! - zero-width and bidirectional control characters are removed and other control characters become spaces,
//!   so they can neither hide a word from the lexicon nor glue two words together.
//!
//! Text with none of these is returned borrowed and unchanged, so normalised scoring of plain text is
//! identical to the reference VADER. Parity with the reference is measured on raw text (`--raw`).

use std::borrow::Cow;

fn needs_work(text: &str) -> bool {
    text.bytes().any(|b| {
        matches!(b, b'&' | b'@' | b'#' | b'w' | b'W' | b'h' | b'H')
            || b >= 0x80
            || (b < 0x20 && !matches!(b, b'\t' | b'\n' | b'\r'))
            || b == 0x7f
    })
}

fn is_removed_control(c: char) -> bool {
    matches!(c, '\u{200B}'..='\u{200D}' | '\u{2060}' | '\u{FEFF}' | '\u{202A}'..='\u{202E}' | '\u{2066}'..='\u{2069}' | '\u{200E}' | '\u{200F}' | '\u{061C}')
}

fn is_word_char(c: char) -> bool {
    c.is_alphanumeric() || c == '_'
}

/// Decodes one entity at the start of `s` (which begins with `&`); returns the text and the bytes consumed.
fn decode_entity(s: &str) -> Option<(char, usize)> {
    // Searched in bytes: byte 12 may fall inside a multi-byte character, and `;` is ASCII, so its index is a
    // character boundary.
    let end = s.as_bytes()[..s.len().min(12)].iter().position(|&b| b == b';')?;
    let name = &s[1..end];
    let c = match name {
        "amp" => '&',
        "lt" => '<',
        "gt" => '>',
        "quot" => '"',
        "apos" => '\'',
        "nbsp" => ' ',
        _ => {
            let num = name.strip_prefix('#')?;
            let v = if let Some(hex) = num.strip_prefix(['x', 'X']) {
                u32::from_str_radix(hex, 16).ok()?
            } else {
                num.parse::<u32>().ok()?
            };
            char::from_u32(v).filter(|c| !c.is_control() || c.is_whitespace())?
        }
    };
    Some((c, end + 1))
}

fn url_len(s: &str) -> usize {
    let lower_starts = |p: &str| s.len() >= p.len() && s.as_bytes()[..p.len()].eq_ignore_ascii_case(p.as_bytes());
    if lower_starts("http://") || lower_starts("https://") || lower_starts("www.") {
        s.find(|c: char| c.is_whitespace()).unwrap_or(s.len())
    } else {
        0
    }
}

/// Normalises `text` for scoring (see the module docs). Borrowed when nothing changes.
pub fn for_scoring(text: &str) -> Cow<'_, str> {
    if !needs_work(text) {
        return Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len());
    let mut prev: Option<char> = None;
    let mut i = 0;
    let mut changed = false;
    while i < text.len() {
        let rest = &text[i..];
        let c = rest.chars().next().expect("non-empty");
        let at_word_start = prev.map_or(true, |p| !is_word_char(p));
        if at_word_start && (c == 'h' || c == 'H' || c == 'w' || c == 'W') {
            let n = url_len(rest);
            if n > 0 {
                i += n;
                changed = true;
                continue;
            }
        }
        if c == '@' && at_word_start && rest[1..].starts_with(is_word_char) {
            let n = 1 + rest[1..].find(|c: char| !is_word_char(c)).unwrap_or(rest.len() - 1);
            i += n;
            changed = true;
            continue;
        }
        if c == '#' && at_word_start && rest[1..].starts_with(is_word_char) {
            i += 1;
            changed = true;
            continue;
        }
        if c == '&' {
            if let Some((d, n)) = decode_entity(rest) {
                // An encoded `&#x200B;` hides a word as well as a raw one.
                if !is_removed_control(d) {
                    out.push(d);
                    prev = Some(d);
                }
                i += n;
                changed = true;
                continue;
            }
        }
        if is_removed_control(c) {
            i += c.len_utf8();
            changed = true;
            continue;
        }
        if c.is_control() && !c.is_whitespace() {
            out.push(' ');
            prev = Some(' ');
            i += c.len_utf8();
            changed = true;
            continue;
        }
        out.push(c);
        prev = Some(c);
        i += c.len_utf8();
    }
    if changed {
        Cow::Owned(out)
    } else {
        Cow::Borrowed(text)
    }
}

/// Normalises `text` for people to read (evidence in events and alerts): HTML entities decoded (Twitter's API
/// sends `SAP-&gt;Mia &amp; Mia`), every run of whitespace (newlines, tabs, `&nbsp;`) one space, no space at the
/// ends. Links, mentions and hashtags stay: they are part of what was said. Decoded characters are still
/// untrusted: each destination escapes them (`sanitize`, the notifier's `safe`). Borrowed when nothing changes.
pub fn for_reading(text: &str) -> Cow<'_, str> {
    let collapsed = |t: &str| {
        let mut prev_space = true;
        t.chars().all(|c| {
            let ok = if c.is_whitespace() { c == ' ' && !prev_space } else { !is_removed_control(c) };
            prev_space = c.is_whitespace();
            ok
        }) && !t.ends_with(char::is_whitespace)
    };
    if !text.contains('&') && collapsed(text) {
        return Cow::Borrowed(text);
    }
    let mut rest = text;
    let decoded = std::iter::from_fn(|| {
        let (c, n) = match rest.starts_with('&').then(|| decode_entity(rest)).flatten() {
            Some(d) => d,
            None => {
                let c = rest.chars().next()?;
                (c, c.len_utf8())
            }
        };
        rest = &rest[n..];
        Some(c)
    });
    let mut out = String::with_capacity(text.len());
    push_collapsed(&mut out, decoded.filter(|&c| !is_removed_control(c)));
    Cow::Owned(out)
}

/// Appends `chars` to `out` with every run of whitespace as one space and none at the ends: how text reads on
/// one line (evidence here, every alert line in the notifier).
pub fn push_collapsed(out: &mut String, chars: impl IntoIterator<Item = char>) {
    let mut pending_space = false;
    for c in chars {
        if c.is_whitespace() {
            pending_space = !out.is_empty();
            continue;
        }
        if pending_space {
            out.push(' ');
            pending_space = false;
        }
        out.push(c);
    }
}

#[cfg(test)]
mod tests {
    use super::{for_reading, for_scoring};

    #[test]
    fn reading_text_has_entities_decoded_and_whitespace_collapsed() {
        assert_eq!(for_reading("SAP-&gt;Mia &amp; Mia"), "SAP->Mia & Mia");
        assert_eq!(for_reading("  lost my\n\n bag&nbsp;&nbsp;again\t"), "lost my bag again");
        assert_eq!(for_reading("a &#x200B;b &unknown; &amp"), "a b &unknown; &amp");
        assert!(matches!(for_reading("plain text, one space"), std::borrow::Cow::Borrowed(_)));
        assert_eq!(for_reading("hid\u{200B}den"), "hidden", "an invisible character goes on the quick path too");
        assert!(matches!(for_reading("trailing "), std::borrow::Cow::Owned(_)));
    }

    #[test]
    fn plain_text_is_borrowed_unchanged() {
        let t = "The service was NOT good at all :(";
        assert!(matches!(for_scoring(t), std::borrow::Cow::Borrowed(_)));
        assert!(matches!(for_scoring("what a wonderful hour"), std::borrow::Cow::Borrowed(_)));
    }

    #[test]
    fn entities_urls_mentions_hashtags() {
        assert_eq!(for_scoring("I &lt;3 this &amp; that&#33;"), "I <3 this & that!");
        assert_eq!(for_scoring("@united you lost my bag again #fail https://t.co/x1"), " you lost my bag again fail ");
        assert_eq!(for_scoring("mail me: a@b.com"), "mail me: a@b.com");
        assert_eq!(for_scoring("see www.example.com now"), "see  now");
        assert_eq!(for_scoring("no#tag here"), "no#tag here");
        assert_eq!(for_scoring("bad&unknown; &amp"), "bad&unknown; &amp");
        // Regression: the 12-byte entity window ended inside `é` and panicked.
        assert_eq!(for_scoring("&aaaaaaaaaaé"), "&aaaaaaaaaaé");
    }

    #[test]
    fn controls_cannot_hide_or_glue_words() {
        assert_eq!(for_scoring("ba\u{200B}d"), "bad");
        assert_eq!(for_scoring("\u{202E}bad\u{202C}"), "bad");
        assert_eq!(for_scoring("bad\u{0007}news"), "bad news");
        // Regression (proptest): entity-encoded zero-width and bidi controls were decoded into the text.
        assert_eq!(for_scoring("ba&#x200B;d &#8238;news"), "bad news");
    }
}
