//! `commit`: a container's upper dir becomes a new layer on its image.

use crate::error::{Error, Result};
use crate::Engine;

#[derive(Debug, Clone, Default)]
pub struct CommitRequest {
    pub reference: Option<String>,
    pub changes: Vec<String>,
    pub comment: Option<String>,
    pub author: Option<String>,
    /// Pause a running container while its files are read (Docker's default).
    pub pause: bool,
}

impl Engine {
    pub fn commit(&self, id: &str, req: &CommitRequest) -> Result<skiff_image::Image> {
        let (_l, rec) = self.lock(id)?;
        let parent = self.images.resolve(&rec.image_id)?;
        let mut cfg = parent.config.config().clone().unwrap_or_default();
        // The container's effective config: the image's, with what create changed.
        let mut env = cfg.env().clone().unwrap_or_default();
        for e in &rec.config.env {
            let k = e.split('=').next().unwrap_or("");
            env.retain(|x| x.split('=').next() != Some(k));
            env.push(e.clone());
        }
        cfg.set_env(Some(env));
        cfg.set_cmd((!rec.config.cmd.is_empty()).then(|| rec.config.cmd.clone()));
        cfg.set_entrypoint((!rec.config.entrypoint.is_empty()).then(|| rec.config.entrypoint.clone()));
        if !rec.config.working_dir.is_empty() {
            cfg.set_working_dir(Some(rec.config.working_dir.clone()));
        }
        if !rec.config.user.is_empty() {
            cfg.set_user(Some(rec.config.user.clone()));
        }
        if !rec.config.labels.is_empty() {
            cfg.set_labels(Some(rec.config.labels.clone().into_iter().collect()));
        }
        let paused = if req.pause { self.pause_for_files(&rec)? } else { None };
        let dir = self.layout.container(id);
        let mut upper = dir.upper();
        std::fs::create_dir_all(&upper).map_err(|e| Error::io("create", &upper, e))?;
        // The copying driver has no upper dir: one is made of its changes for the commit.
        let made = if rec.is_vfs() {
            let layers = self.images.layer_dirs(&parent)?;
            let changes = self.vfs_changes(&rec, &layers)?;
            let tmp = dir.path().join("commit-upper.tmp");
            let _ = std::fs::remove_dir_all(&tmp);
            std::fs::create_dir(&tmp).map_err(|e| Error::io("mkdir", &tmp, e))?;
            crate::vfs::upper_from(&dir.rootfs_copy(), &changes, &tmp)?;
            upper = tmp.clone();
            Some(tmp)
        } else {
            None
        };
        let c = skiff_image::Commit {
            parent: Some(&parent),
            upper: &upper,
            reference: req.reference.clone(),
            changes: req.changes.clone(),
            comment: req.comment.clone(),
            author: req.author.clone(),
            container_config: Some(cfg),
        };
        let r = self.images.commit(&c);
        if let Some(c) = &paused {
            let _ = c.resume();
        }
        if let Some(tmp) = made {
            let _ = std::fs::remove_dir_all(tmp);
        }
        Ok(r?)
    }
}
