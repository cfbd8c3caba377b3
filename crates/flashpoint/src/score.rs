//! `flashpoint score`: JSON Lines in, one sentiment record per line out, in input order.
//!
//! Lines are read in batches so the scorer sees batches (what the transformer backend needs); a bad line
//! becomes an error record on stderr and the run goes on, because one malformed record in a million must
//! not cost the other 999,999. The exit status reports whether any line failed. A text in a language the scorer
//! does not read is not scored: its record says `"label":"unscored"` and names the language.

use anyhow::{Context, Result};
use flashpoint_core::lang::{LangCode, LanguageGate};
use flashpoint_core::normalize;
use flashpoint_core::sentiment::{Scorer, Sentiment};
use serde::Deserialize;
use serde_json::value::RawValue;
use std::borrow::Cow;
use std::io::{BufRead, Write};

const BATCH: usize = 1024;

#[derive(Deserialize)]
struct In<'a> {
    #[serde(borrow)]
    id: Option<&'a RawValue>,
    #[serde(borrow)]
    text: Option<&'a RawValue>,
    /// The platform's language tag, if the line carries one.
    #[serde(default)]
    lang: Option<serde_json::Value>,
}

/// One accepted line: its id as written, the text to score and its language tag.
struct Item {
    id: Box<RawValue>,
    text: String,
    lang: Option<String>,
}

pub struct Stats {
    pub ok: u64,
    pub failed: u64,
}

fn parse_line(bytes: &[u8]) -> Result<Item, String> {
    let line = std::str::from_utf8(bytes).map_err(|e| format!("line is not valid UTF-8: {e}"))?;
    let rec: In = serde_json::from_str(line).map_err(|e| format!("not a JSON object: {e}"))?;
    let text_raw = rec.text.ok_or_else(|| "missing field `text`".to_string())?;
    let text: Cow<str> =
        serde_json::from_str(text_raw.get()).map_err(|_| "field `text` is not a string".to_string())?;
    let id = match rec.id {
        Some(r) => r.to_owned(),
        None => RawValue::from_string("null".into()).expect("null is JSON"),
    };
    let lang = match rec.lang {
        None | Some(serde_json::Value::Null) => None,
        Some(serde_json::Value::String(s)) => Some(s),
        Some(_) => return Err("field `lang` is not a string".to_string()),
    };
    Ok(Item { id, text: text.into_owned(), lang })
}

fn write_record(out: &mut impl Write, id: &RawValue, s: &Sentiment, lang: Option<LangCode>) -> std::io::Result<()> {
    // The id is echoed as written, unless it holds characters a terminal acts on (JSON allows C1 controls and
    // bidi overrides raw in strings): then it is re-encoded with them escaped, the same value.
    let raw = id.get();
    let safe: Cow<str> = if raw.is_ascii() || !raw.chars().any(flashpoint_core::sanitize::is_json_unsafe) {
        Cow::Borrowed(raw)
    } else {
        let v: serde_json::Value = serde_json::from_str(raw).map_err(std::io::Error::other)?;
        Cow::Owned(flashpoint_core::sanitize::to_json_string(&v).map_err(std::io::Error::other)?)
    };
    // Field order is part of the contract: id, label, compound, neg, neu, pos (then lang, for unscored texts).
    write!(
        out,
        "{{\"id\":{},\"label\":\"{}\",\"compound\":{},\"neg\":{},\"neu\":{},\"pos\":{}",
        safe,
        s.label.as_str(),
        fmt_f64(s.compound),
        fmt_f64(s.neg),
        fmt_f64(s.neu),
        fmt_f64(s.pos)
    )?;
    match lang {
        // A LangCode is two or three ASCII letters: nothing to escape.
        Some(l) if !s.label.is_scored() => writeln!(out, ",\"lang\":\"{l}\"}}"),
        _ => writeln!(out, "}}"),
    }
}

/// Shortest round-trip representation, always with a decimal point (as Python's `json.dumps` prints).
fn fmt_f64(v: f64) -> String {
    format!("{v:?}")
}

pub fn run(input: Box<dyn BufRead>, scorer: &dyn Scorer, gate: &LanguageGate, raw: bool) -> Result<Stats> {
    let stdout = std::io::stdout();
    let mut out = std::io::BufWriter::new(stdout.lock());
    let stderr = std::io::stderr();
    let mut input = input;
    let mut stats = Stats { ok: 0, failed: 0 };
    let mut line_no = 0u64;
    let mut buf = Vec::new();
    let mut items: Vec<Item> = Vec::with_capacity(BATCH);
    let mut results = Vec::with_capacity(BATCH);
    loop {
        items.clear();
        let mut eof = false;
        while items.len() < BATCH {
            buf.clear();
            let n = input.read_until(b'\n', &mut buf).context("reading input")?;
            if n == 0 {
                eof = true;
                break;
            }
            line_no += 1;
            let mut line = buf.as_slice();
            if let Some(l) = line.strip_suffix(b"\n") {
                line = l.strip_suffix(b"\r").unwrap_or(l);
            }
            match parse_line(line) {
                Ok(item) => items.push(item),
                Err(reason) => {
                    stats.failed += 1;
                    // Errors must be ordered with respect to the output for a reader following both streams.
                    out.flush()?;
                    let rec = serde_json::json!({"line": line_no, "error": reason});
                    let mut err = stderr.lock();
                    flashpoint_core::sanitize::write_json_line(&mut err, &rec)?;
                }
            }
        }
        if !items.is_empty() {
            let normalized: Vec<Cow<str>> = items
                .iter()
                .map(|i| if raw { Cow::Borrowed(i.text.as_str()) } else { normalize::for_scoring(&i.text) })
                .collect();
            let verdicts: Vec<_> =
                items.iter().zip(&normalized).map(|(i, t)| gate.judge(i.lang.as_deref(), t)).collect();
            let texts: Vec<&str> =
                normalized.iter().zip(&verdicts).filter(|(_, v)| v.scored).map(|(c, _)| c.as_ref()).collect();
            results.clear();
            if !texts.is_empty() {
                scorer.score_batch(&texts, &mut results).context("scoring a batch")?;
            }
            let mut scored = results.iter();
            for (item, v) in items.iter().zip(&verdicts) {
                let s = if v.scored {
                    *scored.next().context("scorer returned too few results")?
                } else {
                    Sentiment::UNSCORED
                };
                write_record(&mut out, &item.id, &s, v.lang)?;
            }
            stats.ok += items.len() as u64;
        }
        if eof {
            break;
        }
    }
    out.flush()?;
    Ok(stats)
}
