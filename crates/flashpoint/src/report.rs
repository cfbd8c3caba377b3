//! `flashpoint report`: spike events (JSON Lines) to static incident pages, the same pages the notify stage serves
//! live (`flashpoint_notify::page`): `index.html` and one `<incident_id>.html` per incident, self-contained.

use anyhow::{Context, Result};
use flashpoint_notify::page::{self, IncidentStore, Links};
use flashpoint_notify::{parse_event, Position};
use std::io::BufRead;
use std::path::Path;

#[derive(Debug, serde::Serialize)]
pub struct Summary {
    pub incidents: usize,
    pub events: u64,
    /// Lines that are not spike events, or whose incident id cannot name a page (each reported on stderr).
    pub bad_lines: u64,
}

pub fn run(input: Box<dyn BufRead>, out: &Path) -> Result<Summary> {
    let mut store = IncidentStore::unbounded();
    let (mut events, mut bad_lines) = (0, 0);
    for (i, line) in input.lines().enumerate() {
        let line = line.with_context(|| format!("reading line {}", i + 1))?;
        if line.trim().is_empty() {
            continue;
        }
        let kept = parse_event(&line, Position::line(i as i64 + 1))
            .and_then(|input| store.record(input.event, &input.raw).map_err(|e| e.to_string()));
        match kept {
            Ok(()) => events += 1,
            Err(why) => {
                bad_lines += 1;
                eprintln!(
                    "{}",
                    serde_json::json!({"line": i + 1, "error": flashpoint_core::sanitize::for_log_truncated(&why, 300)})
                );
            }
        }
    }
    std::fs::create_dir_all(out).with_context(|| format!("creating {}", out.display()))?;
    let links = Links::files();
    let write = |name: &str, html: String| {
        let p = out.join(name);
        std::fs::write(&p, html).with_context(|| format!("writing {}", p.display()))
    };
    let list = store.list();
    write("index.html", page::index(&list, &links))?;
    for inc in &list {
        // The store takes only ids that name a file (letters, digits, - and _).
        write(&format!("{}.html", inc.id), page::incident(inc, &links))?;
    }
    Ok(Summary { incidents: list.len(), events, bad_lines })
}
