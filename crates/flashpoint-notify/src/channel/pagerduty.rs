//! PagerDuty Events API v2 (`POST https://events.pagerduty.com/v2/enqueue`, answered `202`).
//!
//! `trigger` when an incident is first reported on the route and on each escalation; `resolve` when it is
//! resolved; plain status updates send nothing (a page is for a change that needs a person). `dedup_key` is the
//! incident id, so PagerDuty folds every trigger of one incident into one alert and the resolve closes it, and a
//! retried or replayed event is de-duplicated by PagerDuty. Severity: critical → `critical`, warning →
//! `warning`, watch → `info`. Limits: `summary` at most 1024 characters, `dedup_key` at most 255.

use super::{parse_table, Build, BuildError, Channel, ChannelSpec, HttpRequest, Kind, Request};
use crate::format::{counts, evidence, observed_vs_baseline, percent, post_link, what_people_say, Context};
use crate::message::Message;
use crate::message::{Notice, NoticeKind};
use crate::safe;
use crate::secret::{Secret, SecretRef};
use flashpoint_core::detect::Severity;
use serde::Deserialize;
use serde_json::{json, Value};

pub const EVENTS_URL: &str = "https://events.pagerduty.com/v2/enqueue";

pub const KIND: Kind = Kind { name: "pagerduty", parse: |v| Ok(Box::new(parse_table::<PagerDutyConfig>(v)?)) };

#[derive(Clone, Debug, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PagerDutyConfig {
    pub name: String,
    /// The integration's routing key (a credential).
    pub routing_key: SecretRef,
    /// The Events API endpoint (not secret; changed for EU accounts or tests).
    #[serde(default = "events_url")]
    pub url: String,
}

fn events_url() -> String {
    EVENTS_URL.into()
}

impl ChannelSpec for PagerDutyConfig {
    fn name(&self) -> &str {
        &self.name
    }

    fn secrets(&self) -> Vec<(&'static str, &SecretRef)> {
        vec![("routing_key", &self.routing_key)]
    }

    fn validate(&self) -> Result<(), String> {
        crate::delivery::check_url(&self.url).map_err(|e| format!("url: `{}`: {e}", self.url))
    }

    fn build(&self, b: &Build<'_>) -> Result<Box<dyn Channel>, BuildError> {
        Ok(Box::new(PagerDuty { url: Secret::new(self.url.clone()), key: b.secret("routing_key", &self.routing_key)? }))
    }
}

struct PagerDuty {
    url: Secret,
    key: Secret,
}

impl PagerDuty {
    fn request(&self, mut v: Value) -> Request {
        v["routing_key"] = Value::String(self.key.expose().to_string());
        Request::Http(HttpRequest::json(&self.url, &v))
    }
}

impl Channel for PagerDuty {
    fn render(&mut self, msg: &Message, ctx: &Context) -> Result<Vec<Request>, String> {
        Ok(msg.notices().into_iter().filter_map(|n| event(n, ctx)).map(|v| self.request(v)).collect())
    }

    /// A test trigger and its resolve at once, so a test leaves no open alert behind.
    fn render_test(&mut self, n: &Notice, ctx: &Context) -> Result<Vec<Request>, String> {
        let trigger = event(n, ctx).ok_or("a test notice is an opening")?;
        let resolve = json!({"event_action": "resolve", "dedup_key": trigger["dedup_key"].clone()});
        Ok(vec![self.request(trigger), self.request(resolve)])
    }
}

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
        // A reminder is for the people on the incident's channels; the page is already open.
        NoticeKind::Update | NoticeKind::Reminder => None,
        NoticeKind::Resolved => Some(json!({"event_action": "resolve", "dedup_key": dedup})),
        NoticeKind::Opened | NoticeKind::Escalated => {
            let summary = safe::plain(
                &format!(
                    "{} {}: {} {} ({}), {} negative",
                    crate::format::severity_upper(e.severity),
                    e.entity,
                    e.signal.as_str(),
                    crate::format::kind_phrase(n),
                    observed_vs_baseline(n),
                    percent(e.negative_share)
                ),
                MAX_SUMMARY,
            );
            let posts: Vec<Value> = evidence(n, 3)
                .into_iter()
                .map(|p| {
                    let mut v = json!({"id": safe::plain(&p.id, 100), "text": safe::plain(&p.text, 500), "author": p.author.as_deref().map(|a| safe::plain(a, 60))});
                    // Only when present, so incidents from sources without links read exactly as before.
                    if let Some(u) = post_link(p) {
                        v["url"] = u.into();
                    }
                    if let Some(u) = p.author_url.as_deref().and_then(safe::link) {
                        v["author_url"] = u.into();
                    }
                    v
                })
                .collect();
            let mut v = json!({
                "event_action": "trigger",
                "dedup_key": dedup,
                "payload": {
                    "summary": summary,
                    "source": "flashpoint",
                    "severity": severity(e.severity),
                    "timestamp": flashpoint_core::time::format_rfc3339(e.window_end),
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
                        "what_people_say": what_people_say(n, 5, safe::plain),
                        "class": n.event.class.as_str(),
                        "open_for": crate::format::duration(n.open_for_ms()),
                        "evidence": posts,
                    }
                },
                "client": "Flashpoint",
            });
            let links: Vec<Value> =
                [(ctx.incident_link(n), "Flashpoint incident page"), (ctx.grafana_link(n), "Flashpoint dashboard")]
                    .into_iter()
                    .filter_map(|(href, text)| href.map(|h| json!({"href": h, "text": text})))
                    .collect();
            if let Some(first) = links.first() {
                // The incident's own page when there is one: it is what the responder opens first.
                v["client_url"] = first["href"].clone();
                v["links"] = json!(links);
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
    use crate::format::testing::{event as ev, notice as mk, with_links};
    use flashpoint_core::event::EventKind;

    #[test]
    fn links_the_incident_page() {
        let ctx =
            Context::new("pages", Some("https://g.example"), "flashpoint").with_pages(Some("https://fp.example.com"));
        let v = event(&mk(NoticeKind::Opened, ev(EventKind::Opened, 0, Severity::Critical)), &ctx).unwrap();
        assert_eq!(v["client_url"], "https://fp.example.com/incidents/inc-1387cae96a0b8ab5");
        assert_eq!(v["links"][0]["href"], "https://fp.example.com/incidents/inc-1387cae96a0b8ab5");
        assert!(v["links"][1]["href"].as_str().unwrap().starts_with("https://g.example/"));
    }

    #[test]
    fn evidence_carries_safe_links_only() {
        let ctx = Context::new("pages", None, "flashpoint");
        let e = with_links(
            ev(EventKind::Opened, 0, Severity::Watch),
            "p2",
            "https://x.com/ann/status/2",
            "https://x.com/ann",
        );
        let t = event(&mk(NoticeKind::Opened, e), &ctx).unwrap();
        let posts = t["payload"]["custom_details"]["evidence"].as_array().unwrap();
        let p2 = posts.iter().find(|p| p["id"] == "p2").unwrap();
        assert_eq!(
            (&p2["url"], &p2["author_url"]),
            (&json!("https://x.com/ann/status/2"), &json!("https://x.com/ann"))
        );
        assert!(posts.iter().filter(|p| p["id"] != "p2").all(|p| p.get("url").is_none()));
        let e = with_links(ev(EventKind::Opened, 0, Severity::Watch), "p2", "javascript:alert(1)", "http://x.com/a");
        let t = event(&mk(NoticeKind::Opened, e), &ctx).unwrap();
        assert!(t["payload"]["custom_details"]["evidence"]
            .as_array()
            .unwrap()
            .iter()
            .all(|p| p.get("url").is_none() && p.get("author_url").is_none()));
    }

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
