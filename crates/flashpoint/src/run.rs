//! `flashpoint run`: the cluster worker's wiring — runtime, signals, the HTTP endpoint, the Kafka stages.

use crate::config::Config;
use anyhow::{Context, Result};
use flashpoint_core::sentiment::Scorer;
use flashpoint_kafka::metrics::Metrics;
use flashpoint_kafka::shutdown::Stop;
use flashpoint_kafka::{Role, WorkerSettings};
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
        tokio::spawn(serve(listener, metrics.clone()));

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
        };
        flashpoint_kafka::run(role, settings, scorer, metrics, stop).await.context("worker")?;
        info!("worker stopped cleanly");
        Ok(ExitCode::SUCCESS)
    })
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

/// A deliberately tiny HTTP/1.1 server: three GET endpoints, one request per connection. Scrapers and
/// kubelet probes need nothing more, and it keeps a web framework out of the worker.
async fn serve(listener: TcpListener, metrics: Arc<Metrics>) {
    loop {
        let Ok((conn, _)) = listener.accept().await else { continue };
        let m = metrics.clone();
        tokio::spawn(async move {
            let _ = tokio::time::timeout(Duration::from_secs(10), answer(conn, &m)).await;
        });
    }
}

async fn answer(mut conn: TcpStream, metrics: &Metrics) -> std::io::Result<()> {
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
    let line = buf.split(|&b| b == b'\r').next().unwrap_or_default();
    let mut parts = line.split(|&b| b == b' ');
    let (method, path) = (parts.next().unwrap_or_default(), parts.next().unwrap_or_default());
    let path = path.split(|&b| b == b'?').next().unwrap_or_default();
    let (status, ctype, body) = match (method, path) {
        (b"GET", b"/metrics") => ("200 OK", "text/plain; version=0.0.4; charset=utf-8", metrics.render()),
        (b"GET", b"/healthz") => ("200 OK", "text/plain", "ok\n".to_string()),
        (b"GET", b"/readyz") => match metrics.health.ready() {
            Ok(()) => ("200 OK", "text/plain", "ready\n".to_string()),
            Err(why) => ("503 Service Unavailable", "text/plain", format!("not ready: {why}\n")),
        },
        (b"GET", _) => ("404 Not Found", "text/plain", "not found\n".to_string()),
        _ => ("405 Method Not Allowed", "text/plain", "GET only\n".to_string()),
    };
    let head = format!(
        "HTTP/1.1 {status}\r\nContent-Type: {ctype}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    );
    conn.write_all(head.as_bytes()).await?;
    conn.write_all(body.as_bytes()).await?;
    conn.shutdown().await
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
        rt.spawn(serve(listener, metrics.clone()));
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
