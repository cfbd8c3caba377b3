//! `flashpoint notify` end to end against real receivers on 127.0.0.1: an HTTP server standing in for Slack,
//! Teams, PagerDuty and a webhook endpoint (checking each payload against its format's documented fields and
//! limits), and a real SMTP server (aiosmtpd) for email.

use flashpoint_notify::channel::{pagerduty, slack, teams, webhook};
use flashpoint_testkit::*;
use std::collections::BTreeMap;
use std::process::Stdio;
use std::time::{Duration, Instant};

const HOSTILE: &str = "<!channel> <!here> *Severity:* low\n[your dashboard](https://evil.example/a) \
                       <https://evil.example/b|Grafana> <@U024BE7LH> @everyone \u{202e}txet\u{2066} <script>alert(1)</script>";

/// The sample incident with a hostile post as its most negative evidence, as JSON lines.
fn hostile_events() -> Vec<String> {
    sample_events()
        .into_iter()
        .map(|l| {
            let mut v: serde_json::Value = serde_json::from_str(&l).unwrap();
            if let Some(p) = v["evidence"]["most_negative"].get_mut(0) {
                p["text"] = serde_json::json!(HOSTILE);
                p["author"] = serde_json::json!("<!channel>");
            }
            // A field this notifier does not know (a newer producer): kept, forwarded, not refused.
            v["peak_so_far"] = serde_json::json!(123);
            serde_json::to_string(&v).unwrap()
        })
        .collect()
}

fn seqs(events: &[String]) -> Vec<(u64, String)> {
    events
        .iter()
        .map(|l| {
            let v: serde_json::Value = serde_json::from_str(l).unwrap();
            (v["seq"].as_u64().unwrap(), v["kind"].as_str().unwrap().to_string())
        })
        .collect()
}

/// Every text a person could read in a chat payload.
fn texts(v: &serde_json::Value, out: &mut Vec<String>) {
    match v {
        serde_json::Value::String(s) => out.push(s.clone()),
        serde_json::Value::Array(a) => a.iter().for_each(|x| texts(x, out)),
        serde_json::Value::Object(m) => m.values().for_each(|x| texts(x, out)),
        _ => {}
    }
}

fn assert_inert(v: &serde_json::Value) {
    let mut all = Vec::new();
    texts(v, &mut all);
    assert!(all.iter().any(|t| t.contains("evil.example")), "the hostile post is quoted, visibly");
    assert_no_markup(v);
}

/// No control sequence, link syntax or forged field in any text of `v`.
fn assert_no_markup(v: &serde_json::Value) {
    let mut all = Vec::new();
    texts(v, &mut all);
    for t in &all {
        for bad in [
            "<!",
            "<@",
            "<http",
            "|Grafana",
            "](",
            "*Severity:*",
            "@everyone",
            "\u{202e}",
            "\u{2066}",
            "<script",
            "\n*",
        ] {
            assert!(!t.contains(bad), "{bad:?} reached a receiver in {t:?}");
        }
    }
}

#[test]
fn every_http_channel_gets_valid_safe_payloads_in_order() {
    let dir = tempdir("http");
    let rx = Receiver::start();
    std::fs::write(dir.join("hook.key"), "whsec_test_key\n").unwrap();
    let cfg = notify_config(
        &dir,
        &format!(
            r#"
[notify]
grafana_url = "http://127.0.0.1:3000"
[[notify.channels]]
kind = "slack"
name = "slack"
url = {{ env = "FP_SLACK_URL" }}
[[notify.channels]]
kind = "teams"
name = "teams"
url = {{ env = "FP_TEAMS_URL" }}
[[notify.channels]]
kind = "pagerduty"
name = "pager"
routing_key = {{ env = "FP_PD_KEY" }}
url = "{}"
[[notify.channels]]
kind = "webhook"
name = "hook"
url = {{ env = "FP_HOOK_URL" }}
signing_key = {{ file = "{}" }}
[[notify.routes]]
name = "everything"
channels = ["slack", "teams", "pager", "hook"]
"#,
            rx.url("/pd"),
            dir.join("hook.key").display()
        ),
    );
    let events = hostile_events();
    let input = events.join("\n") + "\n";
    let env = [
        ("FP_SLACK_URL", rx.url("/slack/T000/B000/S3CRETslack")),
        ("FP_TEAMS_URL", rx.url("/teams/workflows/S3CRETteams")),
        ("FP_PD_KEY", "R0UTINGKEYS3CRET".to_string()),
        ("FP_HOOK_URL", rx.url("/hook")),
    ];
    let run = run_notify(&cfg, &dir, &input, &env);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert_eq!(run.summary["events"], events.len() as u64);
    assert_eq!(run.summary["low_water"], events.len() as u64, "every line done");

    // The sample incident: opened (watch) at 14:09, escalated to warning 14:11, updated 14:27, escalated to
    // critical 14:30, @AcmeAir replies 14:35, updated 14:49, replies 15:21, its update overdue 16:20, replies
    // 17:01, resolved 17:57. With the default 15-minute update interval in event time: the opening, the
    // escalation (at once), the first update 16 minutes later, the next escalation; the 14:35 reply held and
    // superseded by the 14:49 update (19 minutes after the escalation); 15:21; the reminder (at once); 17:01;
    // the resolution.
    let by_seq: BTreeMap<u64, String> = seqs(&events).into_iter().collect();
    assert_eq!(by_seq.values().next().map(String::as_str), Some("opened"));
    let hook = rx.requests("/hook");
    let sent: Vec<(u64, String)> = hook
        .iter()
        .map(|r| (r.json()["seq"].as_u64().unwrap(), r.header(webhook::NOTICE_HEADER).unwrap().to_string()))
        .collect();
    assert_eq!(
        sent,
        vec![
            (0, "opened".into()),
            (1, "escalated".into()),
            (2, "update".into()),
            (3, "escalated".into()),
            (5, "update".into()),
            (6, "update".into()),
            (7, "reminder".into()),
            (8, "update".into()),
            (9, "resolved".into())
        ]
    );

    // Generic webhook: the event exactly as received, signed, with the idempotency key.
    for r in &hook {
        let seq = r.json()["seq"].as_u64().unwrap();
        let original =
            events.iter().find(|l| serde_json::from_str::<serde_json::Value>(l).unwrap()["seq"] == seq).unwrap();
        assert_eq!(std::str::from_utf8(&r.body).unwrap(), original, "body is the event as received");
        let id = r.json()["incident_id"].as_str().unwrap().to_string();
        assert_eq!(r.header("idempotency-key"), Some(format!("{id}:{seq}").as_str()));
        let sig = r.header("flashpoint-signature").expect("signed");
        let t: i64 = sig.split(',').next().unwrap().trim_start_matches("t=").parse().unwrap();
        webhook::verify(b"whsec_test_key", sig, &r.body, t).expect("signature verifies");
        assert!(webhook::verify(b"wrong", sig, &r.body, t).is_err());
        assert_eq!(r.header("content-type"), Some("application/json"));
    }

    // Slack: Block Kit within limits, safe, same order.
    let sl = rx.requests("/slack/T000/B000/S3CRETslack");
    assert_eq!(sl.len(), 9);
    for r in &sl {
        slack::check_limits(&r.json()).unwrap_or_else(|e| panic!("{e}: {}", r.json()));
        assert_inert(&r.json());
    }
    assert!(sl[0].json().to_string().contains("var-entity=Acme%20Air"), "Grafana link with the entity");
    assert!(sl[8].json().to_string().contains("Resolved: open for"), "closing message");
    assert!(sl[8].json().to_string().contains("first response after 25m"), "with the post-mortem");

    // Teams: an Adaptive Card within limits, safe.
    let tm = rx.requests("/teams/");
    assert_eq!(tm.len(), 9);
    for r in &tm {
        teams::check_limits(&r.json()).unwrap_or_else(|e| panic!("{e}: {}", r.json()));
        assert_inert(&r.json());
    }

    // PagerDuty: trigger on the opening and escalations, resolve at the end, one dedup key; updates page nobody.
    let pd: Vec<serde_json::Value> = rx.requests("/pd").iter().map(|r| r.json()).collect();
    for v in &pd {
        pagerduty::check(v).unwrap_or_else(|e| panic!("{e}: {v}"));
        assert_eq!(v["routing_key"], "R0UTINGKEYS3CRET");
    }
    let actions: Vec<(&str, &str)> = pd
        .iter()
        .map(|v| (v["event_action"].as_str().unwrap(), v["payload"]["severity"].as_str().unwrap_or("-")))
        .collect();
    assert_eq!(actions, vec![("trigger", "info"), ("trigger", "warning"), ("trigger", "critical"), ("resolve", "-")]);
    let id = hook[0].json()["incident_id"].as_str().unwrap().to_string();
    assert!(pd.iter().all(|v| v["dedup_key"] == id.as_str()));

    // Secrets never reach stderr.
    for s in ["S3CRETslack", "S3CRETteams", "R0UTINGKEYS3CRET", "whsec_test_key"] {
        assert!(!run.stderr.contains(s), "{s} leaked: {}", run.stderr);
    }
}

/// The sample incident's overdue update becomes a reminder on the route's Slack channel (a real local HTTP
/// receiver standing in for Slack's incoming webhook), sent at once although the route holds plain updates for an
/// hour; the replies are news and the closing message carries the post-mortem.
#[test]
fn an_overdue_response_reaches_the_incident_route_as_a_reminder() {
    let dir = tempdir("reminder");
    let cfg = notify_config(
        &dir,
        r#"
[notify]
[[notify.channels]]
kind = "slack"
name = "ops"
url = { env = "FP_SLACK_URL" }
[[notify.routes]]
name = "acme"
entities = ["Acme*"]
channels = ["ops"]
update_interval_secs = 3600
"#,
    );
    let events = sample_events();
    let overdue: Vec<u64> = events
        .iter()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap())
        .filter(|e| e["reasons"].as_array().is_some_and(|r| r.iter().any(|x| x == "response_overdue")))
        .map(|e| e["seq"].as_u64().unwrap())
        .collect();
    assert_eq!(overdue.len(), 1, "the sample's one reminder");
    let rx = Receiver::start();
    let input = events.join("\n") + "\n";
    let run = run_notify(&cfg, &dir, &input, &[("FP_SLACK_URL", rx.url("/slack"))]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    let messages: Vec<Vec<String>> = rx
        .requests("/slack")
        .iter()
        .map(|r| {
            let mut all = Vec::new();
            texts(&r.json(), &mut all);
            all
        })
        .collect();
    let has = |m: &[String], s: &str| m.iter().any(|t| t.contains(s));
    let reminders: Vec<&Vec<String>> = messages.iter().filter(|m| has(m, "response overdue")).collect();
    assert_eq!(reminders.len(), 1, "{messages:#?}");
    assert!(
        has(reminders[0], "no public update from @AcmeAir for 60 minutes; the plan says every 60"),
        "{reminders:#?}"
    );
    // Plain updates wait for the hour, the reminder did not: the replies' updates (14:35, 15:21) were still held
    // when it came at 16:20, so it supersedes them and says what the readers had not heard.
    let at = |s: &str| messages.iter().position(|m| has(m, s));
    let (reminder, resolved) = (at("response overdue").unwrap(), at("RESOLVED").unwrap());
    assert_eq!((reminder, resolved), (messages.len() - 2, messages.len() - 1), "{messages:#?}");
    assert!(!messages[..reminder].iter().any(|m| has(m, "responded")), "{messages:#?}");
    assert!(has(reminders[0], "@AcmeAir responded (2 posts; first response 25 minutes after the opening)"));
    assert!(has(&messages[resolved], "@AcmeAir posted an update (1 post; 3 in all)"), "{:#?}", messages[resolved]);
    assert!(has(&messages[resolved], "first response after 25m"), "{:#?}", messages[resolved]);
}

#[test]
fn receiver_down_then_back_loses_nothing_and_duplicates_share_the_key() {
    let dir = tempdir("down");
    let port = free_port();
    std::fs::write(dir.join("k"), "k").unwrap();
    let cfg = notify_config(
        &dir,
        &format!(
            r#"
[notify]
[notify.delivery]
initial_backoff_ms = 100
max_backoff_ms = 1000
timeout_secs = 1
max_attempts = 1000
# An outage shorter than the deadline is ridden out (FLASHPOINT_NOTIFY_DOWN_SECS up to 100); a longer one is
# dead-lettered, as the dead-destination test shows.
message_deadline_secs = 120
[[notify.channels]]
kind = "webhook"
name = "hook"
url = {{ env = "FP_HOOK_URL" }}
signing_key = {{ file = "{}" }}
[[notify.routes]]
name = "all"
channels = ["hook"]
update_interval_secs = 1
"#,
            dir.join("k").display()
        ),
    );
    let events = sample_events();
    let input = events.join("\n") + "\n";
    let url = format!("http://127.0.0.1:{port}/hook");
    let cfg2 = cfg.clone();
    let dir2 = dir.clone();
    let runner = std::thread::spawn(move || run_notify(&cfg2, &dir2, &input, &[("FP_HOOK_URL", url)]));
    // Nothing listens for a while (4 s; FLASHPOINT_NOTIFY_DOWN_SECS=30 for the issue's full outage): connections
    // are refused and retried.
    let down: u64 = std::env::var("FLASHPOINT_NOTIFY_DOWN_SECS").ok().and_then(|s| s.parse().ok()).unwrap_or(4);
    std::thread::sleep(Duration::from_secs(down));
    // Back, but unwell at first: no answer, a 500, a 429 asking for a second, a 503; then fine.
    let rx = Receiver::start_scripted(
        port,
        &[("/hook", &[Reply::Hang, Reply::Status(500), Reply::RetryAfter(1), Reply::Status(503)])],
    );
    let run = runner.join().unwrap();
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert_eq!(run.summary["dead_lettered"], 0);
    assert!(run.summary["retried"].as_u64().unwrap() >= 4, "{}", run.summary);
    let reqs = rx.requests("/hook");
    // Every event delivered (update_interval 1 s: all nine events are messages), at least once.
    let mut delivered: Vec<u64> = Vec::new();
    let mut bodies: BTreeMap<String, Vec<u8>> = BTreeMap::new();
    for r in &reqs {
        let key = r.header("idempotency-key").unwrap().to_string();
        // A duplicate is the same message: same key, same body.
        if let Some(b) = bodies.get(&key) {
            assert_eq!(b, &r.body, "duplicate with another body under {key}");
        }
        bodies.insert(key, r.body.clone());
        if r.ok() {
            delivered.push(r.json()["seq"].as_u64().unwrap());
        }
    }
    let want: Vec<u64> = seqs(&events).iter().map(|(s, _)| *s).collect();
    delivered.dedup();
    assert_eq!(delivered, want, "each event delivered, in order opened → updated → resolved");
    // Retry-After honoured: the request after the 429 came at least a second later.
    let i = reqs.iter().position(|r| matches!(r.reply, Reply::RetryAfter(_))).unwrap();
    assert!(reqs[i + 1].at.duration_since(reqs[i].at) >= Duration::from_secs(1));
}

#[test]
fn a_failing_channel_dead_letters_without_holding_up_the_others() {
    let dir = tempdir("isolate");
    let rx = Receiver::start();
    rx.default_reply("/slack", Reply::Status(400));
    rx.default_reply("/hang", Reply::Hang);
    std::fs::write(dir.join("k"), "k").unwrap();
    let cfg = notify_config(
        &dir,
        &format!(
            r#"
[notify]
[notify.delivery]
timeout_secs = 1
max_attempts = 1
[[notify.channels]]
kind = "slack"
name = "broken"
url = {{ env = "FP_SLACK_URL" }}
[[notify.channels]]
kind = "webhook"
name = "hanging"
url = {{ env = "FP_HANG_URL" }}
signing_key = {{ file = "{k}" }}
[[notify.channels]]
kind = "webhook"
name = "good"
url = {{ env = "FP_GOOD_URL" }}
signing_key = {{ file = "{k}" }}
[[notify.routes]]
name = "all"
channels = ["broken", "hanging", "good"]
"#,
            k = dir.join("k").display()
        ),
    );
    let mut lines = sample_events();
    lines.insert(1, "not json at all".into());
    lines.insert(3, r#"{"schema":"something.else","x":1}"#.into());
    let input = lines.join("\n") + "\n";
    let env = [
        ("FP_SLACK_URL", rx.url("/slack/T000/B000/S3CRETslack")),
        ("FP_HANG_URL", rx.url("/hang/S3CREThang")),
        ("FP_GOOD_URL", rx.url("/good")),
    ];
    let run = run_notify(&cfg, &dir, &input, &env);
    assert_eq!(run.code, 1, "dead letters make the exit status 1: {}", run.stderr);
    assert_eq!(run.summary["bad_lines"], 2);
    assert_eq!(run.summary["low_water"], lines.len() as u64);
    let good = rx.requests("/good");
    assert_eq!(good.len(), 9);
    // The hanging destination: three messages given up (one timeout each), then its circuit opens and the rest
    // are dead-lettered at once, without waiting on it again.
    let hang = rx.requests("/hang");
    assert_eq!(hang.len(), 3, "breaker_failures = 3");
    assert!(
        good.last().unwrap().at < hang.last().unwrap().at,
        "the good channel finished while the hanging one was still timing out"
    );
    let by = |src: &str, ch: &str| {
        run.dead
            .iter()
            .filter(|d| d["source"] == src && (ch.is_empty() || d["channel"] == ch))
            .cloned()
            .collect::<Vec<_>>()
    };
    // Input dead letters are the one file record of every input (reason, error, line, record), with no `source`.
    let input_dead: Vec<_> = run.dead.iter().filter(|d| d["source"].is_null()).collect();
    assert_eq!(input_dead.iter().map(|d| d["line"].as_u64().unwrap()).collect::<Vec<_>>(), vec![2, 4]);
    let broken = by("delivery", "broken");
    assert_eq!(broken.len(), 9);
    assert!(broken.iter().all(|d| d["reason"].as_str().unwrap().starts_with("HTTP 400") && d["attempts"] == 1));
    assert_eq!(rx.requests("/slack").len(), 9, "a 400 is permanent: no retry");
    assert!(broken[0]["events"][0]["incident_id"].is_string(), "the event travels with the dead letter");
    let hanging = by("delivery", "hanging");
    assert_eq!(hanging.len(), 9);
    let reasons: Vec<&str> = hanging.iter().map(|d| d["reason"].as_str().unwrap()).collect();
    assert!(
        reasons[..3].iter().all(|r| r.contains("gave up after 1 attempts") && r.contains("timed out")),
        "{reasons:?}"
    );
    assert!(reasons[3..].iter().all(|r| r.starts_with("circuit_open:") && r.contains("timed out")), "{reasons:?}");
    let dead_text = serde_json::to_string(&run.dead).unwrap();
    for s in ["S3CRETslack", "S3CREThang"] {
        assert!(!dead_text.contains(s) && !run.stderr.contains(s), "{s} leaked");
    }
}

#[test]
fn replay_piped_to_notify_threads_emails_with_an_inline_chart() {
    let dir = tempdir("email");
    let smtp = Smtp::start(&dir);
    let cfg = notify_config(
        &dir,
        &format!(
            r#"
[notify]
grafana_url = "http://127.0.0.1:3000"
[[notify.channels]]
kind = "email"
name = "mail"
smtp_host = "127.0.0.1"
smtp_port = {}
tls = "none"
from = "Flashpoint <alerts@flashpoint.example>"
to = ["oncall@example.com"]
[[notify.routes]]
name = "mail"
channels = ["mail"]
"#,
            smtp.port
        ),
    );
    // The real pipe: replay | notify.
    let mut replay = flashpoint()
        .args(["replay", "--config"])
        .arg(&cfg)
        .arg("--input")
        .arg(repo("data/sample/stream.jsonl"))
        .arg("--flush")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let out = flashpoint()
        .args(["notify", "--config"])
        .arg(&cfg)
        .args(["--input", "-"])
        .stdin(replay.stdout.take().unwrap())
        .output()
        .unwrap();
    assert!(replay.wait().unwrap().success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    let deadline = Instant::now() + Duration::from_secs(10);
    let mails = loop {
        let m = smtp.mails();
        if m.len() >= 6 || Instant::now() > deadline {
            break m;
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    assert_eq!(mails.len(), 9, "{stderr}");
    let header = |m: &str, h: &str| -> Option<String> {
        m.lines()
            .find(|l| l.to_ascii_lowercase().starts_with(&format!("{}:", h.to_ascii_lowercase())))
            .map(|l| l[h.len() + 1..].trim().to_string())
    };
    let root = header(&mails[0], "Message-ID").unwrap();
    assert!(root.starts_with("<inc-") && root.ends_with(".mail@flashpoint.example>"), "{root}");
    assert!(header(&mails[0], "In-Reply-To").is_none());
    let mut ids = vec![root.clone()];
    for m in &mails[1..] {
        assert_eq!(header(m, "In-Reply-To").as_deref(), Some(root.as_str()));
        assert_eq!(header(m, "References").as_deref(), Some(root.as_str()));
        let subject = header(m, "Subject").unwrap();
        assert!(subject.starts_with("Re: [Flashpoint] ") && subject.contains("Acme Air"), "{subject}");
        assert_eq!(header(m, "Auto-Submitted").as_deref(), Some("auto-generated"));
        ids.push(header(m, "Message-ID").unwrap());
    }
    ids.sort();
    ids.dedup();
    assert_eq!(ids.len(), 9, "a distinct Message-ID per message");
    for m in &mails {
        assert!(m.contains("multipart/alternative") && m.contains("text/plain") && m.contains("text/html"));
        let html = &m[m.find("Content-Type: text/html").expect("an HTML part")..];
        let html = qp_decode(&html[..html.find("\n--").unwrap()]);
        assert!(html.contains("<img src=\"cid:chart\""), "the HTML shows the chart: {html}");
        assert!(html.contains("<blockquote>") && html.contains("Acme Air"), "{html}");
        assert!(m.contains("Content-ID: <chart>"));
        // The PNG part: base64 after its headers, up to the next boundary.
        let start = m.find("Content-Type: image/png").expect("a PNG part");
        let part = &m[start..];
        let body_start = part.find("\n\n").or_else(|| part.find("\r\n\r\n")).unwrap();
        let b64: String = part[body_start..]
            .lines()
            .skip_while(|l| l.trim().is_empty())
            .take_while(|l| !l.starts_with("--") && !l.trim().is_empty())
            .collect();
        use base64::Engine as _;
        let png = base64::engine::general_purpose::STANDARD.decode(b64.trim()).expect("base64 PNG");
        let dec = png::Decoder::new(std::io::Cursor::new(&png));
        let mut reader = dec.read_info().expect("a valid PNG");
        let mut img = vec![0; reader.output_buffer_size()];
        let info = reader.next_frame(&mut img).expect("decodes");
        assert_eq!((info.width, info.height), (640, 260));
    }
}

#[test]
fn killed_mid_stream_and_restarted_from_the_checkpoint_loses_nothing() {
    let dir = tempdir("kill");
    let rx = Receiver::start();
    // Three deliveries, then the receiver stops answering: the notifier is stuck on the fourth when killed.
    rx.script("/hook", &[Reply::Status(200), Reply::Status(200), Reply::Status(200)]);
    rx.default_reply("/hook", Reply::Hang);
    std::fs::write(dir.join("k"), "k").unwrap();
    let cfg = notify_config(
        &dir,
        &format!(
            r#"
[notify]
[notify.delivery]
timeout_secs = 60
initial_backoff_ms = 100
max_backoff_ms = 500
[[notify.channels]]
kind = "webhook"
name = "hook"
url = {{ env = "FP_HOOK_URL" }}
signing_key = {{ file = "{}" }}
[[notify.routes]]
name = "all"
channels = ["hook"]
update_interval_secs = 1
"#,
            dir.join("k").display()
        ),
    );
    let events = sample_events();
    let input = dir.join("events.jsonl");
    std::fs::write(&input, events.join("\n") + "\n").unwrap();
    let ckpt = dir.join("notify.checkpoint");
    let start = || {
        flashpoint()
            .args(["notify", "--config"])
            .arg(&cfg)
            .arg("--input")
            .arg(&input)
            .arg("--checkpoint")
            .arg(&ckpt)
            .arg("--dead-letter")
            .arg(dir.join("dead.jsonl"))
            .env("FP_HOOK_URL", rx.url("/hook"))
            .stderr(Stdio::piped())
            .spawn()
            .unwrap()
    };
    let mut first = start();
    let deadline = Instant::now() + Duration::from_secs(30);
    let mark = || checkpoint_mark(&ckpt, "hook");
    while rx.requests("/hook").len() < 4 || mark() != Some(3) {
        assert!(Instant::now() < deadline, "stuck: {} requests, checkpoint {:?}", rx.requests("/hook").len(), mark());
        std::thread::sleep(Duration::from_millis(50));
    }
    first.kill().unwrap(); // SIGKILL
    first.wait().unwrap();
    rx.default_reply("/hook", Reply::Status(200));
    let second = start().wait_with_output().unwrap();
    assert!(second.status.success(), "{}", String::from_utf8_lossy(&second.stderr));
    assert_eq!(mark(), Some(events.len() as u64));

    let reqs = rx.requests("/hook");
    let mut bodies: BTreeMap<String, Vec<u8>> = BTreeMap::new();
    let mut delivered = Vec::new();
    for r in &reqs {
        let key = r.header("idempotency-key").unwrap().to_string();
        if let Some(b) = bodies.get(&key) {
            assert_eq!(b, &r.body, "a duplicate is the same message under the same key");
        }
        bodies.insert(key, r.body.clone());
        if r.ok() {
            delivered.push(r.json()["seq"].as_u64().unwrap());
        }
    }
    let want: Vec<u64> = seqs(&events).iter().map(|(s, _)| *s).collect();
    assert_eq!(
        delivered, want,
        "each event delivered exactly once to a 200, in order; the lines before the checkpoint not again"
    );
    assert_eq!(reqs.len(), want.len() + 1, "the one duplicate is the message in flight at the kill");
}

#[test]
fn email_over_starttls_with_auth_and_a_refused_mailbox_dead_letters() {
    let dir = tempdir("starttls");
    let (ca, cert, key) = test_certificates(&dir);
    let smtp = Smtp::start_tls(&dir, &cert, &key, "alerts", "pa55word");
    let mail = |name: &str, to: &str| {
        format!(
            r#"
[[notify.channels]]
kind = "email"
name = "{name}"
smtp_host = "127.0.0.1"
smtp_port = {}
tls = "starttls"
ca_file = "{}"
username = {{ env = "FP_SMTP_USER" }}
password = {{ file = "{}" }}
from = "Flashpoint <alerts@flashpoint.example>"
to = ["{to}"]
"#,
            smtp.port,
            ca.display(),
            dir.join("pw").display()
        )
    };
    std::fs::write(dir.join("pw"), "pa55word\n").unwrap();
    let cfg = notify_config(
        &dir,
        &format!(
            "[notify]\n[notify.delivery]\nmax_attempts = 2\ninitial_backoff_ms = 50\n{}{}[[notify.routes]]\nname = \"mail\"\nchannels = [\"good\", \"bad\"]\n",
            mail("good", "oncall@example.com"),
            mail("bad", "nobody@example.com")
        ),
    );
    let events = sample_events();
    let run = run_notify(&cfg, &dir, &(events.join("\n") + "\n"), &[("FP_SMTP_USER", "alerts".into())]);
    assert_eq!(run.code, 1, "the refused mailbox is a dead letter: {}", run.stderr);
    assert_eq!(smtp.mails().len(), 9, "the good mailbox got every message over STARTTLS with AUTH: {}", run.stderr);
    let bad: Vec<&serde_json::Value> = run.dead.iter().filter(|d| d["channel"] == "bad").collect();
    assert_eq!(bad.len(), 9);
    assert!(bad.iter().all(|d| d["reason"].as_str().unwrap().contains("550") && d["attempts"] == 1), "{bad:?}");
    assert!(!run.stderr.contains("pa55word") && !serde_json::to_string(&run.dead).unwrap().contains("pa55word"));

    // A wrong password: the server refuses it (535) or, as aiosmtpd 1.4 does, never answers; either way the
    // message is dead-lettered within the request timeout and retries, nothing is delivered, nothing leaks.
    let dir2 = tempdir("starttls-badpw");
    std::fs::write(dir.join("pw"), "wrong\n").unwrap();
    let cfg2 = std::fs::read_to_string(&cfg).unwrap().replace("max_attempts = 2", "max_attempts = 2\ntimeout_secs = 1");
    let cfg2_path = dir2.join("flashpoint.toml");
    std::fs::write(&cfg2_path, cfg2).unwrap();
    let run = run_notify(&cfg2_path, &dir2, &(events[..1].join("\n") + "\n"), &[("FP_SMTP_USER", "alerts".into())]);
    assert_eq!(run.code, 1);
    assert_eq!(smtp.mails().len(), 9);
    assert_eq!(run.dead.iter().filter(|d| d["channel"] == "good").count(), 1, "{:?}", run.dead);
    assert!(!run.stderr.contains("pa55word") && !run.stderr.contains("wrong\n"));
}

#[test]
fn digests_and_rate_limits_through_the_command() {
    let dir = tempdir("digest");
    let rx = Receiver::start();
    std::fs::write(dir.join("k"), "k").unwrap();
    let cfg = notify_config(
        &dir,
        &format!(
            r#"
[notify]
grafana_url = "http://127.0.0.1:3000"
[[notify.channels]]
kind = "slack"
name = "slack"
url = {{ env = "FP_SLACK_URL" }}
[[notify.channels]]
kind = "teams"
name = "teams"
url = {{ env = "FP_TEAMS_URL" }}
[[notify.channels]]
kind = "webhook"
name = "limited"
url = {{ env = "FP_LIMITED_URL" }}
signing_key = {{ file = "{k}" }}
[[notify.routes]]
name = "digest"
channels = ["slack", "teams"]
digest = {{ every_secs = 3600, up_to = "critical" }}
[[notify.routes]]
name = "limited"
channels = ["limited"]
rate_limit = {{ max = 1, per_secs = 86400 }}
"#,
            k = dir.join("k").display()
        ),
    );
    let events = hostile_events();
    let env = [
        ("FP_SLACK_URL", rx.url("/slack")),
        ("FP_TEAMS_URL", rx.url("/teams")),
        ("FP_LIMITED_URL", rx.url("/limited")),
    ];
    let run = run_notify(&cfg, &dir, &(events.join("\n") + "\n"), &env);
    assert_eq!(run.code, 0, "{}", run.stderr);
    // Event time: the digest started at the opening (14:09) is due at 15:09 and goes out at the next event (the
    // 15:21 reply) with the incident's newest state; the next one, started at the 16:20 reminder, goes out with
    // the resolution at 17:57.
    let sl = rx.requests("/slack");
    assert_eq!(sl.len(), 2);
    for r in &sl {
        slack::check_limits(&r.json()).unwrap();
        assert_no_markup(&r.json());
        assert!(r.json()["text"].as_str().unwrap().starts_with("Flashpoint digest: 1 incident(s)"));
    }
    assert!(sl[1].json().to_string().contains("resolved"));
    let tm = rx.requests("/teams");
    assert_eq!(tm.len(), 2);
    tm.iter().for_each(|r| teams::check_limits(&r.json()).unwrap());
    // Rate limit of one message a day per entity: the opening, then only the newest state, sent at the end.
    let lim: Vec<u64> = rx.requests("/limited").iter().map(|r| r.json()["seq"].as_u64().unwrap()).collect();
    assert_eq!(lim, vec![0, 9]);
    assert!(run.summary["rate_limited"].as_u64().unwrap() >= 1, "{}", run.summary);
    assert_eq!(run.summary["low_water"], events.len() as u64);
}

/// Quoted-printable (RFC 2045) to text: soft line breaks joined, `=XX` decoded.
fn qp_decode(s: &str) -> String {
    let s = s.replace("=\r\n", "").replace("=\n", "");
    let b = s.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'=' && i + 2 < b.len() {
            if let Ok(v) = u8::from_str_radix(&s[i + 1..i + 3], 16) {
                out.push(v);
                i += 3;
                continue;
            }
        }
        out.push(b[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).to_string()
}

#[test]
fn check_config_names_secrets_without_showing_them_and_missing_ones_fail_at_start() {
    let dir = tempdir("cfg");
    let cfg = notify_config(
        &dir,
        r#"
[notify]
[[notify.channels]]
kind = "slack"
name = "ops"
url = { env = "FP_CFG_SLACK" }
[[notify.channels]]
kind = "pagerduty"
name = "pager"
routing_key = { env = "FP_CFG_PD_MISSING" }
[[notify.routes]]
name = "all"
channels = ["ops", "pager"]
"#,
    );
    let out = flashpoint()
        .args(["check-config", "--config"])
        .arg(&cfg)
        .env("FP_CFG_SLACK", "https://hooks.slack.com/services/T1/B1/VERYSECRET")
        .env_remove("FP_CFG_PD_MISSING")
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout).to_string() + &String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{text}");
    assert!(text.contains("notify channel ops (slack): url = env:FP_CFG_SLACK (readable)"), "{text}");
    assert!(text.contains("routing_key = env:FP_CFG_PD_MISSING (not readable here)"), "{text}");
    assert!(!text.contains("VERYSECRET"), "{text}");

    let dir2 = tempdir("cfg2");
    let run =
        run_notify(&cfg, &dir2, "", &[("FP_CFG_SLACK", "https://hooks.slack.com/services/T1/B1/VERYSECRET".into())]);
    assert_eq!(run.code, 2);
    assert!(
        run.stderr.contains("pager") && run.stderr.contains("routing_key") && run.stderr.contains("FP_CFG_PD_MISSING"),
        "{}",
        run.stderr
    );
    assert!(!run.stderr.contains("VERYSECRET"));

    // The missing secret's reason, once.
    assert_eq!(run.stderr.matches("is not set").count(), 1, "{}", run.stderr);

    // An inline secret is refused, naming the key and where secrets come from, never echoing the value; and
    // the error is one readable line (no literal `\n`).
    let bad = notify_config(&dir2, "[notify]\n[[notify.channels]]\nkind = \"slack\"\nname = \"ops\"\nurl = \"http://127.0.0.1:18080/slack/INLINESECRET\"\n");
    for cmd in ["check-config", "notify"] {
        let out = flashpoint().args([cmd, "--config"]).arg(&bad).stdin(Stdio::null()).output().unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{err}");
        assert!(err.contains("notify.channels[0]: url:") && err.contains("{ env = "), "{err}");
        assert!(!err.contains("INLINESECRET") && !err.contains("\\n"), "{err}");
    }

    // A missing secret file is named and said to be missing (not "entity not found").
    let nofile = notify_config(&dir2, "[notify]\n[[notify.channels]]\nkind = \"slack\"\nname = \"ops\"\nurl = { file = \"/nonexistent/slack_url\" }\n[[notify.routes]]\nname = \"r\"\nchannels = [\"ops\"]\n");
    let run = run_notify(&nofile, &dir2, "", &[]);
    assert_eq!(run.code, 2);
    assert!(run.stderr.contains("secret file /nonexistent/slack_url does not exist"), "{}", run.stderr);
    assert!(!run.stderr.contains("entity not found"), "{}", run.stderr);
}

fn env_refs(e: &[(String, String)]) -> Vec<(&str, String)> {
    e.iter().map(|(k, v)| (k.as_str(), v.clone())).collect()
}

/// Defect 1: one non-UTF-8 line used to abort the run (exit 2), losing the message queued before it and every
/// event after it.
#[test]
fn a_non_utf8_line_is_a_dead_letter_and_the_run_goes_on() {
    let dir = tempdir("utf8");
    let rx = Receiver::start();
    let cfg = notify_config(&dir, &webhooks(&dir, "", &["hook"], ""));
    let events = sample_events();
    let mut input = Vec::new();
    for (i, l) in events.iter().enumerate() {
        if i == 2 {
            input.extend_from_slice(b"{\"entity\": \"Acme \xff\xfe Air\"}\n");
        }
        input.extend_from_slice(l.as_bytes());
        input.push(b'\n');
    }
    let run = run_notify_with(&cfg, &dir, &input, &env_refs(&webhook_env(&rx, &["hook"])), &[]);
    assert_eq!(run.code, 1, "a dead letter makes the status 1, not 2: {}", run.stderr);
    assert_eq!(run.summary["events"], events.len() as u64);
    assert_eq!(run.summary["bad_lines"], 1);
    assert_eq!(run.dead.len(), 1, "{:?}", run.dead);
    assert_eq!((run.dead[0]["reason"].as_str(), run.dead[0]["line"].as_u64()), (Some("not_utf8"), Some(3)));
    assert_eq!(run.dead[0]["reason"], "not_utf8");
    let sent: Vec<u64> = rx.requests("/hook").iter().map(|r| r.json()["seq"].as_u64().unwrap()).collect();
    assert_eq!(sent.first(), Some(&0), "the message before the bad line is delivered");
    assert_eq!(sent.last(), Some(&seqs(&events).last().unwrap().0), "and the events after it");
}

/// Defect 3: one mark for all channels made a fast channel resend after a restart, and resent messages were
/// relabelled. Now each channel resumes from its own mark and a resend is the first send, byte for byte.
#[test]
fn resuming_after_a_kill_resends_nothing_a_channel_finished_and_resends_are_identical() {
    let dir = tempdir("perchannel");
    let rx = Receiver::start();
    rx.script("/slow", &[Reply::Status(200), Reply::Status(200)]);
    rx.default_reply("/slow", Reply::Hang);
    let cfg = notify_config(
        &dir,
        &webhooks(&dir, "timeout_secs = 60\ninitial_backoff_ms = 100", &["fast", "slow"], "update_interval_secs = 1"),
    );
    let events = sample_events();
    let input = dir.join("events.jsonl");
    std::fs::write(&input, events.join("\n") + "\n").unwrap();
    let ckpt = dir.join("notify.checkpoint");
    let env = webhook_env(&rx, &["fast", "slow"]);
    let start = || {
        let mut c = flashpoint();
        c.args(["notify", "--config"]).arg(&cfg).arg("--input").arg(&input).arg("--checkpoint").arg(&ckpt);
        c.arg("--dead-letter").arg(dir.join("dead.jsonl")).envs(env.iter().cloned()).stderr(Stdio::piped());
        c
    };
    let mut first = start().spawn().unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    while rx.requests("/slow").len() < 3 || checkpoint_mark(&ckpt, "fast") != Some(events.len() as u64) {
        assert!(Instant::now() < deadline, "stuck: fast mark {:?}", checkpoint_mark(&ckpt, "fast"));
        std::thread::sleep(Duration::from_millis(50));
    }
    first.kill().unwrap(); // SIGKILL
    first.wait().unwrap();
    let fast_before = rx.requests("/fast").len();
    rx.default_reply("/slow", Reply::Status(200));
    let second = start().output().unwrap();
    assert!(second.status.success(), "{}", String::from_utf8_lossy(&second.stderr));
    assert_eq!(rx.requests("/fast").len(), fast_before, "the fast channel had finished: nothing resent");
    let fast: BTreeMap<String, (String, Vec<u8>)> = rx
        .requests("/fast")
        .iter()
        .map(|r| {
            let k = r.header("idempotency-key").unwrap().to_string();
            (k, (r.header("flashpoint-notice").unwrap().to_string(), r.body.clone()))
        })
        .collect();
    let mut delivered = Vec::new();
    for r in rx.requests("/slow") {
        let key = r.header("idempotency-key").unwrap().to_string();
        let notice = r.header("flashpoint-notice").unwrap().to_string();
        assert_eq!(
            fast.get(&key),
            Some(&(notice.clone(), r.body.clone())),
            "{key}: the same key carries the same label and body on every channel and every send"
        );
        if r.ok() {
            delivered.push(key);
        }
    }
    let mut want: Vec<String> = fast.keys().cloned().collect();
    want.sort();
    delivered.sort();
    assert_eq!(delivered, want, "the slow channel got every message once to a 200");
}

/// Defect 4: a checkpoint reused with another input silently skipped lines.
#[test]
fn a_checkpoint_written_for_another_input_is_refused_and_restart_starts_over() {
    let dir = tempdir("identity");
    let rx = Receiver::start();
    let cfg = notify_config(&dir, &webhooks(&dir, "", &["hook"], ""));
    let env = webhook_env(&rx, &["hook"]);
    let ckpt = dir.join("ckpt").display().to_string();
    let a = sample_events();
    let run = run_notify_with(&cfg, &dir, (a.join("\n") + "\n").as_bytes(), &env_refs(&env), &["--checkpoint", &ckpt]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    let sent_a = rx.requests("/hook").len();
    // Another input: the same incident under another id.
    let b: Vec<String> = a.iter().map(|l| l.replace("\"incident_id\":\"inc-", "\"incident_id\":\"other-")).collect();
    let run = run_notify_with(&cfg, &dir, (b.join("\n") + "\n").as_bytes(), &env_refs(&env), &["--checkpoint", &ckpt]);
    assert_eq!(run.code, 2, "{}", run.stderr);
    assert!(run.stderr.contains("written for another input") && run.stderr.contains("--restart"), "{}", run.stderr);
    assert_eq!(rx.requests("/hook").len(), sent_a, "nothing sent for the other input");
    let run = run_notify_with(
        &cfg,
        &dir,
        (b.join("\n") + "\n").as_bytes(),
        &env_refs(&env),
        &["--checkpoint", &ckpt, "--restart"],
    );
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert_eq!(rx.requests("/hook").len(), 2 * sent_a, "every message of the new input");
    // The same input again: everything was done, nothing is sent.
    let run = run_notify_with(&cfg, &dir, (b.join("\n") + "\n").as_bytes(), &env_refs(&env), &["--checkpoint", &ckpt]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert_eq!(rx.requests("/hook").len(), 2 * sent_a);
    assert_eq!(run.summary["skipped_on_resume"], sent_a as u64);
}

/// Defect 5: a closed port cost 209 s per message ("request failed: error sending request"). Now the cause is
/// named, a message gives up at its deadline, the circuit opens and the rest are dead-lettered at once, while
/// the other channel is not delayed.
#[test]
fn a_dead_destination_costs_one_deadline_names_the_cause_and_delays_no_other_channel() {
    let dir = tempdir("deaddest");
    let rx = Receiver::start();
    let cfg =
        notify_config(&dir, &webhooks(&dir, "message_deadline_secs = 3\nbreaker_failures = 2", &["dead", "good"], ""));
    let mut env = webhook_env(&rx, &["dead", "good"]);
    env[0].1 = format!("http://127.0.0.1:{}/dead", free_port()); // nothing listens there
    let events = sample_events();
    let t0 = Instant::now();
    let run = run_notify(&cfg, &dir, &(events.join("\n") + "\n"), &env_refs(&env));
    let took = t0.elapsed();
    assert_eq!(run.code, 1, "{}", run.stderr);
    let dead: Vec<&serde_json::Value> = run.dead.iter().filter(|d| d["channel"] == "dead").collect();
    let good = rx.requests("/good");
    assert_eq!(dead.len(), good.len(), "every message of the dead channel is dead-lettered");
    let first = dead[0]["reason"].as_str().unwrap();
    assert!(first.contains("connection refused") && first.starts_with("gave up after"), "{first}");
    assert!(dead[1..].iter().all(|d| d["reason"].as_str().unwrap().starts_with("circuit_open:")), "{dead:?}");
    assert!(took < Duration::from_secs(12), "{} messages took {took:?}", dead.len());
    assert!(good.iter().all(|r| r.at < t0 + Duration::from_secs(2)), "the good channel was not held up");
}

/// Slack's Web API: the opening starts a thread, every later message is a reply in it (an escalation also
/// broadcast), and the opening is edited to the current state. The received bodies are written, rendered as
/// lines, to `$FLASHPOINT_NOTIFY_CAPTURE/slack-thread.txt` when that is set (docs/alerts.md shows them).
#[test]
fn slack_web_api_threads_an_incident_and_edits_its_opening() {
    let dir = tempdir("slackapi");
    let rx = Receiver::start();
    const OK: &str = r#"{"ok":true,"channel":"C0FLASH","ts":"1772633340.000100"}"#;
    rx.default_reply("/api/chat.postMessage", Reply::Body(200, OK));
    rx.default_reply("/api/chat.update", Reply::Body(200, OK));
    let cfg = notify_config(
        &dir,
        &format!(
            "[notify]\n[[notify.channels]]\nkind = \"slack\"\nname = \"ops\"\ntoken = {{ env = \"FP_SLACK_TOKEN\" }}\nchannel = \"#ops-alerts\"\napi_url = \"{}\"\n[[notify.routes]]\nname = \"all\"\nchannels = [\"ops\"]\n",
            rx.url("/api")
        ),
    );
    let events = sample_events();
    let run = run_notify(&cfg, &dir, &(events.join("\n") + "\n"), &[("FP_SLACK_TOKEN", "xoxb-S3CRET".into())]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    let reqs = rx.requests("/api/");
    assert!(reqs.iter().all(|r| r.header("authorization") == Some("Bearer xoxb-S3CRET")));
    let (open, rest) = reqs.split_first().unwrap();
    assert_eq!(open.path, "/api/chat.postMessage");
    assert_eq!(open.json()["channel"], "#ops-alerts");
    assert!(open.json().get("thread_ts").is_none(), "the opening starts the thread");
    assert!(!rest.is_empty() && rest.len() % 2 == 0, "each later message: a reply and an edit");
    for pair in rest.chunks(2) {
        let (reply, edit) = (pair[0].json(), pair[1].json());
        assert_eq!((pair[0].path.as_str(), pair[1].path.as_str()), ("/api/chat.postMessage", "/api/chat.update"));
        assert_eq!(
            (reply["thread_ts"].as_str(), reply["channel"].as_str()),
            (Some("1772633340.000100"), Some("C0FLASH"))
        );
        assert_eq!((edit["ts"].as_str(), edit["channel"].as_str()), (Some("1772633340.000100"), Some("C0FLASH")));
        assert_eq!(reply["blocks"], edit["blocks"], "the opening shows the current state");
        let escalated = reply["text"].as_str().unwrap().contains("escalated");
        assert_eq!(reply["reply_broadcast"].as_bool().unwrap_or(false), escalated, "{reply}");
        slack::check_limits(&reply).unwrap();
    }
    let last = rest.last().unwrap().json();
    assert!(last["text"].as_str().unwrap().starts_with("✅ RESOLVED"), "not in alarm colours: {last}");
    let updates: Vec<String> = rest.iter().step_by(2).map(|r| r.json().to_string()).collect();
    assert!(updates.iter().any(|u| u.contains("What changed: watch → warning")), "{updates:?}");
    if let Ok(out) = std::env::var("FLASHPOINT_NOTIFY_CAPTURE") {
        let mut text = String::new();
        for r in &reqs {
            let v = r.json();
            let mut lines = Vec::new();
            texts(&v["blocks"], &mut lines);
            let lines: Vec<String> = lines
                .into_iter()
                .filter(|l| !["plain_text", "section", "header", "actions", "button", "context"].contains(&l.as_str()))
                .collect();
            text += &format!(
                "{} {}{}{}\n    {}\n\n",
                r.path.trim_start_matches("/api/"),
                v["channel"],
                v.get("thread_ts").map(|t| format!(" thread_ts={t}")).unwrap_or_default(),
                if v["reply_broadcast"] == true { " reply_broadcast=true" } else { "" },
                lines.join("\n    ")
            );
        }
        std::fs::write(std::path::Path::new(&out).join("slack-thread.txt"), text).unwrap();
    }
}

/// `notify test`, silences (and the command that adds one), and dead letters read back and re-sent.
#[test]
fn test_sends_silences_hold_and_dead_letters_resend() {
    let dir = tempdir("features");
    let rx = Receiver::start();
    let env = webhook_env(&rx, &["hook"]);
    let cfg = notify_config(&dir, &webhooks(&dir, "max_attempts = 1", &["hook"], ""));
    let out = flashpoint().args(["notify", "test", "--config"]).arg(&cfg).envs(env.iter().cloned()).output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success() && text.contains("ok     hook (webhook)"), "{text}");
    let t = &rx.requests("/hook")[0];
    assert!(t.json()["entity"].as_str().unwrap().starts_with("TEST MESSAGE"), "clearly marked");

    let events = sample_events();
    let input = events.join("\n") + "\n";
    let add = flashpoint()
        .args(["notify", "silence", "--config"])
        .arg(&cfg)
        .args(["--entity", "acme*", "--until", "2099-01-01T00:00:00Z", "--reason", "planned launch"])
        .output()
        .unwrap();
    assert!(add.status.success(), "{}", String::from_utf8_lossy(&add.stderr));
    let before = rx.requests("/hook").len();
    let run = run_notify(&cfg, &dir, &input, &env_refs(&env));
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert_eq!(rx.requests("/hook").len(), before, "silenced: nothing sent");
    assert!(run.summary["silenced"].as_u64().unwrap() > 0, "but counted: {}", run.summary);

    // Without the silence, against a failing receiver: dead letters; read back, they are re-sent as they were.
    let cfg = notify_config(&dir, &webhooks(&dir, "max_attempts = 1", &["hook"], ""));
    rx.script("/hook", &[Reply::Status(400), Reply::Status(400)]);
    let run = run_notify(&cfg, &dir, &input, &env_refs(&env));
    assert_eq!(run.code, 1, "{}", run.stderr);
    let failed: Vec<&serde_json::Value> = run.dead.iter().filter(|d| d["source"] == "delivery").collect();
    assert_eq!(failed.len(), 2);
    let first_fail = rx.requests("/hook")[before].clone();
    let dead_lines: String = failed.iter().map(|d| d.to_string() + "\n").collect();
    let n = rx.requests("/hook").len();
    let run = run_notify(&cfg, &dir, &dead_lines, &env_refs(&env));
    assert_eq!(run.code, 0, "{}", run.stderr);
    let resent = &rx.requests("/hook")[n..];
    assert_eq!(resent.len(), 2);
    assert_eq!(resent[0].header("idempotency-key"), first_fail.header("idempotency-key"));
    assert_eq!(resent[0].header("flashpoint-notice"), first_fail.header("flashpoint-notice"));
    assert_eq!(resent[0].json(), first_fail.json(), "the same event");
}
