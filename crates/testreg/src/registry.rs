//! A real registry: Debian's `docker-registry` (distribution 2.8) on a free 127.0.0.1 port, with
//! filesystem storage in a temporary directory, no auth, htpasswd basic auth or bearer tokens from
//! a [`TokenServer`], over HTTP or TLS from a CA made for it.

use crate::http::Head;
use crate::pki::{make_tls, TlsFiles};
use crate::token::{TokenConfig, TokenServer, ISSUER, SERVICE};
use crate::util::{free_port, kill_child, run, spawn_tied};
use std::io::{BufReader, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub const REGISTRY_BIN: &str = "/usr/bin/docker-registry";

#[derive(Clone, Debug, Default)]
pub enum Auth {
    #[default]
    None,
    /// Basic auth checked against a bcrypt htpasswd file.
    Htpasswd { user: String, pass: String },
    /// Bearer tokens from a token server started with the registry.
    Token(TokenConfig),
}

#[derive(Clone, Debug, Default)]
pub struct RegistryOpts {
    pub auth: Auth,
    pub tls: bool,
}

impl RegistryOpts {
    pub fn htpasswd(user: &str, pass: &str) -> Self {
        RegistryOpts {
            auth: Auth::Htpasswd {
                user: user.into(),
                pass: pass.into(),
            },
            tls: false,
        }
    }

    pub fn token(config: TokenConfig) -> Self {
        RegistryOpts {
            auth: Auth::Token(config),
            tls: false,
        }
    }
}

pub struct Registry {
    child: Child,
    port: u16,
    auth: Auth,
    tls: Option<TlsFiles>,
    token: Option<TokenServer>,
    storage: PathBuf,
    log: PathBuf,
    dir: tempfile::TempDir,
}

impl Registry {
    /// Start a registry and wait until `/v2/` answers (up to 15 s; a few tries on a port race).
    pub fn start(opts: RegistryOpts) -> Registry {
        let dir = tempfile::Builder::new().prefix("testreg.").tempdir().expect("registry tempdir");
        let storage = dir.path().join("storage");
        std::fs::create_dir_all(&storage).expect("create storage dir");
        let tls = opts.tls.then(|| make_tls(&dir.path().join("tls")));
        let token = match &opts.auth {
            Auth::Token(c) => Some(TokenServer::start(c.clone())),
            _ => None,
        };
        let auth_yaml = match &opts.auth {
            Auth::None => String::new(),
            Auth::Htpasswd { user, pass } => {
                let line = run(Command::new("htpasswd").args(["-Bbn", user, pass])).stdout;
                let path = dir.path().join("htpasswd");
                std::fs::write(&path, line).expect("write htpasswd");
                format!("auth:\n  htpasswd:\n    realm: testreg\n    path: {}\n", path.display())
            }
            Auth::Token(_) => {
                let t = token.as_ref().expect("token server");
                format!(
                    "auth:\n  token:\n    realm: {}\n    service: {SERVICE}\n    issuer: {ISSUER}\n    rootcertbundle: {}\n",
                    t.realm(),
                    t.cert_pem_path().display()
                )
            }
        };
        let tls_yaml = tls.as_ref().map_or(String::new(), |t| {
            format!("  tls:\n    certificate: {}\n    key: {}\n", t.cert_pem.display(), t.key_pem.display())
        });
        let log = dir.path().join("registry.log");
        let mut last_err = String::new();
        for _ in 0..3 {
            let port = free_port();
            let config = format!(
                "version: 0.1\nlog:\n  level: info\n  formatter: text\nstorage:\n  filesystem:\n    rootdirectory: {}\n  delete:\n    enabled: true\n  \
                 maintenance:\n    uploadpurging:\n      enabled: false\nhttp:\n  addr: 127.0.0.1:{port}\n  secret: testreg-secret\n{tls_yaml}{auth_yaml}",
                storage.display()
            );
            let config_path = dir.path().join("config.yml");
            std::fs::write(&config_path, config).expect("write registry config");
            let logf = std::fs::File::create(&log).expect("create registry log");
            let mut cmd = Command::new(REGISTRY_BIN);
            cmd.arg("serve")
                .arg(&config_path)
                .stdin(Stdio::null())
                .stdout(logf.try_clone().expect("dup log"))
                .stderr(logf);
            for (k, _) in std::env::vars().filter(|(k, _)| k.starts_with("REGISTRY_")) {
                cmd.env_remove(k);
            }
            let mut child = spawn_tied(cmd);
            match wait_ready(&mut child, port, tls.is_some()) {
                Ok(()) => {
                    return Registry {
                        child,
                        port,
                        auth: opts.auth,
                        tls,
                        token,
                        storage,
                        log,
                        dir,
                    }
                }
                Err(e) => {
                    kill_child(&mut child);
                    last_err = format!("{e}\n{}", std::fs::read_to_string(&log).unwrap_or_default());
                }
            }
        }
        panic!("docker-registry did not start: {last_err}");
    }

    /// "127.0.0.1:PORT"
    pub fn host(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// "http://127.0.0.1:PORT" or "https://127.0.0.1:PORT"
    pub fn url(&self) -> String {
        format!("{}://{}", if self.tls.is_some() { "https" } else { "http" }, self.host())
    }

    pub fn is_tls(&self) -> bool {
        self.tls.is_some()
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    pub fn auth(&self) -> &Auth {
        &self.auth
    }

    /// The user and password that this registry accepts, if it wants any.
    pub fn creds(&self) -> Option<(String, String)> {
        match &self.auth {
            Auth::None => None,
            Auth::Htpasswd { user, pass } => Some((user.clone(), pass.clone())),
            Auth::Token(_) => self.token.as_ref().map(|t| t.config()).map(|c| (c.user, c.pass)),
        }
    }

    /// The token server of an `Auth::Token` registry.
    pub fn token_server(&self) -> Option<&TokenServer> {
        self.token.as_ref()
    }

    /// The CA certificate (PEM) of a TLS registry; panics for a plain one.
    pub fn ca_pem_path(&self) -> &Path {
        &self.tls.as_ref().expect("ca_pem_path: this registry has no TLS").ca_pem
    }

    /// A directory holding `ca.crt` (the certs.d layout); panics for a plain registry.
    pub fn cert_dir(&self) -> &Path {
        &self.tls.as_ref().expect("cert_dir: this registry has no TLS").cert_dir
    }

    /// The registry's `rootdirectory`.
    pub fn storage_dir(&self) -> &Path {
        &self.storage
    }

    /// The file holding a blob's bytes: `docker/registry/v2/blobs/sha256/<xx>/<hex>/data`.
    pub fn blob_path(&self, digest: &str) -> PathBuf {
        let hex = digest.strip_prefix("sha256:").unwrap_or(digest);
        self.storage.join("docker/registry/v2/blobs/sha256").join(&hex[..2]).join(hex).join("data")
    }

    /// The registry's output so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// The temporary directory holding config, storage, log and certificates.
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }
}

impl Drop for Registry {
    fn drop(&mut self) {
        kill_child(&mut self.child);
    }
}

fn wait_ready(child: &mut Child, port: u16, tls: bool) -> Result<(), String> {
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        if let Some(st) = child.try_wait().map_err(|e| e.to_string())? {
            return Err(format!("docker-registry exited: {st}"));
        }
        if Instant::now() > deadline {
            return Err("docker-registry did not answer on /v2/ within 15 s".into());
        }
        if let Ok(s) = TcpStream::connect(("127.0.0.1", port)) {
            // Plain: /v2/ answers 200 or 401. TLS: Go answers a plain-HTTP request with 400.
            let want: &[u16] = if tls { &[400] } else { &[200, 401] };
            if probe_v2(s).is_some_and(|st| want.contains(&st)) {
                return Ok(());
            }
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn probe_v2(mut s: TcpStream) -> Option<u16> {
    s.set_read_timeout(Some(Duration::from_secs(2))).ok()?;
    s.write_all(b"GET /v2/ HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n").ok()?;
    Head::read(&mut BufReader::new(s)).ok()?.map(|h| h.status())
}
