//! A Tansu broker process the harness owns (the fault driver starts one per scenario): started on a given
//! port and storage, signalled, stopped and started again on the same storage. The test suite's shared
//! broker is started by `scripts/test.sh` instead and reached through [`crate::broker::brokers`].

use crate::paths::wait_listening;
use std::path::{Path, PathBuf};
use std::process::{Child, Command};
use std::time::{Duration, Instant};

pub struct Tansu {
    child: Option<Child>,
    pub port: u16,
    /// Its working directory (a sqlite storage lives there) and `tansu.log`.
    dir: PathBuf,
    storage: String,
}

/// `TANSU_BIN`, else where `scripts/tansu.sh install` puts it.
pub fn tansu_bin() -> PathBuf {
    match std::env::var_os("TANSU_BIN") {
        Some(p) => PathBuf::from(p),
        None => PathBuf::from(std::env::var("HOME").unwrap()).join(".cache/flashpoint/tansu/bin/tansu"),
    }
}

impl Tansu {
    /// Starts Tansu on 127.0.0.1:`port` with `storage` (`memory://tansu/`, `sqlite://tansu.db`, ...) and
    /// waits until it accepts connections.
    pub fn start(dir: &Path, port: u16, storage: &str) -> Tansu {
        let mut b = Tansu { child: None, port, dir: dir.to_path_buf(), storage: storage.to_string() };
        b.spawn();
        b
    }

    /// Starts the process (again, after [`Tansu::stop`]) on the same port and storage.
    pub fn spawn(&mut self) {
        let bin = tansu_bin();
        let url = format!("tcp://127.0.0.1:{}", self.port);
        let logf = std::fs::OpenOptions::new().create(true).append(true).open(self.dir.join("tansu.log")).unwrap();
        let child = Command::new(&bin)
            .current_dir(&self.dir)
            .args([
                "broker",
                "--listener-url",
                &url,
                "--advertised-listener-url",
                &url,
                "--storage-engine",
                &self.storage,
            ])
            .stdout(logf.try_clone().unwrap())
            .stderr(logf)
            .spawn()
            .unwrap_or_else(|e| panic!("starting {} (install it: scripts/tansu.sh install): {e}", bin.display()));
        self.child = Some(child);
        wait_listening(self.port, Duration::from_secs(30), "broker", &self.dir.join("tansu.log"));
    }

    pub fn pid(&self) -> u32 {
        self.child.as_ref().unwrap().id()
    }

    /// Sends `sig` (STOP, CONT, ...).
    pub fn signal(&self, sig: &str) {
        Command::new("kill").args([&format!("-{sig}"), &self.pid().to_string()]).status().unwrap();
    }

    /// Sends `sig` and waits up to 10 s for the exit, then SIGKILLs.
    pub fn stop(&mut self, sig: &str) {
        if let Some(mut c) = self.child.take() {
            let _ = Command::new("kill").args([&format!("-{sig}"), &c.id().to_string()]).status();
            let deadline = Instant::now() + Duration::from_secs(10);
            while c.try_wait().unwrap().is_none() && Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(50));
            }
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// Its bootstrap address.
    pub fn brokers(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }
}

impl Drop for Tansu {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            // A scenario may have left it frozen (SIGSTOP).
            let _ = Command::new("kill").args(["-CONT", &c.id().to_string()]).status();
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}
