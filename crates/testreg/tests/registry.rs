//! docker-registry plain, with htpasswd and with TLS, driven by skopeo and curl.

mod common;

use common::{curl, sha256_hex, skopeo};
use std::io::Read;
use testreg::fixtures::{write_image, Compression, Entry, Layer};
use testreg::{malicious_image, multiarch_image, pull_with_skopeo, push_image, sample_image, Registry, RegistryOpts};

#[test]
fn plain_registry_roundtrip_and_cleanup() {
    let reg = Registry::start(RegistryOpts::default());
    let src = tempfile::tempdir().unwrap();
    let img = sample_image(src.path(), "v1");
    assert_eq!(img.layers.len(), 3);

    let pushed = push_image(&reg, src.path(), "sample:v1");
    assert_eq!(pushed, img.manifest.digest, "skopeo kept the manifest digest");
    for l in &img.layers {
        let stored = std::fs::read(reg.blob_path(&l.digest)).expect("layer blob in the registry's storage");
        assert_eq!(format!("sha256:{}", sha256_hex(&stored)), l.digest);
    }

    // The registry serves what was pushed: raw manifest, tags, blob.
    let (ok, raw, err) = skopeo(&["inspect", "--raw", "--tls-verify=false", &format!("docker://{}/sample:v1", reg.host())]);
    assert!(ok, "skopeo inspect: {err}");
    assert_eq!(format!("sha256:{}", sha256_hex(raw.as_bytes())), img.manifest.digest);
    let tags = curl(&[&format!("{}/v2/sample/tags/list", reg.url())]);
    assert_eq!((tags.status, tags.text().contains("\"v1\"")), (200, true), "{}", tags.text());
    let blob = curl(&[&format!("{}/v2/sample/blobs/{}", reg.url(), img.layers[2].digest)]);
    assert_eq!(blob.status, 200);
    assert_eq!(format!("sha256:{}", sha256_hex(&blob.body)), img.layers[2].digest);

    // And skopeo copies it back out unchanged.
    let back = tempfile::tempdir().unwrap();
    pull_with_skopeo(&reg, "sample:v1", back.path(), "copy");
    let index = std::fs::read_to_string(back.path().join("index.json")).unwrap();
    assert!(index.contains(&img.manifest.digest), "{index}");

    // Missing tag: 404 MANIFEST_UNKNOWN.
    let missing = curl(&[&format!("{}/v2/sample/manifests/nope", reg.url())]);
    assert_eq!(missing.status, 404);
    assert!(missing.text().contains("MANIFEST_UNKNOWN"), "{}", missing.text());

    assert!(reg.log().contains("listening on 127.0.0.1:"), "{}", reg.log());
    let (pid, dir) = (reg.pid(), reg.dir().to_path_buf());
    assert!(std::path::Path::new(&format!("/proc/{pid}")).exists());
    drop(reg);
    assert!(!std::path::Path::new(&format!("/proc/{pid}")).exists(), "registry {pid} still runs after drop");
    assert!(!dir.exists(), "{} left behind", dir.display());
}

#[test]
fn fixtures_index_zstd_and_hostile_layer() {
    let reg = Registry::start(RegistryOpts::default());
    let src = tempfile::tempdir().unwrap();

    // A multi-platform OCI index is pushed whole.
    let (index, images) = multiarch_image(src.path(), "latest", &[("linux", "amd64"), ("linux", "arm64")]);
    assert_eq!(push_image(&reg, src.path(), "multi:latest"), index.digest);
    let got = curl(&[
        "-H",
        "Accept: application/vnd.oci.image.index.v1+json",
        &format!("{}/v2/multi/manifests/latest", reg.url()),
    ]);
    assert_eq!(got.status, 200);
    assert_eq!(format!("sha256:{}", sha256_hex(&got.body)), index.digest);
    for img in &images {
        let m = curl(&[
            "-H",
            "Accept: application/vnd.oci.image.manifest.v1+json",
            &format!("{}/v2/multi/manifests/{}", reg.url(), img.manifest.digest),
        ]);
        assert_eq!(m.status, 200, "child manifest {} pushed", img.manifest.digest);
    }

    // zstd and uncompressed layers go through as they are.
    let layers = [
        Layer {
            entries: vec![Entry::file("z.txt", "zstd\n")],
            compression: Compression::Zstd,
        },
        Layer {
            entries: vec![Entry::file("u.txt", "plain\n")],
            compression: Compression::None,
        },
    ];
    let img = write_image(src.path(), "mixed", &layers);
    assert_eq!(push_image(&reg, src.path(), "mixed:mixed"), img.manifest.digest);
    let manifest = curl(&[
        "-H",
        "Accept: application/vnd.oci.image.manifest.v1+json",
        &format!("{}/v2/mixed/manifests/mixed", reg.url()),
    ]);
    assert!(manifest.text().contains("tar+zstd"), "{}", manifest.text());

    // The hostile layer reaches the registry with its `../escape` entry intact.
    let bad = malicious_image(src.path(), "evil");
    push_image(&reg, src.path(), "evil:evil");
    let blob = curl(&[&format!("{}/v2/evil/blobs/{}", reg.url(), bad.layers[1].digest)]);
    assert_eq!(blob.status, 200);
    let mut tar = Vec::new();
    flate2::read::GzDecoder::new(&blob.body[..]).read_to_end(&mut tar).unwrap();
    let names: Vec<String> = tar::Archive::new(&tar[..])
        .entries()
        .unwrap()
        .map(|e| String::from_utf8_lossy(&e.unwrap().path_bytes()).into_owned())
        .collect();
    assert_eq!(names, ["ok.txt", "../escape"]);
}

#[test]
fn htpasswd_registry() {
    let reg = Registry::start(RegistryOpts::htpasswd("alice", "s3cret"));
    let src = tempfile::tempdir().unwrap();
    let img = sample_image(src.path(), "v1");
    assert_eq!(push_image(&reg, src.path(), "private/app:v1"), img.manifest.digest);

    let target = format!("docker://{}/private/app:v1", reg.host());
    let (ok, out, err) = skopeo(&["inspect", "--raw", "--tls-verify=false", "--creds", "alice:s3cret", &target]);
    assert!(ok, "right creds: {err}");
    assert_eq!(format!("sha256:{}", sha256_hex(out.as_bytes())), img.manifest.digest);
    let (ok, _, err) = skopeo(&["inspect", "--raw", "--tls-verify=false", "--creds", "alice:wrong", &target]);
    assert!(!ok, "wrong creds must fail");
    assert!(err.contains("401") || err.to_lowercase().contains("unauthorized"), "{err}");

    let anon = curl(&[&format!("{}/v2/", reg.url())]);
    assert_eq!(anon.status, 401);
    assert!(anon.header("www-authenticate").unwrap_or_default().starts_with("Basic"), "{}", anon.headers);
    assert_eq!(curl(&["-u", "alice:s3cret", &format!("{}/v2/private/app/tags/list", reg.url())]).status, 200);
    assert_eq!(curl(&["-u", "alice:nope", &format!("{}/v2/private/app/tags/list", reg.url())]).status, 401);
}

#[test]
fn tls_registry_with_test_ca() {
    let reg = Registry::start(RegistryOpts {
        tls: true,
        ..Default::default()
    });
    assert!(reg.url().starts_with("https://"));
    assert!(reg.cert_dir().join("ca.crt").is_file());
    let ca = reg.ca_pem_path().to_str().unwrap().to_string();

    let ok = curl(&["--cacert", &ca, &format!("{}/v2/", reg.url())]);
    assert_eq!((ok.exit, ok.status), (0, 200), "{}", ok.stderr);
    let by_name = curl(&["--cacert", &ca, &format!("https://localhost:{}/v2/", reg.port())]);
    assert_eq!((by_name.exit, by_name.status), (0, 200), "DNS:localhost SAN: {}", by_name.stderr);
    let untrusted = curl(&[&format!("{}/v2/", reg.url())]);
    assert_eq!(untrusted.exit, 60, "without the CA curl must refuse the certificate: {}", untrusted.stderr);

    // skopeo trusts it through the certs.d-style dir, and refuses it without.
    let src = tempfile::tempdir().unwrap();
    let img = sample_image(src.path(), "v1");
    assert_eq!(push_image(&reg, src.path(), "secure:v1"), img.manifest.digest);
    let target = format!("docker://{}/secure:v1", reg.host());
    let (ok, _, err) = skopeo(&["inspect", "--raw", "--cert-dir", reg.cert_dir().to_str().unwrap(), &target]);
    assert!(ok, "{err}");
    let (ok, _, err) = skopeo(&["inspect", "--raw", "--tls-verify=true", &target]);
    assert!(!ok, "skopeo without the CA must fail");
    assert!(err.contains("certificate"), "{err}");
}
