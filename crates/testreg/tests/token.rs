//! docker-registry behind bearer tokens from testreg's token server.

mod common;

use common::{curl, sha256_hex, skopeo};
use testreg::{push_image, sample_image, KeyRef, Registry, RegistryOpts, TokenConfig, TokenServer};

fn token_for(reg: &Registry, creds: Option<&str>, scope: &str) -> (u16, serde_json::Value) {
    let t = reg.token_server().unwrap();
    let url = format!("{}?service=testreg&scope={scope}", t.realm());
    let mut args = vec![url.as_str()];
    if let Some(c) = creds {
        args = vec!["-u", c, url.as_str()];
    }
    let got = curl(&args);
    (got.status, serde_json::from_slice(&got.body).unwrap_or_default())
}

fn tags_with(reg: &Registry, token: &str, repo: &str) -> u16 {
    curl(&["-H", &format!("Authorization: Bearer {token}"), &format!("{}/v2/{repo}/tags/list", reg.url())]).status
}

#[test]
fn token_auth_kid() {
    let reg = Registry::start(RegistryOpts::token(TokenConfig::default()));
    let ts = reg.token_server().unwrap();

    // The registry challenges with our realm and service.
    let challenge = curl(&[&format!("{}/v2/", reg.url())]);
    assert_eq!(challenge.status, 401);
    let www = challenge.header("www-authenticate").unwrap_or_default();
    assert!(
        www.starts_with("Bearer ") && www.contains(&ts.realm()) && www.contains("service=\"testreg\""),
        "{www}"
    );

    // skopeo goes through the token flow with the right credentials.
    let src = tempfile::tempdir().unwrap();
    let img = sample_image(src.path(), "v1");
    assert_eq!(push_image(&reg, src.path(), "team/app:v1"), img.manifest.digest);
    assert!(ts.tokens_issued() > 0);
    assert!(ts
        .requests()
        .iter()
        .any(|r| r.user.as_deref() == Some("testuser") && r.scopes.iter().any(|s| s == "repository:team/app:pull,push")));
    let target = format!("docker://{}/team/app:v1", reg.host());
    let (ok, raw, err) = skopeo(&["inspect", "--raw", "--tls-verify=false", "--creds", "testuser:testpass", &target]);
    assert!(ok, "{err}");
    assert_eq!(format!("sha256:{}", sha256_hex(raw.as_bytes())), img.manifest.digest);

    // A wrong password is refused by the token server, so skopeo fails.
    let before = ts.tokens_issued();
    let (ok, _, _) = skopeo(&["inspect", "--raw", "--tls-verify=false", "--creds", "testuser:bad", &target]);
    assert!(!ok, "wrong password must fail");
    assert_eq!(ts.tokens_issued(), before);
    assert!(ts.requests().iter().any(|r| r.had_credentials && r.user.is_none() && r.status == 401));

    // A token from the endpoint works; anonymous gets none unless anonymous pull is allowed.
    let (st, body) = token_for(&reg, Some("testuser:testpass"), "repository:team/app:pull");
    assert_eq!(st, 200);
    assert_eq!(body["expires_in"], 300);
    assert_eq!(body["token"], body["access_token"]);
    assert!(body["issued_at"].as_str().unwrap().ends_with('Z'));
    assert_eq!(tags_with(&reg, body["token"].as_str().unwrap(), "team/app"), 200);
    assert_eq!(
        tags_with(&reg, body["token"].as_str().unwrap(), "other/repo"),
        401,
        "the token is scoped to team/app"
    );
    assert_eq!(token_for(&reg, None, "repository:team/app:pull").0, 401);
    ts.update(|c| c.allow_anonymous_pull = true);
    let (st, anon) = token_for(&reg, None, "repository:team/app:pull,push");
    assert_eq!(st, 200);
    let anon = anon["token"].as_str().unwrap().to_string();
    assert_eq!(tags_with(&reg, &anon, "team/app"), 200, "anonymous pull");
    let upload = curl(&[
        "-X",
        "POST",
        "-H",
        &format!("Authorization: Bearer {anon}"),
        &format!("{}/v2/team/app/blobs/uploads/", reg.url()),
    ]);
    assert_eq!(upload.status, 401, "anonymous tokens carry no push");
    ts.update(|c| c.refuse_wrong_password = false);
    let (ok, _, err) = skopeo(&["inspect", "--raw", "--tls-verify=false", "--creds", "testuser:bad", &target]);
    assert!(ok, "a wrong password treated as anonymous may pull: {err}");

    // Expired JWT while the response still advertises expires_in=300: the registry says 401.
    ts.update(|c| {
        c.jwt_lifetime_secs = -300;
        c.expires_in_secs = 300;
    });
    let (st, body) = token_for(&reg, Some("testuser:testpass"), "repository:team/app:pull");
    assert_eq!((st, body["expires_in"].as_i64()), (200, Some(300)));
    assert_eq!(tags_with(&reg, body["token"].as_str().unwrap(), "team/app"), 401, "expired token");
    let fresh = ts.mint(Some("testuser"), &["repository:team/app:pull"], 300);
    assert_eq!(tags_with(&reg, &fresh, "team/app"), 200, "control: the same token with a live exp passes");
}

#[test]
fn token_auth_x5c_and_bad_signature() {
    let reg = Registry::start(RegistryOpts::token(TokenConfig {
        key_ref: KeyRef::X5c,
        ..Default::default()
    }));
    let ts = reg.token_server().unwrap();
    let src = tempfile::tempdir().unwrap();
    let img = sample_image(src.path(), "v1");
    assert_eq!(push_image(&reg, src.path(), "x5c/app:v1"), img.manifest.digest);
    assert!(ts.tokens_issued() > 0);

    let token = ts.mint(Some("testuser"), &["repository:x5c/app:pull"], 300);
    let header: serde_json::Value = serde_json::from_slice(&testreg::util::base64_decode(token.split('.').next().unwrap()).unwrap()).unwrap();
    assert!(header["x5c"].is_array() && header.get("kid").is_none(), "{header}");
    assert_eq!(tags_with(&reg, &token, "x5c/app"), 200);

    // One changed signature character: the registry must reject it.
    let mut bad = token.clone().into_bytes();
    let i = bad.len() - 10;
    bad[i] = if bad[i] == b'A' { b'B' } else { b'A' };
    assert_eq!(tags_with(&reg, std::str::from_utf8(&bad).unwrap(), "x5c/app"), 401);
    // kid mode against the same registry, and a token signed by another server's key.
    ts.update(|c| c.key_ref = KeyRef::Kid);
    let kid_token = ts.mint(Some("testuser"), &["repository:x5c/app:pull"], 300);
    assert_eq!(tags_with(&reg, &kid_token, "x5c/app"), 200, "kid of the same key works too");
    let stranger = TokenServer::start(TokenConfig::default());
    assert_ne!(stranger.kid(), ts.kid());
    assert_eq!(
        tags_with(&reg, &stranger.mint(Some("testuser"), &["repository:x5c/app:pull"], 300), "x5c/app"),
        401,
        "untrusted kid"
    );
    stranger.update(|c| c.key_ref = KeyRef::X5c);
    assert_eq!(
        tags_with(&reg, &stranger.mint(Some("testuser"), &["repository:x5c/app:pull"], 300), "x5c/app"),
        401,
        "untrusted x5c chain"
    );
}
