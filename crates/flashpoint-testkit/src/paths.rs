//! Where things are: the repository and its committed fixtures, fresh scratch directories, free ports, seeds.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU32, Ordering};

/// A path in the repository (`rel` from its root).
pub fn repo(rel: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..").join(rel)
}

/// The committed sample stream (`data/sample/stream.jsonl`: one incident, a late post, a bad line).
pub fn sample_stream() -> PathBuf {
    repo("data/sample/stream.jsonl")
}

/// A name no other caller in this process, nor an earlier run (against the same broker or temp dir), uses:
/// `name-<pid>-<counter>-<nanos>`.
pub fn unique(name: &str) -> String {
    static N: AtomicU32 = AtomicU32::new(0);
    let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_nanos() % 1_000_000_000;
    format!("{name}-{}-{}-{nanos}", std::process::id(), N.fetch_add(1, Ordering::Relaxed))
}

/// A new, empty directory under the system temp dir, unique to this call (kept after the test, for its logs).
pub fn tempdir(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(unique(name));
    std::fs::create_dir_all(&d).unwrap();
    d
}

/// A TCP port on 127.0.0.1 that was free a moment ago (the kernel's pick; the caller binds it soon after).
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

/// Waits until something accepts connections on 127.0.0.1:`port`; after `limit`, fails naming `what` and the
/// `log` to read (a server the test started itself that never came up).
pub fn wait_listening(port: u16, limit: std::time::Duration, what: &str, log: &Path) {
    let deadline = std::time::Instant::now() + limit;
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(std::time::Instant::now() < deadline, "{what} did not start; see {}", log.display());
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
}

/// The non-empty lines of a file, as raw records to produce.
pub fn lines(path: &Path) -> Vec<Vec<u8>> {
    std::fs::read_to_string(path)
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
        .lines()
        .filter(|l| !l.is_empty())
        .map(|l| l.as_bytes().to_vec())
        .collect()
}

/// The 4,200 tweets of the VADER ground truth (the committed parity fixture): real texts for generated
/// streams and benchmarks, so nothing needs `../shared`.
pub fn tweets() -> Vec<String> {
    let path = repo("tests/fixtures/vader/tweets.jsonl");
    let data = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    data.lines()
        .map(|l| {
            let v: serde_json::Value = serde_json::from_str(l).expect("fixture line");
            v["text"].as_str().expect("text").to_string()
        })
        .collect()
}

/// A seed for randomised choices: `var` if set (to replay a run), else the clock. Callers print it.
pub fn seed_from_env(var: &str) -> u64 {
    match std::env::var(var) {
        Ok(v) => v.parse().unwrap_or_else(|_| panic!("{var}={v:?}: not a number")),
        Err(_) => std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().subsec_nanos() as u64,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tempdirs_are_fresh_and_distinct() {
        let (a, b) = (tempdir("kit"), tempdir("kit"));
        assert_ne!(a, b);
        assert!(a.is_dir() && std::fs::read_dir(&a).unwrap().next().is_none());
    }

    #[test]
    fn the_committed_fixtures_are_found() {
        assert!(sample_stream().is_file(), "{}", sample_stream().display());
        assert_eq!(tweets().len(), 4200);
    }
}
