//! The command-line contracts, run against the real binary.

mod common;

use common::{bin, repo, run_with_stdin};
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
        let out = bin().args(&args).output().unwrap();
        assert!(out.status.success(), "{args:?}");
        assert!(String::from_utf8_lossy(&out.stdout).len() > 200, "{args:?} explains itself");
    }
}

#[test]
fn check_config_names_the_bad_key() {
    let dir = std::env::temp_dir().join(format!("fp-cc-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let p = dir.join("bad.toml");
    std::fs::write(&p, "[window]\nsize_secs = 300\nslide_sec = 60\n[[entities]]\nname = \"a\"\nterms = [\"a\"]\n")
        .unwrap();
    let out = bin().args(["check-config", "-c", p.to_str().unwrap()]).output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("window") && err.contains("slide_sec"), "{err}");
    let out = bin().args(["check-config", "-c", repo("config/flashpoint.toml").to_str().unwrap()]).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
}

fn replay_sample(dir: &std::path::Path) -> (Vec<serde_json::Value>, Vec<serde_json::Value>, Vec<u8>) {
    let out = dir.join("events.jsonl");
    let st = bin()
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
