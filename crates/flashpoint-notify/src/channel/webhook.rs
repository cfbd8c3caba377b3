//! Generic webhook: the spike event JSON exactly as Flashpoint emitted it, signed.
//!
//! Request: `POST`, `Content-Type: application/json`, body = the spike event (schema/spike-event.schema.json),
//! and the headers
//! - `Idempotency-Key: {incident_id}:{seq}`: the same for every retry and replay of one event; a receiver that
//!   has seen it answers 2xx and does nothing;
//! - `Flashpoint-Notice: opened|escalated|update|resolved`: what this message is on its route;
//! - `Flashpoint-Incident-Page: {public_url}/incidents/{incident_id}`, when `notify.public_url` is set;
//! - `Flashpoint-Signature: t={unix seconds},v1={hex HMAC-SHA256(key, "{t}.{body}")}`, the scheme Stripe and
//!   Slack use. A new `t` (and signature) is computed for every attempt; the body stays the same.
//!
//! To verify (what [`verify`] does): split the header on `,` into `t=` and `v1=`; refuse if `|now - t|` is over
//! five minutes (replays); compute HMAC-SHA256 with the shared key over the bytes `t`, `.`, and the raw body as
//! received (before any JSON parsing); compare with `v1` in constant time. In Python:
//! `hmac.compare_digest(hmac.new(key, f"{t}.".encode() + body, hashlib.sha256).hexdigest(), v1)`.

use super::{parse_table, Build, BuildError, Channel, ChannelSpec, HttpRequest, Kind, Request};
use crate::format::Context;
use crate::message::Message;
use crate::secret::{Secret, SecretRef};
use hmac::{Hmac, Mac};
use serde::Deserialize;
use sha2::Sha256;

pub const KIND: Kind = Kind { name: "webhook", parse: |v| Ok(Box::new(parse_table::<WebhookConfig>(v)?)) };

#[derive(Clone, Debug, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WebhookConfig {
    pub name: String,
    pub url: SecretRef,
    /// HMAC-SHA256 key for the `Flashpoint-Signature` header.
    pub signing_key: SecretRef,
}

impl ChannelSpec for WebhookConfig {
    fn name(&self) -> &str {
        &self.name
    }

    fn secrets(&self) -> Vec<(&'static str, &SecretRef)> {
        vec![("url", &self.url), ("signing_key", &self.signing_key)]
    }

    fn build(&self, b: &Build<'_>) -> Result<Box<dyn Channel>, BuildError> {
        Ok(Box::new(Webhook { url: b.secret_url("url", &self.url)?, key: b.secret("signing_key", &self.signing_key)? }))
    }
}

struct Webhook {
    url: Secret,
    key: Secret,
}

impl Channel for Webhook {
    /// One request per event (a digest's events each go on their own, so a receiver sees one schema).
    fn render(&mut self, msg: &Message, ctx: &Context) -> Result<Vec<Request>, String> {
        Ok(msg
            .notices()
            .into_iter()
            .map(|n| {
                let mut headers = vec![
                    ("content-type", "application/json".into()),
                    (IDEMPOTENCY_HEADER, n.idempotency_key()),
                    (NOTICE_HEADER, n.kind.as_str().into()),
                ];
                // A header, not a body field: the body stays the event exactly as emitted (and as signed).
                if let Some(page) = ctx.incident_link(n) {
                    headers.push((PAGE_HEADER, page));
                }
                Request::Http(HttpRequest {
                    url: self.url.clone(),
                    body: n.raw.as_bytes().to_vec(),
                    headers,
                    sign: Some(self.key.clone()),
                    bearer: None,
                    note: None,
                })
            })
            .collect())
    }
}

pub const SIGNATURE_HEADER: &str = "Flashpoint-Signature";
pub const IDEMPOTENCY_HEADER: &str = "Idempotency-Key";
pub const NOTICE_HEADER: &str = "Flashpoint-Notice";
/// `{notify.public_url}/incidents/{incident_id}`, when `public_url` is set.
pub const PAGE_HEADER: &str = "Flashpoint-Incident-Page";
/// How old a signature [`verify`] accepts, in seconds.
pub const TOLERANCE_SECS: i64 = 300;

fn mac(key: &[u8], t: i64, body: &[u8]) -> Hmac<Sha256> {
    let mut m = Hmac::<Sha256>::new_from_slice(key).expect("HMAC takes any key length");
    m.update(t.to_string().as_bytes());
    m.update(b".");
    m.update(body);
    m
}

/// The `Flashpoint-Signature` header value for `body` signed at `t` (unix seconds).
pub fn sign(key: &[u8], t: i64, body: &[u8]) -> String {
    format!("t={t},v1={}", hex::encode(mac(key, t, body).finalize().into_bytes()))
}

#[derive(Debug, PartialEq, Eq, thiserror::Error)]
pub enum VerifyError {
    #[error("malformed signature header")]
    Malformed,
    #[error("timestamp outside the tolerance")]
    Stale,
    #[error("signature does not match")]
    Mismatch,
}

/// Verifies a `Flashpoint-Signature` header for `body` at `now` (unix seconds), as a receiver should.
pub fn verify(key: &[u8], header: &str, body: &[u8], now: i64) -> Result<(), VerifyError> {
    let mut t = None;
    let mut v1 = Vec::new();
    for part in header.split(',') {
        match part.trim().split_once('=') {
            Some(("t", x)) => t = x.parse::<i64>().ok(),
            Some(("v1", x)) => v1.push(hex::decode(x).map_err(|_| VerifyError::Malformed)?),
            _ => {}
        }
    }
    let t = t.ok_or(VerifyError::Malformed)?;
    if v1.is_empty() {
        return Err(VerifyError::Malformed);
    }
    if (now - t).abs() > TOLERANCE_SECS {
        return Err(VerifyError::Stale);
    }
    // verify_slice compares in constant time.
    if v1.iter().any(|sig| mac(key, t, body).verify_slice(sig).is_ok()) {
        Ok(())
    } else {
        Err(VerifyError::Mismatch)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sign_and_verify() {
        let body = br#"{"incident_id":"inc-1","seq":0}"#;
        let h = sign(b"k3y", 1_700_000_000, body);
        // Same construction as the Python recipe in the module docs (value computed with Python's hmac).
        assert_eq!(h, "t=1700000000,v1=ea0dbbdd85f8ad22dd3232296b60c24b79e6a7c021c07c6381212f061d39f46f");
        assert_eq!(verify(b"k3y", &h, body, 1_700_000_100), Ok(()));
        assert_eq!(verify(b"k3y", &h, body, 1_700_000_400), Err(VerifyError::Stale));
        assert_eq!(verify(b"other", &h, body, 1_700_000_000), Err(VerifyError::Mismatch));
        assert_eq!(
            verify(b"k3y", &h, br#"{"incident_id":"inc-1","seq":1}"#, 1_700_000_000),
            Err(VerifyError::Mismatch)
        );
        assert_eq!(verify(b"k3y", "v1=00", body, 1_700_000_000), Err(VerifyError::Malformed));
    }
}
