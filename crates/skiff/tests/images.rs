//! Image commands through the CLI: images (table, -q, json, filters), tag, rmi (-f, in use),
//! save/load round trips in both formats, import with changes, history, image prune,
//! system df.

mod common;

use common::{text, Store};

#[test]
fn images_tag_rmi_and_formats() {
    let s = Store::new();
    let table = s.ok(&["images"]);
    let mut lines = table.lines();
    let head: Vec<&str> = lines.next().unwrap().split("   ").map(str::trim).filter(|c| !c.is_empty()).collect();
    assert_eq!(head, ["REPOSITORY", "TAG", "IMAGE ID", "CREATED", "SIZE"]);
    assert!(table.lines().nth(1).unwrap().starts_with("busybox      latest"), "{table}");
    let id = s.ok(&["images", "-q"]);
    assert_eq!(id.trim().len(), 12);
    s.ok(&["tag", "busybox", "example.com:5000/team/tool:v1"]);
    let json = s.ok(&["images", "--format", "json"]);
    let rows: Vec<serde_json::Value> = json.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    assert_eq!(rows.len(), 2);
    assert!(rows.iter().any(|r| r["Repository"] == "example.com:5000/team/tool" && r["Tag"] == "v1"));
    assert!(rows.iter().all(|r| r["ID"] == id.trim()));
    assert_eq!(s.ok(&["images", "--format", "{{.Repository}}:{{.Tag}}", "busybox"]), "busybox:latest\n");
    // rmi of one tag only untags.
    assert_eq!(s.ok(&["rmi", "example.com:5000/team/tool:v1"]), "Untagged: example.com:5000/team/tool:v1\n");
    assert_eq!(s.ok(&["images", "-q"]).lines().count(), 1);
    // In use by a container: refused; -f untags but keeps the data the container needs.
    s.ok(&["create", "--name", "user1", "busybox", "true"]);
    let e = s.fails(&["rmi", "busybox"], 1);
    assert!(
        e.contains("user1") || e.contains(&s.inspect("user1", "{{.Id}}")[..12]) || e.contains("in use"),
        "{e}"
    );
    s.ok(&["rmi", "-f", "busybox"]);
    assert_eq!(s.ok(&["images", "--format", "{{.Repository}}"]), "<none>\n");
    assert_eq!(s.run(&["start", "-a", "user1"]).status.code(), Some(0));
    s.ok(&["rm", "user1"]);
    // Now unused and untagged: image prune removes it.
    let pr = s.ok(&["image", "prune", "-f"]);
    assert!(pr.contains("deleted: sha256:"), "{pr}");
    assert_eq!(s.ok(&["images", "-q"]), "");
}

#[test]
fn save_and_load_round_trip_both_formats() {
    let s = Store::new();
    s.ok(&["run", "--name", "mk", "busybox", "sh", "-c", "echo layered > /payload"]);
    s.ok(&["commit", "-c", "CMD [\"cat\", \"/payload\"]", "mk", "app:1"]);
    let id = s.inspect("app:1", "{{.Id}}");
    for fmt in ["docker-archive", "oci-archive"] {
        let file = s.path().join(format!("app-{fmt}.tar"));
        s.ok(&["save", "--format", fmt, "-o", file.to_str().unwrap(), "app:1"]);
        let other = Store::empty();
        let out = other.ok(&["load", "-i", file.to_str().unwrap()]);
        assert_eq!(out, "Loaded image: app:1\n", "{fmt}");
        assert_eq!(other.inspect("app:1", "{{.Id}}"), id, "{fmt}: the config digest survives");
        // The loaded image has both layers and runs: it needs busybox's layer too.
        assert_eq!(other.ok(&["run", "--rm", "app:1"]), "layered\n", "{fmt}");
    }
    // save to stdout, load from stdin.
    let o = s.cmd(&["save", "app:1"]).stdout(std::process::Stdio::piped()).output().unwrap();
    assert!(o.status.success());
    let other = Store::empty();
    let mut c = other.cmd(&["load"]);
    c.stdin(std::process::Stdio::piped()).stdout(std::process::Stdio::piped());
    let mut ch = c.spawn().unwrap();
    use std::io::Write;
    ch.stdin.take().unwrap().write_all(&o.stdout).unwrap();
    let lo = ch.wait_with_output().unwrap();
    assert_eq!(text(&lo.stdout), "Loaded image: app:1\n");
    // A missing image: clear error, nothing written.
    let missing = s.path().join("missing.tar");
    let e = s.fails(&["save", "-o", missing.to_str().unwrap(), "nope:1"], 1);
    assert!(e.contains("No such image"), "{e}");
    assert!(!missing.exists());
}

#[test]
fn import_with_changes_history_and_df() {
    let s = Store::empty();
    let tar = common::busybox_tar().to_str().unwrap().to_string();
    s.ok(&[
        "import",
        "-c",
        "ENV GREETING=hi",
        "-c",
        "WORKDIR /tmp",
        "-c",
        "ENTRYPOINT [\"sh\", \"-c\"]",
        "-m",
        "from a tar",
        &tar,
        "custom:latest",
    ]);
    assert_eq!(s.ok(&["run", "--rm", "custom", "echo $GREETING from $(pwd)"]), "hi from /tmp\n");
    // --entrypoint overrides the image's.
    assert_eq!(s.ok(&["run", "--rm", "--entrypoint", "echo", "custom", "plain"]), "plain\n");
    let h = s.ok(&["history", "--format", "{{.Comment}}", "custom"]);
    assert_eq!(h, "from a tar\n");
    let df = s.ok(&["system", "df"]);
    assert!(df.starts_with("TYPE"), "{df}");
    assert!(df.lines().any(|l| l.starts_with("Images") && l.contains(" 1 ")), "{df}");
    let dfj = s.ok(&["system", "df", "--format", "json"]);
    assert_eq!(dfj.lines().count(), 3);
    let info = s.ok(&["info", "--format", "{{.Images}} {{.Driver}}"]);
    assert_eq!(info, "1 overlay2\n");
    assert!(s.ok(&["version", "--format", "{{.Client.Version}}"]).trim().starts_with("0."));
}
