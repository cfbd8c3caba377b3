//! Hostile records through the real binary: nothing a record holds may reach the terminal raw or forge an
//! output line, and no record may take the process down.

use flashpoint_testkit::{repo, run_with_bytes as run};

/// Every line is one JSON object, and no byte or character that a terminal or log viewer acts on is raw.
fn assert_inert_json_lines(bytes: &[u8]) -> Vec<serde_json::Value> {
    let text = std::str::from_utf8(bytes).expect("output is UTF-8");
    for c in text.chars() {
        assert!(
            c == '\n'
                || !(c.is_control()
                    || matches!(c, '\u{2028}' | '\u{2029}' | '\u{202A}'..='\u{202E}' | '\u{2066}'..='\u{2069}')),
            "raw {:?} in output: {text:?}",
            c
        );
    }
    text.lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: forged or broken line {l:?}")))
        .collect()
}

#[test]
fn replay_dead_letters_hostile_records_without_raw_controls() {
    let mut input: Vec<u8> = Vec::new();
    let ok = r#"{"id":"ok","text":"acme air fine","created_at":"2026-03-04T10:00:00Z"}"#;
    input.extend_from_slice(ok.as_bytes());
    input.push(b'\n');
    // Not JSON, with a carriage return, ANSI and C1 escapes, a line separator and a bidi override that would
    // forge or recolour a line if echoed raw.
    input.extend_from_slice("\rINFO forged \x1b[31mred\x1b[0m \u{9b}2J \u{2028}x \u{202e}txet\n".as_bytes());
    // Valid JSON whose time is hostile: the bad_time message quotes it.
    input.extend_from_slice(
        "{\"id\":\"t\",\"text\":\"acme air\",\"created_at\":\"\\u001b[2J\\r\\nERROR x\"}\n".as_bytes(),
    );
    input.extend_from_slice(b"{\"id\":\"u\",\"text\":\"\xff\xfe acme air\"}\n");
    input.extend_from_slice("[".repeat(100_000).as_bytes());
    input.push(b'\n');
    let mut huge =
        format!(r#"{{"id":"h","created_at":"2026-03-04T10:00:01Z","text":"acme air {}"}}"#, "a".repeat(2 << 20));
    huge.push('\n');
    input.extend_from_slice(huge.as_bytes());
    input.extend_from_slice(ok.as_bytes());
    input.push(b'\n');
    let (code, out, err) = run(&["replay", "-c", repo("config/flashpoint.toml").to_str().unwrap()], &input);
    assert_eq!(code, 0, "{}", String::from_utf8_lossy(&err));
    assert_inert_json_lines(&out);
    let lines = assert_inert_json_lines(&err);
    let reasons: Vec<&str> = lines.iter().filter_map(|l| l["reason"].as_str()).collect();
    assert_eq!(reasons, ["not_json", "bad_time", "not_utf8", "not_json", "oversize"]);
    // The dead-letter record still holds the original text, escaped only in its JSON form.
    assert!(lines[0]["record"].as_str().unwrap().contains("\x1b[31mred"));
    let summary = lines.last().unwrap();
    assert_eq!(summary["records"], 7);
    assert_eq!(summary["decode_errors"], 5);
    // Oversize is judged on the length alone: the record is not parsed, and the dead letter keeps 64 KiB of it.
    assert!(lines[4]["record"].as_str().unwrap().len() <= 64 * 1024);
}

#[test]
fn score_errors_on_stderr_are_inert() {
    let input = "\x1b[31m\u{9b}not json\n\"\\u001b[2J\\nERROR forged\"\n{\"id\":1,\"text\":\"ba\u{200b}d\u{202e}\"}\n{\"id\":\"\u{9b}2J\u{202e}x\",\"text\":\"ok\"}\n";
    let (code, out, err) = run(&["score"], input.as_bytes());
    assert_eq!(code, 1);
    let errs = assert_inert_json_lines(&err);
    assert_eq!(errs.iter().map(|e| e["line"].as_u64().unwrap()).collect::<Vec<_>>(), [1, 2]);
    let scored = assert_inert_json_lines(&out);
    // The zero-width space cannot hide "bad" from the lexicon.
    assert_eq!(scored[0]["label"], "negative");
    // An id holding a C1 escape and a bidi override comes back as the same value, escaped.
    assert_eq!(scored[1]["id"], "\u{9b}2J\u{202e}x");
}

#[test]
fn cli_errors_escape_controls() {
    let (code, _, err) = run(
        &["replay", "-i", "no-such-file\n\x1b[31mERROR forged", "-c", repo("config/flashpoint.toml").to_str().unwrap()],
        b"",
    );
    assert_eq!(code, 2);
    let err = String::from_utf8(err).unwrap();
    assert!(!err.contains('\x1b'), "{err:?}");
    assert_eq!(err.lines().filter(|l| l.contains("ERROR forged")).count(), 1);
    assert!(err.starts_with("error: ") && err.contains("no-such-file\\n\\u{1b}[31mERROR forged"), "{err:?}");
}
