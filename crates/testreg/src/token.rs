//! A Docker token server (the `auth.token` flow of distribution) on 127.0.0.1, one thread per
//! connection: `GET /token?service=..&scope=..` with optional Basic auth answers a JWT signed RS256
//! with a key made by openssl; `POST /token` (OAuth2 password grant) works too.

use crate::http::{read_request_body, respond, split_query, Head};
use crate::pki::{make_signing_key, sign_rs256, SigningKey};
use crate::util::{base64_decode, base64url, now_secs, rfc3339};
use serde_json::json;
use std::io::BufReader;
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;

/// The `service` and `iss` the registry is configured to trust.
pub const SERVICE: &str = "testreg";
pub const ISSUER: &str = "testreg-issuer";

/// How the JWT header names its signing key; distribution 2.8 accepts either.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum KeyRef {
    /// `kid`: the libtrust key id of the public key in the registry's `rootcertbundle`.
    Kid,
    /// `x5c`: the signing certificate itself, which the registry chains to its `rootcertbundle`.
    X5c,
}

/// The token server's behaviour; change it at run time with [`TokenServer::update`].
#[derive(Clone, Debug)]
pub struct TokenConfig {
    pub user: String,
    pub pass: String,
    /// Without credentials, grant `pull` (only) instead of answering 401.
    pub allow_anonymous_pull: bool,
    /// `exp` = now + this. The registry allows 60 s of clock skew, so an already expired token
    /// needs a value below -60 (e.g. -300).
    pub jwt_lifetime_secs: i64,
    /// The `expires_in` the response advertises, independent of the JWT's real `exp`.
    pub expires_in_secs: i64,
    /// A wrong password gets 401 (true) or is treated as anonymous (false).
    pub refuse_wrong_password: bool,
    pub key_ref: KeyRef,
    /// The first this many tokens issued are already expired (`exp` 300 s in the past) while
    /// `expires_in` still says they are good: a client must take the registry's 401 as a cue
    /// to fetch a new one.
    pub expired_first: usize,
}

impl Default for TokenConfig {
    fn default() -> Self {
        TokenConfig {
            user: "testuser".into(),
            pass: "testpass".into(),
            allow_anonymous_pull: false,
            jwt_lifetime_secs: 300,
            expires_in_secs: 300,
            refuse_wrong_password: true,
            key_ref: KeyRef::Kid,
            expired_first: 0,
        }
    }
}

/// One request the token server answered.
#[derive(Clone, Debug)]
pub struct TokenRequest {
    pub method: String,
    /// The user whose credentials were right, if any.
    pub user: Option<String>,
    /// Whether the request carried credentials at all.
    pub had_credentials: bool,
    pub scopes: Vec<String>,
    pub status: u16,
}

struct State {
    config: TokenConfig,
    issued: usize,
    requests: Vec<TokenRequest>,
}

pub struct TokenServer {
    addr: SocketAddr,
    key: SigningKey,
    state: Arc<Mutex<State>>,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
    _dir: tempfile::TempDir,
}

impl TokenServer {
    pub fn start(config: TokenConfig) -> TokenServer {
        let dir = tempfile::Builder::new().prefix("testreg-token.").tempdir().expect("token tempdir");
        let key = make_signing_key(dir.path());
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind token server");
        let addr = listener.local_addr().expect("token addr");
        let state = Arc::new(Mutex::new(State {
            config,
            issued: 0,
            requests: Vec::new(),
        }));
        let stop = Arc::new(AtomicBool::new(false));
        let (st, stp, k) = (state.clone(), stop.clone(), key.clone());
        let thread = std::thread::spawn(move || {
            for conn in listener.incoming() {
                if stp.load(Ordering::SeqCst) {
                    break;
                }
                let Ok(conn) = conn else { continue };
                let (st, k) = (st.clone(), k.clone());
                std::thread::spawn(move || {
                    let _ = handle(conn, &st, &k);
                });
            }
        });
        TokenServer {
            addr,
            key,
            state,
            stop,
            thread: Some(thread),
            _dir: dir,
        }
    }

    /// `http://127.0.0.1:PORT/token`
    pub fn realm(&self) -> String {
        format!("http://{}/token", self.addr)
    }

    /// The certificate of the signing key: the registry's `rootcertbundle`.
    pub fn cert_pem_path(&self) -> &std::path::Path {
        &self.key.cert_pem
    }

    /// The libtrust key id of the signing key.
    pub fn kid(&self) -> &str {
        &self.key.kid
    }

    pub fn config(&self) -> TokenConfig {
        self.state.lock().expect("token state").config.clone()
    }

    /// Change the behaviour for the following requests.
    pub fn update(&self, f: impl FnOnce(&mut TokenConfig)) {
        f(&mut self.state.lock().expect("token state").config);
    }

    /// How many tokens were issued so far.
    pub fn tokens_issued(&self) -> usize {
        self.state.lock().expect("token state").issued
    }

    pub fn requests(&self) -> Vec<TokenRequest> {
        self.state.lock().expect("token state").requests.clone()
    }

    /// Make a token directly (not counted): `scopes` like "repository:foo:pull,push".
    pub fn mint(&self, user: Option<&str>, scopes: &[&str], lifetime_secs: i64) -> String {
        let access: Vec<_> = scopes
            .iter()
            .filter_map(|s| parse_scope(s))
            .map(|(t, n, a)| json!({"type": t, "name": n, "actions": a}))
            .collect();
        let key_ref = self.config().key_ref;
        jwt(&self.key, key_ref, user.unwrap_or(""), SERVICE, lifetime_secs, access)
    }
}

impl Drop for TokenServer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        let _ = TcpStream::connect(self.addr);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// "type:name:actions" → (type, name, actions); the name may itself hold ':' (host:port/repo).
fn parse_scope(scope: &str) -> Option<(String, String, Vec<String>)> {
    let (typ, rest) = scope.split_once(':')?;
    let (name, actions) = rest.rsplit_once(':')?;
    Some((
        typ.to_string(),
        name.to_string(),
        actions.split(',').filter(|a| !a.is_empty()).map(str::to_string).collect(),
    ))
}

fn jwt(key: &SigningKey, key_ref: KeyRef, sub: &str, aud: &str, lifetime: i64, access: Vec<serde_json::Value>) -> String {
    let header = match key_ref {
        KeyRef::Kid => json!({"typ": "JWT", "alg": "RS256", "kid": key.kid}),
        KeyRef::X5c => json!({"typ": "JWT", "alg": "RS256", "x5c": [key.cert_b64]}),
    };
    let now = now_secs();
    let claims = json!({
        "iss": ISSUER, "sub": sub, "aud": aud, "exp": now + lifetime, "nbf": now - 10, "iat": now,
        "jti": format!("{now}-{}", crate::util::sha256_hex(format!("{sub}{now}{:?}", std::thread::current().id()).as_bytes())),
        "access": access,
    });
    let signing_input = format!("{}.{}", base64url(header.to_string().as_bytes()), base64url(claims.to_string().as_bytes()));
    let sig = sign_rs256(&key.key_pem, signing_input.as_bytes());
    format!("{signing_input}.{}", base64url(&sig))
}

fn handle(conn: TcpStream, state: &Mutex<State>, key: &SigningKey) -> std::io::Result<()> {
    conn.set_read_timeout(Some(std::time::Duration::from_secs(10)))?;
    let mut r = BufReader::new(conn.try_clone()?);
    let mut w = conn;
    let Some(head) = Head::read(&mut r)? else { return Ok(()) };
    let (method, target) = head.request_line();
    let body = read_request_body(&head, &mut r)?;
    let (path, mut params) = split_query(&target);
    let mut creds = None;
    if method == "POST" {
        // OAuth2 password grant: username/password/scope (space separated) in a form body.
        let (_, form) = split_query(&format!("?{}", String::from_utf8_lossy(&body)));
        let get = |k: &str| form.iter().find(|(n, _)| n == k).map(|(_, v)| v.clone());
        if let (Some(u), Some(p)) = (get("username"), get("password")) {
            creds = Some((u, p));
        }
        for s in get("scope").unwrap_or_default().split_whitespace() {
            params.push(("scope".into(), s.to_string()));
        }
        params.extend(form.into_iter().filter(|(k, _)| k == "service"));
    }
    if let Some(b) = head.get("authorization").and_then(|v| v.strip_prefix("Basic ")) {
        let dec = String::from_utf8_lossy(&base64_decode(b).unwrap_or_default()).into_owned();
        let (u, p) = dec.split_once(':').unwrap_or((&dec, ""));
        creds = Some((u.to_string(), p.to_string()));
    }
    let scopes: Vec<String> = params
        .iter()
        .filter(|(k, _)| k == "scope")
        .flat_map(|(_, v)| v.split_whitespace().map(str::to_string))
        .collect();
    let service = params
        .iter()
        .find(|(k, _)| k == "service")
        .map(|(_, v)| v.clone())
        .unwrap_or_else(|| SERVICE.to_string());

    let config = state.lock().expect("token state").config.clone();
    let user = creds.as_ref().filter(|(u, p)| *u == config.user && *p == config.pass).map(|(u, _)| u.clone());
    let wrong = creds.is_some() && user.is_none();
    let status = if path != "/token" {
        404
    } else if (wrong && config.refuse_wrong_password) || (user.is_none() && !config.allow_anonymous_pull) {
        401
    } else {
        200
    };
    let issued_before;
    {
        let mut st = state.lock().expect("token state");
        issued_before = st.issued;
        st.requests.push(TokenRequest {
            method,
            user: user.clone(),
            had_credentials: creds.is_some(),
            scopes: scopes.clone(),
            status,
        });
        if status == 200 {
            st.issued += 1;
        }
    }
    match status {
        404 => respond(&mut w, 404, "Not Found", &[], b"not found\n"),
        401 => {
            let body = json!({"details": "incorrect username or password"}).to_string();
            respond(
                &mut w,
                401,
                "Unauthorized",
                &[("Content-Type", "application/json"), ("WWW-Authenticate", "Basic realm=\"testreg\"")],
                body.as_bytes(),
            )
        }
        _ => {
            let access: Vec<_> = scopes
                .iter()
                .filter_map(|s| parse_scope(s))
                .map(|(t, n, a)| {
                    let a: Vec<String> = if user.is_some() { a } else { a.into_iter().filter(|x| x == "pull").collect() };
                    json!({"type": t, "name": n, "actions": a})
                })
                .collect();
            let lifetime = if issued_before < config.expired_first {
                -300
            } else {
                config.jwt_lifetime_secs
            };
            let token = jwt(key, config.key_ref, user.as_deref().unwrap_or(""), &service, lifetime, access);
            let body = json!({"token": token, "access_token": token, "expires_in": config.expires_in_secs, "issued_at": rfc3339(now_secs())});
            respond(&mut w, 200, "OK", &[("Content-Type", "application/json")], body.to_string().as_bytes())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::parse_scope;

    #[test]
    fn scopes() {
        assert_eq!(parse_scope("repository:a/b:pull,push").unwrap().2, vec!["pull", "push"]);
        assert_eq!(parse_scope("repository:h:5000/a:pull").unwrap().1, "h:5000/a");
        assert_eq!(parse_scope("registry:catalog:*").unwrap().2, vec!["*"]);
        assert!(parse_scope("junk").is_none());
    }
}
