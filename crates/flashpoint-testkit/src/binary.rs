//! The `flashpoint` binary under test: where it is, a command for it, and the runs several tests compare
//! against (`replay`, the sample stream's events, `flashpoint notify`).

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

/// The `flashpoint` binary built with the running executable. Cargo puts an integration test in
/// `target/<profile>/deps` and a tool in `target/<profile>`, with the package's binary in `target/<profile>`
/// (what `CARGO_BIN_EXE_flashpoint` names). A tool (not a test: a test checks the binary it was built with)
/// may be pointed at another binary with `FLASHPOINT_BIN`.
pub fn flashpoint_bin() -> PathBuf {
    let exe = std::env::current_exe().expect("current executable");
    let mut dir = exe.parent().expect("executable's directory").to_path_buf();
    if dir.ends_with("deps") {
        dir.pop();
    } else if let Some(p) = std::env::var_os("FLASHPOINT_BIN") {
        return PathBuf::from(p);
    }
    let bin = dir.join("flashpoint");
    assert!(bin.is_file(), "{} not found: build it (cargo build -p flashpoint) or set FLASHPOINT_BIN", bin.display());
    bin
}

/// A command for the binary (nothing set beyond the caller's environment).
pub fn flashpoint() -> Command {
    Command::new(flashpoint_bin())
}

/// Runs the binary with `args`, `stdin` piped in, and returns (exit code, stdout, stderr). FLASHPOINT_MODEL_DIR
/// is removed so a test sees only the model directory it passes.
pub fn run_with_stdin(args: &[&str], stdin: &str) -> (i32, String, String) {
    let mut child = flashpoint()
        .args(args)
        .env_remove("FLASHPOINT_MODEL_DIR")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // A command that refuses its arguments exits before reading stdin; the pipe closing then is its answer, not a
    // failure of the test.
    match child.stdin.take().unwrap().write_all(stdin.as_bytes()) {
        Err(e) if e.kind() != std::io::ErrorKind::BrokenPipe => panic!("writing stdin: {e}"),
        _ => {}
    }
    let out = child.wait_with_output().unwrap();
    (out.status.code().unwrap_or(-1), String::from_utf8(out.stdout).unwrap(), String::from_utf8(out.stderr).unwrap())
}

/// Runs the binary with `args` and raw `stdin`, written from a thread (the child may fill its stderr pipe
/// before reading all of its input): (exit code, stdout, stderr) as bytes.
pub fn run_with_bytes(args: &[&str], stdin: &[u8]) -> (i32, Vec<u8>, Vec<u8>) {
    let mut child =
        flashpoint().args(args).stdin(Stdio::piped()).stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().unwrap();
    let mut sin = child.stdin.take().unwrap();
    let input = stdin.to_vec();
    let writer = std::thread::spawn(move || {
        let _ = sin.write_all(&input);
    });
    let out = child.wait_with_output().unwrap();
    writer.join().unwrap();
    (out.status.code().unwrap_or(-1), out.stdout, out.stderr)
}

/// `flashpoint replay` of `input` with `config`: the reference a cluster run must equal.
pub fn replay(config: &Path, input: &Path) -> Vec<serde_json::Value> {
    let out =
        flashpoint().args(["replay", "-c"]).arg(config).arg("-i").arg(input).stderr(Stdio::null()).output().unwrap();
    assert!(out.status.success());
    String::from_utf8(out.stdout).unwrap().lines().map(|l| serde_json::from_str(l).unwrap()).collect()
}

/// Spike events (as lines) from `flashpoint replay --flush` of the committed sample stream with the example
/// config: one incident, nine events.
pub fn sample_events() -> Vec<String> {
    let out = flashpoint()
        .args(["replay", "--config"])
        .arg(crate::paths::repo("config/flashpoint.toml"))
        .arg("--input")
        .arg(crate::paths::sample_stream())
        .arg("--flush")
        .stderr(Stdio::null())
        .output()
        .unwrap();
    assert!(out.status.success());
    let lines: Vec<String> = String::from_utf8(out.stdout).unwrap().lines().map(String::from).collect();
    assert!(lines.len() >= 3, "the sample stream yields an incident");
    lines
}

/// What a `flashpoint notify` run left: its exit code, stderr, the JSON summary (its last JSON line on
/// stderr) and the dead letters it wrote.
pub struct NotifyRun {
    pub code: i32,
    pub stderr: String,
    pub summary: serde_json::Value,
    pub dead: Vec<serde_json::Value>,
}

/// `flashpoint notify` with `input` on stdin, dead letters to `dir/dead.jsonl` and `env` set; waits for it
/// to exit.
pub fn run_notify(config: &Path, dir: &Path, input: &str, env: &[(&str, String)]) -> NotifyRun {
    run_notify_with(config, dir, input.as_bytes(), env, &[])
}

/// [`run_notify`] with raw input bytes (a test may send what is not UTF-8) and extra arguments.
pub fn run_notify_with(config: &Path, dir: &Path, input: &[u8], env: &[(&str, String)], args: &[&str]) -> NotifyRun {
    let dead = dir.join("dead.jsonl");
    let mut cmd = flashpoint();
    cmd.args(["notify", "--config"]).arg(config).args(["--input", "-", "--dead-letter"]).arg(&dead).args(args);
    for (k, v) in env {
        cmd.env(k, v);
    }
    let mut child = cmd.stdin(Stdio::piped()).stdout(Stdio::null()).stderr(Stdio::piped()).spawn().unwrap();
    let mut stdin = child.stdin.take().unwrap();
    let input = input.to_vec();
    let w = std::thread::spawn(move || {
        let _ = stdin.write_all(&input);
    });
    let out = child.wait_with_output().unwrap();
    w.join().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr).to_string();
    let summary = stderr.lines().rev().find_map(|l| serde_json::from_str(l).ok()).unwrap_or(serde_json::Value::Null);
    let dead =
        std::fs::read_to_string(&dead).unwrap_or_default().lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    NotifyRun { code: out.status.code().unwrap_or(-1), stderr, summary, dead }
}
