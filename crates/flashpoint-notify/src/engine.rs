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
//! A message still failing [`DeliveryConfig::message_deadline_secs`] after its first attempt is dead-lettered
//! with the cause (connection refused, DNS, TLS, timeout, HTTP status). Each channel has a circuit breaker: once a
//! message was given up after `breaker_failures` consecutive failures, the circuit opens and for
//! `breaker_open_secs` every message is dead-lettered at once (`circuit_open`, with the last cause); then the next
//! message is one probe attempt, which closes the circuit or opens it again. A dead destination thus costs one
//! deadline, not one per message, and only its own channel.
//!
//! Every delivered or dead-lettered message is acknowledged back to the engine, which keeps a [`Tracker`] for all
//! channels (its low-water mark is the input position below which every route has delivered or dead-lettered
//! everything) and one per channel (what a resume needs: a channel that was ahead does not resend).

use crate::channel::{self, Build, BuildError, Cause, Channel, Failure, Request};
use crate::config::{glob_match, NotifyConfig, Silence};
use crate::delivery::DeliveryConfig;
use crate::format::Context;
use crate::message::{Dispatch, Input, Message, Notice, NoticeKind, Position};
use crate::metrics::NotifyMetrics;
use crate::page::SharedStore;
use crate::reader::{InputRejection, Record, Resend};
use crate::router::{Effects, Router};
use crate::tracker::Tracker;
use flashpoint_core::time::{parse_rfc3339, Millis};
use serde::Serialize;
use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    /// The reason names the key and where the secret comes from, never its value (and only once: it is not
    /// a `source`, which a caller printing the chain would repeat).
    #[error("notify.channels `{channel}`.{reason}")]
    Channel { channel: String, reason: String },
    #[error("metrics: {0}")]
    Metrics(#[from] prometheus::Error),
}

/// A message that will not be delivered, with the reason. Written to the dead-letter output as JSON; `notify
/// --input` reads it back to re-send it (its events, on its route, to its channel).
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
    /// What each event's message was on its route (`opened`, `escalated`, `update`, `resolved`): a re-send says
    /// the same.
    pub notices: Vec<NoticeKind>,
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
    channel: usize,
    positions: Vec<Position>,
    /// The channel's state after this message, when it keeps any (Slack threads).
    state: Option<Vec<(String, String)>>,
}

struct Worker {
    name: String,
    kind: &'static str,
    channel: Box<dyn Channel>,
    http: reqwest::Client,
    delivery: DeliveryConfig,
    /// Consecutive failed attempts (a 429 is not a failure of the destination).
    failures: u32,
    /// The circuit is open until then; the last cause.
    open: Option<(Instant, String)>,
}

struct ChannelHandle {
    name: String,
    kind: &'static str,
    tx: Option<mpsc::Sender<Job>>,
    task: JoinHandle<()>,
}

pub use crate::config::check_url;

fn unix_now_ms() -> Millis {
    SystemTime::now().duration_since(SystemTime::UNIX_EPOCH).map_or(0, |d| d.as_millis() as Millis)
}

fn build_channel(
    c: &crate::config::ChannelConfig,
    env: &dyn Fn(&str) -> Option<String>,
    delivery: &DeliveryConfig,
) -> Result<Box<dyn Channel>, EngineError> {
    c.spec().build(&Build { env, delivery }).map_err(|e| EngineError::Channel {
        channel: c.name().into(),
        reason: match e {
            BuildError::Secret { key, reason } => format!("{key}: {reason}"),
            BuildError::Other(r) => r,
        },
    })
}

fn http_client(d: &DeliveryConfig) -> Result<reqwest::Client, EngineError> {
    let timeout = Duration::from_secs(d.timeout_secs);
    reqwest::Client::builder()
        .timeout(timeout)
        .connect_timeout(timeout)
        // A redirect would re-send a signed body somewhere else: answer it as a failure instead.
        .redirect(reqwest::redirect::Policy::none())
        .user_agent(concat!("flashpoint-notify/", env!("CARGO_PKG_VERSION")))
        .build()
        .map_err(|e| EngineError::Channel { channel: "(http client)".into(), reason: e.to_string() })
}

impl Worker {
    fn backoff(&self, attempt: u32) -> Duration {
        let d = &self.delivery;
        let exp =
            d.initial_backoff_ms.saturating_mul(1u64 << (attempt.saturating_sub(1)).min(30)).min(d.max_backoff_ms);
        Duration::from_millis(exp / 2 + fastrand::u64(0..=exp - exp / 2))
    }

    fn timeout(&self) -> Duration {
        Duration::from_secs(self.delivery.timeout_secs)
    }

    /// One attempt at a request, its answer read by the channel.
    async fn attempt(&mut self, req: &Request) -> Result<(), Failure> {
        let body = channel::send(req, &self.http, self.timeout()).await?;
        self.channel.accepted(req, &body)
    }

    fn trip(&mut self, reason: &str) {
        let open = Duration::from_secs(self.delivery.breaker_open_secs);
        self.open = Some((Instant::now() + open, reason.to_string()));
        tracing::error!(channel = %self.name, secs = open.as_secs(), "circuit open: {reason}");
    }

    /// Delivers every request in order, retrying; returns how many requests there were (0: the message means
    /// nothing on this channel), or why it gave up and after how many attempts.
    async fn deliver(
        &mut self,
        requests: Vec<Request>,
        route: &str,
        metrics: &NotifyMetrics,
    ) -> Result<usize, (String, u32)> {
        let probe = match &self.open {
            Some((until, last)) if Instant::now() < *until => {
                let secs = until.saturating_duration_since(Instant::now()).as_secs();
                return Err((
                    format!("circuit_open: the destination keeps failing (last: {last}); next try in {secs}s"),
                    0,
                ));
            }
            Some(_) => true,
            None => false,
        };
        let deadline = Duration::from_secs(self.delivery.message_deadline_secs);
        let started = Instant::now();
        // Waits a healthy receiver asked for (429 with Retry-After) do not count against the deadline.
        let mut asked = Duration::ZERO;
        let mut attempts = 0;
        for req in &requests {
            loop {
                attempts += 1;
                match self.attempt(req).await {
                    Ok(()) => {
                        self.failures = 0;
                        self.open = None;
                        break;
                    }
                    Err(Failure::Permanent(r)) => {
                        // The destination answered: it is up, whatever it thought of this message.
                        self.failures = 0;
                        self.open = None;
                        return Err((r, attempts));
                    }
                    Err(Failure::Retry { after, reason, cause }) => {
                        if cause != Cause::RateLimited {
                            self.failures += 1;
                        }
                        if probe && cause != Cause::RateLimited {
                            self.trip(&reason);
                            return Err((format!("circuit_open: probe failed: {reason}"), attempts));
                        }
                        let cap = Duration::from_secs(self.delivery.max_retry_after_secs);
                        let wait = after.map(|a| a.min(cap)).unwrap_or_else(|| self.backoff(attempts));
                        let spent = started.elapsed().saturating_sub(asked);
                        let past_deadline = cause != Cause::RateLimited && spent + wait > deadline;
                        if attempts >= self.delivery.max_attempts || past_deadline {
                            if self.failures >= self.delivery.breaker_failures {
                                self.trip(&reason);
                            }
                            return Err((
                                format!(
                                    "gave up after {attempts} attempts in {:.1}s: {reason}",
                                    started.elapsed().as_secs_f64()
                                ),
                                attempts,
                            ));
                        }
                        if cause == Cause::RateLimited && after.is_some() {
                            asked += wait;
                        }
                        metrics.retried.with_label_values(&[&self.name, route]).inc();
                        tracing::warn!(channel = %self.name, route = %route, attempts, ?wait, "delivery failed, retrying: {reason}");
                        tokio::time::sleep(wait).await;
                    }
                }
            }
        }
        Ok(requests.len())
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
    let ns = msg.notices();
    DeadLetter {
        channel: channel.into(),
        channel_kind: kind,
        route: route.into(),
        message: if matches!(msg, Message::Digest { .. }) { "digest" } else { "notice" },
        incidents: ns.iter().map(|n| format!("{}:{}", n.event.incident_id, n.event.seq)).collect(),
        reason,
        attempts,
        events: ns.iter().map(|n| serde_json::from_str(&n.raw).unwrap_or(serde_json::Value::Null)).collect(),
        notices: ns.iter().map(|n| n.kind).collect(),
        positions: positions.to_vec(),
    }
}

async fn worker(
    index: usize,
    mut w: Worker,
    mut rx: mpsc::Receiver<Job>,
    acks: mpsc::UnboundedSender<Ack>,
    dead: mpsc::UnboundedSender<DeadLetter>,
    metrics: NotifyMetrics,
) {
    while let Some(job) = rx.recv().await {
        let name = w.name.clone();
        let labels = [name.as_str(), job.route.route.as_str()];
        let result = match w.channel.render(&job.message, &job.route) {
            Ok(requests) => w.deliver(requests, &job.route.route, &metrics).await,
            Err(e) => Err((format!("cannot build the message: {e}"), 0)),
        };
        match result {
            Ok(0) => {}
            Ok(_) => {
                metrics.sent.with_label_values(&labels).inc();
                let now = unix_now_ms();
                if let Some(end) = job.message.notices().iter().map(|n| n.event.window_end).max() {
                    metrics.latency.with_label_values(&[&w.name]).observe((now - end).max(0) as f64 / 1000.0);
                }
                metrics.processing.observe(job.queued_at.elapsed().as_secs_f64());
            }
            Err((reason, attempts)) => {
                metrics.failed.with_label_values(&labels).inc();
                tracing::error!(channel = %w.name, route = %job.route.route, attempts, "dead-lettered: {reason}");
                let _ = dead.send(dead_letter(
                    &w.name,
                    w.kind,
                    &job.route.route,
                    &job.message,
                    reason,
                    attempts,
                    &job.positions,
                ));
            }
        }
        metrics.queue_depth.with_label_values(&[&w.name]).dec();
        let state = w.channel.state();
        let state = (!state.is_empty()).then_some(state);
        let _ = acks.send(Ack { channel: index, positions: job.positions, state });
    }
}

/// What a restart resumes from: per channel, the input mark below which it finished everything (partition 0,
/// `flashpoint notify`), and the state it kept (Slack threads).
#[derive(Clone, Debug, Default, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Resume {
    pub marks: HashMap<String, i64>,
    #[serde(default)]
    pub state: HashMap<String, Vec<(String, String)>>,
}

/// The result of one channel's test message.
#[derive(Debug)]
pub struct TestResult {
    pub channel: String,
    pub kind: &'static str,
    /// Requests the receiver accepted, or why it failed.
    pub result: Result<usize, String>,
}

/// `flashpoint notify test`: one clearly marked test message to every channel, each attempted once (a
/// `Retry-After` is not waited for), the results in config order.
pub async fn test_channels(
    cfg: &NotifyConfig,
    env: &dyn Fn(&str) -> Option<String>,
    notice: &Notice,
) -> Vec<TestResult> {
    let mut out = Vec::new();
    let http = match http_client(&cfg.delivery) {
        Ok(h) => h,
        Err(e) => {
            return cfg
                .channels
                .iter()
                .map(|c| TestResult { channel: c.name().into(), kind: c.kind(), result: Err(e.to_string()) })
                .collect()
        }
    };
    let ctx =
        Context::new("test", cfg.grafana_url.as_deref(), &cfg.dashboard_uid).with_pages(cfg.public_url.as_deref());
    for c in &cfg.channels {
        let result = async {
            let mut ch = build_channel(c, env, &cfg.delivery).map_err(|e| e.to_string())?;
            let reqs = ch.render_test(notice, &ctx)?;
            for r in &reqs {
                let body = channel::send(r, &http, Duration::from_secs(cfg.delivery.timeout_secs)).await.map_err(
                    |f| match f {
                        Failure::Retry { reason, .. } | Failure::Permanent(reason) => reason,
                    },
                )?;
                ch.accepted(r, &body).map_err(|f| match f {
                    Failure::Retry { reason, .. } | Failure::Permanent(reason) => reason,
                })?;
            }
            Ok::<usize, String>(reqs.len())
        }
        .await;
        out.push(TestResult { channel: c.name().into(), kind: c.kind(), result });
    }
    out
}

/// The notifier: feed it events with [`Engine::submit`] (or raw records with [`Engine::read`]) and time with
/// [`Engine::tick`]; read what is done with [`Engine::low_water`]. Needs a Tokio runtime (it spawns one task per
/// channel).
pub struct Engine {
    router: Router,
    tracker: Tracker,
    /// Per channel: what it alone still has outstanding.
    channel_trackers: Vec<Tracker>,
    /// Per channel: partition-0 positions below this were finished before a restart; their messages are not
    /// sent again on this channel.
    resumed: Vec<i64>,
    channel_state: Vec<Vec<(String, String)>>,
    contexts: Vec<Arc<Context>>,
    route_channels: Vec<Vec<usize>>,
    channels: Vec<ChannelHandle>,
    silences: Vec<(Silence, Millis)>,
    acks: mpsc::UnboundedReceiver<Ack>,
    dead: mpsc::UnboundedSender<DeadLetter>,
    metrics: NotifyMetrics,
    /// Where every event read is also kept for the incident pages, when they are served.
    pages: Option<SharedStore>,
    /// Messages not sent again after a resume (their channel had finished them).
    pub skipped_on_resume: u64,
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
        Self::start_resumed(cfg, env, metrics, dead, &Resume::default())
    }

    /// [`Engine::start`], resuming from `resume` (see [`Resume`]).
    pub fn start_resumed(
        cfg: &NotifyConfig,
        env: &dyn Fn(&str) -> Option<String>,
        metrics: NotifyMetrics,
        dead: mpsc::UnboundedSender<DeadLetter>,
        resume: &Resume,
    ) -> Result<Engine, EngineError> {
        let http = http_client(&cfg.delivery)?;
        let (ack_tx, acks) = mpsc::unbounded_channel();
        let mut channels = Vec::new();
        let mut channel_state = Vec::new();
        for (i, c) in cfg.channels.iter().enumerate() {
            let mut ch = build_channel(c, env, &cfg.delivery)?;
            let state = resume.state.get(c.name()).cloned().unwrap_or_default();
            ch.restore(&state);
            channel_state.push(state);
            let w = Worker {
                name: c.name().into(),
                kind: c.kind(),
                channel: ch,
                http: http.clone(),
                delivery: cfg.delivery.clone(),
                failures: 0,
                open: None,
            };
            let (tx, rx) = mpsc::channel(cfg.delivery.queue_capacity);
            metrics.queue_depth.with_label_values(&[c.name()]).set(0);
            let task = tokio::spawn(worker(i, w, rx, ack_tx.clone(), dead.clone(), metrics.clone()));
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
                for m in [&metrics.sent, &metrics.failed, &metrics.retried, &metrics.rate_limited, &metrics.silenced] {
                    m.with_label_values(&[c, &r.name]);
                }
                metrics.latency.with_label_values(&[c]);
            }
        }
        let contexts = cfg
            .routes
            .iter()
            .map(|r| {
                let ctx = Context::new(&r.name, cfg.grafana_url.as_deref(), &cfg.dashboard_uid);
                Arc::new(ctx.with_pages(cfg.public_url.as_deref()))
            })
            .collect();
        let silences =
            cfg.silences.iter().map(|x| (x.clone(), parse_rfc3339(&x.until).unwrap_or(Millis::MIN))).collect();
        Ok(Engine {
            router: Router::new(cfg),
            tracker: Tracker::default(),
            channel_trackers: channels.iter().map(|_| Tracker::default()).collect(),
            resumed: cfg.channels.iter().map(|c| resume.marks.get(c.name()).copied().unwrap_or(0)).collect(),
            channel_state,
            contexts,
            route_channels,
            channels,
            silences,
            acks,
            dead,
            metrics,
            pages: None,
            skipped_on_resume: 0,
        })
    }

    /// Keeps every event [`Engine::read`] reads in `store` too (the live incident pages). An event the store
    /// refuses (an id that cannot name a page) is still routed.
    pub fn keep_pages(&mut self, store: SharedStore) {
        self.pages = Some(store);
    }

    fn add(&mut self, pos: Position, n: u32) {
        self.tracker.add(pos, n);
        for t in &mut self.channel_trackers {
            t.add(pos, n);
        }
    }

    fn done(&mut self, pos: Position) {
        self.tracker.done(pos);
        for t in &mut self.channel_trackers {
            t.done(pos);
        }
    }

    /// Routes one event at `now` (wall clock when live, event time when replaying) and queues its messages.
    pub fn submit(&mut self, input: &Input, now: Millis) {
        self.metrics.events_in.inc();
        self.add(input.position, 1);
        let fx = self.router.on_event(input, now);
        self.apply(fx, now);
        self.done(input.position);
    }

    /// The one way a reader hands the engine a record (a line of `flashpoint notify`'s input, a spikes-topic
    /// record): classified, counted, and routed with the time after it, or re-sent (a dead letter read back).
    /// A rejected record is counted by reason; the caller writes its dead letter, then calls [`Engine::skip`].
    pub fn read(
        &mut self,
        payload: &[u8],
        pos: Position,
        mut now: impl FnMut(Option<Millis>) -> Millis,
    ) -> Result<(), InputRejection> {
        match crate::reader::classify(payload, pos) {
            Ok(Record::Event(input)) => {
                if let Some(store) = &self.pages {
                    if let Err(why) = store.lock().expect("not poisoned").record(input.event.clone(), &input.raw) {
                        tracing::debug!(incident = %flashpoint_core::sanitize::for_log_truncated(&input.event.incident_id, 60), %why, "not kept for the incident pages");
                    }
                }
                let t = now(Some(input.event.window_end));
                self.submit(&input, t);
                self.tick(t);
                Ok(())
            }
            Ok(Record::Resend(r)) => {
                let t = now(r.inputs.iter().map(|i| i.event.window_end).max());
                self.resend(r, pos, t)
            }
            Err(rej) => {
                self.metrics.input_dead_letters.with_label_values(&[rej.reason.reason()]).inc();
                Err(rej)
            }
        }
    }

    /// A dead letter read back: its events go again, as the same notices, on its route, to its channel only.
    fn resend(&mut self, r: Resend, pos: Position, now: Millis) -> Result<(), InputRejection> {
        let unknown = |what: &str| InputRejection {
            reason: flashpoint_core::partition::Rejection::NotSpikeEvent,
            detail: format!("a dead letter for {what}, which this config does not have"),
        };
        let route = self.contexts.iter().position(|c| c.route == r.route).ok_or_else(|| unknown("another route"))?;
        let channel =
            self.channels.iter().position(|c| c.name == r.channel).ok_or_else(|| unknown("another channel"))?;
        self.metrics.events_in.inc();
        let items: Vec<Notice> = r
            .inputs
            .iter()
            .zip(&r.notices)
            .map(|(i, k)| Notice {
                kind: *k,
                first: *k == NoticeKind::Opened,
                changes: Vec::new(),
                event: i.event.clone(),
                raw: i.raw.clone(),
                peak_severity: i.event.severity,
                peak_volume: i.event.peak.volume.max(i.event.counts.volume),
                peak_negative_share: i.event.peak.negative_share.max(i.event.negative_share),
                events_seen: i.event.seq as u32 + 1,
                history: Vec::new(),
            })
            .collect();
        let message = match (r.digest, items.len()) {
            (false, 1) => Message::Notice(items.into_iter().next().expect("one")),
            _ => Message::Digest { from: now, to: now, items },
        };
        let d = Dispatch { route, message: Arc::new(message), positions: vec![pos] };
        self.add(pos, 1);
        self.enqueue(&d, channel, now);
        self.done(pos);
        Ok(())
    }

    /// Sends what has come due by `now` (held states, digests).
    pub fn tick(&mut self, now: Millis) {
        let fx = self.router.tick(now);
        self.apply(fx, now);
    }

    /// When the next held state or digest comes due.
    pub fn next_due(&self) -> Option<Millis> {
        self.router.next_due()
    }

    /// Marks `pos` seen and done without routing (an input line that was dead-lettered), so it does not hold the
    /// low-water mark back.
    pub fn skip(&mut self, pos: Position) {
        self.add(pos, 1);
        self.done(pos);
    }

    fn silenced(&self, d: &Dispatch, now: Millis) -> Option<&str> {
        let route = &self.contexts[d.route].route;
        let notices = d.message.notices();
        self.silences
            .iter()
            .find(|(x, until)| {
                now < *until
                    && (x.routes.is_empty() || x.routes.contains(route))
                    && notices.iter().all(|n| glob_match(&x.entity, &n.event.entity))
            })
            .map(|(x, _)| x.reason.as_str())
    }

    /// Queues `d` on channel `c`, or finishes it at once: already done before a restart, or refused.
    fn enqueue(&mut self, d: &Dispatch, c: usize, _now: Millis) {
        let mark = self.resumed[c];
        if mark > 0 && d.positions.iter().all(|p| p.partition == 0 && p.offset < mark) {
            self.skipped_on_resume += 1;
            return;
        }
        for p in &d.positions {
            self.tracker.add(*p, 1);
            self.channel_trackers[c].add(*p, 1);
        }
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
            let _ = self.dead.send(dead_letter(&h.name, h.kind, route, &d.message, reason.into(), 0, &d.positions));
            for p in &d.positions {
                self.tracker.done(*p);
                self.channel_trackers[c].done(*p);
            }
        }
    }

    fn apply(&mut self, fx: Effects, now: Millis) {
        for d in fx.dispatches {
            if let Some(reason) = self.silenced(&d, now) {
                let route = self.contexts[d.route].route.clone();
                tracing::info!(route = %route, "silenced: {reason}");
                for &c in &self.route_channels[d.route] {
                    self.metrics.silenced.with_label_values(&[&self.channels[c].name, &route]).inc();
                }
                continue;
            }
            for c in self.route_channels[d.route].clone() {
                self.enqueue(&d, c, now);
            }
        }
        for r in fx.rate_limited {
            for &c in &self.route_channels[r] {
                self.metrics.rate_limited.with_label_values(&[&self.channels[c].name, &self.contexts[r].route]).inc();
            }
        }
        for (r, p) in fx.held {
            self.tracker.add(p, 1);
            for &c in &self.route_channels[r] {
                self.channel_trackers[c].add(p, 1);
            }
        }
        for (r, p) in fx.released {
            self.tracker.done(p);
            for &c in &self.route_channels[r] {
                self.channel_trackers[c].done(p);
            }
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
            self.channel_trackers[a.channel].done(p);
        }
        if let Some(s) = a.state {
            self.channel_state[a.channel] = s;
        }
    }

    /// What a restart needs to resume (partition 0): per channel its mark and state. A channel's mark is never
    /// below what it was resumed from.
    pub fn resume_point(&self) -> Resume {
        let mut r = Resume::default();
        for (i, h) in self.channels.iter().enumerate() {
            let mark = self.channel_trackers[i].low_water(0).unwrap_or(0).max(self.resumed[i]);
            r.marks.insert(h.name.clone(), mark);
            if !self.channel_state[i].is_empty() {
                r.state.insert(h.name.clone(), self.channel_state[i].clone());
            }
        }
        r
    }

    /// Waits up to `wait` for an acknowledgement and applies every one that arrived; `false` once none can come
    /// any more (after [`Engine::close`], every worker stopped). The drain loop of every reader.
    pub async fn drain_step(&mut self, wait: Duration) -> bool {
        let more = tokio::time::timeout(wait, self.next_ack()).await.unwrap_or(true);
        self.poll_acks();
        more
    }

    /// Every offset of `partition` below this is delivered or dead-lettered on every route.
    pub fn low_water(&self, partition: i32) -> Option<i64> {
        self.tracker.low_water(partition)
    }

    /// Forgets `partition`'s positions (a Kafka consumer lost it: its new owner re-reads from the committed
    /// offset). Messages already queued for it are still delivered; they no longer hold any mark back.
    pub fn forget_partition(&mut self, partition: i32) {
        self.tracker.forget_partition(partition);
        for t in &mut self.channel_trackers {
            t.forget_partition(partition);
        }
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
        self.apply(fx, now);
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
