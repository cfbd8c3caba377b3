//! The command-line contracts with `--scorer transformer`. Without the `transformer` feature the binary must refuse
//! with how to build it; with it, `score` and `replay` keep the lexicon scorer's output contracts. The feature tests
//! need the model that `scripts/libtorch.sh` installs (scripts/test.sh provides it) and fail saying so without it.
//! Built with `--profile transformer` (target/transformer/), so the default binary in target/release/ stays as it is.

#[cfg(not(feature = "transformer"))]
use flashpoint_testkit::run_with_stdin;

#[cfg(not(feature = "transformer"))]
#[test]
fn transformer_not_built_says_how_to_build_it() {
    for args in [
        &["score", "--scorer", "transformer", "--model-dir", "/nonexistent"][..],
        &["score", "--scorer", "transformer"],
    ] {
        let (code, out, err) = run_with_stdin(args, "{\"id\":1,\"text\":\"hi\"}\n");
        assert_eq!((code, out.as_str()), (2, ""), "{err}");
        assert!(err.contains("--features transformer") && err.contains("scripts/libtorch.sh"), "{err}");
    }
}

#[cfg(feature = "transformer")]
mod with_backend {
    use flashpoint_testkit::{flashpoint, repo, run_with_stdin, tempdir};
    use std::path::PathBuf;

    fn model_dir() -> String {
        let dir = std::env::var_os("FLASHPOINT_MODEL_DIR").map(PathBuf::from).unwrap_or_else(|| {
            PathBuf::from(std::env::var_os("HOME").unwrap()).join(".cache/flashpoint/models/minilm-sentiment")
        });
        assert!(
            dir.join("head.safetensors").is_file(),
            "{} has no model: run `eval \"$(scripts/libtorch.sh)\"` from the repository root first",
            dir.display()
        );
        dir.to_str().unwrap().to_string()
    }

    #[test]
    fn transformer_without_model_dir_names_the_key() {
        let (code, out, err) = run_with_stdin(&["score", "--scorer", "transformer"], "{\"id\":1,\"text\":\"hi\"}\n");
        assert_eq!((code, out.as_str()), (2, ""), "{err}");
        assert!(err.contains("scorer.model_dir"), "{err}");
    }

    #[test]
    fn wrong_model_dir_fails_at_start_naming_the_path() {
        let (code, out, err) = run_with_stdin(
            &["score", "--scorer", "transformer", "--model-dir", "/nonexistent/m"],
            "{\"text\":\"x\"}\n",
        );
        assert_eq!((code, out.as_str()), (2, ""), "{err}");
        assert!(err.contains("scorer.model_dir") && err.contains("/nonexistent/m"), "{err}");
    }

    #[test]
    fn score_keeps_its_contract() {
        let input = "{\"id\":1,\"text\":\"I love this so much, thank you!\"}\nnot json\n{\"id\":\"b\",\"text\":\"@acme you lost my bag AGAIN. worst airline ever\"}\n";
        let m = model_dir();
        let (code, out, err) =
            run_with_stdin(&["score", "--scorer", "transformer", "--model-dir", &m, "--batch-size", "1"], input);
        assert_eq!(code, 1, "the bad line is reported: {err}");
        let recs: Vec<serde_json::Value> = out.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
        assert_eq!(recs.len(), 2);
        let keys: Vec<&str> = recs[0].as_object().unwrap().keys().map(|k| k.as_str()).collect();
        let mut sorted = keys.clone();
        sorted.sort();
        assert_eq!(sorted, ["compound", "id", "label", "neg", "neu", "pos"]);
        assert!(out.lines().next().unwrap().starts_with("{\"id\":1,\"label\":"), "field order: {out}");
        assert_eq!((recs[0]["id"].clone(), recs[0]["label"].as_str()), (serde_json::json!(1), Some("positive")));
        assert_eq!((recs[1]["id"].clone(), recs[1]["label"].as_str()), (serde_json::json!("b"), Some("negative")));
        assert!(err.contains("\"line\":2"), "{err}");
    }

    #[test]
    fn the_binary_finds_libtorch_without_a_sourced_environment() {
        // build.rs records $LIBTORCH/lib in the binary: no LD_LIBRARY_PATH, no sourced scripts/libtorch.sh.
        let m = model_dir();
        let out = flashpoint()
            .args(["score", "--scorer", "transformer", "--model-dir", &m])
            .env_remove("LD_LIBRARY_PATH")
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .and_then(|mut c| {
                use std::io::Write;
                c.stdin.take().unwrap().write_all(
                    "{\"id\":1,\"text\":\"thank you, best crew ever\"}\n{\"id\":2,\"text\":\"Le service client est vraiment nul, je suis furieux pour ma valise perdue\"}\n"
                        .as_bytes(),
                )?;
                c.wait_with_output()
            })
            .unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(out.status.success(), "{err}");
        let text = String::from_utf8(out.stdout).unwrap();
        let lines: Vec<&str> = text.lines().collect();
        assert!(lines[0].contains("\"label\":\"positive\""), "{text}");
        // The transformer reads English only, like the lexicon: the French post is not scored.
        assert!(lines[1].contains("\"label\":\"unscored\"") && lines[1].ends_with("\"lang\":\"fr\"}"), "{text}");
    }

    #[test]
    fn replay_with_the_transformer_finds_the_sample_incident() {
        let dir = tempdir("replay-tf");
        let out = dir.join("events.jsonl");
        let st = flashpoint()
            .args([
                "replay",
                "-i",
                repo("data/sample/stream.jsonl").to_str().unwrap(),
                "-c",
                repo("config/flashpoint.toml").to_str().unwrap(),
            ])
            .args(["-o", out.to_str().unwrap(), "--scorer", "transformer", "--model-dir", &model_dir()])
            .output()
            .unwrap();
        assert!(st.status.success(), "{}", String::from_utf8_lossy(&st.stderr));
        let events: Vec<serde_json::Value> =
            std::fs::read_to_string(&out).unwrap().lines().map(|l| serde_json::from_str(l).unwrap()).collect();
        assert!(!events.is_empty());
        assert!(events.iter().all(|e| e["entity"] == "Acme Air"), "{events:#?}");
        assert_eq!(events[0]["kind"], "opened");
        let opened = events[0]["window_end"].as_str().unwrap();
        assert!(opened > "2026-03-04T14:00" && opened <= "2026-03-04T14:15", "{opened}");
        let summary: serde_json::Value =
            serde_json::from_str(String::from_utf8_lossy(&st.stderr).lines().last().unwrap()).unwrap();
        assert!(summary["records"].as_u64().unwrap() > 10_000, "{summary}");
    }
}
