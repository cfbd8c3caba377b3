//! Microsoft Teams workflow webhook ("Post to a channel when a webhook request is received"): an Adaptive Card.
//!
//! The body is a `message` with one attachment of content type `application/vnd.microsoft.card.adaptive`
//! holding an Adaptive Card (schema 1.4; Teams renders up to 1.5). The workflow answers `202 Accepted`. Layout:
//! a title `TextBlock`, a `FactSet` (severity, signal, observed vs baseline, counts, negative share, top terms,
//! open for), the evidence posts as `RichTextBlock`s of `TextRun`s (runs never parse markdown, so a post's
//! `[label](url)` or `**bold**` is shown as typed) and an `Action.OpenUrl` to Grafana. All post-derived text also
//! goes through [`crate::safe::chat`], so no markup forms even where Teams parses markdown (`TextBlock`,
//! `FactSet` values). Teams refuses cards over about 28 KB: [`check_limits`] holds payloads to that.

use super::{parse_table, Build, BuildError, Channel, ChannelSpec, HttpRequest, Kind, Request};
use crate::format::{
    attribution, closing_summary, counts, evidence, observed_vs_baseline, percent, post_link, title, what_people_say,
    Context,
};
use crate::message::Message;
use crate::message::{Notice, NoticeKind};
use crate::safe;
use crate::secret::{Secret, SecretRef};
use flashpoint_core::window::EvidencePost;
use serde::Deserialize;
use serde_json::{json, Value};

pub const KIND: Kind = Kind { name: "teams", parse: |v| Ok(Box::new(parse_table::<TeamsConfig>(v)?)) };

#[derive(Clone, Debug, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TeamsConfig {
    pub name: String,
    /// The workflow URL is a credential: from an environment variable or a file.
    pub url: SecretRef,
}

impl ChannelSpec for TeamsConfig {
    fn name(&self) -> &str {
        &self.name
    }

    fn secrets(&self) -> Vec<(&'static str, &SecretRef)> {
        vec![("url", &self.url)]
    }

    fn build(&self, b: &Build<'_>) -> Result<Box<dyn Channel>, BuildError> {
        Ok(Box::new(Teams { url: b.secret_url("url", &self.url)? }))
    }
}

struct Teams {
    url: Secret,
}

impl Channel for Teams {
    fn render(&mut self, msg: &Message, ctx: &Context) -> Result<Vec<Request>, String> {
        let card = match msg {
            Message::Notice(n) => notice(n, ctx),
            Message::Digest { items, from, to } => digest(items, *from, *to, ctx),
        };
        Ok(vec![Request::Http(HttpRequest::json(&self.url, &card))])
    }
}

pub const CARD_VERSION: &str = "1.4";
pub const MAX_PAYLOAD_BYTES: usize = 28 * 1024;
const EVIDENCE_CHARS: usize = 400;

fn facts(n: &Notice) -> Value {
    let e = &n.event;
    let f = |t: &str, v: String| json!({"title": t, "value": v});
    json!({"type": "FactSet", "facts": [
        f("Severity", e.severity.as_str().into()),
        f("Signal", e.signal.as_str().into()),
        f("Observed", observed_vs_baseline(n)),
        f("Counts", counts(n)),
        f("Negative share", percent(e.negative_share)),
        f("Open for", crate::format::duration(n.open_for_ms())),
        f("What people say", what_people_say(n, 5, safe::chat)),
    ]})
}

fn notice_body(n: &Notice, with_evidence: bool) -> Vec<Value> {
    let mut body = vec![json!({
        "type": "TextBlock", "text": title(n, safe::chat), "weight": "Bolder", "size": "Medium", "wrap": true,
        "color": if n.kind == NoticeKind::Resolved { "Good" } else { "Attention" }
    })];
    if let Some(c) = crate::format::what_changed(n) {
        body.push(json!({"type": "TextBlock", "text": c, "wrap": true}));
    }
    if n.kind == NoticeKind::Resolved {
        body.push(json!({"type": "TextBlock", "text": format!("Resolved: {}", closing_summary(n)), "wrap": true}));
    }
    body.push(facts(n));
    if with_evidence {
        for p in evidence(n, 3) {
            body.push(json!({"type": "RichTextBlock", "inlines": evidence_inlines(p)}));
        }
    }
    body
}

/// A TextRun opens `url` through the card's own `selectAction` rather than Markdown, which TextRuns do not parse:
/// the URL stays a JSON string that no text can reach into.
fn open_url(mut run: Value, url: Option<&str>) -> Value {
    if let Some(u) = url {
        run["selectAction"] = json!({"type": "Action.OpenUrl", "url": u});
    }
    run
}

/// The quote, linked to the post, then the attribution with `@author` linked to the author, each where present.
fn evidence_inlines(p: &EvidencePost) -> Vec<Value> {
    let quote =
        json!({"type": "TextRun", "text": format!("“{}”", safe::chat(&p.text, EVIDENCE_CHARS)), "italic": true});
    let mut inlines = vec![open_url(quote, post_link(p))];
    let by = attribution(p, safe::chat);
    let author_url = p.author_url.as_deref().and_then(safe::link);
    // The attribution is split around the name so only `@author` is the author's link.
    let name = p.author.as_deref().map(|a| format!("@{}", safe::chat(a, 60)));
    match (author_url, name.as_deref().and_then(|n| by.split_once(n).map(|(pre, post)| (n, pre, post)))) {
        (Some(u), Some((n, pre, post))) => {
            inlines.push(json!({"type": "TextRun", "text": format!(" {pre}"), "isSubtle": true}));
            inlines.push(open_url(json!({"type": "TextRun", "text": n, "isSubtle": true}), Some(u)));
            inlines.push(json!({"type": "TextRun", "text": post, "isSubtle": true}));
        }
        _ => inlines.push(json!({"type": "TextRun", "text": format!(" {by}"), "isSubtle": true})),
    }
    inlines
}

fn card(body: Vec<Value>, actions: Vec<Value>) -> Value {
    json!({
        "type": "message",
        "attachments": [{
            "contentType": "application/vnd.microsoft.card.adaptive",
            "contentUrl": null,
            "content": {
                "$schema": "http://adaptivecards.io/schemas/adaptive-card.json",
                "type": "AdaptiveCard",
                "version": CARD_VERSION,
                "body": body,
                "actions": actions,
            }
        }]
    })
}

/// The card's buttons: the incident's page, then the dashboard, where configured.
fn link_actions(n: &Notice, ctx: &Context) -> Vec<Value> {
    let page =
        ctx.incident_link(n).map(|u| json!({"type": "Action.OpenUrl", "title": "Open the incident page", "url": u}));
    let grafana = ctx.grafana_link(n).map(|u| json!({"type": "Action.OpenUrl", "title": "Open in Grafana", "url": u}));
    page.into_iter().chain(grafana).collect()
}

pub fn notice(n: &Notice, ctx: &Context) -> Value {
    let mut body = notice_body(n, true);
    body.push(json!({"type": "TextBlock", "isSubtle": true, "size": "Small", "wrap": true, "text": format!(
        "Flashpoint · incident {} · event {} · route {}", safe::chat(&n.event.incident_id, 80), n.event.seq, ctx.route
    )}));
    card(body, link_actions(n, ctx))
}

pub fn digest(items: &[Notice], from: i64, to: i64, ctx: &Context) -> Value {
    let mut body = vec![
        json!({"type": "TextBlock", "text": format!("Flashpoint digest: {} incident(s)", items.len()), "weight": "Bolder", "size": "Medium"}),
        json!({"type": "TextBlock", "text": format!("{} · route {}", crate::format::time_range(from, to), ctx.route), "isSubtle": true, "wrap": true}),
    ];
    let mut shown = 0;
    for n in items {
        let c = json!({"type": "Container", "separator": true, "items": notice_body(n, false)});
        // Leave room under the size limit for the envelope and the "more" line.
        if serde_json::to_vec(&card(body.clone(), vec![])).map_or(0, |b| b.len()) + c.to_string().len() + 512
            > MAX_PAYLOAD_BYTES
        {
            break;
        }
        body.push(c);
        shown += 1;
    }
    if shown < items.len() {
        body.push(json!({"type": "TextBlock", "text": format!("… and {} more incident(s) not shown", items.len() - shown), "wrap": true}));
    }
    // A button per incident shown (Teams displays a handful: the first five), to its page.
    let actions = items[..shown]
        .iter()
        .filter_map(|n| {
            let title = format!("Incident page: {}", safe::chat(&n.event.entity, 40));
            ctx.incident_link(n).map(|u| json!({"type": "Action.OpenUrl", "title": title, "url": u}))
        })
        .take(5)
        .collect();
    card(body, actions)
}

/// Checks the envelope, the card's required fields, the element types used and the payload size.
pub fn check_limits(msg: &Value) -> Result<(), String> {
    let size = msg.to_string().len();
    if size > MAX_PAYLOAD_BYTES {
        return Err(format!("{size} bytes > {MAX_PAYLOAD_BYTES}"));
    }
    if msg["type"] != "message" {
        return Err("type must be message".into());
    }
    let att = msg["attachments"].as_array().filter(|a| a.len() == 1).ok_or("exactly one attachment")?;
    if att[0]["contentType"] != "application/vnd.microsoft.card.adaptive" {
        return Err("contentType".into());
    }
    let c = &att[0]["content"];
    if c["type"] != "AdaptiveCard" || c["version"].as_str().is_none() {
        return Err("content must be an AdaptiveCard with a version".into());
    }
    fn check_elements(items: &[Value]) -> Result<(), String> {
        for el in items {
            match el["type"].as_str() {
                Some("TextBlock") if el["text"].is_string() => {}
                Some("FactSet") => {
                    for f in el["facts"].as_array().ok_or("FactSet without facts")? {
                        if !f["title"].is_string() || !f["value"].is_string() {
                            return Err("fact without title/value".into());
                        }
                    }
                }
                Some("RichTextBlock") => {
                    for i in el["inlines"].as_array().ok_or("RichTextBlock without inlines")? {
                        if i["type"] != "TextRun" || !i["text"].is_string() {
                            return Err("inline must be a TextRun with text".into());
                        }
                        let a = &i["selectAction"];
                        if !a.is_null()
                            && (a["type"] != "Action.OpenUrl" || a["url"].as_str().and_then(safe::link).is_none())
                        {
                            return Err("a TextRun's selectAction must be Action.OpenUrl with a safe https url".into());
                        }
                    }
                }
                Some("Container") => check_elements(el["items"].as_array().ok_or("Container without items")?)?,
                other => return Err(format!("unexpected element {other:?}")),
            }
        }
        Ok(())
    }
    check_elements(c["body"].as_array().ok_or("body")?)?;
    for a in c["actions"].as_array().into_iter().flatten() {
        if a["type"] != "Action.OpenUrl" || !a["url"].as_str().is_some_and(|u| u.starts_with("http")) {
            return Err("actions must be Action.OpenUrl with an http(s) url".into());
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::format::testing::{event, notice as mk};
    use flashpoint_core::detect::Severity;
    use flashpoint_core::event::EventKind;

    #[test]
    fn links_the_incident_page() {
        let ctx = Context::new("r", None, "flashpoint").with_pages(Some("https://fp.example.com"));
        let n = mk(NoticeKind::Opened, event(EventKind::Opened, 0, Severity::Critical));
        let v = notice(&n, &ctx);
        check_limits(&v).unwrap();
        assert_eq!(
            v["attachments"][0]["content"]["actions"][0]["url"],
            "https://fp.example.com/incidents/inc-1387cae96a0b8ab5"
        );
        let d = digest(&[n], 0, 1, &ctx);
        check_limits(&d).unwrap();
        assert_eq!(
            d["attachments"][0]["content"]["actions"][0]["url"],
            "https://fp.example.com/incidents/inc-1387cae96a0b8ab5"
        );
    }

    #[test]
    fn card_is_valid_and_inert() {
        let ctx = Context::new("r", Some("http://grafana:3000"), "flashpoint");
        let n = mk(NoticeKind::Opened, event(EventKind::Opened, 0, Severity::Critical));
        let v = notice(&n, &ctx);
        check_limits(&v).unwrap();
        let s = v.to_string();
        for want in [
            "Acme Air",
            "CRITICAL",
            "62.0% vs baseline 12.0%",
            "Lost my bag again",
            "refund (31)",
            "var-entity=Acme%20Air",
        ] {
            assert!(s.contains(want), "{want} missing");
        }
        assert!(s.contains("evil.example"));
        for bad in ["<!", "<@", "<http", "](", "**", "*Severity:*", "@here", "\\u202e", "<script", "<at>"] {
            assert!(!s.contains(bad), "{bad:?} in {s}");
        }
        let mut e = event(EventKind::Updated, 2, Severity::Warning);
        e.evidence.most_negative[0].text = "x".repeat(50_000);
        let n = mk(NoticeKind::Update, e);
        check_limits(&notice(&n, &ctx)).unwrap();
        let items: Vec<Notice> = (0..200).map(|_| n.clone()).collect();
        let d = digest(&items, 0, 1, &ctx);
        check_limits(&d).unwrap();
        assert!(d.to_string().contains("more incident(s) not shown"));
    }

    /// The inlines of the evidence block quoting `needle`.
    fn inlines<'a>(v: &'a Value, needle: &str) -> &'a Vec<Value> {
        let body = v["attachments"][0]["content"]["body"].as_array().unwrap();
        body.iter()
            .filter_map(|b| b["inlines"].as_array())
            .find(|i| i[0]["text"].as_str().is_some_and(|t| t.contains(needle)))
            .unwrap()
    }

    #[test]
    fn evidence_links_to_the_post_and_its_author() {
        use crate::format::testing::with_links;
        let ctx = Context::new("r", None, "flashpoint");
        let e = with_links(
            event(EventKind::Opened, 0, Severity::Critical),
            "p2",
            "https://x.com/ann/status/2?s=1&t=2",
            "https://x.com/ann",
        );
        let v = notice(&mk(NoticeKind::Opened, e), &ctx);
        check_limits(&v).unwrap();
        let i = inlines(&v, "Lost my bag");
        assert_eq!(
            i[0]["selectAction"],
            json!({"type": "Action.OpenUrl", "url": "https://x.com/ann/status/2?s=1&t=2"})
        );
        let linked: Vec<&Value> = i[1..].iter().filter(|r| !r["selectAction"].is_null()).collect();
        assert_eq!(linked.len(), 1);
        assert_eq!(linked[0]["text"], "@user＿p2");
        assert_eq!(linked[0]["selectAction"]["url"], "https://x.com/ann");
        let all: String = i.iter().map(|r| r["text"].as_str().unwrap()).collect();
        assert_eq!(all, "“Lost my bag again, 3 hours on hold” — @user＿p2 (1200 followers), 2026-03-04T14:05:00.000Z");
        // Without links, as before: two runs, no actions.
        let plain = inlines(&v, "Flight AA12");
        assert_eq!(plain.len(), 2);
        assert!(plain.iter().all(|r| r["selectAction"].is_null()));
    }

    #[test]
    fn hostile_urls_make_no_link() {
        use crate::format::testing::{with_links, HOSTILE_URLS};
        let ctx = Context::new("r", None, "flashpoint");
        for bad in HOSTILE_URLS {
            let e = with_links(event(EventKind::Opened, 0, Severity::Critical), "p2", bad, bad);
            let v = notice(&mk(NoticeKind::Opened, e), &ctx);
            check_limits(&v).unwrap();
            assert!(!v.to_string().contains("selectAction"), "{bad:?}");
        }
        // And a card that carries one anyway is refused before it is sent.
        let mut v = notice(&mk(NoticeKind::Opened, event(EventKind::Opened, 0, Severity::Critical)), &ctx);
        let body = v["attachments"][0]["content"]["body"].as_array_mut().unwrap();
        let block = body.iter_mut().find(|b| b["type"] == "RichTextBlock").unwrap();
        block["inlines"][0]["selectAction"] = json!({"type": "Action.OpenUrl", "url": "javascript:alert(1)"});
        assert!(check_limits(&v).is_err());
    }
}
