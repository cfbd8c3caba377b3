//! The command-line contracts, run against the real binary.

use flashpoint_testkit::{flashpoint, repo, run_with_stdin};
use std::path::PathBuf;

#[test]
fn score_matches_the_reference_example() {
    let (code, out, _) = run_with_stdin(&["score"], "{\"id\":1,\"text\":\"The service was NOT good at all :(\"}\n");
    assert_eq!(code, 0);
    // vaderSentiment 3.3.2: {'neg': 0.469, 'neu': 0.531, 'pos': 0.0, 'compound': -0.6492}
    assert_eq!(out, "{\"id\":1,\"label\":\"negative\",\"compound\":-0.6492,\"neg\":0.469,\"neu\":0.531,\"pos\":0.0}\n");
}

#[test]
fn score_reports_bad_lines_and_keeps_going() {
    let input =
        "{\"id\":\"a\",\"text\":\"great\"}\nnot json\n{\"id\":2,\"text\":7}\n{\"id\":3}\n{\"text\":\"awful\"}\n";
    let (code, out, err) = run_with_stdin(&["score"], input);
    assert_eq!(code, 1, "exit status says a line failed");
    let ids: Vec<serde_json::Value> =
        out.lines().map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap()["id"].clone()).collect();
    assert_eq!(ids, vec![serde_json::json!("a"), serde_json::Value::Null]);
    let errs: Vec<serde_json::Value> =
        err.lines().filter(|l| l.starts_with('{')).map(|l| serde_json::from_str(l).unwrap()).collect();
    let lines: Vec<u64> = errs.iter().map(|e| e["line"].as_u64().unwrap()).collect();
    assert_eq!(lines, vec![2, 3, 4]);
    assert!(errs[1]["error"].as_str().unwrap().contains("text"));
    let (code, _, _) = run_with_stdin(&["score"], "{\"text\":\"fine\"}\n");
    assert_eq!(code, 0);
}

#[test]
fn every_command_explains_itself() {
    for args in [
        vec!["--help"],
        vec!["score", "--help"],
        vec!["replay", "--help"],
        vec!["check-config", "--help"],
        vec!["eval-nab", "--help"],
    ] {
        let out = flashpoint().args(&args).output().unwrap();
        assert!(out.status.success(), "{args:?}");
        assert!(String::from_utf8_lossy(&out.stdout).len() > 200, "{args:?} explains itself");
    }
    // The detector trace of eval-detect is a documented flag, with its environment variable named.
    let out = flashpoint().args(["eval-detect", "--help"]).output().unwrap();
    let help = String::from_utf8_lossy(&out.stdout);
    assert!(help.contains("--trace <DIR>") && help.contains("FLASHPOINT_EVAL_TRACE"), "{help}");
}

#[test]
fn check_config_names_the_bad_key() {
    let dir = std::env::temp_dir().join(format!("fp-cc-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let p = dir.join("bad.toml");
    std::fs::write(&p, "[window]\nsize_secs = 300\nslide_sec = 60\n[[entities]]\nname = \"a\"\nterms = [\"a\"]\n")
        .unwrap();
    let out = flashpoint().args(["check-config", "-c", p.to_str().unwrap()]).output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("window") && err.contains("slide_sec"), "{err}");
    let out =
        flashpoint().args(["check-config", "-c", repo("config/flashpoint.toml").to_str().unwrap()]).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
}

fn replay_sample(dir: &std::path::Path) -> (Vec<serde_json::Value>, Vec<serde_json::Value>, Vec<u8>) {
    let out = dir.join("events.jsonl");
    let st = flashpoint()
        .args([
            "replay",
            "-i",
            repo("data/sample/stream.jsonl").to_str().unwrap(),
            "-c",
            repo("config/flashpoint.toml").to_str().unwrap(),
        ])
        .args(["-o", out.to_str().unwrap()])
        .output()
        .unwrap();
    assert!(st.status.success(), "{}", String::from_utf8_lossy(&st.stderr));
    let bytes = std::fs::read(&out).unwrap();
    let parse = |p: PathBuf| -> Vec<serde_json::Value> {
        std::fs::read_to_string(p).unwrap().lines().map(|l| serde_json::from_str(l).unwrap()).collect()
    };
    (parse(out.clone()), parse(dir.join("events.jsonl.dead-letter.jsonl")), bytes)
}

/// Checks an event against the committed JSON Schema: required keys, no unknown keys, enums.
fn conforms(ev: &serde_json::Value, schema: &serde_json::Value) {
    let obj = ev.as_object().unwrap();
    let props = schema["properties"].as_object().unwrap();
    for k in schema["required"].as_array().unwrap() {
        assert!(obj.contains_key(k.as_str().unwrap()), "missing {k}");
    }
    for (k, v) in obj {
        let p = props.get(k).unwrap_or_else(|| panic!("{k} is not in the schema"));
        if let Some(e) = p.get("enum") {
            assert!(e.as_array().unwrap().contains(v), "{k} = {v} not in {e}");
        }
        if let Some(c) = p.get("const") {
            assert_eq!(c, v);
        }
    }
}

#[test]
fn replay_finds_the_sample_incident_and_dead_letters_bad_input() {
    let dir = std::env::temp_dir().join(format!("fp-replay-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let (events, dead, bytes) = replay_sample(&dir);
    let schema: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(repo("schema/spike-event.schema.json")).unwrap()).unwrap();
    for e in &events {
        conforms(e, &schema);
    }
    // One incident, for Acme Air, opened within ten minutes of the synthetic outage (03-04 14:00 UTC).
    let ids: std::collections::BTreeSet<&str> = events.iter().map(|e| e["incident_id"].as_str().unwrap()).collect();
    assert_eq!(ids.len(), 1, "{events:#?}");
    assert!(events.iter().all(|e| e["entity"] == "Acme Air"));
    assert_eq!(events[0]["kind"], "opened");
    let opened = events[0]["window_end"].as_str().unwrap();
    assert!(opened > "2026-03-04T14:00" && opened <= "2026-03-04T14:10", "{opened}");
    assert_eq!(events.last().unwrap()["kind"], "resolved");
    let seqs: Vec<u64> = events.iter().map(|e| e["seq"].as_u64().unwrap()).collect();
    assert_eq!(seqs, (0..events.len() as u64).collect::<Vec<_>>());
    assert!(events.iter().any(|e| e["severity"] == "critical"));
    // The lifecycle reads right: opened at watch, escalated (severity never falls), resolved once calm; each
    // event says how long the incident has been open and its peak so far.
    let rank =
        |e: &serde_json::Value| ["watch", "warning", "critical"].iter().position(|s| e["severity"] == *s).unwrap();
    assert_eq!(events[0]["severity"], "watch");
    assert!(events.windows(2).all(|w| rank(&w[0]) <= rank(&w[1])));
    assert!(events[1..events.len() - 1].iter().all(|e| e["kind"] == "updated"));
    assert_eq!(events.last().unwrap()["resolution"], "calm");
    assert_eq!(events[0]["open_secs"], 0);
    let open: Vec<u64> = events.iter().map(|e| e["open_secs"].as_u64().unwrap()).collect();
    assert!(open.windows(2).all(|w| w[0] < w[1]), "{open:?}");
    let peaks: Vec<u64> = events.iter().map(|e| e["peak"]["negative"].as_u64().unwrap()).collect();
    assert!(peaks.windows(2).all(|w| w[0] <= w[1]) && peaks[peaks.len() - 1] > 100, "{peaks:?}");
    assert!(events.last().unwrap()["impact"]["excess_negative"].as_u64().unwrap() > 1000);
    let terms: Vec<&str> =
        events[2]["evidence"]["top_terms"].as_array().unwrap().iter().map(|t| t["term"].as_str().unwrap()).collect();
    assert!(terms.contains(&"luggage") && terms.contains(&"lost"), "{terms:?}");
    assert!(!terms.contains(&"acme"), "the entity's own words are not evidence");
    // The malformed line and the post two hours late, each with its reason.
    let reasons: Vec<&str> = dead.iter().map(|d| d["reason"].as_str().unwrap()).collect();
    assert_eq!(reasons, ["not_json", "late"]);
    // Deterministic: a second run writes the same bytes.
    let dir2 = dir.join("again");
    std::fs::create_dir_all(&dir2).unwrap();
    assert_eq!(replay_sample(&dir2).2, bytes);
}

#[test]
fn score_says_when_a_post_is_in_a_language_it_does_not_read() {
    let input = concat!(
        "{\"id\":1,\"text\":\"The service was NOT good at all :(\"}\n",
        "{\"id\":2,\"text\":\"Le service client est vraiment nul, je suis furieux pour ma valise perdue\"}\n",
        "{\"id\":3,\"text\":\"待って天幕のジャードゥーガル観ようと思ってたのに今日だったの知らなかった\"}\n",
        "{\"id\":4,\"text\":\"great flight\",\"lang\":\"es\"}\n",
        "{\"id\":5,\"text\":\"great flight\",\"lang\":\"en-GB\"}\n",
        "{\"id\":6,\"text\":\"great\",\"lang\":7}\n",
    );
    let (code, out, err) = run_with_stdin(&["score"], input);
    assert_eq!(code, 1, "line 6's lang is not a string: {err}");
    let lines: Vec<&str> = out.lines().collect();
    // English output is unchanged, byte for byte; unscored records say so and name the language.
    assert_eq!(
        lines[0],
        "{\"id\":1,\"label\":\"negative\",\"compound\":-0.6492,\"neg\":0.469,\"neu\":0.531,\"pos\":0.0}"
    );
    assert_eq!(
        lines[1],
        "{\"id\":2,\"label\":\"unscored\",\"compound\":0.0,\"neg\":0.0,\"neu\":0.0,\"pos\":0.0,\"lang\":\"fr\"}"
    );
    assert!(lines[2].contains("\"label\":\"unscored\"") && lines[2].ends_with("\"lang\":\"ja\"}"), "{}", lines[2]);
    assert!(lines[3].contains("\"label\":\"unscored\"") && lines[3].ends_with("\"lang\":\"es\"}"), "{}", lines[3]);
    assert!(lines[4].contains("\"label\":\"positive\""), "{}", lines[4]);
    assert_eq!(lines.len(), 5);
    assert!(err.contains("\"line\":6") && err.contains("lang"), "{err}");
    // `--languages '*'` scores everything, as before the gate.
    let (code, out, _) = run_with_stdin(&["score", "--languages", "*"], &input[..input.rfind("{\"id\":6").unwrap()]);
    assert_eq!(code, 0);
    assert!(!out.contains("unscored"), "{out}");
    let (code, _, err) = run_with_stdin(&["score", "--languages", "English"], "");
    assert_eq!(code, 2);
    assert!(err.contains("scorer.languages") && err.contains("English"), "{err}");
}

/// The real posts of the language fixture as an evaluation set: text and platform tag, no labels.
fn mixed_language_set(dir: &std::path::Path) -> PathBuf {
    use flashpoint_core::post::{Decoder, FieldPaths, Format};
    let fixture =
        std::fs::read_to_string(repo("crates/flashpoint-core/tests/fixtures/lang/social_posts.jsonl")).unwrap();
    let mut out = String::new();
    for line in fixture.lines() {
        let row: serde_json::Value = serde_json::from_str(line).unwrap();
        let format: Format = serde_json::from_value(row["format"].clone()).unwrap();
        let post = Decoder::new(format, FieldPaths::default()).decode(row["record"].to_string().as_bytes()).unwrap();
        out.push_str(&serde_json::json!({"text": post[0].text, "lang": post[0].lang, "label": null}).to_string());
        out.push('\n');
    }
    // Two labelled English lines, so the recall lines have something to count.
    out.push_str("{\"text\":\"I love this airline, best crew ever\",\"label\":\"positive\"}\n");
    out.push_str("{\"text\":\"They lost my bag and nobody helps, awful\",\"label\":0}\n");
    let path = dir.join("mixed.jsonl");
    std::fs::write(&path, out).unwrap();
    path
}

#[test]
fn eval_sentiment_counts_a_mixed_set_per_language() {
    let dir = std::env::temp_dir().join(format!("fp-eval-lang-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let data = mixed_language_set(&dir);
    let run = || {
        let out =
            flashpoint().args(["eval-sentiment", "--data", data.to_str().unwrap(), "--all-backends"]).output().unwrap();
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        String::from_utf8(out.stdout).unwrap()
    };
    let text = run();
    let row = |lang: &str| -> Vec<u64> {
        let l = text
            .lines()
            .find(|l| l.split_whitespace().next() == Some(lang))
            .unwrap_or_else(|| panic!("{lang}: {text}"));
        l.split_whitespace().skip(1).map(|n| n.parse().unwrap()).collect()
    };
    // language: texts, scored, unscored, by tag, detected, assumed.
    assert_eq!(row("en"), [11, 11, 0, 6, 5, 0], "{text}");
    for lang in ["ja", "ko", "ru", "nl"] {
        assert_eq!(
            row(lang)[..3],
            [if lang == "nl" { 2 } else { 1 }, 0, if lang == "nl" { 2 } else { 1 }],
            "{lang}: {text}"
        );
    }
    assert_eq!(row("cs"), [1, 0, 1, 0, 1, 0], "untagged Czech is detected: {text}");
    assert_eq!(row("de"), [1, 0, 1, 1, 0, 0], "{text}");
    assert!(text.contains("texts           18 (2 labelled)"), "{text}");
    assert!(text.contains("macro recall    "), "{text}");
    assert!(text.contains("\nlexicon  "), "the summary line: {text}");
    // Deterministic but for the timing line.
    let strip = |t: &str| t.lines().filter(|l| !l.starts_with("seconds")).collect::<Vec<_>>().join("\n");
    assert_eq!(strip(&run()), strip(&text));
}

/// Replay's summary counts what the pipeline and the Kafka score stage count: a matched post in a language the
/// scorer does not read is `unscored`, not `scored`.
#[test]
fn replay_summary_counts_unscored_posts_apart_from_scored() {
    let input = concat!(
        "{\"id\":\"1\",\"text\":\"Acme Air lost my bag again, terrible\",\"created_at\":\"2026-03-04T10:00:00Z\"}\n",
        "{\"id\":\"2\",\"text\":\"Acme Air a perdu ma valise\",\"lang\":\"fr\",\"created_at\":\"2026-03-04T10:00:01Z\"}\n",
        "{\"id\":\"3\",\"text\":\"nothing to see here\",\"created_at\":\"2026-03-04T10:00:02Z\"}\n",
    );
    let cfg = repo("config/flashpoint.toml");
    let (code, _, err) = run_with_stdin(&["replay", "-c", cfg.to_str().unwrap()], input);
    assert_eq!(code, 0, "{err}");
    let summary: serde_json::Value = serde_json::from_str(err.lines().last().unwrap()).unwrap();
    let st = &summary["stages"];
    assert_eq!((st["posts"].as_u64(), st["matched"].as_u64(), st["unmatched"].as_u64()), (Some(3), Some(2), Some(1)));
    assert_eq!((st["scored"].as_u64(), st["unscored"].as_u64()), (Some(1), Some(1)), "{summary}");
}

/// The links a source gives travel from the decoder through scoring and the aggregator to the events' evidence,
/// and change nothing else: the sample with a `url` and `author_url` on every post gives the same events, each
/// evidence post carrying its own links.
#[test]
fn replay_carries_post_links_into_evidence_and_nothing_else_changes() {
    let dir = std::env::temp_dir().join(format!("fp-replay-links-{}", std::process::id()));
    let plain_dir = dir.join("plain");
    std::fs::create_dir_all(&plain_dir).unwrap();
    let (plain, _, _) = replay_sample(&plain_dir);
    let sample = std::fs::read_to_string(repo("data/sample/stream.jsonl")).unwrap();
    let mut linked = String::new();
    for line in sample.lines() {
        match serde_json::from_str::<serde_json::Value>(line) {
            Ok(mut v) if v["id"].is_string() => {
                let id = v["id"].as_str().unwrap().to_string();
                v["url"] = format!("https://social.example/p/{id}").into();
                v["author_url"] = format!("https://social.example/u/{}", v["author"].as_str().unwrap_or("-")).into();
                linked += &v.to_string();
            }
            // Lines that are not posts stay as they are, so the same ones are dead-lettered.
            _ => linked += line,
        }
        linked.push('\n');
    }
    let input = dir.join("linked.jsonl");
    std::fs::write(&input, linked).unwrap();
    let out = dir.join("events.jsonl");
    let st = flashpoint()
        .args(["replay", "-i", input.to_str().unwrap(), "-c", repo("config/flashpoint.toml").to_str().unwrap()])
        .args(["-o", out.to_str().unwrap()])
        .output()
        .unwrap();
    assert!(st.status.success(), "{}", String::from_utf8_lossy(&st.stderr));
    let mut events: Vec<serde_json::Value> =
        std::fs::read_to_string(&out).unwrap().lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    assert_eq!(events.len(), plain.len());
    let mut seen = 0;
    for e in &mut events {
        for list in ["most_negative", "top_reach"] {
            for p in e["evidence"][list].as_array_mut().unwrap() {
                let id = p["id"].as_str().unwrap().to_string();
                let author = p["author"].as_str().unwrap_or("-").to_string();
                let o = p.as_object_mut().unwrap();
                assert_eq!(o.remove("url"), Some(format!("https://social.example/p/{id}").into()));
                assert_eq!(o.remove("author_url"), Some(format!("https://social.example/u/{author}").into()));
                seen += 1;
            }
        }
        for s in e["evidence"]["storylines"].as_array_mut().unwrap() {
            let p = s["representative"].as_object_mut().unwrap();
            let id = p["id"].as_str().unwrap().to_string();
            assert_eq!(p.remove("url"), Some(format!("https://social.example/p/{id}").into()));
            assert!(p.remove("author_url").is_some());
            seen += 1;
        }
        for a in e["evidence"]["amplifiers"].as_array_mut().unwrap() {
            let (id, author) =
                (a["first_post_id"].as_str().unwrap().to_string(), a["author"].as_str().unwrap().to_string());
            let o = a.as_object_mut().unwrap();
            assert_eq!(o.remove("first_post_url"), Some(format!("https://social.example/p/{id}").into()));
            assert_eq!(o.remove("author_url"), Some(format!("https://social.example/u/{author}").into()));
        }
    }
    assert!(seen > 0);
    assert_eq!(events, plain);
    std::fs::remove_dir_all(&dir).ok();
}
