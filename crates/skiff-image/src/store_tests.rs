//! The store's API on a store in a temp dir: import, resolve, tag, list, remove, prune.

use std::fs;

use crate::testutil::{gzip, small_rootfs, Kind, TarMaker};
use crate::{history, Error, ImportOptions, Removed, Store, StoreOptions};

fn store() -> (tempfile::TempDir, Store) {
    let t = tempfile::tempdir().unwrap();
    let s = Store::open(
        t.path().join("store"),
        StoreOptions {
            rootless: !nix::unistd::geteuid().is_root(),
        },
    )
    .unwrap();
    (t, s)
}

fn import(s: &Store, marker: &str, reference: Option<&str>) -> crate::Image {
    s.import(
        &small_rootfs(marker)[..],
        &ImportOptions {
            reference: reference.map(str::to_string),
            ..Default::default()
        },
    )
    .unwrap()
}

fn no_debris(s: &Store) {
    assert_eq!(fs::read_dir(s.root().join("tmp")).unwrap().count(), 0, "tmp debris");
}

#[test]
fn import_resolve_and_layer_dirs() {
    let (_t, s) = store();
    let img = s
        .import(
            &gzip(&small_rootfs("one"))[..],
            &ImportOptions {
                reference: Some("busybox".into()),
                changes: vec!["CMD [\"sh\"]".into(), "ENV A=b".into()],
                message: Some("from a test".into()),
            },
        )
        .unwrap();
    assert_eq!(img.tags, vec!["docker.io/library/busybox:latest"]);
    assert_eq!(img.layers.len(), 1);
    assert_eq!(img.layers[0].digest, img.layers[0].diff_id, "uncompressed layer blob");
    assert_eq!(img.config.rootfs().diff_ids(), &vec![img.layers[0].diff_id.clone()]);
    let cfg = img.config.config().clone().unwrap();
    assert_eq!(cfg.cmd().clone().unwrap(), vec!["sh"]);
    assert_eq!(cfg.env().clone().unwrap(), vec!["A=b"]);
    assert_eq!(img.size, 12 + 3);
    assert_eq!(img.digests, vec![format!("docker.io/library/busybox@{}", img.manifest_digest)]);
    let hex = img.id.strip_prefix("sha256:").unwrap();
    for name in [
        "busybox",
        "busybox:latest",
        "docker.io/library/busybox:latest",
        "index.docker.io/library/busybox",
        &img.id,
        hex,
        &hex[..5],
        &format!("busybox@{}", img.manifest_digest),
    ] {
        assert_eq!(s.resolve(name).unwrap().id, img.id, "{name}");
    }
    let dirs = s.layer_dirs(&img).unwrap();
    assert_eq!(fs::read(dirs[0].join("etc/hostname")).unwrap(), b"one");
    let h = history(&img);
    assert_eq!(h.len(), 1);
    assert_eq!((h[0].comment.as_str(), h[0].size), ("from a test", 15));
    assert_eq!(h[0].id.as_deref(), Some(img.id.as_str()));

    let e = s.resolve("nothere").unwrap_err();
    assert_eq!(e.to_string(), "No such image: nothere");
    assert!(matches!(s.resolve("busybox:other"), Err(Error::ImageNotFound(_))));
    assert!(matches!(s.resolve(&format!("other@{}", img.manifest_digest)), Err(Error::ImageNotFound(_))));
    no_debris(&s);
}

#[test]
fn the_same_content_is_stored_once_and_zstd_works() {
    let (_t, s) = store();
    let a = import(&s, "same", Some("a"));
    let b = s
        .import(&zstd::encode_all(&small_rootfs("same")[..], 1).unwrap()[..], &ImportOptions::default())
        .unwrap();
    assert_eq!(a.layers[0].diff_id, b.layers[0].diff_id);
    assert_eq!(fs::read_dir(s.root().join("layers")).unwrap().count(), 1);
    assert_ne!(a.id, b.id, "created times differ");
    assert_eq!(s.list().unwrap().len(), 2);
}

#[test]
fn tag_and_ambiguous_prefixes() {
    let (_t, s) = store();
    let imgs: Vec<_> = (0..20).map(|i| import(&s, &format!("m{i}"), None)).collect();
    s.tag(&imgs[0].id, "host:5000/ns/app:v1").unwrap();
    s.tag("host:5000/ns/app:v1", "other").unwrap();
    let img = s.resolve("other:latest").unwrap();
    assert_eq!(img.tags, vec!["docker.io/library/other:latest", "host:5000/ns/app:v1"]);
    // Retagging moves the tag.
    s.tag(&imgs[1].id, "other").unwrap();
    assert_eq!(s.resolve("other").unwrap().id, imgs[1].id);
    // With 20 ids, some one-digit prefix is shared by two of them.
    let mut counts = std::collections::HashMap::new();
    for i in &imgs {
        *counts.entry(&i.id[7..8]).or_insert(0) += 1;
    }
    let shared = counts.iter().find(|(_, n)| **n > 1).map(|(p, _)| p.to_string()).unwrap();
    assert!(matches!(s.resolve(&shared), Err(Error::AmbiguousId(_))));
    assert!(s.tag("nothere", "x").is_err());
    assert!(s.tag(&imgs[0].id, "Bad:tag").is_err());
    assert!(s.tag(&imgs[0].id, &format!("x@{}", imgs[0].manifest_digest)).is_err());
}

#[test]
fn remove_follows_docker_rmi() {
    let (_t, s) = store();
    let img = import(&s, "rm", Some("app:v1"));
    s.tag("app:v1", "app:v2").unwrap();
    s.tag("app:v1", "other:x").unwrap();
    let none = |_: &str| false;
    // By tag with other tags left: untag only.
    assert_eq!(s.remove("app:v2", false, &none).unwrap(), vec![Removed::Untagged("app:v2".into())]);
    // By id with tags in two repositories: needs force.
    let e = s.remove(&img.id, false, &none).unwrap_err().to_string();
    assert!(e.contains("referenced in multiple repositories"), "{e}");
    // In use: the last tag cannot go without force, and the image is never deleted.
    s.remove("other:x", false, &none).unwrap();
    let used = |id: &str| id == img.id;
    let e = s.remove_with("app:v1", false, &|id| (id == img.id).then(|| "c0ffee".into())).unwrap_err();
    assert!(e.to_string().contains("container c0ffee"), "{e}");
    assert_eq!(s.remove("app:v1", true, &used).unwrap(), vec![Removed::Untagged("app:v1".into())]);
    let still = s.resolve(&img.id).unwrap();
    assert!(still.tags.is_empty());
    assert!(s.layer_dirs(&still).is_ok());
    // Not in use any more: deleting by id deletes image, blobs and the layer.
    let out = s.remove(&img.id[..15], false, &none).unwrap();
    assert_eq!(out, vec![Removed::Deleted(img.id.clone()), Removed::Deleted(img.layers[0].diff_id.clone())]);
    assert!(matches!(s.resolve(&img.id), Err(Error::ImageNotFound(_))));
    assert_eq!(fs::read_dir(s.root().join("layers")).unwrap().count(), 0);
    assert_eq!(fs::read_dir(s.root().join("blobs/sha256")).unwrap().count(), 0);
    assert_eq!(fs::read_dir(s.root().join("images")).unwrap().count(), 0);
    no_debris(&s);
}

#[test]
fn shared_layers_survive_removal_of_one_user() {
    let (_t, s) = store();
    let a = import(&s, "shared", Some("a"));
    let b = import(&s, "shared", Some("b"));
    let out = s.remove("a", false, &|_| false).unwrap();
    assert_eq!(out, vec![Removed::Untagged("a:latest".into()), Removed::Deleted(a.id.clone())]);
    let b = s.resolve(&b.id).unwrap();
    assert!(s.layer_dirs(&b).unwrap()[0].join("etc/hostname").exists());
    assert!(crate::blobs::exists(s.root(), &b.layers[0].digest));
}

#[test]
fn prune_dangling_and_all() {
    let (_t, s) = store();
    let dangling = import(&s, "d", None);
    let tagged = import(&s, "t", Some("keep"));
    let used = import(&s, "u", Some("used"));
    let in_use = |id: &str| id == used.id;
    let out = s.prune(false, &in_use).unwrap();
    assert!(out.contains(&Removed::Deleted(dangling.id.clone())));
    assert_eq!(s.list().unwrap().len(), 2);
    let out = s.prune(true, &in_use).unwrap();
    assert_eq!(out[0], Removed::Untagged("keep:latest".into()));
    assert!(out.contains(&Removed::Deleted(tagged.id.clone())));
    let left = s.list().unwrap();
    assert_eq!(left.len(), 1);
    assert_eq!(left[0].id, used.id);
    let u = s.usage().unwrap();
    assert_eq!(u.images, 1);
    assert_eq!(u.layers_size, 13);
    assert_eq!(u.reclaimable(&in_use), 0);
    assert_eq!(u.reclaimable(&|_| false), 13);
}

#[test]
fn failed_imports_leave_nothing() {
    let (_t, s) = store();
    let mut m = TarMaker::new();
    m.entry("ok", Kind::File(b"fine"), 0o644, 0).entry("../escape", Kind::File(b"x"), 0o644, 0);
    let e = s.import(
        &m.finish()[..],
        &ImportOptions {
            reference: Some("bad".into()),
            ..Default::default()
        },
    );
    assert!(e.unwrap_err().to_string().contains("../escape"));
    // A truncated gzip.
    let gz = gzip(&small_rootfs(&"x".repeat(100_000)));
    let e = s.import(&gz[..gz.len() / 2], &ImportOptions::default()).unwrap_err();
    assert!(matches!(e, Error::LayerRead { .. }), "{e}");
    assert!(s.list().unwrap().is_empty());
    assert!(matches!(s.resolve("bad"), Err(Error::ImageNotFound(_))));
    for d in ["layers", "blobs/sha256", "images", "tmp"] {
        assert_eq!(fs::read_dir(s.root().join(d)).unwrap().count(), 0, "{d} not empty");
    }
}

#[test]
fn corrupted_config_blob_is_detected() {
    let (_t, s) = store();
    let img = import(&s, "c", Some("c"));
    let p = crate::blobs::path(s.root(), &img.id).unwrap();
    let mut data = fs::read(&p).unwrap();
    data[10] ^= 1;
    fs::write(&p, data).unwrap();
    assert!(matches!(s.resolve("c"), Err(Error::DigestMismatch { .. })));
}

#[test]
fn interrupted_placement_is_collected_at_open() {
    let (_t, s) = store();
    let img = import(&s, "gc", Some("gc"));
    // As if a process died between placing content and writing the record.
    fs::write(s.root().join("blobs/sha256").join("f".repeat(64)), b"orphan").unwrap();
    fs::create_dir_all(s.root().join("layers").join("e".repeat(64)).join("diff")).unwrap();
    fs::write(s.root().join("gc-pending"), b"").unwrap();
    let s2 = Store::open(s.root(), s.options()).unwrap();
    assert!(!s.root().join("gc-pending").exists());
    assert!(!s.root().join("layers").join("e".repeat(64)).exists());
    assert!(!s.root().join("blobs/sha256").join("f".repeat(64)).exists());
    assert_eq!(s2.resolve("gc").unwrap().id, img.id);
    assert!(s2.layer_dirs(&img).is_ok());
}
