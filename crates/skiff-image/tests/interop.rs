//! Interop with the real tools: archives written by `podman save` (both formats) and
//! `skopeo copy` load here with podman's ids and diff_ids; archives written here load in
//! `podman load` (both formats) and `docker load` (docker-archive) with the same ids, diff_ids
//! and content.

mod common;

use std::fs;
use std::path::Path;

use common::*;
use skiff_image::{ArchiveFormat, ImportOptions, Store};

fn podman_ready() -> bool {
    is_root() && have("podman") && Path::new(BUSYBOX).exists()
}

/// A podman with a busybox image imported as `name`; returns its id and diff_ids.
fn podman_with_image(name: &str, marker: &str) -> (Podman, String, Vec<String>) {
    let p = Podman::new();
    let tar = p.dir.path().join("rootfs.tar");
    fs::write(&tar, busybox_rootfs(marker)).unwrap();
    run(p.cmd().args(["import", "--change", "CMD [\"sh\"]"]).arg(&tar).arg(name));
    let id = p.inspect(name, "{{.Id}}");
    let layers = p.inspect(name, "{{range .RootFS.Layers}}{{.}} {{end}}");
    (p, id, layers.split_whitespace().map(str::to_string).collect())
}

fn check_loaded(s: &Store, imgs: &[skiff_image::Image], id: &str, diff_ids: &[String], tag: &str, marker: &str) {
    assert_eq!(imgs.len(), 1);
    let img = &imgs[0];
    assert_eq!(img.id, format!("sha256:{id}"));
    let got: Vec<_> = img.layers.iter().map(|l| l.diff_id.clone()).collect();
    assert_eq!(got, diff_ids);
    assert_eq!(img.tags, vec![tag.to_string()]);
    assert_eq!(s.resolve(tag).unwrap().id, img.id);
    let dirs = s.layer_dirs(img).unwrap();
    assert_eq!(fs::read_to_string(dirs[0].join("etc/marker")).unwrap(), marker);
    assert_eq!(fs::read(dirs[0].join("bin/busybox")).unwrap(), fs::read(BUSYBOX).unwrap());
}

#[test]
fn loads_what_podman_save_and_skopeo_copy_write() {
    if !podman_ready() {
        eprintln!("skipped: needs root, podman, busybox-static");
        return;
    }
    let name = format!("localhost/{}:v1", unique("skiffpm"));
    let marker = unique("m");
    let (p, id, diff_ids) = podman_with_image(&name, &marker);
    let t = tempfile::tempdir().unwrap();
    let mut cases = vec![];
    for fmt in ["docker-archive", "oci-archive"] {
        let f = t.path().join(format!("podman-{fmt}.tar"));
        run(p.cmd().args(["save", "--format", fmt, "-o"]).arg(&f).arg(&name));
        cases.push(f);
    }
    if have("skopeo") {
        for transport in ["docker-archive", "oci-archive"] {
            let f = t.path().join(format!("skopeo-{transport}.tar"));
            run(p.skopeo().args(["copy", &p.storage_ref(&name), &format!("{transport}:{}:{name}", f.display())]));
            cases.push(f);
        }
    }
    for f in cases {
        let s = open_store(&t.path().join(format!("store-{}", f.file_stem().unwrap().to_string_lossy())));
        let imgs = s.load(fs::File::open(&f).unwrap()).unwrap_or_else(|e| panic!("{}: {e}", f.display()));
        check_loaded(&s, &imgs, &id, &diff_ids, &name, &marker);
    }
}

#[test]
fn podman_loads_what_save_writes() {
    if !podman_ready() {
        eprintln!("skipped: needs root, podman, busybox-static");
        return;
    }
    let t = tempfile::tempdir().unwrap();
    let s = open_store(&t.path().join("store"));
    let marker = unique("m");
    let name = format!("localhost/{}:v2", unique("skiffsv"));
    let img = s
        .import(
            &busybox_rootfs(&marker)[..],
            &ImportOptions {
                reference: Some(name.clone()),
                ..Default::default()
            },
        )
        .unwrap();
    for (fmt, label) in [(ArchiveFormat::DockerArchive, "docker"), (ArchiveFormat::OciArchive, "oci")] {
        let p = Podman::new();
        let f = t.path().join(format!("save-{label}.tar"));
        s.save(std::slice::from_ref(&name), fmt, fs::File::create(&f).unwrap()).unwrap();
        let out = stdout(p.cmd().args(["load", "-i"]).arg(&f));
        assert!(out.contains(&name), "podman load ({label}) said: {out}");
        assert_eq!(format!("sha256:{}", p.inspect(&name, "{{.Id}}")), img.id, "{label}");
        let layers = p.inspect(&name, "{{range .RootFS.Layers}}{{.}} {{end}}");
        assert_eq!(layers.split_whitespace().collect::<Vec<_>>(), vec![img.layers[0].diff_id.as_str()]);
        let mnt = stdout(p.cmd().args(["image", "mount", &name]));
        let content = fs::read_to_string(Path::new(&mnt).join("etc/marker"));
        let _ = p.cmd().args(["image", "unmount", &name]).output();
        assert_eq!(content.unwrap(), marker, "{label}");
    }
}

#[test]
fn docker_loads_what_save_writes() {
    if !is_root() || !have("dockerd") || !Path::new("/usr/bin/docker").exists() || !Path::new(BUSYBOX).exists() {
        eprintln!("skipped: needs root, dockerd, /usr/bin/docker, busybox-static");
        return;
    }
    let t = tempfile::tempdir().unwrap();
    let s = open_store(&t.path().join("store"));
    let marker = unique("m");
    let name = format!("{}:v3", unique("skiffdk"));
    let base = s.import(&busybox_rootfs(&marker)[..], &ImportOptions::default()).unwrap();
    // Two layers: a commit on top of the import.
    let up = t.path().join("up");
    fs::create_dir_all(up.join("etc")).unwrap();
    fs::write(up.join("etc/second"), b"layer two").unwrap();
    let img = s
        .commit(&skiff_image::Commit {
            parent: Some(&base),
            upper: &up,
            reference: Some(name.clone()),
            changes: vec!["CMD [\"cat\", \"/etc/second\"]".into()],
            comment: Some("second".into()),
            author: None,
            container_config: None,
        })
        .unwrap();
    let f = t.path().join("docker.tar");
    s.save(std::slice::from_ref(&name), ArchiveFormat::DockerArchive, fs::File::create(&f).unwrap())
        .unwrap();

    let d = Dockerd::start();
    let out = stdout(d.cmd().args(["load", "-i"]).arg(&f));
    assert!(out.contains(&format!("Loaded image: {name}")), "docker load said: {out}");
    assert_eq!(stdout(d.cmd().args(["image", "inspect", "--format", "{{.Id}}", &name])), img.id);
    let layers = stdout(d.cmd().args(["image", "inspect", "--format", "{{range .RootFS.Layers}}{{.}} {{end}}", &name]));
    let want: Vec<_> = img.layers.iter().map(|l| l.diff_id.as_str()).collect();
    assert_eq!(layers.split_whitespace().collect::<Vec<_>>(), want);
    // Content: docker's own save of it loads back here with both layers' files.
    let back = t.path().join("back.tar");
    run(d.cmd().args(["save", "-o"]).arg(&back).arg(&name));
    drop(d);
    let s2 = open_store(&t.path().join("store2"));
    let imgs = s2.load(fs::File::open(&back).unwrap()).unwrap();
    assert_eq!(imgs[0].id, img.id);
    let dirs = s2.layer_dirs(&imgs[0]).unwrap();
    assert_eq!(fs::read_to_string(dirs[0].join("etc/marker")).unwrap(), marker);
    assert_eq!(fs::read_to_string(dirs[1].join("etc/second")).unwrap(), "layer two");
}
