//! The fault-injecting proxy in front of a plain registry, observed with curl and skopeo.

mod common;

use common::{curl, sha256_hex, skopeo};
use std::time::{Duration, Instant};
use testreg::{push_image, sample_image, FaultProxy, Faults, Image, Listener, Registry, RegistryOpts};

struct Setup {
    reg: Registry,
    img: Image,
    _src: tempfile::TempDir,
}

fn setup(opts: RegistryOpts) -> Setup {
    let reg = Registry::start(opts);
    let src = tempfile::tempdir().unwrap();
    let img = sample_image(src.path(), "v1");
    push_image(&reg, src.path(), "sample:v1");
    Setup { reg, img, _src: src }
}

impl Setup {
    /// The 64 KiB layer: (digest, bytes).
    fn big(&self) -> (String, Vec<u8>) {
        let d = self.img.layers[2].digest.clone();
        let bytes = std::fs::read(self.img.layout.join("blobs/sha256").join(d.trim_start_matches("sha256:"))).unwrap();
        (d, bytes)
    }
}

fn blob_url(p: &FaultProxy, digest: &str) -> String {
    format!("http://{}/v2/sample/blobs/{digest}", p.host())
}

#[test]
fn forwards_ranges_and_pushes() {
    let s = setup(RegistryOpts::default());
    let p = FaultProxy::start(&s.reg.host(), Faults::default());
    let (digest, bytes) = s.big();
    let full = curl(&[&blob_url(&p, &digest)]);
    assert_eq!((full.exit, full.status), (0, 200));
    assert_eq!(full.body, bytes);
    let part = curl(&["-r", "100-199", &blob_url(&p, &digest)]);
    assert_eq!(part.status, 206);
    assert_eq!(part.body, &bytes[100..200]);
    let log = p.requests();
    let r = log.iter().find(|r| r.range.is_some()).expect("ranged request logged");
    assert_eq!(
        (r.range.as_deref(), r.status, r.bytes_sent, r.authorization),
        (Some("bytes=100-199"), 206, 100, false)
    );
    assert!(log.iter().any(|r| r.status == 200 && r.bytes_sent == bytes.len() as u64 && r.method == "GET"));

    // Pushes (POST, chunked PATCH, PUT) go through the proxy too, and read back through it.
    let src = tempfile::tempdir().unwrap();
    let img = sample_image(src.path(), "v1");
    let (ok, _, err) = skopeo(&[
        "copy",
        "-q",
        "--dest-tls-verify=false",
        &format!("oci:{}:v1", src.path().display()),
        &format!("docker://{}/viaproxy:v1", p.host()),
    ]);
    assert!(ok, "push through the proxy: {err}");
    assert!(p.requests().iter().any(|r| r.method == "PATCH" && r.status == 202));
    let (ok, raw, err) = skopeo(&["inspect", "--raw", "--tls-verify=false", &format!("docker://{}/viaproxy:v1", p.host())]);
    assert!(ok, "{err}");
    assert_eq!(format!("sha256:{}", sha256_hex(raw.as_bytes())), img.manifest.digest);
}

#[test]
fn drops_connection_after_n_bytes() {
    let s = setup(RegistryOpts::default());
    let (digest, bytes) = s.big();
    let p = FaultProxy::start(
        &s.reg.host(),
        Faults {
            drop_after_bytes: Some(1000),
            drop_times: Some(1),
            ..Default::default()
        },
    );
    let cut = curl(&[&blob_url(&p, &digest)]);
    assert_eq!(cut.exit, 18, "partial transfer: {}", cut.stderr);
    assert_eq!(cut.body, &bytes[..1000]);
    assert_eq!(p.drops_done(), 1);
    // Resume with a range: the first K responses only are cut.
    let rest = curl(&["-r", "1000-", &blob_url(&p, &digest)]);
    assert_eq!((rest.exit, rest.status), (0, 206));
    assert_eq!([cut.body, rest.body].concat(), bytes);
    assert_eq!(p.requests().last().unwrap().faults, Vec::<&str>::new());

    p.set_faults(Faults {
        drop_after_bytes: Some(10),
        drop_times: None,
        ..Default::default()
    });
    for _ in 0..2 {
        let c = curl(&[&blob_url(&p, &digest)]);
        assert_eq!((c.exit, c.body.len()), (18, 10));
    }
    assert_eq!(p.drops_done(), 2);
    assert!(p.requests().iter().rev().take(2).all(|r| r.faults == ["drop"] && r.bytes_sent == 10));
}

#[test]
fn throttles_so_a_client_can_be_killed_midway() {
    let s = setup(RegistryOpts::default());
    let (digest, bytes) = s.big();
    let p = FaultProxy::start(
        &s.reg.host(),
        Faults {
            throttle_bytes_per_sec: Some(16 * 1024),
            ..Default::default()
        },
    );
    let t = Instant::now();
    let slow = curl(&["--max-time", "1", &blob_url(&p, &digest)]);
    assert_eq!(slow.exit, 28, "timed out: {}", slow.stderr);
    assert!(t.elapsed() < Duration::from_secs(3));
    assert!(
        !slow.body.is_empty() && slow.body.len() < 24 * 1024,
        "{} bytes in 1 s at 16 KiB/s",
        slow.body.len()
    );

    p.clear_log();
    let out = tempfile::tempdir().unwrap();
    let part = out.path().join("part");
    let mut child = std::process::Command::new("curl")
        .args(["-sS", "-o"])
        .arg(&part)
        .arg(blob_url(&p, &digest))
        .spawn()
        .unwrap();
    // Kill it once bytes have arrived.
    let deadline = Instant::now() + Duration::from_secs(10);
    while std::fs::metadata(&part).map_or(0, |m| m.len()) == 0 && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
    }
    child.kill().unwrap();
    child.wait().unwrap();
    let deadline = Instant::now() + Duration::from_secs(5);
    while p.requests().is_empty() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(50));
    }
    let log = p.requests();
    assert_eq!(log.len(), 1, "the killed download is logged");
    assert!(log[0].bytes_sent > 0 && log[0].bytes_sent < bytes.len() as u64, "{:?}", log[0]);
}

#[test]
fn corrupts_truncates_and_lengthens_bodies() {
    let s = setup(RegistryOpts::default());
    let (digest, bytes) = s.big();
    let p = FaultProxy::start(
        &s.reg.host(),
        Faults {
            flip_byte_at: Some(1000),
            only_digest: Some(digest.clone()),
            ..Default::default()
        },
    );
    let flipped = curl(&[&blob_url(&p, &digest)]);
    assert_eq!((flipped.exit, flipped.body.len()), (0, bytes.len()));
    let diffs: Vec<usize> = (0..bytes.len()).filter(|&i| flipped.body[i] != bytes[i]).collect();
    assert_eq!(diffs, [1000]);
    let ranged = curl(&["-r", "900-1099", &blob_url(&p, &digest)]);
    assert_eq!(ranged.body[100], bytes[1000] ^ 0xff, "the offset counts in the blob, not the response");
    let other = &s.img.layers[0];
    let untouched = curl(&[&blob_url(&p, &other.digest)]);
    assert_eq!(
        format!("sha256:{}", sha256_hex(&untouched.body)),
        other.digest,
        "only_digest spares other blobs"
    );

    p.set_faults(Faults {
        truncate_to: Some(1000),
        ..Default::default()
    });
    let short = curl(&[&blob_url(&p, &digest)]);
    assert_eq!(short.exit, 18);
    assert_eq!(short.header("content-length"), Some(bytes.len().to_string()));
    assert_eq!(short.body, &bytes[..1000]);

    p.set_faults(Faults {
        extra_bytes: Some(10),
        ..Default::default()
    });
    let long = curl(&[&blob_url(&p, &digest)]);
    assert_eq!(long.exit, 0);
    assert_eq!(long.header("content-length"), Some((bytes.len() + 10).to_string()));
    assert_eq!(&long.body[..bytes.len()], &bytes[..]);
    assert_eq!(&long.body[bytes.len()..], b"XXXXXXXXXX");
}

#[test]
fn redirects_blobs_to_storage_without_credentials() {
    let s = setup(RegistryOpts::htpasswd("bob", "pw"));
    let (digest, bytes) = s.big();
    let p = FaultProxy::start(
        &s.reg.host(),
        Faults {
            redirect_blobs: true,
            ..Default::default()
        },
    );
    let got = curl(&["-u", "bob:pw", "-L", &blob_url(&p, &digest)]);
    assert_eq!((got.exit, got.status), (0, 200), "{}", got.stderr);
    assert_eq!(got.body, bytes);
    let log = p.requests();
    let first = log.iter().find(|r| r.listener == Listener::Main).unwrap();
    assert_eq!((first.status, first.authorization, first.faults.clone()), (307, true, vec!["redirect"]));
    let hop = log.iter().find(|r| r.listener == Listener::Storage).unwrap();
    assert_eq!((hop.status, hop.authorization, hop.bytes_sent), (200, false, bytes.len() as u64));
    // Control: a client told to leak credentials is caught doing it.
    p.clear_log();
    curl(&["-u", "bob:pw", "--location-trusted", &blob_url(&p, &digest)]);
    assert!(p.requests().iter().any(|r| r.listener == Listener::Storage && r.authorization));

    // skopeo follows the redirect for every blob and leaks nothing.
    p.clear_log();
    let dest = tempfile::tempdir().unwrap();
    let (ok, _, err) = skopeo(&[
        "copy",
        "-q",
        "--src-tls-verify=false",
        "--src-creds=bob:pw",
        &format!("docker://{}/sample:v1", p.host()),
        &format!("oci:{}:v1", dest.path().display()),
    ]);
    assert!(ok, "{err}");
    let hops: Vec<_> = p.requests().into_iter().filter(|r| r.listener == Listener::Storage).collect();
    assert_eq!(hops.len(), 4, "three layers and the config via storage: {hops:?}");
    assert!(hops.iter().all(|r| !r.authorization && r.status == 200));
}

#[test]
fn hides_a_tag() {
    let s = setup(RegistryOpts::default());
    push_image(&s.reg, s.img.layout.as_path(), "sample:v2");
    let p = FaultProxy::start(
        &s.reg.host(),
        Faults {
            missing_tags: vec!["v1".into()],
            ..Default::default()
        },
    );
    let url = |t: &str| format!("http://{}/v2/sample/manifests/{t}", p.host());
    let accept = "Accept: application/vnd.oci.image.manifest.v1+json";
    let gone = curl(&["-H", accept, &url("v1")]);
    assert_eq!(gone.status, 404);
    assert!(gone.text().contains("MANIFEST_UNKNOWN"));
    assert_eq!(curl(&["-I", "-H", accept, &url("v1")]).status, 404);
    assert_eq!(curl(&["-H", accept, &url("v2")]).status, 200);
    assert_eq!(curl(&["-H", accept, &url(&s.img.manifest.digest)]).status, 200, "by digest it is still there");
    let (ok, _, _) = skopeo(&["inspect", "--raw", "--tls-verify=false", &format!("docker://{}/sample:v1", p.host())]);
    assert!(!ok);
    assert!(p.requests().iter().any(|r| r.faults == ["missing-tag"]));
}
