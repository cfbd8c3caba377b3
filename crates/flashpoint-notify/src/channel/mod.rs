//! Channels: where messages go. Each kind of channel is one module here (its config, how it reaches its
//! receiver, how it renders a message, its receiver's limits) and one line in [`KINDS`]; nothing else in the
//! crate names a kind. The engine sees only [`ChannelSpec`] (the parsed config) and [`Channel`] (the live
//! channel that renders messages into [`Request`]s); sending a request, classifying its failure and retrying it
//! are the same for every kind and live in the engine and in [`send`].

pub mod email;
pub mod pagerduty;
pub mod slack;
pub mod teams;
pub mod webhook;

use crate::delivery::DeliveryConfig;
use crate::format::Context;
use crate::message::{Message, Notice};
use crate::secret::{Secret, SecretError, SecretRef};
use lettre::{AsyncSmtpTransport, AsyncTransport, Tokio1Executor};
use std::fmt;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

/// A kind of channel: its `kind = "…"` name and how its config table is read.
pub struct Kind {
    pub name: &'static str,
    /// Reads the channel's table (every key but `kind`); errors start with the key at fault.
    pub parse: fn(serde_json::Value) -> Result<Box<dyn ChannelSpec>, String>,
}

/// Every kind of channel. A new channel is a module and a line here.
pub const KINDS: &[Kind] = &[slack::KIND, teams::KIND, pagerduty::KIND, webhook::KIND, email::KIND];

/// Reads `T` from a channel's table, naming the key at fault and never echoing a value (a value in the wrong
/// place may well be a secret).
pub fn parse_table<T: serde::de::DeserializeOwned>(v: serde_json::Value) -> Result<T, String> {
    serde_path_to_error::deserialize(v).map_err(|e| {
        let path = e.path().to_string();
        let inner = e.into_inner().to_string();
        if path == "." {
            inner
        } else {
            format!("{path}: {inner}")
        }
    })
}

/// A channel's config, parsed: what the engine needs to know before it starts it.
pub trait ChannelSpec: fmt::Debug + Send + Sync {
    fn name(&self) -> &str;
    /// (key, where) of every secret the channel needs, for resolving and for `check-config`.
    fn secrets(&self) -> Vec<(&'static str, &SecretRef)>;
    /// Checks what does not need the secrets' values; an error starts with the key at fault.
    fn validate(&self) -> Result<(), String> {
        Ok(())
    }
    /// Reads the secrets and builds the live channel.
    fn build(&self, b: &Build<'_>) -> Result<Box<dyn Channel>, BuildError>;
}

/// Why a channel could not be started; never carries a secret's value.
#[derive(Debug, thiserror::Error)]
pub enum BuildError {
    #[error("{key}: {reason}")]
    Secret { key: &'static str, reason: SecretError },
    #[error("{0}")]
    Other(String),
}

/// What building a channel may use.
pub struct Build<'a> {
    pub env: &'a dyn Fn(&str) -> Option<String>,
    pub delivery: &'a DeliveryConfig,
}

impl Build<'_> {
    pub fn secret(&self, key: &'static str, r: &SecretRef) -> Result<Secret, BuildError> {
        r.resolve_with(self.env).map_err(|reason| BuildError::Secret { key, reason })
    }

    /// A secret that is a URL: checked like any other URL, the reason naming the key, never the value.
    pub fn secret_url(&self, key: &'static str, r: &SecretRef) -> Result<Secret, BuildError> {
        let v = self.secret(key, r)?;
        crate::delivery::check_url(v.expose()).map_err(|reason| BuildError::Other(format!("{key} ({r}): {reason}")))?;
        Ok(v)
    }

    pub fn timeout(&self) -> Duration {
        Duration::from_secs(self.delivery.timeout_secs)
    }
}

/// A started channel: renders messages into requests, in order, and reads its receiver's answers.
pub trait Channel: Send + Sync {
    /// The requests for one message, in order (none: nothing to send here, e.g. a plain update to PagerDuty).
    /// Called when the message's turn comes, after every earlier message of the channel is finished, so a
    /// channel may use what earlier answers told it (a Slack thread).
    fn render(&mut self, msg: &Message, ctx: &Context) -> Result<Vec<Request>, String>;

    /// The requests of a test message (`flashpoint notify test`): by default the notice rendered as usual.
    fn render_test(&mut self, n: &Notice, ctx: &Context) -> Result<Vec<Request>, String> {
        self.render(&Message::Notice(n.clone()), ctx)
    }

    /// A 2xx answer to `req`: a receiver that reports errors inside a 200 (Slack's Web API) refuses it here,
    /// and a threading channel records the id it was given.
    fn accepted(&mut self, _req: &Request, _body: &[u8]) -> Result<(), Failure> {
        Ok(())
    }

    /// State worth keeping across a restart (a Slack thread per incident), as (key, value) pairs.
    fn state(&self) -> Vec<(String, String)> {
        Vec::new()
    }

    /// Restores what [`Channel::state`] returned before a restart.
    fn restore(&mut self, _state: &[(String, String)]) {}
}

/// One request to a receiver.
pub enum Request {
    Http(HttpRequest),
    Mail { smtp: Arc<AsyncSmtpTransport<Tokio1Executor>>, message: Box<lettre::Message> },
}

pub struct HttpRequest {
    /// A secret: webhook URLs are credentials.
    pub url: Secret,
    pub body: Vec<u8>,
    pub headers: Vec<(&'static str, String)>,
    /// Signs the body (`Flashpoint-Signature`) with this key, afresh on each attempt.
    pub sign: Option<Secret>,
    /// `Authorization: Bearer …`.
    pub bearer: Option<Secret>,
    /// What the channel wants to know about this request when it is accepted (e.g. the incident it opens).
    pub note: Option<String>,
}

impl HttpRequest {
    pub fn json(url: &Secret, body: &serde_json::Value) -> HttpRequest {
        HttpRequest {
            url: url.clone(),
            body: serde_json::to_vec(body).expect("a JSON value serialises"),
            headers: vec![("content-type", "application/json".into())],
            sign: None,
            bearer: None,
            note: None,
        }
    }
}

/// Why one attempt failed.
#[derive(Debug, Clone)]
pub enum Failure {
    /// Worth another attempt (connection, timeout, 408/429/5xx, a transient SMTP reply).
    Retry { after: Option<Duration>, reason: String, cause: Cause },
    /// Never worth another attempt (other 4xx, a permanent SMTP reply, a refusal in the body).
    Permanent(String),
}

/// The class of a retryable failure: the breaker counts the ones that say the destination is unhealthy.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Cause {
    Connection,
    Timeout,
    /// 5xx or 408, or a transient SMTP reply.
    Server,
    /// 429: the receiver is healthy, it asks us to slow down.
    RateLimited,
}

fn unix_now() -> i64 {
    SystemTime::now().duration_since(SystemTime::UNIX_EPOCH).map_or(0, |d| d.as_secs() as i64)
}

pub fn retry_after(h: Option<&reqwest::header::HeaderValue>) -> Option<Duration> {
    let v = h?.to_str().ok()?.trim();
    if let Ok(secs) = v.parse::<u64>() {
        return Some(Duration::from_secs(secs));
    }
    let at = httpdate::parse_http_date(v).ok()?;
    Some(at.duration_since(SystemTime::now()).unwrap_or(Duration::ZERO))
}

/// Names what went wrong with a request that got no answer, from the error's whole chain (reqwest's own
/// message says only "error sending request"), without the URL.
pub fn describe_request_error(e: &reqwest::Error, timeout: Duration) -> (Cause, String) {
    if e.is_timeout() {
        return (Cause::Timeout, format!("timed out: no answer within {}s", timeout.as_secs()));
    }
    let mut chain = Vec::new();
    let mut io_kind = None;
    let mut src: Option<&dyn std::error::Error> = Some(e);
    while let Some(s) = src {
        if let Some(io) = s.downcast_ref::<std::io::Error>() {
            io_kind.get_or_insert(io.kind());
        }
        chain.push(s.to_string());
        src = s.source();
    }
    let all = chain.join(": ").to_ascii_lowercase();
    let last = chain.last().cloned().unwrap_or_default();
    let detail = crate::safe::plain(&last, 200);
    use std::io::ErrorKind as K;
    let reason = match io_kind {
        Some(K::ConnectionRefused) => "connection refused".to_string(),
        Some(K::ConnectionReset) => "connection reset by the receiver".to_string(),
        Some(K::TimedOut) => "connect timed out".to_string(),
        _ if all.contains("dns error") || all.contains("failed to lookup") => format!("DNS lookup failed: {detail}"),
        _ if all.contains("certificate") || all.contains("tls") || all.contains("handshake") => {
            format!("TLS failed: {detail}")
        }
        _ if e.is_connect() => format!("cannot connect: {detail}"),
        _ => format!("request failed: {detail}"),
    };
    let cause = if matches!(io_kind, Some(K::TimedOut)) { Cause::Timeout } else { Cause::Connection };
    (cause, reason)
}

/// One attempt at one request. Returns the answer's body on success.
pub async fn send(req: &Request, http: &reqwest::Client, timeout: Duration) -> Result<Vec<u8>, Failure> {
    match req {
        Request::Http(r) => {
            let mut rb = http.post(r.url.expose()).body(r.body.clone());
            for (k, v) in &r.headers {
                rb = rb.header(*k, v);
            }
            if let Some(key) = &r.sign {
                rb = rb.header(webhook::SIGNATURE_HEADER, webhook::sign(key.expose().as_bytes(), unix_now(), &r.body));
            }
            if let Some(token) = &r.bearer {
                rb = rb.header("authorization", format!("Bearer {}", token.expose()));
            }
            let resp = rb.send().await.map_err(|e| {
                let (cause, reason) = describe_request_error(&e, timeout);
                Failure::Retry { after: None, reason, cause }
            })?;
            let status = resp.status();
            let after = retry_after(resp.headers().get(reqwest::header::RETRY_AFTER));
            let body = resp.bytes().await.map(|b| b.to_vec()).unwrap_or_default();
            if status.is_success() {
                return Ok(body);
            }
            let text = String::from_utf8_lossy(&body);
            let reason = format!("HTTP {}: {}", status.as_u16(), crate::safe::plain(&text, 200));
            match status.as_u16() {
                429 => Err(Failure::Retry { after, reason, cause: Cause::RateLimited }),
                408 => Err(Failure::Retry { after, reason, cause: Cause::Server }),
                _ if status.is_server_error() => Err(Failure::Retry { after, reason, cause: Cause::Server }),
                _ => Err(Failure::Permanent(reason)),
            }
        }
        Request::Mail { smtp, message } => {
            // lettre's own timeout does not cover every read (a server that never answers AUTH hangs it):
            // the whole exchange gets the request timeout.
            let sent = tokio::time::timeout(timeout, smtp.send(message.as_ref().clone())).await.map_err(|_| {
                Failure::Retry {
                    after: None,
                    reason: format!("SMTP: timed out: no answer within {}s", timeout.as_secs()),
                    cause: Cause::Timeout,
                }
            })?;
            match sent {
                Ok(_) => Ok(Vec::new()),
                Err(e) if e.is_permanent() => {
                    Err(Failure::Permanent(format!("SMTP: {}", crate::safe::plain(&e.to_string(), 300))))
                }
                Err(e) => {
                    let mut chain = Vec::new();
                    let mut io_kind = None;
                    let mut src: Option<&dyn std::error::Error> = Some(&e);
                    while let Some(s) = src {
                        if let Some(io) = s.downcast_ref::<std::io::Error>() {
                            io_kind.get_or_insert(io.kind());
                        }
                        chain.push(s.to_string());
                        src = s.source();
                    }
                    let reason = match io_kind {
                        Some(std::io::ErrorKind::ConnectionRefused) => "SMTP: connection refused".to_string(),
                        _ => format!("SMTP: {}", crate::safe::plain(&chain.join(": "), 300)),
                    };
                    let cause = if e.is_transient() { Cause::Server } else { Cause::Connection };
                    Err(Failure::Retry { after: None, reason, cause })
                }
            }
        }
    }
}
