//! `flashpoint run`: the cluster worker's wiring — runtime, signals, the HTTP endpoint, the Kafka stages.

use crate::config::Config;
use anyhow::{Context, Result};
use flashpoint_core::sentiment::Scorer;
use flashpoint_kafka::metrics::Metrics;
use flashpoint_kafka::shutdown::Stop;
use flashpoint_kafka::{Role, Stage, WorkerSettings};
use flashpoint_notify::page::{self, IncidentStore, Links, SharedStore};
use flashpoint_notify::secret::Secret;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tracing::{error, info, warn};

pub fn run(cfg: Config, role: Role, scorer: Arc<dyn Scorer>) -> Result<ExitCode> {
    let rt = tokio::runtime::Builder::new_multi_thread().enable_all().build().context("starting the async runtime")?;
    rt.block_on(async move {
        let metrics = Arc::new(Metrics::new(cfg.metrics.max_entity_labels));
        let listener = TcpListener::bind(&cfg.metrics.listen)
            .await
            .with_context(|| format!("metrics.listen: binding {}", cfg.metrics.listen))?;
        info!(address = %listener.local_addr()?, "serving /metrics, /healthz, /readyz");
        let pages = pages(&cfg, role)?;
        if pages.is_some() {
            info!(address = %listener.local_addr()?, "serving the incident pages at /incidents");
        }
        tokio::spawn(serve(listener, metrics.clone(), pages.clone()));

        let stop = Stop::new();
        let (signal_stop, grace) = (stop.clone(), Duration::from_millis(cfg.kafka.shutdown_timeout_ms));
        let mut fired = stop.subscribe();
        tokio::spawn(async move {
            tokio::select! {
                _ = wait_for_signal() => {
                    info!("stopping: draining, committing and leaving the group");
                    signal_stop.fire();
                }
                // A failing stage fires the stop itself: the others' drain is bounded all the same (a broker that
                // froze and failed one stage would otherwise hold the rest, and the process, for ever).
                _ = fired.recv() => info!("a stage stopped the worker: draining the others"),
            }
            // The drain is bounded whatever the broker does: what is not committed by then is re-read by the
            // next owner. A second signal while draining means "now".
            tokio::select! {
                _ = wait_for_signal() => {
                    warn!("second signal: exiting without draining");
                    std::process::exit(130);
                }
                _ = tokio::time::sleep(grace) => {
                    error!(timeout_ms = grace.as_millis() as u64, "drain not finished within kafka.shutdown_timeout_ms: exiting without committing the rest");
                    std::process::exit(1);
                }
            }
        });
        let settings = WorkerSettings {
            kafka: cfg.kafka.clone(),
            decoder: cfg.input.decoder(),
            entities: cfg.entities.clone(),
            aggregator: cfg.aggregator(),
            normalize: cfg.scorer.normalize,
            language: cfg.scorer.language_gate(scorer.as_ref())?,
            notify: cfg.notify.clone(),
            pages: pages.map(|p| p.store),
        };
        flashpoint_kafka::run(role, settings, scorer, metrics, stop).await.context("worker")?;
        info!("worker stopped cleanly");
        Ok(ExitCode::SUCCESS)
    })
}

/// The incident pages, when this process runs the notify stage and `notify.pages.enabled`; the token is read
/// here, so a missing one fails at start.
fn pages(cfg: &Config, role: Role) -> Result<Option<Pages>> {
    let p = &cfg.notify.pages;
    let notifies = match role {
        Role::Only(stage) => stage == Stage::Notify,
        Role::All => !cfg.notify.routes.is_empty(),
    };
    if !(notifies && p.enabled) {
        return Ok(None);
    }
    let token = match &p.token {
        Some(r) => Some(r.resolve().with_context(|| format!("notify.pages.token ({r})"))?),
        None => None,
    };
    let store = Arc::new(std::sync::Mutex::new(IncidentStore::new(p.max_incidents, p.max_events)));
    Ok(Some(Pages { store, token }))
}

async fn wait_for_signal() {
    #[cfg(unix)]
    {
        let mut term =
            tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()).expect("SIGTERM handler");
        tokio::select! {
            _ = term.recv() => {}
            _ = tokio::signal::ctrl_c() => {}
        }
    }
    #[cfg(not(unix))]
    let _ = tokio::signal::ctrl_c().await;
}

/// The incident pages as the HTTP endpoint serves them: the notify stage's store, and the token that guards them.
#[derive(Clone)]
pub struct Pages {
    pub store: SharedStore,
    /// `None` only on a loopback listener (`Config::validate` refuses any other).
    pub token: Option<Secret>,
}

/// The cookie a browser keeps the token in after one `?token=` visit, so links between the pages (which carry
/// no token, and no script could add one) keep working.
const TOKEN_COOKIE: &str = "flashpoint_pages";

/// A deliberately tiny HTTP/1.1 server: a few GET endpoints, one request per connection. Scrapers, kubelet
/// probes and a browser reading the incident pages need nothing more, and it keeps a web framework out of the
/// worker.
async fn serve(listener: TcpListener, metrics: Arc<Metrics>, pages: Option<Pages>) {
    loop {
        let Ok((conn, _)) = listener.accept().await else { continue };
        let (m, p) = (metrics.clone(), pages.clone());
        tokio::spawn(async move {
            let _ = tokio::time::timeout(Duration::from_secs(10), answer(conn, &m, p.as_ref())).await;
        });
    }
}

/// What the endpoint answers: status line, content type, extra headers, body.
struct Response {
    status: &'static str,
    ctype: &'static str,
    headers: Vec<(&'static str, String)>,
    body: String,
}

impl Response {
    fn text(status: &'static str, body: impl Into<String>) -> Response {
        Response { status, ctype: "text/plain", headers: Vec::new(), body: body.into() }
    }
}

/// The request head: method, path, query and the two headers the pages read.
#[derive(Default)]
struct Head<'a> {
    method: &'a [u8],
    path: &'a [u8],
    query: &'a [u8],
    authorization: Option<&'a [u8]>,
    cookie: Option<&'a [u8]>,
}

fn parse_head(buf: &[u8]) -> Head<'_> {
    let mut lines = buf.split(|&b| b == b'\n').map(|l| l.strip_suffix(b"\r").unwrap_or(l));
    let mut parts = lines.next().unwrap_or_default().split(|&b| b == b' ');
    let (method, target) = (parts.next().unwrap_or_default(), parts.next().unwrap_or_default());
    let mut t = target.splitn(2, |&b| b == b'?');
    let mut h =
        Head { method, path: t.next().unwrap_or_default(), query: t.next().unwrap_or_default(), ..Head::default() };
    for line in lines.take_while(|l| !l.is_empty()) {
        let Some(colon) = line.iter().position(|&b| b == b':') else { continue };
        let value = line[colon + 1..].trim_ascii();
        match line[..colon].to_ascii_lowercase().as_slice() {
            b"authorization" => h.authorization = Some(value),
            b"cookie" => h.cookie = Some(value),
            _ => {}
        }
    }
    h
}

async fn answer(mut conn: TcpStream, metrics: &Metrics, pages: Option<&Pages>) -> std::io::Result<()> {
    let mut buf = Vec::with_capacity(1024);
    let mut chunk = [0u8; 1024];
    // Read the request head only (bounded: a client cannot make us buffer more than 16 KiB).
    while !buf.windows(4).any(|w| w == b"\r\n\r\n") && buf.len() < 16 * 1024 {
        let n = conn.read(&mut chunk).await?;
        if n == 0 {
            break;
        }
        buf.extend_from_slice(&chunk[..n]);
    }
    let head = parse_head(&buf);
    let r = match (head.method, head.path) {
        (b"GET", b"/metrics") => {
            Response { ctype: "text/plain; version=0.0.4; charset=utf-8", ..Response::text("200 OK", metrics.render()) }
        }
        (b"GET", b"/healthz") => Response::text("200 OK", "ok\n"),
        (b"GET", b"/readyz") => match metrics.health.ready() {
            Ok(()) => Response::text("200 OK", "ready\n"),
            Err(why) => Response::text("503 Service Unavailable", format!("not ready: {why}\n")),
        },
        (b"GET", p) if pages.is_some() && (p == b"/incidents" || p.starts_with(b"/incidents/")) => {
            incident_pages(pages.expect("checked"), &head)
        }
        (b"GET", _) => Response::text("404 Not Found", "not found\n"),
        _ => Response::text("405 Method Not Allowed", "GET only\n"),
    };
    let mut out = format!(
        "HTTP/1.1 {}\r\nContent-Type: {}\r\nContent-Length: {}\r\nConnection: close\r\n",
        r.status,
        r.ctype,
        r.body.len()
    );
    for (k, v) in &r.headers {
        out += &format!("{k}: {v}\r\n");
    }
    out += "\r\n";
    conn.write_all(out.as_bytes()).await?;
    conn.write_all(r.body.as_bytes()).await?;
    conn.shutdown().await
}

/// `/incidents` and `/incidents/{id}`: the token first (an unknown id says nothing to a stranger), then the page.
fn incident_pages(pages: &Pages, head: &Head<'_>) -> Response {
    let mut headers = vec![
        ("Content-Security-Policy", page::policy(true)),
        ("X-Content-Type-Options", "nosniff".to_string()),
        ("Referrer-Policy", "no-referrer".to_string()),
        ("X-Frame-Options", "DENY".to_string()),
        ("Cache-Control", "no-store".to_string()),
    ];
    if let Some(token) = &pages.token {
        let bearer = head.authorization.and_then(|a| a.strip_prefix(b"Bearer ")).map(|t| t.trim_ascii().to_vec());
        let query = query_param(head.query, b"token");
        let cookie = head.cookie.and_then(|c| {
            c.split(|&b| b == b';').find_map(|kv| kv.trim_ascii().strip_prefix(format!("{TOKEN_COOKIE}=").as_bytes()))
        });
        let cookie = cookie.map(percent_decode);
        let ok = |t: &Option<Vec<u8>>| t.as_deref().is_some_and(|t| token.matches(t));
        if ok(&query) {
            // Once by URL, then by cookie: the page's links carry no token. HttpOnly and SameSite keep it from
            // scripts and from other sites' requests.
            headers.push((
                "Set-Cookie",
                format!(
                    "{TOKEN_COOKIE}={}; Path=/incidents; HttpOnly; SameSite=Strict",
                    flashpoint_notify::safe::url_component(token.expose())
                ),
            ));
        } else if !(ok(&bearer) || ok(&cookie)) {
            headers.push(("WWW-Authenticate", "Bearer realm=\"flashpoint incidents\"".to_string()));
            return Response {
                headers,
                ..Response::text(
                    "401 Unauthorized",
                    "the incident pages need the token: Authorization: Bearer <token>, or ?token=<token> once\n",
                )
            };
        }
    }
    let links = Links::live();
    let (status, body) = {
        let store = pages.store.lock().expect("not poisoned");
        let id = head.path.strip_prefix(b"/incidents").unwrap_or_default();
        let id = id.strip_prefix(b"/").unwrap_or(id);
        if id.is_empty() {
            ("200 OK", page::index(&store.list(), &links))
        } else {
            match std::str::from_utf8(id).ok().and_then(|id| store.get(id)) {
                Some(inc) => ("200 OK", page::incident(inc, &links)),
                None => ("404 Not Found", page::not_found(&links)),
            }
        }
    };
    Response { status, ctype: "text/html; charset=utf-8", headers, body }
}

/// The value of `name` in a query string, percent-decoded.
fn query_param(query: &[u8], name: &[u8]) -> Option<Vec<u8>> {
    query.split(|&b| b == b'&').find_map(|kv| {
        let (k, v) = kv.split_at(kv.iter().position(|&b| b == b'=')?);
        (k == name).then(|| percent_decode(&v[1..]))
    })
}

fn percent_decode(s: &[u8]) -> Vec<u8> {
    let hex = |b: Option<&u8>| b.and_then(|&b| (b as char).to_digit(16));
    let mut out = Vec::with_capacity(s.len());
    let mut i = 0;
    while i < s.len() {
        match (s[i], hex(s.get(i + 1)), hex(s.get(i + 2))) {
            (b'%', Some(h), Some(l)) => {
                out.push((h * 16 + l) as u8);
                i += 3;
                continue;
            }
            (b'+', ..) => out.push(b' '),
            (b, ..) => out.push(b),
        }
        i += 1;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::{Read, Write};
    use std::sync::atomic::Ordering;

    fn request(addr: std::net::SocketAddr, req: &str) -> String {
        let mut c = std::net::TcpStream::connect(addr).unwrap();
        c.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        c.write_all(req.as_bytes()).unwrap();
        let mut out = String::new();
        c.read_to_string(&mut out).unwrap();
        out
    }

    #[test]
    fn endpoints_serve_metrics_liveness_and_readiness() {
        let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(1).enable_all().build().unwrap();
        let metrics = Arc::new(Metrics::new(10));
        metrics.set_entities(&["Acme Air".into()]);
        let listener = rt.block_on(TcpListener::bind("127.0.0.1:0")).unwrap();
        let addr = listener.local_addr().unwrap();
        rt.spawn(serve(listener, metrics.clone(), None));
        let get = |path: &str| request(addr, &format!("GET {path} HTTP/1.1\r\nHost: test\r\n\r\n"));

        let r = get("/metrics");
        assert!(r.starts_with("HTTP/1.1 200 OK\r\n"), "{r}");
        assert!(r.contains("Content-Type: text/plain; version=0.0.4"), "{r}");
        assert!(r.contains("flashpoint_ready 0"), "{r}");
        assert!(r.contains(r#"flashpoint_open_incidents{entity="Acme Air",severity="critical"} 0"#), "{r}");
        let (head, body) = r.split_once("\r\n\r\n").unwrap();
        assert!(head.contains(&format!("Content-Length: {}", body.len())), "{head}");
        assert!(get("/metrics?x=1").starts_with("HTTP/1.1 200 OK"));

        let r = get("/healthz");
        assert!(r.starts_with("HTTP/1.1 200 OK") && r.ends_with("ok\n"), "{r}");
        let r = get("/readyz");
        assert!(
            r.starts_with("HTTP/1.1 503 Service Unavailable") && r.contains("not ready: no broker reachable"),
            "{r}"
        );

        let h = &metrics.health;
        h.broker_up.store(true, Ordering::Relaxed);
        h.last_stats_ms.store(flashpoint_kafka::metrics::now_ms(), Ordering::Relaxed);
        h.score_running.store(true, Ordering::Relaxed);
        assert!(get("/readyz").contains("score stage has no partitions"));
        h.score_assigned.store(true, Ordering::Relaxed);
        let r = get("/readyz");
        assert!(r.starts_with("HTTP/1.1 200 OK") && r.ends_with("ready\n"), "{r}");
        assert!(get("/metrics").contains("flashpoint_ready 1"));

        assert!(get("/nope").starts_with("HTTP/1.1 404"));
        assert!(request(addr, "POST /metrics HTTP/1.1\r\nHost: test\r\n\r\n").starts_with("HTTP/1.1 405"));
        // HTTP/1.0 (what some probes send) works too.
        assert!(request(addr, "GET /healthz HTTP/1.0\r\n\r\n").starts_with("HTTP/1.1 200 OK"));
    }
}
