//! `login`: checks the credentials against the registry the way `docker login` does (`GET
//! /v2/`, then basic auth or the token realm of its challenge), then files them; `logout`.

use std::path::{Path, PathBuf};
use std::time::Duration;

use reqwest::header::WWW_AUTHENTICATE;
use reqwest::StatusCode;

use crate::auth::{self, Credentials};
use crate::connect::{install_crypto, runtime, RegistryOptions};
use crate::error::{Error, Result};

/// A `WWW-Authenticate` challenge: the scheme and its parameters.
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct Challenge {
    pub scheme: String,
    pub params: Vec<(String, String)>,
}

impl Challenge {
    /// Parses `Bearer realm="https://auth",service="registry",scope="a b"`.
    pub fn parse(h: &str) -> Option<Challenge> {
        let h = h.trim();
        let (scheme, rest) = h.split_once(' ').unwrap_or((h, ""));
        let mut params = Vec::new();
        let mut s = rest.trim();
        while !s.is_empty() {
            let (k, v) = s.split_once('=')?;
            let v = v.trim_start();
            let (val, tail) = if let Some(q) = v.strip_prefix('"') {
                let end = q.find('"')?;
                (&q[..end], &q[end + 1..])
            } else {
                v.split_once(',').map_or((v, ""), |(a, b)| (a, b))
            };
            params.push((k.trim().to_lowercase(), val.to_string()));
            s = tail.trim_start().trim_start_matches(',').trim_start();
        }
        Some(Challenge {
            scheme: scheme.to_lowercase(),
            params,
        })
    }

    fn get(&self, k: &str) -> Option<&str> {
        self.params.iter().find(|(a, _)| a == k).map(|(_, v)| v.as_str())
    }
}

/// The host a `login` argument names: `host[:port]`, scheme and path dropped; none means the
/// Docker Hub.
pub fn registry_host(arg: Option<&str>) -> String {
    match arg {
        None | Some("") => "docker.io".into(),
        Some(a) => auth::normalize(a),
    }
}

fn client(host: &str, opts: &RegistryOptions) -> Result<reqwest::Client> {
    install_crypto();
    let mut b = reqwest::Client::builder()
        .connect_timeout(Duration::from_secs(30))
        .timeout(Duration::from_secs(60))
        .danger_accept_invalid_certs(opts.insecure(host));
    let mut certs = Vec::new();
    for pem in opts.ca_certs(host)? {
        certs.push(reqwest::Certificate::from_pem(&pem).map_err(|e| Error::Other(format!("CA certificate for {host}: {e}")))?);
    }
    if !certs.is_empty() {
        b = b.tls_certs_merge(certs);
    }
    b.build().map_err(|e| Error::Other(format!("HTTP client: {e}")))
}

fn api_host(host: &str) -> &str {
    if host == "docker.io" {
        "registry-1.docker.io"
    } else {
        host
    }
}

async fn check(host: &str, creds: &Credentials, opts: &RegistryOptions) -> Result<()> {
    let c = client(host, opts)?;
    let net = |e: reqwest::Error| Error::Registry {
        registry: host.to_string(),
        message: crate::connect::chain_text(&e),
    };
    let mut url = format!("https://{}/v2/", api_host(host));
    let first = match c.get(&url).send().await {
        Ok(r) => r,
        Err(e) if opts.insecure(host) => {
            tracing::debug!("{host}: {e}; trying plain HTTP");
            url = format!("http://{}/v2/", api_host(host));
            c.get(&url).send().await.map_err(net)?
        }
        Err(e) => return Err(net(e)),
    };
    if first.status() != StatusCode::UNAUTHORIZED {
        return Ok(());
    }
    let unauthorized = || Error::Unauthorized {
        registry: host.to_string(),
        reason: "incorrect username or password".into(),
    };
    let challenge = first.headers().get(WWW_AUTHENTICATE).and_then(|h| h.to_str().ok()).and_then(Challenge::parse);
    let ok = match challenge {
        Some(ch) if ch.scheme == "bearer" => {
            let realm = ch.get("realm").ok_or_else(|| Error::Registry {
                registry: host.into(),
                message: "bearer challenge without a realm".into(),
            })?;
            let mut q = vec![("account", creds.username.as_str())];
            if let Some(s) = ch.get("service") {
                q.push(("service", s));
            }
            let r = c
                .get(realm)
                .query(&q)
                .basic_auth(&creds.username, Some(&creds.password))
                .send()
                .await
                .map_err(net)?;
            r.status().is_success()
        }
        _ => c
            .get(&url)
            .basic_auth(&creds.username, Some(&creds.password))
            .send()
            .await
            .map_err(net)?
            .status()
            .is_success(),
    };
    if ok {
        Ok(())
    } else {
        Err(unauthorized())
    }
}

/// Checks `creds` against `registry` and stores them (in `opts.auth_file` or skiff's file);
/// returns the file written.
pub fn login(registry: &str, creds: &Credentials, opts: &RegistryOptions) -> Result<PathBuf> {
    let host = registry_host(Some(registry));
    runtime()?.block_on(check(&host, creds, opts))?;
    auth::store(opts.auth_file.as_deref(), &host, creds)
}

/// Forgets the credentials of `registry`; false when there were none.
pub fn logout(registry: &str, file: Option<&Path>) -> Result<bool> {
    auth::remove(file, &registry_host(Some(registry)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn challenges_parse() {
        let c = Challenge::parse(r#"Bearer realm="http://127.0.0.1:5001/token",service="testreg",scope="repository:a/b:pull,push""#).unwrap();
        assert_eq!(c.scheme, "bearer");
        assert_eq!(c.get("realm"), Some("http://127.0.0.1:5001/token"));
        assert_eq!(c.get("scope"), Some("repository:a/b:pull,push"));
        let b = Challenge::parse(r#"Basic realm="Registry Realm""#).unwrap();
        assert_eq!((b.scheme.as_str(), b.get("realm")), ("basic", Some("Registry Realm")));
        assert_eq!(registry_host(Some("https://127.0.0.1:5000/v2/")), "127.0.0.1:5000");
        assert_eq!(registry_host(None), "docker.io");
    }
}
