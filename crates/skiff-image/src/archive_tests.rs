//! save -> load round trips between two stores, and archives whose digests lie.

use std::fs;

use serde_json::json;

use crate::testutil::{gzip, small_rootfs};
use crate::{ArchiveFormat, Error, ImportOptions, Store, StoreOptions};

fn store(t: &tempfile::TempDir, name: &str) -> Store {
    let rootless = !nix::unistd::geteuid().is_root();
    Store::open(t.path().join(name), StoreOptions { rootless }).unwrap()
}

fn no_debris(s: &Store) {
    assert_eq!(fs::read_dir(s.root().join("tmp")).unwrap().count(), 0, "tmp debris");
}

/// An OCI archive written by hand: one gzip layer, with knobs to make it lie.
fn oci_archive(config_mut: impl Fn(&mut serde_json::Value), layer_digest_lie: bool) -> Vec<u8> {
    oci_archive_tampered(config_mut, layer_digest_lie, None)
}

/// Same; `tamper` (0 config, 1 layer, 2 manifest) flips a byte of that blob after it was
/// named by its digest.
fn oci_archive_tampered(config_mut: impl Fn(&mut serde_json::Value), layer_digest_lie: bool, tamper: Option<usize>) -> Vec<u8> {
    let layer = gzip(&small_rootfs("oci"));
    let diff_id = crate::digest::sha256_of(&small_rootfs("oci"));
    let mut config = json!({
        "architecture": "amd64", "os": "linux",
        "config": {"Cmd": ["sh"]},
        "rootfs": {"type": "layers", "diff_ids": [diff_id]},
    });
    config_mut(&mut config);
    let config = serde_json::to_vec(&config).unwrap();
    let layer_digest = if layer_digest_lie {
        crate::digest::sha256_of(b"something else")
    } else {
        crate::digest::sha256_of(&layer)
    };
    let manifest = serde_json::to_vec(&json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json",
                   "digest": crate::digest::sha256_of(&config), "size": config.len()},
        "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar+gzip",
                    "digest": layer_digest, "size": layer.len()}],
    }))
    .unwrap();
    let index = serde_json::to_vec(&json!({
        "schemaVersion": 2,
        "manifests": [{"mediaType": "application/vnd.oci.image.manifest.v1+json",
                       "digest": crate::digest::sha256_of(&manifest), "size": manifest.len(),
                       "annotations": {"org.opencontainers.image.ref.name": "example.com/oci/img:v1"}}],
    }))
    .unwrap();
    let mut b = tar::Builder::new(Vec::new());
    let mut add = |name: String, data: &[u8]| {
        let mut h = tar::Header::new_gnu();
        h.set_size(data.len() as u64);
        h.set_mode(0o644);
        h.set_cksum();
        b.append_data(&mut h, name, data).unwrap();
    };
    for (i, blob) in [&config, &layer, &manifest].into_iter().enumerate() {
        let name = format!("blobs/sha256/{}", crate::digest::hex_of(&crate::digest::sha256_of(blob)).unwrap());
        let mut blob = blob.clone();
        if tamper == Some(i) {
            let mid = blob.len() / 2;
            blob[mid] ^= 0x20;
        }
        add(name, &blob);
    }
    add("index.json".into(), &index);
    add("oci-layout".into(), br#"{"imageLayoutVersion":"1.0.0"}"#);
    b.into_inner().unwrap()
}

#[test]
fn save_then_load_round_trips_in_both_formats() {
    let t = tempfile::tempdir().unwrap();
    let a = store(&t, "a");
    let img = a
        .import(
            &small_rootfs("rt")[..],
            &ImportOptions {
                reference: Some("rt:v1".into()),
                ..Default::default()
            },
        )
        .unwrap();
    for (i, format) in [ArchiveFormat::DockerArchive, ArchiveFormat::OciArchive].into_iter().enumerate() {
        let mut out = Vec::new();
        a.save(&["rt:v1".to_string()], format, &mut out).unwrap();
        let b = store(&t, &format!("b{i}"));
        // The archive may itself be compressed.
        let loaded = b.load(&gzip(&out)[..]).unwrap();
        assert_eq!(loaded.len(), 1);
        let l = &loaded[0];
        assert_eq!(l.id, img.id, "{format:?}");
        assert_eq!(l.tags, vec!["docker.io/library/rt:v1"]);
        assert_eq!(l.layers[0].diff_id, img.layers[0].diff_id);
        if format == ArchiveFormat::OciArchive {
            assert_eq!(l.manifest_digest, img.manifest_digest, "manifest kept as is");
        }
        let dirs = b.layer_dirs(l).unwrap();
        assert_eq!(fs::read(dirs[0].join("etc/hostname")).unwrap(), b"rt");
        no_debris(&b);
        // Loading again is idempotent.
        assert_eq!(b.load(&out[..]).unwrap()[0].id, img.id);
        assert_eq!(b.list().unwrap().len(), 1);
    }
    // By id: no tag in the archive.
    let mut out = Vec::new();
    a.save(std::slice::from_ref(&img.id), ArchiveFormat::DockerArchive, &mut out).unwrap();
    let c = store(&t, "c");
    assert!(c.load(&out[..]).unwrap()[0].tags.is_empty());
}

#[test]
fn loads_a_hand_made_oci_archive_with_a_gzip_layer() {
    let t = tempfile::tempdir().unwrap();
    let s = store(&t, "s");
    let imgs = s.load(&oci_archive(|_| {}, false)[..]).unwrap();
    assert_eq!(imgs[0].tags, vec!["example.com/oci/img:v1"]);
    assert_eq!(imgs[0].layers[0].media_type, "application/vnd.oci.image.layer.v1.tar+gzip");
    assert_eq!(s.resolve("example.com/oci/img:v1").unwrap().id, imgs[0].id);
    // Saved as docker-archive, the gzip layer is written uncompressed and loads elsewhere.
    let mut out = Vec::new();
    s.save(&["example.com/oci/img:v1".into()], ArchiveFormat::DockerArchive, &mut out).unwrap();
    let s2 = store(&t, "s2");
    assert_eq!(s2.load(&out[..]).unwrap()[0].id, imgs[0].id);
}

#[test]
fn lying_archives_are_refused_and_leave_nothing() {
    let t = tempfile::tempdir().unwrap();
    let s = store(&t, "s");
    // diff_id in the config does not match the layer.
    let bad_diff = oci_archive(|c| c["rootfs"]["diff_ids"] = json!([crate::digest::sha256_of(b"x")]), false);
    let e = s.load(&bad_diff[..]).unwrap_err();
    assert!(matches!(e, Error::DigestMismatch { .. }) && e.to_string().contains("diff_id"), "{e}");
    // The manifest names a layer digest the archive does not hold.
    let e = s.load(&oci_archive(|_| {}, true)[..]).unwrap_err();
    assert!(e.to_string().contains("missing entry blobs/sha256/"), "{e}");
    // A blob whose content does not match its name.
    let mut good = oci_archive(|_| {}, false);
    let pos = good.windows(5).position(|w| w == b"\"sh\"]").unwrap();
    good[pos + 1] = b'x';
    let e = s.load(&good[..]).unwrap_err();
    assert!(matches!(e, Error::DigestMismatch { .. }), "{e}");
    // Each kind of blob altered after it was named by its digest.
    for (i, what) in ["config", "layer", "manifest"].into_iter().enumerate() {
        let e = s.load(&oci_archive_tampered(|_| {}, false, Some(i))[..]).unwrap_err();
        assert!(matches!(e, Error::DigestMismatch { .. }), "{what}: {e}");
        assert!(e.to_string().contains(what), "{what}: {e}");
    }
    // Truncated.
    let good = gzip(&oci_archive(|_| {}, false));
    assert!(s.load(&good[..good.len() - 40]).is_err());
    assert!(s.list().unwrap().is_empty());
    for d in ["layers", "blobs/sha256", "images", "tmp"] {
        assert_eq!(fs::read_dir(s.root().join(d)).unwrap().count(), 0, "{d} not empty");
    }
}

/// Rewrites a tar, passing each entry's name and data through `f`.
fn rewrite(tar_bytes: &[u8], f: impl Fn(&str, Vec<u8>) -> (String, Vec<u8>)) -> Vec<u8> {
    let mut out = tar::Builder::new(Vec::new());
    let mut a = tar::Archive::new(tar_bytes);
    for e in a.entries().unwrap() {
        let mut e = e.unwrap();
        let name = e.path().unwrap().to_string_lossy().into_owned();
        let mut data = Vec::new();
        std::io::Read::read_to_end(&mut e, &mut data).unwrap();
        let mut h = e.header().clone();
        let (name, data) = f(&name, data);
        h.set_size(data.len() as u64);
        out.append_data(&mut h, name, &data[..]).unwrap();
    }
    out.into_inner().unwrap()
}

#[test]
fn docker_archives_with_altered_layers_or_configs_are_refused() {
    let t = tempfile::tempdir().unwrap();
    let a = store(&t, "a");
    a.import(
        &small_rootfs("dk")[..],
        &ImportOptions {
            reference: Some("dk".into()),
            ..Default::default()
        },
    )
    .unwrap();
    let mut good = Vec::new();
    a.save(&["dk".into()], ArchiveFormat::DockerArchive, &mut good).unwrap();
    let s = store(&t, "s");
    // A layer.tar whose content is not the config's diff_id (the file's bytes changed).
    let bad_layer = rewrite(&good, |n, mut d| {
        if n.ends_with("layer.tar") {
            let p = d.windows(2).position(|w| w == b"dk").unwrap();
            d[p] = b'X';
        }
        (n.to_string(), d)
    });
    let e = s.load(&bad_layer[..]).unwrap_err();
    assert!(matches!(e, Error::DigestMismatch { .. }) && e.to_string().contains("diff_id"), "{e}");
    // A config whose content is not the digest its file name says.
    let bad_config = rewrite(&good, |n, mut d| {
        if n.ends_with(".json") && n != "manifest.json" {
            d.push(b' ');
        }
        (n.to_string(), d)
    });
    let e = s.load(&bad_config[..]).unwrap_err();
    assert!(matches!(e, Error::DigestMismatch { .. }) && e.to_string().contains("config"), "{e}");
    assert!(s.list().unwrap().is_empty());
    assert_eq!(fs::read_dir(s.root().join("layers")).unwrap().count(), 0);
    assert_eq!(fs::read_dir(s.root().join("tmp")).unwrap().count(), 0);
    // Unaltered, it loads.
    assert_eq!(s.load(&good[..]).unwrap().len(), 1);
}

/// A writer that removes the image being saved on its first write.
struct RemovingWriter<'a> {
    store: &'a Store,
    name: &'a str,
    removed: bool,
    out: Vec<u8>,
}

impl std::io::Write for RemovingWriter<'_> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        if !self.removed {
            self.removed = true;
            // Would deadlock if save held the store lock while writing.
            self.store.remove(self.name, false, &|_| false).unwrap();
        }
        self.out.extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[test]
fn save_pins_its_content_and_does_not_block_writers() {
    let t = tempfile::tempdir().unwrap();
    let a = store(&t, "a");
    let img = a
        .import(
            &small_rootfs("pin")[..],
            &ImportOptions {
                reference: Some("pin".into()),
                ..Default::default()
            },
        )
        .unwrap();
    for format in [ArchiveFormat::DockerArchive, ArchiveFormat::OciArchive] {
        let a = store(&t, &format!("{format:?}"));
        a.load(
            &{
                let mut v = Vec::new();
                store(&t, "a").save(&["pin".into()], format, &mut v).unwrap();
                v
            }[..],
        )
        .unwrap();
        let mut w = RemovingWriter {
            store: &a,
            name: "pin",
            removed: false,
            out: Vec::new(),
        };
        a.save(&["pin".into()], format, &mut w).unwrap();
        assert!(a.list().unwrap().is_empty(), "remove did not happen");
        assert_eq!(fs::read_dir(a.root().join("blobs/sha256")).unwrap().count(), 0);
        // The archive written meanwhile is complete.
        let b = store(&t, &format!("b{format:?}"));
        assert_eq!(b.load(&w.out[..]).unwrap()[0].id, img.id);
    }
}
