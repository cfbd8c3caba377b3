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

use super::{
    attribution, closing_summary, counts, evidence, kind_phrase, observed_vs_baseline, percent, severity_upper,
    top_terms, Context,
};
use crate::router::{Notice, NoticeKind};
use crate::safe;
use lettre::message::header::ContentType;
use lettre::message::{Attachment, Mailbox, MultiPart, SinglePart};
use lettre::Message;

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

fn subject(n: &Notice) -> String {
    let base = format!(
        "[Flashpoint] {}: incident {}",
        safe::plain(&n.event.entity, 80),
        safe::plain(&n.event.incident_id, 80)
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
        ("Open for", n.open_for_ms().map(super::duration).unwrap_or_else(|| "?".into())),
        ("Top terms", top_terms(n, 5, safe::plain)),
    ]
}

fn headline(n: &Notice) -> String {
    format!("{} {}: {}", severity_upper(n.event.severity), safe::plain(&n.event.entity, 80), kind_phrase(n))
}

fn text_body(n: &Notice, ctx: &Context) -> String {
    let mut t = format!("{}\n\n", headline(n));
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
        }
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
            "<p><img src=\"cid:{CHART_CID}\" alt=\"volume and negative share chart\" width=\"640\" height=\"260\"></p>"
        );
    }
    for p in evidence(n, 3) {
        h += &format!(
            "<blockquote>{}<br><small>{}</small></blockquote>",
            safe::html(&p.text, 500),
            safe::html_own(&attribution(p, safe::plain))
        );
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
    let mut b =
        Message::builder().from(from.clone()).subject(subject(n)).message_id(Some(message_id(n, &ctx.route, &domain)));
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
        .message_id(Some(format!("<digest.{}.{}@{}>", id_part(&ctx.route), to_ms, domain)));
    for t in to {
        b = b.to(t.clone());
    }
    let mut text = format!("Flashpoint digest, {}\n", super::time_range(from_ms, to_ms));
    let mut html = format!(
        "<!DOCTYPE html><html><body style=\"font-family:sans-serif\"><h2>Flashpoint digest</h2><p>{}</p><ul>",
        super::time_range(from_ms, to_ms)
    );
    for n in items {
        let line = format!("{} · {} · {}", headline(n), observed_vs_baseline(n), closing_summary(n));
        text += &format!("\n- {line}");
        html += &format!("<li>{}", safe::html_own(&line));
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
        assert!(m.contains("Subject: Re: [Flashpoint] Acme Air: incident inc-1387cae96a0b8ab5"));
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
}
