//! `linux.personality`: the execution domain (LINUX, LINUX32) and flags, applied with
//! personality(2) by the container's init and by `exec`'d processes before they exec.

use oci_spec::runtime::{LinuxPersonality, LinuxPersonalityDomain};

use crate::error::{Error, Result};

const PER_LINUX: u64 = 0x0000;
const PER_LINUX32: u64 = 0x0008;

/// The personality flags of <linux/personality.h>, by name.
const FLAGS: &[(&str, u64)] = &[
    ("UNAME26", 0x002_0000),
    ("ADDR_NO_RANDOMIZE", 0x004_0000),
    ("FDPIC_FUNCPTRS", 0x008_0000),
    ("MMAP_PAGE_ZERO", 0x010_0000),
    ("ADDR_COMPAT_LAYOUT", 0x020_0000),
    ("READ_IMPLIES_EXEC", 0x040_0000),
    ("ADDR_LIMIT_32BIT", 0x080_0000),
    ("SHORT_INODE", 0x100_0000),
    ("WHOLE_SECONDS", 0x200_0000),
    ("STICKY_TIMEOUTS", 0x400_0000),
    ("ADDR_LIMIT_3GB", 0x800_0000),
];

/// The personality(2) value of `linux.personality`; unknown flags are refused, naming the field.
pub fn value(p: &LinuxPersonality) -> Result<u64> {
    let mut v = match p.domain() {
        LinuxPersonalityDomain::PerLinux => PER_LINUX,
        LinuxPersonalityDomain::PerLinux32 => PER_LINUX32,
    };
    for (i, f) in p.flags().iter().flatten().enumerate() {
        let bit = FLAGS
            .iter()
            .find(|(name, _)| name == f)
            .map(|(_, b)| *b)
            .ok_or_else(|| Error::field(format!("linux.personality.flags[{i}]"), format!("unknown personality flag {f:?}")))?;
        v |= bit;
    }
    Ok(v)
}

/// `linux.personality` of a spec.
pub fn of(spec: &oci_spec::runtime::Spec) -> Option<&LinuxPersonality> {
    spec.linux().as_ref().and_then(|l| l.personality().as_ref())
}

/// Checks `linux.personality` of a spec (no kernel needed).
pub fn validate(spec: &oci_spec::runtime::Spec) -> Result<()> {
    of(spec).map(value).transpose().map(|_| ())
}

/// Applies a personality to this process (the program it execs inherits it).
pub fn apply(p: Option<&LinuxPersonality>) -> Result<()> {
    let Some(p) = p else { return Ok(()) };
    let v = value(p)?;
    // SAFETY: personality(2) takes a plain integer and only changes this process's domain.
    let r = unsafe { libc::personality(v as libc::c_ulong) };
    if r < 0 {
        let e = std::io::Error::last_os_error();
        return Err(Error::field("linux.personality", format!("personality({v:#x}): {e}")));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(json: &str) -> LinuxPersonality {
        serde_json::from_str(json).expect("personality JSON")
    }

    #[test]
    fn domains_and_flags() {
        assert_eq!(value(&parse(r#"{"domain":"LINUX"}"#)).ok(), Some(0));
        assert_eq!(value(&parse(r#"{"domain":"LINUX32"}"#)).ok(), Some(8));
        let p = parse(r#"{"domain":"LINUX32","flags":["ADDR_NO_RANDOMIZE","UNAME26"]}"#);
        assert_eq!(value(&p).ok(), Some(8 | 0x4_0000 | 0x2_0000));
    }

    #[test]
    fn unknown_flag_names_the_field() {
        let p = parse(r#"{"domain":"LINUX","flags":["ADDR_NO_RANDOMIZE","BOGUS"]}"#);
        let err = value(&p).expect_err("BOGUS refused").to_string();
        assert!(err.contains("linux.personality.flags[1]") && err.contains("BOGUS"), "{err}");
    }

    #[test]
    fn unknown_domain_is_a_parse_error() {
        assert!(serde_json::from_str::<LinuxPersonality>(r#"{"domain":"WIN32"}"#).is_err());
    }
}
