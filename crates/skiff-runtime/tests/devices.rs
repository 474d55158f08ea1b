//! The devices cgroup on real containers: a config that denies /dev/null (and lists it in
//! linux.devices, which drops runc's default allow for it) cannot open it, /dev/zero still
//! works, and the container's v1 devices.list shows the rules. Bad rules fail create cleanly.

mod common;

use common::*;
use serde_json::json;

fn deny_null_config(script: &str) -> serde_json::Value {
    let mut cfg = base_config(&["sh", "-c", script]);
    cfg["linux"]["resources"] = json!({"devices": [
        {"allow": false, "access": "rwm"},
        {"allow": false, "type": "c", "major": 1, "minor": 3, "access": "rwm"}
    ]});
    cfg["linux"]["devices"] = json!([{"path": "/dev/null", "type": "c", "major": 1, "minor": 3, "fileMode": 438, "uid": 0, "gid": 0}]);
    cfg
}

/// The host directory of `pid`'s v1 devices cgroup, or None on a host without one.
fn devices_cgroup(pid: i64) -> Option<std::path::PathBuf> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/cgroup")).unwrap();
    let line = text.lines().find(|l| l.split(':').nth(1).is_some_and(|c| c.split(',').any(|c| c == "devices")))?;
    let path = line.splitn(3, ':').nth(2)?;
    let mi = std::fs::read_to_string("/proc/self/mountinfo").unwrap();
    let mount = mi.lines().find_map(|l| {
        let (pre, post) = l.split_once(" - ")?;
        let post: Vec<&str> = post.split(' ').collect();
        (post.first() == Some(&"cgroup") && post.get(2)?.split(',').any(|o| o == "devices")).then(|| pre.split(' ').nth(4).map(str::to_string))?
    })?;
    Some(std::path::Path::new(&mount).join(path.trim_start_matches('/')))
}

#[test]
fn denied_dev_null_cannot_be_opened_while_dev_zero_works() {
    if skip() {
        return;
    }
    let rt = Runtime::new();
    let b = Bundle::new(&deny_null_config(
        "head -c 3 /dev/zero | wc -c; echo x > /dev/zero && echo zero-ok; echo x > /dev/null && echo null-ok; test -c /dev/null && echo null-is-node; true",
    ));
    let id = unique_id("dev");
    let (code, out, err) = rt.run_container(&id, &b);
    assert_eq!(code, 0, "stdout: {out}\nstderr: {err}");
    let lines: Vec<&str> = out.lines().map(str::trim).collect();
    assert_eq!(lines, vec!["3", "zero-ok", "null-is-node"], "stderr: {err}");
    assert!(err.contains("/dev/null") && err.contains("Operation not permitted"), "{err}");
    assert_no_leftovers(&rt, &id);
}

#[test]
fn devices_list_shows_the_rules() {
    if skip() {
        return;
    }
    let rt = Runtime::new();
    let b = Bundle::new(&deny_null_config("sleep 60"));
    let id = unique_id("devlist");
    rt.ok(&["create", "--bundle", b.path().to_str().unwrap(), &id]);
    let pid = rt.state(&id)["pid"].as_i64().unwrap();
    let Some(dir) = devices_cgroup(pid) else {
        eprintln!("skipping the devices.list check: no v1 devices controller on this host");
        rt.ok(&["delete", "--force", &id]);
        return;
    };
    let out = std::process::Command::new("cat").arg(dir.join("devices.list")).output().unwrap();
    let list = String::from_utf8_lossy(&out.stdout).into_owned();
    let mut got: Vec<&str> = list.lines().collect();
    got.sort_unstable();
    let mut want = vec![
        "c *:* m", "b *:* m", "c 1:5 rwm", "c 1:7 rwm", "c 1:8 rwm", "c 1:9 rwm", "c 5:0 rwm", "c 5:2 rwm", "c 10:200 rwm", "c 136:* rwm",
    ];
    want.sort_unstable();
    assert_eq!(got, want, "{}", dir.display());
    rt.ok(&["delete", "--force", &id]);
    assert_no_leftovers(&rt, &id);
}

#[test]
fn bad_device_rule_fails_create_and_leaves_nothing() {
    if skip() {
        return;
    }
    let rt = Runtime::new();
    let mut cfg = base_config(&["true"]);
    cfg["linux"]["resources"] = json!({"devices": [{"allow": true, "access": "rwm"}, {"allow": true, "type": "c", "major": -5, "access": "r"}]});
    let b = Bundle::new(&cfg);
    let id = unique_id("devbad");
    let err = rt.fails(&["create", "--bundle", b.path().to_str().unwrap(), &id]);
    assert!(err.contains("linux.resources.devices[1].major"), "{err}");
    assert_no_leftovers(&rt, &id);
}
