//! The `[notify]` config section: channels (where messages go, with their secrets) and routes (which events go
//! to which channels, how often). Every struct denies unknown keys, and [`NotifyConfig::validate`] names the key
//! at fault, like the rest of the config.

use crate::secret::SecretRef;
use flashpoint_core::detect::{Severity, Signal};
use flashpoint_core::event::EventKind;
use serde::{Deserialize, Serialize};

pub const PAGERDUTY_EVENTS_URL: &str = "https://events.pagerduty.com/v2/enqueue";

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct NotifyConfig {
    /// Grafana base URL for the dashboard link in every message, e.g. `https://grafana.example.com`. No link
    /// when absent.
    pub grafana_url: Option<String>,
    /// The Flashpoint dashboard's uid (deploy/grafana/dashboards/flashpoint.json).
    pub dashboard_uid: String,
    /// While an incident is open, a status message at most this often per route (escalations go at once).
    pub update_interval_secs: u64,
    pub delivery: DeliveryConfig,
    pub channels: Vec<ChannelConfig>,
    pub routes: Vec<RouteConfig>,
}

impl Default for NotifyConfig {
    fn default() -> Self {
        NotifyConfig {
            grafana_url: None,
            dashboard_uid: "flashpoint".into(),
            update_interval_secs: 900,
            delivery: DeliveryConfig::default(),
            channels: Vec::new(),
            routes: Vec::new(),
        }
    }
}

/// Retries and queues, the same for every channel.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DeliveryConfig {
    /// Messages waiting per channel; when full, a new message for that channel is dead-lettered (reason
    /// `queue_full`) rather than stalling the other channels.
    pub queue_capacity: usize,
    /// Attempts per message before it is dead-lettered.
    pub max_attempts: u32,
    /// First retry delay; doubled per attempt up to `max_backoff_ms`, with jitter.
    pub initial_backoff_ms: u64,
    pub max_backoff_ms: u64,
    /// A `Retry-After` longer than this is cut to it (a receiver cannot park a channel for a day).
    pub max_retry_after_secs: u64,
    /// Per request: connect, send and wait for the answer. A hanging receiver counts as a retryable failure.
    pub timeout_secs: u64,
}

impl Default for DeliveryConfig {
    fn default() -> Self {
        DeliveryConfig {
            queue_capacity: 1024,
            max_attempts: 12,
            initial_backoff_ms: 500,
            max_backoff_ms: 60_000,
            max_retry_after_secs: 300,
            timeout_secs: 10,
        }
    }
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "lowercase")]
pub enum ChannelConfig {
    /// Slack incoming webhook (Block Kit).
    Slack(UrlChannel),
    /// Microsoft Teams workflow webhook ("When a Teams webhook request is received"), Adaptive Card.
    Teams(UrlChannel),
    /// PagerDuty Events API v2.
    Pagerduty(PagerDutyChannel),
    /// Any HTTPS endpoint: the spike event JSON, signed.
    Webhook(WebhookChannel),
    Email(EmailChannel),
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UrlChannel {
    pub name: String,
    /// The webhook URL is a credential: from an environment variable or a file.
    pub url: SecretRef,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PagerDutyChannel {
    pub name: String,
    /// The integration's routing key (a credential).
    pub routing_key: SecretRef,
    /// The Events API endpoint (not secret; changed for EU accounts or tests).
    #[serde(default = "pagerduty_url")]
    pub url: String,
}

fn pagerduty_url() -> String {
    PAGERDUTY_EVENTS_URL.into()
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WebhookChannel {
    pub name: String,
    pub url: SecretRef,
    /// HMAC-SHA256 key for the `Flashpoint-Signature` header.
    pub signing_key: SecretRef,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, Default)]
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

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EmailChannel {
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

impl ChannelConfig {
    pub fn name(&self) -> &str {
        match self {
            ChannelConfig::Slack(c) | ChannelConfig::Teams(c) => &c.name,
            ChannelConfig::Pagerduty(c) => &c.name,
            ChannelConfig::Webhook(c) => &c.name,
            ChannelConfig::Email(c) => &c.name,
        }
    }

    pub fn kind(&self) -> &'static str {
        match self {
            ChannelConfig::Slack(_) => "slack",
            ChannelConfig::Teams(_) => "teams",
            ChannelConfig::Pagerduty(_) => "pagerduty",
            ChannelConfig::Webhook(_) => "webhook",
            ChannelConfig::Email(_) => "email",
        }
    }

    /// (key, where) of every secret the channel needs, for resolving and for `check-config`.
    pub fn secrets(&self) -> Vec<(&'static str, &SecretRef)> {
        match self {
            ChannelConfig::Slack(c) | ChannelConfig::Teams(c) => vec![("url", &c.url)],
            ChannelConfig::Pagerduty(c) => vec![("routing_key", &c.routing_key)],
            ChannelConfig::Webhook(c) => vec![("url", &c.url), ("signing_key", &c.signing_key)],
            ChannelConfig::Email(c) => {
                c.username.iter().map(|s| ("username", s)).chain(c.password.iter().map(|s| ("password", s))).collect()
            }
        }
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
        for (i, c) in self.channels.iter().enumerate() {
            let key = format!("notify.channels[{i}]");
            let name = c.name();
            if !valid_name(name) {
                return Err(format!("{key}.name: `{name}`: use letters, digits, - and _ (it is a metric label)"));
            }
            if self.channels[..i].iter().any(|o| o.name() == name) {
                return Err(format!("{key}.name: `{name}` is used twice"));
            }
            match c {
                ChannelConfig::Pagerduty(p) => {
                    crate::engine::check_url(&p.url).map_err(|e| format!("{key}.url: `{}`: {e}", p.url))?;
                }
                ChannelConfig::Email(e) => {
                    e.from.parse::<lettre::message::Mailbox>().map_err(|err| format!("{key}.from: {err}"))?;
                    if e.to.is_empty() {
                        return Err(format!("{key}.to: at least one recipient"));
                    }
                    for (j, t) in e.to.iter().enumerate() {
                        t.parse::<lettre::message::Mailbox>().map_err(|err| format!("{key}.to[{j}]: `{t}`: {err}"))?;
                    }
                    if e.tls == SmtpTls::None && !is_localhost(&e.smtp_host) {
                        return Err(format!(
                            "{key}.tls: \"none\" is only allowed for a relay on localhost, not `{}` (use starttls or tls)",
                            e.smtp_host
                        ));
                    }
                    if e.username.is_some() != e.password.is_some() {
                        return Err(format!("{key}: username and password go together"));
                    }
                }
                _ => {}
            }
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
        if !self.routes.is_empty() && self.channels.is_empty() {
            return Err("notify.channels: routes need channels".into());
        }
        Ok(())
    }
}

fn valid_name(s: &str) -> bool {
    !s.is_empty() && s.len() <= 64 && s.chars().all(|c| c.is_ascii_alphanumeric() || "-_".contains(c))
}

pub fn is_localhost(host: &str) -> bool {
    matches!(host, "localhost" | "::1" | "[::1]") || host.starts_with("127.")
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
        match &c.channels[1] {
            ChannelConfig::Pagerduty(p) => assert_eq!(p.url, PAGERDUTY_EVENTS_URL),
            _ => panic!(),
        }
    }

    #[test]
    fn errors_name_the_key() {
        let inline = OK.replace("url = { env = \"SLACK_URL\" }", "url = \"https://hooks.slack.com/x\"");
        assert!(parse(&inline).is_err(), "an inline secret must be refused");
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
