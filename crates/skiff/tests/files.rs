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
