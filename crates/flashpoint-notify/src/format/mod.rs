//! What every channel's payload says, whatever its format: the phrases, numbers and links the builders in
//! [`crate::channel`] share. Pure. All post-derived text goes through [`crate::safe`].

use crate::message::{Notice, NoticeKind};
use crate::safe;
use flashpoint_core::detect::{Reason, Severity};
use flashpoint_core::event::SpikeEvent;
use flashpoint_core::time::{format_rfc3339, Millis};
use flashpoint_core::window::EvidencePost;

/// What every builder needs besides the notice.
#[derive(Clone, Debug, Default)]
pub struct Context {
    pub route: String,
    /// `{grafana_url}/d/{uid}`; no link when `None`.
    pub dashboard: Option<String>,
    /// `notify.public_url` without a trailing slash: where the incident pages are; no link when `None`.
    pub pages: Option<String>,
}

impl Context {
    pub fn new(route: &str, grafana_url: Option<&str>, dashboard_uid: &str) -> Context {
        Context {
            route: route.to_string(),
            dashboard: grafana_url.map(|u| format!("{}/d/{}/flashpoint", u.trim_end_matches('/'), dashboard_uid)),
            pages: None,
        }
    }

    /// Every message of this context links its incident's page under `public_url`.
    pub fn with_pages(mut self, public_url: Option<&str>) -> Context {
        self.pages = public_url.map(|u| u.trim_end_matches('/').to_string());
        self
    }

    /// `{public_url}/incidents/{incident_id}`, when the pages have a public URL and the id can name a page (the
    /// page store takes no other, so no link leads nowhere).
    pub fn incident_link(&self, n: &Notice) -> Option<String> {
        let base = self.pages.as_ref()?;
        let id = &n.event.incident_id;
        safe::page_id(id).then(|| format!("{base}/incidents/{id}"))
    }

    /// The dashboard for the incident's entity and time range: from an hour before the incident started to a
    /// quarter hour after this event's window (Grafana takes epoch milliseconds in `from`/`to`).
    pub fn grafana_link(&self, n: &Notice) -> Option<String> {
        let base = self.dashboard.as_ref()?;
        let (start, end) = (n.event.incident_start, n.event.window_end);
        Some(format!(
            "{base}?var-entity={}&from={}&to={}",
            safe::url_component(&n.event.entity),
            start - 3_600_000,
            end + 900_000
        ))
    }
}

pub fn severity_upper(s: Severity) -> &'static str {
    match s {
        Severity::Watch => "WATCH",
        Severity::Warning => "WARNING",
        Severity::Critical => "CRITICAL",
    }
}

pub fn severity_emoji(s: Severity) -> &'static str {
    match s {
        Severity::Watch => "🟡",
        Severity::Warning => "🟠",
        Severity::Critical => "🔴",
    }
}

pub fn kind_phrase(n: &Notice) -> &'static str {
    match n.kind {
        NoticeKind::Opened if n.event.seq == 0 => "incident opened",
        NoticeKind::Opened => "incident open",
        NoticeKind::Escalated => "escalated",
        NoticeKind::Update => "update",
        NoticeKind::Reminder => "response overdue",
        NoticeKind::Resolved => "resolved",
    }
}

/// Whole minutes, for the response lines (`75`).
fn minutes(secs: u64) -> u64 {
    secs / 60
}

/// The overdue reminder of an event that says `response_overdue`: `no public update from @AcmeAir for 75
/// minutes; the plan says every 60` (or, before any response, how long since the opening against the plan's
/// first-response time).
pub fn response_reminder(e: &SpikeEvent) -> Option<String> {
    let r = e.response.as_ref().filter(|_| e.reasons.contains(&Reason::ResponseOverdue))?;
    let handle = safe::plain(&r.handle, 60);
    Some(if r.first_at.is_none() {
        format!(
            "no public response from {handle} {} minutes after the incident opened; the plan says within {}",
            minutes(r.silent_secs),
            minutes(r.plan.first_response_within_secs)
        )
    } else {
        format!(
            "no public update from {handle} for {} minutes; the plan says every {}",
            minutes(r.silent_secs),
            minutes(r.plan.update_every_secs)
        )
    })
}

/// `@AcmeAir responded (1 post; first response 25 minutes after the opening)` when the company posted since the
/// route's last message about the incident, which had seen `seen` of its posts (a held update may have been
/// replaced by a newer state: the count, not the event's reason, says what the readers have not heard).
pub fn responded(e: &SpikeEvent, seen: u64) -> Option<String> {
    let r = e.response.as_ref().filter(|r| r.posts > seen)?;
    let handle = safe::plain(&r.handle, 60);
    let new = r.posts - seen;
    let what = if new == 1 { "1 post".to_string() } else { format!("{new} posts") };
    Some(match r.first_secs.filter(|_| seen == 0) {
        Some(s) => format!("{handle} responded ({what}; first response {} minutes after the opening)", minutes(s)),
        None => format!("{handle} posted an update ({what}; {} in all)", r.posts),
    })
}

/// The post-mortem line of a resolved event: `detected 9m after the change began · first response after
/// 25m · 2 responses · longest silence 1h 20m · calm 2h 10m after the first response`.
pub fn post_mortem(e: &SpikeEvent) -> Option<String> {
    let pm = e.post_mortem.as_ref()?;
    let d = |s: u64| duration(s as Millis * 1000);
    let mut parts = vec![format!("detected {} after the change began", d(pm.time_to_detect_secs))];
    if e.response.is_some() {
        parts.push(match pm.time_to_first_response_secs {
            Some(s) => format!("first response after {}", d(s)),
            None => "no response".to_string(),
        });
        parts.push(format!("{} responses · longest silence {}", pm.responses, d(pm.longest_silence_secs)));
        if let Some(c) = pm.first_response_to_calm_secs {
            parts.push(format!("calm {} after the first response", d(c)));
        }
    }
    Some(parts.join(" · "))
}

/// `2h 05m`, `12m`, `45s`.
pub fn duration(ms: Millis) -> String {
    let s = ms.max(0) / 1000;
    match (s / 3600, (s % 3600) / 60) {
        (0, 0) => format!("{s}s"),
        (0, m) => format!("{m}m"),
        (h, m) if h < 48 => format!("{h}h {m:02}m"),
        (h, _) => format!("{}d {}h", h / 24, h % 24),
    }
}

pub fn percent(x: f64) -> String {
    format!("{:.1}%", x * 100.0)
}

/// `42 vs baseline 7.5 (5.6×)` in the signal's unit (a share is shown as a percentage).
pub fn observed_vs_baseline(n: &Notice) -> String {
    let e = &n.event;
    let share = matches!(e.signal, flashpoint_core::detect::Signal::NegativeShare);
    let f = |x: f64| if share { percent(x) } else { trim_float(x) };
    let ratio = if e.baseline > 0.0 { format!(" ({:.1}×)", e.observed / e.baseline) } else { String::new() };
    format!("{} vs baseline {}{ratio}", f(e.observed), f(e.baseline))
}

fn trim_float(x: f64) -> String {
    if (x - x.round()).abs() < 1e-9 {
        format!("{}", x.round() as i64)
    } else {
        format!("{x:.1}")
    }
}

pub fn counts(n: &Notice) -> String {
    let c = &n.event.counts;
    format!("{} posts: {} negative, {} neutral, {} positive", c.volume, c.negative, c.neutral, c.positive)
}

/// What people say now that they did not before: the event's drivers (`lost luggage: 889 posts, 342× usual`),
/// or for a v2 event its top terms; made safe by `escape` and joined.
pub fn what_people_say(n: &Notice, k: usize, escape: impl Fn(&str, usize) -> String) -> String {
    let drivers = &n.event.evidence.drivers;
    let terms: Vec<String> = if drivers.is_empty() {
        n.event.evidence.top_terms.iter().take(k).map(|t| format!("{} ({})", escape(&t.term, 40), t.count)).collect()
    } else {
        drivers
            .iter()
            .take(k)
            .map(|d| format!("{} ({} posts, {}× usual)", escape(&d.phrase, 60), d.posts, trim_float(d.lift)))
            .collect()
    };
    if terms.is_empty() {
        "–".into()
    } else {
        terms.join(", ")
    }
}

/// Up to `k` evidence posts: the most negative first, then the widest reach, no post twice.
pub fn evidence(n: &Notice, k: usize) -> Vec<&EvidencePost> {
    let mut out: Vec<&EvidencePost> = Vec::new();
    for p in n.event.evidence.most_negative.iter().chain(n.event.evidence.top_reach.iter()) {
        if out.len() == k {
            break;
        }
        if !out.iter().any(|q| q.id == p.id) {
            out.push(p);
        }
    }
    out
}

/// `— @author (1.2k followers), 2026-03-04T14:05:12Z`, escaped by `escape`.
pub fn attribution(p: &EvidencePost, escape: impl Fn(&str, usize) -> String) -> String {
    attribution_linked(p, escape, |name, _| name)
}

/// [`attribution`] with `@author` passed through `link(name, url)` when the post has an author URL that
/// [`safe::link`] accepts; `link` makes the channel's own markup (the name is already escaped).
pub fn attribution_linked(
    p: &EvidencePost,
    escape: impl Fn(&str, usize) -> String,
    link: impl Fn(String, &str) -> String,
) -> String {
    let name = p.author.as_deref().map(|a| {
        let name = format!("@{}", escape(a, 60));
        match p.author_url.as_deref().and_then(safe::link) {
            Some(u) => link(name, u),
            None => name,
        }
    });
    let who = match (name, p.followers) {
        (Some(n), Some(f)) => format!("{n} ({f} followers)"),
        (Some(n), None) => n,
        (None, _) => "unknown author".into(),
    };
    format!("— {who}, {}", escape(&p.created_at, 40))
}

/// The post's own URL, when [`safe::link`] accepts it.
pub fn post_link(p: &EvidencePost) -> Option<&str> {
    p.url.as_deref().and_then(safe::link)
}

/// `What changed: watch → warning · volume ×3 → ×6`, when anything did since the last message.
pub fn what_changed(n: &Notice) -> Option<String> {
    (!n.changes.is_empty()).then(|| format!("What changed: {}", n.changes.join(" · ")))
}

/// One line for a digest or a closing message (with the post-mortem, on a resolved event that has one).
pub fn closing_summary(n: &Notice) -> String {
    let line = format!(
        "open for {}, peak {} · peak volume {} · peak negative share {} · {} events",
        duration(n.open_for_ms()),
        n.peak_severity.as_str(),
        n.peak_volume,
        percent(n.peak_negative_share),
        n.events_seen
    );
    match post_mortem(&n.event) {
        Some(pm) => format!("{line} · {pm}"),
        None => line,
    }
}

/// The headline. A resolved incident is not drawn in alarm colours: a check mark and its peak instead.
pub fn title(n: &Notice, escape: impl Fn(&str, usize) -> String) -> String {
    if n.kind == NoticeKind::Resolved {
        return format!("✅ RESOLVED · {}: resolved (peak {})", escape(&n.event.entity, 80), n.peak_severity.as_str());
    }
    format!(
        "{} {} {} · {}: {}",
        severity_emoji(n.event.severity),
        severity_upper(n.event.severity),
        n.event.class.as_str(),
        escape(&n.event.entity, 80),
        kind_phrase(n)
    )
}

pub fn time_range(from: Millis, to: Millis) -> String {
    format!("{} – {}", format_rfc3339(from), format_rfc3339(to))
}

/// The ranges of a chart's points (by time) drawn as one line, in the email chart and the incident page alike: a new run starts where two points are much further apart than their
/// neighbours (a step missing), so a coarser part of the series (merged steps) is not taken for a gap.
pub fn line_runs(times: &[Millis]) -> Vec<std::ops::Range<usize>> {
    let gaps: Vec<Millis> = times.windows(2).map(|w| w[1] - w[0]).collect();
    let mut out = Vec::new();
    let mut start = 0;
    for (i, &g) in gaps.iter().enumerate() {
        let prev = if i > 0 { gaps[i - 1] } else { 0 };
        let next = gaps.get(i + 1).copied().unwrap_or(0);
        let near = prev.max(next);
        if near > 0 && g > 3 * near {
            out.push(start..i + 1);
            start = i + 1;
        }
    }
    if start < times.len() {
        out.push(start..times.len());
    }
    out
}

#[cfg(test)]
pub(crate) mod testing {
    use crate::message::{Notice, NoticeKind, Point};
    use flashpoint_core::detect::{Severity, Signal};
    use flashpoint_core::event::{EventKind, SpikeEvent, SPIKE_SCHEMA};
    use flashpoint_core::window::{EvidencePost, TermCount};
    use std::sync::Arc;

    pub const HOSTILE: &str = "<!channel> *Severity:* low\n[click](https://evil.example) <https://evil.example|Grafana> <@U0123> @here \u{202e}gnp.exe <script>x</script>";

    pub fn post(id: &str, text: &str) -> EvidencePost {
        EvidencePost {
            id: id.into(),
            text: text.into(),
            created_at: "2026-03-04T14:05:00.000Z".into(),
            author: Some(format!("user_{id}")),
            followers: Some(1200),
            compound: -0.8,
            url: None,
            author_url: None,
        }
    }

    /// URLs that must never become links: each tries to end the link in one markup or another, or is not https.
    pub const HOSTILE_URLS: &[&str] = &[
        "https://evil.example/x|Grafana dashboard>",
        "https://evil.example/x>*Severity:* low<",
        "https://evil.example/\"onmouseover=\"alert(1)",
        "https://evil.example/a b",
        "https://evil.example/a\n*Severity:* low",
        "javascript:alert(1)",
        "JaVaScRiPt:alert(1)//https://x.com",
        "http://evil.example/",
        "data:text/html,<script>x</script>",
    ];

    /// `e` with the evidence post `id` (wherever it appears) linked to `url` and its author to `author_url`.
    pub fn with_links(mut e: SpikeEvent, id: &str, url: &str, author_url: &str) -> SpikeEvent {
        let ev = &mut e.evidence;
        for p in ev.most_negative.iter_mut().chain(ev.top_reach.iter_mut()).filter(|p| p.id == id) {
            p.url = Some(url.into());
            p.author_url = Some(author_url.into());
        }
        e
    }

    /// Built from JSON rather than a struct literal, so fields that later versions add to `SpikeEvent` (with
    /// serde defaults) do not break these tests.
    pub fn event(kind: EventKind, seq: u64, severity: Severity) -> SpikeEvent {
        let post = |id: &str, text: &str| serde_json::to_value(post(id, text)).unwrap();
        serde_json::from_value(serde_json::json!({
            "schema": SPIKE_SCHEMA,
            "incident_id": "inc-1387cae96a0b8ab5",
            "seq": seq,
            "kind": kind,
            "entity": "Acme Air",
            "incident_start": "2026-03-04T14:01:00.000Z",
            "window_start": "2026-03-04T14:01:00.000Z",
            "window_end": "2026-03-04T14:06:00.000Z",
            "signal": Signal::NegativeShare,
            "observed": 0.62,
            "baseline": 0.12,
            "score": 6.1,
            "severity": severity,
            "counts": {"volume": 120, "negative": 74, "neutral": 30, "positive": 16},
            "negative_share": 0.6167,
            "mean_compound": -0.41,
            "reach": 90_000,
            "evidence": {
                "most_negative": [post("p1", HOSTILE), post("p2", "Lost my bag again, 3 hours on hold")],
                "top_reach": [post("p1", HOSTILE), post("p3", "Flight AA12 cancelled, no refund")],
                "top_terms": [TermCount { term: "refund".into(), count: 31 }, TermCount { term: "<!here>".into(), count: 4 }],
            },
        }))
        .unwrap()
    }

    pub fn notice(kind: NoticeKind, e: SpikeEvent) -> Notice {
        let raw: Arc<str> = serde_json::to_string(&e).unwrap().into();
        Notice {
            kind,
            first: kind == NoticeKind::Opened,
            changes: vec![],
            peak_severity: e.severity,
            peak_volume: 150,
            peak_negative_share: 0.7,
            events_seen: e.seq as u32 + 1,
            history: (0..12)
                .map(|i| Point {
                    at: 1_772_632_860_000 - 3_600_000 + i * 600_000,
                    volume: 20 + (i as u64 * 9) % 70,
                    negative: 2 + i as u64 * 3,
                    band: None,
                })
                .collect(),
            event: Arc::new(e),
            raw,
        }
    }
}
