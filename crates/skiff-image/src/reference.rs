//! Image references with Docker's normalization rules (`busybox` ==
//! `docker.io/library/busybox`), after `distribution/reference`'s grammar.

use std::fmt;

use crate::error::{Error, Result};

/// The registry a name without one belongs to.
pub const DEFAULT_REGISTRY: &str = "docker.io";
const LEGACY_DEFAULT_REGISTRY: &str = "index.docker.io";
const OFFICIAL_PREFIX: &str = "library/";
const NAME_MAX: usize = 255;

/// A parsed, normalized reference: `registry/repository[:tag][@digest]`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Reference {
    /// e.g. `docker.io`, `host:5000`.
    pub registry: String,
    /// e.g. `library/busybox`, `ns/app`.
    pub repository: String,
    pub tag: Option<String>,
    /// `sha256:<hex>`.
    pub digest: Option<String>,
}

fn invalid(reference: &str, reason: &str) -> Error {
    Error::InvalidReference {
        reference: reference.to_string(),
        reason: reason.to_string(),
    }
}

impl Reference {
    /// Parses a reference as `docker` does (`ParseNormalizedNamed`): the default registry is
    /// `docker.io`, a one-component name there gets `library/`, the repository must be lower
    /// case. No tag is added: see [`Reference::with_default_tag`].
    pub fn parse(s: &str) -> Result<Reference> {
        if crate::digest::is_hex64(s) {
            return Err(invalid(s, "cannot specify 64-byte hexadecimal strings"));
        }
        let (name_tag, digest) = match s.split_once('@') {
            Some((n, d)) => (n, Some(d)),
            None => (s, None),
        };
        if let Some(d) = digest {
            crate::digest::hex_of(d).map_err(|_| invalid(s, "invalid digest"))?;
        }
        let (registry, remainder) = split_registry(name_tag);
        let remainder = remainder.as_str();
        let (repository, tag) = match remainder.rfind(':') {
            Some(i) => (&remainder[..i], Some(&remainder[i + 1..])),
            None => (remainder, None),
        };
        if repository.to_lowercase() != repository {
            return Err(invalid(s, "repository name must be lowercase"));
        }
        if !valid_registry(&registry) {
            return Err(invalid(s, "invalid registry name"));
        }
        if repository.is_empty() || !repository.split('/').all(valid_component) {
            return Err(invalid(s, "invalid repository name"));
        }
        if registry.len() + 1 + repository.len() > NAME_MAX {
            return Err(invalid(s, "repository name must not be more than 255 characters"));
        }
        if let Some(t) = tag {
            if !valid_tag(t) {
                return Err(invalid(s, "invalid tag"));
            }
        }
        Ok(Reference {
            registry,
            repository: repository.to_string(),
            tag: tag.map(str::to_string),
            digest: digest.map(str::to_string),
        })
    }

    /// The reference with tag `latest` when it has neither tag nor digest (`TagNameOnly`).
    pub fn with_default_tag(mut self) -> Reference {
        if self.tag.is_none() && self.digest.is_none() {
            self.tag = Some("latest".to_string());
        }
        self
    }

    /// `registry/repository`, e.g. `docker.io/library/busybox`.
    pub fn name(&self) -> String {
        format!("{}/{}", self.registry, self.repository)
    }

    /// The repository as docker prints it: `busybox`, `user/app`, `host:5000/ns/app`.
    pub fn familiar_name(&self) -> String {
        if self.registry == DEFAULT_REGISTRY {
            self.repository
                .strip_prefix(OFFICIAL_PREFIX)
                .filter(|r| !r.contains('/'))
                .unwrap_or(&self.repository)
                .to_string()
        } else {
            self.name()
        }
    }

    /// The reference as docker prints it: `busybox:latest`, `host:5000/ns/app:v1`.
    pub fn familiar(&self) -> String {
        let mut s = self.familiar_name();
        self.push_suffix(&mut s);
        s
    }

    fn push_suffix(&self, s: &mut String) {
        if let Some(t) = &self.tag {
            s.push(':');
            s.push_str(t);
        }
        if let Some(d) = &self.digest {
            s.push('@');
            s.push_str(d);
        }
    }
}

impl fmt::Display for Reference {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut s = self.name();
        self.push_suffix(&mut s);
        f.write_str(&s)
    }
}

/// The full form of a name with the default tag: `busybox` -> `docker.io/library/busybox:latest`.
pub fn normalize(s: &str) -> Result<String> {
    Ok(Reference::parse(s)?.with_default_tag().to_string())
}

/// The familiar form of a full reference; the input itself when it does not parse.
pub fn familiar(s: &str) -> String {
    Reference::parse(s).map_or_else(|_| s.to_string(), |r| r.familiar())
}

fn split_registry(name: &str) -> (String, String) {
    let (registry, remainder) = match name.split_once('/') {
        Some((first, rest)) if first.contains(['.', ':']) || first == "localhost" || first.to_lowercase() != first => (first, rest),
        _ => (DEFAULT_REGISTRY, name),
    };
    let registry = if registry == LEGACY_DEFAULT_REGISTRY { DEFAULT_REGISTRY } else { registry };
    if registry == DEFAULT_REGISTRY && !remainder.contains('/') {
        return (registry.to_string(), format!("{OFFICIAL_PREFIX}{remainder}"));
    }
    (registry.to_string(), remainder.to_string())
}

fn valid_registry(r: &str) -> bool {
    let (host, port) = match r.rsplit_once(':') {
        Some((h, p)) => (h, Some(p)),
        None => (r, None),
    };
    if let Some(p) = port {
        if p.is_empty() || !p.bytes().all(|b| b.is_ascii_digit()) {
            return false;
        }
    }
    !host.is_empty()
        && host.split('.').all(|c| {
            let b = c.as_bytes();
            !b.is_empty() && b.iter().all(|x| x.is_ascii_alphanumeric() || *x == b'-') && b[0] != b'-' && b[b.len() - 1] != b'-'
        })
}

/// `[a-z0-9]+((\.|_|__|-+)[a-z0-9]+)*`
fn valid_component(c: &str) -> bool {
    let b = c.as_bytes();
    let alnum = |x: u8| x.is_ascii_lowercase() || x.is_ascii_digit();
    if b.is_empty() || !alnum(b[0]) || !alnum(b[b.len() - 1]) {
        return false;
    }
    let mut i = 0;
    while i < b.len() {
        if alnum(b[i]) {
            i += 1;
            continue;
        }
        let start = i;
        while i < b.len() && !alnum(b[i]) {
            i += 1;
        }
        let sep = &c[start..i];
        let ok = sep == "." || sep == "_" || sep == "__" || sep.bytes().all(|x| x == b'-');
        if !ok {
            return false;
        }
    }
    true
}

/// `[\w][\w.-]{0,127}`
fn valid_tag(t: &str) -> bool {
    let b = t.as_bytes();
    let word = |x: u8| x.is_ascii_alphanumeric() || x == b'_';
    !b.is_empty() && b.len() <= 128 && word(b[0]) && b.iter().all(|&x| word(x) || x == b'.' || x == b'-')
}

#[cfg(test)]
mod tests {
    use super::*;

    fn full(s: &str) -> String {
        normalize(s).unwrap()
    }

    #[test]
    fn docker_hub_names_are_normalized() {
        assert_eq!(full("busybox"), "docker.io/library/busybox:latest");
        assert_eq!(full("busybox:latest"), "docker.io/library/busybox:latest");
        assert_eq!(full("docker.io/library/busybox"), "docker.io/library/busybox:latest");
        assert_eq!(full("index.docker.io/busybox:1.36"), "docker.io/library/busybox:1.36");
        assert_eq!(full("user/app:v1"), "docker.io/user/app:v1");
        let r = Reference::parse("busybox").unwrap();
        assert_eq!(r.tag, None);
        assert_eq!(r.with_default_tag().familiar(), "busybox:latest");
        assert_eq!(familiar("docker.io/user/app:v1"), "user/app:v1");
        assert_eq!(familiar("docker.io/library/a/b:v1"), "library/a/b:v1");
    }

    #[test]
    fn registries_with_ports_and_localhost() {
        let r = Reference::parse("host:5000/ns/app:v1").unwrap();
        assert_eq!(r.registry, "host:5000");
        assert_eq!(r.repository, "ns/app");
        assert_eq!(r.tag.as_deref(), Some("v1"));
        assert_eq!(r.familiar(), "host:5000/ns/app:v1");
        assert_eq!(r.to_string(), "host:5000/ns/app:v1");
        assert_eq!(full("localhost/app"), "localhost/app:latest");
        assert_eq!(full("host:5000/app"), "host:5000/app:latest");
        // A first component without '.', ':' and not localhost is a path, not a registry.
        assert_eq!(full("myhost/app"), "docker.io/myhost/app:latest");
    }

    #[test]
    fn digests() {
        let d = format!("sha256:{}", "ab".repeat(32));
        let r = Reference::parse(&format!("busybox@{d}")).unwrap();
        assert_eq!(r.digest.as_deref(), Some(d.as_str()));
        assert_eq!(r.tag, None);
        assert_eq!(r.clone().with_default_tag().tag, None);
        assert_eq!(r.to_string(), format!("docker.io/library/busybox@{d}"));
        assert_eq!(r.familiar(), format!("busybox@{d}"));
        assert!(Reference::parse("busybox@sha256:abc").is_err());
    }

    #[test]
    fn invalid_names_are_refused() {
        let msg = Reference::parse("BusyBox").unwrap_err().to_string();
        assert!(msg.contains("must be lowercase"), "{msg}");
        for bad in [
            "",
            ":latest",
            "busybox:",
            "busybox:-x",
            "a//b",
            "-a",
            "a-",
            "a..b",
            "a___b",
            "host:port/app",
            "busybox:t@g",
            &"a".repeat(64).to_string(),
            &format!("a/{}", "b".repeat(260)),
            &format!("busybox:{}", "t".repeat(129)),
        ] {
            assert!(Reference::parse(bad).is_err(), "{bad:?} accepted");
        }
        for good in ["a__b", "a--b", "a.b_c-d", "x/y/z", "busybox:v1.2-rc_3"] {
            assert!(Reference::parse(good).is_ok(), "{good:?} refused");
        }
        // An upper-case first component is a registry (Docker's rule).
        assert_eq!(Reference::parse("Registry/app").unwrap().registry, "Registry");
    }
}
