//! Email: `multipart/alternative` with a plain-text part and an HTML part; the HTML part sits in a
//! `multipart/related` with the chart as an inline `image/png` (`Content-ID: <chart>`, shown by
//! `<img src="cid:chart">`).
//!
//! One thread per incident and route: the opening event's (seq 0) `Message-ID` is `<{incident}.{route}@{domain}>`;
//! every later event's message has its own `<{incident}.{seq}.{route}@{domain}>` and `In-Reply-To` and `References`
//! pointing at the opening's, and the same subject with `Re: `. The ids depend on the event only (not on what
//! the notifier remembers), so a retried, replayed or restarted message carries the same `Message-ID` and mail
//! systems and clients de-duplicate it. `{domain}` is the sender's. (A route that first hears of an incident at a
//! later event, e.g. once it escalates past its minimum severity, starts with a reply to an opening it never
//! sent; clients thread it by `References` all the same.)
//! Post text is HTML-escaped in the HTML part and display-sanitised in both.

use super::{parse_table, Build, BuildError, Channel, ChannelSpec, Kind, Request};
use crate::format::{
    attribution, attribution_linked, closing_summary, counts, evidence, kind_phrase, observed_vs_baseline, percent,
    post_link, severity_upper, what_people_say, Context,
};
use crate::message::{Notice, NoticeKind};
use crate::safe;
use crate::secret::SecretRef;
use flashpoint_core::detect::Severity;
use lettre::message::header::{ContentType, HeaderName, HeaderValue};
use lettre::message::{Attachment, Mailbox, MultiPart, SinglePart};
use lettre::transport::smtp::authentication::Credentials;
use lettre::transport::smtp::client::{Certificate, Tls, TlsParameters};
use lettre::{AsyncSmtpTransport, Message, Tokio1Executor};
use serde::Deserialize;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

pub const KIND: Kind = Kind { name: "email", parse: |v| Ok(Box::new(parse_table::<EmailConfig>(v)?)) };

#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum SmtpTls {
    /// Plain connection upgraded with STARTTLS (required, not opportunistic); port 587 by default.
    #[default]
    Starttls,
    /// TLS from the first byte (SMTPS); port 465 by default.
    Tls,
    /// No encryption: only for a relay on localhost (tests, a local MTA); refused for any other host.
    None,
}

#[derive(Clone, Debug, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EmailConfig {
    pub name: String,
    pub smtp_host: String,
    pub smtp_port: Option<u16>,
    #[serde(default)]
    pub tls: SmtpTls,
    pub username: Option<SecretRef>,
    pub password: Option<SecretRef>,
    /// `Flashpoint <alerts@example.com>`; its domain also ends every Message-ID.
    pub from: String,
    pub to: Vec<String>,
    /// A PEM root certificate to trust besides the public ones (a relay with a private CA).
    pub ca_file: Option<std::path::PathBuf>,
}

impl ChannelSpec for EmailConfig {
    fn name(&self) -> &str {
        &self.name
    }

    fn secrets(&self) -> Vec<(&'static str, &SecretRef)> {
        self.username.iter().map(|s| ("username", s)).chain(self.password.iter().map(|s| ("password", s))).collect()
    }

    fn validate(&self) -> Result<(), String> {
        self.from.parse::<Mailbox>().map_err(|err| format!("from: {err}"))?;
        if self.to.is_empty() {
            return Err("to: at least one recipient".into());
        }
        for (j, t) in self.to.iter().enumerate() {
            t.parse::<Mailbox>().map_err(|err| format!("to[{j}]: `{t}`: {err}"))?;
        }
        if self.tls == SmtpTls::None && !crate::delivery::is_localhost(&self.smtp_host) {
            return Err(format!(
                "tls: \"none\" is only allowed for a relay on localhost, not `{}` (use starttls or tls)",
                self.smtp_host
            ));
        }
        if self.username.is_some() != self.password.is_some() {
            return Err("username and password go together".into());
        }
        Ok(())
    }

    fn build(&self, b: &Build<'_>) -> Result<Box<dyn Channel>, BuildError> {
        let bad = |reason: String| BuildError::Other(reason);
        let builder = match self.tls {
            SmtpTls::Starttls => {
                AsyncSmtpTransport::<Tokio1Executor>::starttls_relay(&self.smtp_host).map_err(|x| bad(x.to_string()))?
            }
            SmtpTls::Tls => {
                AsyncSmtpTransport::<Tokio1Executor>::relay(&self.smtp_host).map_err(|x| bad(x.to_string()))?
            }
            SmtpTls::None => AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(&self.smtp_host),
        };
        let mut builder = builder.timeout(Some(b.timeout()));
        if let (Some(ca), SmtpTls::Starttls | SmtpTls::Tls) = (&self.ca_file, self.tls) {
            let pem = std::fs::read(ca).map_err(|x| bad(format!("ca_file {}: {x}", ca.display())))?;
            let cert = Certificate::from_pem(&pem).map_err(|x| bad(format!("ca_file {}: {x}", ca.display())))?;
            let params = TlsParameters::builder(self.smtp_host.clone())
                .add_root_certificate(cert)
                .build_rustls()
                .map_err(|x| bad(x.to_string()))?;
            builder = builder.tls(if self.tls == SmtpTls::Tls { Tls::Wrapper(params) } else { Tls::Required(params) });
        }
        if let Some(p) = self.smtp_port {
            builder = builder.port(p);
        }
        if let (Some(u), Some(p)) = (&self.username, &self.password) {
            builder = builder.credentials(Credentials::new(
                b.secret("username", u)?.expose().to_string(),
                b.secret("password", p)?.expose().to_string(),
            ));
        }
        let from = self.from.parse().map_err(|x: lettre::address::AddressError| bad(format!("from: {x}")))?;
        let to = self
            .to
            .iter()
            .map(|t| t.parse())
            .collect::<Result<Vec<Mailbox>, _>>()
            .map_err(|x| bad(format!("to: {x}")))?;
        Ok(Box::new(Email { name: self.name.clone(), smtp: Arc::new(builder.build()), from, to }))
    }
}

struct Email {
    name: String,
    smtp: Arc<AsyncSmtpTransport<Tokio1Executor>>,
    from: Mailbox,
    to: Vec<Mailbox>,
}

impl Channel for Email {
    fn render(&mut self, msg: &crate::message::Message, ctx: &Context) -> Result<Vec<Request>, String> {
        let mail = match msg {
            crate::message::Message::Notice(n) => {
                let chart =
                    crate::chart::render(&crate::message::Point::series(n), n.event.incident_start, n.event.window_end)
                        .map_err(|err| tracing::warn!(channel = %self.name, "no chart: {err}"))
                        .ok();
                notice(n, ctx, &self.from, &self.to, chart)?
            }
            crate::message::Message::Digest { items, from, to } => {
                digest(items, *from, *to, ctx, &self.from, &self.to)?
            }
        };
        Ok(vec![Request::Mail { smtp: self.smtp.clone(), message: Box::new(mail) }])
    }
}

/// The event's own time, so a resent mail is the same mail (its `Date` too).
fn event_date(n: &Notice) -> SystemTime {
    let ms = n.event.window_end.max(0) as u64;
    SystemTime::UNIX_EPOCH + Duration::from_millis(ms)
}

/// Marks the mail as machine-sent (RFC 3834: no auto-replies, no vacation notices back) and, when critical,
/// as urgent for clients that sort by priority.
fn headers(mut b: lettre::message::MessageBuilder, severity: Severity) -> lettre::message::MessageBuilder {
    b = b.raw_header(HeaderValue::new(HeaderName::new_from_ascii_str("Auto-Submitted"), "auto-generated".into()));
    if severity == Severity::Critical {
        b = b
            .raw_header(HeaderValue::new(HeaderName::new_from_ascii_str("X-Priority"), "1 (Highest)".into()))
            .raw_header(HeaderValue::new(HeaderName::new_from_ascii_str("Importance"), "high".into()));
    }
    b
}

pub const CHART_CID: &str = "chart";

fn id_part(s: &str) -> String {
    s.chars().map(|c| if c.is_ascii_alphanumeric() || "-_".contains(c) { c } else { '_' }).take(100).collect()
}

pub fn thread_root(incident: &str, route: &str, domain: &str) -> String {
    format!("<{}.{}@{}>", id_part(incident), id_part(route), domain)
}

fn is_root(n: &Notice) -> bool {
    n.event.seq == 0
}

pub fn message_id(n: &Notice, route: &str, domain: &str) -> String {
    if is_root(n) {
        thread_root(&n.event.incident_id, route, domain)
    } else {
        format!("<{}.{}.{}@{}>", id_part(&n.event.incident_id), n.event.seq, id_part(route), domain)
    }
}

/// `[Flashpoint] CRITICAL · Acme Air · escalated`: state and severity readable in an inbox list.
pub fn subject(n: &Notice) -> String {
    let base = format!(
        "[Flashpoint] {} · {} · {}",
        severity_upper(n.event.severity),
        safe::plain(&n.event.entity, 80),
        n.kind.as_str()
    );
    if is_root(n) {
        base
    } else {
        format!("Re: {base}")
    }
}

fn rows(n: &Notice) -> Vec<(&'static str, String)> {
    let e = &n.event;
    vec![
        ("Severity", e.severity.as_str().into()),
        ("Signal", e.signal.as_str().into()),
        ("Observed", observed_vs_baseline(n)),
        ("Counts", counts(n)),
        ("Negative share", percent(e.negative_share)),
        ("Open for", crate::format::duration(n.open_for_ms())),
        ("What people say", what_people_say(n, 5, safe::plain)),
    ]
}

fn headline(n: &Notice) -> String {
    if n.kind == NoticeKind::Resolved {
        return format!("RESOLVED {} (peak {})", safe::plain(&n.event.entity, 80), n.peak_severity.as_str());
    }
    format!("{} {}: {}", severity_upper(n.event.severity), safe::plain(&n.event.entity, 80), kind_phrase(n))
}

fn text_body(n: &Notice, ctx: &Context) -> String {
    let mut t = format!("{}\n\n", headline(n));
    if let Some(c) = crate::format::what_changed(n) {
        t += &format!("{c}\n\n");
    }
    if n.kind == NoticeKind::Resolved {
        t += &format!("Resolved: {}\n\n", closing_summary(n));
    }
    for (k, v) in rows(n) {
        t += &format!("{k}: {v}\n");
    }
    let posts = evidence(n, 3);
    if !posts.is_empty() {
        t += "\nEvidence:\n";
        for p in posts {
            t += &format!("  \"{}\" {}\n", safe::plain(&p.text, 500), attribution(p, safe::plain));
            // On lines of their own, where mail clients make them clickable; `safe::link` leaves no character
            // that could end the line or the URL.
            if let Some(u) = post_link(p) {
                t += &format!("    post: {u}\n");
            }
            if let Some(u) = p.author_url.as_deref().and_then(safe::link) {
                t += &format!("    author: {u}\n");
            }
        }
    }
    if let Some(l) = ctx.incident_link(n) {
        t += &format!("\nIncident page: {l}\n");
    }
    if let Some(l) = ctx.grafana_link(n) {
        t += &format!("\nDashboard: {l}\n");
    }
    t += &format!(
        "\nIncident {} · event {} · route {}\n",
        safe::plain(&n.event.incident_id, 80),
        n.event.seq,
        ctx.route
    );
    t
}

fn html_body(n: &Notice, ctx: &Context, chart: bool) -> String {
    let mut h = String::from("<!DOCTYPE html><html><body style=\"font-family:sans-serif\">");
    h += &format!("<h2>{}</h2>", safe::html_own(&headline(n)));
    if let Some(c) = crate::format::what_changed(n) {
        h += &format!("<p>{}</p>", safe::html_own(&c));
    }
    if n.kind == NoticeKind::Resolved {
        h += &format!("<p><b>Resolved:</b> {}</p>", safe::html_own(&closing_summary(n)));
    }
    h += "<table cellpadding=\"4\">";
    for (k, v) in rows(n) {
        h += &format!("<tr><th align=\"left\">{k}</th><td>{}</td></tr>", safe::html_own(&v));
    }
    h += "</table>";
    if chart {
        h += &format!(
            "<p><img src=\"cid:{CHART_CID}\" alt=\"posts and negative posts against their usual range\" width=\"640\" height=\"260\"></p>"
        );
    }
    for p in evidence(n, 3) {
        let a = |label: String, url: &str| format!("<a href=\"{}\">{label}</a>", safe::html_own(url));
        let quote = safe::html(&p.text, 500);
        let quote = match post_link(p) {
            Some(u) => a(quote, u),
            None => quote,
        };
        h += &format!(
            "<blockquote>{quote}<br><small>{}</small></blockquote>",
            attribution_linked(p, |t, max| safe::html_own(&safe::plain(t, max)), a)
        );
    }
    if let Some(l) = ctx.incident_link(n) {
        h += &format!("<p><a href=\"{0}\">Open the incident page</a></p>", safe::html_own(&l));
    }
    if let Some(l) = ctx.grafana_link(n) {
        h += &format!("<p><a href=\"{0}\">Open the Flashpoint dashboard</a></p>", safe::html_own(&l));
    }
    h += &format!(
        "<p><small>Incident {} · event {} · route {}</small></p></body></html>",
        safe::html(&n.event.incident_id, 80),
        n.event.seq,
        safe::html_own(&ctx.route)
    );
    h
}

/// The email for one notice; `chart` is the PNG (none when drawing failed: the mail still goes).
pub fn notice(
    n: &Notice,
    ctx: &Context,
    from: &Mailbox,
    to: &[Mailbox],
    chart: Option<Vec<u8>>,
) -> Result<Message, String> {
    let domain = from.email.domain().to_string();
    let root = thread_root(&n.event.incident_id, &ctx.route, &domain);
    let mut b = Message::builder()
        .from(from.clone())
        .subject(subject(n))
        .date(event_date(n))
        .message_id(Some(message_id(n, &ctx.route, &domain)));
    b = headers(b, n.event.severity);
    for t in to {
        b = b.to(t.clone());
    }
    if !is_root(n) {
        b = b.in_reply_to(root.clone()).references(root);
    }
    let html = SinglePart::builder().header(ContentType::TEXT_HTML).body(html_body(n, ctx, chart.is_some()));
    let related = match chart {
        Some(png) => MultiPart::related().singlepart(html).singlepart(
            Attachment::new_inline(CHART_CID.into()).body(png, ContentType::parse("image/png").expect("valid")),
        ),
        None => MultiPart::related().singlepart(html),
    };
    let body = MultiPart::alternative().singlepart(SinglePart::plain(text_body(n, ctx))).multipart(related);
    b.multipart(body).map_err(|e| e.to_string())
}

pub fn digest(
    items: &[Notice],
    from_ms: i64,
    to_ms: i64,
    ctx: &Context,
    from: &Mailbox,
    to: &[Mailbox],
) -> Result<Message, String> {
    let domain = from.email.domain().to_string();
    let mut b = Message::builder()
        .from(from.clone())
        .subject(format!("[Flashpoint] digest: {} incident(s), route {}", items.len(), ctx.route))
        .date(SystemTime::UNIX_EPOCH + Duration::from_millis(to_ms.max(0) as u64))
        .message_id(Some(format!("<digest.{}.{}@{}>", id_part(&ctx.route), to_ms, domain)));
    b = headers(b, items.iter().map(|n| n.event.severity).max().unwrap_or(Severity::Watch));
    for t in to {
        b = b.to(t.clone());
    }
    let mut text = format!("Flashpoint digest, {}\n", crate::format::time_range(from_ms, to_ms));
    let mut html = format!(
        "<!DOCTYPE html><html><body style=\"font-family:sans-serif\"><h2>Flashpoint digest</h2><p>{}</p><ul>",
        crate::format::time_range(from_ms, to_ms)
    );
    for n in items {
        let line = format!("{} · {} · {}", headline(n), observed_vs_baseline(n), closing_summary(n));
        text += &format!("\n- {line}");
        html += &format!("<li>{}", safe::html_own(&line));
        if let Some(l) = ctx.incident_link(n) {
            text += &format!("\n  {l}");
            html += &format!(" (<a href=\"{}\">incident page</a>)", safe::html_own(&l));
        }
        if let Some(l) = ctx.grafana_link(n) {
            text += &format!("\n  {l}");
            html += &format!(" (<a href=\"{}\">dashboard</a>)", safe::html_own(&l));
        }
        html += "</li>";
    }
    html += "</ul></body></html>";
    b.multipart(MultiPart::alternative_plain_html(text, html)).map_err(|e| e.to_string())
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
        let page = "https://fp.example.com/incidents/inc-1387cae96a0b8ab5";
        assert!(text_body(&n, &ctx).contains(&format!("Incident page: {page}")));
        assert!(html_body(&n, &ctx, false).contains(&format!("<a href=\"{page}\">Open the incident page</a>")));
    }

    #[test]
    fn threading_and_parts() {
        let ctx = Context::new("mail-route", Some("https://g.example"), "flashpoint");
        let from: Mailbox = "Flashpoint <alerts@example.com>".parse().unwrap();
        let to: Vec<Mailbox> = vec!["oncall@example.com".parse().unwrap()];
        let first = mk(NoticeKind::Opened, event(EventKind::Opened, 0, Severity::Warning));
        let m = String::from_utf8(notice(&first, &ctx, &from, &to, Some(vec![1, 2, 3])).unwrap().formatted()).unwrap();
        assert!(m.contains("Message-ID: <inc-1387cae96a0b8ab5.mail-route@example.com>"), "{m}");
        assert!(!m.contains("In-Reply-To"));
        assert!(
            m.contains("multipart/alternative") && m.contains("multipart/related") && m.contains("Content-ID: <chart>")
        );
        assert!(m.contains("cid:chart"));
        let mut later = mk(NoticeKind::Resolved, event(EventKind::Resolved, 8, Severity::Critical));
        later.first = false;
        let m = String::from_utf8(notice(&later, &ctx, &from, &to, None).unwrap().formatted()).unwrap();
        assert!(m.contains("Message-ID: <inc-1387cae96a0b8ab5.8.mail-route@example.com>"), "{m}");
        assert!(m.contains("In-Reply-To: <inc-1387cae96a0b8ab5.mail-route@example.com>"));
        assert!(m.contains("References: <inc-1387cae96a0b8ab5.mail-route@example.com>"));
        // On the wire the `·` is RFC 2047-encoded; mail clients show the subject as built.
        assert_eq!(subject(&later), "Re: [Flashpoint] CRITICAL · Acme Air · resolved");
        assert!(m.contains("Subject: Re: [Flashpoint] CRITICAL"), "{m}");
        assert!(m.contains("Auto-Submitted: auto-generated") && m.contains("X-Priority: 1"), "{m}");
        // The event's own time: a resend is the same mail, Date included.
        let again = String::from_utf8(notice(&later, &ctx, &from, &to, None).unwrap().formatted()).unwrap();
        assert_eq!(strip_boundaries(&m), strip_boundaries(&again));
        let first = String::from_utf8(
            notice(&mk(NoticeKind::Opened, event(EventKind::Opened, 0, Severity::Warning)), &ctx, &from, &to, None)
                .unwrap()
                .formatted(),
        )
        .unwrap();
        assert!(first.contains("Subject: [Flashpoint] WARNING"), "{first}");
        assert!(!first.contains("X-Priority"), "a priority header only on critical");
    }

    /// MIME boundaries are random per build of a message; everything else must match.
    fn strip_boundaries(m: &str) -> String {
        let bounds: Vec<String> = m
            .lines()
            .filter_map(|l| l.split("boundary=\"").nth(1).map(|b| b.trim_end_matches('"').to_string()))
            .collect();
        let mut out = m.to_string();
        for b in bounds {
            out = out.replace(&b, "B");
        }
        out
    }

    #[test]
    fn html_part_escapes_posts() {
        let ctx = Context::new("r", None, "flashpoint");
        let n = mk(NoticeKind::Opened, event(EventKind::Opened, 0, Severity::Warning));
        let h = html_body(&n, &ctx, true);
        assert!(!h.contains("<script>") && h.contains("&lt;script&gt;x&lt;/script&gt;"), "{h}");
        assert!(!h.contains("\u{202e}"));
        assert!(!h.contains("<https://evil"));
        let t = text_body(&n, &ctx);
        assert!(!t.contains('\u{202e}') && t.contains("Lost my bag again"));
        // Newlines in the post cannot start a fake line of ours in the text part.
        assert!(!t.contains("\n*Severity:* low"));
    }

    #[test]
    fn evidence_links_to_the_post_and_its_author() {
        use crate::format::testing::with_links;
        let ctx = Context::new("r", None, "flashpoint");
        let e = with_links(
            event(EventKind::Opened, 0, Severity::Warning),
            "p2",
            "https://x.com/ann/status/2?s=1&t=2",
            "https://x.com/ann",
        );
        let n = mk(NoticeKind::Opened, e);
        let h = html_body(&n, &ctx, true);
        assert!(
            h.contains(concat!(
                "<blockquote><a href=\"https://x.com/ann/status/2?s=1&amp;t=2\">Lost my bag again, 3 hours on hold</a>",
                "<br><small>— <a href=\"https://x.com/ann\">@user_p2</a> (1200 followers), 2026-03-04T14:05:00.000Z",
                "</small></blockquote>"
            )),
            "{h}"
        );
        // Posts without links as before.
        assert!(
            h.contains("<blockquote>Flight AA12 cancelled, no refund<br><small>— @user_p3 (1200 followers)"),
            "{h}"
        );
        let t = text_body(&n, &ctx);
        assert!(t.contains("    post: https://x.com/ann/status/2?s=1&t=2\n    author: https://x.com/ann\n"), "{t}");
        assert_eq!(t.matches("post: ").count(), 1);
    }

    #[test]
    fn hostile_urls_make_no_link() {
        use crate::format::testing::{with_links, HOSTILE_URLS};
        let ctx = Context::new("r", None, "flashpoint");
        for bad in HOSTILE_URLS {
            let n = mk(NoticeKind::Opened, with_links(event(EventKind::Opened, 0, Severity::Warning), "p2", bad, bad));
            let h = html_body(&n, &ctx, true);
            assert!(!h.contains("<a href"), "{bad:?}: {h}");
            let t = text_body(&n, &ctx);
            assert!(!t.contains("post: ") && !t.contains("author: "), "{bad:?}: {t}");
            assert!(!h.to_lowercase().contains("javascript") && !t.to_lowercase().contains("javascript"));
        }
    }
}
