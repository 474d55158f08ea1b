//! `pull`: resolve the reference to this platform's image manifest, fetch the config, then
//! stream the missing layers in parallel into the store, and add the image with its tag.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Mutex;

use oci_client::RegistryOperation;
use oci_spec::image::{ImageConfiguration, ImageManifest};
use skiff_image::reference::Reference;
use skiff_image::{Image, Layer, LayerDesc, Store};
use tokio::runtime::Runtime;

use crate::connect::{runtime, RegistryOptions, Remote};
use crate::error::{Error, Result};
use crate::fetch::fetch_layer;
use crate::media::{self, Manifest};
use crate::platform::Platform;
use crate::progress::{short, Progress};

/// How to pull.
#[derive(Debug, Clone)]
pub struct PullOptions {
    /// Default: this machine's.
    pub platform: Option<Platform>,
    pub registry: RegistryOptions,
    /// Layers downloaded at once (Docker's default is 3).
    pub jobs: usize,
}

impl Default for PullOptions {
    fn default() -> Self {
        PullOptions {
            platform: None,
            registry: RegistryOptions::default(),
            jobs: 3,
        }
    }
}

/// What a pull brought.
#[derive(Debug, Clone)]
pub struct Pulled {
    pub image: Image,
    /// The full reference pulled (`host/ns/app:tag` or `host/ns/app@sha256:...`).
    pub reference: String,
    /// The digest the reference resolved to (an index's when it named one).
    pub digest: String,
    /// False when the image was already here under that name.
    pub updated: bool,
    /// Layers fetched (the rest were in the store).
    pub fetched: usize,
}

fn parse_ref(reference: &str) -> Result<Reference> {
    let r = Reference::parse(reference)?;
    Ok(if r.digest.is_some() { r } else { r.with_default_tag() })
}

/// Pulls `reference` into `store`.
pub fn pull(store: &Store, reference: &str, opts: &PullOptions, progress: &dyn Progress) -> Result<Pulled> {
    let r = parse_ref(reference)?;
    let rt = runtime()?;
    let remote = rt.block_on(Remote::connect(&r, &opts.registry, RegistryOperation::Pull))?;
    pull_one(store, &rt, &remote, &r, opts, progress)
}

/// Pulls every tag of the repository `reference` names (`--all-tags`).
pub fn pull_all_tags(store: &Store, reference: &str, opts: &PullOptions, progress: &dyn Progress) -> Result<Vec<Pulled>> {
    let r = Reference::parse(reference)?;
    if r.tag.is_some() || r.digest.is_some() {
        return Err(Error::Reference {
            reference: reference.into(),
            reason: "tag or digest can't be used with --all-tags".into(),
        });
    }
    let rt = runtime()?;
    let remote = rt.block_on(Remote::connect(&r.clone().with_default_tag(), &opts.registry, RegistryOperation::Pull))?;
    let list = rt
        .block_on(remote.client.list_tags(&remote.repo, &remote.auth, None, None))
        .map_err(|e| remote.err(e))?;
    let mut out = Vec::new();
    for tag in list.tags {
        let mut t = r.clone();
        t.tag = Some(tag);
        out.push(pull_one(store, &rt, &remote, &t, opts, progress)?);
    }
    Ok(out)
}

/// Fetches a manifest by tag or digest (renewing a stale token once).
async fn manifest(remote: &Remote, target: &str, display: &str) -> Result<(bytes::Bytes, String)> {
    let r = remote.at(target);
    let mut renewed = false;
    loop {
        match remote.client.pull_manifest_raw(&r, &remote.auth, media::ACCEPT).await {
            Ok(x) => return Ok(x),
            Err(e) if crate::connect::is_unauthorized(&e) && !renewed => {
                renewed = true;
                let _ = remote.client.auth(&remote.repo, &remote.auth, remote.op).await;
            }
            Err(oci_client::errors::OciDistributionError::RegistryError { envelope, .. })
                if envelope.errors.iter().any(|e| {
                    matches!(
                        e.code,
                        oci_client::errors::OciErrorCode::ManifestUnknown | oci_client::errors::OciErrorCode::NameUnknown
                    )
                }) =>
            {
                return Err(Error::ManifestUnknown(display.to_string()));
            }
            Err(oci_client::errors::OciDistributionError::ServerError { code: 404, .. }) => return Err(Error::ManifestUnknown(display.to_string())),
            Err(e) => return Err(remote.err(e)),
        }
    }
}

/// Fetches a small blob (a config) whole and checks it.
async fn small_blob(remote: &Remote, digest: &str, size: u64) -> Result<Vec<u8>> {
    const MAX: u64 = 64 << 20;
    if size > MAX {
        return Err(Error::bad(format!("config {digest}"), format!("{size} bytes is more than a config may have")));
    }
    let mut body = remote.client.pull_blob_stream(&remote.repo, &digest).await.map_err(|e| remote.err(e))?.stream;
    let mut out = Vec::with_capacity(size as usize);
    while let Some(chunk) = futures_util::StreamExt::next(&mut body).await {
        let chunk = chunk.map_err(|e| Error::Registry {
            registry: remote.registry.clone(),
            message: format!("config {digest}: {e}"),
        })?;
        out.extend_from_slice(&chunk);
        if out.len() as u64 > size {
            break;
        }
    }
    if out.len() as u64 != size {
        let actual = (out.len() as u64 <= size).then_some(out.len() as u64);
        return Err(Error::from(skiff_image::Error::SizeMismatch {
            what: format!("config {digest}"),
            expected: size,
            actual,
        }));
    }
    Ok(out)
}

/// The image manifest for this platform: (body, digest, media type, and the index's digest
/// when the reference named an index).
fn resolve(rt: &Runtime, remote: &Remote, target: &str, display: &str, platform: &Platform) -> Result<(bytes::Bytes, String, ImageManifest, String, String)> {
    let (body, digest) = rt.block_on(manifest(remote, target, display))?;
    match media::parse(&body, &format!("manifest {digest}"))? {
        Manifest::Image(m, mt) => Ok((body, digest.clone(), *m, mt, digest)),
        Manifest::Index(idx) => {
            let desc = platform.select(&idx)?;
            let want = desc.digest().to_string();
            let (body2, digest2) = rt.block_on(manifest(remote, &want, display))?;
            if digest2 != want || body2.len() as u64 != desc.size() {
                return Err(Error::from(skiff_image::Error::DigestMismatch {
                    what: format!("manifest of {display} for {platform}"),
                    expected: want,
                    actual: digest2,
                }));
            }
            match media::parse(&body2, &format!("manifest {digest2}"))? {
                Manifest::Image(m, mt) => Ok((body2, digest2, *m, mt, digest)),
                Manifest::Index(_) => Err(Error::bad(format!("manifest {digest2}"), "an index inside an index")),
            }
        }
    }
}

fn pull_one(store: &Store, rt: &Runtime, remote: &Remote, r: &Reference, opts: &PullOptions, progress: &dyn Progress) -> Result<Pulled> {
    let platform = opts.platform.clone().unwrap_or_else(Platform::host);
    let display = r.to_string();
    let target = r.digest.clone().or_else(|| r.tag.clone()).unwrap_or_else(|| "latest".into());
    let (body, manifest_digest, manifest, media_type, pulled_digest) = resolve(rt, remote, &target, &display, &platform)?;
    progress.message(&format!("{}: Pulling from {}", short_target(&target), familiar_repo(r)));

    let cfg = manifest.config();
    let config_digest = cfg.digest().to_string();
    let inc = store.incoming()?;
    inc.stage_blob(&body, &manifest_digest, &format!("manifest {manifest_digest}"))?;
    let config_bytes = rt.block_on(small_blob(remote, &config_digest, cfg.size()))?;
    inc.stage_blob(&config_bytes, &config_digest, &format!("config {config_digest}"))?;
    let config: ImageConfiguration = serde_json::from_slice(&config_bytes).map_err(|e| Error::bad(format!("image config {config_digest}"), e))?;
    let descs = layer_descs(&manifest, &config, &config_digest)?;

    let before = store.resolve(&display).ok().map(|i| i.id);
    let todo: Vec<usize> = (0..descs.len())
        .filter(|&i| !(store.has_blob(&descs[i].digest) && store.has_layer(&descs[i].diff_id)))
        .collect();
    for (i, d) in descs.iter().enumerate() {
        if todo.contains(&i) {
            progress.layer_queued(short(&d.digest), d.size);
        } else {
            progress.layer_exists(short(&d.digest));
        }
    }
    let mut fetched = fetch_all(rt, remote, &inc, &descs, &todo, opts.jobs, progress)?;
    let layers: Vec<Layer> = descs
        .iter()
        .enumerate()
        .map(|(i, d)| {
            fetched.remove(&i).unwrap_or_else(|| Layer {
                diff_id: d.diff_id.clone(),
                digest: d.digest.clone(),
                media_type: d.media_type.clone(),
                size: d.size,
                unpacked_size: store.layer_size(&d.diff_id),
            })
        })
        .collect();
    let tags: Vec<String> = if r.digest.is_none() { vec![display.clone()] } else { Vec::new() };
    let repo_digest = format!("{}@{pulled_digest}", r.name());
    let image = inc.finish(&config_digest, (&manifest_digest, &media_type), layers, &tags, &[repo_digest])?;
    progress.message(&format!("Digest: {pulled_digest}"));
    let updated = before.as_deref() != Some(image.id.as_str());
    let name = skiff_image::reference::Reference::parse(&display)
        .map(|x| x.familiar())
        .unwrap_or(display.clone());
    progress.message(&if updated {
        format!("Status: Downloaded newer image for {name}")
    } else {
        format!("Status: Image is up to date for {name}")
    });
    Ok(Pulled {
        image,
        reference: display,
        digest: pulled_digest,
        updated,
        fetched: todo.len(),
    })
}

/// Docker's `latest: Pulling from library/busybox` shows a digest shortened.
fn short_target(t: &str) -> &str {
    if t.starts_with("sha256:") {
        &t[..t.len().min(19)]
    } else {
        t
    }
}

fn familiar_repo(r: &Reference) -> String {
    if r.registry == skiff_image::reference::DEFAULT_REGISTRY {
        r.repository.clone()
    } else {
        format!("{}/{}", r.registry, r.repository)
    }
}

/// The layers of a manifest, paired with the config's diff_ids.
fn layer_descs(m: &ImageManifest, config: &ImageConfiguration, config_digest: &str) -> Result<Vec<LayerDesc>> {
    let diff_ids = config.rootfs().diff_ids();
    if diff_ids.len() != m.layers().len() {
        return Err(Error::bad(
            format!("image config {config_digest}"),
            format!("{} diff_ids for {} layers in the manifest", diff_ids.len(), m.layers().len()),
        ));
    }
    m.layers()
        .iter()
        .zip(diff_ids)
        .map(|(l, diff_id)| {
            let mt = l.media_type().to_string();
            if !media::is_layer(&mt) {
                return Err(Error::bad(format!("layer {}", l.digest()), format!("unsupported layer media type {mt}")));
            }
            Ok(LayerDesc {
                digest: l.digest().to_string(),
                size: l.size(),
                diff_id: diff_id.clone(),
                media_type: mt,
            })
        })
        .collect()
}

/// Downloads the layers `todo` (indexes into `descs`) with `jobs` threads; the first failure
/// stops the others from starting new layers and is returned.
fn fetch_all(
    rt: &Runtime,
    remote: &Remote,
    inc: &skiff_image::Incoming<'_>,
    descs: &[LayerDesc],
    todo: &[usize],
    jobs: usize,
    progress: &dyn Progress,
) -> Result<std::collections::HashMap<usize, Layer>> {
    let next = AtomicUsize::new(0);
    let failed = AtomicBool::new(false);
    let results = Mutex::new((std::collections::HashMap::new(), None::<Error>));
    let handle = rt.handle();
    std::thread::scope(|s| {
        for _ in 0..jobs.clamp(1, todo.len().max(1)) {
            s.spawn(|| loop {
                if failed.load(Ordering::Relaxed) {
                    return;
                }
                let Some(&i) = todo.get(next.fetch_add(1, Ordering::Relaxed)) else { return };
                let d = &descs[i];
                let r = fetch_layer(remote, handle, inc, d, progress);
                let mut res = results.lock().unwrap_or_else(|p| p.into_inner());
                match r {
                    Ok(l) => {
                        progress.layer_done(short(&d.digest), "Pull complete");
                        res.0.insert(i, l);
                    }
                    Err(e) => {
                        failed.store(true, Ordering::Relaxed);
                        res.1.get_or_insert(e);
                    }
                }
            });
        }
    });
    let (done, err) = results.into_inner().unwrap_or_else(|p| p.into_inner());
    match err {
        Some(e) => Err(e),
        None => Ok(done),
    }
}
