//! The delivery engine: routes events (through the [`Router`]), queues each message per channel, delivers with
//! retries, and reports which input positions are done.
//!
//! Each channel has a bounded queue and one worker task. A worker sends its messages in order, and retries the
//! one at the head until it is delivered or given up, so the messages of one incident (opened → updated →
//! resolved) reach a receiver in order; a slow or dead receiver only holds up its own channel. When a channel's
//! queue is full, the new message for it is dead-lettered (`queue_full`) at once rather than stalling the
//! input, which would stall every other channel too.
//!
//! Retries: connection errors, timeouts, HTTP 408, 429 and 5xx and transient SMTP replies (4xx) are retried
//! with exponential backoff and jitter (`initial_backoff_ms` doubling to `max_backoff_ms`, each delay drawn
//! from its upper half); a `Retry-After` (seconds or an HTTP date) replaces the backoff, capped at
//! `max_retry_after_secs`. Other 4xx, permanent SMTP replies (5xx, e.g. an unknown mailbox) and messages that
//! cannot be built are dead-lettered at once; so is a message still failing after `max_attempts`. Dead letters
//! carry the channel, route, incident, reason and the events, never a secret: HTTP errors are stripped of
//! their URL (webhook URLs are credentials) and response bodies are quoted sanitised and short.
//!
//! Every delivered or dead-lettered message is acknowledged back to the engine, which keeps a [`Tracker`]; its
//! low-water mark is the input position below which every route has delivered or dead-lettered everything.

use crate::config::{ChannelConfig, DeliveryConfig, NotifyConfig, SmtpTls};
use crate::format::{self, Context};
use crate::metrics::NotifyMetrics;
use crate::router::{Effects, Input, Message, Position, Router};
use crate::secret::{Secret, SecretError};
use crate::tracker::Tracker;
use flashpoint_core::time::{parse_rfc3339, Millis};
use lettre::message::Mailbox;
use lettre::transport::smtp::authentication::Credentials;
use lettre::transport::smtp::client::{Certificate, Tls, TlsParameters};
use lettre::{AsyncSmtpTransport, AsyncTransport, Tokio1Executor};
use serde::Serialize;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    #[error("notify.channels `{channel}`.{key}: {source}")]
    Secret { channel: String, key: &'static str, source: SecretError },
    #[error("notify.channels `{channel}`: {reason}")]
    Channel { channel: String, reason: String },
    #[error("metrics: {0}")]
    Metrics(#[from] prometheus::Error),
}

/// A message that will not be delivered, with the reason. Written to the dead-letter output as JSON.
#[derive(Clone, Debug, Serialize)]
pub struct DeadLetter {
    pub channel: String,
    pub channel_kind: &'static str,
    pub route: String,
    /// `notice` or `digest`.
    pub message: &'static str,
    pub incidents: Vec<String>,
    pub reason: String,
    pub attempts: u32,
    /// The spike events the message was about, as received (so they can be replayed).
    pub events: Vec<serde_json::Value>,
    /// Their input positions (a Kafka dead letter names the first as its source).
    #[serde(skip)]
    pub positions: Vec<Position>,
}

struct Job {
    route: Arc<Context>,
    message: Arc<Message>,
    positions: Vec<Position>,
    queued_at: Instant,
}

struct Ack {
    positions: Vec<Position>,
}

enum Transport {
    Slack(Secret),
    Teams(Secret),
    PagerDuty { url: String, key: Secret },
    Webhook { url: Secret, key: Secret },
    Email { smtp: AsyncSmtpTransport<Tokio1Executor>, from: Mailbox, to: Vec<Mailbox> },
}

enum Request {
    Http { url: String, body: Vec<u8>, headers: Vec<(&'static str, String)>, sign: Option<Secret> },
    Mail(Box<lettre::Message>),
}

enum Failure {
    Retry { after: Option<Duration>, reason: String },
    Permanent(String),
}

struct Channel {
    name: String,
    kind: &'static str,
    transport: Transport,
    http: reqwest::Client,
    delivery: DeliveryConfig,
}

struct ChannelHandle {
    name: String,
    kind: &'static str,
    tx: Option<mpsc::Sender<Job>>,
    task: JoinHandle<()>,
}

/// HTTPS, or plain HTTP to this machine only: a webhook URL is a credential and alerts quote customers' posts,
/// neither goes over the network in clear.
pub fn check_url(u: &str) -> Result<(), &'static str> {
    let url = reqwest::Url::parse(u).map_err(|_| "not a valid URL")?;
    match url.scheme() {
        "https" => Ok(()),
        "http" if url.host_str().is_some_and(crate::config::is_localhost) => Ok(()),
        "http" => Err("plain http is only allowed to localhost; use https"),
        _ => Err("not an http(s) URL"),
    }
}

/// Reads every secret of `cfg` with `env` for environment variables (files are read directly). Fails naming the
/// channel and key, never the value.
fn build_transport(
    c: &ChannelConfig,
    env: &dyn Fn(&str) -> Option<String>,
    timeout: Duration,
) -> Result<Transport, EngineError> {
    let secret = |key: &'static str, r: &crate::secret::SecretRef| {
        r.resolve_with(env).map_err(|source| EngineError::Secret { channel: c.name().into(), key, source })
    };
    // The reason names the key, never the URL (it is the secret).
    let url = |r: &crate::secret::SecretRef| {
        let v = secret("url", r)?;
        check_url(v.expose()).map_err(|reason| EngineError::Channel {
            channel: c.name().into(),
            reason: format!("url ({r}): {reason}"),
        })?;
        Ok::<Secret, EngineError>(v)
    };
    Ok(match c {
        ChannelConfig::Slack(u) => Transport::Slack(url(&u.url)?),
        ChannelConfig::Teams(u) => Transport::Teams(url(&u.url)?),
        ChannelConfig::Pagerduty(p) => {
            Transport::PagerDuty { url: p.url.clone(), key: secret("routing_key", &p.routing_key)? }
        }
        ChannelConfig::Webhook(w) => {
            Transport::Webhook { url: url(&w.url)?, key: secret("signing_key", &w.signing_key)? }
        }
        ChannelConfig::Email(e) => {
            let bad = |reason: String| EngineError::Channel { channel: c.name().into(), reason };
            let builder = match e.tls {
                SmtpTls::Starttls => AsyncSmtpTransport::<Tokio1Executor>::starttls_relay(&e.smtp_host)
                    .map_err(|x| bad(x.to_string()))?,
                SmtpTls::Tls => {
                    AsyncSmtpTransport::<Tokio1Executor>::relay(&e.smtp_host).map_err(|x| bad(x.to_string()))?
                }
                SmtpTls::None => AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(&e.smtp_host),
            };
            let mut builder = builder.timeout(Some(timeout));
            if let (Some(ca), SmtpTls::Starttls | SmtpTls::Tls) = (&e.ca_file, e.tls) {
                let pem = std::fs::read(ca).map_err(|x| bad(format!("ca_file {}: {x}", ca.display())))?;
                let cert = Certificate::from_pem(&pem).map_err(|x| bad(format!("ca_file {}: {x}", ca.display())))?;
                let params = TlsParameters::builder(e.smtp_host.clone())
                    .add_root_certificate(cert)
                    .build_rustls()
                    .map_err(|x| bad(x.to_string()))?;
                builder = builder.tls(if e.tls == SmtpTls::Tls { Tls::Wrapper(params) } else { Tls::Required(params) });
            }
            if let Some(p) = e.smtp_port {
                builder = builder.port(p);
            }
            if let (Some(u), Some(p)) = (&e.username, &e.password) {
                builder = builder.credentials(Credentials::new(
                    secret("username", u)?.expose().to_string(),
                    secret("password", p)?.expose().to_string(),
                ));
            }
            let from = e.from.parse().map_err(|x: lettre::address::AddressError| bad(format!("from: {x}")))?;
            let to =
                e.to.iter()
                    .map(|t| t.parse())
                    .collect::<Result<Vec<Mailbox>, _>>()
                    .map_err(|x| bad(format!("to: {x}")))?;
            Transport::Email { smtp: builder.build(), from, to }
        }
    })
}

fn retry_after(h: Option<&reqwest::header::HeaderValue>) -> Option<Duration> {
    let v = h?.to_str().ok()?.trim();
    if let Ok(secs) = v.parse::<u64>() {
        return Some(Duration::from_secs(secs));
    }
    let at = httpdate::parse_http_date(v).ok()?;
    Some(at.duration_since(SystemTime::now()).unwrap_or(Duration::ZERO))
}

fn unix_now() -> i64 {
    SystemTime::now().duration_since(SystemTime::UNIX_EPOCH).map_or(0, |d| d.as_secs() as i64)
}

fn unix_now_ms() -> Millis {
    SystemTime::now().duration_since(SystemTime::UNIX_EPOCH).map_or(0, |d| d.as_millis() as Millis)
}

impl Channel {
    /// The requests for one message (none: nothing to send on this channel, e.g. a plain update to PagerDuty).
    fn render(&self, msg: &Message, ctx: &Context) -> Result<Vec<Request>, String> {
        let json = |v: serde_json::Value| serde_json::to_vec(&v).expect("a JSON value serialises");
        let post = |url: &Secret, body: Vec<u8>| Request::Http {
            url: url.expose().to_string(),
            body,
            headers: vec![("content-type", "application/json".into())],
            sign: None,
        };
        let items: Vec<&crate::router::Notice> = match msg {
            Message::Notice(n) => vec![n],
            Message::Digest { items, .. } => items.iter().collect(),
        };
        Ok(match (&self.transport, msg) {
            (Transport::Slack(url), Message::Notice(n)) => vec![post(url, json(format::slack::notice(n, ctx)))],
            (Transport::Slack(url), Message::Digest { items, from, to }) => {
                vec![post(url, json(format::slack::digest(items, *from, *to, ctx)))]
            }
            (Transport::Teams(url), Message::Notice(n)) => vec![post(url, json(format::teams::notice(n, ctx)))],
            (Transport::Teams(url), Message::Digest { items, from, to }) => {
                vec![post(url, json(format::teams::digest(items, *from, *to, ctx)))]
            }
            (Transport::PagerDuty { url, key }, _) => items
                .into_iter()
                .filter_map(|n| format::pagerduty::event(n, ctx))
                .map(|mut v| {
                    v["routing_key"] = serde_json::Value::String(key.expose().to_string());
                    Request::Http {
                        url: url.clone(),
                        body: json(v),
                        headers: vec![("content-type", "application/json".into())],
                        sign: None,
                    }
                })
                .collect(),
            (Transport::Webhook { url, key }, _) => items
                .into_iter()
                .map(|n| Request::Http {
                    url: url.expose().to_string(),
                    body: n.raw.as_bytes().to_vec(),
                    headers: vec![
                        ("content-type", "application/json".into()),
                        (format::webhook::IDEMPOTENCY_HEADER, n.idempotency_key()),
                        (format::webhook::NOTICE_HEADER, n.kind.as_str().into()),
                    ],
                    sign: Some(key.clone()),
                })
                .collect(),
            (Transport::Email { from, to, .. }, Message::Notice(n)) => {
                let chart = match (parse_rfc3339(&n.event.incident_start), parse_rfc3339(&n.event.window_end)) {
                    (Some(s), Some(e)) => crate::chart::render(&n.history, s, e)
                        .map_err(|err| tracing::warn!(channel = %self.name, "no chart: {err}"))
                        .ok(),
                    _ => None,
                };
                vec![Request::Mail(Box::new(format::email::notice(n, ctx, from, to, chart)?))]
            }
            (Transport::Email { from, to, .. }, Message::Digest { items, from: f, to: t }) => {
                vec![Request::Mail(Box::new(format::email::digest(items, *f, *t, ctx, from, to)?))]
            }
        })
    }

    async fn send(&self, req: &Request) -> Result<(), Failure> {
        match req {
            Request::Http { url, body, headers, sign } => {
                let mut rb = self.http.post(url.as_str()).body(body.clone());
                for (k, v) in headers {
                    rb = rb.header(*k, v);
                }
                if let Some(key) = sign {
                    rb = rb.header(
                        format::webhook::SIGNATURE_HEADER,
                        format::webhook::sign(key.expose().as_bytes(), unix_now(), body),
                    );
                }
                let resp = rb.send().await.map_err(|e| Failure::Retry {
                    after: None,
                    // The URL is a credential: never in a reason.
                    reason: format!("request failed: {}", e.without_url()),
                })?;
                let status = resp.status();
                if status.is_success() {
                    return Ok(());
                }
                let after = retry_after(resp.headers().get(reqwest::header::RETRY_AFTER));
                let text = resp.text().await.unwrap_or_default();
                let reason = format!("HTTP {}: {}", status.as_u16(), crate::safe::plain(&text, 200));
                if status.as_u16() == 408 || status.as_u16() == 429 || status.is_server_error() {
                    Err(Failure::Retry { after, reason })
                } else {
                    Err(Failure::Permanent(reason))
                }
            }
            Request::Mail(m) => {
                let Transport::Email { smtp, .. } = &self.transport else { unreachable!("mail on an email channel") };
                // lettre's own timeout does not cover every read (a server that never answers AUTH hangs it):
                // the whole exchange gets the request timeout.
                let limit = Duration::from_secs(self.delivery.timeout_secs);
                let sent = tokio::time::timeout(limit, smtp.send(m.as_ref().clone())).await.map_err(|_| {
                    Failure::Retry { after: None, reason: format!("SMTP: no answer within {}s", limit.as_secs()) }
                })?;
                match sent {
                    Ok(_) => Ok(()),
                    Err(e) if e.is_permanent() => {
                        Err(Failure::Permanent(format!("SMTP: {}", crate::safe::plain(&e.to_string(), 300))))
                    }
                    Err(e) => Err(Failure::Retry {
                        after: None,
                        reason: format!("SMTP: {}", crate::safe::plain(&e.to_string(), 300)),
                    }),
                }
            }
        }
    }

    fn backoff(&self, attempt: u32) -> Duration {
        let d = &self.delivery;
        let exp =
            d.initial_backoff_ms.saturating_mul(1u64 << (attempt.saturating_sub(1)).min(30)).min(d.max_backoff_ms);
        Duration::from_millis(exp / 2 + fastrand::u64(0..=exp - exp / 2))
    }

    /// Delivers every request of a message in order, retrying; returns how many requests there were (0: the
    /// message means nothing on this channel), or why it gave up and after how many attempts.
    async fn deliver(&self, msg: &Message, ctx: &Context, metrics: &NotifyMetrics) -> Result<usize, (String, u32)> {
        let requests = self.render(msg, ctx).map_err(|e| (format!("cannot build the message: {e}"), 0))?;
        let mut attempts = 0;
        for req in &requests {
            loop {
                attempts += 1;
                match self.send(req).await {
                    Ok(()) => break,
                    Err(Failure::Permanent(r)) => return Err((r, attempts)),
                    Err(Failure::Retry { after, reason }) => {
                        if attempts >= self.delivery.max_attempts {
                            return Err((format!("gave up after {attempts} attempts: {reason}"), attempts));
                        }
                        metrics.retried.with_label_values(&[&self.name, &ctx.route]).inc();
                        let cap = Duration::from_secs(self.delivery.max_retry_after_secs);
                        let wait = after.map(|a| a.min(cap)).unwrap_or_else(|| self.backoff(attempts));
                        tracing::warn!(channel = %self.name, route = %ctx.route, attempts, ?wait, "delivery failed, retrying: {reason}");
                        tokio::time::sleep(wait).await;
                    }
                }
            }
        }
        Ok(requests.len())
    }
}

fn incidents(msg: &Message) -> Vec<&crate::router::Notice> {
    match msg {
        Message::Notice(n) => vec![n],
        Message::Digest { items, .. } => items.iter().collect(),
    }
}

fn dead_letter(
    channel: &str,
    kind: &'static str,
    route: &str,
    msg: &Message,
    reason: String,
    attempts: u32,
    positions: &[Position],
) -> DeadLetter {
    let ns = incidents(msg);
    DeadLetter {
        channel: channel.into(),
        channel_kind: kind,
        route: route.into(),
        message: if matches!(msg, Message::Digest { .. }) { "digest" } else { "notice" },
        incidents: ns.iter().map(|n| format!("{}:{}", n.event.incident_id, n.event.seq)).collect(),
        reason,
        attempts,
        events: ns.iter().map(|n| serde_json::from_str(&n.raw).unwrap_or(serde_json::Value::Null)).collect(),
        positions: positions.to_vec(),
    }
}

async fn worker(
    ch: Channel,
    mut rx: mpsc::Receiver<Job>,
    acks: mpsc::UnboundedSender<Ack>,
    dead: mpsc::UnboundedSender<DeadLetter>,
    metrics: NotifyMetrics,
) {
    while let Some(job) = rx.recv().await {
        let labels = [ch.name.as_str(), job.route.route.as_str()];
        match ch.deliver(&job.message, &job.route, &metrics).await {
            Ok(0) => {}
            Ok(_) => {
                metrics.sent.with_label_values(&labels).inc();
                let now = unix_now_ms();
                if let Some(end) =
                    incidents(&job.message).iter().filter_map(|n| parse_rfc3339(&n.event.window_end)).max()
                {
                    metrics.latency.with_label_values(&[&ch.name]).observe((now - end).max(0) as f64 / 1000.0);
                }
                metrics.processing.observe(job.queued_at.elapsed().as_secs_f64());
            }
            Err((reason, attempts)) => {
                metrics.failed.with_label_values(&labels).inc();
                tracing::error!(channel = %ch.name, route = %job.route.route, attempts, "dead-lettered: {reason}");
                let _ = dead.send(dead_letter(
                    &ch.name,
                    ch.kind,
                    &job.route.route,
                    &job.message,
                    reason,
                    attempts,
                    &job.positions,
                ));
            }
        }
        metrics.queue_depth.with_label_values(&[&ch.name]).dec();
        let _ = acks.send(Ack { positions: job.positions });
    }
}

/// The notifier: feed it events with [`Engine::submit`] and time with [`Engine::tick`]; read what is done with
/// [`Engine::low_water`]. Needs a Tokio runtime (it spawns one task per channel).
pub struct Engine {
    router: Router,
    tracker: Tracker,
    contexts: Vec<Arc<Context>>,
    route_channels: Vec<Vec<usize>>,
    channels: Vec<ChannelHandle>,
    acks: mpsc::UnboundedReceiver<Ack>,
    dead: mpsc::UnboundedSender<DeadLetter>,
    metrics: NotifyMetrics,
}

impl Engine {
    /// Resolves the secrets (`env` looks up environment variables), builds the channels and starts their
    /// workers. `cfg` must have passed [`NotifyConfig::validate`].
    pub fn start(
        cfg: &NotifyConfig,
        env: &dyn Fn(&str) -> Option<String>,
        metrics: NotifyMetrics,
        dead: mpsc::UnboundedSender<DeadLetter>,
    ) -> Result<Engine, EngineError> {
        let timeout = Duration::from_secs(cfg.delivery.timeout_secs);
        let http = reqwest::Client::builder()
            .timeout(timeout)
            .connect_timeout(timeout)
            // A redirect would re-send a signed body somewhere else: answer it as a failure instead.
            .redirect(reqwest::redirect::Policy::none())
            .user_agent(concat!("flashpoint-notify/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| EngineError::Channel { channel: "(http client)".into(), reason: e.to_string() })?;
        let (ack_tx, acks) = mpsc::unbounded_channel();
        let mut channels = Vec::new();
        for c in &cfg.channels {
            let transport = build_transport(c, env, timeout)?;
            let ch = Channel {
                name: c.name().into(),
                kind: c.kind(),
                transport,
                http: http.clone(),
                delivery: cfg.delivery.clone(),
            };
            let (tx, rx) = mpsc::channel(cfg.delivery.queue_capacity);
            metrics.queue_depth.with_label_values(&[c.name()]).set(0);
            let task = tokio::spawn(worker(ch, rx, ack_tx.clone(), dead.clone(), metrics.clone()));
            channels.push(ChannelHandle { name: c.name().into(), kind: c.kind(), tx: Some(tx), task });
        }
        let route_channels = cfg
            .routes
            .iter()
            .map(|r| {
                r.channels.iter().map(|n| channels.iter().position(|c| &c.name == n).expect("validated")).collect()
            })
            .collect();
        // Series that exist from the start, so rate() and the failing-channel alert see zeros rather than nothing.
        for r in &cfg.routes {
            for c in &r.channels {
                for m in [&metrics.sent, &metrics.failed, &metrics.retried, &metrics.rate_limited] {
                    m.with_label_values(&[c, &r.name]);
                }
                metrics.latency.with_label_values(&[c]);
            }
        }
        let contexts = cfg
            .routes
            .iter()
            .map(|r| Arc::new(Context::new(&r.name, cfg.grafana_url.as_deref(), &cfg.dashboard_uid)))
            .collect();
        Ok(Engine {
            router: Router::new(cfg),
            tracker: Tracker::default(),
            contexts,
            route_channels,
            channels,
            acks,
            dead,
            metrics,
        })
    }

    /// Routes one event at `now` (wall clock when live, event time when replaying) and queues its messages.
    pub fn submit(&mut self, input: &Input, now: Millis) {
        self.metrics.events_in.inc();
        self.tracker.add(input.position, 1);
        let fx = self.router.on_event(input, now);
        self.apply(fx);
        self.tracker.done(input.position);
    }

    /// Sends what has come due by `now` (held states, digests).
    pub fn tick(&mut self, now: Millis) {
        let fx = self.router.tick(now);
        self.apply(fx);
    }

    /// When the next held state or digest comes due.
    pub fn next_due(&self) -> Option<Millis> {
        self.router.next_due()
    }

    /// Marks `pos` seen and done without routing (an input line that was dead-lettered), so it does not hold the
    /// low-water mark back.
    pub fn skip(&mut self, pos: Position) {
        self.tracker.add(pos, 1);
        self.tracker.done(pos);
    }

    fn apply(&mut self, fx: Effects) {
        for d in fx.dispatches {
            let chans = &self.route_channels[d.route];
            for p in &d.positions {
                self.tracker.add(*p, chans.len() as u32);
            }
            for &c in chans {
                let h = &self.channels[c];
                let job = Job {
                    route: self.contexts[d.route].clone(),
                    message: d.message.clone(),
                    positions: d.positions.clone(),
                    queued_at: Instant::now(),
                };
                let refused = match h.tx.as_ref().map(|tx| tx.try_send(job)) {
                    Some(Ok(())) => {
                        self.metrics.queue_depth.with_label_values(&[&h.name]).inc();
                        None
                    }
                    Some(Err(mpsc::error::TrySendError::Full(_))) => Some("queue_full: the channel's queue is full"),
                    _ => Some("channel stopped"),
                };
                if let Some(reason) = refused {
                    let route = &self.contexts[d.route].route;
                    self.metrics.failed.with_label_values(&[&h.name, route]).inc();
                    tracing::error!(channel = %h.name, route = %route, "dead-lettered: {reason}");
                    let _ =
                        self.dead.send(dead_letter(&h.name, h.kind, route, &d.message, reason.into(), 0, &d.positions));
                    for p in &d.positions {
                        self.tracker.done(*p);
                    }
                }
            }
        }
        for r in fx.rate_limited {
            for &c in &self.route_channels[r] {
                self.metrics.rate_limited.with_label_values(&[&self.channels[c].name, &self.contexts[r].route]).inc();
            }
        }
        for p in fx.held {
            self.tracker.add(p, 1);
        }
        for p in fx.released {
            self.tracker.done(p);
        }
    }

    /// Applies the acknowledgements that have arrived; returns how many.
    pub fn poll_acks(&mut self) -> usize {
        let mut n = 0;
        while let Ok(a) = self.acks.try_recv() {
            self.ack(a);
            n += 1;
        }
        n
    }

    /// Waits for the next acknowledgement and applies it; `false` when none can come any more (every worker
    /// has stopped, after [`Engine::close`]).
    pub async fn next_ack(&mut self) -> bool {
        match self.acks.recv().await {
            Some(a) => {
                self.ack(a);
                true
            }
            None => false,
        }
    }

    fn ack(&mut self, a: Ack) {
        for p in a.positions {
            self.tracker.done(p);
        }
    }

    /// Every offset of `partition` below this is delivered or dead-lettered on every route.
    pub fn low_water(&self, partition: i32) -> Option<i64> {
        self.tracker.low_water(partition)
    }

    /// Forgets `partition`'s positions (a Kafka consumer lost it: its new owner re-reads from the committed
    /// offset). Messages already queued for it are still delivered; they no longer hold any mark back.
    pub fn forget_partition(&mut self, partition: i32) {
        self.tracker.forget_partition(partition);
    }

    /// Channels whose queue is full (a receiver down or too slow for the input): new messages for them are
    /// being dead-lettered.
    pub fn full_channels(&self) -> Vec<&str> {
        self.channels
            .iter()
            .filter(|h| h.tx.as_ref().is_some_and(|tx| tx.capacity() == 0))
            .map(|h| h.name.as_str())
            .collect()
    }

    /// Input positions with a message (or a held state) outstanding.
    pub fn outstanding(&self) -> usize {
        self.tracker.outstanding()
    }

    /// End of input: sends every held state and digest at once and closes the queues; the workers stop once
    /// their queues are empty. Follow with [`Engine::next_ack`] until it says `false` (or [`Engine::finish`]).
    pub fn close(&mut self, now: Millis) {
        let fx = self.router.drain(now);
        self.apply(fx);
        for h in &mut self.channels {
            h.tx = None;
        }
    }

    /// [`Engine::close`], then waits for every acknowledgement. After it, `outstanding()` is 0.
    pub async fn finish(&mut self, now: Millis) {
        self.close(now);
        while self.next_ack().await {}
        self.join().await;
    }

    /// Waits for the worker tasks to end (after the last acknowledgement).
    pub async fn join(&mut self) {
        for h in &mut self.channels {
            let _ = (&mut h.task).await;
        }
        self.poll_acks();
    }
}
