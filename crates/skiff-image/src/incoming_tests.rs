//! The pull pipeline without a network: whole, resumed, cut, corrupt, too long, hostile layers.

use std::fs;
use std::io::{self, Read};

use oci_spec::image::{ImageConfiguration, ImageConfigurationBuilder, RootFsBuilder};

use crate::digest::sha256_of;
use crate::testutil::{gzip, small_rootfs, Kind, TarMaker};
use crate::{Error, LayerDesc, Store, StoreOptions};

fn store() -> (tempfile::TempDir, Store) {
    let t = tempfile::tempdir().unwrap();
    let rootless = !nix::unistd::geteuid().is_root();
    let s = Store::open(t.path().join("store"), StoreOptions { rootless }).unwrap();
    (t, s)
}

fn desc(blob: &[u8], tar: &[u8]) -> LayerDesc {
    LayerDesc {
        digest: sha256_of(blob),
        size: blob.len() as u64,
        diff_id: sha256_of(tar),
        media_type: "application/vnd.oci.image.layer.v1.tar+gzip".into(),
    }
}

/// A reader that fails after `cut` bytes, like a dropped connection.
struct Cut<'a> {
    data: &'a [u8],
    cut: usize,
}

impl Read for Cut<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if self.cut == 0 {
            return Err(io::Error::new(io::ErrorKind::ConnectionReset, "connection reset by peer"));
        }
        let n = buf.len().min(self.cut).min(self.data.len());
        buf[..n].copy_from_slice(&self.data[..n]);
        self.data = &self.data[n..];
        self.cut -= n;
        Ok(n)
    }
}

fn partial_file(s: &Store, d: &LayerDesc) -> std::path::PathBuf {
    s.root().join("incoming").join(format!("{}.part", &d.digest[7..]))
}

fn config_for(diff_ids: &[&str]) -> ImageConfiguration {
    let rootfs = RootFsBuilder::default()
        .typ("layers")
        .diff_ids(diff_ids.iter().map(|d| d.to_string()).collect::<Vec<_>>())
        .build()
        .unwrap();
    ImageConfigurationBuilder::default().rootfs(rootfs).build().unwrap()
}

/// A big layer (so a cut lands mid-stream): many files of varied content.
fn big_tar() -> Vec<u8> {
    big_tar_sized().0
}

/// The big layer and the bytes of its files.
fn big_tar_sized() -> (Vec<u8>, u64) {
    let mut t = TarMaker::new();
    t.entry("data/", Kind::Dir, 0o755, 0);
    let bodies: Vec<Vec<u8>> = (0..200).map(|i| format!("file {i} ").repeat(500 + i).into_bytes()).collect();
    for (i, b) in bodies.iter().enumerate() {
        t.entry(&format!("data/f{i}"), Kind::File(b), 0o644, 0);
    }
    (t.finish(), bodies.iter().map(|b| b.len() as u64).sum())
}

#[test]
fn a_layer_streams_in_and_the_image_is_added() {
    let (_t, s) = store();
    let tar = small_rootfs("pulled");
    let blob = gzip(&tar);
    let d = desc(&blob, &tar);
    let inc = s.incoming().unwrap();
    let p = inc.open_partial(&d.digest).unwrap();
    assert!(p.is_empty());
    let layer = inc.stage_layer(&d, p, &blob[..]).unwrap();
    assert_eq!(layer.digest, d.digest);
    let cfg = serde_json::to_vec(&config_for(&[&d.diff_id])).unwrap();
    let cfg_digest = sha256_of(&cfg);
    inc.stage_blob(&cfg, &cfg_digest, "config").unwrap();
    let man = b"{\"schemaVersion\":2}";
    inc.stage_blob(man, &sha256_of(man), "manifest").unwrap();
    assert!(inc.stage_blob(man, &cfg_digest, "manifest").is_err(), "a wrong digest is refused");
    let img = inc
        .finish(
            &cfg_digest,
            (&sha256_of(man), crate::manifest::OCI_MANIFEST),
            vec![layer],
            &["localhost:5000/a:b".into()],
            &[format!("localhost:5000/a@{}", sha256_of(b"index"))],
        )
        .unwrap();
    let dirs = s.layer_dirs(&img).unwrap();
    assert_eq!(fs::read(dirs[0].join("etc/hostname")).unwrap(), b"pulled");
    assert!(s.has_blob(&d.digest) && s.has_layer(&d.diff_id));
    assert!(!partial_file(&s, &d).exists(), "download file left");
    assert_eq!(s.resolve("localhost:5000/a:b").unwrap().id, cfg_digest);
    let by_index = format!("localhost:5000/a@{}", sha256_of(b"index"));
    assert_eq!(s.resolve(&by_index).unwrap().id, cfg_digest, "found by the digest it was pulled by");
    assert!(s.resolve(&by_index).unwrap().digests.contains(&by_index));
}

#[test]
fn a_cut_download_is_kept_and_resumed() {
    let (_t, s) = store();
    let (tar, files) = big_tar_sized();
    let blob = gzip(&tar);
    assert!(blob.len() > 10_000, "{}", blob.len());
    let d = desc(&blob, &tar);
    let cut = blob.len() / 2;
    {
        let inc = s.incoming().unwrap();
        let p = inc.open_partial(&d.digest).unwrap();
        let err = inc.stage_layer(&d, p, Cut { data: &blob, cut }).unwrap_err();
        assert!(matches!(err, Error::LayerRead { .. }), "{err}");
        assert!(err.to_string().contains("connection reset"), "{err}");
        assert!(err.to_string().contains(&d.digest), "names the layer: {err}");
    }
    assert_eq!(fs::metadata(partial_file(&s, &d)).unwrap().len(), cut as u64);
    let inc = s.incoming().unwrap();
    let p = inc.open_partial(&d.digest).unwrap();
    assert_eq!(p.len(), cut as u64);
    let layer = inc.stage_layer(&d, p, &blob[cut..]).unwrap();
    assert_eq!(layer.unpacked_size, files, "file bytes unpacked");
}

#[test]
fn wrong_content_is_discarded_and_named() {
    let (_t, s) = store();
    let tar = big_tar();
    let blob = gzip(&tar);
    let d = desc(&blob, &tar);
    let inc = s.incoming().unwrap();

    // One flipped byte: a digest mismatch (or a gzip error found while draining), discarded.
    let mut bad = blob.clone();
    bad[blob.len() / 3] ^= 0xff;
    let err = inc.stage_layer(&d, inc.open_partial(&d.digest).unwrap(), &bad[..]).unwrap_err();
    assert!(matches!(err, Error::DigestMismatch { .. }), "{err}");
    assert!(err.to_string().contains(&d.digest), "{err}");
    assert!(!partial_file(&s, &d).exists());

    // Shorter than announced (a clean EOF): a size mismatch.
    let err = inc.stage_layer(&d, inc.open_partial(&d.digest).unwrap(), &blob[..blob.len() - 10]).unwrap_err();
    assert!(matches!(err, Error::SizeMismatch { actual: Some(_), .. }), "{err}");
    assert!(!partial_file(&s, &d).exists());

    // Longer than announced.
    let mut long = blob.clone();
    long.extend_from_slice(b"trailing");
    let err = inc.stage_layer(&d, inc.open_partial(&d.digest).unwrap(), &long[..]).unwrap_err();
    assert!(matches!(err, Error::SizeMismatch { actual: None, .. }), "{err}");
    assert!(!partial_file(&s, &d).exists());

    // The right blob, but the config's diff_id disagrees.
    let mut other = d.clone();
    other.diff_id = sha256_of(b"x");
    let err = inc.stage_layer(&other, inc.open_partial(&d.digest).unwrap(), &blob[..]).unwrap_err();
    assert!(matches!(err, Error::DigestMismatch { .. }) && err.to_string().contains("diff_id"), "{err}");
    assert!(!partial_file(&s, &d).exists());
}

#[test]
fn a_layer_escaping_with_dotdot_is_refused_whole() {
    let (t, s) = store();
    let mut m = TarMaker::new();
    m.entry("ok", Kind::File(b"fine"), 0o644, 0).entry("../escape", Kind::File(b"owned"), 0o644, 0);
    let tar = m.finish();
    let blob = gzip(&tar);
    let d = desc(&blob, &tar);
    let inc = s.incoming().unwrap();
    let err = inc.stage_layer(&d, inc.open_partial(&d.digest).unwrap(), &blob[..]).unwrap_err();
    assert!(matches!(err, Error::BadEntry { .. }), "{err}");
    assert!(err.to_string().contains("../escape"), "{err}");
    assert!(!partial_file(&s, &d).exists());
    drop(inc);
    assert!(!t.path().join("escape").exists() && !s.root().join("escape").exists());
    assert_eq!(fs::read_dir(s.root().join("tmp")).unwrap().count(), 0, "tmp debris");
    assert_eq!(fs::read_dir(s.root().join("layers")).unwrap().count(), 0);
}

#[test]
fn a_server_ignoring_the_range_restarts_the_file() {
    let (_t, s) = store();
    let tar = small_rootfs("r");
    let blob = gzip(&tar);
    let d = desc(&blob, &tar);
    fs::create_dir_all(s.root().join("incoming")).unwrap();
    fs::write(partial_file(&s, &d), b"garbage that is not a prefix").unwrap();
    let inc = s.incoming().unwrap();
    let mut p = inc.open_partial(&d.digest).unwrap();
    assert_eq!(p.len(), 28);
    p.restart().unwrap();
    inc.stage_layer(&d, p, &blob[..]).unwrap();
    assert_eq!(s.prune_partials().unwrap(), 0);
}
