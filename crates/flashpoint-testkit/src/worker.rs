//! A `flashpoint run` process. Killed (SIGKILL) when dropped unless it was stopped, so a failing test leaves
//! no worker behind. [`Worker::watch`] adds a background scrape of its `/metrics`, for callers that must know
//! what a worker did up to the moment it was killed.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// Counters read from one scrape of a worker's `/metrics`.
#[derive(Clone, Debug, Default)]
pub struct Scrape {
    pub consumed_score: f64,
    pub consumed_aggregate: f64,
    pub decoded: f64,
    pub scored: f64,
    pub aggregated: f64,
    pub duplicates: f64,
    /// Dead letters, all reasons and stages.
    pub dead: f64,
    /// Spike events, all kinds.
    pub spikes: f64,
    pub rss: f64,
}

impl Scrape {
    /// Reads a Prometheus text exposition.
    pub fn parse(text: &str) -> Scrape {
        let mut s = Scrape::default();
        for l in text.lines().filter(|l| !l.starts_with('#')) {
            let Some((name, v)) = l.rsplit_once(' ') else { continue };
            let v: f64 = v.parse().unwrap_or(0.0);
            match name {
                "flashpoint_records_consumed_total{stage=\"score\"}" => s.consumed_score = v,
                "flashpoint_records_consumed_total{stage=\"aggregate\"}" => s.consumed_aggregate = v,
                "flashpoint_posts_decoded_total" => s.decoded = v,
                "flashpoint_posts_scored_total" => s.scored = v,
                "flashpoint_posts_aggregated_total" => s.aggregated = v,
                "flashpoint_duplicate_records_total" => s.duplicates = v,
                "process_resident_memory_bytes" => s.rss = v,
                _ if name.starts_with("flashpoint_dead_letter_records_total") => s.dead += v,
                _ if name.starts_with("flashpoint_spike_events_total") => s.spikes += v,
                _ => {}
            }
        }
        s
    }
}

/// The background scrape of a watched worker.
struct Watch {
    /// Last successful scrape: what a kill loses is at most the last half second.
    last: Arc<Mutex<Scrape>>,
    peak_rss: Arc<AtomicU64>,
    stop: Arc<AtomicBool>,
}

pub struct Worker {
    child: Option<Child>,
    /// The metrics listen address as given (`127.0.0.1:0` when the caller does not scrape it).
    pub addr: String,
    pub log: PathBuf,
    /// Its log file's stem, for reports.
    pub name: String,
    watch: Option<Watch>,
}

impl Worker {
    /// `flashpoint run -c config --role role --metrics-listen metrics_listen`, stderr to `log`.
    pub fn start(config: &Path, role: &str, metrics_listen: &str, log: PathBuf) -> Worker {
        let f = std::fs::File::create(&log).unwrap_or_else(|e| panic!("{}: {e}", log.display()));
        let child = crate::binary::flashpoint()
            .args(["run", "-c"])
            .arg(config)
            .args(["--role", role, "--metrics-listen", metrics_listen])
            .env("FLASHPOINT_LOG", "info,librdkafka=warn,rdkafka=warn")
            .stdout(Stdio::null())
            .stderr(f)
            .spawn()
            .expect("starting flashpoint run");
        let name = log.file_stem().map_or_else(String::new, |s| s.to_string_lossy().into_owned());
        Worker { child: Some(child), addr: metrics_listen.to_string(), log, name, watch: None }
    }

    /// [`Worker::start`] with its log at `dir/<name>.log`.
    pub fn start_named(config: &Path, role: &str, metrics_listen: &str, dir: &Path, name: &str) -> Worker {
        Worker::start(config, role, metrics_listen, dir.join(format!("{name}.log")))
    }

    /// Scrapes `/metrics` every 500 ms from now on: [`Worker::scrape`], [`Worker::peak_rss`].
    pub fn watch(mut self) -> Worker {
        assert!(!self.addr.ends_with(":0"), "a watched worker needs a known metrics port, not {}", self.addr);
        let w = Watch {
            last: Arc::new(Mutex::new(Scrape::default())),
            peak_rss: Arc::new(AtomicU64::new(0)),
            stop: Arc::new(AtomicBool::new(false)),
        };
        let (last, peak, stop, addr) = (w.last.clone(), w.peak_rss.clone(), w.stop.clone(), self.addr.clone());
        std::thread::spawn(move || {
            while !stop.load(Ordering::Relaxed) {
                if let Some((200, text)) = crate::http::try_http_get(&addr, "/metrics") {
                    let s = Scrape::parse(&text);
                    peak.fetch_max(s.rss as u64, Ordering::Relaxed);
                    *last.lock().unwrap() = s;
                }
                std::thread::sleep(Duration::from_millis(500));
            }
        });
        self.watch = Some(w);
        self
    }

    pub fn pid(&self) -> i32 {
        self.child.as_ref().unwrap().id() as i32
    }

    /// Sends `sig` (a name: TERM, KILL, STOP, ...).
    pub fn signal(&self, sig: &str) {
        let ok = Command::new("kill").args([&format!("-{sig}"), &self.pid().to_string()]).status().unwrap().success();
        assert!(ok, "kill -{sig}");
    }

    pub fn alive(&mut self) -> bool {
        self.exit_code().is_none()
    }

    /// The exit code if the process has exited (-1 for a signal).
    pub fn exit_code(&mut self) -> Option<i32> {
        self.child.as_mut().and_then(|c| c.try_wait().unwrap()).map(|s| s.code().unwrap_or(-1))
    }

    /// Waits up to `limit` for the process to exit on its own; its status, or None if it is still running.
    pub fn wait_exit(&mut self, limit: Duration) -> Option<ExitStatus> {
        let deadline = Instant::now() + limit;
        let c = self.child.as_mut().unwrap();
        loop {
            if let Some(s) = c.try_wait().unwrap() {
                return Some(s);
            }
            if Instant::now() > deadline {
                return None;
            }
            std::thread::sleep(Duration::from_millis(200));
        }
    }

    /// `/readyz`'s status, None if the worker does not answer.
    pub fn ready(&self) -> Option<u16> {
        crate::http::try_http_get(&self.addr, "/readyz").map(|(c, _)| c)
    }

    /// The current `/metrics` text, None if the worker does not answer.
    pub fn metrics(&self) -> Option<String> {
        crate::http::try_http_get(&self.addr, "/metrics").map(|(_, t)| t)
    }

    /// The value of one series now (see [`crate::http::metric`]), None if absent or the worker does not answer.
    pub fn metric(&self, series: &str) -> Option<f64> {
        crate::http::metric(&self.metrics()?, series)
    }

    /// The last background scrape (all zero for a worker not watched, or not scraped yet).
    pub fn scrape(&self) -> Scrape {
        self.watch.as_ref().map_or_else(Scrape::default, |w| w.last.lock().unwrap().clone())
    }

    /// The highest RSS the background scrape saw, in bytes.
    pub fn peak_rss(&self) -> u64 {
        self.watch.as_ref().map_or(0, |w| w.peak_rss.load(Ordering::Relaxed))
    }

    /// SIGKILL and reap; returns the last background scrape.
    pub fn kill(mut self) -> Scrape {
        let mut c = self.child.take().unwrap();
        c.kill().unwrap();
        c.wait().unwrap();
        self.unwatch()
    }

    /// SIGTERM, then the exit code; panics with the log if the worker has not exited within 60 s.
    pub fn stop(self) -> i32 {
        let log = self.log.clone();
        match self.stop_within(Duration::from_secs(60)) {
            (Some(code), _) => code,
            (None, _) => panic!(
                "worker did not stop within 60 s of SIGTERM; log:\n{}",
                std::fs::read_to_string(log).unwrap_or_default()
            ),
        }
    }

    /// A fresh scrape (watched workers), SIGTERM, and the exit code if it exits within `limit`; one still
    /// running then is SIGKILLed (None). Also returns the final scrape, taken just before the signal.
    pub fn stop_within(mut self, limit: Duration) -> (Option<i32>, Scrape) {
        if let (Some(w), Some((200, text))) = (&self.watch, crate::http::try_http_get(&self.addr, "/metrics")) {
            *w.last.lock().unwrap() = Scrape::parse(&text);
        }
        let mut c = self.child.take().unwrap();
        let _ = Command::new("kill").args(["-TERM", &c.id().to_string()]).status();
        let deadline = Instant::now() + limit;
        let code = loop {
            if let Some(s) = c.try_wait().unwrap() {
                break Some(s.code().unwrap_or(-1));
            }
            if Instant::now() > deadline {
                let _ = c.kill();
                let _ = c.wait();
                break None;
            }
            std::thread::sleep(Duration::from_millis(100));
        };
        (code, self.unwatch())
    }

    /// Ends the background scrape; returns its last result.
    fn unwatch(&mut self) -> Scrape {
        let s = self.scrape();
        if let Some(w) = &self.watch {
            w.stop.store(true, Ordering::Relaxed);
        }
        s
    }

    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

impl Drop for Worker {
    fn drop(&mut self) {
        self.unwatch();
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_scrape_sums_dead_letters_and_events_over_labels() {
        let text = "# TYPE x counter\n\
                    flashpoint_records_consumed_total{stage=\"score\"} 10\n\
                    flashpoint_records_consumed_total{stage=\"aggregate\"} 7\n\
                    flashpoint_dead_letter_records_total{reason=\"late\",stage=\"aggregate\"} 2\n\
                    flashpoint_dead_letter_records_total{reason=\"not_json\",stage=\"score\"} 3\n\
                    flashpoint_spike_events_total{kind=\"opened\"} 1\n\
                    flashpoint_spike_events_total{kind=\"resolved\"} 1\n\
                    process_resident_memory_bytes 1048576\n";
        let s = Scrape::parse(text);
        assert_eq!((s.consumed_score, s.consumed_aggregate, s.dead, s.spikes), (10.0, 7.0, 5.0, 2.0));
        assert_eq!(s.rss, 1048576.0);
    }
}
