//! Bad input: a clear one-line error, Docker's exit code, and nothing half-made in the store.

mod common;

use std::io::Write;

use common::Store;

/// Asserts a one-line error mentioning `needle`, exit `code`, and an unchanged store.
fn refused(s: &Store, args: &[&str], code: i32, needle: &str) {
    let before = (s.ids(), s.ok(&["images", "-q"]), s.ok(&["volume", "ls", "-q"]));
    let e = s.fails(args, code);
    assert!(e.contains(needle), "{args:?}: expected {needle:?} in {e:?}");
    assert_eq!(e.trim_end().lines().count(), 1, "{args:?}: not one line: {e:?}");
    let after = (s.ids(), s.ok(&["images", "-q"]), s.ok(&["volume", "ls", "-q"]));
    assert_eq!(before, after, "{args:?} changed the store");
}

#[test]
fn bad_run_flags() {
    let s = Store::new();
    refused(
        &s,
        &["run", "--rm", "--pull", "never", "no-such-image"],
        125,
        "Unable to find image 'no-such-image",
    );
    // The default --pull missing tries the registry (a loopback port nobody serves: no traffic
    // leaves the machine): Docker's two lines, the same exit code, nothing added.
    let before = s.ok(&["images", "-q"]);
    let e = s.fails(&["run", "--rm", "127.0.0.1:1/no/such:img", "true"], 125);
    let lines: Vec<&str> = e.trim_end().lines().collect();
    assert_eq!(lines.len(), 2, "{e}");
    assert_eq!(lines[0], "Unable to find image '127.0.0.1:1/no/such:img' locally");
    assert!(
        lines[1].starts_with("Error: 127.0.0.1:1: ") && lines[1].to_lowercase().contains("connect"),
        "{e}"
    );
    assert_eq!(s.ok(&["images", "-q"]), before);
    refused(
        &s,
        &["run", "--rm", "-v", "/no/such/dir:/x", "busybox", "true"],
        125,
        "bind source path does not exist: /no/such/dir",
    );
    refused(&s, &["run", "--rm", "-m", "10xb", "busybox", "true"], 125, "invalid size: '10xb'");
    refused(&s, &["run", "--rm", "--cpus", "-1", "busybox", "true"], 125, "--cpus");
    refused(&s, &["run", "--rm", "-v", ":/x", "busybox", "true"], 125, "invalid spec: :/x");
    refused(&s, &["run", "--rm", "--restart", "sometimes", "busybox", "true"], 125, "invalid restart policy");
    refused(&s, &["run", "--rm", "--ulimit", "nofile=abc", "busybox", "true"], 125, "--ulimit");
    refused(
        &s,
        &["run", "--rm", "--cap-add", "NOT_A_CAP", "busybox", "true"],
        125,
        "invalid capability: NOT_A_CAP",
    );
    refused(
        &s,
        &["run", "--rm", "--security-opt", "seccomp=/no/such/profile.json", "busybox", "true"],
        125,
        "seccomp profile",
    );
    refused(&s, &["run", "--rm", "--name", "bad name", "busybox", "true"], 125, "invalid container name");
    refused(&s, &["run", "--rm", "--stop-signal", "SIGNOPE", "busybox", "true"], 125, "invalid signal");
    refused(
        &s,
        &["run", "--rm", "--mount", "type=nfs,target=/x", "busybox", "true"],
        125,
        "invalid mount type",
    );
    refused(
        &s,
        &["run", "--rm", "--network", "bridge0", "busybox", "true"],
        125,
        "network bridge0 not found",
    );
    // clap's own refusals: unknown flag.
    let e = s.fails(&["run", "--no-such-flag", "busybox"], 125);
    assert!(e.contains("--no-such-flag"), "{e}");
}

#[test]
fn taken_names_and_running_containers() {
    let s = Store::new();
    s.ok(&["run", "-d", "--name", "taken", "busybox", "sleep", "60"]);
    refused(
        &s,
        &["run", "-d", "--name", "taken", "busybox", "true"],
        125,
        "The container name \"/taken\" is already in use",
    );
    refused(&s, &["rm", "taken"], 1, "You cannot remove a running container");
    refused(&s, &["rm", "nobody-here"], 1, "No such container: nobody-here");
    refused(&s, &["logs", "nobody-here"], 1, "No such container: nobody-here");
    refused(&s, &["exec", "nobody-here", "true"], 125, "No such container: nobody-here");
    refused(&s, &["rmi", "nope:latest"], 1, "No such image");
    refused(&s, &["volume", "rm", "no-vol"], 1, "No such volume: no-vol");
    s.ok(&["stop", "-t", "0", "taken"]);
    refused(&s, &["exec", "taken", "true"], 125, "is not running");
    refused(&s, &["kill", "taken"], 1, "is not running");
}

fn sha(data: &[u8]) -> String {
    use sha2::Digest;
    format!("sha256:{}", hex::encode(sha2::Sha256::digest(data)))
}

/// A docker-archive holding one layer tar; the config's diff_id is `diff_id` (the real one
/// unless a test lies).
fn docker_archive(layer: &[u8], diff_id: Option<&str>) -> Vec<u8> {
    let real = sha(layer);
    let config = format!(
        r#"{{"architecture":"amd64","os":"linux","config":{{"Cmd":["sh"]}},"rootfs":{{"type":"layers","diff_ids":["{}"]}},"history":[{{"created_by":"test"}}]}}"#,
        diff_id.unwrap_or(&real)
    );
    let chex = sha(config.as_bytes());
    let chex = chex.trim_start_matches("sha256:");
    let manifest = format!(r#"[{{"Config":"{chex}.json","RepoTags":["evil:latest"],"Layers":["layer/layer.tar"]}}]"#);
    let mut b = tar::Builder::new(Vec::new());
    let mut add = |name: &str, data: &[u8]| {
        let mut h = tar::Header::new_gnu();
        h.set_size(data.len() as u64);
        h.set_mode(0o644);
        h.set_cksum();
        b.append_data(&mut h, name, data).unwrap();
    };
    add(&format!("{chex}.json"), config.as_bytes());
    add("layer/layer.tar", layer);
    add("manifest.json", manifest.as_bytes());
    b.into_inner().unwrap()
}

/// A layer tar with raw entry names (the tar crate's safe API refuses the evil ones).
fn raw_layer(entries: &[(&str, u8, &str, &[u8])]) -> Vec<u8> {
    let mut out = Vec::new();
    for (name, kind, link, data) in entries {
        let mut h = tar::Header::new_old();
        {
            let bytes = h.as_mut_bytes();
            bytes[..name.len()].copy_from_slice(name.as_bytes());
            bytes[157..157 + link.len()].copy_from_slice(link.as_bytes());
        }
        h.set_mode(0o644);
        h.set_size(data.len() as u64);
        h.set_entry_type(tar::EntryType::new(*kind));
        h.set_mtime(0);
        h.set_cksum();
        out.extend_from_slice(h.as_bytes());
        out.extend_from_slice(data);
        out.resize(out.len().div_ceil(512) * 512, 0);
    }
    out.resize(out.len() + 1024, 0);
    out
}

fn load_refused(s: &Store, archive: &[u8], needle: &str) {
    let path = s.path().join("evil.tar");
    std::fs::write(&path, archive).unwrap();
    refused(s, &["load", "-i", path.to_str().unwrap()], 1, needle);
    let tmp: Vec<_> = std::fs::read_dir(s.path().join("image/tmp")).into_iter().flatten().flatten().collect();
    assert!(tmp.is_empty(), "work dirs left after a refused load");
    assert!(!s.ok(&["images"]).contains("evil"));
}

#[test]
fn malicious_and_corrupt_archives() {
    let s = Store::new();
    let marker = s.path().join("escaped");
    let m = marker.to_string_lossy().into_owned();
    // `..` in a path.
    load_refused(
        &s,
        &docker_archive(
            &raw_layer(&[("../../../../../../..", b'5', "", b""), (&format!("../../../../../../..{m}"), b'0', "", b"x")]),
            None,
        ),
        "..",
    );
    // An absolute path is taken relative to the layer, as Docker does: safe, and loaded.
    let abs = s.path().join("abs.tar");
    std::fs::write(&abs, docker_archive(&raw_layer(&[(&m[1..], b'5', "", b""), (&m, b'0', "", b"x")]), None)).unwrap();
    s.ok(&["load", "-i", abs.to_str().unwrap()]);
    assert!(!marker.exists(), "an absolute path in a layer wrote to the host");
    assert_eq!(s.ok(&["image", "inspect", "-f", "{{len .RootFS.Layers}}", "evil"]), "1\n");
    s.ok(&["rmi", "evil"]);
    // A symlink leading out, then a file written through it.
    load_refused(
        &s,
        &docker_archive(&raw_layer(&[("out", b'2', "/", b""), (&format!("out{m}"), b'0', "", b"x")]), None),
        "out",
    );
    // A hardlink to a host file.
    load_refused(&s, &docker_archive(&raw_layer(&[("hl", b'1', "/etc/passwd", b"")]), None), "hl");
    // A whiteout of "..".
    load_refused(
        &s,
        &docker_archive(&raw_layer(&[("dir/", b'5', "", b""), ("dir/.wh..", b'0', "", b"")]), None),
        ".wh..",
    );
    // A layer whose digest is not the config's diff_id.
    let good = raw_layer(&[("ok.txt", b'0', "", b"fine")]);
    load_refused(&s, &docker_archive(&good, Some(&sha(b"something else"))), "sha256:");
    // A truncated gzip archive.
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    gz.write_all(&docker_archive(&good, None)).unwrap();
    let full = gz.finish().unwrap();
    load_refused(&s, &full[..full.len() / 2], "");
    assert!(!marker.exists(), "an archive wrote outside the store");
    // The honest archive loads.
    let path = s.path().join("good.tar");
    std::fs::write(&path, docker_archive(&good, None)).unwrap();
    assert_eq!(s.ok(&["load", "-i", path.to_str().unwrap()]), "Loaded image: evil:latest\n");
    let layer = s.ok(&["image", "inspect", "-f", "{{index .RootFS.Layers 0}}", "evil"]);
    assert_eq!(layer.trim(), sha(&good));
}

#[test]
fn import_refuses_bad_tars() {
    let s = Store::new();
    let path = s.path().join("rootfs.tar");
    std::fs::write(&path, raw_layer(&[("a/../../b", b'0', "", b"x")])).unwrap();
    refused(&s, &["import", path.to_str().unwrap(), "bad:1"], 1, "..");
    std::fs::write(&path, b"this is not a tar archive at all, not even close........").unwrap();
    let e = s.fails(&["import", path.to_str().unwrap(), "bad:2"], 1);
    assert_eq!(e.trim_end().lines().count(), 1, "{e}");
    assert!(!s.ok(&["images"]).contains("bad"));
}
