//! Where things live under the engine's root.

use std::path::{Path, PathBuf};

#[derive(Debug, Clone)]
pub struct Layout {
    pub root: PathBuf,
}

impl Layout {
    pub fn image(&self) -> PathBuf {
        self.root.join("image")
    }
    pub fn containers(&self) -> PathBuf {
        self.root.join("containers")
    }
    /// `names/<name>`: a symlink to the container id; its atomic creation reserves the name.
    pub fn names(&self) -> PathBuf {
        self.root.join("names")
    }
    pub fn volumes(&self) -> PathBuf {
        self.root.join("volumes")
    }
    /// skiff-core's state root.
    pub fn runtime(&self) -> PathBuf {
        self.root.join("runtime")
    }
    pub fn container(&self, id: &str) -> ContainerDir {
        ContainerDir(self.containers().join(id))
    }
}

/// A container's directory.
#[derive(Debug, Clone)]
pub struct ContainerDir(pub PathBuf);

impl ContainerDir {
    pub fn path(&self) -> &Path {
        &self.0
    }
    pub fn record(&self) -> PathBuf {
        self.0.join("container.json")
    }
    pub fn lock(&self) -> PathBuf {
        self.0.join("lock")
    }
    pub fn upper(&self) -> PathBuf {
        self.0.join("upper")
    }
    pub fn work(&self) -> PathBuf {
        self.0.join("work")
    }
    pub fn merged(&self) -> PathBuf {
        self.0.join("merged")
    }
    /// The container's own copy of the image (the vfs driver).
    pub fn rootfs_copy(&self) -> PathBuf {
        self.0.join("rootfs")
    }
    pub fn bundle(&self) -> PathBuf {
        self.0.join("bundle")
    }
    pub fn log(&self, id: &str) -> PathBuf {
        self.0.join(format!("{id}-json.log"))
    }
    pub fn exit(&self) -> PathBuf {
        self.0.join("exit.json")
    }
    pub fn monitor_file(&self) -> PathBuf {
        self.0.join("monitor.json")
    }
    pub fn attach(&self) -> PathBuf {
        self.0.join("attach.sock")
    }
    pub fn hosts(&self) -> PathBuf {
        self.0.join("hosts")
    }
    pub fn hostname(&self) -> PathBuf {
        self.0.join("hostname")
    }
    pub fn resolv(&self) -> PathBuf {
        self.0.join("resolv.conf")
    }
}
