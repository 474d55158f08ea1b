//! Reaching one repository of one registry: TLS settings (system roots plus `--cert-dir` or
//! `certs.d` CAs; HTTP only for registries the user marks insecure), credentials, the
//! `oci-client` client, and mapping its errors to ours.

use std::path::{Path, PathBuf};
use std::time::Duration;

use oci_client::client::{Certificate, CertificateEncoding, ClientConfig, ClientProtocol};
use oci_client::errors::OciDistributionError;
use oci_client::secrets::RegistryAuth;
use oci_client::{Client, Reference as OciRef, RegistryOperation};
use skiff_image::reference::Reference;

use crate::auth::{self, Credentials};
use crate::error::{Error, Result};

/// How to talk to registries, from the command line.
#[derive(Debug, Clone, Default)]
pub struct RegistryOptions {
    /// `Some(false)` (podman's `--tls-verify=false`): do not verify certificates, and fall back
    /// to plain HTTP when the registry does not speak TLS. Registries listed in
    /// `$SKIFF_INSECURE_REGISTRIES` (comma-separated `host:port`) are treated the same.
    pub tls_verify: Option<bool>,
    /// A directory of `*.crt` CA certificates; default `/etc/containers/certs.d/<host>` and
    /// `/etc/docker/certs.d/<host>`.
    pub cert_dir: Option<PathBuf>,
    /// Use these instead of stored credentials (`--creds`).
    pub creds: Option<Credentials>,
    /// The credentials file (`--authfile`); default skiff's, then Docker's is read.
    pub auth_file: Option<PathBuf>,
}

impl RegistryOptions {
    /// True when `host` may be reached without verified TLS.
    pub fn insecure(&self, host: &str) -> bool {
        if self.tls_verify == Some(false) {
            return true;
        }
        std::env::var("SKIFF_INSECURE_REGISTRIES").is_ok_and(|v| v.split(',').any(|h| h.trim() == host))
    }

    /// The CA certificates to trust for `host`, besides the system's.
    pub fn ca_certs(&self, host: &str) -> Result<Vec<Vec<u8>>> {
        let dirs: Vec<PathBuf> = match &self.cert_dir {
            Some(d) => vec![d.clone()],
            None => ["/etc/containers/certs.d", "/etc/docker/certs.d"]
                .iter()
                .map(|d| Path::new(d).join(host))
                .collect(),
        };
        let mut out = Vec::new();
        for d in dirs {
            let entries = match std::fs::read_dir(&d) {
                Err(e) if e.kind() == std::io::ErrorKind::NotFound && self.cert_dir.is_none() => continue,
                r => r.map_err(|e| Error::io("reading certificate dir", &d, e))?,
            };
            let mut files: Vec<PathBuf> = entries
                .filter_map(|e| e.ok().map(|e| e.path()))
                .filter(|p| p.extension().is_some_and(|x| x == "crt"))
                .collect();
            files.sort();
            for f in files {
                out.push(std::fs::read(&f).map_err(|e| Error::io("reading certificate", &f, e))?);
            }
        }
        Ok(out)
    }

    /// The credentials for `host`: `--creds`, else the credentials files.
    pub fn credentials(&self, host: &str) -> Result<Option<Credentials>> {
        match &self.creds {
            Some(c) => Ok(Some(c.clone())),
            None => auth::lookup(self.auth_file.as_deref(), host),
        }
    }
}

/// rustls needs one process-wide crypto provider; ours is *ring*.
pub(crate) fn install_crypto() {
    let _ = rustls::crypto::ring::default_provider().install_default();
}

/// The runtime the network side of one command runs on (one worker: this is I/O, and the
/// layer pipelines run on threads of their own).
pub(crate) fn runtime() -> Result<tokio::runtime::Runtime> {
    install_crypto();
    // One malloc arena for all threads: a pull's threads allocate little and seldom, and an
    // arena per thread (glibc's default) costs more resident memory than the contention saves.
    // SAFETY: mallopt only sets a tunable of the allocator.
    #[cfg(target_env = "gnu")]
    unsafe {
        libc::mallopt(libc::M_ARENA_MAX, 1);
    }
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .map_err(|e| Error::Other(format!("starting the network runtime: {e}")))
}

/// One repository of one registry, authenticated for an operation.
pub(crate) struct Remote {
    pub client: Client,
    pub auth: RegistryAuth,
    pub registry: String,
    pub op: RegistryOperation,
    /// The reference the repository is addressed by (its tag is replaced per request).
    pub repo: OciRef,
    has_creds: bool,
}

/// `http` or `https` for an insecure registry: HTTPS when it answers TLS at all (certificate
/// unchecked), else plain HTTP, as Docker does for insecure registries.
async fn insecure_scheme(host: &str) -> &'static str {
    let probe = reqwest::Client::builder()
        .danger_accept_invalid_certs(true)
        .connect_timeout(Duration::from_secs(5))
        .timeout(Duration::from_secs(10))
        .build();
    let Ok(probe) = probe else { return "http" };
    match probe.get(format!("https://{host}/v2/")).send().await {
        Ok(_) => "https",
        Err(e) => {
            tracing::debug!("{host}: no TLS ({e}); using plain HTTP");
            "http"
        }
    }
}

pub(crate) fn oci_ref(r: &Reference) -> OciRef {
    match (&r.tag, &r.digest) {
        (_, Some(d)) => OciRef::with_digest(r.registry.clone(), r.repository.clone(), d.clone()),
        (Some(t), None) => OciRef::with_tag(r.registry.clone(), r.repository.clone(), t.clone()),
        (None, None) => OciRef::with_tag(r.registry.clone(), r.repository.clone(), "latest".into()),
    }
}

impl Remote {
    /// Connects to the repository of `r` for `op`, authenticating up front so that a refused
    /// login is reported as such.
    pub async fn connect(r: &Reference, opts: &RegistryOptions, op: RegistryOperation) -> Result<Remote> {
        let host = r.registry.clone();
        let insecure = opts.insecure(&host);
        let protocol = if insecure && insecure_scheme(&host).await == "http" {
            ClientProtocol::HttpsExcept(vec![host.clone()])
        } else {
            ClientProtocol::Https
        };
        let extra = opts
            .ca_certs(&host)?
            .into_iter()
            .map(|data| Certificate {
                encoding: CertificateEncoding::Pem,
                data,
            })
            .collect();
        let config = ClientConfig {
            protocol,
            accept_invalid_certificates: insecure,
            extra_root_certificates: extra,
            connect_timeout: Some(Duration::from_secs(30)),
            read_timeout: Some(Duration::from_secs(60)),
            max_concurrent_download: 3,
            max_concurrent_upload: 3,
            use_monolithic_push: matches!(op, RegistryOperation::Push),
            user_agent: concat!("skiff/", env!("CARGO_PKG_VERSION")),
            ..Default::default()
        };
        let client = Client::try_from(config).map_err(|e| map_err(&host, false, e))?;
        let creds = opts.credentials(&host)?;
        let has_creds = creds.is_some();
        let auth = match creds {
            Some(c) => RegistryAuth::Basic(c.username, c.password),
            None => RegistryAuth::Anonymous,
        };
        let remote = Remote {
            client,
            auth,
            registry: host,
            op,
            repo: oci_ref(r),
            has_creds,
        };
        remote.authenticate().await?;
        Ok(remote)
    }

    /// (Re)does the token dance for this repository and operation.
    pub async fn authenticate(&self) -> Result<()> {
        match self.client.auth(&self.repo, &self.auth, self.op).await {
            Ok(_) => Ok(()),
            Err(e) => Err(self.err(e)),
        }
    }

    pub fn err(&self, e: OciDistributionError) -> Error {
        map_err(&self.registry, self.has_creds, e)
    }

    /// `self.repo` with another tag or digest.
    pub fn at(&self, tag_or_digest: &str) -> OciRef {
        let (reg, repo) = (self.repo.registry().to_string(), self.repo.repository().to_string());
        if tag_or_digest.starts_with("sha256:") {
            OciRef::with_digest(reg, repo, tag_or_digest.to_string())
        } else {
            OciRef::with_tag(reg, repo, tag_or_digest.to_string())
        }
    }
}

/// True for the error a stale (expired) token gives: worth one fresh token and one retry.
pub(crate) fn is_unauthorized(e: &OciDistributionError) -> bool {
    matches!(e, OciDistributionError::UnauthorizedError { .. })
}

/// A reqwest error with its causes (its own text alone says only "error sending request").
pub(crate) fn chain_text(e: &dyn std::error::Error) -> String {
    chain(e)
}

fn chain(e: &dyn std::error::Error) -> String {
    let mut s = e.to_string();
    let mut src = e.source();
    while let Some(c) = src {
        let t = c.to_string();
        if !s.contains(&t) {
            s.push_str(": ");
            s.push_str(&t);
        }
        src = c.source();
    }
    s
}

pub(crate) fn map_err(registry: &str, has_creds: bool, e: OciDistributionError) -> Error {
    let registry = registry.to_string();
    match e {
        OciDistributionError::UnauthorizedError { .. } => {
            let reason = if has_creds {
                "incorrect username or password"
            } else {
                "authentication required"
            };
            Error::Unauthorized {
                registry,
                reason: reason.into(),
            }
        }
        OciDistributionError::AuthenticationFailure(body) => {
            let reason = serde_json::from_str::<serde_json::Value>(&body)
                .ok()
                .and_then(|v| v.get("details").or(v.get("message")).and_then(|m| m.as_str()).map(str::to_string))
                .unwrap_or(body);
            let reason = if reason.trim().is_empty() {
                "incorrect username or password".to_string()
            } else {
                reason.trim().to_string()
            };
            Error::Unauthorized { registry, reason }
        }
        OciDistributionError::RegistryError { envelope, .. } => {
            let msgs: Vec<String> = envelope.errors.iter().map(|e| format!("{}: {}", code_text(&e.code), e.message)).collect();
            Error::Registry {
                registry,
                message: msgs.join("; "),
            }
        }
        OciDistributionError::ServerError { code, message, url } => Error::Registry {
            registry,
            message: format!("{url}: status {code}: {}", message.trim()),
        },
        OciDistributionError::RequestError(e) => Error::Registry {
            registry,
            message: plain_http_hint(chain(&e)),
        },
        other => Error::Registry {
            registry,
            message: chain(&other),
        },
    }
}

/// `MANIFEST_UNKNOWN` -> `manifest unknown` (Docker's wording of registry error codes).
pub(crate) fn code_text(code: &oci_client::errors::OciErrorCode) -> String {
    let raw = serde_json::to_value(code)
        .ok()
        .and_then(|v| v.as_str().map(str::to_string))
        .unwrap_or_else(|| format!("{code:?}"));
    raw.to_lowercase().replace('_', " ")
}

/// rustls's text for a plain-HTTP answer to a TLS hello, in Docker's words, with the way out.
fn plain_http_hint(msg: String) -> String {
    if msg.contains("InvalidContentType") || msg.contains("corrupt message") {
        format!("{msg}: the server gave an HTTP response to an HTTPS client (a registry without TLS needs --tls-verify=false)")
    } else {
        msg
    }
}
