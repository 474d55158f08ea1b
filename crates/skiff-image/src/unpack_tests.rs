//! The layer unpacker against crafted tars: what it must restore, and what it must refuse.

use std::fs;
use std::os::unix::fs::{FileTypeExt, MetadataExt, PermissionsExt};
use std::path::Path;

use crate::testutil::{Kind, TarMaker};
use crate::unpack::{unpack, UnpackOptions};
use crate::Error;

fn run(tar: &[u8], dest: &Path, rootless: bool) -> crate::Result<crate::unpack::UnpackStats> {
    unpack("test", tar, dest, UnpackOptions { rootless })
}

fn tmp() -> (tempfile::TempDir, std::path::PathBuf, std::path::PathBuf) {
    let t = tempfile::tempdir().unwrap();
    let layer = t.path().join("layer");
    let outside = t.path().join("outside");
    fs::create_dir(&layer).unwrap();
    fs::create_dir(&outside).unwrap();
    (t, layer, outside)
}

fn is_root() -> bool {
    nix::unistd::geteuid().is_root()
}

fn assert_refused(tar: &[u8], entry: &str, why: &str) {
    let (_t, layer, outside) = tmp();
    let err = run(tar, &layer, false).unwrap_err();
    let msg = err.to_string();
    assert!(matches!(err, Error::BadEntry { .. }), "{msg}");
    assert!(msg.contains(entry), "error {msg:?} does not name {entry:?}");
    assert!(msg.contains(why), "error {msg:?} does not say {why:?}");
    assert_eq!(fs::read_dir(&outside).unwrap().count(), 0, "wrote outside the layer");
}

#[test]
fn restores_files_dirs_links_modes_owners_mtimes_xattrs() {
    if !is_root() {
        return;
    }
    let (_t, layer, _) = tmp();
    let mut t = TarMaker::new();
    t.entry("./", Kind::Dir, 0o755, 0)
        .entry("bin/", Kind::Dir, 0o750, 7)
        .entry("bin/su", Kind::File(b"suid"), 0o4755, 0)
        .entry("bin/hard", Kind::Hardlink("bin/su"), 0o4755, 0)
        .entry("bin/abs", Kind::Symlink("/etc/passwd"), 0o777, 3)
        .entry("bin/rel", Kind::Symlink("../../../../x"), 0o777, 0)
        .entry_x(
            "bin/ping",
            Kind::File(b"ping"),
            0o755,
            1000,
            &[
                (
                    "security.capability",
                    b"\x01\x00\x00\x02\x00\x20\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00",
                ),
                ("trusted.overlay.opaque", b"y"),
            ],
        )
        .entry("dev/", Kind::Dir, 0o755, 0)
        .entry("dev/null", Kind::Char(1, 3), 0o666, 0)
        .entry("dev/loop9", Kind::Block(7, 9), 0o660, 0)
        .entry("dev/fifo", Kind::Fifo, 0o600, 0)
        .entry("implicit/parent/file", Kind::File(b"x"), 0o600, 0)
        .entry("ro/", Kind::Dir, 0o555, 0)
        .entry("ro/inside", Kind::File(b"ok"), 0o444, 0)
        .entry("dup", Kind::File(b"first"), 0o644, 0)
        .entry("dup", Kind::File(b"second"), 0o644, 0);
    let stats = run(&t.finish(), &layer, false).unwrap();
    assert_eq!(stats.size, 4 + 4 + 1 + 2 + 5 + 6);

    let su = fs::metadata(layer.join("bin/su")).unwrap();
    assert_eq!(su.mode() & 0o7777, 0o4755, "setuid bit lost");
    assert_eq!(su.mtime(), 1_600_000_000);
    assert_eq!(su.nlink(), 2);
    assert_eq!(fs::metadata(layer.join("bin/hard")).unwrap().ino(), su.ino());
    let bin = fs::metadata(layer.join("bin")).unwrap();
    assert_eq!((bin.uid(), bin.gid(), bin.mode() & 0o7777), (7, 7, 0o750));
    assert_eq!(bin.mtime(), 1_600_000_000, "dir mtime not restored after its children");
    assert_eq!(fs::read_link(layer.join("bin/abs")).unwrap(), Path::new("/etc/passwd"));
    assert_eq!(fs::symlink_metadata(layer.join("bin/abs")).unwrap().uid(), 3);
    assert_eq!(fs::read_link(layer.join("bin/rel")).unwrap(), Path::new("../../../../x"));
    let ping = layer.join("bin/ping");
    assert_eq!(fs::metadata(&ping).unwrap().uid(), 1000);
    assert!(crate::xattr::lget(&ping, b"security.capability").unwrap().is_some());
    assert!(crate::xattr::lget(&ping, b"trusted.overlay.opaque").unwrap().is_none());
    let null = fs::metadata(layer.join("dev/null")).unwrap();
    assert!(null.file_type().is_char_device());
    assert_eq!(null.rdev(), nix::sys::stat::makedev(1, 3));
    assert!(fs::metadata(layer.join("dev/loop9")).unwrap().file_type().is_block_device());
    assert!(fs::metadata(layer.join("dev/fifo")).unwrap().file_type().is_fifo());
    assert_eq!(fs::read(layer.join("implicit/parent/file")).unwrap(), b"x");
    assert_eq!(fs::metadata(layer.join("ro")).unwrap().permissions().mode() & 0o777, 0o555);
    assert_eq!(fs::read(layer.join("ro/inside")).unwrap(), b"ok");
    assert_eq!(fs::read(layer.join("dup")).unwrap(), b"second");
}

#[test]
fn whiteouts_become_overlay_forms() {
    if !is_root() {
        return;
    }
    let (_t, layer, _) = tmp();
    let mut t = TarMaker::new();
    t.entry("etc/", Kind::Dir, 0o755, 0)
        .entry("etc/.wh.passwd", Kind::File(b""), 0o644, 0)
        .entry("var/", Kind::Dir, 0o755, 0)
        .entry("var/.wh..wh..opq", Kind::File(b""), 0o644, 0)
        .entry("var/new", Kind::File(b"n"), 0o644, 0)
        .entry(".wh..wh.plnk", Kind::Dir, 0o755, 0);
    run(&t.finish(), &layer, false).unwrap();
    let wh = fs::symlink_metadata(layer.join("etc/passwd")).unwrap();
    assert!(wh.file_type().is_char_device());
    assert_eq!(wh.rdev(), 0);
    assert!(!layer.join("etc/.wh.passwd").exists());
    assert_eq!(crate::xattr::lget(&layer.join("var"), b"trusted.overlay.opaque").unwrap(), Some(b"y".to_vec()));
    assert!(!layer.join("var/.wh..wh..opq").exists());
    assert!(!layer.join(".wh..wh.plnk").exists());
}

#[test]
fn refuses_dotdot_components() {
    let mut t = TarMaker::new();
    t.entry("../outside/pwned", Kind::File(b"x"), 0o644, 0);
    assert_refused(&t.finish(), "../outside/pwned", "'..'");
    let mut t = TarMaker::new();
    t.entry("a/../../outside/pwned", Kind::File(b"x"), 0o644, 0);
    assert_refused(&t.finish(), "a/../../outside/pwned", "'..'");
}

#[test]
fn absolute_paths_are_made_relative_to_the_layer() {
    let (_t, layer, _) = tmp();
    let mut t = TarMaker::new();
    t.entry("/abs/file", Kind::File(b"inside"), 0o644, 0);
    run(&t.finish(), &layer, !is_root()).unwrap();
    assert_eq!(fs::read(layer.join("abs/file")).unwrap(), b"inside");
}

#[test]
fn refuses_writes_through_symlinks() {
    let (t, _, outside) = tmp();
    let outside_s = outside.to_str().unwrap().to_string();
    for target in [outside_s.as_str(), "../outside", "../../../../../../..", "."] {
        let mut m = TarMaker::new();
        m.entry("evil", Kind::Symlink(target), 0o777, 0)
            .entry("evil/passwd", Kind::File(b"pwned"), 0o644, 0);
        assert_refused(&m.finish(), "evil/passwd", "symlink");
    }
    // The classic: a symlink to /etc, then a file through it. Never reaches /etc.
    let probe = format!("skiff-unpack-probe-{}", std::process::id());
    let mut m = TarMaker::new();
    m.entry("etc", Kind::Symlink("/etc"), 0o777, 0)
        .entry(&format!("etc/{probe}"), Kind::File(b"pwned"), 0o644, 0);
    assert_refused(&m.finish(), &probe, "symlink");
    assert!(!Path::new("/etc").join(&probe).exists());
    // Also a symlink deeper in the path, and a directory entry through a symlink.
    let mut m = TarMaker::new();
    m.entry("a/", Kind::Dir, 0o755, 0)
        .entry("a/b", Kind::Symlink(&outside_s), 0o777, 0)
        .entry("a/b/c/", Kind::Dir, 0o755, 0);
    assert_refused(&m.finish(), "a/b/c/", "symlink");
    drop(t);
}

#[test]
fn refuses_hardlinks_outside_the_layer() {
    let (_t, _, outside) = tmp();
    fs::write(outside.join("secret"), b"s").unwrap();
    let cases: Vec<(Vec<u8>, &str, &str)> = vec![
        (
            {
                let mut m = TarMaker::new();
                m.entry("link", Kind::Hardlink("../outside/secret"), 0o644, 0);
                m.finish()
            },
            "link",
            "'..'",
        ),
        (
            {
                let mut m = TarMaker::new();
                m.entry("link", Kind::Hardlink("/etc/passwd"), 0o644, 0);
                m.finish()
            },
            "link",
            "does not exist in the layer",
        ),
        (
            {
                let mut m = TarMaker::new();
                m.entry("up", Kind::Symlink(outside.to_str().unwrap()), 0o777, 0)
                    .entry("link", Kind::Hardlink("up/secret"), 0o644, 0);
                m.finish()
            },
            "link",
            "symlink",
        ),
    ];
    for (tar, entry, why) in cases {
        let (_t2, layer, _) = tmp();
        let err = run(&tar, &layer, false).unwrap_err().to_string();
        assert!(err.contains(entry) && err.contains(why), "{err}");
        assert!(!layer.join("link").exists());
    }
    assert_eq!(fs::metadata(outside.join("secret")).unwrap().nlink(), 1);
}

#[test]
fn refuses_bad_whiteouts() {
    for name in [".wh..", ".wh...", ".wh.", "d/.wh.."] {
        let mut m = TarMaker::new();
        m.entry(name, Kind::File(b""), 0o644, 0);
        assert_refused(&m.finish(), name, "invalid whiteout");
    }
}

#[test]
fn rootless_refuses_device_nodes() {
    for kind in [Kind::Char(1, 3), Kind::Block(8, 0)] {
        let (_t, layer, _) = tmp();
        let mut m = TarMaker::new();
        m.entry("dev/x", kind, 0o600, 0);
        let err = run(&m.finish(), &layer, true).unwrap_err().to_string();
        assert!(err.contains("dev/x") && err.contains("rootless"), "{err}");
        assert!(!layer.join("dev/x").exists());
    }
}

#[test]
fn a_file_replacing_a_directory_and_back() {
    let (_t, layer, _) = tmp();
    let mut m = TarMaker::new();
    m.entry("x/", Kind::Dir, 0o755, 0)
        .entry("x/y", Kind::File(b"1"), 0o644, 0)
        .entry("x", Kind::File(b"now a file"), 0o644, 0)
        .entry("z", Kind::Symlink("x"), 0o777, 0)
        .entry("z/", Kind::Dir, 0o700, 0);
    run(&m.finish(), &layer, !is_root()).unwrap();
    assert_eq!(fs::read(layer.join("x")).unwrap(), b"now a file");
    assert!(fs::symlink_metadata(layer.join("z")).unwrap().is_dir());
}

#[test]
fn rootless_uses_user_overlay_xattrs_and_whiteout_devices() {
    let (_t, layer, _) = tmp();
    let mut t = TarMaker::new();
    t.entry("d/", Kind::Dir, 0o755, 0)
        .entry("d/.wh..wh..opq", Kind::File(b""), 0o644, 0)
        .entry("d/.wh.gone", Kind::File(b""), 0o644, 0)
        .entry("f", Kind::File(b"x"), 0o644, 4242);
    run(&t.finish(), &layer, true).unwrap();
    assert_eq!(crate::xattr::lget(&layer.join("d"), b"user.overlay.opaque").unwrap(), Some(b"y".to_vec()));
    assert_eq!(crate::xattr::lget(&layer.join("d"), b"trusted.overlay.opaque").unwrap(), None);
    // Unprivileged whiteout creation (char 0:0) is allowed since Linux 5.8.
    let wh = fs::symlink_metadata(layer.join("d/gone")).unwrap();
    assert!(wh.file_type().is_char_device() && wh.rdev() == 0);
    assert_eq!(fs::read(layer.join("f")).unwrap(), b"x");
}
