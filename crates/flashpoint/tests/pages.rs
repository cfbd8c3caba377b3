//! The incident pages in a real browser (Debian's chromium, headless: `scripts/chromium.sh install`): the static
//! pages of `flashpoint report` over the sample stream's events and a hostile incident, and the live pages the
//! notify stage serves at `/incidents` (real Tansu broker, real HTTP receiver): token, headers, unknown ids, and
//! the alert's link to the page.

use flashpoint_notify::channel::webhook;
use flashpoint_testkit::*;
use serde_json::{json, Value};
use std::path::Path;
use std::time::{Duration, Instant};

const SCRIPT: &str = "<script>alert(1)</script>";
const IMG: &str = "<img src=x onerror=alert(1)>";
const HOSTILE_ID: &str = "inc-hostile0000000001";

/// A v3 incident whose every string is hostile: post text, author, phrase, entity, platform, reasons; one link
/// that may be made (https) and one that may not (`javascript:`); a timeline with a missing stretch.
fn hostile_event(sample: &Value) -> Value {
    let mut e = sample.clone();
    e["incident_id"] = json!(HOSTILE_ID);
    e["seq"] = json!(0);
    e["kind"] = json!("opened");
    e["entity"] = json!(format!("Globex {IMG}"));
    e["class"] = json!("buzz");
    e["reasons"] = json!([format!("volume rose {SCRIPT}")]);
    let post = json!({
        "id": "p1", "text": format!("hello {SCRIPT} and {IMG} & friends"), "created_at": "2026-03-04T14:05:00.000Z",
        "author": format!("mallory{IMG}"), "followers": 10, "compound": -0.9,
        "url": "https://social.example/mallory/status/1?a=1&b=2", "author_url": "javascript:alert(1)"
    });
    e["evidence"]["most_negative"] = json!([post]);
    e["evidence"]["top_reach"] = json!([]);
    e["evidence"]["drivers"] = json!([{"phrase": format!("lost {SCRIPT}"), "posts": 40, "expected": 2.5, "lift": 16.0, "negative_share": 0.9}]);
    e["evidence"]["storylines"] = json!([{"representative": post, "posts": 12, "authors": 9, "reach": 5000,
        "first_seen": "2026-03-04T14:02:00.000Z", "negative_share": 0.8}]);
    e["evidence"]["amplifiers"] = json!([{"author": format!("big{IMG}"), "followers": 90000, "posts": 3,
        "first_post_id": "p9", "first_post_url": "https://social.example/big/status/9", "author_url": "https://social.example/big"}]);
    e["evidence"]["platforms"] = json!([{"platform": format!("x{SCRIPT}"), "posts": 30}]);
    let start = 1_772_632_800_000_i64;
    let timeline: Vec<Value> = [0, 1, 2, 3, 4, 40, 41, 42]
        .iter()
        .map(|m| {
            json!({"window_end": flashpoint_core::time::format_rfc3339(start + m * 60_000), "volume": 10 + m, "negative": 3,
               "volume_expected": 8.0, "volume_band": [4.0, 12.0], "negative_expected": 1.0, "negative_band": [0.0, 3.0]})
        })
        .collect();
    e["timeline"] = json!(timeline);
    e
}

fn write_lines(path: &Path, events: &[Value]) {
    let text: String = events.iter().map(|e| format!("{e}\n")).collect();
    std::fs::write(path, text).unwrap();
}

/// The page loaded without a single console message: no script error, no Content-Security-Policy violation.
fn assert_quiet(what: &str, page: &Loaded) {
    assert!(page.console.is_empty(), "{what}: console messages:\n{}", page.console.join("\n"));
}

/// The DOM shows the hostile strings as text and holds no element they could have made.
fn assert_hostile_inert(dom: &str) {
    assert!(
        dom.contains(
            "hello &lt;script&gt;alert(1)&lt;/script&gt; and &lt;img src=x onerror=alert(1)&gt; &amp; friends"
        ),
        "{dom}"
    );
    assert!(dom.contains("Globex &lt;img src=x onerror=alert(1)&gt;"), "the entity, escaped");
    assert!(dom.contains("lost &lt;script&gt;alert(1)&lt;/script&gt;"), "the driver's phrase, escaped");
    assert!(dom.contains("volume rose &lt;script&gt;alert(1)&lt;/script&gt;"), "the reason, escaped");
    let lower = dom.to_ascii_lowercase();
    assert!(!lower.contains("<script"), "no script element");
    assert!(!lower.contains("<img"), "no img element");
    assert!(!lower.contains("onerror=\"") && !lower.contains("javascript:"), "no handler, no javascript: link");
    assert!(dom.contains("href=\"https://social.example/mallory/status/1?a=1&amp;b=2\""), "the https post is linked");
    assert!(dom.contains("href=\"https://social.example/big\""), "the amplifier is linked");
}

#[test]
fn report_writes_pages_that_a_browser_renders_with_the_chart_and_the_hostile_text_inert() {
    let dir = tempdir("pages-report");
    let sample: Vec<Value> = sample_events().iter().map(|l| serde_json::from_str(l).unwrap()).collect();
    assert!(sample.len() >= 3, "the sample stream gives one incident of several events");
    let id = sample[0]["incident_id"].as_str().unwrap().to_string();
    let mut events = sample.clone();
    events.push(hostile_event(&sample[0]));
    let input = dir.join("events.jsonl");
    write_lines(&input, &events);
    let out = dir.join("site");
    let r = flashpoint().args(["report", "--events"]).arg(&input).arg("--out").arg(&out).output().unwrap();
    let stderr = String::from_utf8_lossy(&r.stderr);
    assert!(r.status.success(), "{stderr}");
    assert!(stderr.contains("\"incidents\":2") && stderr.contains("\"bad_lines\":0"), "{stderr}");

    let index = load(&format!("file://{}", out.join("index.html").display()));
    assert_quiet("index", &index);
    assert!(index.dom.contains("<table class=\"incidents\">"), "{}", index.dom);
    assert!(index.dom.contains(&format!("href=\"{id}.html\"")) && index.dom.contains("Acme Air"));
    assert!(index.dom.contains(&format!("href=\"{HOSTILE_ID}.html\"")));
    assert!(!index.dom.to_ascii_lowercase().contains("<img"), "the hostile entity is text in the index too");

    let page = load(&format!("file://{}", out.join(format!("{id}.html")).display()));
    assert_quiet("the sample incident", &page);
    let dom = &page.dom;
    assert!(dom.contains("<svg class=\"chart\""), "{dom}");
    assert!(dom.contains("class=\"series volume\"") && dom.contains("class=\"series negative\""), "both series");
    let markers = dom.matches("<circle class=\"marker").count();
    assert_eq!(markers, 2 * sample.len(), "a marker per event in each panel");
    assert!(dom.contains("<h2>Event log</h2>"));
    let log = &dom[dom.find("<h2>Event log</h2>").unwrap()..];
    assert_eq!(log.matches("<tr><td>").count(), sample.len(), "one row per event");
    for k in ["opened", "updated", "resolved"] {
        assert!(log.contains(&format!("<tr><td>{k}</td>")), "{k} in the log");
    }
    assert!(dom.contains("badge crisis") && dom.contains("resolved (calm)"), "class and state shown");

    let hostile = load(&format!("file://{}", out.join(format!("{HOSTILE_ID}.html")).display()));
    assert_quiet("the hostile incident", &hostile);
    assert_hostile_inert(&hostile.dom);
    let h = &hostile.dom;
    assert!(h.contains("class=\"band\"") && h.contains("class=\"expected\""), "the baseline band from the timeline");
    assert_eq!(h.matches("<polyline class=\"series volume\"").count(), 2, "no line across the missing stretch");
    for table in ["drivers", "storylines", "amplifiers", "platforms"] {
        assert!(h.contains(&format!("<table class=\"{table}\">")), "{table} table");
    }

    // A line that is not an event is reported and counted; the pages are written all the same.
    std::fs::write(&input, format!("{}\nnot json\n", events[0])).unwrap();
    let r = flashpoint().args(["report", "-e"]).arg(&input).arg("-o").arg(dir.join("again")).output().unwrap();
    assert_eq!(r.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&r.stderr).contains("{\"error\":\"not a spike event"), "{r:?}");
    assert!(dir.join("again").join(format!("{id}.html")).is_file());
}

#[test]
fn pages_beyond_loopback_without_a_token_fail_at_start() {
    let dir = tempdir("pages-loopback");
    let rx = Receiver::start();
    let cfg = notify_config(&dir, &webhooks(&dir, "", &["hook"], ""));
    let r = flashpoint()
        .args(["run", "--role", "notify", "--metrics-listen", "0.0.0.0:0", "-c"])
        .arg(&cfg)
        .envs(webhook_env(&rx, &["hook"]))
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&r.stderr);
    assert_eq!(r.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("notify.pages.token: required"), "{stderr}");
}

#[test]
fn the_notify_stage_serves_the_pages_behind_the_token_and_alerts_link_to_them() {
    let dir = tempdir("pages-live");
    let t = Topics::new("pages-live");
    create_topic(&t.spikes, 1);
    let rx = Receiver::start();
    let token = "tok-3f9a+/=&x";
    std::fs::write(dir.join("token"), format!("{token}\n")).unwrap();
    std::fs::write(dir.join("k"), "k").unwrap();
    std::fs::write(dir.join("url"), rx.url("/hook")).unwrap();
    let notify = format!(
        "[notify]\npublic_url = \"https://flashpoint.example.com/\"\n[notify.pages]\nmax_incidents = 10\n\
         token = {{ file = \"{}\" }}\n[[notify.channels]]\nkind = \"webhook\"\nname = \"hook\"\n\
         url = {{ file = \"{}\" }}\nsigning_key = {{ file = \"{}\" }}\n[[notify.routes]]\nname = \"all\"\nchannels = [\"hook\"]\n",
        dir.join("token").display(),
        dir.join("url").display(),
        dir.join("k").display()
    );
    let cfg = write_config(&dir, &t, "", &notify);
    let sample: Vec<Value> = sample_events().iter().map(|l| serde_json::from_str(l).unwrap()).collect();
    let id = sample[0]["incident_id"].as_str().unwrap().to_string();
    let mut events: Vec<Vec<u8>> = sample.iter().map(|e| e.to_string().into_bytes()).collect();
    events.push(hostile_event(&sample[0]).to_string().into_bytes());
    produce(&t.spikes, &events);

    let addr = format!("127.0.0.1:{}", free_port());
    let w = Worker::start(&cfg, "notify", &addr, dir.join("worker.log"));
    wait_listening(addr.rsplit(':').next().unwrap().parse().unwrap(), Duration::from_secs(30), "worker", &w.log);
    let bearer = format!("Bearer {token}");
    let auth = [("Authorization", bearer.as_str())];
    // The pages fill as the stage reads the topic.
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let a = http_get_with(&addr, &format!("/incidents/{id}"), &auth);
        if a.status == 200
            && a.body.contains("<tr><td>resolved</td>")
            && http_get_with(&addr, &format!("/incidents/{HOSTILE_ID}"), &auth).status == 200
        {
            break;
        }
        assert!(Instant::now() < deadline, "the incidents never appeared ({}); log:\n{}", a.status, w.log_text());
        std::thread::sleep(Duration::from_millis(200));
    }

    // The token: none, a wrong one, then each accepted form.
    let none = http_get_with(&addr, "/incidents", &[]);
    assert_eq!(none.status, 401, "{none:?}");
    assert!(none.header("www-authenticate").is_some_and(|v| v.starts_with("Bearer")));
    assert!(!none.body.contains(&id), "nothing about the incidents without the token");
    assert_eq!(http_get_with(&addr, "/incidents", &[("Authorization", "Bearer tok-3f9a")]).status, 401);
    assert_eq!(http_get_with(&addr, &format!("/incidents/{id}?token=wrong"), &[]).status, 401);
    assert_eq!(http_get_with(&addr, "/incidents/inc-none", &[]).status, 401, "unknown ids say nothing either");
    let index = http_get_with(&addr, "/incidents", &auth);
    assert_eq!(index.status, 200);
    assert!(index.body.contains(&format!("href=\"/incidents/{id}\"")) && index.body.contains("Acme Air"));
    let q = flashpoint_notify::safe::url_component(token);
    let by_query = http_get_with(&addr, &format!("/incidents/{id}?token={q}"), &[]);
    assert_eq!(by_query.status, 200);
    let cookie = by_query.header("set-cookie").expect("a cookie for the links").to_string();
    assert!(cookie.contains("HttpOnly") && cookie.contains("SameSite=Strict") && cookie.contains("Path=/incidents"));
    let pair = cookie.split(';').next().unwrap();
    assert_eq!(http_get_with(&addr, "/incidents", &[("Cookie", pair)]).status, 200, "the cookie opens the index");

    // Headers: strict CSP (nothing loads, no script), nosniff, no referrer.
    for a in [&index, &by_query, &none] {
        let csp = a.header("content-security-policy").expect("CSP on every page answer");
        assert!(
            csp.starts_with("default-src 'none'") && !csp.contains("script-src") && !csp.contains("unsafe"),
            "{csp}"
        );
        assert!(csp.contains("frame-ancestors 'none'"), "{csp}");
        assert_eq!(a.header("x-content-type-options"), Some("nosniff"));
        assert_eq!(a.header("referrer-policy"), Some("no-referrer"));
    }
    assert_eq!(index.header("content-type"), Some("text/html; charset=utf-8"));

    // Unknown ids and paths.
    let unknown = http_get_with(&addr, "/incidents/inc-0000000000000000", &auth);
    assert_eq!(unknown.status, 404);
    assert!(unknown.body.contains("No such incident") && unknown.header("content-security-policy").is_some());
    assert_eq!(http_get_with(&addr, "/incidents/..%2Fetc", &auth).status, 404);
    assert_eq!(http_get(&addr, "/healthz").0, 200, "the other endpoints need no token");

    // In the browser, under the header's policy: the chart, the log, the hostile text inert, no console message.
    let page = load(&format!("http://{addr}/incidents/{id}?token={q}"));
    assert_quiet("the live page", &page);
    assert!(page.dom.contains("<svg class=\"chart\"") && page.dom.contains("class=\"series negative\""));
    let hostile = load(&format!("http://{addr}/incidents/{HOSTILE_ID}?token={q}"));
    assert_quiet("the live hostile page", &hostile);
    assert_hostile_inert(&hostile.dom);

    // Every alert links to its page.
    let deadline = Instant::now() + Duration::from_secs(60);
    while !rx.requests("/hook").iter().any(|r| r.ok() && r.json()["kind"] == "resolved") {
        assert!(Instant::now() < deadline, "the resolution was never delivered; log:\n{}", w.log_text());
        std::thread::sleep(Duration::from_millis(200));
    }
    for r in rx.requests("/hook") {
        let inc = r.json()["incident_id"].as_str().unwrap().to_string();
        assert_eq!(
            r.header(webhook::PAGE_HEADER),
            Some(format!("https://flashpoint.example.com/incidents/{inc}").as_str()),
            "the page link"
        );
    }
    let log = w.log_text();
    assert!(!log.contains(token) && !log.contains("tok-3f9a"), "the token is never logged:\n{log}");
    assert_eq!(w.stop(), 0, "clean exit; log:\n{log}");
}
