//! The deployment's observability, checked against a real Prometheus (the Debian package's binary,
//! installed by scripts/prometheus.sh, which scripts/test.sh calls).
//!
//! A worker processes the sample stream cut at 16:30 on day 3, when the Acme Air incident is open at
//! `critical` (it turns critical at 15:46 and resolves only at 21:17). A Prometheus on 127.0.0.1 scrapes the
//! worker every second with the same job name and the same `deploy/prometheus/rules.yml` as the deployment.
//! Then every query of `deploy/grafana/dashboards/flashpoint.json` (template variables substituted) and
//! every alert rule's expression is evaluated through the HTTP API, and each must return data; the
//! critical-incident alert must be firing. The worker runs every stage, the notify stage included, sending to
//! a signed webhook on a local receiver, so the notification panels and the failing-channel alert have data.

use flashpoint_testkit::*;
use serde_json::Value;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// Where the sample stream is cut: after the incident turned critical (window ending 15:46), well before
/// it resolves (21:17). Without newer posts the watermark stops there, so the incident stays open.
const CUT: &str = "2026-03-04T16:30:00";

/// Alerts that by design fire only on faults (a healthy run leaves their expressions empty). For each, the
/// sub-expressions (verbatim parts of the rule, without the threshold comparison) that must return data:
/// so the metrics they watch exist and the expression is not silently empty forever.
const FAULT_ONLY: &[(&str, &[&str])] = &[
    // Healthy: up is 1, so `== 0` is empty; `up` itself must exist for the job.
    ("FlashpointWorkerDown", &[r#"up{job="flashpoint"}"#]),
    // Healthy: ready is 1.
    ("FlashpointNotReady", &["flashpoint_ready"]),
    // Healthy: the lag does not grow and stays under 1000.
    (
        "FlashpointConsumerLagGrowing",
        &[
            "sum by (stage, topic) (deriv(flashpoint_consumer_lag_messages[10m]))",
            "sum by (stage, topic) (flashpoint_consumer_lag_messages)",
        ],
    ),
    // Healthy: one malformed record, far below one per second.
    ("FlashpointDeadLetterRateHigh", &["sum by (reason) (rate(flashpoint_dead_letter_records_total[5m]))"]),
    // Healthy: no commit fails.
    ("FlashpointCommitFailures", &["sum by (instance, stage) (increase(flashpoint_commit_failures_total[10m]))"]),
    // Healthy: the receiver answers 200 at once.
    (
        "FlashpointNotifyChannelFailing",
        &[
            "sum by (channel) (increase(flashpoint_notifications_failed_total[15m]))",
            "sum by (channel) (increase(flashpoint_notifications_retried_total[10m]))",
        ],
    ),
];

const CRITICAL_ALERT: &str = "FlashpointCriticalIncidentOpen";

#[test]
fn prometheus_scrapes_the_worker_and_every_dashboard_query_and_alert_rule_returns_data() {
    let started = Instant::now();
    let prometheus = prometheus_binary();
    let dir = tempdir("prom");
    let receiver = Receiver::start();
    std::fs::write(dir.join("hook.url"), receiver.url("/hook")).unwrap();
    std::fs::write(dir.join("hook.key"), "whsec_prometheus_test").unwrap();
    let notify = format!(
        "[notify]\n[[notify.channels]]\nkind = \"webhook\"\nname = \"hook\"\nurl = {{ file = \"{}\" }}\n\
         signing_key = {{ file = \"{}\" }}\n[[notify.routes]]\nname = \"all\"\nchannels = [\"hook\"]\n",
        dir.join("hook.url").display(),
        dir.join("hook.key").display()
    );
    let fx = Fixture::new("prom").dir(&dir).kafka_line("checkpoint_interval_ms = 300").section(&notify).build();
    let (t, cfg) = (&fx.topics, &fx.config);

    // The cut stream, checked to end with the incident open at critical severity (replay is the reference).
    let cut: Vec<Vec<u8>> = lines(&sample_stream())
        .into_iter()
        .filter(|l| match serde_json::from_slice::<Value>(l) {
            Ok(v) => v["created_at"].as_str().map_or(true, |c| c < CUT),
            Err(_) => true, // the sample's malformed record: a dead letter
        })
        .collect();
    let input = dir.join("cut.jsonl");
    std::fs::write(&input, cut.iter().map(|l| format!("{}\n", String::from_utf8_lossy(l))).collect::<String>())
        .unwrap();
    let expected = replay(cfg, &input);
    let last = expected.last().expect("the cut stream holds the incident");
    assert_eq!(
        (last["kind"].as_str(), last["severity"].as_str()),
        (Some("updated"), Some("critical")),
        "incident still open at critical: {last}"
    );

    let worker = fx.worker("all", "worker");
    let worker_addr = worker.addr.clone();
    let prom = Prometheus::start(&prometheus, &dir, &worker_addr);

    // Wait for the first scrape before producing, so the counters' increases fall between samples and
    // every rate() and histogram_quantile() has something to show.
    let up = wait_for(&prom, r#"up{job="flashpoint"} == 1"#, Duration::from_secs(30));
    assert!(
        up.is_some(),
        "Prometheus never scraped the worker at {worker_addr}; worker log:\n{}\nprometheus log:\n{}",
        worker.log_text(),
        prom.log_text()
    );
    assert_eq!(http_get(&worker_addr, "/healthz").0, 200);
    produce(&t.input, &cut);
    let spikes = read_until(&t.spikes, Duration::from_secs(40), |r| r.len() >= expected.len());
    assert!(
        spikes.len() >= expected.len(),
        "worker published {} of {} spike events; log:\n{}",
        spikes.len(),
        expected.len(),
        worker.log_text()
    );

    // The gauges follow the checkpoint after the last event; Prometheus scrapes it within a second.
    let critical = wait_for(
        &prom,
        r#"sum by (entity) (flashpoint_open_incidents{severity="critical"}) == 1"#,
        Duration::from_secs(15),
    );
    assert!(
        critical.is_some(),
        "no critical incident in Prometheus; /metrics:\n{}",
        http_get(&worker_addr, "/metrics").1
    );
    assert_eq!(critical.unwrap()[0]["metric"]["entity"], "Acme Air");
    // The notify stage delivered the incident's opening to the receiver.
    let sent = wait_for(&prom, "sum(flashpoint_notifications_sent_total) > 0", Duration::from_secs(20));
    assert!(sent.is_some(), "no notification sent; receiver got {} requests", receiver.requests("/hook").len());
    // Consumer lag is known once a group has committed (librdkafka reports -1 before, and the worker exports
    // no series for an unknown lag): wait until the three stages' lag series have two samples, as deriv() needs.
    let lag = wait_for(
        &prom,
        "count(count by (stage) (deriv(flashpoint_consumer_lag_messages[1m]))) == 3",
        Duration::from_secs(20),
    );
    assert!(
        lag.is_some(),
        "consumer lag of every stage in Prometheus: {}",
        prom.query("flashpoint_consumer_lag_messages")
    );
    let (status, body) = http_get(&worker_addr, "/readyz");
    assert_eq!(status, 200, "worker ready: {body}");

    // The critical-incident alert fires (no `for`: the detector already debounces), in ALERTS and the API.
    let firing = wait_for(
        &prom,
        &format!(r#"ALERTS{{alertname="{CRITICAL_ALERT}",alertstate="firing"}}"#),
        Duration::from_secs(10),
    );
    assert!(firing.is_some(), "{CRITICAL_ALERT} is not firing; rules: {}", prom.api("/api/v1/rules"));
    assert_eq!(firing.unwrap()[0]["metric"]["entity"], "Acme Air");
    let alerts = prom.api("/api/v1/alerts");
    let alerts = alerts["data"]["alerts"].as_array().unwrap();
    assert!(
        alerts.iter().any(|a| a["labels"]["alertname"] == CRITICAL_ALERT
            && a["labels"]["entity"] == "Acme Air"
            && a["state"] == "firing"),
        "{alerts:?}"
    );
    // Nothing else fires on a healthy run.
    let others: Vec<&Value> = alerts.iter().filter(|a| a["labels"]["alertname"] != CRITICAL_ALERT).collect();
    assert!(others.is_empty(), "only the incident alert should be active: {others:?}");

    // Every dashboard query, for one entity and for "All".
    let dashboard: Value =
        serde_json::from_str(&std::fs::read_to_string(repo("deploy/grafana/dashboards/flashpoint.json")).unwrap())
            .unwrap();
    let entities = prom.entity_values(&dashboard);
    assert!(entities.iter().any(|e| e == "Acme Air"), "the entity variable's query lists the watchlist: {entities:?}");
    let queries = dashboard_queries(&dashboard);
    assert!(queries.len() >= 20, "{} queries", queries.len());
    let mut empty = Vec::new();
    for entity in ["Acme Air", ".*"] {
        for (panel, expr) in &queries {
            let q = substitute(expr, entity);
            let r = prom.query(&q);
            if !has_data(&r) {
                empty.push(format!("panel {panel:?}, entity {entity:?}: {q}\n  -> {r}"));
            }
        }
    }
    assert!(empty.is_empty(), "dashboard queries without data:\n{}", empty.join("\n"));

    // Every alert rule, as Prometheus loaded it from deploy/prometheus/rules.yml.
    let rules = prom.api("/api/v1/rules");
    let rules: Vec<&Value> =
        rules["data"]["groups"].as_array().unwrap().iter().flat_map(|g| g["rules"].as_array().unwrap()).collect();
    let names: Vec<&str> = rules.iter().map(|r| r["name"].as_str().unwrap()).collect();
    for want in FAULT_ONLY.iter().map(|(n, _)| *n).chain([CRITICAL_ALERT]) {
        assert!(names.contains(&want), "rule {want} not loaded: {names:?}");
    }
    for r in &rules {
        let (name, expr) = (r["name"].as_str().unwrap(), r["query"].as_str().unwrap());
        assert_eq!(r["health"], "ok", "rule {name} evaluates without error: {r}");
        let res = prom.query(expr);
        assert_eq!(res["status"], "success", "rule {name}: {expr}: {res}");
        match FAULT_ONLY.iter().find(|(n, _)| *n == name) {
            Some((_, parts)) => {
                for part in *parts {
                    assert!(
                        expr.contains(part),
                        "rule {name}: {part:?} is not part of its expression {expr:?} (update FAULT_ONLY)"
                    );
                    // Polled: the lag series appear at a group's first commit, and deriv() needs two
                    // samples of them (1 s apart here).
                    let r = wait_for(&prom, part, Duration::from_secs(15));
                    assert!(r.is_some(), "rule {name}: its selector {part} returns no data: {}", prom.query(part));
                }
            }
            None => assert!(
                has_data(&res),
                "rule {name} returns no data on a run with an open critical incident: {expr}: {res}"
            ),
        }
    }

    assert_eq!(worker.stop(), 0);
    eprintln!(
        "prometheus test: {} dashboard queries, {} rules checked in {:.1} s",
        queries.len(),
        rules.len(),
        started.elapsed().as_secs_f64()
    );
}

/// The `prometheus` binary: `$FLASHPOINT_PROMETHEUS`, or on PATH. Never skipped: without it the test fails
/// and says how to get it.
fn prometheus_binary() -> String {
    let bin = std::env::var("FLASHPOINT_PROMETHEUS").unwrap_or_else(|_| "prometheus".into());
    match Command::new(&bin).arg("--version").stdout(Stdio::null()).stderr(Stdio::null()).status() {
        Ok(s) if s.success() => bin,
        _ => panic!(
            "Prometheus not found ({bin}). This test runs a real Prometheus: run scripts/test.sh, or \
             scripts/prometheus.sh install (apt-get install prometheus), or set FLASHPOINT_PROMETHEUS to a prometheus binary"
        ),
    }
}

/// A Prometheus server on 127.0.0.1 with a temp data dir, scraping `target` every second with the
/// deployment's job name and rule file; killed when dropped.
struct Prometheus {
    child: Child,
    addr: String,
    log: std::path::PathBuf,
}

impl Prometheus {
    fn start(bin: &str, dir: &Path, target: &str) -> Prometheus {
        let deploy = std::fs::read_to_string(repo("deploy/prometheus/prometheus.yml")).unwrap();
        assert!(
            deploy.contains("job_name: flashpoint"),
            "the deployment's job is `flashpoint`, as the rules and dashboard expect"
        );
        let rules = repo("deploy/prometheus/rules.yml").canonicalize().unwrap();
        let config = dir.join("prometheus.yml");
        std::fs::write(
            &config,
            format!(
                "global:\n  scrape_interval: 1s\n  scrape_timeout: 1s\n  evaluation_interval: 1s\nrule_files:\n  - {}\n\
                 scrape_configs:\n  - job_name: flashpoint\n    static_configs:\n      - targets: ['{target}']\n",
                rules.display()
            ),
        )
        .unwrap();
        let addr = format!("127.0.0.1:{}", free_port());
        let log = dir.join("prometheus.log");
        let child = Command::new(bin)
            .arg(format!("--config.file={}", config.display()))
            .arg(format!("--storage.tsdb.path={}", dir.join("tsdb").display()))
            .arg(format!("--web.listen-address={addr}"))
            .arg("--storage.tsdb.retention.time=1h")
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).unwrap())
            .spawn()
            .unwrap();
        let p = Prometheus { child, addr, log };
        let deadline = Instant::now() + Duration::from_secs(20);
        while !matches!(try_http_get(&p.addr, "/-/ready"), Some((200, _))) {
            assert!(Instant::now() < deadline, "Prometheus did not become ready; log:\n{}", p.log_text());
            std::thread::sleep(Duration::from_millis(100));
        }
        p
    }

    fn api(&self, path_and_query: &str) -> Value {
        let (status, body) = http_get(&self.addr, path_and_query);
        serde_json::from_str(&body).unwrap_or_else(|e| panic!("{path_and_query}: HTTP {status}: {e}: {body}"))
    }

    fn query(&self, q: &str) -> Value {
        self.api(&format!("/api/v1/query?query={}", urlencode(q)))
    }

    /// Resolves the dashboard's `entity` variable as Grafana does: `label_values(METRIC, LABEL)`.
    fn entity_values(&self, dashboard: &Value) -> Vec<String> {
        let var = dashboard["templating"]["list"]
            .as_array()
            .unwrap()
            .iter()
            .find(|v| v["name"] == "entity")
            .expect("an entity variable");
        let q = var["query"]["query"].as_str().or_else(|| var["query"].as_str()).unwrap();
        let inner =
            q.strip_prefix("label_values(").and_then(|s| s.strip_suffix(')')).expect("label_values(metric, label)");
        let (metric, label) = inner.split_once(',').unwrap();
        let v = self.api(&format!("/api/v1/label/{}/values?match[]={}", label.trim(), urlencode(metric.trim())));
        v["data"].as_array().unwrap().iter().map(|x| x.as_str().unwrap().to_string()).collect()
    }

    fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

impl Drop for Prometheus {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Polls an instant query until it returns data; that data, or None at the deadline.
fn wait_for(p: &Prometheus, q: &str, timeout: Duration) -> Option<Vec<Value>> {
    let deadline = Instant::now() + timeout;
    loop {
        let r = p.query(q);
        if has_data(&r) {
            return r["data"]["result"].as_array().cloned();
        }
        if Instant::now() > deadline {
            return None;
        }
        std::thread::sleep(Duration::from_millis(250));
    }
}

/// A successful query with at least one series or sample holding a number (NaN, as from a quantile of
/// no observations, shows as no data on a panel, so it counts as none).
fn has_data(r: &Value) -> bool {
    if r["status"] != "success" {
        return false;
    }
    let number = |v: &Value| v.as_str().map_or(false, |s| s.parse::<f64>().map_or(false, |x| !x.is_nan()));
    match r["data"]["resultType"].as_str() {
        Some("vector") => r["data"]["result"].as_array().map_or(false, |a| a.iter().any(|s| number(&s["value"][1]))),
        Some("matrix") => r["data"]["result"].as_array().map_or(false, |a| {
            a.iter().any(|s| s["values"].as_array().map_or(false, |v| v.iter().any(|x| number(&x[1]))))
        }),
        Some("scalar") => number(&r["data"]["result"][1]),
        _ => false,
    }
}

/// (panel title, expr) for every target of every panel, rows' nested panels included; each panel and target
/// must use the `${datasource}` variable.
fn dashboard_queries(d: &Value) -> Vec<(String, String)> {
    let vars: Vec<&str> =
        d["templating"]["list"].as_array().unwrap().iter().map(|v| v["name"].as_str().unwrap()).collect();
    assert_eq!(vars, ["datasource", "entity"]);
    let ds = d["templating"]["list"][0].clone();
    assert_eq!((ds["type"].as_str(), ds["query"].as_str()), (Some("datasource"), Some("prometheus")));
    let mut out = Vec::new();
    let mut stack: Vec<&Value> = d["panels"].as_array().unwrap().iter().collect();
    while let Some(p) = stack.pop() {
        if let Some(inner) = p["panels"].as_array() {
            stack.extend(inner);
        }
        if p["type"] == "row" {
            continue;
        }
        let title = p["title"].as_str().unwrap().to_string();
        assert_eq!(p["datasource"]["uid"], "${datasource}", "panel {title}");
        let targets = p["targets"].as_array().unwrap_or_else(|| panic!("panel {title} has no targets"));
        assert!(!targets.is_empty(), "panel {title} has no queries");
        for t in targets {
            assert_eq!(t["datasource"]["uid"], "${datasource}", "panel {title}");
            out.push((
                title.clone(),
                t["expr"].as_str().unwrap_or_else(|| panic!("panel {title}: a target without expr")).to_string(),
            ));
        }
    }
    out
}

/// Grafana's substitutions: the entity variable (regex-matched), and the interval variables, as Grafana
/// would compute them for a 1 s scrape interval and a short time range.
fn substitute(expr: &str, entity: &str) -> String {
    let s = expr
        .replace("${entity}", entity)
        .replace("$entity", entity)
        .replace("$__rate_interval", "1m")
        .replace("$__range", "1h")
        .replace("$__interval", "15s");
    assert!(!s.contains('$'), "an unsubstituted variable in {s}");
    s
}

fn urlencode(s: &str) -> String {
    let mut out = String::with_capacity(s.len() * 3);
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-_.~".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}
