//! Tests of the devices cgroup: encoding, program generation (run through a tiny interpreter),
//! validation, the emulator, v1 writes on a fake tree, and a real BPF program (root only).

use std::fs;
use std::path::{Path, PathBuf};

use oci_spec::runtime::{LinuxDevice, LinuxDeviceCgroup};
use serde_json::json;

use super::bpf::{self, Insn, R0, R1, R2, R3, R4, R5};
use super::*;
use crate::cgroups::{Cgroups, Manager};

fn rules(v: serde_json::Value) -> Vec<LinuxDeviceCgroup> {
    serde_json::from_value(v).unwrap()
}

fn devs(v: serde_json::Value) -> Vec<LinuxDevice> {
    serde_json::from_value(v).unwrap()
}

fn field_of(e: crate::error::Error) -> String {
    match e {
        crate::error::Error::InvalidField { field, .. } => field,
        other => panic!("not a field error: {other}"),
    }
}

// ---------------------------------------------------------------- encoding

#[test]
fn instruction_encoding_matches_the_kernel_layout() {
    // code | dst + src<<4 | off (le16) | imm (le32), opcodes from linux/bpf.h.
    assert_eq!(Insn::ldx_w(R2, R1, 0).to_bytes(), [0x61, 0x12, 0, 0, 0, 0, 0, 0]);
    assert_eq!(Insn::ldx_w(R4, R1, 4).to_bytes(), [0x61, 0x14, 4, 0, 0, 0, 0, 0]);
    assert_eq!(Insn::and32_imm(R2, 0xffff).to_bytes(), [0x54, 0x02, 0, 0, 0xff, 0xff, 0, 0]);
    assert_eq!(Insn::rsh32_imm(R3, 16).to_bytes(), [0x74, 0x03, 0, 0, 16, 0, 0, 0]);
    assert_eq!(Insn::mov32_reg(R1, R3).to_bytes(), [0xbc, 0x31, 0, 0, 0, 0, 0, 0]);
    assert_eq!(Insn::mov32_imm(R0, 1).to_bytes(), [0xb4, 0x00, 0, 0, 1, 0, 0, 0]);
    assert_eq!(Insn::jne_imm(R4, 136, 3).to_bytes(), [0x55, 0x04, 3, 0, 136, 0, 0, 0]);
    assert_eq!(Insn::jne_imm(R5, 1, -1).to_bytes(), [0x55, 0x05, 0xff, 0xff, 1, 0, 0, 0]);
    assert_eq!(Insn::jne32_imm(R5, -1, 1).to_bytes(), [0x56, 0x05, 1, 0, 0xff, 0xff, 0xff, 0xff]);
    assert_eq!(Insn::jne_reg(R1, R3, 2).to_bytes(), [0x5d, 0x31, 2, 0, 0, 0, 0, 0]);
    assert_eq!(Insn::exit().to_bytes(), [0x95, 0, 0, 0, 0, 0, 0, 0]);
    assert_eq!(bpf::encode(&[Insn::exit(), Insn::mov32_imm(R0, 0)]).len(), 16);
}

// ---------------------------------------------------------------- program generation

/// Runs a generated program on a device access, supporting exactly the instructions we emit.
fn run(prog: &[Insn], ty: u32, access: u8, major: u32, minor: u32) -> u32 {
    let ctx = [ty | (u32::from(access) << 16), major, minor];
    let mut r = [0u64; 11];
    let mut pc = 0usize;
    for _ in 0..10_000 {
        let i = prog[pc];
        let (d, s) = (usize::from(i.dst), usize::from(i.src));
        let imm64 = i64::from(i.imm) as u64;
        let jump = |cond: bool, pc: &mut usize| {
            if cond {
                *pc = (*pc as i64 + 1 + i64::from(i.off)) as usize;
            } else {
                *pc += 1;
            }
        };
        match i.code {
            0x61 => {
                assert_eq!(s, 1, "only ctx loads");
                r[d] = u64::from(ctx[usize::try_from(i.off).unwrap() / 4]);
                pc += 1;
            }
            0x54 => {
                r[d] = u64::from((r[d] as u32) & (i.imm as u32));
                pc += 1;
            }
            0x74 => {
                r[d] = u64::from((r[d] as u32) >> i.imm);
                pc += 1;
            }
            0xbc => {
                r[d] = u64::from(r[s] as u32);
                pc += 1;
            }
            0xb4 => {
                r[d] = u64::from(i.imm as u32);
                pc += 1;
            }
            0x55 => jump(r[d] != imm64, &mut pc),
            0x56 => jump(r[d] as u32 != i.imm as u32, &mut pc),
            0x5d => jump(r[d] != r[s], &mut pc),
            0x95 => return r[0] as u32,
            c => panic!("unexpected opcode {c:#x} at {pc}"),
        }
        assert!(pc < prog.len(), "jumped out of the program");
    }
    panic!("program did not finish");
}

const CHR: u32 = 2;
const BLK: u32 = 1;
const R: u8 = Access::READ;
const W: u8 = Access::WRITE;
const M: u8 = Access::MKNOD;

#[test]
fn default_program_shape_and_behaviour() {
    let state = compute(&[], &[]).unwrap();
    assert!(!state.default_allow);
    let p = bpf::program(&state).unwrap();
    // prologue 6; c *:* m and b *:* m: 6 each; eight c N:N rwm: 5 each; c 136:* rwm: 4; tail 2.
    assert_eq!(p.len(), 6 + 2 * 6 + 8 * 5 + 4 + 2);
    assert_eq!(&p[p.len() - 2..], &[Insn::mov32_imm(R0, 0), Insn::exit()], "default: deny");
    assert_eq!(run(&p, CHR, R | W, 1, 3), 1, "/dev/null");
    assert_eq!(run(&p, CHR, R, 1, 9), 1, "/dev/urandom");
    assert_eq!(run(&p, CHR, R | W, 136, 7), 1, "a pts");
    assert_eq!(run(&p, CHR, M, 8, 0), 1, "mknod of anything");
    assert_eq!(run(&p, BLK, M, 8, 0), 1, "mknod of a block device");
    assert_eq!(run(&p, BLK, R, 8, 0), 0, "reading /dev/sda");
    assert_eq!(run(&p, CHR, R | W, 1, 1), 0, "/dev/mem");
    assert_eq!(run(&p, CHR, R | M, 10, 1), 0);
}

#[test]
fn deny_rule_and_overridden_default() {
    // Deny all, deny /dev/null, and list /dev/null as a device: its default allow is dropped.
    let r = rules(json!([{"allow": false, "access": "rwm"}, {"allow": false, "type": "c", "major": 1, "minor": 3, "access": "rwm"}]));
    let d = devs(json!([{"path": "/dev/null", "type": "c", "major": 1, "minor": 3}]));
    let p = bpf::program(&compute(&r, &d).unwrap()).unwrap();
    assert_eq!(run(&p, CHR, R | W, 1, 3), 0, "/dev/null denied");
    assert_eq!(run(&p, CHR, R | W, 1, 5), 1, "/dev/zero allowed");
    // Without the linux.devices entry the default allow comes last and wins (as in runc).
    let p = bpf::program(&compute(&r, &[]).unwrap()).unwrap();
    assert_eq!(run(&p, CHR, R | W, 1, 3), 1);
}

#[test]
fn allow_all_then_deny_is_a_deny_list() {
    let r = rules(json!([
        {"allow": true, "access": "rwm"},
        {"allow": false, "type": "b", "major": 8, "access": "rw"},
        {"allow": false, "type": "c", "major": 4000000000u32, "minor": 1, "access": "w"}
    ]));
    let state = compute(&r, &[]).unwrap();
    assert!(state.default_allow);
    let p = bpf::program(&state).unwrap();
    assert_eq!(&p[p.len() - 2..], &[Insn::mov32_imm(R0, 1), Insn::exit()], "default: allow");
    assert_eq!(run(&p, BLK, R, 8, 1), 0);
    assert_eq!(run(&p, BLK, M, 8, 1), 1, "m not denied");
    assert_eq!(run(&p, BLK, R, 9, 1), 1);
    assert_eq!(run(&p, CHR, W, 4_000_000_000, 1), 0, "major above i32::MAX compares as u32");
    assert_eq!(run(&p, CHR, W, 4_000_000_001, 1), 1);
    assert_eq!(run(&p, CHR, R | W, 1, 3), 1);
}

#[test]
fn later_rules_override_and_access_merges() {
    let r = rules(json!([
        {"allow": false, "access": "rwm"},
        {"allow": true, "type": "c", "major": 42, "minor": 0, "access": "r"},
        {"allow": true, "type": "c", "major": 42, "minor": 0, "access": "w"},
        {"allow": true, "type": "c", "major": 43, "minor": 0, "access": "rw"},
        {"allow": false, "type": "c", "major": 43, "minor": 0, "access": "w"}
    ]));
    let state = compute(&r, &[]).unwrap();
    assert_eq!(state.exceptions.get(&(Kind::Char, Some(42), Some(0))), Some(&Access(R | W)));
    assert_eq!(state.exceptions.get(&(Kind::Char, Some(43), Some(0))), Some(&Access(R)));
    let p = bpf::program(&state).unwrap();
    assert_eq!(run(&p, CHR, R | W, 42, 0), 1);
    assert_eq!(run(&p, CHR, R, 43, 0), 1);
    assert_eq!(run(&p, CHR, R | W, 43, 0), 0);
}

#[test]
fn punching_a_hole_in_a_wildcard_is_refused() {
    let r = rules(json!([
        {"allow": false, "access": "rwm"},
        {"allow": true, "type": "c", "access": "rw"},
        {"allow": false, "type": "c", "major": 1, "minor": 3, "access": "w"}
    ]));
    let e = compute(&r, &[]).unwrap_err();
    assert!(e.to_string().contains("c *:* rw"), "{e}");
    assert_eq!(field_of(e), "linux.resources.devices[2]");
    // Denying only access the wildcard lacks is fine.
    let r = rules(json!([{"allow": true, "type": "c", "access": "r"}, {"allow": false, "type": "c", "major": 1, "minor": 3, "access": "w"}]));
    assert!(compute(&r, &[]).is_ok());
}

// ---------------------------------------------------------------- validation

#[test]
fn validation_errors_name_the_field() {
    let bad = |v: serde_json::Value| field_of(compute(&rules(v), &[]).unwrap_err());
    assert_eq!(bad(json!([{"allow": true, "access": "rwm"}, {"allow": true, "type": "p", "access": "rwm"}])), "linux.resources.devices[1].type");
    assert_eq!(bad(json!([{"allow": true, "type": "u", "access": "r"}])), "linux.resources.devices[0].type");
    assert_eq!(bad(json!([{"allow": true, "type": "c", "access": "rwx"}])), "linux.resources.devices[0].access");
    assert_eq!(bad(json!([{"allow": true, "type": "c", "access": ""}])), "linux.resources.devices[0].access");
    // A missing access means rwm (optional in the spec; containerd and podman configs omit it).
    let all = compute(&rules(json!([{"allow": false}])), &[]).unwrap();
    assert!(!all.default_allow);
    assert_eq!(bad(json!([{"allow": true, "type": "c", "major": -2, "access": "r"}])), "linux.resources.devices[0].major");
    assert_eq!(bad(json!([{"allow": true, "type": "b", "minor": 5_000_000_000u64, "access": "r"}])), "linux.resources.devices[0].minor");
    // -1 is the wildcard; a missing type is 'a'.
    let ok = compute(&rules(json!([{"allow": true, "access": "rwm"}, {"allow": false, "type": "c", "major": -1, "minor": -1, "access": "m"}])), &[]).unwrap();
    assert!(ok.default_allow);
    assert_eq!(ok.exceptions.get(&(Kind::Char, None, None)), None, "defaults re-allow c *:* m");
}

// ---------------------------------------------------------------- v1

#[test]
fn v1_lines_in_order() {
    let r = rules(json!([{"allow": false, "access": "rwm"}, {"allow": false, "type": "c", "major": 1, "minor": 3, "access": "rwm"}]));
    let d = devs(json!([{"path": "/dev/null", "type": "c", "major": 1, "minor": 3}]));
    let got = v1::lines(&compute(&r, &d).unwrap());
    let want: Vec<(&str, &str)> = vec![
        ("devices.deny", "a"),
        ("devices.allow", "c *:* m"),
        ("devices.allow", "c 1:5 rwm"),
        ("devices.allow", "c 1:7 rwm"),
        ("devices.allow", "c 1:8 rwm"),
        ("devices.allow", "c 1:9 rwm"),
        ("devices.allow", "c 5:0 rwm"),
        ("devices.allow", "c 5:2 rwm"),
        ("devices.allow", "c 10:200 rwm"),
        ("devices.allow", "c 136:* rwm"),
        ("devices.allow", "b *:* m"),
    ];
    let got: Vec<(&str, &str)> = got.iter().map(|(f, l)| (*f, l.as_str())).collect();
    assert_eq!(got, want);

    let r = rules(json!([{"allow": true, "access": "rwm"}, {"allow": false, "type": "b", "major": 8, "minor": 0, "access": "w"}]));
    let got = v1::lines(&compute(&r, &[]).unwrap());
    assert_eq!(got, vec![("devices.allow", "a".to_string()), ("devices.deny", "b 8:0 w".to_string())]);
}

fn write(p: &Path, s: &str) {
    if let Some(d) = p.parent() {
        fs::create_dir_all(d).unwrap();
    }
    fs::write(p, s).unwrap();
}

/// A hybrid tree: v1 devices and memory hierarchies plus a cgroup2 mount.
fn fake_hybrid(root: &Path) -> Cgroups {
    let r = root.display();
    let mi = format!(
        "\
31 23 0:28 / {r} rw,relatime - tmpfs tmpfs rw,mode=755
35 31 0:32 / {r}/memory rw,relatime - cgroup cgroup rw,memory
36 31 0:33 / {r}/devices rw,relatime - cgroup cgroup rw,devices
41 31 0:38 / {r}/unified rw,relatime - cgroup2 cgroup2 rw
"
    );
    Cgroups::from_text(&mi, "5:devices:/\n4:memory:/\n0::/\n").unwrap()
}

#[test]
fn fake_hybrid_writes_v1_files_and_no_bpf() {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path();
    let cg = fake_hybrid(root);
    let m = cg.resolve(Some("/test/c1"), "c1").unwrap();
    for p in &m.paths {
        fs::create_dir_all(p).unwrap();
    }
    let dev = root.join("devices/test/c1");
    write(&dev.join("devices.allow"), "");
    write(&dev.join("devices.deny"), "");
    let r = rules(json!([{"allow": false, "access": "rwm"}, {"allow": true, "type": "b", "major": 7, "minor": 0, "access": "rw"}]));
    // The cgroup2 directory is a plain directory: a BPF attach there would fail.
    m.apply_devices(&cg, &r, &[]).unwrap();
    assert_eq!(fs::read_to_string(dev.join("devices.deny")).unwrap(), "a\n");
    let allow = fs::read_to_string(dev.join("devices.allow")).unwrap();
    assert_eq!(
        allow,
        "c *:* m\nc 1:3 rwm\nc 1:5 rwm\nc 1:7 rwm\nc 1:8 rwm\nc 1:9 rwm\nc 5:0 rwm\nc 5:2 rwm\nc 10:200 rwm\nc 136:* rwm\nb *:* m\nb 7:0 rw\n"
    );
    assert!(!root.join("memory/test/c1/devices.allow").exists());
    assert_eq!(fs::read_dir(root.join("unified/test/c1")).unwrap().count(), 0);
}

#[test]
fn fake_v1_missing_file_is_an_error() {
    let tmp = tempfile::tempdir().unwrap();
    let cg = fake_hybrid(tmp.path());
    let m = cg.resolve(Some("/test/c2"), "c2").unwrap();
    for p in &m.paths {
        fs::create_dir_all(p).unwrap();
    }
    let e = m.apply_devices(&cg, &[], &[]).unwrap_err();
    assert!(e.to_string().contains("devices.deny"), "{e}");
}

#[test]
fn bad_rules_fail_before_writing() {
    let tmp = tempfile::tempdir().unwrap();
    let cg = fake_hybrid(tmp.path());
    let m = Manager { paths: vec![tmp.path().join("devices/x")] };
    let e = m.apply_devices(&cg, &rules(json!([{"allow": true, "type": "c", "access": "q"}])), &[]).unwrap_err();
    assert_eq!(field_of(e), "linux.resources.devices[0].access");
}

// ---------------------------------------------------------------- real BPF (root)

mod real {
    use std::process::Command;

    use super::*;

    /// Removes the test cgroup (after its processes exited).
    struct Guard(PathBuf);

    impl Drop for Guard {
        fn drop(&mut self) {
            if let Err(e) = crate::cgroups::remove(std::slice::from_ref(&self.0)) {
                eprintln!("cleanup: {e}");
            }
        }
    }

    /// The host's cgroup2 mount, if we are root and can use it.
    fn cgroup2() -> Option<Cgroups> {
        if !nix::unistd::geteuid().is_root() {
            eprintln!("skipped: not root");
            return None;
        }
        let host = Cgroups::detect().ok()?;
        let Some(h) = host.hierarchies.iter().find(|h| h.v2) else {
            eprintln!("skipped: no cgroup2 mount");
            return None;
        };
        if nix::unistd::access(&h.mount, nix::unistd::AccessFlags::W_OK).is_err() {
            eprintln!("skipped: cgroup2 mount not writable");
            return None;
        }
        // Only the cgroup2 mount, as a pure-v2 host sees it, so apply_devices takes the BPF path.
        let mi = format!("41 31 0:38 / {} rw,relatime - cgroup2 cgroup2 rw\n", h.mount.display());
        Cgroups::from_text(&mi, "0::/\n").ok()
    }

    /// Runs `sh -c script` after moving the shell into `dir`; returns (status, stdout, stderr).
    fn in_cgroup(dir: &Path, script: &str) -> (i32, String, String) {
        let procs = dir.join("cgroup.procs");
        let full = format!("echo $$ > '{}' || exit 90\n{script}", procs.display());
        let out = Command::new("/bin/sh").arg("-c").arg(full).output().unwrap();
        (
            out.status.code().unwrap_or(-1),
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    }

    #[test]
    fn real_bpf_denies_dev_null_and_update_replaces_the_program() {
        let Some(cg) = cgroup2() else { return };
        let mount = cg.hierarchies[0].mount.clone();
        let dir = mount.join(format!("skiff-devtest-{}", std::process::id()));
        fs::create_dir(&dir).unwrap();
        let _guard = Guard(dir.clone());
        let m = Manager { paths: vec![dir.clone()] };

        let deny = rules(json!([{"allow": false, "access": "rwm"}, {"allow": false, "type": "c", "major": 1, "minor": 3, "access": "rwm"}]));
        let null_dev = devs(json!([{"path": "/dev/null", "type": "c", "major": 1, "minor": 3}]));
        m.apply_devices(&cg, &deny, &null_dev).unwrap();
        let first = attach::query(&dir).unwrap();
        assert_eq!(first.len(), 1, "{first:?}");

        let script = "head -c 1 /dev/zero | wc -c\ncat /dev/null";
        let (code, out, err) = in_cgroup(&dir, script);
        assert_eq!(out.trim(), "1", "/dev/zero readable; stderr: {err}");
        assert_ne!(code, 0, "/dev/null must not open: {out} {err}");
        assert!(err.contains("Operation not permitted"), "{err}");

        // Update: the defaults allow /dev/null again.
        m.apply_devices(&cg, &[], &[]).unwrap();
        let second = attach::query(&dir).unwrap();
        assert_eq!(second.len(), 1, "old program detached: {second:?}");
        assert_ne!(second, first);
        let (code, out, err) = in_cgroup(&dir, script);
        assert_eq!((code, out.trim()), (0, "1"), "{err}");
    }

    #[test]
    fn real_bpf_loads_a_large_program() {
        // Many rules: still one program, accepted by the verifier.
        let Some(cg) = cgroup2() else { return };
        let mount = cg.hierarchies[0].mount.clone();
        let dir = mount.join(format!("skiff-devtest-big-{}", std::process::id()));
        fs::create_dir(&dir).unwrap();
        let _guard = Guard(dir.clone());
        let many: Vec<serde_json::Value> =
            (0..300).map(|i| json!({"allow": true, "type": "b", "major": 7, "minor": i, "access": "r"})).collect();
        let m = Manager { paths: vec![dir.clone()] };
        m.apply_devices(&cg, &rules(serde_json::Value::Array(many)), &[]).unwrap();
        assert_eq!(attach::query(&dir).unwrap().len(), 1);
    }
}
