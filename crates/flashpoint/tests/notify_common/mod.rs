//! Test helpers for `flashpoint notify`: a real HTTP receiver on 127.0.0.1 that records every request and
//! answers as scripted (a status, `429` with `Retry-After`, or no answer at all), and a real SMTP server
//! (Debian's python3-aiosmtpd, writing a Maildir).

use std::collections::VecDeque;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

pub fn bin() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_flashpoint"))
}

pub fn repo(rel: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..").join(rel)
}

pub fn tempdir(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("fp-notify-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

#[derive(Clone, Copy, Debug)]
pub enum Reply {
    Status(u16),
    /// 429 with `Retry-After: secs`.
    RetryAfter(u64),
    /// Read the request, never answer.
    Hang,
    /// This status with this body (a JSON API's answer).
    Body(u16, &'static str),
}

#[derive(Clone, Debug)]
pub struct Request {
    pub path: String,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
    pub at: Instant,
    pub reply: Reply,
}

impl Request {
    pub fn header(&self, k: &str) -> Option<&str> {
        self.headers.iter().find(|(n, _)| n.eq_ignore_ascii_case(k)).map(|(_, v)| v.as_str())
    }

    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body).unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(&self.body)))
    }

    pub fn ok(&self) -> bool {
        matches!(self.reply, Reply::Status(200..=299) | Reply::Body(200..=299, _))
    }
}

#[derive(Default)]
struct State {
    requests: Vec<Request>,
    /// Replies for the next requests, per path (first matching prefix); then `default`.
    script: Vec<(String, VecDeque<Reply>)>,
    default: Vec<(String, Reply)>,
}

/// An HTTP/1.1 server on 127.0.0.1 (keep-alive, Content-Length bodies), on its own thread and runtime.
pub struct Receiver {
    pub port: u16,
    state: Arc<Mutex<State>>,
}

impl Receiver {
    pub fn start() -> Receiver {
        Self::start_on(0)
    }

    /// Listens on `port` (0: any free one).
    pub fn start_on(port: u16) -> Receiver {
        Self::start_scripted(port, &[])
    }

    /// Listens on `port` with scripted replies in place before the first request.
    pub fn start_scripted(port: u16, script: &[(&str, &[Reply])]) -> Receiver {
        let state = Arc::new(Mutex::new(State::default()));
        for (p, r) in script {
            state.lock().unwrap().script.push((p.to_string(), r.iter().copied().collect()));
        }
        let listener = std::net::TcpListener::bind(("127.0.0.1", port)).expect("bind the test receiver");
        listener.set_nonblocking(true).unwrap();
        let port = listener.local_addr().unwrap().port();
        let st = state.clone();
        std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
            rt.block_on(async move {
                let listener = tokio::net::TcpListener::from_std(listener).unwrap();
                loop {
                    let Ok((sock, _)) = listener.accept().await else { continue };
                    tokio::spawn(serve(sock, st.clone()));
                }
            });
        });
        Receiver { port, state }
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.port)
    }

    /// The next replies for requests to paths starting with `prefix`.
    pub fn script(&self, prefix: &str, replies: &[Reply]) {
        self.state.lock().unwrap().script.push((prefix.into(), replies.iter().copied().collect()));
    }

    /// The reply once the script for `prefix` is used up (default 200).
    pub fn default_reply(&self, prefix: &str, r: Reply) {
        let mut st = self.state.lock().unwrap();
        st.default.retain(|(p, _)| p != prefix);
        st.default.push((prefix.into(), r));
    }

    pub fn requests(&self, prefix: &str) -> Vec<Request> {
        self.state.lock().unwrap().requests.iter().filter(|r| r.path.starts_with(prefix)).cloned().collect()
    }
}

fn reply_for(st: &mut State, path: &str) -> Reply {
    if let Some((_, q)) = st.script.iter_mut().find(|(p, q)| path.starts_with(p.as_str()) && !q.is_empty()) {
        return q.pop_front().expect("not empty");
    }
    st.default.iter().find(|(p, _)| path.starts_with(p.as_str())).map_or(Reply::Status(200), |(_, r)| *r)
}

async fn serve(mut sock: tokio::net::TcpStream, st: Arc<Mutex<State>>) {
    let mut buf = Vec::new();
    loop {
        // Headers.
        let head_end = loop {
            if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
                break i + 4;
            }
            let mut chunk = [0u8; 8192];
            match sock.read(&mut chunk).await {
                Ok(0) | Err(_) => return,
                Ok(n) => buf.extend_from_slice(&chunk[..n]),
            }
        };
        let head = String::from_utf8_lossy(&buf[..head_end]).to_string();
        let mut lines = head.split("\r\n");
        let path = lines.next().unwrap_or("").split(' ').nth(1).unwrap_or("").to_string();
        let headers: Vec<(String, String)> = lines
            .filter_map(|l| l.split_once(':'))
            .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_string()))
            .collect();
        let len: usize =
            headers.iter().find(|(k, _)| k == "content-length").and_then(|(_, v)| v.parse().ok()).unwrap_or(0);
        while buf.len() < head_end + len {
            let mut chunk = [0u8; 8192];
            match sock.read(&mut chunk).await {
                Ok(0) | Err(_) => return,
                Ok(n) => buf.extend_from_slice(&chunk[..n]),
            }
        }
        let body = buf[head_end..head_end + len].to_vec();
        buf.drain(..head_end + len);
        let reply = {
            let mut s = st.lock().unwrap();
            let reply = reply_for(&mut s, &path);
            s.requests.push(Request { path: path.clone(), headers, body, at: Instant::now(), reply });
            reply
        };
        let (status, extra) = match reply {
            Reply::Status(s) => (s, String::new()),
            Reply::RetryAfter(secs) => (429, format!("Retry-After: {secs}\r\n")),
            Reply::Body(s, _) => (s, String::new()),
            Reply::Hang => {
                tokio::time::sleep(Duration::from_secs(120)).await;
                return;
            }
        };
        let body = match reply {
            Reply::Body(_, b) => b,
            _ if status < 300 => "ok",
            _ => "{\"error\":\"no\"}",
        };
        let resp = format!("HTTP/1.1 {status} X\r\nContent-Length: {}\r\n{extra}\r\n{body}", body.len());
        if sock.write_all(resp.as_bytes()).await.is_err() {
            return;
        }
    }
}

/// Debian's python3-aiosmtpd as a real SMTP server on 127.0.0.1, storing each mail in a Maildir.
pub struct Smtp {
    pub port: u16,
    pub maildir: PathBuf,
    child: Child,
}

pub fn smtp_python() -> String {
    std::env::var("FLASHPOINT_SMTP_PYTHON").unwrap_or_else(|_| "/usr/bin/python3".into())
}

impl Smtp {
    pub fn start(dir: &Path) -> Smtp {
        let py = smtp_python();
        let ok = Command::new(&py).args(["-c", "import aiosmtpd"]).status().is_ok_and(|s| s.success());
        assert!(
            ok,
            "the email tests need a real SMTP server: Debian's python3-aiosmtpd for {py} (run scripts/smtp.sh, or \
             apt-get install -y python3-aiosmtpd; FLASHPOINT_SMTP_PYTHON names another interpreter that has it)"
        );
        let port = free_port();
        let maildir = dir.join("maildir");
        let log = std::fs::File::create(dir.join("smtp.log")).unwrap();
        let child = Command::new(&py)
            .args(["-m", "aiosmtpd", "-n", "-l", &format!("127.0.0.1:{port}"), "-c", "aiosmtpd.handlers.Mailbox"])
            .arg(&maildir)
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .unwrap();
        let deadline = Instant::now() + Duration::from_secs(20);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(Instant::now() < deadline, "aiosmtpd did not start; see {}", dir.join("smtp.log").display());
            std::thread::sleep(Duration::from_millis(100));
        }
        Smtp { port, maildir, child }
    }

    /// The raw messages received so far, oldest first.
    pub fn mails(&self) -> Vec<String> {
        let mut files: Vec<(std::time::SystemTime, String, PathBuf)> = std::fs::read_dir(self.maildir.join("new"))
            .map(|rd| {
                rd.filter_map(|e| e.ok())
                    .map(|e| {
                        (
                            e.metadata().unwrap().modified().unwrap(),
                            e.file_name().to_string_lossy().to_string(),
                            e.path(),
                        )
                    })
                    .collect()
            })
            .unwrap_or_default();
        files.sort();
        files.into_iter().map(|(_, _, p)| std::fs::read_to_string(p).unwrap()).collect()
    }
}

/// A CA and a server certificate for 127.0.0.1 signed by it (openssl CLI): (ca.pem, cert.pem, key.pem).
pub fn test_certificates(dir: &Path) -> (PathBuf, PathBuf, PathBuf) {
    let script = r#"set -e
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout ca.key -out ca.pem -days 2 -subj /CN=flashpoint-test-ca 2>/dev/null
openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout key.pem -out leaf.csr -subj /CN=127.0.0.1 2>/dev/null
printf 'subjectAltName=IP:127.0.0.1\nbasicConstraints=CA:FALSE\nkeyUsage=digitalSignature\nextendedKeyUsage=serverAuth\n' > leaf.ext
openssl x509 -req -in leaf.csr -CA ca.pem -CAkey ca.key -CAcreateserial -out cert.pem -days 2 -extfile leaf.ext 2>/dev/null
"#;
    let ok = Command::new("bash").arg("-c").arg(script).current_dir(dir).status().is_ok_and(|s| s.success());
    assert!(ok, "making test certificates needs the openssl command (Debian: apt-get install -y openssl)");
    (dir.join("ca.pem"), dir.join("cert.pem"), dir.join("key.pem"))
}

impl Smtp {
    /// STARTTLS and AUTH required (`user`/`password`), `nobody@…` refused with 550 (smtp_server.py).
    pub fn start_tls(dir: &Path, cert: &Path, key: &Path, user: &str, password: &str) -> Smtp {
        let py = smtp_python();
        let ok = Command::new(&py).args(["-c", "import aiosmtpd"]).status().is_ok_and(|s| s.success());
        assert!(
            ok,
            "the email tests need python3-aiosmtpd for {py}: run scripts/smtp.sh (apt-get install -y python3-aiosmtpd)"
        );
        let port = free_port();
        let maildir = dir.join("maildir");
        let log = std::fs::File::create(dir.join("smtp.log")).unwrap();
        let child = Command::new(&py)
            .arg(Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/notify_common/smtp_server.py"))
            .arg(port.to_string())
            .arg(cert)
            .arg(key)
            .arg(&maildir)
            .args([user, password])
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .unwrap();
        let deadline = Instant::now() + Duration::from_secs(20);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(Instant::now() < deadline, "the SMTP server did not start; see {}", dir.join("smtp.log").display());
            std::thread::sleep(Duration::from_millis(100));
        }
        Smtp { port, maildir, child }
    }
}

impl Drop for Smtp {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Spike events from `flashpoint replay` of the committed sample stream (one incident, nine events).
pub fn sample_events() -> Vec<String> {
    let out = Command::new(bin())
        .args(["replay", "--config"])
        .arg(repo("config/flashpoint.toml"))
        .arg("--input")
        .arg(repo("data/sample/stream.jsonl"))
        .arg("--flush")
        .stderr(Stdio::null())
        .output()
        .unwrap();
    assert!(out.status.success());
    let lines: Vec<String> = String::from_utf8(out.stdout).unwrap().lines().map(String::from).collect();
    assert!(lines.len() >= 3, "the sample stream yields an incident");
    lines
}

/// A `[notify]` section: `delivery` lines under `[notify.delivery]`, one signed webhook channel per name (URL from
/// `FP_URL_<NAME>`, key from `dir/k`), and one route `all` to all of them. The fixture most notify tests share.
pub fn webhooks(dir: &Path, delivery: &str, names: &[&str], route_extra: &str) -> String {
    std::fs::write(dir.join("k"), "k").unwrap();
    let mut s = format!("[notify]\n[notify.delivery]\n{delivery}\n");
    for n in names {
        s += &format!(
            "[[notify.channels]]\nkind = \"webhook\"\nname = \"{n}\"\nurl = {{ env = \"FP_URL_{}\" }}\nsigning_key = {{ file = \"{}\" }}\n",
            n.to_ascii_uppercase(),
            dir.join("k").display()
        );
    }
    let list: Vec<String> = names.iter().map(|n| format!("\"{n}\"")).collect();
    s + &format!("[[notify.routes]]\nname = \"all\"\nchannels = [{}]\n{route_extra}\n", list.join(", "))
}

/// The environment [`webhooks`] reads: each channel posting to `/{name}` on `rx`.
pub fn webhook_env(rx: &Receiver, names: &[&str]) -> Vec<(String, String)> {
    names.iter().map(|n| (format!("FP_URL_{}", n.to_ascii_uppercase()), rx.url(&format!("/{n}")))).collect()
}

/// config/flashpoint.toml (watchlist, windows) plus `notify` (a [notify] section).
pub fn write_config(dir: &Path, notify: &str) -> PathBuf {
    let base = std::fs::read_to_string(repo("config/flashpoint.toml")).unwrap();
    let p = dir.join("flashpoint.toml");
    std::fs::write(&p, format!("{base}\n{notify}\n")).unwrap();
    p
}

pub struct Run {
    pub code: i32,
    pub stderr: String,
    pub summary: serde_json::Value,
    pub dead: Vec<serde_json::Value>,
}

/// A channel's mark in a `--checkpoint` file (lines before it finished on that channel).
pub fn checkpoint_mark(path: &Path, channel: &str) -> Option<u64> {
    let v: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(path).ok()?).ok()?;
    v["marks"][channel].as_u64()
}

/// `flashpoint notify` with `input` on stdin and `env` set; waits for it to exit.
pub fn notify(config: &Path, dir: &Path, input: &str, env: &[(&str, String)]) -> Run {
    notify_with(config, dir, input.as_bytes(), env, &[])
}

/// [`notify`] with raw input bytes and extra arguments.
pub fn notify_with(config: &Path, dir: &Path, input: &[u8], env: &[(&str, String)], args: &[&str]) -> Run {
    let dead = dir.join("dead.jsonl");
    let mut cmd = Command::new(bin());
    cmd.args(["notify", "--config"]).arg(config).args(["--input", "-", "--dead-letter"]).arg(&dead).args(args);
    for (k, v) in env {
        cmd.env(k, v);
    }
    let mut child = cmd.stdin(Stdio::piped()).stdout(Stdio::null()).stderr(Stdio::piped()).spawn().unwrap();
    let mut stdin = child.stdin.take().unwrap();
    let input = input.to_vec();
    let w = std::thread::spawn(move || {
        let _ = stdin.write_all(&input);
    });
    let out = child.wait_with_output().unwrap();
    w.join().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr).to_string();
    let summary = stderr.lines().rev().find_map(|l| serde_json::from_str(l).ok()).unwrap_or(serde_json::Value::Null);
    let dead =
        std::fs::read_to_string(&dead).unwrap_or_default().lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    Run { code: out.status.code().unwrap_or(-1), stderr, summary, dead }
}
