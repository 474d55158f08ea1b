//! Bad registries and bad content: a flipped byte, a short or long blob, a dropped connection
//! (resumed with a range, in the same pull and in the next one after a kill), a redirect to
//! blob storage (no credentials follow it), a layer escaping with `..`. A failed pull names the
//! layer and leaves no image, no layer and no temporary files behind.

mod common;

use std::fs;
use std::path::Path;
use std::time::{Duration, Instant};

use common::{text, Store};
use testreg::{malicious_image, push_image, sample_image, FaultProxy, Faults, Listener, Registry, RegistryOpts};

const NOVERIFY: &str = "--tls-verify=false";

/// A registry with the sample image, behind a proxy; returns the big (third) layer's digest.
fn setup(opts: RegistryOpts) -> (Registry, FaultProxy, tempfile::TempDir, String) {
    let reg = Registry::start(opts);
    let layout = tempfile::tempdir().unwrap();
    let img = sample_image(layout.path(), "v1");
    push_image(&reg, layout.path(), "lib/sample:v1");
    let proxy = FaultProxy::start(&reg.host(), Faults::default());
    let big = img.layers[2].digest.clone();
    (reg, proxy, layout, big)
}

fn nothing_left(s: &Store) {
    assert_eq!(s.ok(&["images", "-q"]), "", "an image was added");
    let layers = s.path().join("image/layers");
    assert_eq!(fs::read_dir(&layers).map_or(0, |d| d.count()), 0, "layers left");
    assert_eq!(fs::read_dir(s.path().join("image/tmp")).map_or(0, |d| d.count()), 0, "tmp left");
}

fn partials(s: &Store) -> Vec<u64> {
    fs::read_dir(s.path().join("image/incoming")).map_or(Vec::new(), |d| d.flatten().map(|e| e.metadata().map_or(0, |m| m.len())).collect())
}

fn blob_gets(p: &FaultProxy, digest: &str) -> Vec<testreg::ProxyRequest> {
    p.requests().into_iter().filter(|r| r.method == "GET" && r.path.ends_with(digest)).collect()
}

/// The first byte a `bytes=N-` range asks for.
fn range_start(r: &testreg::ProxyRequest) -> Option<u64> {
    r.range.as_deref()?.strip_prefix("bytes=")?.split('-').next()?.parse().ok()
}

#[test]
fn corrupt_short_and_long_blobs_are_refused_naming_the_layer() {
    let (_reg, proxy, _l, big) = setup(RegistryOpts::default());
    let name = format!("{}/lib/sample:v1", proxy.host());
    let s = Store::empty();
    let cases: [(&str, Faults, &str); 3] = [
        (
            "flip",
            Faults {
                flip_byte_at: Some(30_000),
                ..Default::default()
            },
            "digest mismatch",
        ),
        (
            "extra",
            Faults {
                extra_bytes: Some(100),
                ..Default::default()
            },
            "size mismatch",
        ),
        (
            "truncate",
            Faults {
                truncate_to: Some(10_000),
                ..Default::default()
            },
            "",
        ),
    ];
    for (what, faults, expect) in cases {
        proxy.set_faults(Faults {
            only_digest: Some(big.clone()),
            ..faults
        });
        let err = s.fails(&["pull", NOVERIFY, &name], 1);
        assert!(err.contains(&big), "{what}: the error names the layer: {err}");
        assert!(err.contains(expect), "{what}: {err}");
        nothing_left(&s);
        if what != "truncate" {
            assert!(partials(&s).is_empty(), "{what}: a wrong download is kept: {:?}", partials(&s));
        }
    }
    // A truncation at every response: the pull gives up, keeping what came, which
    // `image prune` lets go.
    assert_eq!(partials(&s), vec![60_000], "six responses of 10 000 bytes");
    let out = s.ok(&["image", "prune", "-f"]);
    assert!(out.contains("Total reclaimed space: 60kB"), "{out}");
    assert!(partials(&s).is_empty());
    proxy.set_faults(Faults::default());
    let out = s.ok(&["pull", NOVERIFY, &name]);
    assert!(out.contains("Downloaded newer image"), "{out}");
    assert!(partials(&s).is_empty());
}

#[test]
fn a_dropped_connection_is_resumed_with_a_range() {
    let (_reg, proxy, _l, big) = setup(RegistryOpts::default());
    let name = format!("{}/lib/sample:v1", proxy.host());
    let s = Store::empty();
    proxy.set_faults(Faults {
        only_digest: Some(big.clone()),
        drop_after_bytes: Some(20_000),
        drop_times: Some(2),
        ..Default::default()
    });
    let out = s.ok(&["pull", NOVERIFY, &name]);
    assert!(out.contains("Retrying") && out.contains("Pull complete"), "{out}");
    let gets = blob_gets(&proxy, &big);
    assert_eq!(gets.len(), 3, "{gets:?}");
    assert_eq!(range_start(&gets[1]), Some(20_000), "resumed where it stopped: {gets:?}");
    assert_eq!(range_start(&gets[2]), Some(40_000), "{gets:?}");
    let total: u64 = gets.iter().map(|r| r.bytes_sent).sum();
    let size = fs::metadata(s.path().join("image/blobs/sha256").join(&big[7..])).unwrap().len();
    assert_eq!(total, size, "every byte was sent once");
    assert_eq!(fs::read(layer(&s, &name, 2).join("data.bin")).unwrap(), testreg::pseudo_random(7, 64 * 1024));
}

fn layer(s: &Store, image: &str, i: usize) -> std::path::PathBuf {
    let ids = s.ok(&["image", "inspect", "-f", "{{json .RootFS.Layers}}", image]);
    let ids: Vec<String> = serde_json::from_str(ids.trim()).unwrap();
    s.path().join("image/layers").join(&ids[i][7..]).join("diff")
}

#[test]
fn a_pull_that_gives_up_or_is_killed_is_resumed_by_the_next() {
    let (_reg, proxy, _l, big) = setup(RegistryOpts::default());
    let name = format!("{}/lib/sample:v1", proxy.host());
    let s = Store::empty();

    // Every response is cut after 5 000 bytes: six of them (the first and five resumptions)
    // are not the whole layer, so the pull fails, and the bytes stay.
    proxy.set_faults(Faults {
        only_digest: Some(big.clone()),
        drop_after_bytes: Some(5_000),
        ..Default::default()
    });
    let err = s.fails(&["pull", NOVERIFY, &name], 1);
    assert!(err.contains(&big) && err.contains("gave up"), "{err}");
    nothing_left(&s);
    let kept = partials(&s);
    assert_eq!(kept.len(), 1, "{kept:?}");
    assert_eq!(kept[0], 30_000, "each resumption added to the file: {kept:?}");

    // Killed in the middle of a slow download: the next pull starts where the file ends.
    proxy.set_faults(Faults {
        only_digest: Some(big.clone()),
        throttle_bytes_per_sec: Some(2_000),
        ..Default::default()
    });
    proxy.clear_log();
    let mut child = s.cmd(&["pull", "-q", NOVERIFY, &name]).spawn().unwrap();
    let start = Instant::now();
    while partials(&s).first().copied().unwrap_or(0) <= kept[0] + 2_000 && start.elapsed() < Duration::from_secs(20) {
        std::thread::sleep(Duration::from_millis(50));
    }
    // SAFETY: kill(2) of the child we spawned, by pid.
    unsafe { libc::kill(child.id() as i32, libc::SIGKILL) };
    let _ = child.wait();
    let now = partials(&s)[0];
    assert!(now > kept[0], "the killed pull added nothing: {now} vs {}", kept[0]);

    // The proxy logs a request when its connection ends: wait for the killed one's entry.
    assert!(
        common::eventually(10, || blob_gets(&proxy, &big).iter().any(|r| r.faults.contains(&"throttle"))),
        "{:?}",
        proxy.requests()
    );
    proxy.set_faults(Faults::default());
    proxy.clear_log();
    s.ok(&["pull", "-q", NOVERIFY, &name]);
    let gets = blob_gets(&proxy, &big);
    assert_eq!(gets.len(), 1, "{gets:?}");
    assert_eq!(range_start(&gets[0]), Some(now), "resumed from the file's end: {gets:?}");
    assert!(partials(&s).is_empty());
    assert_eq!(fs::read(layer(&s, &name, 2).join("data.bin")).unwrap(), testreg::pseudo_random(7, 64 * 1024));
}

#[test]
fn a_redirect_to_blob_storage_carries_no_credentials() {
    let (reg, proxy, _l, _big) = setup(RegistryOpts::htpasswd("bob", "builder"));
    proxy.set_faults(Faults {
        redirect_blobs: true,
        ..Default::default()
    });
    let name = format!("{}/lib/sample:v1", proxy.host());
    let s = Store::empty();
    s.ok(&["pull", "-q", NOVERIFY, "--creds", "bob:builder", &name]);
    let reqs = proxy.requests();
    let storage: Vec<_> = reqs.iter().filter(|r| r.listener == Listener::Storage).collect();
    assert!(storage.len() >= 3, "blobs came from storage: {reqs:?}");
    assert!(storage.iter().all(|r| !r.authorization), "credentials went to blob storage: {storage:?}");
    assert!(
        reqs.iter().any(|r| r.listener == Listener::Main && r.authorization),
        "the registry itself got them"
    );
    drop(reg);
}

#[test]
fn missing_tags_and_unreachable_registries_are_named() {
    let (_reg, proxy, _l, _big) = setup(RegistryOpts::default());
    proxy.set_faults(Faults {
        missing_tags: vec!["v1".into()],
        ..Default::default()
    });
    let s = Store::empty();
    let name = format!("{}/lib/sample:v1", proxy.host());
    let err = s.fails(&["pull", NOVERIFY, &name], 1);
    assert!(err.contains(&format!("manifest for {name} not found")), "{err}");
    let err = s.fails(&["pull", NOVERIFY, "127.0.0.1:1/x/y:z"], 1);
    assert!(err.contains("127.0.0.1:1") && err.to_lowercase().contains("connect"), "{err}");
    let err = s.fails(&["pull", "Upper"], 1);
    assert!(err.contains("invalid reference format"), "{err}");
    nothing_left(&s);
}

#[test]
fn a_layer_with_dotdot_entries_is_refused_whole() {
    let reg = Registry::start(RegistryOpts::default());
    let layout = tempfile::tempdir().unwrap();
    let img = malicious_image(layout.path(), "bad");
    push_image(&reg, layout.path(), "evil/app:bad");
    let s = Store::empty();
    let err = s.fails(&["pull", NOVERIFY, &format!("{}/evil/app:bad", reg.host())], 1);
    assert!(err.contains("../escape") && err.contains(&img.layers[1].digest), "{err}");
    for p in [
        s.path().join("escape"),
        s.path().join("image/escape"),
        s.path().join("image/layers/escape"),
        Path::new("/escape").to_path_buf(),
    ] {
        assert!(!p.exists(), "{} was written", p.display());
    }
    nothing_left(&s);
    assert!(partials(&s).is_empty());
    let _ = text(b"");
}

#[test]
fn a_terminal_gets_a_bar_per_layer_and_a_pipe_gets_lines() {
    let (_reg, proxy, _l, big) = setup(RegistryOpts::default());
    proxy.set_faults(Faults {
        only_digest: Some(big.clone()),
        throttle_bytes_per_sec: Some(40_000),
        ..Default::default()
    });
    let name = format!("{}/lib/sample:v1", proxy.host());
    let s = Store::empty();
    // script(1) gives the pull a pseudo-terminal; its output is what a user would see.
    let line = format!("{} --root {} pull {NOVERIFY} {name}", common::skiff_bin(), s.path().display());
    let o = std::process::Command::new("script")
        .args(["-qfec", &line, "/dev/null"])
        .env("TERM", "xterm")
        .env("HOME", s.path().join("home"))
        .output()
        .unwrap();
    let out = text(&o.stdout);
    assert!(o.status.success(), "{out}");
    let id = &big[7..19];
    assert!(out.contains(&format!("{id}: Pull complete")), "{out}");
    assert!(
        out.contains("Downloading") && out.contains("KiB/s") && out.contains("eta"),
        "no live bar with speed and ETA: {out}"
    );
    assert!(out.contains("\x1b["), "the bars are redrawn in place: {out}");
    // Cached layers say so; a pipe gets Docker's plain lines, no bars.
    let again = s.ok(&["pull", NOVERIFY, &name]);
    assert!(
        again.contains(&format!("{id}: Already exists")) && !again.contains("eta") && !again.contains('\x1b'),
        "{again}"
    );
}
