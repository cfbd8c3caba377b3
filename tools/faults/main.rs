//! Fault and load driver for the cluster worker (`scripts/faults.sh`, `scripts/soak.sh`): starts a Tansu
//! broker and `flashpoint run` workers, feeds a generated stream with known incidents, injects a fault, and
//! then accounts for every input record and compares the spike events with `flashpoint replay` of the same
//! stream.
//!
//! Scenarios (`faults SCENARIO [--posts N] [--seed S] ...`):
//! - `kill`: one worker SIGKILLed at random points and restarted each time.
//! - `broker`: the broker (persistent sqlite storage) stopped and restarted mid-stream; /readyz must turn
//!   503 meanwhile and 200 again after.
//! - `rebalance`: three workers; one at a time is stopped (SIGTERM) and a new one started, repeatedly.
//! - `pause`: the broker SIGSTOPped for a while (every topic, the spikes topic included, stops taking
//!   writes): the worker's RSS must stay bounded and nothing may be lost.
//! - `soak`: a steady rate for M minutes; throughput and RSS every 10 s to a CSV.
//!
//! Accounting: every input offset is either in the scored topic (as `src`/`off` of at least one scored
//! record), in the dead-letter topic (stage `score`, with its source offset), or was unmatched; the three
//! counts must equal replay's. Late posts diverted by the aggregate stage are counted by their source key.
//! Events are keyed by (incident id, seq); a duplicate must be byte-for-byte the same event (an exact
//! replay), and the de-duplicated set must equal replay's.
//!
//! One file per scenario; `stream` makes the input, `run` holds the setup and the verdict they share. The
//! broker, worker and collector processes are the test kit's (`flashpoint-testkit`).

mod broker;
mod kill;
mod pause;
mod rebalance;
mod run;
mod soak;
mod stream;

use std::path::PathBuf;
use std::time::Instant;

/// One line to stderr, stamped with the seconds since the first.
pub fn log(msg: impl AsRef<str>) {
    static T0: std::sync::OnceLock<Instant> = std::sync::OnceLock::new();
    let t = T0.get_or_init(Instant::now).elapsed().as_secs_f64();
    eprintln!("[faults {t:7.1}s] {}", msg.as_ref());
}

pub struct Opts {
    pub posts: u64,
    pub seed: u64,
    pub kills: u32,
    pub rate: u64,
    pub minutes: f64,
    pub csv: Option<PathBuf>,
    pub dir: PathBuf,
    pub checkpoint_ms: u64,
    /// Broker scenario: how the broker is stopped (KILL: a crash; TERM: Tansu's graceful shutdown).
    pub broker_signal: String,
    /// Extra `[kafka.librdkafka]` lines for the workers (e.g. `"enable.idempotence" = "false"`).
    pub librdkafka: String,
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let usage = "usage: faults kill|broker|rebalance|pause|soak|all [--posts N] [--seed S] [--kills K] [--rate R] [--minutes M] [--csv FILE] [--dir DIR] [--checkpoint-ms MS] [--broker-signal KILL|TERM] [--librdkafka '\"key\" = \"value\"']";
    let Some(scenario) = args.first().cloned() else {
        eprintln!("{usage}");
        std::process::exit(2);
    };
    let mut o = Opts {
        posts: 1_000_000,
        // FLASHPOINT_FAULTS_SEED sets the default; --seed overrides it; the seed is printed either way.
        seed: std::env::var("FLASHPOINT_FAULTS_SEED")
            .map_or(7, |v| v.parse().expect("FLASHPOINT_FAULTS_SEED: a number")),
        kills: 10,
        rate: 0,
        minutes: 10.0,
        csv: None,
        dir: std::env::temp_dir().join(format!("flashpoint-faults-{}", std::process::id())),
        checkpoint_ms: 1000,
        broker_signal: "KILL".into(),
        librdkafka: String::new(),
    };
    let mut i = 1;
    while i < args.len() {
        let v = args.get(i + 1).cloned().unwrap_or_default();
        match args[i].as_str() {
            "--posts" => o.posts = v.parse().expect("--posts N"),
            "--seed" => o.seed = v.parse().expect("--seed S"),
            "--kills" => o.kills = v.parse().expect("--kills K"),
            "--rate" => o.rate = v.parse().expect("--rate R"),
            "--minutes" => o.minutes = v.parse().expect("--minutes M"),
            "--csv" => o.csv = Some(PathBuf::from(v)),
            "--dir" => o.dir = PathBuf::from(v),
            "--checkpoint-ms" => o.checkpoint_ms = v.parse().expect("--checkpoint-ms MS"),
            "--broker-signal" => o.broker_signal = v,
            "--librdkafka" => o.librdkafka.push_str(&format!("{v}\n")),
            a => {
                eprintln!("unknown argument {a}\n{usage}");
                std::process::exit(2);
            }
        }
        i += 2;
    }
    std::fs::create_dir_all(&o.dir).unwrap();
    log(format!(
        "work dir {}; seed {} (rerun with --seed {} or FLASHPOINT_FAULTS_SEED)",
        o.dir.display(),
        o.seed,
        o.seed
    ));
    let ok = match scenario.as_str() {
        "kill" => kill::run(&o),
        "broker" => broker::run(&o),
        "rebalance" => rebalance::run(&o),
        "pause" => pause::run(&o),
        "soak" => soak::run(&o),
        "all" => [kill::run, broker::run, rebalance::run, pause::run].iter().map(|f| f(&o)).fold(true, |a, b| a & b),
        _ => {
            eprintln!("{usage}");
            std::process::exit(2);
        }
    };
    std::process::exit(if ok { 0 } else { 1 });
}
