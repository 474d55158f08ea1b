//! `skiff pull/push/login` against real registries (Debian's docker-registry on 127.0.0.1):
//! plain, htpasswd, TLS from a CA the test makes, bearer tokens; images pushed by skopeo, and
//! ours read back by skopeo and podman.

mod common;

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;

use common::{text, Store};
use testreg::{multiarch_image, push_image, sample_image, Registry, RegistryOpts, TokenConfig};

const NOVERIFY: &str = "--tls-verify=false";

/// The unpacked dir of the image's layer `i` (bottom first).
fn layer_dir(s: &Store, image: &str, i: usize) -> PathBuf {
    let ids = s.ok(&["image", "inspect", "-f", "{{json .RootFS.Layers}}", image]);
    let ids: Vec<String> = serde_json::from_str(ids.trim()).expect("layers json");
    s.path().join("image/layers").join(&ids[i][7..]).join("diff")
}

fn pushed_sample(reg: &Registry, repo_tag: &str) -> (tempfile::TempDir, testreg::Image) {
    let layout = tempfile::tempdir().unwrap();
    let img = sample_image(layout.path(), "v1");
    push_image(reg, layout.path(), repo_tag);
    (layout, img)
}

#[test]
fn pull_from_a_plain_registry_then_again_and_by_digest() {
    let reg = Registry::start(RegistryOpts::default());
    let (_l, img) = pushed_sample(&reg, "lib/sample:v1");
    let s = Store::empty();
    let name = format!("{}/lib/sample:v1", reg.host());
    let out = s.ok(&["pull", NOVERIFY, &name]);
    assert!(
        out.contains("v1: Pulling from") && out.contains("Pull complete") && out.contains("Downloaded newer image"),
        "{out}"
    );
    assert_eq!(out.lines().last(), Some(name.as_str()), "the last line names what was pulled: {out}");
    assert!(out.contains(&format!("Digest: {}", img.manifest.digest)), "{out}");

    // The layers as the image says: the second overrides a file, the third deletes one.
    assert_eq!(fs::read_to_string(layer_dir(&s, &name, 0).join("hello.txt")).unwrap(), "v1\n");
    assert_eq!(fs::read_to_string(layer_dir(&s, &name, 1).join("hello.txt")).unwrap(), "v2\n");
    assert_eq!(fs::read_link(layer_dir(&s, &name, 1).join("link")).unwrap(), Path::new("hello.txt"));
    let wh = fs::symlink_metadata(layer_dir(&s, &name, 2).join("dir/b.txt")).unwrap();
    assert!(
        std::os::unix::fs::FileTypeExt::is_char_device(&wh.file_type()),
        "the whiteout is overlay's 0:0 char device"
    );
    assert_eq!(
        fs::read(layer_dir(&s, &name, 2).join("data.bin")).unwrap(),
        testreg::pseudo_random(7, 64 * 1024)
    );
    assert_eq!(s.inspect(&name, "{{.Id}}"), img.config.digest);
    assert!(
        fs::read_dir(s.path().join("image/incoming")).map_or(0, |d| d.count()) == 0,
        "download files left"
    );

    // Again: nothing to fetch.
    let again = s.ok(&["pull", NOVERIFY, &name]);
    assert_eq!(again.matches("Already exists").count(), 3, "{again}");
    assert!(again.contains("Image is up to date"), "{again}");

    // By digest (no tag added), found by that digest afterwards; -q prints only the reference.
    let s2 = Store::empty();
    let by_digest = format!("{}/lib/sample@{}", reg.host(), img.manifest.digest);
    let q = s2.ok(&["pull", "-q", NOVERIFY, &by_digest]);
    assert_eq!(q.trim(), by_digest);
    assert_eq!(s2.inspect(&by_digest, "{{.Id}}"), img.config.digest);
    assert!(s2.ok(&["images", "--format", "{{.Repository}}:{{.Tag}}"]).contains("<none>"));
}

#[test]
fn zstd_and_uncompressed_layers_stream_in_too() {
    use testreg::{write_image, Compression, Entry, Layer};
    let reg = Registry::start(RegistryOpts::default());
    let layout = tempfile::tempdir().unwrap();
    let layers = [
        Layer {
            entries: vec![Entry::file("z.txt", "zstd layer\n")],
            compression: Compression::Zstd,
        },
        Layer {
            entries: vec![
                Entry::file("plain.txt", "plain layer\n"),
                Entry::file("big", testreg::pseudo_random(3, 300_000)),
            ],
            compression: Compression::None,
        },
    ];
    let img = write_image(layout.path(), "z", &layers);
    push_image(&reg, layout.path(), "lib/zstd:z");
    let s = Store::empty();
    let name = format!("{}/lib/zstd:z", reg.host());
    s.ok(&["pull", "-q", NOVERIFY, &name]);
    assert_eq!(fs::read_to_string(layer_dir(&s, &name, 0).join("z.txt")).unwrap(), "zstd layer\n");
    assert_eq!(fs::read(layer_dir(&s, &name, 1).join("big")).unwrap(), testreg::pseudo_random(3, 300_000));
    assert_eq!(s.inspect(&name, "{{.Id}}"), img.config.digest);
}

#[test]
fn an_index_is_resolved_to_the_requested_platform() {
    let reg = Registry::start(RegistryOpts::default());
    let layout = tempfile::tempdir().unwrap();
    let (index, _) = multiarch_image(
        layout.path(),
        "m",
        &[("linux", "arm64"), ("linux", testreg::fixtures::host_arch()), ("linux", "s390x")],
    );
    push_image(&reg, layout.path(), "multi/app:m");
    let name = format!("{}/multi/app:m", reg.host());

    let s = Store::empty();
    let out = s.ok(&["pull", NOVERIFY, &name]);
    assert!(out.contains(&format!("Digest: {}", index.digest)), "the index's digest is reported: {out}");
    let host = format!("linux/{}\n", testreg::fixtures::host_arch());
    assert_eq!(fs::read_to_string(layer_dir(&s, &name, 0).join("platform")).unwrap(), host);
    assert_eq!(
        s.inspect(&format!("{}/multi/app@{}", reg.host(), index.digest), "{{.Architecture}}"),
        testreg::fixtures::host_arch()
    );

    let s2 = Store::empty();
    s2.ok(&["pull", NOVERIFY, "--platform", "linux/s390x", &name]);
    assert_eq!(fs::read_to_string(layer_dir(&s2, &name, 0).join("platform")).unwrap(), "linux/s390x\n");

    let err = s2.fails(&["pull", NOVERIFY, "--platform", "linux/riscv64", &name], 1);
    assert!(err.contains("no matching manifest for linux/riscv64") && err.contains("linux/s390x"), "{err}");
    let err = s2.fails(&["pull", NOVERIFY, "--platform", "linux//x", &name], 1);
    assert!(err.contains("invalid platform"), "{err}");
}

#[test]
fn all_tags_and_a_missing_tag() {
    let reg = Registry::start(RegistryOpts::default());
    let (layout, _) = pushed_sample(&reg, "lib/tags:one");
    push_image(&reg, layout.path(), "lib/tags:two");
    let s = Store::empty();
    let repo = format!("{}/lib/tags", reg.host());
    let out = s.ok(&["pull", "-a", NOVERIFY, &repo]);
    assert!(out.contains(&format!("{repo}:one")) && out.contains(&format!("{repo}:two")), "{out}");
    assert_eq!(s.ok(&["images", "-q"]).lines().count(), 1, "one image, two tags");
    let err = s.fails(&["pull", NOVERIFY, &format!("{repo}:three")], 1);
    assert!(err.contains(&format!("manifest for {repo}:three not found: manifest unknown")), "{err}");
    let err = s.fails(&["pull", "-a", NOVERIFY, &format!("{repo}:one")], 1);
    assert!(err.contains("can't be used with --all-tags"), "{err}");
}

/// podman with every piece of its state under `root` (its default tmp dir is /run/libpod).
fn podman(root: &Path, args: &[&str]) -> std::process::Output {
    let conf = root.join("containers.conf");
    if !conf.exists() {
        let tmp = root.join("tmp");
        fs::create_dir_all(&tmp).unwrap();
        let text = format!(
            "[engine]\ncgroup_manager = \"cgroupfs\"\nevents_logger = \"none\"\ntmp_dir = \"{0}\"\nimage_copy_tmp_dir = \"{0}\"\n",
            tmp.display()
        );
        fs::write(&conf, text).unwrap();
    }
    Command::new("podman")
        .env("CONTAINERS_CONF", &conf)
        .env("TMPDIR", root.join("tmp"))
        .arg("--root")
        .arg(root.join("root"))
        .arg("--runroot")
        .arg(root.join("run"))
        .arg("--storage-driver")
        .arg("vfs")
        .args(args)
        .output()
        .expect("podman")
}

#[test]
fn push_is_read_by_skopeo_podman_and_skiff_and_nothing_is_sent_twice() {
    let reg = Registry::start(RegistryOpts::default());
    let s = Store::new();
    // A commit: an uncompressed layer of our own, gzip'd on the way out.
    s.ok(&["run", "--name", "c1", "busybox", "sh", "-c", "echo pushed-by-skiff > /marker"]);
    s.ok(&["commit", "c1", "mine:v1"]);
    let dest = format!("{}/team/mine:v1", reg.host());
    let out = s.ok(&["push", NOVERIFY, "mine:v1", &dest]);
    assert_eq!(out.matches(": Pushed").count(), 3, "2 layers + config: {out}");
    let digest = out
        .lines()
        .find_map(|l| l.split("digest: ").nth(1))
        .and_then(|r| r.split(' ').next())
        .expect("digest line")
        .to_string();

    let inspect = Command::new("skopeo")
        .args(["inspect", NOVERIFY, &format!("docker://{dest}")])
        .output()
        .unwrap();
    let v: serde_json::Value = serde_json::from_slice(&inspect.stdout).unwrap_or_else(|_| panic!("{}", text(&inspect.stderr)));
    assert_eq!(v["Digest"], digest.as_str());
    assert_eq!(v["Layers"].as_array().map(Vec::len), Some(2));

    // podman pulls it.
    let p = tempfile::tempdir().unwrap();
    let o = podman(p.path(), &["pull", NOVERIFY, &dest]);
    assert!(o.status.success(), "podman pull: {}", text(&o.stderr));
    // (podman's runtimes cannot run on this hybrid-cgroup host: read its copy of the rootfs.)
    let o = podman(p.path(), &["create", &dest, "true"]);
    assert!(o.status.success(), "podman create: {}", text(&o.stderr));
    let cid = text(&o.stdout).trim().to_string();
    let tar = p.path().join("export.tar");
    let o = podman(p.path(), &["export", "-o", tar.to_str().unwrap(), &cid]);
    assert!(o.status.success(), "podman export: {}", text(&o.stderr));
    let o = Command::new("tar").arg("-xOf").arg(&tar).arg("marker").output().unwrap();
    assert_eq!(text(&o.stdout), "pushed-by-skiff\n", "podman's copy: {}", text(&o.stderr));
    let _ = podman(p.path(), &["rm", "-f", &cid]);
    let _ = podman(p.path(), &["rmi", "-a", "-f"]);

    // skiff pulls it into another store and runs it.
    let s2 = Store::empty();
    s2.ok(&["pull", "-q", NOVERIFY, &dest]);
    assert_eq!(s2.ok(&["run", "--rm", &dest, "cat", "/marker"]), "pushed-by-skiff\n");
    assert_eq!(s.inspect("mine:v1", "{{.Id}}"), s2.inspect(&dest, "{{.Id}}"), "the same config");

    // Pushed again: every blob is there. To another repository: mounted, not sent.
    let again = s.ok(&["push", NOVERIFY, "mine:v1", &dest]);
    assert_eq!(again.matches("Layer already exists").count(), 3, "{again}");
    let other = format!("{}/other/mine:v1", reg.host());
    let out = s.ok(&["push", NOVERIFY, "mine:v1", &other]);
    assert!(out.matches("Mounted from team/mine").count() == 3 && !out.contains(": Pushed"), "{out}");

    // --format v2s2: Docker media types, same layers.
    let v2 = format!("{}/team/mine:v2s2", reg.host());
    s.ok(&["push", NOVERIFY, "--format", "v2s2", "mine:v1", &v2]);
    let raw = Command::new("skopeo")
        .args(["inspect", "--raw", NOVERIFY, &format!("docker://{v2}")])
        .output()
        .unwrap();
    let m: serde_json::Value = serde_json::from_slice(&raw.stdout).unwrap();
    assert_eq!(m["mediaType"], "application/vnd.docker.distribution.manifest.v2+json");
    assert_eq!(m["layers"][0]["mediaType"], "application/vnd.docker.image.rootfs.diff.tar.gzip");
    let s3 = Store::empty();
    s3.ok(&["pull", "-q", NOVERIFY, &v2]);
    assert_eq!(
        s3.ok(&["run", "--rm", &v2, "cat", "/marker"]),
        "pushed-by-skiff\n",
        "a v2s2 manifest pulls and runs"
    );
    let err = s.fails(&["push", NOVERIFY, "--format", "v3", "mine:v1", &v2], 1);
    assert!(err.contains("unknown manifest format"), "{err}");
    let err = s.fails(&["push", NOVERIFY, "nothere:v1", &v2], 1);
    assert!(err.contains("No such image: nothere:v1"), "{err}");
    s.ok(&["rm", "c1"]);
}

#[test]
fn run_pulls_a_missing_image_unless_told_not_to() {
    let reg = Registry::start(RegistryOpts::default());
    let s = Store::new();
    let dest = format!("{}/lib/bb:v1", reg.host());
    s.ok(&["push", "-q", NOVERIFY, "busybox", &dest]);

    let s2 = Store::empty();
    let insecure = |c: &mut Command| {
        c.env("SKIFF_INSECURE_REGISTRIES", reg.host());
    };
    let err = {
        let mut c = s2.cmd(&["run", "--rm", "--pull", "never", &dest, "true"]);
        insecure(&mut c);
        let o = c.output().unwrap();
        assert_eq!(o.status.code(), Some(125));
        text(&o.stderr)
    };
    assert!(err.contains("Unable to find image"), "{err}");
    let mut c = s2.cmd(&["run", "--rm", &dest, "echo", "ran-after-pull"]);
    insecure(&mut c);
    let o = c.output().unwrap();
    assert_eq!(text(&o.stdout), "ran-after-pull\n", "stdout is the container's only: {}", text(&o.stderr));
    let err = text(&o.stderr);
    assert!(
        err.contains(&format!("Unable to find image '{dest}' locally")) && err.contains("Pull complete"),
        "{err}"
    );
    // --pull always fetches the manifest again even when the image is here.
    let mut c = s2.cmd(&["run", "--rm", "--pull", "always", &dest, "echo", "again"]);
    insecure(&mut c);
    let o = c.output().unwrap();
    assert_eq!(text(&o.stdout), "again\n");
    assert!(text(&o.stderr).contains("Image is up to date"), "{}", text(&o.stderr));
}

#[test]
fn htpasswd_login_pull_logout() {
    let reg = Registry::start(RegistryOpts::htpasswd("alice", "wonder"));
    let (_l, _) = pushed_sample(&reg, "private/app:v1");
    let s = Store::empty();
    let name = format!("{}/private/app:v1", reg.host());
    let err = s.fails(&["pull", NOVERIFY, &name], 1);
    assert!(err.contains("unauthorized: authentication required"), "{err}");

    let auth = s.path().join("home/.config/skiff/auth.json");
    let err = s.fails(&["login", NOVERIFY, "-u", "alice", "-p", "wrong", &reg.host()], 1);
    assert!(err.contains("incorrect username or password"), "{err}");
    assert!(!auth.exists(), "failed login stored credentials");
    let err = s.fails(&["pull", NOVERIFY, "--creds", "alice:wrong", &name], 1);
    assert!(err.contains("unauthorized: incorrect username or password"), "{err}");

    let mut c = s.cmd(&["login", NOVERIFY, "-u", "alice", "--password-stdin", &reg.host()]);
    c.stdin(std::process::Stdio::piped()).stdout(std::process::Stdio::piped());
    let mut child = c.spawn().unwrap();
    std::io::Write::write_all(child.stdin.as_mut().unwrap(), b"wonder\n").unwrap();
    let o = child.wait_with_output().unwrap();
    assert_eq!(text(&o.stdout), "Login Succeeded\n", "{}", text(&o.stderr));
    assert_eq!(fs::metadata(&auth).unwrap().permissions().mode() & 0o777, 0o600);
    assert!(!fs::read_to_string(&auth).unwrap().contains("wonder"), "the password is not stored in clear");
    s.ok(&["pull", "-q", NOVERIFY, &name]);

    assert_eq!(s.ok(&["logout", &reg.host()]), format!("Removing login credentials for {}\n", reg.host()));
    assert_eq!(s.ok(&["logout", &reg.host()]), format!("Not logged in to {}\n", reg.host()));
    s.ok(&["rmi", &name]);
    s.fails(&["pull", NOVERIFY, &name], 1);

    // Docker's config.json is read too; --creds works without any file.
    let docker = s.path().join("home/.docker");
    fs::create_dir_all(&docker).unwrap();
    fs::write(
        docker.join("config.json"),
        format!(r#"{{"auths":{{"{}":{{"auth":"YWxpY2U6d29uZGVy"}}}}}}"#, reg.host()),
    )
    .unwrap();
    s.ok(&["pull", "-q", NOVERIFY, &name]);
    fs::remove_file(docker.join("config.json")).unwrap();
    s.ok(&["rmi", &name]);
    s.ok(&["pull", "-q", NOVERIFY, "--creds", "alice:wonder", &name]);
}

#[test]
fn tls_needs_the_ca_unless_verification_is_off() {
    let reg = Registry::start(RegistryOpts {
        tls: true,
        ..Default::default()
    });
    let (_l, _) = pushed_sample(&reg, "secure/app:v1");
    let s = Store::empty();
    let name = format!("{}/secure/app:v1", reg.host());
    let err = s.fails(&["pull", &name], 1);
    assert!(err.to_lowercase().contains("certificate"), "{err}");
    s.ok(&["pull", "-q", "--cert-dir", reg.cert_dir().to_str().unwrap(), &name]);
    s.ok(&["rmi", &name]);
    s.ok(&["pull", "-q", NOVERIFY, &name]);
    // A login over TLS, checked against the CA.
    let out = s.ok(&["login", "--cert-dir", reg.cert_dir().to_str().unwrap(), "-u", "any", "-p", "thing", &reg.host()]);
    assert!(out.contains("Login Succeeded"), "{out}");
}

#[test]
fn bearer_tokens_wrong_passwords_and_expired_tokens() {
    let reg = Registry::start(RegistryOpts::token(TokenConfig::default()));
    let (_l, _) = pushed_sample(&reg, "tok/app:v1");
    let ts = reg.token_server().expect("token server");
    let (user, pass) = reg.creds().expect("creds");
    let s = Store::empty();
    let name = format!("{}/tok/app:v1", reg.host());
    let good = format!("{user}:{pass}");
    let err = s.fails(&["pull", NOVERIFY, "--creds", &format!("{user}:nope"), &name], 1);
    assert!(err.contains("unauthorized") && err.contains("incorrect username or password"), "{err}");
    let err = s.fails(&["pull", NOVERIFY, &name], 1);
    assert!(err.contains("unauthorized"), "{err}");

    let before = ts.tokens_issued();
    s.ok(&["pull", "-q", NOVERIFY, "--creds", &good, &name]);
    assert!(ts.tokens_issued() > before, "no token was asked for");

    // The first token the server hands out is already expired (yet says it is good for 300 s):
    // the registry refuses it and the pull gets a new one.
    let issued = ts.tokens_issued();
    ts.update(|c| c.expired_first = issued + 1);
    s.ok(&["rmi", &name]);
    let before = ts.tokens_issued();
    s.ok(&["pull", "-q", NOVERIFY, "--creds", &good, &name]);
    assert!(
        ts.tokens_issued() >= before + 2,
        "the expired token was not renewed ({before} -> {})",
        ts.tokens_issued()
    );
    let ls = s.ok(&["images", "--format", "{{.Repository}}"]);
    assert!(ls.contains("tok/app"), "{ls}");

    // login against the token realm.
    let out = s.ok(&["login", NOVERIFY, "-u", &user, "-p", &pass, &reg.host()]);
    assert!(out.contains("Login Succeeded"), "{out}");
    let err = s.fails(&["login", NOVERIFY, "-u", &user, "-p", "bad", &reg.host()], 1);
    assert!(err.contains("incorrect username or password"), "{err}");
    s.ok(&["rmi", &name]);
    s.ok(&["pull", "-q", NOVERIFY, &name]);
}
