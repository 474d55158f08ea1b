//! Indented JSON with object keys in a given order: runc prints Go structs, whose fields come
//! in declaration order, while serde_json's `Value` sorts keys. Keys listed in `order` come
//! first, in that order; the rest follow sorted.

use serde_json::Value;

/// config.json (`spec`): runc's field order across all its objects (one list works for all:
/// no two objects order shared keys differently).
pub const SPEC_ORDER: &[&str] = &[
    "ociVersion",
    "process",
    "terminal",
    "user",
    "uid",
    "gid",
    "args",
    "env",
    "cwd",
    "capabilities",
    "bounding",
    "effective",
    "inheritable",
    "permitted",
    "ambient",
    "rlimits",
    "destination",
    "type",
    "hard",
    "soft",
    "noNewPrivileges",
    "root",
    "path",
    "readonly",
    "hostname",
    "mounts",
    "source",
    "options",
    "linux",
    "uidMappings",
    "gidMappings",
    "containerID",
    "hostID",
    "size",
    "resources",
    "devices",
    "allow",
    "access",
    "namespaces",
    "maskedPaths",
    "readonlyPaths",
];

/// `features`: the runtime-spec's field order.
pub const FEATURES_ORDER: &[&str] = &[
    "ociVersionMin",
    "ociVersionMax",
    "hooks",
    "mountOptions",
    "linux",
    "namespaces",
    "capabilities",
    "cgroup",
    "v1",
    "v2",
    "systemd",
    "systemdUser",
    "rdma",
    "seccomp",
    "enabled",
    "actions",
    "operators",
    "archs",
    "knownFlags",
    "supportedFlags",
    "apparmor",
    "selinux",
    "intelRdt",
    "schemata",
    "monitoring",
    "memoryPolicy",
    "modes",
    "flags",
    "mountExtensions",
    "idmap",
    "netDevices",
    "annotations",
];

/// Pretty-prints `v` with `indent` per level and keys in `order`.
pub fn to_string_ordered(v: &Value, indent: &str, order: &[&str]) -> String {
    let mut out = String::new();
    write(&mut out, v, indent, order, 0);
    out
}

fn newline(out: &mut String, indent: &str, depth: usize) {
    out.push('\n');
    for _ in 0..depth {
        out.push_str(indent);
    }
}

fn write(out: &mut String, v: &Value, indent: &str, order: &[&str], depth: usize) {
    match v {
        Value::Array(items) if !items.is_empty() => {
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                newline(out, indent, depth + 1);
                write(out, item, indent, order, depth + 1);
            }
            newline(out, indent, depth);
            out.push(']');
        }
        Value::Object(map) if !map.is_empty() => {
            let mut keys: Vec<&String> = map.keys().collect();
            let rank = |k: &str| order.iter().position(|o| *o == k).unwrap_or(order.len());
            keys.sort_by(|a, b| rank(a).cmp(&rank(b)).then_with(|| a.cmp(b)));
            out.push('{');
            for (i, k) in keys.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                newline(out, indent, depth + 1);
                out.push_str(&Value::String((*k).clone()).to_string());
                out.push_str(": ");
                write(out, &map[k.as_str()], indent, order, depth + 1);
            }
            newline(out, indent, depth);
            out.push('}');
        }
        other => out.push_str(&other.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn orders_keys_and_indents() {
        let v = serde_json::json!({"b": 1, "z": [], "a": {"y": "s", "x": [true, null]}, "c": {}});
        let s = to_string_ordered(&v, "  ", &["z", "c"]);
        assert_eq!(s, "{\n  \"z\": [],\n  \"c\": {},\n  \"a\": {\n    \"x\": [\n      true,\n      null\n    ],\n    \"y\": \"s\"\n  },\n  \"b\": 1\n}");
        let back: Value = serde_json::from_str(&s).unwrap();
        assert_eq!(back, v);
    }

    #[test]
    fn spec_matches_runc_layout() {
        // runc 1.1's `runc spec` with our hostname and version.
        let s = to_string_ordered(&skiff_core::template::default_spec_json(false), "\t", SPEC_ORDER);
        let runc_head = "{\n\t\"ociVersion\": \"1.2.0\",\n\t\"process\": {\n\t\t\"terminal\": true,\n\t\t\"user\": {\n\t\t\t\"uid\": 0,\n\t\t\t\"gid\": 0\n\t\t},\n\t\t\"args\": [\n\t\t\t\"sh\"\n\t\t],";
        assert!(s.starts_with(runc_head), "{s}");
        assert!(s.contains("\t\"hostname\": \"skiff\",\n\t\"mounts\": [\n\t\t{\n\t\t\t\"destination\": \"/proc\",\n\t\t\t\"type\": \"proc\",\n\t\t\t\"source\": \"proc\"\n\t\t},"));
        assert!(s.contains("\t\t\t\t\"type\": \"RLIMIT_NOFILE\",\n\t\t\t\t\"hard\": 1024,\n\t\t\t\t\"soft\": 1024\n"));
    }
}
