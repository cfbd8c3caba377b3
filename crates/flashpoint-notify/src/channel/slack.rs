//! Slack incoming webhook: a Block Kit message.
//!
//! `POST` the JSON to the webhook URL; Slack answers `200 ok`. Layout: a `header` (severity, entity, what
//! happened), a `section` with `fields` (severity, signal, observed vs baseline, counts, negative share, top
//! terms, open for), up to three quoted evidence posts as `plain_text` sections, a Grafana button and a
//! `context` line with the incident id. `text` is the notification fallback. Block Kit limits, checked by
//! [`check_limits`]: at most 50 blocks; header text 150 characters; section text 3000; at most 10 fields of
//! 2000 each; at most 10 context elements; button text 75, button URL 3000. Post text only ever goes into
//! `plain_text` objects, and through [`crate::safe::slack`] first.

use super::{parse_table, Build, BuildError, Channel, ChannelSpec, Failure, HttpRequest, Kind, Request};
use crate::format::{
    attribution, attribution_linked, closing_summary, counts, evidence, observed_vs_baseline, percent, post_link,
    title, what_people_say, Context,
};
use crate::message::Message;
use crate::message::{Notice, NoticeKind};
use crate::safe;
use crate::secret::{Secret, SecretRef};
use flashpoint_core::window::EvidencePost;
use serde::Deserialize;
use serde_json::{json, Value};
use std::collections::HashMap;

pub const KIND: Kind = Kind { name: "slack", parse: |v| Ok(Box::new(parse_table::<SlackConfig>(v)?)) };

pub const API_URL: &str = "https://slack.com/api";

/// Either an incoming webhook (`url`), or the Web API with a bot token (`token` and `channel`): then each
/// incident is one thread (see [`WebApi`]).
#[derive(Clone, Debug, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SlackConfig {
    pub name: String,
    /// The incoming webhook URL (a credential).
    pub url: Option<SecretRef>,
    /// A bot token (`xoxb-…`, scope `chat:write`) for the Web API.
    pub token: Option<SecretRef>,
    /// With `token`: the channel to post in (an id such as `C0123ABCD`, or `#name`).
    pub channel: Option<String>,
    /// The Web API's base URL (tests point it at a local receiver).
    #[serde(default = "api_url")]
    pub api_url: String,
}

fn api_url() -> String {
    API_URL.into()
}

impl ChannelSpec for SlackConfig {
    fn name(&self) -> &str {
        &self.name
    }

    fn secrets(&self) -> Vec<(&'static str, &SecretRef)> {
        self.url.iter().map(|s| ("url", s)).chain(self.token.iter().map(|s| ("token", s))).collect()
    }

    fn validate(&self) -> Result<(), String> {
        match (&self.url, &self.token, &self.channel) {
            (Some(_), None, None) => Ok(()),
            (None, Some(_), Some(c)) if !c.is_empty() => {
                crate::delivery::check_url(&self.api_url).map_err(|e| format!("api_url: `{}`: {e}", self.api_url))
            }
            (None, Some(_), _) => Err("channel: the Web API (token) needs the channel to post in".into()),
            (Some(_), Some(_), _) => Err("url, token: one or the other (webhook or Web API), not both".into()),
            (Some(_), None, Some(_)) => Err("channel: only with token (a webhook posts where it was made for)".into()),
            (None, None, _) => Err("url: an incoming webhook `url`, or a bot `token` and `channel`".into()),
        }
    }

    fn build(&self, b: &Build<'_>) -> Result<Box<dyn Channel>, BuildError> {
        if let Some(token) = &self.token {
            return Ok(Box::new(WebApi {
                api: self.api_url.trim_end_matches('/').to_string(),
                token: b.secret("token", token)?,
                channel: self.channel.clone().unwrap_or_default(),
                threads: HashMap::new(),
            }));
        }
        let url = self.url.as_ref().ok_or_else(|| BuildError::Other("url: missing".into()))?;
        Ok(Box::new(Webhook { url: b.secret_url("url", url)? }))
    }
}

fn payload(msg: &Message, ctx: &Context) -> Value {
    match msg {
        Message::Notice(n) => notice(n, ctx),
        Message::Digest { items, from, to } => digest(items, *from, *to, ctx),
    }
}

struct Webhook {
    url: Secret,
}

impl Channel for Webhook {
    fn render(&mut self, msg: &Message, ctx: &Context) -> Result<Vec<Request>, String> {
        Ok(vec![Request::Http(HttpRequest::json(&self.url, &payload(msg, ctx)))])
    }
}

/// The Web API: an incident's first message (`chat.postMessage`) starts a thread; each later one is a reply in
/// it (`thread_ts` = the opening's `ts`; an escalation also goes to the channel, `reply_broadcast`), and the
/// opening is edited to the incident's current state (`chat.update`), so the channel shows one line per
/// incident. Slack answers `200` with `{"ok": false, "error": …}` for a refused call: that is a failure here.
struct WebApi {
    api: String,
    token: Secret,
    channel: String,
    /// (route, incident) → (channel id, opening's ts).
    threads: HashMap<String, (String, String)>,
}

fn thread_key(route: &str, incident: &str) -> String {
    format!("{route}/{incident}")
}

impl WebApi {
    fn call(&self, method: &str, body: &Value, note: Option<String>) -> Request {
        let mut r = HttpRequest::json(&Secret::new(format!("{}/{method}", self.api)), body);
        r.headers = vec![("content-type", "application/json; charset=utf-8".into())];
        r.bearer = Some(self.token.clone());
        r.note = note;
        Request::Http(r)
    }
}

impl Channel for WebApi {
    fn render(&mut self, msg: &Message, ctx: &Context) -> Result<Vec<Request>, String> {
        let Message::Notice(n) = msg else {
            let mut body = payload(msg, ctx);
            body["channel"] = json!(self.channel);
            return Ok(vec![self.call("chat.postMessage", &body, None)]);
        };
        let key = thread_key(&ctx.route, &n.event.incident_id);
        let mut body = notice(n, ctx);
        match self.threads.get(&key) {
            None => {
                body["channel"] = json!(self.channel);
                Ok(vec![self.call("chat.postMessage", &body, Some(key))])
            }
            Some((channel, ts)) => {
                let mut reply = body.clone();
                reply["channel"] = json!(channel);
                reply["thread_ts"] = json!(ts);
                if n.kind == NoticeKind::Escalated {
                    reply["reply_broadcast"] = json!(true);
                }
                let mut root = body;
                root["channel"] = json!(channel);
                root["ts"] = json!(ts);
                Ok(vec![self.call("chat.postMessage", &reply, None), self.call("chat.update", &root, None)])
            }
        }
    }

    fn accepted(&mut self, req: &Request, body: &[u8]) -> Result<(), Failure> {
        let v: Value = serde_json::from_slice(body).unwrap_or(Value::Null);
        if v["ok"] != json!(true) {
            let error = v["error"].as_str().unwrap_or("no `ok` in the answer");
            return Err(Failure::Permanent(format!("Slack API: {}", safe::plain(error, 100))));
        }
        if let Request::Http(HttpRequest { note: Some(key), .. }) = req {
            if let (Some(c), Some(ts)) = (v["channel"].as_str(), v["ts"].as_str()) {
                self.threads.insert(key.clone(), (c.to_string(), ts.to_string()));
            }
        }
        Ok(())
    }

    fn state(&self) -> Vec<(String, String)> {
        let mut v: Vec<_> = self.threads.iter().map(|(k, (c, ts))| (k.clone(), format!("{c} {ts}"))).collect();
        v.sort();
        v
    }

    fn restore(&mut self, state: &[(String, String)]) {
        for (k, v) in state {
            if let Some((c, ts)) = v.split_once(' ') {
                self.threads.insert(k.clone(), (c.to_string(), ts.to_string()));
            }
        }
    }
}

pub const MAX_BLOCKS: usize = 50;
pub const MAX_HEADER: usize = 150;
pub const MAX_SECTION_TEXT: usize = 3000;
pub const MAX_FIELDS: usize = 10;
pub const MAX_FIELD_TEXT: usize = 2000;
pub const MAX_CONTEXT_ELEMENTS: usize = 10;
pub const MAX_BUTTON_TEXT: usize = 75;
pub const MAX_URL: usize = 3000;
/// Quoted posts are cut well below the section limit: an alert is skimmed, and the post id leads to the rest.
const EVIDENCE_CHARS: usize = 500;

fn plain(text: String) -> Value {
    json!({"type": "plain_text", "text": text, "emoji": true})
}

fn field(label: &str, value: String) -> Value {
    plain(safe::truncate(format!("{label}: {value}"), MAX_FIELD_TEXT))
}

fn notice_blocks(n: &Notice, ctx: &Context, with_header: bool) -> Vec<Value> {
    let e = &n.event;
    let mut blocks = Vec::new();
    if with_header {
        blocks.push(json!({"type": "header", "text": plain(safe::truncate(title(n, safe::slack), MAX_HEADER))}));
    } else {
        blocks.push(json!({"type": "section", "text": plain(safe::truncate(title(n, safe::slack), MAX_SECTION_TEXT))}));
    }
    if let Some(c) = crate::format::what_changed(n) {
        blocks.push(json!({"type": "section", "text": plain(safe::truncate(c, MAX_SECTION_TEXT))}));
    }
    if n.kind == NoticeKind::Resolved {
        blocks.push(json!({"type": "section", "text": plain(format!("Resolved: {}", closing_summary(n)))}));
    }
    blocks.push(json!({"type": "section", "fields": [
        field("Severity", e.severity.as_str().into()),
        field("Signal", e.signal.as_str().into()),
        field("Observed", observed_vs_baseline(n)),
        field("Counts", counts(n)),
        field("Negative share", percent(e.negative_share)),
        field("Open for", crate::format::duration(n.open_for_ms())),
        field("What people say", what_people_say(n, 5, safe::slack)),
    ]}));
    let posts = evidence(n, 3);
    if with_header && !posts.is_empty() {
        for p in posts {
            blocks.push(json!({"type": "section", "text": evidence_section(p)}));
        }
    }
    let buttons: Vec<Value> =
        [("Open the incident page", ctx.incident_link(n)), ("Open in Grafana", ctx.grafana_link(n))]
            .into_iter()
            .filter_map(|(label, url)| url.filter(|u| u.len() <= MAX_URL).map(|u| (label, u)))
            .map(|(label, url)| json!({"type": "button", "text": plain(label.into()), "url": url}))
            .collect();
    if !buttons.is_empty() {
        blocks.push(json!({"type": "actions", "elements": buttons}));
    }
    blocks
}

/// One evidence post. Unlinked it stays plain_text, as before links; with a link it must be mrkdwn, where
/// `safe::slack` keeps the post's own text just as inert (and `verbatim` stops Slack from turning URLs or
/// `#channel` in it into links of its own). A link is never cut: when both do not fit the section the author's
/// is dropped first, then the post's.
fn evidence_section(p: &EvidencePost) -> Value {
    let quote = format!("“{}”", safe::slack(&p.text, EVIDENCE_CHARS));
    let link = |label: String, url: &str| format!("<{}|{label}>", safe::slack_url(url));
    let by = attribution(p, safe::slack);
    let linked_by = p.author_url.as_deref().and_then(safe::link).map(|_| attribution_linked(p, safe::slack, link));
    let linked_quote = post_link(p).map(|u| link(quote.clone(), u));
    let candidates = [
        linked_quote.as_ref().zip(linked_by.as_ref()),
        linked_quote.as_ref().map(|q| (q, &by)),
        linked_by.as_ref().map(|b| (&quote, b)),
    ];
    for (q, b) in candidates.into_iter().flatten() {
        let text = format!("{q} {b}");
        if text.chars().count() <= MAX_SECTION_TEXT {
            return json!({"type": "mrkdwn", "text": text, "verbatim": true});
        }
    }
    plain(safe::truncate(format!("{quote} {by}"), MAX_SECTION_TEXT))
}

fn context_line(text: String) -> Value {
    json!({"type": "context", "elements": [{"type": "plain_text", "text": safe::truncate(text, MAX_SECTION_TEXT)}]})
}

/// The Block Kit message for one incident's notice.
pub fn notice(n: &Notice, ctx: &Context) -> Value {
    let mut blocks = notice_blocks(n, ctx, true);
    blocks.push(context_line(format!(
        "Flashpoint · incident {} · event {} · route {}",
        safe::slack(&n.event.incident_id, 80),
        n.event.seq,
        ctx.route
    )));
    json!({"text": safe::truncate(title(n, safe::slack), MAX_SECTION_TEXT), "blocks": blocks})
}

/// One message for several low-severity incidents; past the block limit the rest are counted, not shown.
pub fn digest(items: &[Notice], from: i64, to: i64, ctx: &Context) -> Value {
    let head = format!("Flashpoint digest: {} incident(s)", items.len());
    let mut blocks = vec![
        json!({"type": "header", "text": plain(safe::truncate(head.clone(), MAX_HEADER))}),
        context_line(format!("{} · route {}", crate::format::time_range(from, to), ctx.route)),
    ];
    let mut shown = 0;
    for n in items {
        let b = notice_blocks(n, ctx, false);
        // Keep two blocks free: a divider and the "and N more" line.
        if blocks.len() + b.len() + 2 > MAX_BLOCKS {
            break;
        }
        blocks.push(json!({"type": "divider"}));
        blocks.extend(b);
        shown += 1;
    }
    if shown < items.len() {
        blocks.push(context_line(format!("… and {} more incident(s) not shown", items.len() - shown)));
    }
    json!({"text": head, "blocks": blocks})
}

fn text_len(v: &Value) -> usize {
    v.get("text").and_then(Value::as_str).map_or(0, |s| s.chars().count())
}

/// Checks a message against Block Kit's documented limits; the tests run it on every payload they build or
/// receive.
pub fn check_limits(msg: &Value) -> Result<(), String> {
    let blocks = msg.get("blocks").and_then(Value::as_array).ok_or("no blocks array")?;
    if blocks.is_empty() || blocks.len() > MAX_BLOCKS {
        return Err(format!("{} blocks (1..={MAX_BLOCKS})", blocks.len()));
    }
    if msg.get("text").and_then(Value::as_str).is_none() {
        return Err("no fallback text".into());
    }
    for (i, b) in blocks.iter().enumerate() {
        let ty = b.get("type").and_then(Value::as_str).ok_or(format!("block {i}: no type"))?;
        match ty {
            "header" => {
                let t = b.get("text").ok_or(format!("block {i}: header without text"))?;
                if t["type"] != "plain_text" || text_len(t) == 0 || text_len(t) > MAX_HEADER {
                    return Err(format!("block {i}: header must be plain_text of 1..={MAX_HEADER} chars"));
                }
            }
            "section" => {
                let text = b.get("text");
                let fields = b.get("fields").and_then(Value::as_array);
                if text.is_none() && fields.is_none() {
                    return Err(format!("block {i}: section needs text or fields"));
                }
                if let Some(t) = text {
                    if text_len(t) == 0 || text_len(t) > MAX_SECTION_TEXT {
                        return Err(format!("block {i}: section text of {} chars", text_len(t)));
                    }
                }
                if let Some(f) = fields {
                    if f.len() > MAX_FIELDS {
                        return Err(format!("block {i}: {} fields", f.len()));
                    }
                    if let Some(bad) = f.iter().find(|t| text_len(t) == 0 || text_len(t) > MAX_FIELD_TEXT) {
                        return Err(format!("block {i}: field of {} chars", text_len(bad)));
                    }
                }
            }
            "context" => {
                let els = b.get("elements").and_then(Value::as_array).ok_or(format!("block {i}: no elements"))?;
                if els.is_empty() || els.len() > MAX_CONTEXT_ELEMENTS {
                    return Err(format!("block {i}: {} context elements", els.len()));
                }
            }
            "actions" => {
                for el in b.get("elements").and_then(Value::as_array).ok_or(format!("block {i}: no elements"))? {
                    if text_len(&el["text"]) > MAX_BUTTON_TEXT {
                        return Err(format!("block {i}: button text too long"));
                    }
                    if el["url"].as_str().map_or(0, str::len) > MAX_URL {
                        return Err(format!("block {i}: button url too long"));
                    }
                }
            }
            "divider" => {}
            other => return Err(format!("block {i}: unexpected type {other}")),
        }
        // Every text object is plain_text or mrkdwn.
        for t in b.get("fields").and_then(Value::as_array).into_iter().flatten().chain(b.get("text")) {
            if !matches!(t["type"].as_str(), Some("plain_text" | "mrkdwn")) {
                return Err(format!("block {i}: text object of type {}", t["type"]));
            }
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

    fn ctx() -> Context {
        Context::new("pages", Some("https://grafana.example.com/"), "flashpoint")
    }

    #[test]
    fn links_the_incident_page_before_the_dashboard() {
        let n = mk(NoticeKind::Opened, event(EventKind::Opened, 0, Severity::Critical));
        let v = notice(&n, &ctx().with_pages(Some("https://fp.example.com/")));
        check_limits(&v).unwrap();
        let actions = v["blocks"].as_array().unwrap().iter().find(|b| b["type"] == "actions").unwrap();
        assert_eq!(actions["elements"][0]["url"], "https://fp.example.com/incidents/inc-1387cae96a0b8ab5");
        assert!(actions["elements"][1]["url"].as_str().unwrap().starts_with("https://grafana.example.com/"));
        let mut e = event(EventKind::Opened, 0, Severity::Critical);
        e.incident_id = "../../x".into();
        let v = notice(&mk(NoticeKind::Opened, e), &ctx().with_pages(Some("https://fp.example.com")));
        assert!(!v.to_string().contains("fp.example.com"), "no link for an id that names no page");
    }

    #[test]
    fn notice_is_valid_block_kit_with_the_content() {
        let n = mk(NoticeKind::Opened, event(EventKind::Opened, 0, Severity::Critical));
        let v = notice(&n, &ctx());
        check_limits(&v).unwrap();
        let s = v.to_string();
        for want in [
            "Acme Air",
            "CRITICAL",
            "negative_share",
            "62.0% vs baseline 12.0% (5.2×)",
            "120 posts: 74 negative",
            "61.7%",
            "refund (31)",
            "Lost my bag again",
            "Open for: 5m",
            "inc-1387cae96a0b8ab5",
        ] {
            assert!(s.contains(want), "{want} missing in {s}");
        }
        let url = v["blocks"].as_array().unwrap().iter().find(|b| b["type"] == "actions").unwrap()["elements"][0]
            ["url"]
            .as_str()
            .unwrap()
            .to_string();
        assert_eq!(url, "https://grafana.example.com/d/flashpoint/flashpoint?var-entity=Acme%20Air&from=1772629260000&to=1772634060000");
    }

    #[test]
    fn hostile_posts_are_inert_in_every_block() {
        let n = mk(NoticeKind::Opened, event(EventKind::Opened, 0, Severity::Critical));
        let v = notice(&n, &ctx());
        let mut texts = Vec::new();
        fn walk(v: &Value, out: &mut Vec<String>) {
            match v {
                Value::Object(m) => {
                    for (k, x) in m {
                        if k == "text" {
                            if let Value::String(s) = x {
                                out.push(s.clone());
                            }
                        }
                        walk(x, out);
                    }
                }
                Value::Array(a) => a.iter().for_each(|x| walk(x, out)),
                _ => {}
            }
        }
        walk(&v, &mut texts);
        assert!(texts.iter().any(|t| t.contains("evil.example")), "the hostile post is quoted");
        for t in &texts {
            for bad in ["<!", "<@", "<http", "|Grafana", "](", "*Severity:*", "@here", "\u{202e}", "\n*", "<script"] {
                assert!(!t.contains(bad), "{bad:?} in {t:?}");
            }
        }
        // Hostile text is only ever in plain_text objects.
        let evidence_blocks: Vec<&Value> = v["blocks"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|b| b["text"]["text"].as_str().is_some_and(|t| t.contains("evil")))
            .collect();
        assert!(!evidence_blocks.is_empty());
        assert!(evidence_blocks.iter().all(|b| b["text"]["type"] == "plain_text"));
    }

    #[test]
    fn huge_evidence_and_digests_stay_within_limits() {
        let mut e = event(EventKind::Updated, 3, Severity::Warning);
        e.evidence.most_negative[0].text = "&<".repeat(10_000);
        e.entity = "E".repeat(400);
        let n = mk(NoticeKind::Escalated, e);
        check_limits(&notice(&n, &ctx())).unwrap();
        let items: Vec<Notice> = (0..40).map(|_| n.clone()).collect();
        let d = digest(&items, 0, 3_600_000, &ctx());
        check_limits(&d).unwrap();
        assert!(d.to_string().contains("more incident(s) not shown"));
        let r = mk(NoticeKind::Resolved, event(EventKind::Resolved, 8, Severity::Critical));
        let v = notice(&r, &ctx());
        check_limits(&v).unwrap();
        assert!(v.to_string().contains("Resolved: open for 5m, peak critical"), "{v}");
    }

    /// The text object of the block quoting `needle`.
    fn evidence_text<'a>(v: &'a Value, needle: &str) -> &'a Value {
        let blocks = v["blocks"].as_array().unwrap();
        blocks.iter().map(|b| &b["text"]).find(|t| t["text"].as_str().is_some_and(|x| x.contains(needle))).unwrap()
    }

    #[test]
    fn evidence_links_to_the_post_and_its_author() {
        use crate::format::testing::with_links;
        let e = with_links(
            event(EventKind::Opened, 0, Severity::Critical),
            "p2",
            "https://x.com/ann/status/2?s=1&t=2",
            "https://x.com/ann",
        );
        let v = notice(&mk(NoticeKind::Opened, e), &ctx());
        check_limits(&v).unwrap();
        let t = evidence_text(&v, "Lost my bag");
        assert_eq!(t["type"], "mrkdwn");
        assert_eq!(t["verbatim"], true);
        let text = t["text"].as_str().unwrap();
        assert!(
            text.starts_with("<https://x.com/ann/status/2?s=1&amp;t=2|“Lost my bag again, 3 hours on hold”>"),
            "{text}"
        );
        assert!(text.contains("— <https://x.com/ann|@user＿p2> (1200 followers), "), "{text}");
        // A post without links is rendered as before.
        assert_eq!(evidence_text(&v, "Flight AA12")["type"], "plain_text");
    }

    #[test]
    fn hostile_urls_make_no_link() {
        use crate::format::testing::{with_links, HOSTILE_URLS};
        for bad in HOSTILE_URLS {
            let e = with_links(event(EventKind::Opened, 0, Severity::Critical), "p2", bad, bad);
            let v = notice(&mk(NoticeKind::Opened, e), &ctx());
            check_limits(&v).unwrap();
            let t = evidence_text(&v, "Lost my bag");
            assert_eq!(t["type"], "plain_text", "{bad:?}");
            assert!(!v.to_string().contains("evil.example/"), "{bad:?} in {v}");
            assert!(!v.to_string().to_lowercase().contains("javascript"), "{bad:?}");
        }
        // Legal in a URL, and harmless here: Slack's link ends only at `|` or `>`, which a link cannot hold.
        let md = "https://evil.example/a)[click](https://evil.example/b";
        let e = with_links(event(EventKind::Opened, 0, Severity::Critical), "p2", md, "https://x.com/ann");
        let v = notice(&mk(NoticeKind::Opened, e), &ctx());
        let text = evidence_text(&v, "Lost my bag")["text"].as_str().unwrap().to_string();
        assert!(text.starts_with(&format!("<{md}|“Lost my bag again, 3 hours on hold”> ")), "{text}");
        // A link never pushes the section past Slack's limit, nor is it cut: the longest post and two of the
        // longest URLs still give a valid message, with the post's link kept.
        let long = format!("https://x.com/{}", "a".repeat(flashpoint_core::post::MAX_URL_BYTES - 14));
        let mut e = with_links(event(EventKind::Opened, 0, Severity::Critical), "p2", &long, &long);
        e.evidence.most_negative[1].text = "&".repeat(5000);
        let v = notice(&mk(NoticeKind::Opened, e), &ctx());
        check_limits(&v).unwrap();
        let t = evidence_text(&v, "&amp;");
        assert_eq!(t["type"], "mrkdwn");
        assert!(t["text"].as_str().unwrap().starts_with(&format!("<{long}|")));
        assert_eq!(t["text"].as_str().unwrap().matches(&long).count(), 1);
    }
}
