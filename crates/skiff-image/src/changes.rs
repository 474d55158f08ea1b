//! Dockerfile-style changes (`import --change`, `commit --change`) applied to an image config:
//! CMD, ENTRYPOINT, ENV, WORKDIR, USER, LABEL, EXPOSE, STOPSIGNAL, VOLUME, in JSON or shell form.

use std::collections::HashMap;

use oci_spec::image::Config;

use crate::error::{Error, Result};

fn bad(change: &str, reason: impl Into<String>) -> Error {
    Error::InvalidChange {
        change: change.to_string(),
        reason: reason.into(),
    }
}

/// Applies `changes` in order to `config`. As in a Dockerfile, an ENTRYPOINT clears the
/// inherited CMD unless a CMD came earlier in the same list.
pub fn apply(config: &mut Config, changes: &[String]) -> Result<()> {
    let mut cmd_set = false;
    for change in changes {
        let change_t = change.trim();
        let (instr, rest) = match change_t.split_once(char::is_whitespace) {
            Some((i, r)) => (i, r.trim()),
            None => (change_t, ""),
        };
        match instr.to_ascii_uppercase().as_str() {
            "CMD" => {
                config.set_cmd(Some(command(change, rest)?));
                cmd_set = true;
            }
            "ENTRYPOINT" => {
                config.set_entrypoint(Some(command(change, rest)?));
                if !cmd_set {
                    config.set_cmd(None);
                }
            }
            "ENV" => {
                let mut env = config.env().clone().unwrap_or_default();
                for (k, v) in pairs(change, rest)? {
                    let prefix = format!("{k}=");
                    let entry = format!("{k}={v}");
                    match env.iter_mut().find(|e| e.starts_with(&prefix)) {
                        Some(e) => *e = entry,
                        None => env.push(entry),
                    }
                }
                config.set_env(Some(env));
            }
            "LABEL" => {
                let mut labels: HashMap<String, String> = config.labels().clone().unwrap_or_default();
                for (k, v) in pairs(change, rest)? {
                    labels.insert(k, v);
                }
                config.set_labels(Some(labels));
            }
            "WORKDIR" => {
                let w = words(change, rest)?.join(" ");
                if w.is_empty() {
                    return Err(bad(change, "WORKDIR needs a path"));
                }
                let dir = if w.starts_with('/') {
                    w
                } else {
                    let base = config.working_dir().clone().unwrap_or_else(|| "/".into());
                    format!("{}/{w}", base.trim_end_matches('/'))
                };
                config.set_working_dir(Some(dir));
            }
            "USER" => {
                if rest.is_empty() {
                    return Err(bad(change, "USER needs a user"));
                }
                config.set_user(Some(rest.to_string()));
            }
            "STOPSIGNAL" => {
                if rest.is_empty() {
                    return Err(bad(change, "STOPSIGNAL needs a signal"));
                }
                config.set_stop_signal(Some(rest.to_string()));
            }
            "EXPOSE" => {
                let mut ports = config.exposed_ports().clone().unwrap_or_default();
                for w in words(change, rest)? {
                    for p in expose(change, &w)? {
                        if !ports.contains(&p) {
                            ports.push(p);
                        }
                    }
                }
                config.set_exposed_ports(Some(ports));
            }
            "VOLUME" => {
                let vols = if rest.starts_with('[') {
                    serde_json::from_str::<Vec<String>>(rest).map_err(|e| bad(change, format!("JSON array: {e}")))?
                } else {
                    words(change, rest)?
                };
                if vols.is_empty() || vols.iter().any(String::is_empty) {
                    return Err(bad(change, "VOLUME needs paths"));
                }
                let mut all = config.volumes().clone().unwrap_or_default();
                for v in vols {
                    if !all.contains(&v) {
                        all.push(v);
                    }
                }
                config.set_volumes(Some(all));
            }
            "" => return Err(bad(change, "empty change")),
            other => return Err(bad(change, format!("unknown instruction: {other}"))),
        }
    }
    Ok(())
}

/// JSON form `["a","b"]`, or shell form `a b` -> `["/bin/sh","-c","a b"]`.
fn command(change: &str, rest: &str) -> Result<Vec<String>> {
    if rest.starts_with('[') {
        if let Ok(v) = serde_json::from_str::<Vec<String>>(rest) {
            return Ok(v);
        }
    }
    if rest.is_empty() {
        return Err(bad(change, "missing command"));
    }
    Ok(vec!["/bin/sh".into(), "-c".into(), rest.into()])
}

/// `K=V K2="v 2"` pairs, or the legacy `K some value` form.
fn pairs(change: &str, rest: &str) -> Result<Vec<(String, String)>> {
    let ws = words(change, rest)?;
    let Some(first) = ws.first() else {
        return Err(bad(change, "missing key"));
    };
    if !first.contains('=') {
        let (k, v) = rest.split_once(char::is_whitespace).unwrap_or((rest, ""));
        let v = words(change, v.trim())?.join(" ");
        return Ok(vec![(k.to_string(), v)]);
    }
    ws.into_iter()
        .map(|w| match w.split_once('=') {
            Some(("", _)) => Err(bad(change, "empty key")),
            Some((k, v)) => Ok((k.to_string(), v.to_string())),
            None => Err(bad(change, format!("{w:?} is not KEY=VALUE"))),
        })
        .collect()
}

/// Shell-like words: whitespace-separated, `"..."` and `'...'` quoting, `\` escapes.
fn words(change: &str, s: &str) -> Result<Vec<String>> {
    let mut out = Vec::new();
    let mut cur = String::new();
    let mut in_word = false;
    let mut chars = s.chars();
    while let Some(c) = chars.next() {
        match c {
            c if c.is_whitespace() => {
                if in_word {
                    out.push(std::mem::take(&mut cur));
                    in_word = false;
                }
            }
            '\\' => {
                in_word = true;
                cur.push(chars.next().unwrap_or('\\'));
            }
            '"' | '\'' => {
                in_word = true;
                let q = c;
                loop {
                    match chars.next() {
                        Some(x) if x == q => break,
                        Some('\\') if q == '"' => cur.push(chars.next().unwrap_or('\\')),
                        Some(x) => cur.push(x),
                        None => return Err(bad(change, "unterminated quote")),
                    }
                }
            }
            c => {
                in_word = true;
                cur.push(c);
            }
        }
    }
    if in_word {
        out.push(cur);
    }
    Ok(out)
}

/// `80` -> `80/tcp`; `53/udp`; `8000-8002` -> three ports.
fn expose(change: &str, w: &str) -> Result<Vec<String>> {
    let (ports, proto) = w.split_once('/').unwrap_or((w, "tcp"));
    let proto = proto.to_ascii_lowercase();
    if !matches!(proto.as_str(), "tcp" | "udp" | "sctp") {
        return Err(bad(change, format!("invalid protocol {proto:?}")));
    }
    let port = |s: &str| {
        s.parse::<u16>()
            .ok()
            .filter(|p| *p > 0)
            .ok_or_else(|| bad(change, format!("invalid port {s:?}")))
    };
    let (lo, hi) = match ports.split_once('-') {
        Some((a, b)) => (port(a)?, port(b)?),
        None => (port(ports)?, port(ports)?),
    };
    if hi < lo {
        return Err(bad(change, format!("invalid port range {ports:?}")));
    }
    Ok((lo..=hi).map(|p| format!("{p}/{proto}")).collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(changes: &[&str]) -> Result<Config> {
        let mut c = Config::default();
        c.set_cmd(Some(vec!["sh".into()]));
        c.set_env(Some(vec!["PATH=/bin".into()]));
        apply(&mut c, &changes.iter().map(|s| s.to_string()).collect::<Vec<_>>())?;
        Ok(c)
    }

    #[test]
    fn json_and_shell_forms() {
        let c = run(&["CMD [\"echo\", \"hi\"]"]).unwrap();
        assert_eq!(c.cmd().as_deref(), Some(&["echo".to_string(), "hi".to_string()][..]));
        let c = run(&["cmd echo $HOME"]).unwrap();
        assert_eq!(c.cmd().clone().unwrap(), vec!["/bin/sh", "-c", "echo $HOME"]);
        // ENTRYPOINT alone clears the inherited CMD; after a CMD it does not.
        let c = run(&["ENTRYPOINT [\"/bin/app\"]"]).unwrap();
        assert_eq!(c.entrypoint().clone().unwrap(), vec!["/bin/app"]);
        assert_eq!(c.cmd(), &None);
        let c = run(&["CMD [\"x\"]", "ENTRYPOINT [\"/bin/app\"]"]).unwrap();
        assert_eq!(c.cmd().clone().unwrap(), vec!["x"]);
    }

    #[test]
    fn env_label_workdir_user_expose_volume_stopsignal() {
        let c = run(&[
            "ENV PATH=/usr/bin A=\"one two\" B=x\\ y",
            "ENV LEGACY some value",
            "LABEL version=1.0 \"org.x\"='y z'",
            "WORKDIR /app",
            "WORKDIR sub",
            "USER 1000:1000",
            "EXPOSE 80 53/udp 8000-8001",
            "VOLUME [\"/data\"]",
            "VOLUME /logs /cache",
            "STOPSIGNAL SIGINT",
        ])
        .unwrap();
        assert_eq!(c.env().clone().unwrap(), vec!["PATH=/usr/bin", "A=one two", "B=x y", "LEGACY=some value"]);
        let labels = c.labels().clone().unwrap();
        assert_eq!(labels["version"], "1.0");
        assert_eq!(labels["org.x"], "y z");
        assert_eq!(c.working_dir().as_deref(), Some("/app/sub"));
        assert_eq!(c.user().as_deref(), Some("1000:1000"));
        let mut ports = c.exposed_ports().clone().unwrap();
        ports.sort();
        assert_eq!(ports, vec!["53/udp", "80/tcp", "8000/tcp", "8001/tcp"]);
        assert_eq!(c.volumes().clone().unwrap(), vec!["/data", "/logs", "/cache"]);
        assert_eq!(c.stop_signal().as_deref(), Some("SIGINT"));
    }

    #[test]
    fn invalid_changes_are_refused() {
        for bad in [
            "RUN echo",
            "FROM busybox",
            "",
            "EXPOSE 70000",
            "EXPOSE 80/xyz",
            "ENV A=\"unterminated",
            "ENV =x",
            "USER",
            "CMD",
        ] {
            let e = run(&[bad]).unwrap_err();
            assert!(matches!(e, Error::InvalidChange { .. }), "{bad:?}: {e}");
        }
        let msg = run(&["ONBUILD RUN x"]).unwrap_err().to_string();
        assert!(msg.contains("unknown instruction: ONBUILD"), "{msg}");
    }
}
