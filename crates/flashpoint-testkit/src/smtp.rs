//! The notifier's email destination in tests: a real SMTP server on 127.0.0.1 (Debian's python3-aiosmtpd,
//! writing a Maildir), plain or with STARTTLS and AUTH (`smtp_server.py` beside this crate's manifest), and
//! the certificates for it.

use crate::paths::{free_port, wait_listening};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

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
        wait_listening(port, Duration::from_secs(20), "aiosmtpd", &dir.join("smtp.log"));
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
            .arg(Path::new(env!("CARGO_MANIFEST_DIR")).join("smtp_server.py"))
            .arg(port.to_string())
            .arg(cert)
            .arg(key)
            .arg(&maildir)
            .args([user, password])
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .unwrap();
        wait_listening(port, Duration::from_secs(20), "the SMTP server", &dir.join("smtp.log"));
        Smtp { port, maildir, child }
    }
}

impl Drop for Smtp {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
