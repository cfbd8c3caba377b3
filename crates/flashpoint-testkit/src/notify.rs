//! The notifier tests' fixtures: the `[notify]` section most of them share (signed webhooks to a local
//! receiver), its environment, and a channel's mark read back from a checkpoint.

use crate::config::Config;
use crate::receiver::Receiver;
use std::path::{Path, PathBuf};

/// A `[notify]` section: `delivery` lines under `[notify.delivery]`, one signed webhook channel per name (URL from
/// `FP_URL_<NAME>`, key from `dir/k`), and one route `all` to all of them. The fixture most notify tests share.
pub fn webhooks(dir: &Path, delivery: &str, names: &[&str], route_extra: &str) -> String {
    std::fs::write(dir.join("k"), "k").unwrap();
    let mut s = format!("[notify]\n[notify.delivery]\n{delivery}\n");
    for n in names {
        s += &format!(
            "[[notify.channels]]\nkind = \"webhook\"\nname = \"{n}\"\nurl = {{ env = \"FP_URL_{}\" }}\nsigning_key = {{ file = \"{}\" }}\n",
            n.to_ascii_uppercase(),
            dir.join("k").display()
        );
    }
    let list: Vec<String> = names.iter().map(|n| format!("\"{n}\"")).collect();
    s + &format!("[[notify.routes]]\nname = \"all\"\nchannels = [{}]\n{route_extra}\n", list.join(", "))
}

/// The environment [`webhooks`] reads: each channel posting to `/{name}` on `rx`.
pub fn webhook_env(rx: &Receiver, names: &[&str]) -> Vec<(String, String)> {
    names.iter().map(|n| (format!("FP_URL_{}", n.to_ascii_uppercase()), rx.url(&format!("/{n}")))).collect()
}

/// config/flashpoint.toml (watchlist, windows) plus `notify` (a [notify] section).
/// A channel's mark in a `--checkpoint` file (lines before it finished on that channel).
pub fn checkpoint_mark(path: &Path, channel: &str) -> Option<u64> {
    let v: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(path).ok()?).ok()?;
    v["marks"][channel].as_u64()
}

/// The example config with this `[notify]` section, written to `dir/flashpoint.toml`.
pub fn notify_config(dir: &Path, notify: &str) -> PathBuf {
    Config::example().section(notify).write(&dir.join("flashpoint.toml"))
}
