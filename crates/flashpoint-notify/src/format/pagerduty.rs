//! PagerDuty Events API v2 (`POST https://events.pagerduty.com/v2/enqueue`, answered `202`).
//!
//! `trigger` when an incident is first reported on the route and on each escalation; `resolve` when it is
//! resolved; plain status updates send nothing (a page is for a change that needs a person). `dedup_key` is the
//! incident id, so PagerDuty folds every trigger of one incident into one alert and the resolve closes it, and a
//! retried or replayed event is de-duplicated by PagerDuty. Severity: critical → `critical`, warning →
//! `warning`, watch → `info`. Limits: `summary` at most 1024 characters, `dedup_key` at most 255.

use super::{counts, evidence, observed_vs_baseline, percent, top_terms, Context};
use crate::router::{Notice, NoticeKind};
use crate::safe;
use flashpoint_core::detect::Severity;
use serde_json::{json, Value};

pub const MAX_SUMMARY: usize = 1024;
pub const MAX_DEDUP_KEY: usize = 255;

pub fn severity(s: Severity) -> &'static str {
    match s {
        Severity::Watch => "info",
        Severity::Warning => "warning",
        Severity::Critical => "critical",
    }
}

/// The event to send for a notice, or `None` for a plain update. The routing key is added at send time.
pub fn event(n: &Notice, ctx: &Context) -> Option<Value> {
    let e = &n.event;
    let dedup: String = e.incident_id.chars().take(MAX_DEDUP_KEY).collect();
    match n.kind {
        NoticeKind::Update => None,
        NoticeKind::Resolved => Some(json!({"event_action": "resolve", "dedup_key": dedup})),
        NoticeKind::Opened | NoticeKind::Escalated => {
            let summary = safe::plain(
                &format!(
                    "{} {}: {} {} ({}), {} negative",
                    super::severity_upper(e.severity),
                    e.entity,
                    e.signal.as_str(),
                    super::kind_phrase(n),
                    observed_vs_baseline(n),
                    percent(e.negative_share)
                ),
                MAX_SUMMARY,
            );
            let posts: Vec<Value> = evidence(n, 3)
                .into_iter()
                .map(|p| json!({"id": safe::plain(&p.id, 100), "text": safe::plain(&p.text, 500), "author": p.author.as_deref().map(|a| safe::plain(a, 60))}))
                .collect();
            let mut v = json!({
                "event_action": "trigger",
                "dedup_key": dedup,
                "payload": {
                    "summary": summary,
                    "source": "flashpoint",
                    "severity": severity(e.severity),
                    "timestamp": e.window_end,
                    "component": safe::plain(&e.entity, 200),
                    "group": "flashpoint",
                    "class": e.signal.as_str(),
                    "custom_details": {
                        "incident_id": e.incident_id,
                        "seq": e.seq,
                        "route": ctx.route,
                        "observed_vs_baseline": observed_vs_baseline(n),
                        "counts": counts(n),
                        "negative_share": e.negative_share,
                        "top_terms": top_terms(n, 5, safe::plain),
                        "open_for": n.open_for_ms().map(super::duration),
                        "evidence": posts,
                    }
                },
                "client": "Flashpoint",
            });
            if let Some(link) = ctx.grafana_link(n) {
                v["client_url"] = json!(link);
                v["links"] = json!([{"href": link, "text": "Flashpoint dashboard"}]);
            }
            Some(v)
        }
    }
}

/// Checks an event against the Events API v2 fields and limits.
pub fn check(v: &Value) -> Result<(), String> {
    if !v["routing_key"].as_str().is_some_and(|k| !k.is_empty()) {
        return Err("routing_key".into());
    }
    let dedup = v["dedup_key"].as_str().ok_or("dedup_key")?;
    if dedup.is_empty() || dedup.chars().count() > MAX_DEDUP_KEY {
        return Err("dedup_key length".into());
    }
    match v["event_action"].as_str() {
        Some("trigger") => {
            let p = &v["payload"];
            let summary = p["summary"].as_str().ok_or("payload.summary")?;
            if summary.is_empty() || summary.chars().count() > MAX_SUMMARY {
                return Err("payload.summary length".into());
            }
            if !p["source"].as_str().is_some_and(|s| !s.is_empty()) {
                return Err("payload.source".into());
            }
            if !matches!(p["severity"].as_str(), Some("critical" | "error" | "warning" | "info")) {
                return Err("payload.severity".into());
            }
            if let Some(t) = p.get("timestamp") {
                t.as_str().and_then(flashpoint_core::time::parse_rfc3339).ok_or("payload.timestamp")?;
            }
            Ok(())
        }
        Some("acknowledge" | "resolve") => Ok(()),
        other => Err(format!("event_action {other:?}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::format::testing::{event as ev, notice as mk};
    use flashpoint_core::event::EventKind;

    #[test]
    fn trigger_resolve_and_silence() {
        let ctx = Context::new("pages", None, "flashpoint");
        let mut t = event(&mk(NoticeKind::Opened, ev(EventKind::Opened, 0, Severity::Watch)), &ctx).unwrap();
        t["routing_key"] = json!("R0UT1NGKEY");
        check(&t).unwrap();
        assert_eq!(t["dedup_key"], "inc-1387cae96a0b8ab5");
        assert_eq!(t["payload"]["severity"], "info");
        assert!(!t.to_string().contains("<!channel>") || t["payload"]["summary"].as_str().is_some());
        assert!(!t["payload"]["summary"].as_str().unwrap().contains('\n'));
        let mut r = event(&mk(NoticeKind::Resolved, ev(EventKind::Resolved, 8, Severity::Critical)), &ctx).unwrap();
        r["routing_key"] = json!("R0UT1NGKEY");
        check(&r).unwrap();
        assert_eq!(
            (r["event_action"].as_str(), r["dedup_key"].as_str()),
            (Some("resolve"), Some("inc-1387cae96a0b8ab5"))
        );
        assert!(event(&mk(NoticeKind::Update, ev(EventKind::Updated, 2, Severity::Watch)), &ctx).is_none());
        let e = event(&mk(NoticeKind::Escalated, ev(EventKind::Updated, 3, Severity::Critical)), &ctx).unwrap();
        assert_eq!(
            (e["event_action"].as_str(), e["payload"]["severity"].as_str()),
            (Some("trigger"), Some("critical"))
        );
    }
}
