//! Making untrusted post text safe to print, log or show.
//!
//! Post text, ids and authors come from strangers. Written raw to a log or a terminal, a `\n` forges a log
//! line, `\x1b[...` (or its one-character C1 form U+009B) drives the terminal, U+2028 breaks lines in some
//! viewers, and bidi overrides (U+202E) make a responder read something other than what is there. Three tools,
//! one per destination:
//!
//! - [`for_log`]: a reversible escape for log lines and error messages: one line, every control, format and
//!   separator character spelled out (`\n`, `\u{1b}`, `\u{202e}`), backslashes doubled.
//! - [`for_display`]: evidence text in spike events, read by people: controls and line separators become
//!   spaces, bidi controls are dropped. Lossy on purpose; the post id leads to the original.
//! - [`JsonSafe`]: a `serde_json` formatter for JSON Lines that may land on a terminal (dead-letter records on
//!   stderr). JSON already escapes C0 controls; this also escapes DEL, C1 controls, line separators and bidi
//!   controls as `\uXXXX`, so the output decodes to exactly the same strings.

use std::borrow::Cow;
use std::fmt::Write as _;
use std::io;

/// Bidirectional formatting characters: embeddings, overrides, isolates and the directional marks.
fn is_bidi_control(c: char) -> bool {
    matches!(c, '\u{202A}'..='\u{202E}' | '\u{2066}'..='\u{2069}' | '\u{200E}' | '\u{200F}' | '\u{061C}')
}

/// Characters that are invisible or act on the terminal or the layout rather than showing a glyph: C0 and C1
/// controls and DEL (`char::is_control`), line and paragraph separators, bidi controls, zero-width characters
/// and the BOM. Ordinary space is not among them.
fn is_unsafe_for_log(c: char) -> bool {
    c.is_control()
        || is_bidi_control(c)
        || matches!(c, '\u{2028}' | '\u{2029}' | '\u{200B}'..='\u{200D}' | '\u{2060}'..='\u{2064}' | '\u{FEFF}' | '\u{FFF9}'..='\u{FFFB}')
}

/// Escapes `text` for one log line (see the module docs). Borrowed when there is nothing to escape.
pub fn for_log(text: &str) -> Cow<'_, str> {
    if !text.chars().any(|c| c == '\\' || is_unsafe_for_log(c)) {
        return Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len() + 16);
    for c in text.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if is_unsafe_for_log(c) => {
                let _ = write!(out, "\\u{{{:x}}}", c as u32);
            }
            c => out.push(c),
        }
    }
    Cow::Owned(out)
}

/// [`for_log`] of at most the first `max_chars` characters, with `…` when cut: a record's excerpt in a log
/// line must not be the whole megabyte.
pub fn for_log_truncated(text: &str, max_chars: usize) -> Cow<'_, str> {
    match text.char_indices().nth(max_chars) {
        Some((i, _)) => Cow::Owned(format!("{}…", for_log(&text[..i]))),
        None => for_log(text),
    }
}

/// Text for people to read in an alert (see the module docs). Borrowed when nothing changes.
pub fn for_display(text: &str) -> Cow<'_, str> {
    let drop_or_space = |c: char| is_bidi_control(c) || c.is_control() || matches!(c, '\u{2028}' | '\u{2029}');
    if !text.chars().any(drop_or_space) {
        return Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        if is_bidi_control(c) {
            continue;
        }
        out.push(if drop_or_space(c) { ' ' } else { c });
    }
    Cow::Owned(out)
}

/// What [`JsonSafe`] escapes beyond JSON's own escapes: DEL, C1 controls, line separators, bidi controls.
pub fn is_json_unsafe(c: char) -> bool {
    c.is_control() || is_bidi_control(c) || matches!(c, '\u{2028}' | '\u{2029}')
}

/// `serde_json` formatter that also escapes DEL, C1 controls, line separators and bidi controls (see the
/// module docs). Use it through [`to_json_writer`].
#[derive(Clone, Copy, Debug, Default)]
pub struct JsonSafe;

impl serde_json::ser::Formatter for JsonSafe {
    fn write_string_fragment<W: ?Sized + io::Write>(&mut self, writer: &mut W, fragment: &str) -> io::Result<()> {
        let mut start = 0;
        for (i, c) in fragment.char_indices() {
            if is_json_unsafe(c) {
                writer.write_all(&fragment.as_bytes()[start..i])?;
                // All these are in the Basic Multilingual Plane: one `\uXXXX` each.
                write!(writer, "\\u{:04x}", c as u32)?;
                start = i + c.len_utf8();
            }
        }
        writer.write_all(&fragment.as_bytes()[start..])
    }
}

/// Serialises `value` as compact JSON with the [`JsonSafe`] formatter.
pub fn to_json_writer<W: io::Write, T: serde::Serialize + ?Sized>(writer: W, value: &T) -> serde_json::Result<()> {
    let mut ser = serde_json::Serializer::with_formatter(writer, JsonSafe);
    value.serialize(&mut ser)
}

/// One JSON Lines record: [`to_json_writer`] and a newline (every file and terminal output of the binary).
pub fn write_json_line<T: serde::Serialize + ?Sized>(out: &mut dyn io::Write, value: &T) -> io::Result<()> {
    to_json_writer(&mut *out, value)?;
    out.write_all(b"\n")
}

/// [`to_json_writer`] into a `String`.
pub fn to_json_string<T: serde::Serialize + ?Sized>(value: &T) -> serde_json::Result<String> {
    let mut buf = Vec::new();
    to_json_writer(&mut buf, value)?;
    Ok(String::from_utf8(buf).expect("serde_json writes UTF-8"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn log_escape_cannot_forge_a_line_or_drive_a_terminal() {
        let hostile =
            "great flight\n2026-01-01T00:00:00Z ERROR fake alarm \x1b[31mred\x1b[0m \u{9b}2J \u{202e}olleh\u{2028}x\\n";
        let safe = for_log(hostile);
        assert_eq!(
            safe,
            "great flight\\n2026-01-01T00:00:00Z ERROR fake alarm \\u{1b}[31mred\\u{1b}[0m \\u{9b}2J \\u{202e}olleh\\u{2028}x\\\\n"
        );
        assert!(!safe.chars().any(|c| c.is_control() || is_bidi_control(c)));
        assert!(matches!(for_log("plain text, émoji 😀 and spaces"), Cow::Borrowed(_)));
        assert_eq!(for_log_truncated("ab\ncdef", 3), "ab\\n…");
        assert_eq!(for_log_truncated("ab", 3), "ab");
    }

    #[test]
    fn display_text_drops_bidi_and_flattens_controls() {
        assert_eq!(for_display("lost\nmy \x1b[31mbag\u{202e}gab\u{2069} ok"), "lost my  [31mbaggab ok");
        assert!(matches!(for_display("fine 👨\u{200d}👩\u{200d}👧 text"), Cow::Borrowed(_)));
    }

    #[test]
    fn json_safe_round_trips_and_escapes() {
        let v = serde_json::json!({"record": "a\nb\x1b[31m\u{7f}\u{9b}\u{202e}\u{2028}é😀\"\\"});
        let s = to_json_string(&v).unwrap();
        assert_eq!(s, r#"{"record":"a\nb\u001b[31m\u007f\u009b\u202e\u2028é😀\"\\"}"#);
        assert_eq!(serde_json::from_str::<serde_json::Value>(&s).unwrap(), v);
    }
}
