//! commit of a hand-made overlay upper dir on top of an imported image.

use std::fs;
use std::os::unix::fs::{symlink, FileTypeExt, MetadataExt, PermissionsExt};

use nix::sys::stat::{mknod, Mode, SFlag};

use crate::testutil::small_rootfs;
use crate::{history, Commit, ImportOptions, Store, StoreOptions};

fn is_root() -> bool {
    nix::unistd::geteuid().is_root()
}

#[test]
fn commit_turns_overlay_forms_back_into_a_layer() {
    if !is_root() {
        return;
    }
    let t = tempfile::tempdir().unwrap();
    let s = Store::open(t.path().join("s"), StoreOptions::default()).unwrap();
    let parent = s
        .import(
            &small_rootfs("p")[..],
            &ImportOptions {
                changes: vec!["CMD [\"sh\"]".into()],
                ..Default::default()
            },
        )
        .unwrap();
    let up = t.path().join("upper");
    fs::create_dir_all(up.join("etc")).unwrap();
    fs::create_dir_all(up.join("opaque/sub")).unwrap();
    fs::write(up.join("opaque/sub/f"), b"new").unwrap();
    crate::xattr::fset(fs::File::open(up.join("opaque")).unwrap(), b"trusted.overlay.opaque", b"y").unwrap();
    crate::xattr::fset(fs::File::open(up.join("etc")).unwrap(), b"trusted.overlay.origin", b"junk").unwrap();
    mknod(&up.join("etc/hostname"), SFlag::S_IFCHR, Mode::empty(), 0).unwrap();
    fs::write(up.join("suid"), b"s").unwrap();
    nix::unistd::chown(&up.join("suid"), Some(1234.into()), Some(55.into())).unwrap();
    fs::set_permissions(up.join("suid"), fs::Permissions::from_mode(0o4755)).unwrap();
    fs::hard_link(up.join("suid"), up.join("suid2")).unwrap();
    crate::xattr::fset(
        fs::File::open(up.join("suid")).unwrap(),
        b"security.capability",
        b"\x01\x00\x00\x02\x00\x20\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00",
    )
    .unwrap();
    symlink("/nowhere", up.join("dangling")).unwrap();
    let long = "d".repeat(120);
    fs::create_dir_all(up.join(&long).join(&long)).unwrap();
    fs::write(up.join(&long).join(&long).join("deep"), b"deep").unwrap();
    let sock = std::os::unix::net::UnixListener::bind(up.join("sock")).unwrap();

    let mut cc = parent.config.config().clone().unwrap();
    cc.set_cmd(Some(vec!["sh".into(), "-c".into(), "echo hi".into()]));
    let img = s
        .commit(&Commit {
            parent: Some(&parent),
            upper: &up,
            reference: Some("committed:v1".into()),
            changes: vec!["ENV X=1".into()],
            comment: Some("a comment".into()),
            author: Some("me".into()),
            container_config: Some(cc),
        })
        .unwrap();
    drop(sock);
    assert_eq!(img.tags, vec!["docker.io/library/committed:v1"]);
    assert_eq!(img.layers.len(), 2);
    assert_eq!(img.layers[0], parent.layers[0]);
    assert_eq!(img.config.rootfs().diff_ids().len(), 2);
    let cfg = img.config.config().clone().unwrap();
    assert_eq!(cfg.env().clone().unwrap(), vec!["X=1"]);
    assert_eq!(cfg.cmd().clone().unwrap(), vec!["sh", "-c", "echo hi"]);
    assert_eq!(img.config.author().as_deref(), Some("me"));
    let h = history(&img);
    assert_eq!(h.len(), 2);
    assert_eq!((h[0].created_by.as_str(), h[0].comment.as_str()), ("sh -c echo hi", "a comment"));

    let top = &s.layer_dirs(&img).unwrap()[1];
    let wh = fs::symlink_metadata(top.join("etc/hostname")).unwrap();
    assert!(wh.file_type().is_char_device() && wh.rdev() == 0);
    assert_eq!(crate::xattr::lget(&top.join("opaque"), b"trusted.overlay.opaque").unwrap(), Some(b"y".to_vec()));
    assert_eq!(crate::xattr::lget(&top.join("etc"), b"trusted.overlay.origin").unwrap(), None);
    let su = fs::metadata(top.join("suid")).unwrap();
    assert_eq!((su.mode() & 0o7777, su.uid(), su.gid(), su.nlink()), (0o4755, 1234, 55, 2));
    assert!(crate::xattr::lget(&top.join("suid"), b"security.capability").unwrap().is_some());
    assert_eq!(fs::read_link(top.join("dangling")).unwrap().to_str(), Some("/nowhere"));
    assert_eq!(fs::read(top.join(&long).join(&long).join("deep")).unwrap(), b"deep");
    assert!(!top.join("sock").exists());
    // The stored blob is the layer tar: its digest is the diff_id.
    let blob = crate::blobs::read(s.root(), &img.layers[1].digest).unwrap();
    assert_eq!(crate::digest::sha256_of(&blob), img.layers[1].diff_id);
    assert_eq!(fs::read_dir(s.root().join("tmp")).unwrap().count(), 0);

    // Nothing changed: no new layer, an empty-layer history entry.
    let empty = t.path().join("empty");
    fs::create_dir(&empty).unwrap();
    let img2 = s
        .commit(&Commit {
            parent: Some(&img),
            upper: &empty,
            reference: None,
            changes: vec![],
            comment: None,
            author: None,
            container_config: None,
        })
        .unwrap();
    assert_eq!(img2.layers, img.layers);
    assert!(history(&img2)[0].empty_layer);
    assert_ne!(img2.id, img.id);
}
