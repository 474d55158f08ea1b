//! curl as a test client.
#![allow(dead_code)]

use std::process::{Command, Stdio};

pub struct Curl {
    /// curl's exit code (0, 18 partial file, 28 timeout, 60 bad certificate, ...).
    pub exit: i32,
    /// The HTTP status of the last response (0 when none).
    pub status: u16,
    pub body: Vec<u8>,
    pub headers: String,
    pub stderr: String,
}

impl Curl {
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    pub fn header(&self, name: &str) -> Option<String> {
        self.headers
            .lines()
            .filter_map(|l| l.split_once(':'))
            .filter(|(k, _)| k.trim().eq_ignore_ascii_case(name))
            .map(|(_, v)| v.trim().to_string())
            .next_back()
    }
}

/// Run `curl -sS` with `args`, collecting status, headers and body.
pub fn curl(args: &[&str]) -> Curl {
    let dir = tempfile::tempdir().expect("curl tempdir");
    let (body, headers) = (dir.path().join("body"), dir.path().join("headers"));
    let out = Command::new("curl")
        .args(["-sS", "--noproxy", "*", "-o"])
        .arg(&body)
        .arg("-D")
        .arg(&headers)
        .args(["-w", "%{http_code}"])
        .args(args)
        .stdin(Stdio::null())
        .output()
        .expect("run curl");
    Curl {
        exit: out.status.code().unwrap_or(-1),
        status: String::from_utf8_lossy(&out.stdout).trim().parse().unwrap_or(0),
        body: std::fs::read(&body).unwrap_or_default(),
        headers: std::fs::read_to_string(&headers).unwrap_or_default(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

/// `skopeo ARGS`, returning (success, stdout, stderr).
pub fn skopeo(args: &[&str]) -> (bool, String, String) {
    let out = Command::new("skopeo").args(args).stdin(Stdio::null()).output().expect("run skopeo");
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

pub fn sha256_hex(data: &[u8]) -> String {
    testreg::util::sha256_hex(data)
}
