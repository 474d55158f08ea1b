//! Runs the built `skiff-runtime` for what needs no container: version, spec, features, errors
//! and logging. Container lifecycle tests live with the engine (they need root and a rootfs).

use std::path::Path;
use std::process::{Command, Output};

fn bin() -> Command {
    Command::new(env!("CARGO_BIN_EXE_skiff-runtime"))
}

fn run(args: &[&str], cwd: Option<&Path>) -> Output {
    let mut c = bin();
    c.args(args);
    if let Some(d) = cwd {
        c.current_dir(d);
    }
    c.output().expect("run skiff-runtime")
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

#[test]
fn version_is_three_runc_style_lines() {
    for flag in ["--version", "-v"] {
        let o = run(&[flag], None);
        assert!(o.status.success());
        let out = stdout(&o);
        let lines: Vec<&str> = out.lines().collect();
        assert_eq!(lines.len(), 3, "{out}");
        assert_eq!(lines[0], "skiff-runtime version 0.1.0");
        let commit = lines[1].strip_prefix("commit: ").expect("commit line");
        assert!(
            commit == "unknown" || (commit.len() == 40 && commit.chars().all(|c| c.is_ascii_hexdigit())),
            "{commit}"
        );
        assert_eq!(lines[2], "spec: 1.2.0");
    }
}

#[test]
fn spec_writes_config_and_refuses_to_overwrite() {
    let dir = tempfile::tempdir().unwrap();
    let o = run(&["spec"], Some(dir.path()));
    assert!(o.status.success(), "{}", stderr(&o));
    let text = std::fs::read_to_string(dir.path().join("config.json")).unwrap();
    let v: serde_json::Value = serde_json::from_str(&text).unwrap();
    assert_eq!(v["ociVersion"], "1.2.0");
    assert_eq!(v["hostname"], "skiff");
    assert_eq!(v["process"]["args"][0], "sh");
    let spec: oci_spec::runtime::Spec = serde_json::from_str(&text).expect("parses as a Spec");
    assert!(spec.linux().is_some());

    let o = run(&["spec"], Some(dir.path()));
    assert_eq!(o.status.code(), Some(1));
    assert!(stderr(&o).contains("File config.json exists. Remove it first"), "{}", stderr(&o));
    // The file is untouched.
    assert_eq!(std::fs::read_to_string(dir.path().join("config.json")).unwrap(), text);
}

#[test]
fn spec_bundle_flag_and_rootless() {
    let dir = tempfile::tempdir().unwrap();
    let b = dir.path().join("b");
    std::fs::create_dir(&b).unwrap();
    let o = run(&["spec", "--rootless", "-b", b.to_str().unwrap()], None);
    assert!(o.status.success(), "{}", stderr(&o));
    let v: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(b.join("config.json")).unwrap()).unwrap();
    let ns: Vec<&str> =
        v["linux"]["namespaces"].as_array().unwrap().iter().map(|n| n["type"].as_str().unwrap()).collect();
    assert!(ns.contains(&"user") && !ns.contains(&"network"), "{ns:?}");
    let euid = nix::unistd::geteuid().as_raw();
    assert_eq!(v["linux"]["uidMappings"][0]["hostID"], euid);

    let o = run(&["spec", "--bundle", dir.path().join("missing").to_str().unwrap()], None);
    assert_eq!(o.status.code(), Some(1));
}

#[test]
fn features_is_valid_json() {
    let o = run(&["features"], None);
    assert!(o.status.success());
    let v: serde_json::Value = serde_json::from_str(&stdout(&o)).unwrap();
    assert_eq!(v["ociVersionMin"], "1.0.0");
    assert_eq!(v["ociVersionMax"], "1.3.0");
    assert!(v["linux"]["namespaces"].as_array().unwrap().iter().any(|n| n == "time"));
    assert!(stdout(&o).starts_with("{\n    \"ociVersionMin\""));
}

#[test]
fn checkpoint_and_restore_without_a_container_fail_clearly() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("root");
    let root = root.to_str().unwrap();
    let o = run(&["--root", root, "checkpoint", "c1"], Some(dir.path()));
    assert_eq!(o.status.code(), Some(1));
    assert!(stderr(&o).contains("container c1 does not exist"), "{}", stderr(&o));
    // restore reads the bundle's config first: there is none in this directory.
    let o = run(&["--root", root, "restore", "c1"], Some(dir.path()));
    assert_eq!(o.status.code(), Some(1));
    assert!(stderr(&o).contains("config.json"), "{}", stderr(&o));
}

#[test]
fn errors_go_to_stderr_and_json_log() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("log.json");
    std::fs::write(dir.path().join("config.json"), "{}").unwrap();
    // Global flags after the subcommand, --flag=value form.
    let o = run(&["spec", &format!("--log={}", log.display()), "--log-format", "json"], Some(dir.path()));
    assert_eq!(o.status.code(), Some(1));
    // With --log, stderr gets the bare message.
    assert_eq!(stderr(&o), "File config.json exists. Remove it first\n");
    let text = std::fs::read_to_string(&log).unwrap();
    let last: serde_json::Value = serde_json::from_str(text.lines().last().unwrap()).unwrap();
    assert_eq!(last["level"], "error");
    assert_eq!(last["msg"], "File config.json exists. Remove it first");
    assert!(last["time"].as_str().unwrap().ends_with('Z'));

    // Text format, without --log: the logrus line on stderr.
    let o = run(&["--root", dir.path().join("root").to_str().unwrap(), "checkpoint", "x"], None);
    let err = stderr(&o);
    assert!(err.starts_with("time=\"") && err.contains(" level=error msg=\"container x does not exist\""), "{err}");
}

#[test]
fn usage_errors_exit_1_and_are_logged() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("log.json");
    let o = run(&["--log", log.to_str().unwrap(), "--log-format", "json", "frobnicate"], None);
    assert_eq!(o.status.code(), Some(1));
    assert!(stderr(&o).contains("frobnicate"));
    let text = std::fs::read_to_string(&log).unwrap();
    let last: serde_json::Value = serde_json::from_str(text.lines().last().unwrap()).unwrap();
    assert_eq!(last["level"], "error");
    assert!(last["msg"].as_str().unwrap().contains("frobnicate"));

    assert_eq!(run(&["start"], None).status.code(), Some(1));
    assert!(run(&["--help"], None).status.success());
}

#[test]
fn argument_errors_before_touching_containers() {
    let o = run(&["kill", "c1", "NOSUCHSIG"], None);
    assert_eq!(o.status.code(), Some(1));
    assert!(stderr(&o).contains("unknown signal"), "{}", stderr(&o));
    let o = run(&["exec", "c1"], None);
    assert_eq!(o.status.code(), Some(1));
    assert!(stderr(&o).contains("COMMAND"), "{}", stderr(&o));
    let o = run(&["run", "--keep", "c1"], None);
    assert_eq!(o.status.code(), Some(1));
}

// needs container API: Runtime::list is still a todo!() stub.
#[test]
fn list_on_empty_root() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().to_str().unwrap();
    let o = run(&["--root", root, "list"], None);
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(stdout(&o), "ID          PID         STATUS      BUNDLE      CREATED     OWNER\n");
    let o = run(&["--root", root, "list", "--format", "json"], None);
    assert_eq!(stdout(&o), "null\n");
    let o = run(&["--root", root, "ls", "-q"], None);
    assert_eq!(stdout(&o), "");
    // A root that does not exist yet lists nothing too.
    let o = run(&["--root", dir.path().join("nope").to_str().unwrap(), "list", "-q"], None);
    assert!(o.status.success());
}

// needs container API: Runtime::load / delete are still todo!() stubs.
#[test]
fn missing_container_fails() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().to_str().unwrap();
    for args in [
        vec!["state", "nope"],
        vec!["start", "nope"],
        vec!["kill", "nope"],
        vec!["kill", "nope", "KILL"],
        vec!["delete", "nope"],
        vec!["ps", "nope"],
        vec!["exec", "nope", "true"],
    ] {
        let mut full = vec!["--root", root];
        full.extend(&args);
        let o = run(&full, None);
        assert_eq!(o.status.code(), Some(1), "{args:?}");
        assert!(stderr(&o).contains("container nope does not exist"), "{args:?}: {}", stderr(&o));
    }
    // delete --force of a missing id succeeds.
    assert!(run(&["--root", root, "delete", "-f", "nope"], None).status.success());
}
