//! A container's files: commit (with changes and history), diff, export, cp both ways, and
//! the escape attempts through symlinks inside the container.

mod common;

use common::{text, Store};

#[test]
fn commit_diff_and_history() {
    let s = Store::new();
    s.ok(&[
        "run",
        "--name",
        "w1",
        "busybox",
        "sh",
        "-c",
        "mkdir -p /opt/app && echo v1 > /opt/app/data; rm /bin/vi; echo hi > /root/note",
    ]);
    let diff = s.ok(&["diff", "w1"]);
    assert_eq!(diff, "C /bin\nD /bin/vi\nA /opt\nA /opt/app\nA /opt/app/data\nC /root\nA /root/note\n");
    let id = s.ok(&[
        "commit",
        "-m",
        "add app",
        "-c",
        "CMD [\"cat\", \"/opt/app/data\"]",
        "-c",
        "ENV MODE=prod",
        "w1",
        "app:v1",
    ]);
    assert!(id.starts_with("sha256:"), "{id}");
    // The new image runs its new CMD, sees the changes (the deletion too) and the ENV.
    assert_eq!(s.ok(&["run", "--rm", "app:v1"]), "v1\n");
    let o = s.run(&["run", "--rm", "app:v1", "sh", "-c", "ls /bin/vi; echo $MODE"]);
    assert_eq!(text(&o.stdout), "prod\n");
    assert!(text(&o.stderr).contains("No such file"), "{}", text(&o.stderr));
    let hist = s.ok(&["history", "app:v1"]);
    assert!(hist.starts_with("IMAGE "), "{hist}");
    assert!(hist.lines().nth(1).unwrap().contains("add app"), "{hist}");
    assert_eq!(hist.lines().count(), 3, "{hist}");
    assert_eq!(
        s.ok(&["image", "inspect", "-f", "{{json .Config.Cmd}}", "app:v1"]),
        "[\"cat\",\"/opt/app/data\"]\n"
    );
    // A commit of a commit keeps stacking layers.
    s.ok(&["run", "--name", "w2", "app:v1", "sh", "-c", "echo v2 > /opt/app/data"]);
    s.ok(&["commit", "w2", "app:v2"]);
    // Like Docker, the committed Cmd is the container's own command.
    assert_eq!(
        s.ok(&["image", "inspect", "-f", "{{json .Config.Cmd}}", "app:v2"]),
        "[\"sh\",\"-c\",\"echo v2 > /opt/app/data\"]\n"
    );
    assert_eq!(s.ok(&["run", "--rm", "app:v2", "cat", "/opt/app/data"]), "v2\n");
    assert_eq!(s.ok(&["image", "inspect", "-f", "{{len .RootFS.Layers}}", "app:v2"]), "3\n");
    // An image in use cannot be removed; rmi -f untags it.
    let e = s.fails(&["rmi", "app:v1"], 1);
    assert!(e.contains("conflict") || e.contains("in use") || e.contains("being used"), "{e}");
}

#[test]
fn export_and_cp() {
    let s = Store::new();
    s.ok(&[
        "run",
        "--name",
        "box",
        "busybox",
        "sh",
        "-c",
        "mkdir -p /srv/d && echo inside > /srv/d/f && ln -s /etc /srv/etc-link",
    ]);
    let tar = s.path().join("box.tar");
    s.ok(&["export", "-o", tar.to_str().unwrap(), "box"]);
    let list = std::process::Command::new("tar").arg("-tf").arg(&tar).output().unwrap();
    let names = text(&list.stdout);
    assert!(names.lines().any(|l| l.trim_start_matches("./") == "srv/d/f"), "{names}");
    assert!(names.lines().any(|l| l.trim_start_matches("./") == "bin/busybox"));
    // cp out: a file and a directory.
    let out = s.path().join("out");
    std::fs::create_dir(&out).unwrap();
    s.ok(&["cp", "box:/srv/d/f", out.to_str().unwrap()]);
    assert_eq!(std::fs::read_to_string(out.join("f")).unwrap(), "inside\n");
    s.ok(&["cp", "box:/srv/d", out.join("dcopy").to_str().unwrap()]);
    assert_eq!(std::fs::read_to_string(out.join("dcopy/f")).unwrap(), "inside\n");
    // cp in, then the container sees it.
    let f = s.path().join("host.txt");
    std::fs::write(&f, "from host\n").unwrap();
    s.ok(&["cp", f.to_str().unwrap(), "box:/srv/"]);
    s.ok(&["commit", "box", "boxed"]);
    assert_eq!(s.ok(&["run", "--rm", "boxed", "cat", "/srv/host.txt"]), "from host\n");
    // Into a running container too.
    s.ok(&["run", "-d", "--name", "live", "busybox", "sleep", "60"]);
    s.ok(&["cp", f.to_str().unwrap(), "live:/tmp/h.txt"]);
    assert_eq!(s.ok(&["exec", "live", "cat", "/tmp/h.txt"]), "from host\n");
    assert_eq!(s.inspect("live", "{{.State.Status}}"), "running");
}

#[test]
fn cp_through_container_symlinks_stays_inside() {
    let s = Store::new();
    let marker = s.path().join("host-secret");
    std::fs::write(&marker, "host only\n").unwrap();
    // Symlinks in the container pointing at host paths, absolute and through "..".
    let abs = format!(
        "ln -s {} /leak-abs; ln -s ../../../../../../..{} /leak-rel; ln -s / /rootlink; mkdir /drop",
        marker.display(),
        s.path().display()
    );
    s.ok(&["run", "--name", "evil", "busybox", "sh", "-c", &abs]);
    // Reading through them reads the container's files, not the host's.
    let out = s.path().join("got");
    let o = s.run(&["cp", "evil:/leak-abs", out.to_str().unwrap()]);
    assert!(
        !o.status.success() || std::fs::read_to_string(&out).map(|t| t != "host only\n").unwrap_or(true),
        "cp read the host file through a symlink"
    );
    // Writing through a symlink that points at the host lands inside the container.
    let payload = s.path().join("payload");
    std::fs::write(&payload, "pwned\n").unwrap();
    let target = format!("evil:/rootlink{}/written-through", s.path().display());
    let _ = s.run(&["cp", payload.to_str().unwrap(), &target]);
    assert!(!s.path().join("written-through").exists(), "cp wrote to the host through a container symlink");
    let _ = s.run(&["cp", payload.to_str().unwrap(), "evil:/leak-rel/written-rel"]);
    assert!(!s.path().join("written-rel").exists(), "cp wrote to the host through a relative symlink");
    assert_eq!(std::fs::read_to_string(&marker).unwrap(), "host only\n");
}

#[test]
fn vfs_driver_copies_layers_with_whiteouts_and_commits() {
    let s = Store::new();
    // An image whose top layer deletes a file and replaces a directory's contents.
    s.ok(&[
        "run",
        "--name",
        "base",
        "busybox",
        "sh",
        "-c",
        "rm /bin/vi; mkdir -p /opt/d && echo old > /opt/d/old",
    ]);
    s.ok(&["commit", "base", "del:1"]);
    s.ok(&[
        "run",
        "--name",
        "base2",
        "del:1",
        "sh",
        "-c",
        "rm -r /opt/d; mkdir /opt/d; echo new > /opt/d/new",
    ]);
    s.ok(&["commit", "base2", "del:2"]);
    let out = s.ok(&[
        "--storage-driver",
        "vfs",
        "run",
        "--name",
        "v1",
        "del:2",
        "sh",
        "-c",
        "ls /bin/vi 2>&1; ls /opt/d; echo made > /root/made; rm /bin/cat",
    ]);
    assert_eq!(out, "ls: /bin/vi: No such file or directory\nnew\n");
    assert_eq!(s.inspect("v1", "{{.GraphDriver.Name}}"), "vfs");
    // Nothing is mounted for it on the host.
    let mounts = std::fs::read_to_string("/proc/self/mountinfo").unwrap();
    assert!(!mounts.contains(&s.inspect("v1", "{{.Id}}")));
    assert_eq!(s.ok(&["diff", "v1"]), "C /bin\nD /bin/cat\nC /root\nA /root/made\n");
    s.ok(&["commit", "v1", "fromvfs"]);
    let o = s.run(&["run", "--rm", "fromvfs", "sh", "-c", "cat /root/made; ls /bin/cat"]);
    assert_eq!(text(&o.stdout), "made\n");
    assert!(text(&o.stderr).contains("No such file"));
    // Restarting it keeps its files (the copy is made once): /bin/cat is already gone.
    let o = s.run(&["start", "-a", "v1"]);
    assert!(text(&o.stderr).contains("can't remove '/bin/cat'"), "{}", text(&o.stderr));
    assert_eq!(s.ok(&["--storage-driver", "vfs", "run", "--rm", "del:2", "cat", "/opt/d/new"]), "new\n");
}

#[test]
fn overlay_refused_falls_back_to_copying() {
    // A store inside an overlay mount: overlayfs cannot use overlayfs as its upper layer.
    let t = tempfile::Builder::new().prefix("skiff-test-ovl-").tempdir_in("/tmp").unwrap();
    for d in ["l", "u", "w", "m"] {
        std::fs::create_dir(t.path().join(d)).unwrap();
    }
    let opts = format!("lowerdir={0}/l,upperdir={0}/u,workdir={0}/w", t.path().display());
    let m = t.path().join("m");
    let st = std::process::Command::new("mount")
        .args(["-t", "overlay", "overlay", "-o", &opts])
        .arg(&m)
        .status()
        .unwrap();
    assert!(st.success());
    struct Unmount(std::path::PathBuf);
    impl Drop for Unmount {
        fn drop(&mut self) {
            let _ = std::process::Command::new("umount").arg("-l").arg(&self.0).status();
        }
    }
    let _u = Unmount(m.clone());
    let root = m.join("store");
    let sk = |args: &[&str]| {
        std::process::Command::new(common::skiff_bin())
            .env("SKIFF_DEFAULT_NETWORK", "none")
            .arg("--root")
            .arg(&root)
            .args(args)
            .output()
            .unwrap()
    };
    let o = sk(&["import", common::busybox_tar().to_str().unwrap(), "busybox"]);
    assert!(o.status.success(), "{}", text(&o.stderr));
    let o = sk(&["run", "--name", "nested", "busybox", "sh", "-c", "echo works"]);
    assert_eq!(text(&o.stdout), "works\n", "{}", text(&o.stderr));
    let o = sk(&["inspect", "-f", "{{.GraphDriver.Name}}", "nested"]);
    assert_eq!(text(&o.stdout), "vfs\n");
    let o = sk(&["rm", "nested"]);
    assert!(o.status.success());
}
