//! The notifier's HTTP destination in tests: a real HTTP/1.1 server on 127.0.0.1 that records every request
//! and answers as scripted (a status, `429` with `Retry-After`, or no answer at all).

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

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
            Reply::Status(s) | Reply::Body(s, _) => (s, String::new()),
            Reply::RetryAfter(secs) => (429, format!("Retry-After: {secs}\r\n")),
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

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::{Read, Write};

    /// One request on a fresh connection; the status line of the answer.
    fn post(port: u16, path: &str) -> String {
        let mut c = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
        c.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        write!(c, "POST {path} HTTP/1.1\r\nHost: x\r\nX-Test: yes\r\nContent-Length: 2\r\n\r\n{{}}").unwrap();
        let mut buf = [0u8; 256];
        let n = c.read(&mut buf).unwrap();
        String::from_utf8_lossy(&buf[..n]).lines().next().unwrap().to_string()
    }

    #[test]
    fn scripted_replies_come_first_then_the_default() {
        let rx = Receiver::start_scripted(0, &[("/hook", &[Reply::Status(500), Reply::RetryAfter(3)])]);
        rx.default_reply("/other", Reply::Status(404));
        assert_eq!(post(rx.port, "/hook"), "HTTP/1.1 500 X");
        assert_eq!(post(rx.port, "/hook/a"), "HTTP/1.1 429 X");
        assert_eq!(post(rx.port, "/hook"), "HTTP/1.1 200 X");
        assert_eq!(post(rx.port, "/other"), "HTTP/1.1 404 X");
        let got = rx.requests("/hook");
        assert_eq!(got.len(), 3);
        assert_eq!((got[0].header("x-test"), got[0].body.as_slice()), (Some("yes"), &b"{}"[..]));
        assert!(!got[0].ok() && got[2].ok());
        assert!(rx.url("/hook").ends_with(&format!(":{}/hook", rx.port)));
    }
}
