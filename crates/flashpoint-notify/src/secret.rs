//! Secrets (webhook URLs, routing keys, SMTP passwords, signing keys): read from an environment variable or a
//! file, never written inline in the config, and never printed.
//!
//! A Slack or Teams webhook URL is a bearer credential: whoever has it can post to the channel. So the config
//! names *where* a secret is ([`SecretRef`], safe to show), and the value lives only in [`Secret`], whose
//! `Debug`, `Display` and `Serialize` all say `[redacted]`: a secret that reaches a log line, a metric label, a
//! dead letter or `check-config` output through any of those says nothing.

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use std::fmt;
use std::path::PathBuf;

/// Where a secret comes from: `{ env = "VAR" }` or `{ file = "/run/secrets/x" }` (trailing newline trimmed).
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum SecretRef {
    Env(String),
    File(PathBuf),
}

/// What an error about a secret's place says; never the value found there (an inline string is most likely
/// the secret itself, pasted in).
pub const WHERE_SECRETS_COME_FROM: &str =
    "secrets are never written in the config: use { env = \"VARIABLE\" } or { file = \"/path/to/file\" }";

impl<'de> Deserialize<'de> for SecretRef {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> serde::de::Visitor<'de> for V {
            type Value = SecretRef;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str(WHERE_SECRETS_COME_FROM)
            }
            // Every other shape lands in the default methods, whose message is `expecting` and the type found,
            // never the value; a string is spelled out here for the same reason.
            fn visit_str<E: serde::de::Error>(self, _: &str) -> Result<SecretRef, E> {
                Err(E::custom(format!("an inline value is refused; {WHERE_SECRETS_COME_FROM}")))
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(self, mut m: A) -> Result<SecretRef, A::Error> {
                use serde::de::Error;
                let mut out = None;
                while let Some(k) = m.next_key::<String>()? {
                    if out.is_some() {
                        return Err(A::Error::custom(format!("one of env or file; {WHERE_SECRETS_COME_FROM}")));
                    }
                    out = Some(match k.as_str() {
                        "env" => SecretRef::Env(
                            m.next_value::<String>()
                                .map_err(|_| A::Error::custom("env: the name of an environment variable (a string)"))?,
                        ),
                        "file" => SecretRef::File(
                            m.next_value::<PathBuf>().map_err(|_| A::Error::custom("file: a path (a string)"))?,
                        ),
                        _ => return Err(A::Error::custom(format!("unknown key; {WHERE_SECRETS_COME_FROM}"))),
                    });
                }
                out.ok_or_else(|| A::Error::custom(WHERE_SECRETS_COME_FROM))
            }
        }
        d.deserialize_any(V)
    }
}

impl fmt::Display for SecretRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SecretRef::Env(v) => write!(f, "env:{v}"),
            SecretRef::File(p) => write!(f, "file:{}", p.display()),
        }
    }
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum SecretError {
    #[error("environment variable {0} is not set (or not UTF-8)")]
    EnvMissing(String),
    #[error("secret file {0} {1}")]
    File(String, String),
    #[error("{0} is empty")]
    Empty(String),
}

impl SecretRef {
    /// Reads the secret. `env` lets tests pass their own environment.
    pub fn resolve_with(&self, env: &dyn Fn(&str) -> Option<String>) -> Result<Secret, SecretError> {
        let value = match self {
            SecretRef::Env(var) => env(var).ok_or_else(|| SecretError::EnvMissing(var.clone()))?,
            SecretRef::File(p) => std::fs::read_to_string(p).map_err(|e| {
                let why = match e.kind() {
                    std::io::ErrorKind::NotFound => "does not exist".to_string(),
                    std::io::ErrorKind::PermissionDenied => "is not readable by this user (permission denied)".into(),
                    std::io::ErrorKind::InvalidData => "is not UTF-8 text".into(),
                    _ => format!("cannot be read: {e}"),
                };
                SecretError::File(p.display().to_string(), why)
            })?,
        };
        let value = value.trim_end_matches(['\n', '\r']).to_string();
        if value.is_empty() {
            return Err(SecretError::Empty(self.to_string()));
        }
        Ok(Secret(value))
    }

    pub fn resolve(&self) -> Result<Secret, SecretError> {
        self.resolve_with(&|k| std::env::var(k).ok())
    }
}

/// A secret value. Only [`Secret::expose`] gives the value, at the single place that puts it on the wire.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    pub fn new(value: impl Into<String>) -> Secret {
        Secret(value.into())
    }

    pub fn expose(&self) -> &str {
        &self.0
    }

    /// Whether `candidate` is the secret (an access token presented to the incident pages), in time that does
    /// not depend on where the two first differ: both are hashed first (SHA-256), and the digests compared with
    /// every byte looked at, so neither the position of a mismatch nor the secret's length shows in the timing.
    pub fn matches(&self, candidate: &[u8]) -> bool {
        use sha2::{Digest, Sha256};
        let (a, b) = (Sha256::digest(self.0.as_bytes()), Sha256::digest(candidate));
        a.iter().zip(b.iter()).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("[redacted]")
    }
}

impl fmt::Display for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("[redacted]")
    }
}

impl Serialize for Secret {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str("[redacted]")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_secret_never_prints() {
        let s = Secret::new("https://hooks.slack.com/services/T000/B000/XXXX");
        assert_eq!(format!("{s}"), "[redacted]");
        assert_eq!(format!("{s:?}"), "[redacted]");
        assert_eq!(format!("{:?}", Some(&s)), "Some([redacted])");
        assert_eq!(serde_json::to_string(&s).unwrap(), "\"[redacted]\"");
        assert_eq!(s.expose(), "https://hooks.slack.com/services/T000/B000/XXXX");
    }

    #[test]
    fn matches_only_the_same_value() {
        let s = Secret::new("tok-123");
        assert!(s.matches(b"tok-123"));
        for other in [&b"tok-124"[..], b"tok-12", b"tok-1234", b"", b"TOK-123"] {
            assert!(!s.matches(other), "{other:?}");
        }
    }

    #[test]
    fn resolves_from_env_and_file() {
        let env = |k: &str| (k == "HOOK").then(|| "s3cret\n".to_string());
        assert_eq!(SecretRef::Env("HOOK".into()).resolve_with(&env).unwrap().expose(), "s3cret");
        assert_eq!(
            SecretRef::Env("NOPE".into()).resolve_with(&env).unwrap_err(),
            SecretError::EnvMissing("NOPE".into())
        );
        let dir = std::env::temp_dir().join(format!("fp-secret-{}", std::process::id()));
        std::fs::write(&dir, "key-from-file\n").unwrap();
        assert_eq!(SecretRef::File(dir.clone()).resolve().unwrap().expose(), "key-from-file");
        std::fs::write(&dir, "\n").unwrap();
        assert!(matches!(SecretRef::File(dir.clone()).resolve(), Err(SecretError::Empty(_))));
        std::fs::remove_file(&dir).unwrap();
        let e = SecretRef::File("/nonexistent/x".into()).resolve().unwrap_err();
        assert_eq!(e.to_string(), "secret file /nonexistent/x does not exist");
    }
}
