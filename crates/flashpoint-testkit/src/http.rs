//! Plain HTTP scrapes of a worker's endpoints and reading Prometheus text expositions.

use std::time::Duration;

/// A plain HTTP/1.0 GET of a worker's endpoint (no chunked encoding to undo; the server closes the
/// connection): (status, body), or None if the worker does not answer.
pub fn try_http_get(addr: &str, path: &str) -> Option<(u16, String)> {
    use std::io::{Read, Write};
    let sock: std::net::SocketAddr = addr.parse().ok()?;
    let mut c = std::net::TcpStream::connect_timeout(&sock, Duration::from_secs(2)).ok()?;
    c.set_read_timeout(Some(Duration::from_secs(10))).ok()?;
    write!(c, "GET {path} HTTP/1.0\r\nHost: {addr}\r\n\r\n").ok()?;
    let mut buf = Vec::new();
    c.read_to_end(&mut buf).ok()?;
    let text = String::from_utf8_lossy(&buf).into_owned();
    let (head, body) = text.split_once("\r\n\r\n")?;
    let status = head.split(' ').nth(1)?.parse().ok()?;
    Some((status, body.to_string()))
}

/// [`try_http_get`] that must succeed.
pub fn http_get(addr: &str, path: &str) -> (u16, String) {
    try_http_get(addr, path).unwrap_or_else(|| panic!("GET http://{addr}{path} failed"))
}

/// An answer with its headers (names lower-cased), for endpoints whose headers are the point (the incident pages).
#[derive(Debug)]
pub struct Answer {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: String,
}

impl Answer {
    /// The first header named `name` (any case).
    pub fn header(&self, name: &str) -> Option<&str> {
        let name = name.to_ascii_lowercase();
        self.headers.iter().find(|(k, _)| *k == name).map(|(_, v)| v.as_str())
    }
}

/// A GET with extra request headers (`("Authorization", "Bearer x")`), returning the headers too.
pub fn http_get_with(addr: &str, path: &str, headers: &[(&str, &str)]) -> Answer {
    use std::io::{Read, Write};
    let mut c = std::net::TcpStream::connect(addr).unwrap_or_else(|e| panic!("connecting to {addr}: {e}"));
    c.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let mut req = format!("GET {path} HTTP/1.0\r\nHost: {addr}\r\n");
    for (k, v) in headers {
        req += &format!("{k}: {v}\r\n");
    }
    c.write_all(format!("{req}\r\n").as_bytes()).unwrap();
    let mut buf = Vec::new();
    c.read_to_end(&mut buf).unwrap();
    let text = String::from_utf8_lossy(&buf).into_owned();
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or_else(|| panic!("no HTTP head in {text:?}"));
    let mut lines = head.lines();
    let status = lines.next().and_then(|l| l.split(' ').nth(1)).and_then(|s| s.parse().ok()).expect("status");
    let headers = lines
        .filter_map(|l| l.split_once(':').map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_string())))
        .collect();
    Answer { status, headers, body: body.to_string() }
}

/// The value of one series in a Prometheus text exposition (`name{labels}` exactly as rendered).
pub fn metric(text: &str, series: &str) -> Option<f64> {
    text.lines().find_map(|l| l.strip_prefix(series)?.strip_prefix(' ')?.trim().parse().ok())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn metric_reads_only_the_exact_series() {
        let text = "# HELP x\nx_total{stage=\"score\"} 3\nx_total{stage=\"score2\"} 5\nx_total 7\n";
        assert_eq!(metric(text, "x_total{stage=\"score\"}"), Some(3.0));
        assert_eq!(metric(text, "x_total"), Some(7.0));
        assert_eq!(metric(text, "x_total{stage=\"aggregate\"}"), None);
    }

    #[test]
    fn a_closed_port_is_no_answer() {
        assert_eq!(try_http_get(&format!("127.0.0.1:{}", crate::paths::free_port()), "/metrics"), None);
    }
}
