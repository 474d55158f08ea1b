//! A busybox image made by `import`, its layers mounted with overlayfs and run; whiteouts
//! and opaque directories made by the kernel in a real upper dir survive commit, save and
//! load, as seen in the merged view of the layer dirs.

mod common;

use std::fs;
use std::path::Path;
use std::process::Command;

use common::*;
use skiff_image::{ArchiveFormat, Commit, ImportOptions};

fn chroot_sh(root: &Path, script: &str) -> String {
    stdout(Command::new("chroot").arg(root).args(["/bin/sh", "-c", script]))
}

#[test]
fn busybox_image_from_import_runs_in_an_overlay_of_its_layers() {
    if !is_root() || !Path::new(BUSYBOX).exists() {
        eprintln!("skipped: needs root and busybox-static");
        return;
    }
    let t = tempfile::tempdir().unwrap();
    let s = open_store(&t.path().join("store"));
    let marker = unique("bb");
    let img = s
        .import(
            &busybox_rootfs(&marker)[..],
            &ImportOptions {
                reference: Some("busybox".into()),
                changes: vec!["CMD [\"sh\"]".into()],
                message: None,
            },
        )
        .unwrap();
    assert_eq!(s.resolve("docker.io/library/busybox:latest").unwrap().id, img.id);
    let dirs = s.layer_dirs(&img).unwrap();
    assert_eq!(fs::read(dirs[0].join("bin/busybox")).unwrap(), fs::read(BUSYBOX).unwrap());
    assert_eq!(chroot_sh(&dirs[0], "cat /etc/marker"), marker);
}

#[test]
fn whiteouts_and_opaque_dirs_round_trip() {
    if !is_root() || !Path::new(BUSYBOX).exists() {
        eprintln!("skipped: needs root and busybox-static");
        return;
    }
    let t = tempfile::tempdir().unwrap();
    let _cleanup = Cleanup(t.path().to_path_buf());
    let s = open_store(&t.path().join("store"));
    let base = s.import(&busybox_rootfs("base")[..], &ImportOptions::default()).unwrap();
    let base_dirs = s.layer_dirs(&base).unwrap();
    // Populate a second layer through a real overlay mount, then change things in it.
    let (up, work, merged) = (t.path().join("up"), t.path().join("work"), t.path().join("merged"));
    fs::create_dir_all(&up).unwrap();
    fs::create_dir_all(&work).unwrap();
    let mid = {
        let _m = Overlay::mount(&base_dirs, Some((&up, &work)), &merged);
        chroot_sh(&merged, "mkdir -p /data/keep /data/old && echo 1 > /data/old/f && echo k > /data/keep/k");
        drop(_m);
        s.commit(&Commit {
            parent: Some(&base),
            upper: &up,
            reference: Some("mid".into()),
            changes: vec![],
            comment: None,
            author: None,
            container_config: None,
        })
        .unwrap()
    };
    let mid_dirs = s.layer_dirs(&mid).unwrap();
    let (up2, work2) = (t.path().join("up2"), t.path().join("work2"));
    fs::create_dir_all(&up2).unwrap();
    fs::create_dir_all(&work2).unwrap();
    {
        let _m = Overlay::mount(&mid_dirs, Some((&up2, &work2)), &merged);
        // Delete a file of a lower layer; replace a directory (overlay makes it opaque).
        chroot_sh(&merged, "rm /etc/passwd && rm -rf /data/old && mkdir /data/old && echo new > /data/old/g");
    }
    let top = s
        .commit(&Commit {
            parent: Some(&mid),
            upper: &up2,
            reference: Some("top".into()),
            changes: vec![],
            comment: None,
            author: None,
            container_config: None,
        })
        .unwrap();
    assert_eq!(top.layers.len(), 3);

    let check = |store: &skiff_image::Store, name: &str, at: &Path| {
        let img = store.resolve(name).unwrap();
        let _m = Overlay::mount(&store.layer_dirs(&img).unwrap(), None, at);
        assert!(!at.join("etc/passwd").exists(), "whiteout lost");
        assert_eq!(fs::read_to_string(at.join("etc/marker")).unwrap(), "base");
        let mut old: Vec<_> = fs::read_dir(at.join("data/old")).unwrap().map(|e| e.unwrap().file_name()).collect();
        old.sort();
        assert_eq!(old, vec![std::ffi::OsString::from("g")], "opaque dir lost");
        assert_eq!(fs::read_to_string(at.join("data/keep/k")).unwrap(), "k\n");
        assert_eq!(chroot_sh(at, "cat /data/old/g"), "new");
    };
    check(&s, "top", &t.path().join("view1"));
    // Through an archive, both formats, into a fresh store.
    for (i, f) in [ArchiveFormat::DockerArchive, ArchiveFormat::OciArchive].into_iter().enumerate() {
        let mut out = Vec::new();
        s.save(&["top".into()], f, &mut out).unwrap();
        let s2 = open_store(&t.path().join(format!("store{i}")));
        assert_eq!(s2.load(&out[..]).unwrap()[0].id, top.id);
        check(&s2, "top", &t.path().join(format!("view2{i}")));
    }
}

/// Unmounts whatever is left below a dir (a failed assertion inside a mount scope).
struct Cleanup(std::path::PathBuf);

impl Drop for Cleanup {
    fn drop(&mut self) {
        unmount_all_below(&self.0);
    }
}
