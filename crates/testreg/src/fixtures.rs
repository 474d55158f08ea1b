//! Image fixtures: OCI image layouts written here by hand (tar layers, gzip/zstd/none, whiteouts,
//! hostile entries), pushed to a registry with [`crate::skopeo::push_image`].

use crate::util::sha256_hex;
use serde_json::{json, Value};
use std::io::Write;
use std::path::{Path, PathBuf};

pub const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
pub const OCI_INDEX: &str = "application/vnd.oci.image.index.v1+json";
pub const OCI_CONFIG: &str = "application/vnd.oci.image.config.v1+json";
pub(crate) const REF_NAME: &str = "org.opencontainers.image.ref.name";

/// One tar entry of a layer.
#[derive(Clone, Debug)]
pub enum Entry {
    File {
        path: String,
        data: Vec<u8>,
        mode: u32,
    },
    Dir {
        path: String,
        mode: u32,
    },
    Symlink {
        path: String,
        target: String,
    },
    /// Deletes `path` from the layers below: an empty `<dir>/.wh.<name>`.
    Whiteout(String),
    /// A regular file whose tar name is written verbatim, unchecked (e.g. "../escape", "/abs").
    RawFile {
        name: String,
        data: Vec<u8>,
    },
}

impl Entry {
    pub fn file(path: &str, data: impl Into<Vec<u8>>) -> Entry {
        Entry::File {
            path: path.into(),
            data: data.into(),
            mode: 0o644,
        }
    }

    pub fn dir(path: &str) -> Entry {
        Entry::Dir {
            path: path.into(),
            mode: 0o755,
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Compression {
    Gzip,
    Zstd,
    None,
}

#[derive(Clone, Debug)]
pub struct Layer {
    pub entries: Vec<Entry>,
    pub compression: Compression,
}

impl Layer {
    pub fn gzip(entries: Vec<Entry>) -> Layer {
        Layer {
            entries,
            compression: Compression::Gzip,
        }
    }
}

/// A blob written to a layout.
#[derive(Clone, Debug)]
pub struct Blob {
    pub digest: String,
    pub size: u64,
    pub media_type: String,
}

impl Blob {
    pub fn descriptor(&self) -> Value {
        json!({"mediaType": self.media_type, "digest": self.digest, "size": self.size})
    }
}

/// An image written to an OCI layout.
#[derive(Clone, Debug)]
pub struct Image {
    pub layout: PathBuf,
    pub tag: String,
    pub manifest: Blob,
    pub config: Blob,
    pub layers: Vec<Blob>,
    /// sha256 of each layer's uncompressed tar.
    pub diff_ids: Vec<String>,
}

/// The uncompressed tar of `entries` (root-owned, mtime fixed, so the bytes are reproducible).
pub fn layer_tar(entries: &[Entry]) -> Vec<u8> {
    let mut b = tar::Builder::new(Vec::new());
    for e in entries {
        let mut h = tar::Header::new_gnu();
        h.set_uid(0);
        h.set_gid(0);
        h.set_mtime(1_700_000_000);
        match e {
            Entry::File { path, data, mode } => {
                h.set_entry_type(tar::EntryType::Regular);
                h.set_mode(*mode);
                h.set_size(data.len() as u64);
                b.append_data(&mut h, path, &data[..]).expect("tar file");
            }
            Entry::Dir { path, mode } => {
                h.set_entry_type(tar::EntryType::Directory);
                h.set_mode(*mode);
                h.set_size(0);
                b.append_data(&mut h, path, std::io::empty()).expect("tar dir");
            }
            Entry::Symlink { path, target } => {
                h.set_entry_type(tar::EntryType::Symlink);
                h.set_mode(0o777);
                h.set_size(0);
                b.append_link(&mut h, path, target).expect("tar symlink");
            }
            Entry::Whiteout(path) => {
                let p = Path::new(path);
                let name = p.file_name().expect("whiteout of a name").to_string_lossy();
                let wh = p.with_file_name(format!(".wh.{name}"));
                h.set_entry_type(tar::EntryType::Regular);
                h.set_mode(0o644);
                h.set_size(0);
                b.append_data(&mut h, wh, std::io::empty()).expect("tar whiteout");
            }
            Entry::RawFile { name, data } => {
                let raw = &mut h.as_old_mut().name;
                assert!(name.len() < raw.len(), "raw tar name too long");
                raw[..name.len()].copy_from_slice(name.as_bytes());
                h.set_entry_type(tar::EntryType::Regular);
                h.set_mode(0o644);
                h.set_size(data.len() as u64);
                h.set_cksum();
                b.append(&h, &data[..]).expect("tar raw entry");
            }
        }
    }
    b.into_inner().expect("finish tar")
}

pub fn compress(data: &[u8], c: Compression) -> Vec<u8> {
    match c {
        Compression::None => data.to_vec(),
        Compression::Zstd => zstd::encode_all(data, 3).expect("zstd"),
        Compression::Gzip => {
            let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
            e.write_all(data).expect("gzip");
            e.finish().expect("gzip finish")
        }
    }
}

/// Write `data` as a blob of the layout at `dir`.
pub fn write_blob(dir: &Path, media_type: &str, data: &[u8]) -> Blob {
    let hex = sha256_hex(data);
    let blobs = dir.join("blobs/sha256");
    std::fs::create_dir_all(&blobs).expect("create blobs dir");
    std::fs::write(blobs.join(&hex), data).expect("write blob");
    Blob {
        digest: format!("sha256:{hex}"),
        size: data.len() as u64,
        media_type: media_type.into(),
    }
}

/// Add `desc` to the layout's index.json under `tag` (replacing an entry of the same tag).
pub fn tag_in_layout(dir: &Path, desc: &Blob, tag: &str) {
    std::fs::write(dir.join("oci-layout"), r#"{"imageLayoutVersion":"1.0.0"}"#).expect("write oci-layout");
    let index_path = dir.join("index.json");
    let mut index: Value = std::fs::read(&index_path)
        .ok()
        .and_then(|b| serde_json::from_slice(&b).ok())
        .unwrap_or_else(|| json!({"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": []}));
    let list = index["manifests"].as_array_mut().expect("index manifests");
    list.retain(|m| m["annotations"][REF_NAME] != tag);
    let mut d = desc.descriptor();
    d["annotations"] = json!({ REF_NAME: tag });
    list.push(d);
    std::fs::write(index_path, serde_json::to_vec_pretty(&index).expect("json")).expect("write index.json");
}

/// The Go architecture name of this machine (amd64, arm64, ...).
pub fn host_arch() -> &'static str {
    match std::env::consts::ARCH {
        "x86_64" => "amd64",
        "aarch64" => "arm64",
        "arm" => "arm",
        "powerpc64" => "ppc64le",
        other => other,
    }
}

fn write_image_for(dir: &Path, tag: Option<&str>, arch: &str, layers: &[Layer]) -> Image {
    let (mut blobs, mut diff_ids, mut history) = (Vec::new(), Vec::new(), Vec::new());
    for (i, l) in layers.iter().enumerate() {
        let tar = layer_tar(&l.entries);
        diff_ids.push(format!("sha256:{}", sha256_hex(&tar)));
        let mt = match l.compression {
            Compression::Gzip => "application/vnd.oci.image.layer.v1.tar+gzip",
            Compression::Zstd => "application/vnd.oci.image.layer.v1.tar+zstd",
            Compression::None => "application/vnd.oci.image.layer.v1.tar",
        };
        blobs.push(write_blob(dir, mt, &compress(&tar, l.compression)));
        history.push(json!({"created": "2024-01-01T00:00:00Z", "created_by": format!("testreg layer {i}")}));
    }
    let config = json!({
        "created": "2024-01-01T00:00:00Z", "architecture": arch, "os": "linux",
        "config": {"Env": ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"], "Cmd": ["/bin/sh"]},
        "rootfs": {"type": "layers", "diff_ids": diff_ids}, "history": history,
    });
    let config = write_blob(dir, OCI_CONFIG, config.to_string().as_bytes());
    let manifest = json!({
        "schemaVersion": 2, "mediaType": OCI_MANIFEST, "config": config.descriptor(),
        "layers": blobs.iter().map(Blob::descriptor).collect::<Vec<_>>(),
    });
    let manifest = write_blob(dir, OCI_MANIFEST, manifest.to_string().as_bytes());
    if let Some(tag) = tag {
        tag_in_layout(dir, &manifest, tag);
    }
    Image {
        layout: dir.to_path_buf(),
        tag: tag.unwrap_or_default().to_string(),
        manifest,
        config,
        layers: blobs,
        diff_ids,
    }
}

/// Write an image of `layers` (for this machine's architecture) into the OCI layout at `dir`
/// (created or added to), tagged `tag`; `oci:<dir>:<tag>` names it for skopeo.
pub fn write_image(dir: &Path, tag: &str, layers: &[Layer]) -> Image {
    write_image_for(dir, Some(tag), host_arch(), layers)
}

/// A small three-layer image: files, a changed file, a symlink, and a third layer whose whiteout
/// deletes `/dir/b.txt`. Layer 3 also carries 64 KiB of incompressible `/data.bin`.
pub fn sample_image(dir: &Path, tag: &str) -> Image {
    let layers = [
        Layer::gzip(vec![
            Entry::dir("etc"),
            Entry::file("etc/motd", "hello from testreg\n"),
            Entry::dir("dir"),
            Entry::file("dir/a.txt", "a\n"),
            Entry::file("dir/b.txt", "b\n"),
            Entry::file("hello.txt", "v1\n"),
        ]),
        Layer::gzip(vec![
            Entry::file("hello.txt", "v2\n"),
            Entry::Symlink {
                path: "link".into(),
                target: "hello.txt".into(),
            },
        ]),
        Layer::gzip(vec![
            Entry::dir("dir"),
            Entry::Whiteout("dir/b.txt".into()),
            Entry::file("data.bin", pseudo_random(7, 64 * 1024)),
        ]),
    ];
    write_image(dir, tag, &layers)
}

/// An image whose second layer holds a regular file named `../escape` (after a harmless `ok.txt`).
pub fn malicious_image(dir: &Path, tag: &str) -> Image {
    let layers = [
        Layer::gzip(vec![Entry::file("base.txt", "base\n")]),
        Layer::gzip(vec![
            Entry::file("ok.txt", "ok\n"),
            Entry::RawFile {
                name: "../escape".into(),
                data: b"escaped\n".to_vec(),
            },
        ]),
    ];
    write_image(dir, tag, &layers)
}

/// An OCI image index tagged `tag` with one image per `(os, arch)`; each image's one layer has
/// `/platform` saying which it is. Push it with [`crate::push_image`] (which copies all of an index).
pub fn multiarch_image(dir: &Path, tag: &str, platforms: &[(&str, &str)]) -> (Blob, Vec<Image>) {
    let images: Vec<Image> = platforms
        .iter()
        .map(|(os, arch)| write_image_for(dir, None, arch, &[Layer::gzip(vec![Entry::file("platform", format!("{os}/{arch}\n"))])]))
        .collect();
    let manifests: Vec<Value> = images
        .iter()
        .zip(platforms)
        .map(|(img, (os, arch))| {
            let mut d = img.manifest.descriptor();
            d["platform"] = json!({"os": os, "architecture": arch});
            d
        })
        .collect();
    let index = json!({"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": manifests});
    let index = write_blob(dir, OCI_INDEX, index.to_string().as_bytes());
    tag_in_layout(dir, &index, tag);
    (index, images)
}

/// `len` reproducible, incompressible bytes from `seed` (xorshift64*).
pub fn pseudo_random(seed: u64, len: usize) -> Vec<u8> {
    let mut x = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    let mut out = Vec::with_capacity(len + 8);
    while out.len() < len {
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        out.extend_from_slice(&x.wrapping_mul(0x2545_F491_4F6C_DD1D).to_le_bytes());
    }
    out.truncate(len);
    out
}
