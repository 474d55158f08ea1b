//! `--platform os/arch[/variant]` and choosing a manifest from an index.

use oci_spec::image::{Descriptor, ImageIndex};

use crate::error::{Error, Result};

/// A platform images are built for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Platform {
    pub os: String,
    pub arch: String,
    pub variant: Option<String>,
}

impl Platform {
    /// This machine's (`linux/amd64`, `linux/arm64/v8`, ...).
    pub fn host() -> Platform {
        let (arch, variant) = match std::env::consts::ARCH {
            "x86_64" => ("amd64", None),
            "aarch64" => ("arm64", Some("v8")),
            "x86" => ("386", None),
            "arm" => ("arm", Some("v7")),
            "powerpc64" => ("ppc64le", None),
            other => (other, None),
        };
        Platform {
            os: "linux".into(),
            arch: arch.into(),
            variant: variant.map(str::to_string),
        }
    }

    /// Parses `os/arch[/variant]` (Docker's `--platform`); a bare `arch` means linux.
    pub fn parse(s: &str) -> Result<Platform> {
        let bad = || Error::Other(format!("invalid platform {s:?}: expected os/arch[/variant], e.g. linux/amd64"));
        let parts: Vec<&str> = s.split('/').collect();
        if parts
            .iter()
            .any(|p| p.is_empty() || !p.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-'))
        {
            return Err(bad());
        }
        let (os, arch, variant) = match parts.as_slice() {
            [arch] => ("linux", *arch, None),
            [os, arch] => (*os, *arch, None),
            [os, arch, v] => (*os, *arch, Some(v.to_string())),
            _ => return Err(bad()),
        };
        let arch = match arch.to_lowercase().as_str() {
            "x86_64" | "x86-64" => "amd64".to_string(),
            "aarch64" => "arm64".to_string(),
            a => a.to_string(),
        };
        Ok(Platform {
            os: os.to_lowercase(),
            arch,
            variant,
        })
    }

    fn matches(&self, d: &Descriptor) -> bool {
        let Some(p) = d.platform() else { return false };
        if p.os().to_string() != self.os || p.architecture().to_string() != self.arch {
            return false;
        }
        match (&self.variant, p.variant()) {
            (Some(want), Some(have)) => want == have,
            // arm64 images mostly leave out the (only) variant v8.
            (Some(want), None) => self.arch == "arm64" && want == "v8",
            (None, _) => true,
        }
    }

    /// The descriptor of this platform's manifest in an index.
    pub fn select<'a>(&self, index: &'a ImageIndex) -> Result<&'a Descriptor> {
        index.manifests().iter().find(|d| self.matches(d)).ok_or_else(|| {
            let found: Vec<String> = index
                .manifests()
                .iter()
                .filter_map(|d| d.platform().as_ref())
                .filter(|p| p.os().to_string() != "unknown")
                .map(|p| {
                    format!(
                        "{}/{}{}",
                        p.os(),
                        p.architecture(),
                        p.variant().as_ref().map(|v| format!("/{v}")).unwrap_or_default()
                    )
                })
                .collect();
            Error::NoPlatform {
                platform: self.to_string(),
                found: if found.is_empty() { "none".into() } else { found.join(", ") },
            }
        })
    }
}

impl std::fmt::Display for Platform {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.os, self.arch)?;
        if let Some(v) = &self.variant {
            write!(f, "/{v}")?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn index() -> ImageIndex {
        serde_json::from_str(
            r#"{"schemaVersion":2,"mediaType":"application/vnd.oci.image.index.v1+json","manifests":[
            {"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"sha256:1111111111111111111111111111111111111111111111111111111111111111","size":1,"platform":{"os":"linux","architecture":"amd64"}},
            {"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"sha256:2222222222222222222222222222222222222222222222222222222222222222","size":1,"platform":{"os":"linux","architecture":"arm","variant":"v6"}},
            {"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"sha256:3333333333333333333333333333333333333333333333333333333333333333","size":1,"platform":{"os":"linux","architecture":"arm","variant":"v7"}},
            {"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"sha256:4444444444444444444444444444444444444444444444444444444444444444","size":1,"platform":{"os":"linux","architecture":"arm64"}},
            {"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"sha256:5555555555555555555555555555555555555555555555555555555555555555","size":1,"platform":{"os":"unknown","architecture":"unknown"}}]}"#,
        )
        .unwrap()
    }

    fn pick(p: &str) -> String {
        Platform::parse(p)
            .unwrap()
            .select(&index())
            .map(|d| d.digest().to_string()[7..8].to_string())
            .unwrap_or_else(|e| e.to_string())
    }

    #[test]
    fn parses_and_selects() {
        assert_eq!(pick("linux/amd64"), "1");
        assert_eq!(pick("linux/x86_64"), "1");
        assert_eq!(pick("linux/arm/v7"), "3");
        assert_eq!(pick("linux/arm/v6"), "2");
        assert_eq!(pick("linux/arm64/v8"), "4");
        assert_eq!(pick("arm64"), "4");
        let e = pick("linux/s390x");
        assert!(
            e.contains("no matching manifest for linux/s390x") && e.contains("linux/arm/v7") && !e.contains("unknown"),
            "{e}"
        );
        assert!(Platform::parse("linux/").is_err() && Platform::parse("a/b/c/d").is_err() && Platform::parse("li nux/amd64").is_err());
        assert_eq!(
            Platform::host().to_string(),
            if cfg!(target_arch = "x86_64") {
                "linux/amd64"
            } else {
                Platform::host().to_string().leak()
            }
        );
    }
}
