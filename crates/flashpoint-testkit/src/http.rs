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
