//! Many processes and threads on one store at once, and processes killed with SIGKILL in the
//! middle of loads and removals: the index stays consistent, every listed image is complete,
//! nothing is left in tmp/ and no unreferenced blob or layer stays behind.

mod common;

use std::collections::HashSet;
use std::fs;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use common::*;
use skiff_image::{ArchiveFormat, ImportOptions, Store};

const WORKER_ENV: &str = "SKIFF_IMAGE_TEST_WORKER";

fn rootfs(marker: &str) -> Vec<u8> {
    let mut b = tar::Builder::new(Vec::new());
    for (p, data) in [("etc/hostname", marker.as_bytes()), ("bin/app", &[7u8; 3000][..])] {
        let mut h = tar::Header::new_gnu();
        h.set_mode(0o644);
        h.set_uid(0);
        h.set_gid(0);
        h.set_mtime(1);
        h.set_size(data.len() as u64);
        b.append_data(&mut h, p, data).unwrap();
    }
    b.into_inner().unwrap()
}

/// What one process or thread does: import (content shared with others), tag, resolve,
/// list, and for every third one delete its image again (racing with others that share
/// its layer).
fn work(s: &Store, who: &str, i: usize) {
    let marker = format!("content{}", i % 4);
    let gone = i.is_multiple_of(3);
    let reference = if gone { format!("gone{who}") } else { format!("app:{who}") };
    let img = s
        .import(
            &rootfs(&marker)[..],
            &ImportOptions {
                reference: Some(reference.clone()),
                ..Default::default()
            },
        )
        .unwrap();
    s.tag(&reference, "shared:latest").unwrap();
    s.tag(&img.id, &format!("extra:{who}")).unwrap();
    assert_eq!(s.resolve(&reference).unwrap().id, img.id);
    assert!(s.list().unwrap().iter().any(|x| x.id == img.id));
    if gone {
        // Untag the extra tag, then delete by id (it may still carry "shared").
        s.remove(&format!("extra:{who}"), false, &|_| false).unwrap();
        s.remove(&img.id, true, &|_| false).unwrap();
    }
}

fn spawn_worker(test: &str, arg: &str) -> Child {
    Command::new(std::env::current_exe().unwrap())
        .args([test, "--exact", "--ignored", "--nocapture", "--test-threads=1"])
        .env(WORKER_ENV, arg)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap()
}

/// The store is complete and exact: every record's content is there, nothing else is.
fn check_consistent(s: &Store) -> Vec<skiff_image::Image> {
    let imgs = s.list().unwrap();
    let mut blobs = HashSet::new();
    let mut layers = HashSet::new();
    for img in &imgs {
        for d in s.layer_dirs(img).unwrap() {
            assert!(d.join("etc/hostname").exists());
        }
        blobs.insert(img.id.clone());
        blobs.insert(img.manifest_digest.clone());
        for l in &img.layers {
            blobs.insert(l.digest.clone());
            layers.insert(l.diff_id.clone());
        }
        for t in &img.tags {
            assert_eq!(&s.resolve(t).unwrap().id, &img.id);
        }
    }
    let on_disk = |d: &str| -> HashSet<String> {
        fs::read_dir(s.root().join(d))
            .unwrap()
            .map(|e| format!("sha256:{}", e.unwrap().file_name().to_string_lossy()))
            .collect()
    };
    assert_eq!(on_disk("blobs/sha256"), blobs, "blobs on disk vs referenced");
    assert_eq!(on_disk("layers"), layers, "layers on disk vs referenced");
    assert_eq!(fs::read_dir(s.root().join("tmp")).unwrap().count(), 0, "tmp debris");
    imgs
}

#[test]
#[ignore = "helper process of thirty_processes_and_threads_at_once"]
fn concurrency_worker() {
    let Ok(arg) = std::env::var(WORKER_ENV) else {
        return;
    };
    let (root, i) = arg.rsplit_once(':').unwrap();
    let s = open_store(Path::new(root));
    work(&s, &format!("p{i}"), i.parse().unwrap());
}

#[test]
fn thirty_processes_and_threads_at_once() {
    let t = tempfile::tempdir().unwrap();
    let root = t.path().join("store");
    let s = open_store(&root);
    let n = 30;
    let children: Vec<Child> = (0..n).map(|i| spawn_worker("concurrency_worker", &format!("{}:{i}", root.display()))).collect();
    std::thread::scope(|sc| {
        for i in 0..n {
            let root = root.clone();
            sc.spawn(move || {
                let s = open_store(&root);
                work(&s, &format!("t{i}"), i);
            });
        }
    });
    for c in children {
        let out = c.wait_with_output().unwrap();
        assert!(out.status.success(), "worker failed: {}", String::from_utf8_lossy(&out.stderr));
    }
    let imgs = check_consistent(&s);
    let kept = (0..n).filter(|i| !i.is_multiple_of(3)).count() * 2;
    assert_eq!(imgs.len(), kept);
    for who in (0..n).filter(|i| !i.is_multiple_of(3)).flat_map(|i| [format!("p{i}"), format!("t{i}")]) {
        let img = s.resolve(&format!("app:{who}")).unwrap();
        assert_eq!(s.resolve(&format!("extra:{who}")).unwrap().id, img.id);
    }
    for i in (0..n).filter(|i| i.is_multiple_of(3)) {
        assert!(s.resolve(&format!("gonep{i}")).is_err());
        assert!(s.resolve(&format!("extra:t{i}")).is_err());
    }
    // Four distinct contents: four layers, shared by all images.
    assert_eq!(fs::read_dir(root.join("layers")).unwrap().count(), 4);
}

#[test]
#[ignore = "helper process of killed_loads_leave_a_consistent_store"]
fn kill_worker() {
    let Ok(arg) = std::env::var(WORKER_ENV) else {
        return;
    };
    let (root, archive) = arg.split_once('|').unwrap();
    let s = open_store(Path::new(root));
    loop {
        s.load(fs::File::open(archive).unwrap()).unwrap();
        for img in s.list().unwrap() {
            s.remove(&img.id, true, &|_| false).unwrap();
        }
    }
}

/// A docker-archive of three images with ~8 MB of layers each (pseudo-random content).
fn big_archive(dir: &Path) -> std::path::PathBuf {
    let src = open_store(&dir.join("src"));
    let mut names = Vec::new();
    let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
    for i in 0..3 {
        let mut b = tar::Builder::new(Vec::new());
        for f in 0..64 {
            let data: Vec<u8> = (0..128 * 1024)
                .map(|_| {
                    x ^= x << 13;
                    x ^= x >> 7;
                    x ^= x << 17;
                    x as u8
                })
                .collect();
            let mut h = tar::Header::new_gnu();
            h.set_mode(0o644);
            h.set_uid(0);
            h.set_gid(0);
            h.set_size(data.len() as u64);
            b.append_data(&mut h, format!("data/{f}"), &data[..]).unwrap();
        }
        let mut h = tar::Header::new_gnu();
        h.set_mode(0o644);
        h.set_uid(0);
        h.set_gid(0);
        h.set_size(2);
        b.append_data(&mut h, "etc/hostname", &b"k\n"[..]).unwrap();
        let name = format!("big{i}");
        src.import(
            &b.into_inner().unwrap()[..],
            &ImportOptions {
                reference: Some(name.clone()),
                ..Default::default()
            },
        )
        .unwrap();
        names.push(name);
    }
    let path = dir.join("big.tar");
    src.save(&names, ArchiveFormat::DockerArchive, fs::File::create(&path).unwrap()).unwrap();
    path
}

#[test]
fn killed_loads_leave_a_consistent_store() {
    let t = tempfile::tempdir().unwrap();
    let archive = big_archive(t.path());
    let root = t.path().join("store");
    open_store(&root);
    let mut interrupted = 0;
    for round in 0..12u64 {
        let mut c = spawn_worker("kill_worker", &format!("{}|{}", root.display(), archive.display()));
        std::thread::sleep(Duration::from_millis(40 + round * 97 % 700));
        let pid = nix::unistd::Pid::from_raw(c.id() as i32);
        nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGKILL).unwrap();
        c.wait().unwrap();
        // The kill landed mid-operation if it left a work dir or a placement marker.
        if fs::read_dir(root.join("tmp")).unwrap().count() > 0 || root.join("gc-pending").exists() {
            interrupted += 1;
        }
        let s = open_store(&root);
        let imgs = check_consistent(&s);
        for img in &imgs {
            assert!(img.tags.iter().all(|t| t.contains("/big")), "{:?}", img.tags);
        }
    }
    assert!(interrupted >= 6, "only {interrupted} of 12 kills interrupted an operation");
    // And the store still works afterwards.
    let s = open_store(&root);
    assert_eq!(s.load(fs::File::open(&archive).unwrap()).unwrap().len(), 3);
    check_consistent(&s);
}

#[test]
fn loads_racing_removals_of_the_same_layers() {
    let t = tempfile::tempdir().unwrap();
    let src = open_store(&t.path().join("src"));
    let mut names = Vec::new();
    for i in 0..3 {
        let name = format!("race{i}");
        // Same content, so the same layer, in three images (ids differ by creation time).
        src.import(
            &rootfs("same")[..],
            &ImportOptions {
                reference: Some(name.clone()),
                ..Default::default()
            },
        )
        .unwrap();
        names.push(name);
    }
    let mut archives = Vec::new();
    for n in &names {
        let mut a = Vec::new();
        src.save(std::slice::from_ref(n), ArchiveFormat::OciArchive, &mut a).unwrap();
        archives.push(a);
    }
    let root = t.path().join("store");
    open_store(&root);
    std::thread::scope(|sc| {
        for (i, a) in archives.iter().enumerate() {
            for _ in 0..3 {
                let root = root.clone();
                sc.spawn(move || {
                    let s = open_store(&root);
                    for _ in 0..15 {
                        let img = s.load(&a[..]).unwrap().remove(0);
                        // Whatever others do, a loaded image is complete right after.
                        let _ = s.layer_dirs(&img);
                        let _ = s.remove(&format!("race{i}"), true, &|_| false);
                    }
                });
            }
        }
    });
    let s = open_store(&root);
    check_consistent(&s);
    for a in &archives {
        let img = s.load(&a[..]).unwrap().remove(0);
        assert!(s.layer_dirs(&img).unwrap()[0].join("etc/hostname").exists());
    }
    check_consistent(&s);
}
