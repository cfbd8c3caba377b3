//! A real browser for the incident pages' tests: Debian's `chromium`, headless (`scripts/chromium.sh install`
//! installs it; `FLASHPOINT_CHROMIUM` names another binary). Each load gets a profile directory of its own, so
//! tests may load pages side by side.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

/// The chromium binary; a test that needs it and does not find it fails saying how to get it.
pub fn chromium_bin() -> PathBuf {
    let name = std::env::var_os("FLASHPOINT_CHROMIUM").unwrap_or_else(|| "chromium".into());
    let found = if Path::new(&name).components().count() > 1 {
        Some(PathBuf::from(&name)).filter(|p| p.is_file())
    } else {
        std::env::var_os("PATH")
            .and_then(|paths| std::env::split_paths(&paths).map(|d| d.join(&name)).find(|p| p.is_file()))
    };
    found.unwrap_or_else(|| {
        panic!(
            "chromium not found ({}): install it with `scripts/chromium.sh install` (Debian's chromium package), or \
             set FLASHPOINT_CHROMIUM to a Chromium binary",
            name.to_string_lossy()
        )
    })
}

/// A page as the browser saw it after loading.
#[derive(Debug)]
pub struct Loaded {
    /// The DOM serialised after load (`--dump-dom`).
    pub dom: String,
    /// Every console message the page caused (script errors, Content-Security-Policy violations, logs): the
    /// browser's `CONSOLE` log lines.
    pub console: Vec<String>,
}

fn headless(profile: &Path) -> Command {
    let mut c = Command::new(chromium_bin());
    c.args(["--headless", "--disable-gpu", "--no-sandbox", "--no-first-run", "--disable-extensions"])
        .arg(format!("--user-data-dir={}", profile.display()))
        .args(["--enable-logging=stderr", "--v=0"])
        .stdin(Stdio::null());
    c
}

/// Loads `url` and returns its DOM and console messages.
pub fn load(url: &str) -> Loaded {
    let profile = crate::paths::tempdir("chromium-profile");
    let out = headless(&profile).arg("--dump-dom").arg(url).output().expect("running chromium");
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(out.status.success(), "chromium --dump-dom {url} failed ({}):\n{stderr}", out.status);
    let _ = std::fs::remove_dir_all(&profile);
    Loaded {
        dom: String::from_utf8_lossy(&out.stdout).into_owned(),
        console: stderr.lines().filter(|l| l.contains(":CONSOLE")).map(str::to_string).collect(),
    }
}

/// Saves a PNG of `url` at `width` × `height` CSS pixels to `png`.
pub fn screenshot(url: &str, png: &Path, width: u32, height: u32) {
    let profile = crate::paths::tempdir("chromium-profile");
    let out = headless(&profile)
        .arg(format!("--screenshot={}", png.display()))
        .arg(format!("--window-size={width},{height}"))
        .arg("--hide-scrollbars")
        .arg(url)
        .output()
        .expect("running chromium");
    let _ = std::fs::remove_dir_all(&profile);
    assert!(
        out.status.success() && png.is_file(),
        "chromium --screenshot {url} failed ({}):\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
}
