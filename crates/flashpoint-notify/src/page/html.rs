//! The incident pages as HTML: the index and one page per incident. Pure: incidents in, strings out.
//!
//! Every string from an event (post text, authors, phrases, terms, the entity, platforms, reasons) is written
//! through [`crate::safe::html`], so markup in a post shows as text. Links to posts and authors are made only from
//! URLs that pass [`crate::safe::link`] (https, RFC 3986 characters), HTML-escaped in a quoted attribute, and open
//! with no referrer. The page carries no script, one stylesheet (allowed by its hash, see [`policy`]) and no
//! `style` attribute, so a strict Content-Security-Policy holds for the file and the live page alike.

use super::chart;
use super::store::{Incident, Logged};
use crate::format::{duration, percent};
use crate::safe;
use flashpoint_core::event::{EventKind, SpikeEvent};
use flashpoint_core::time::format_rfc3339;
use sha2::{Digest, Sha256};
use std::fmt::Write;
use std::sync::OnceLock;

/// How pages link to each other: files side by side (`flashpoint report`), or the live server's paths.
#[derive(Clone, Debug)]
pub struct Links {
    index: String,
    prefix: String,
    suffix: String,
}

impl Links {
    /// `index.html` and `<id>.html` in one directory.
    pub fn files() -> Links {
        Links { index: "index.html".into(), prefix: String::new(), suffix: ".html".into() }
    }

    /// `/incidents` and `/incidents/<id>`.
    pub fn live() -> Links {
        Links { index: "/incidents".into(), prefix: "/incidents/".into(), suffix: String::new() }
    }

    /// Ids are checked by the store ([`crate::safe::page_id`]): nothing in one needs escaping.
    pub fn incident(&self, id: &str) -> String {
        format!("{}{id}{}", self.prefix, self.suffix)
    }
}

const CSS: &str = "\
body{font:14px/1.45 system-ui,-apple-system,'Segoe UI',Roboto,sans-serif;margin:0;color:#1d232b;background:#f4f5f7}\
header{background:#1d232b;color:#e8ebef;padding:10px 24px}header a{color:#9fc7ff;text-decoration:none}\
main{max-width:1100px;margin:0 auto;padding:8px 24px 32px}\
h1{font-size:24px;margin:14px 0 6px}h2{font-size:16px;margin:0 0 8px}\
section{background:#fff;border:1px solid #dde1e6;border-radius:6px;padding:12px 16px;margin:14px 0}\
table{border-collapse:collapse;width:100%}th,td{text-align:left;padding:5px 8px;border-bottom:1px solid #eceff2;vertical-align:top}\
th{font-weight:600;color:#566170;font-size:12px}td.n,th.n{text-align:right;font-variant-numeric:tabular-nums;white-space:nowrap}\
a{color:#1559b3}.muted{color:#6b7480}.small{font-size:12px}\
.badge{display:inline-block;padding:1px 8px;border-radius:10px;font-size:12px;font-weight:600;color:#fff;background:#66707c;margin-right:4px}\
.sev-watch{background:#a87f00}.sev-warning{background:#d0620b}.sev-critical{background:#c62828}\
.open{background:#1559b3}.resolved{background:#2e7d32}.crisis{background:#7b1f4a}.buzz{background:#4a5aa8}\
.facts{display:flex;flex-wrap:wrap;gap:6px 30px;margin:8px 0}.facts div{min-width:120px}\
.facts b{display:block;font-size:12px;font-weight:600;color:#6b7480}\
q{quotes:none}td.post{max-width:560px;overflow-wrap:anywhere}\
svg.chart{width:100%;height:auto}svg text{font:11px system-ui,sans-serif;fill:#566170}svg text.title{font-weight:600;fill:#1d232b}\
.grid{stroke:#eceff2}.axis{stroke:#9aa3ad}.band{fill:#9aa3ad;fill-opacity:.25;stroke:none}\
.expected{fill:none;stroke:#6b7480;stroke-dasharray:4 3}\
polyline.series{fill:none;stroke-width:2}.series.volume{stroke:#1559b3;fill:#1559b3}polyline.series.volume{fill:none}\
.series.negative{stroke:#c62828;fill:#c62828}polyline.series.negative{fill:none}\
line.marker{stroke:#1d232b;stroke-opacity:.35;stroke-dasharray:2 3}line.marker.resolved{stroke:#2e7d32;stroke-opacity:.7}\
circle.marker{stroke:#fff;stroke-width:1.5}circle.sev-watch{fill:#a87f00}circle.sev-warning{fill:#d0620b}\
circle.sev-critical{fill:#c62828}";

/// The Content-Security-Policy of every page: nothing may load or run; the one stylesheet is allowed by its hash.
/// `header` adds what only a response header can say (`frame-ancestors`; a `<meta>` policy ignores it and a
/// browser complains about it).
pub fn policy(header: bool) -> String {
    static HASH: OnceLock<String> = OnceLock::new();
    let hash = HASH.get_or_init(|| base64(&Sha256::digest(CSS.as_bytes())));
    let mut p =
        format!("default-src 'none'; style-src 'sha256-{hash}'; img-src data:; base-uri 'none'; form-action 'none'");
    if header {
        p.push_str("; frame-ancestors 'none'");
    }
    p
}

/// Standard base64 with padding (the CSP hash source's encoding).
fn base64(bytes: &[u8]) -> String {
    const A: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::with_capacity(bytes.len().div_ceil(3) * 4);
    for c in bytes.chunks(3) {
        let n =
            (u32::from(c[0]) << 16) | (u32::from(*c.get(1).unwrap_or(&0)) << 8) | u32::from(*c.get(2).unwrap_or(&0));
        for (i, shift) in [18, 12, 6, 0].into_iter().enumerate() {
            out.push(if i <= c.len() { A[(n >> shift) as usize & 63] as char } else { '=' });
        }
    }
    out
}

pub fn kind_str(k: EventKind) -> &'static str {
    match k {
        EventKind::Opened => "opened",
        EventKind::Updated => "updated",
        EventKind::Resolved => "resolved",
    }
}

/// Text from an event, escaped and kept to one line of at most `max` characters.
fn esc(text: &str, max: usize) -> String {
    safe::html(text, max)
}

/// `<a href=…>label</a>` when `url` may be linked, else the label alone. `label` is already escaped.
fn link(label: String, url: Option<&str>) -> String {
    match url.and_then(safe::link) {
        Some(u) => {
            format!(
                "<a href=\"{}\" rel=\"noopener noreferrer nofollow\" referrerpolicy=\"no-referrer\">{label}</a>",
                safe::html_own(u)
            )
        }
        None => label,
    }
}

fn time(ms: i64) -> String {
    let t = format_rfc3339(ms);
    format!("{} {} UTC", &t[..10], &t[11..16])
}

fn number(x: f64) -> String {
    if !x.is_finite() {
        "–".into()
    } else if (x - x.round()).abs() < 1e-9 {
        format!("{}", x.round() as i64)
    } else if x.abs() < 10.0 {
        format!("{x:.2}")
    } else {
        format!("{x:.1}")
    }
}

fn page(title: &str, links: &Links, body: &str) -> String {
    format!(
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\
         <meta http-equiv=\"Content-Security-Policy\" content=\"{}\">\
         <meta name=\"referrer\" content=\"no-referrer\">\
         <meta name=\"viewport\" content=\"width=device-width,initial-scale=1\">\
         <title>{title}</title><style>{CSS}</style></head>\n<body><header><a href=\"{}\">Flashpoint · incidents</a></header>\
         <main>\n{body}</main></body></html>\n",
        policy(false),
        safe::html_own(&links.index)
    )
}

fn badges(e: &SpikeEvent) -> String {
    let state = match (e.kind, e.resolution) {
        (EventKind::Resolved, Some(r)) => format!("<span class=\"badge resolved\">resolved ({})</span>", resolution(r)),
        (EventKind::Resolved, None) => "<span class=\"badge resolved\">resolved</span>".into(),
        _ => "<span class=\"badge open\">open</span>".into(),
    };
    format!(
        "<span class=\"badge {0}\">{0}</span><span class=\"badge sev-{1}\">{1}</span>{state}",
        e.class.as_str(),
        e.severity.as_str()
    )
}

fn resolution(r: flashpoint_core::detect::Resolution) -> &'static str {
    match r {
        flashpoint_core::detect::Resolution::Calm => "calm",
        flashpoint_core::detect::Resolution::Reassessed => "reassessed",
    }
}

fn peak(e: &SpikeEvent) -> String {
    format!(
        "{} posts · {} negative · {} negative share",
        e.peak.volume,
        e.peak.negative,
        percent(e.peak.negative_share)
    )
}

fn open_for(e: &SpikeEvent) -> String {
    duration(e.window_end - e.incident_start)
}

/// The index: one row per incident, open ones first, then the most recently opened.
pub fn index(incidents: &[&Incident], links: &Links) -> String {
    let mut b = String::from("<h1>Incidents</h1>");
    if incidents.is_empty() {
        b += "<section><p class=\"muted\">No incidents yet.</p></section>";
        return page("Flashpoint incidents", links, &b);
    }
    let open = incidents.iter().filter(|i| i.is_open()).count();
    let _ = write!(b, "<p class=\"muted\">{} incidents, {open} open.</p>", incidents.len());
    b += "<section><table class=\"incidents\"><thead><tr><th>entity</th><th>class</th><th>severity</th><th>state</th>\
          <th>opened</th><th class=\"n\">duration</th><th>peak</th><th class=\"n\">events</th></tr></thead><tbody>";
    for inc in incidents {
        let e = inc.latest();
        let state = if inc.is_open() { "open" } else { "resolved" };
        let _ = write!(
            b,
            "<tr><td><a href=\"{}\">{}</a></td><td><span class=\"badge {2}\">{2}</span></td>\
             <td><span class=\"badge sev-{3}\">{3}</span></td><td><span class=\"badge {state}\">{state}</span></td>\
             <td>{4}</td><td class=\"n\">{5}</td><td>{6}</td><td class=\"n\">{7}</td></tr>",
            safe::html_own(&links.incident(&inc.id)),
            esc(&e.entity, 120),
            e.class.as_str(),
            e.severity.as_str(),
            time(inc.opened()),
            open_for(e),
            peak(e),
            inc.events.len() as u64 + inc.dropped
        );
    }
    b += "</tbody></table></section>";
    page("Flashpoint incidents", links, &b)
}

/// The page of one incident: its current state, the chart, the evidence and the event log.
pub fn incident(inc: &Incident, links: &Links) -> String {
    let e = inc.latest();
    let first = &inc.events[0].event;
    let mut b = String::new();
    let _ = write!(b, "<h1>{}</h1><p>{}</p>", esc(&e.entity, 200), badges(e));
    let facts = [
        ("opened", time(e.incident_start)),
        ("first event", time(first.window_end)),
        ("latest event", time(e.window_end)),
        ("open for", open_for(e)),
        ("peak", peak(e)),
        ("excess negative posts", e.impact.excess_negative.to_string()),
        ("negative reach", e.impact.negative_reach.to_string()),
        ("incident", safe::html_own(&inc.id)),
    ];
    b += "<div class=\"facts\">";
    for (k, v) in facts {
        let _ = write!(b, "<div><b>{k}</b>{v}</div>");
    }
    b += "</div>";
    let _ = write!(
        b,
        "<section><h2>Posts and negative posts against the baseline</h2>{}</section>",
        chart::svg(&inc.events)
    );
    b += &response(e);
    b += &drivers(e);
    b += &storylines(e);
    b += &amplifiers(e);
    b += &platforms(e);
    b += &evidence(e);
    b += &log(inc);
    page(&format!("{} · Flashpoint incident", esc(&e.entity, 120)), links, &b)
}

/// The page for an id the server does not hold.
pub fn not_found(links: &Links) -> String {
    page(
        "Flashpoint: no such incident",
        links,
        "<h1>No such incident</h1><section><p>This worker holds no incident with that id: it may never have \
         existed, or be older than the incidents kept (<code>notify.pages.max_incidents</code>).</p></section>",
    )
}

fn section(title: &str, head: &str, rows: Vec<String>, empty: &str) -> String {
    if rows.is_empty() {
        return format!("<section><h2>{title}</h2><p class=\"muted\">{empty}</p></section>");
    }
    format!(
        "<section><h2>{title}</h2><table class=\"{}\"><thead><tr>{head}</tr></thead><tbody>{}</tbody></table></section>",
        title.split_whitespace().next().unwrap_or("t").to_ascii_lowercase(),
        rows.concat()
    )
}

/// The company's own response (issue 23's fields), where the entity's accounts are watched: what the on-call
/// lead checks next to the complaints (first reply, cadence, silence), then recovery and the post-mortem.
fn response(e: &SpikeEvent) -> String {
    let Some(r) = &e.response else { return String::new() };
    let mins = |s: u64| crate::format::duration(s as i64 * 1000);
    let mut facts: Vec<(&str, String)> = vec![
        ("account", esc(&r.handle, 80)),
        ("first response", r.first_secs.map_or("none yet".into(), |s| format!("{} after the alarm", mins(s)))),
        ("responses", r.posts.to_string()),
        ("longest silence", mins(r.longest_gap_secs)),
        ("silent for", mins(r.silent_secs)),
        ("overdue reminders", r.reminders.to_string()),
        (
            "plan",
            format!(
                "first within {}, then every {}",
                mins(r.plan.first_response_within_secs),
                mins(r.plan.update_every_secs)
            ),
        ),
    ];
    if let Some(rec) = &e.recovery {
        facts.push((
            "negative posts per hour",
            format!(
                "{} the hour before the first response, {} since",
                number(rec.hour_before.negative_per_hour),
                number(rec.since.negative_per_hour)
            ),
        ));
    }
    if let Some(pm) = &e.post_mortem {
        facts.push(("time to detect", mins(pm.time_to_detect_secs)));
        if let Some(s) = pm.first_response_to_calm_secs {
            facts.push(("first response to calm", mins(s)));
        }
    }
    let mut b = String::from("<section><h2>Response</h2><div class=\"facts\">");
    for (k, v) in facts {
        let _ = write!(b, "<div><b>{k}</b>{v}</div>");
    }
    b + "</div></section>"
}

const NONE_YET: &str = "None in this incident's events (events of schema v2 carry none).";

fn drivers(e: &SpikeEvent) -> String {
    let rows = e
        .evidence
        .drivers
        .iter()
        .map(|d| {
            format!(
                "<tr><td>{}</td><td class=\"n\">{}</td><td class=\"n\">{}</td><td class=\"n\">×{:.1}</td><td class=\"n\">{}</td></tr>",
                esc(&d.phrase, 120),
                d.posts,
                number(d.expected),
                d.lift,
                percent(d.negative_share)
            )
        })
        .collect();
    section(
        "Drivers",
        "<th>phrase</th><th class=\"n\">posts</th><th class=\"n\">expected</th><th class=\"n\">lift</th><th class=\"n\">negative</th>",
        rows,
        NONE_YET,
    )
}

fn post_cell(p: &flashpoint_core::window::EvidencePost) -> String {
    let text = link(format!("“{}”", esc(&p.text, 600)), p.url.as_deref());
    let who = match &p.author {
        Some(a) => link(format!("@{}", esc(a, 80)), p.author_url.as_deref()),
        None => "unknown author".into(),
    };
    let followers = p.followers.map(|f| format!(" ({f} followers)")).unwrap_or_default();
    format!(
        "<td class=\"post\">{text}<br><span class=\"small muted\">— {who}{followers}, {}</span></td>",
        esc(&p.created_at, 40)
    )
}

fn storylines(e: &SpikeEvent) -> String {
    let rows = e
        .evidence
        .storylines
        .iter()
        .map(|s| {
            format!(
                "<tr>{}<td class=\"n\">{}</td><td class=\"n\">{}</td><td class=\"n\">{}</td><td class=\"n\">{}</td><td>{}</td></tr>",
                post_cell(&s.representative),
                s.posts,
                s.authors,
                s.reach,
                percent(s.negative_share),
                time(s.first_seen)
            )
        })
        .collect();
    section(
        "Storylines",
        "<th>representative post</th><th class=\"n\">posts</th><th class=\"n\">authors</th><th class=\"n\">reach</th>\
         <th class=\"n\">negative</th><th>first seen</th>",
        rows,
        NONE_YET,
    )
}

fn amplifiers(e: &SpikeEvent) -> String {
    let rows = e
        .evidence
        .amplifiers
        .iter()
        .map(|a| {
            format!(
                "<tr><td>{}</td><td class=\"n\">{}</td><td class=\"n\">{}</td><td>{}</td></tr>",
                link(format!("@{}", esc(&a.author, 80)), a.author_url.as_deref()),
                a.followers,
                a.posts,
                link(esc(&a.first_post_id, 80), a.first_post_url.as_deref())
            )
        })
        .collect();
    section(
        "Amplifiers",
        "<th>author</th><th class=\"n\">followers</th><th class=\"n\">posts</th><th>first post</th>",
        rows,
        NONE_YET,
    )
}

fn platforms(e: &SpikeEvent) -> String {
    let rows = e
        .evidence
        .platforms
        .iter()
        .map(|p| format!("<tr><td>{}</td><td class=\"n\">{}</td></tr>", esc(&p.platform, 60), p.posts))
        .collect();
    section("Platforms", "<th>platform</th><th class=\"n\">posts</th>", rows, NONE_YET)
}

/// The newest event's own evidence (its window's most negative and widest-reaching posts, its top terms).
fn evidence(e: &SpikeEvent) -> String {
    let mut seen = Vec::new();
    let rows: Vec<String> = e
        .evidence
        .most_negative
        .iter()
        .chain(&e.evidence.top_reach)
        .filter(|p| {
            let new = !seen.contains(&&p.id);
            seen.push(&p.id);
            new
        })
        .map(|p| format!("<tr>{}<td class=\"n\">{:.2}</td></tr>", post_cell(p), p.compound))
        .collect();
    let terms: Vec<String> =
        e.evidence.top_terms.iter().map(|t| format!("{} ({})", esc(&t.term, 60), t.count)).collect();
    let mut s = section(
        "Evidence posts of the latest window",
        "<th>post</th><th class=\"n\">compound</th>",
        rows,
        "No evidence posts in the latest event.",
    );
    if !terms.is_empty() {
        let at = s.len() - "</section>".len();
        s.insert_str(at, &format!("<p><b>Top terms:</b> {}</p>", terms.join(", ")));
    }
    s
}

fn observed(e: &SpikeEvent) -> String {
    let share = matches!(e.signal, flashpoint_core::detect::Signal::NegativeShare);
    let f = |x: f64| if share { percent(x) } else { number(x) };
    format!("{} vs {}", f(e.observed), f(e.baseline))
}

fn log(inc: &Incident) -> String {
    let rows = inc
        .events
        .iter()
        .map(|Logged { event: e, reasons }| {
            let reasons = if reasons.is_empty() {
                "<span class=\"muted\">–</span>".to_string()
            } else {
                reasons.iter().map(|r| esc(r, 300)).collect::<Vec<_>>().join("<br>")
            };
            let sev = e.severity.as_str();
            format!(
                "<tr><td>{}</td><td class=\"n\">{}</td><td>{}</td><td><span class=\"badge sev-{sev}\">{sev}</span></td>\
                 <td>{}</td><td class=\"n\">{}</td><td class=\"n\">{:.2}</td><td>{reasons}</td></tr>",
                kind_str(e.kind),
                e.seq,
                time(e.window_end),
                e.signal.as_str(),
                observed(e),
                e.score
            )
        })
        .collect();
    let mut s = section(
        "Event log",
        "<th>kind</th><th class=\"n\">seq</th><th>time</th><th>severity</th><th>signal</th>\
         <th class=\"n\">observed vs baseline</th><th class=\"n\">score</th><th>reasons</th>",
        rows,
        "",
    );
    if inc.dropped > 0 {
        let at = s.len() - "</section>".len();
        s.insert_str(
            at,
            &format!(
                "<p class=\"muted small\">{} earlier updates not kept (<code>notify.pages.max_events</code>).</p>",
                inc.dropped
            ),
        );
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::format::testing::{event, HOSTILE};
    use crate::page::store::IncidentStore;
    use flashpoint_core::detect::Severity;
    use std::sync::Arc;

    #[test]
    fn base64_matches_the_standard() {
        assert_eq!(base64(b""), "");
        assert_eq!(base64(b"f"), "Zg==");
        assert_eq!(base64(b"fo"), "Zm8=");
        assert_eq!(base64(b"foo"), "Zm9v");
        assert_eq!(base64(b"foobar"), "Zm9vYmFy");
    }

    #[test]
    fn hostile_text_is_escaped_and_bad_links_are_not_made() {
        let mut e = crate::format::testing::with_links(
            event(EventKind::Opened, 0, Severity::Warning),
            "p2",
            "https://x.com/a/status/1?a=1&b=2",
            "javascript:alert(1)",
        );
        e.entity = "<img src=x onerror=alert(1)>".into();
        let mut s = IncidentStore::unbounded();
        s.record(Arc::new(e), r#"{"reasons":["<script>alert(2)</script>"]}"#).unwrap();
        let inc = s.get("inc-1387cae96a0b8ab5").unwrap();
        let html = incident(inc, &Links::live());
        assert!(!html.contains("<script"), "{html}");
        assert!(!html.contains("<img"), "{html}");
        assert!(html.contains("&lt;img src=x onerror=alert(1)&gt;"));
        assert!(html.contains("&lt;script&gt;x&lt;/script&gt;"), "the post's text shows, escaped");
        assert!(html.contains("&lt;script&gt;alert(2)&lt;/script&gt;"), "reasons too");
        assert!(html.contains("href=\"https://x.com/a/status/1?a=1&amp;b=2\""));
        assert!(!html.contains("javascript:"));
        assert!(!HOSTILE.is_empty());
        let idx = index(&s.list(), &Links::files());
        assert!(idx.contains("href=\"inc-1387cae96a0b8ab5.html\"") && !idx.contains("<img"), "{idx}");
    }

    #[test]
    fn v2_events_render_with_empty_lists() {
        let mut s = IncidentStore::unbounded();
        s.record(Arc::new(event(EventKind::Opened, 0, Severity::Watch)), "{}").unwrap();
        let html = incident(s.get("inc-1387cae96a0b8ab5").unwrap(), &Links::files());
        assert!(html.contains("<svg") && html.contains("class=\"series volume\""), "a chart from the events");
        assert!(html.contains(NONE_YET));
        assert!(html.contains("badge crisis"));
    }

    #[test]
    fn the_response_section_shows_the_companys_replies_when_its_accounts_are_watched() {
        use flashpoint_core::detect::response::{ResponsePlan, ResponseReport};
        let mut s = IncidentStore::unbounded();
        s.record(Arc::new(event(EventKind::Opened, 0, Severity::Watch)), "{}").unwrap();
        let html = incident(s.get("inc-1387cae96a0b8ab5").unwrap(), &Links::files());
        assert!(!html.contains("<h2>Response</h2>"), "no section for an entity whose accounts are not watched");
        let mut e = event(EventKind::Updated, 1, Severity::Warning);
        e.response = Some(ResponseReport {
            handle: "@Acme<b>".into(),
            plan: ResponsePlan { first_response_within_secs: 1800, update_every_secs: 3600 },
            first_at: Some(1_000),
            first_secs: Some(1_500),
            posts: 2,
            new_posts: 1,
            last_at: Some(2_000),
            longest_gap_secs: 2_760,
            silent_secs: 600,
            reminders: 1,
        });
        s.record(Arc::new(e), "{}").unwrap();
        let html = incident(s.get("inc-1387cae96a0b8ab5").unwrap(), &Links::files());
        assert!(html.contains("<h2>Response</h2>"));
        assert!(html.contains("@Acme&lt;b&gt;") && !html.contains("@Acme<b>"));
        assert!(html.contains("25m after the alarm") && html.contains("46m"), "first reply and longest silence");
    }
}
