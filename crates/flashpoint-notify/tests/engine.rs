//! The engine's acknowledgement contract, which a Kafka stage will commit by: the low-water mark never passes
//! a position whose message is still being delivered, however many later positions are done. Against a real
//! HTTP server on 127.0.0.1 that holds its first answer until the test releases it.

use flashpoint_notify::config::{ChannelConfig, NotifyConfig, RouteConfig};
use flashpoint_notify::{parse_event, Engine, NotifyMetrics, Position};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::sync::Notify;

fn event(id: &str, entity: &str, severity: &str) -> String {
    format!(
        r#"{{"schema":"flashpoint.spike.v1","incident_id":"{id}","seq":0,"kind":"opened","entity":"{entity}","incident_start":"2026-03-04T14:01:00.000Z","window_start":"2026-03-04T14:01:00.000Z","window_end":"2026-03-04T14:06:00.000Z","signal":"volume","observed":50.0,"baseline":10.0,"score":6.0,"severity":"{severity}","counts":{{"volume":50,"negative":30,"neutral":10,"positive":10}},"negative_share":0.6,"mean_compound":-0.3,"reach":100,"evidence":{{"most_negative":[],"top_reach":[],"top_terms":[]}},"some_future_field":true}}"#
    )
}

/// Answers 200 to every request, except that the first answer waits for `release`.
async fn receiver(release: Arc<Notify>, seen: Arc<AtomicUsize>) -> u16 {
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = l.local_addr().unwrap().port();
    tokio::spawn(async move {
        loop {
            let (mut s, _) = l.accept().await.unwrap();
            let (release, seen) = (release.clone(), seen.clone());
            tokio::spawn(async move {
                let mut buf = Vec::new();
                loop {
                    let mut chunk = [0u8; 4096];
                    let n = match s.read(&mut chunk).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => n,
                    };
                    buf.extend_from_slice(&chunk[..n]);
                    let Some(h) = buf.windows(4).position(|w| w == b"\r\n\r\n") else { continue };
                    let head = String::from_utf8_lossy(&buf[..h]).to_ascii_lowercase();
                    let len: usize = head
                        .lines()
                        .find_map(|l| l.strip_prefix("content-length:"))
                        .map_or(0, |v| v.trim().parse().unwrap());
                    if buf.len() < h + 4 + len {
                        continue;
                    }
                    buf.drain(..h + 4 + len);
                    if seen.fetch_add(1, Ordering::SeqCst) == 0 {
                        release.notified().await;
                    }
                    if s.write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok").await.is_err() {
                        return;
                    }
                }
            });
        }
    });
    port
}

/// A `kind = "webhook"` channel named `hook`, its URL from `url_var`.
fn webhook(url_var: &str) -> ChannelConfig {
    ChannelConfig::from_table(serde_json::json!({
        "kind": "webhook", "name": "hook", "url": {"env": url_var}, "signing_key": {"env": "HOOK_KEY"}
    }))
    .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn low_water_waits_for_the_oldest_undelivered_position() {
    let release = Arc::new(Notify::new());
    let seen = Arc::new(AtomicUsize::new(0));
    let port = receiver(release.clone(), seen.clone()).await;
    let cfg = NotifyConfig {
        channels: vec![webhook("HOOK_URL")],
        routes: vec![RouteConfig {
            name: "acme".into(),
            entities: vec!["Acme*".into()],
            min_severity: flashpoint_core::detect::Severity::Warning,
            signals: vec![],
            kinds: vec![],
            classes: vec![],
            channels: vec!["hook".into()],
            update_interval_secs: None,
            rate_limit: None,
            digest: None,
        }],
        ..NotifyConfig::default()
    };
    cfg.validate().unwrap();
    let url = format!("http://127.0.0.1:{port}/hook");
    let env = move |k: &str| match k {
        "HOOK_URL" => Some(url.clone()),
        "HOOK_KEY" => Some("key".to_string()),
        _ => None,
    };
    let registry = prometheus::Registry::new();
    let metrics = NotifyMetrics::new(&registry).unwrap();
    let (dead_tx, mut dead_rx) = tokio::sync::mpsc::unbounded_channel();
    let mut engine = Engine::start(&cfg, &env, metrics.clone(), dead_tx).unwrap();

    let lines = [
        event("i1", "Acme Air", "critical"), // 0: sent, its answer held
        event("i2", "Globex", "critical"),   // 1: no route: done at once
        event("i3", "Acme Air", "watch"),    // 2: below the route's severity: done at once
        event("i4", "Acme Rail", "warning"), // 3: sent after 0 on the same channel
    ];
    for (i, l) in lines.iter().enumerate() {
        engine.submit(&parse_event(l, Position::line(i as i64)).unwrap(), 0);
    }
    // Wait until the first request is at the receiver (and held there).
    while seen.load(Ordering::SeqCst) == 0 {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    engine.poll_acks();
    assert_eq!(engine.low_water(0), Some(0), "1 and 2 are done, but 0 is not delivered: nothing may be committed");
    assert!(engine.outstanding() >= 1);
    release.notify_one();
    while engine.low_water(0) != Some(4) {
        assert!(engine.next_ack().await, "acks stopped before every position was done");
    }
    assert_eq!(seen.load(Ordering::SeqCst), 2, "the two Acme events, no more");
    assert_eq!(metrics.sent.with_label_values(&["hook", "acme"]).get(), 2);
    assert_eq!(metrics.events_in.get(), 4);
    engine.finish(0).await;
    assert_eq!(engine.outstanding(), 0);
    assert!(dead_rx.try_recv().is_err(), "nothing dead-lettered");
    // The metrics are on the caller's registry under their documented names.
    let names: Vec<String> = registry.gather().iter().map(|f| f.get_name().to_string()).collect();
    for n in [
        "flashpoint_notifications_sent_total",
        "flashpoint_notification_delivery_latency_seconds",
        "flashpoint_notification_queue_depth",
    ] {
        assert!(names.iter().any(|x| x == n), "{n} not registered: {names:?}");
    }
}

#[tokio::test]
async fn webhook_urls_must_be_https_unless_local_and_errors_never_show_them() {
    let cfg = |url_var: &str| NotifyConfig { channels: vec![webhook(url_var)], ..NotifyConfig::default() };
    let env = |k: &str| match k {
        "REMOTE_HTTP" => Some("http://alerts.example.com/hook/T0KEN".to_string()),
        "REMOTE_HTTPS" => Some("https://alerts.example.com/hook/T0KEN".to_string()),
        "LOCAL_HTTP" => Some("http://127.0.0.1:9/hook/T0KEN".to_string()),
        "HOOK_KEY" => Some("key".to_string()),
        _ => None,
    };
    let m = NotifyMetrics::new(&prometheus::Registry::new()).unwrap();
    let (tx, _rx) = tokio::sync::mpsc::unbounded_channel();
    let err =
        Engine::start(&cfg("REMOTE_HTTP"), &env, m.clone(), tx.clone()).err().expect("plain http to a remote host");
    let msg = err.to_string();
    assert!(msg.contains("hook") && msg.contains("env:REMOTE_HTTP") && msg.contains("https"), "{msg}");
    assert!(!msg.contains("T0KEN") && !format!("{err:?}").contains("T0KEN"), "{msg}");
    assert!(Engine::start(&cfg("REMOTE_HTTPS"), &env, m.clone(), tx.clone()).is_ok());
    assert!(Engine::start(&cfg("LOCAL_HTTP"), &env, m, tx).is_ok());
}
