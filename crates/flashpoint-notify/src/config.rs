//! The `[notify]` config section: channels (where messages go, with their secrets) and routes (which events go
//! to which channels, how often). Every struct denies unknown keys, and [`NotifyConfig::validate`] names the key
//! at fault, like the rest of the config.

use crate::channel::ChannelSpec;
pub use crate::delivery::{check_url, is_localhost, DeliveryConfig};
use crate::secret::SecretRef;
use flashpoint_core::detect::{Severity, Signal};
use flashpoint_core::event::{EventKind, IncidentClass};
use serde::{Deserialize, Serialize};
use std::sync::Arc;

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct NotifyConfig {
    /// Grafana base URL for the dashboard link in every message, e.g. `https://grafana.example.com`. No link
    /// when absent.
    pub grafana_url: Option<String>,
    /// The Flashpoint dashboard's uid (deploy/grafana/dashboards/flashpoint.json).
    pub dashboard_uid: String,
    /// Where people reach the worker's incident pages, e.g. `https://flashpoint.example.com`: every message
    /// links `{public_url}/incidents/{incident_id}`. No link when absent.
    pub public_url: Option<String>,
    /// The incident pages the notify stage serves (`[notify.pages]`).
    pub pages: PagesConfig,
    /// While an incident is open, a status message at most this often per route (escalations go at once).
    pub update_interval_secs: u64,
    pub delivery: DeliveryConfig,
    pub channels: Vec<ChannelConfig>,
    pub routes: Vec<RouteConfig>,
    /// Incidents whose messages are held back (counted, not sent) until a time.
    pub silences: Vec<Silence>,
}

/// `[[notify.silences]]`: while it lasts, messages about matching entities are not sent (counted in
/// `flashpoint_notifications_silenced_total`), e.g. during a known outage or a planned launch.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Silence {
    /// An entity name or glob (`*`, `?`; case-insensitive).
    pub entity: String,
    /// RFC 3339 end (`2026-03-04T18:00:00Z`); compared with the routing clock.
    pub until: String,
    pub reason: String,
    /// Only these routes (empty: all).
    #[serde(default)]
    pub routes: Vec<String>,
}

/// `[notify.pages]`: the incident pages the notify stage serves at `/incidents` on `metrics.listen`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct PagesConfig {
    pub enabled: bool,
    /// Incidents kept in memory; past it the one updated longest ago is forgotten.
    pub max_incidents: usize,
    /// Events kept per incident: the opening and the newest (at least 2).
    pub max_events: usize,
    /// The access token (`Authorization: Bearer …`, or `?token=…` once, which sets a cookie). Without one the
    /// pages are served only on a loopback listener: the binary refuses any other at start.
    pub token: Option<SecretRef>,
}

impl Default for PagesConfig {
    fn default() -> Self {
        PagesConfig { enabled: true, max_incidents: 200, max_events: 100, token: None }
    }
}

impl Default for NotifyConfig {
    fn default() -> Self {
        NotifyConfig {
            grafana_url: None,
            dashboard_uid: "flashpoint".into(),
            public_url: None,
            pages: PagesConfig::default(),
            update_interval_secs: 900,
            delivery: DeliveryConfig::default(),
            channels: Vec::new(),
            routes: Vec::new(),
            silences: Vec::new(),
        }
    }
}

/// One `[[notify.channels]]` entry: `kind` picks the channel module ([`crate::channel::KINDS`]), which reads the
/// rest of the table.
#[derive(Clone, Debug)]
pub struct ChannelConfig {
    kind: &'static str,
    spec: Arc<dyn ChannelSpec>,
    /// The table as written (secrets are references, never values), for equality and serialisation.
    table: serde_json::Value,
}

impl PartialEq for ChannelConfig {
    fn eq(&self, other: &Self) -> bool {
        self.table == other.table
    }
}

impl Serialize for ChannelConfig {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        self.table.serialize(s)
    }
}

impl<'de> Deserialize<'de> for ChannelConfig {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        use serde::de::Error;
        let table = serde_json::Value::deserialize(d)?;
        ChannelConfig::from_table(table).map_err(D::Error::custom)
    }
}

impl ChannelConfig {
    pub fn from_table(table: serde_json::Value) -> Result<ChannelConfig, String> {
        let serde_json::Value::Object(mut rest) = table.clone() else {
            return Err("a channel is a table with `kind` and `name`".into());
        };
        let kind = match rest.remove("kind") {
            Some(serde_json::Value::String(k)) => k,
            Some(_) => return Err("kind: a string".into()),
            None => return Err("kind: missing".into()),
        };
        let Some(k) = crate::channel::KINDS.iter().find(|k| k.name == kind) else {
            let names: Vec<&str> = crate::channel::KINDS.iter().map(|k| k.name).collect();
            return Err(format!(
                "kind: `{}` is not one of {}",
                flashpoint_core::sanitize::for_log_truncated(&kind, 40),
                names.join(", ")
            ));
        };
        let spec = (k.parse)(serde_json::Value::Object(rest))?;
        Ok(ChannelConfig { kind: k.name, spec: Arc::from(spec), table })
    }

    pub fn name(&self) -> &str {
        self.spec.name()
    }

    pub fn kind(&self) -> &'static str {
        self.kind
    }

    /// (key, where) of every secret the channel needs, for resolving and for `check-config`.
    pub fn secrets(&self) -> Vec<(&'static str, &SecretRef)> {
        self.spec.secrets()
    }

    pub fn spec(&self) -> &dyn ChannelSpec {
        &*self.spec
    }
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RateLimit {
    /// At most this many messages per route and entity ...
    pub max: u32,
    /// ... in any window of this many seconds. While limited, only the newest state is kept and sent when allowed.
    pub per_secs: u64,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DigestConfig {
    /// Incidents at or below `up_to` are gathered into one message this often, instead of one message each.
    pub every_secs: u64,
    #[serde(default = "watch")]
    pub up_to: Severity,
}

fn watch() -> Severity {
    Severity::Watch
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RouteConfig {
    pub name: String,
    /// Entity names or globs (`*`, `?`; case-insensitive). Empty: every entity.
    #[serde(default)]
    pub entities: Vec<String>,
    #[serde(default = "watch")]
    pub min_severity: Severity,
    /// Empty: every signal.
    #[serde(default)]
    pub signals: Vec<Signal>,
    /// Empty: opened, updated and resolved.
    #[serde(default)]
    pub kinds: Vec<EventKind>,
    /// `crisis`, `buzz`; empty: both. A buzz incident that turns negative becomes a crisis (an `updated`
    /// event), and from then on matches a crisis-only route.
    #[serde(default)]
    pub classes: Vec<IncidentClass>,
    pub channels: Vec<String>,
    /// Overrides `notify.update_interval_secs` for this route.
    pub update_interval_secs: Option<u64>,
    pub rate_limit: Option<RateLimit>,
    pub digest: Option<DigestConfig>,
}

/// Entity glob: `*` any run, `?` one character, ASCII case-insensitive.
pub fn glob_match(pattern: &str, name: &str) -> bool {
    let p: Vec<char> = pattern.chars().map(|c| c.to_ascii_lowercase()).collect();
    let n: Vec<char> = name.chars().map(|c| c.to_ascii_lowercase()).collect();
    // Iterative matcher with one backtrack point: linear in practice, no recursion blow-up on `a*a*a*`.
    let (mut pi, mut ni, mut star, mut mark) = (0, 0, None, 0);
    while ni < n.len() {
        if pi < p.len() && (p[pi] == '?' || p[pi] == n[ni]) {
            pi += 1;
            ni += 1;
        } else if pi < p.len() && p[pi] == '*' {
            star = Some(pi);
            mark = ni;
            pi += 1;
        } else if let Some(s) = star {
            pi = s + 1;
            mark += 1;
            ni = mark;
        } else {
            return false;
        }
    }
    p[pi..].iter().all(|&c| c == '*')
}

impl NotifyConfig {
    pub fn is_empty(&self) -> bool {
        self.channels.is_empty() && self.routes.is_empty()
    }

    pub fn channel(&self, name: &str) -> Option<&ChannelConfig> {
        self.channels.iter().find(|c| c.name() == name)
    }

    /// Checks everything that does not need the secrets' values; errors name the key.
    pub fn validate(&self) -> Result<(), String> {
        if let Some(u) = &self.grafana_url {
            if !(u.starts_with("http://") || u.starts_with("https://")) {
                return Err(format!("notify.grafana_url: `{u}` is not an http(s) URL"));
            }
        }
        if let Some(u) = &self.public_url {
            if !(u.starts_with("http://") || u.starts_with("https://")) || u.contains(char::is_whitespace) {
                return Err(format!("notify.public_url: `{u}` is not an http(s) URL"));
            }
        }
        if self.pages.max_incidents == 0 {
            return Err("notify.pages.max_incidents: must be at least 1".into());
        }
        if self.pages.max_events < 2 {
            return Err("notify.pages.max_events: must be at least 2 (the opening and the newest event)".into());
        }
        if self.dashboard_uid.is_empty()
            || !self.dashboard_uid.chars().all(|c| c.is_ascii_alphanumeric() || "-_".contains(c))
        {
            return Err("notify.dashboard_uid: letters, digits, - and _ only".into());
        }
        if self.update_interval_secs == 0 {
            return Err("notify.update_interval_secs: must be at least 1".into());
        }
        let d = &self.delivery;
        if d.queue_capacity == 0 {
            return Err("notify.delivery.queue_capacity: must be at least 1".into());
        }
        if d.max_attempts == 0 {
            return Err("notify.delivery.max_attempts: must be at least 1".into());
        }
        if d.initial_backoff_ms == 0 || d.max_backoff_ms < d.initial_backoff_ms {
            return Err("notify.delivery: need 0 < initial_backoff_ms <= max_backoff_ms".into());
        }
        if d.timeout_secs == 0 {
            return Err("notify.delivery.timeout_secs: must be at least 1".into());
        }
        if d.message_deadline_secs == 0 || d.breaker_failures == 0 || d.breaker_open_secs == 0 {
            return Err(
                "notify.delivery: message_deadline_secs, breaker_failures and breaker_open_secs must be at least 1"
                    .into(),
            );
        }
        for (i, c) in self.channels.iter().enumerate() {
            let key = format!("notify.channels[{i}]");
            let name = c.name();
            if !valid_name(name) {
                return Err(format!("{key}.name: `{name}`: use letters, digits, - and _ (it is a metric label)"));
            }
            if self.channels[..i].iter().any(|o| o.name() == name) {
                return Err(format!("{key}.name: `{name}` is used twice"));
            }
            c.spec().validate().map_err(|e| format!("{key}.{e}"))?;
        }
        for (i, r) in self.routes.iter().enumerate() {
            let key = format!("notify.routes[{i}]");
            if !valid_name(&r.name) {
                return Err(format!("{key}.name: `{}`: use letters, digits, - and _ (it is a metric label)", r.name));
            }
            if self.routes[..i].iter().any(|o| o.name == r.name) {
                return Err(format!("{key}.name: `{}` is used twice", r.name));
            }
            if r.channels.is_empty() {
                return Err(format!("{key}.channels: at least one channel"));
            }
            for (j, c) in r.channels.iter().enumerate() {
                if self.channel(c).is_none() {
                    return Err(format!("{key}.channels[{j}]: no channel named `{c}` in [[notify.channels]]"));
                }
                if r.channels[..j].contains(c) {
                    return Err(format!("{key}.channels[{j}]: `{c}` is listed twice"));
                }
            }
            if r.entities.iter().any(|e| e.is_empty()) {
                return Err(format!("{key}.entities: empty pattern"));
            }
            if r.update_interval_secs == Some(0) {
                return Err(format!("{key}.update_interval_secs: must be at least 1"));
            }
            if let Some(l) = &r.rate_limit {
                if l.max == 0 || l.per_secs == 0 {
                    return Err(format!("{key}.rate_limit: max and per_secs must be at least 1"));
                }
            }
            if let Some(d) = &r.digest {
                if d.every_secs == 0 {
                    return Err(format!("{key}.digest.every_secs: must be at least 1"));
                }
            }
        }
        for (i, x) in self.silences.iter().enumerate() {
            let key = format!("notify.silences[{i}]");
            if x.entity.is_empty() {
                return Err(format!("{key}.entity: empty pattern"));
            }
            if flashpoint_core::time::parse_rfc3339(&x.until).is_none() {
                return Err(format!("{key}.until: `{}` is not an RFC 3339 time", x.until));
            }
            for r in &x.routes {
                if !self.routes.iter().any(|o| &o.name == r) {
                    return Err(format!("{key}.routes: no route named `{r}`"));
                }
            }
        }
        if !self.routes.is_empty() && self.channels.is_empty() {
            return Err("notify.channels: routes need channels".into());
        }
        Ok(())
    }
}

fn valid_name(s: &str) -> bool {
    !s.is_empty() && s.len() <= 64 && s.chars().all(|c| c.is_ascii_alphanumeric() || "-_".contains(c))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(s: &str) -> Result<NotifyConfig, String> {
        let c: NotifyConfig = toml::from_str(s).map_err(|e| e.to_string())?;
        c.validate()?;
        Ok(c)
    }

    const OK: &str = r#"
grafana_url = "https://grafana.example.com"
[[channels]]
kind = "slack"
name = "ops"
url = { env = "SLACK_URL" }
[[channels]]
kind = "pagerduty"
name = "pager"
routing_key = { file = "/run/secrets/pd" }
[[channels]]
kind = "webhook"
name = "hook"
url = { env = "HOOK_URL" }
signing_key = { env = "HOOK_KEY" }
[[channels]]
kind = "email"
name = "mail"
smtp_host = "127.0.0.1"
smtp_port = 2525
tls = "none"
from = "Flashpoint <alerts@example.com>"
to = ["oncall@example.com"]
[[routes]]
name = "pages"
entities = ["Acme*"]
min_severity = "critical"
channels = ["pager", "ops"]
rate_limit = { max = 4, per_secs = 3600 }
[[routes]]
name = "noise"
channels = ["mail"]
digest = { every_secs = 3600 }
"#;

    #[test]
    fn parses_and_validates() {
        let c = parse(OK).unwrap();
        assert_eq!(c.channels.len(), 4);
        assert_eq!(c.routes[0].min_severity, Severity::Critical);
        assert_eq!(c.routes[1].digest.as_ref().unwrap().up_to, Severity::Watch);
        assert_eq!(c.channels[1].kind(), "pagerduty");
        assert!(format!("{:?}", c.channels[1].spec()).contains(crate::channel::pagerduty::EVENTS_URL));
    }

    #[test]
    fn errors_name_the_key() {
        let inline = OK.replace("url = { env = \"SLACK_URL\" }", "url = \"https://hooks.slack.com/INLINESECRET\"");
        let e = parse(&inline).unwrap_err();
        assert!(e.contains("url") && e.contains("{ env = ") && !e.contains("INLINESECRET"), "{e}");
        let e = parse(&OK.replace("channels = [\"mail\"]", "channels = [\"nope\"]")).unwrap_err();
        assert!(e.contains("notify.routes[1].channels[0]") && e.contains("nope"), "{e}");
        let e = parse(&OK.replace("smtp_host = \"127.0.0.1\"", "smtp_host = \"smtp.example.com\"")).unwrap_err();
        assert!(e.contains("notify.channels[3].tls"), "{e}");
        let e = parse(&OK.replace("oncall@example.com", "not an address")).unwrap_err();
        assert!(e.contains("notify.channels[3].to[0]"), "{e}");
        let e = parse(&OK.replace("name = \"hook\"", "name = \"ops\"")).unwrap_err();
        assert!(e.contains("notify.channels[2].name"), "{e}");
        let e = parse(&OK.replace("max = 4", "max = 0")).unwrap_err();
        assert!(e.contains("notify.routes[0].rate_limit"), "{e}");
        assert!(parse(&OK.replace("min_severity = \"critical\"", "min_severity = \"extreme\"")).is_err());
        assert!(parse(&OK.replace("signing_key", "signing_kee")).is_err());
    }

    #[test]
    fn pages_keys() {
        let c = parse(&format!("public_url = \"https://fp.example.com/\"\n{OK}\n[pages]\nmax_incidents = 5\ntoken = {{ env = \"FP_TOKEN\" }}\n")).unwrap();
        assert_eq!((c.pages.max_incidents, c.pages.max_events, c.pages.enabled), (5, 100, true));
        assert_eq!(c.pages.token, Some(SecretRef::Env("FP_TOKEN".into())));
        let e = parse(&format!("{OK}\n[pages]\ntoken = \"inline-secret\"\n")).unwrap_err();
        // (toml's own Display quotes the line; the binary's loader reports the message alone, see its tests.)
        assert!(e.contains("an inline value is refused"), "{e}");
        let e = parse(&format!("public_url = \"fp.example.com\"\n{OK}")).unwrap_err();
        assert!(e.contains("notify.public_url"), "{e}");
        let e = parse(&format!("{OK}\n[pages]\nmax_events = 1\n")).unwrap_err();
        assert!(e.contains("notify.pages.max_events"), "{e}");
        assert!(parse(&format!("{OK}\n[pages]\nmax_incident = 1\n")).is_err());
    }

    #[test]
    fn globs() {
        assert!(glob_match("Acme*", "acme air"));
        assert!(glob_match("*air", "Acme Air"));
        assert!(glob_match("A?me Air", "Acme Air"));
        assert!(glob_match("Globex", "globex"));
        assert!(!glob_match("Globex", "Globex Corp"));
        assert!(glob_match("*", ""));
        assert!(!glob_match("a*b*c", "aXbXd"));
        assert!(glob_match("a*b*c", "aXbXc"));
    }
}
