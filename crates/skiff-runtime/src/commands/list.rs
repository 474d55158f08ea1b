//! `list`/`ls`: runc's table (Go tabwriter, min width 12, padding 3), `--format json` (one
//! line, `null` when there are none, as runc's encoder prints a nil slice) or `-q` ids.

use anyhow::{Context, Result};
use skiff_core::{OciState, Runtime};

use crate::cli::{Format, ListArgs};

/// `list`: [`Runtime::list`].
pub fn list(rt: &Runtime, a: &ListArgs) -> Result<i32> {
    let states = rt.list()?;
    let out = if a.quiet {
        states.iter().map(|s| format!("{}\n", s.id)).collect()
    } else {
        match a.format {
            Format::Table => format_table(&states),
            Format::Json => format_json(&states)?,
        }
    };
    print!("{out}");
    Ok(0)
}

fn format_json(states: &[OciState]) -> Result<String> {
    if states.is_empty() {
        return Ok("null\n".to_string());
    }
    let mut s = serde_json::to_string(states).context("encode states")?;
    s.push('\n');
    Ok(s)
}

/// The table as runc prints it.
pub fn format_table(states: &[OciState]) -> String {
    let mut rows: Vec<[String; 6]> = vec![["ID", "PID", "STATUS", "BUNDLE", "CREATED", "OWNER"].map(String::from)];
    for s in states {
        rows.push([
            s.id.clone(),
            s.pid.to_string(),
            s.status.to_string(),
            s.bundle.display().to_string(),
            go_rfc3339_nano(&s.created),
            s.owner.clone(),
        ]);
    }
    tabwrite(&rows, 12, 3)
}

/// Aligns tab-separated cells like Go's `tabwriter.NewWriter(w, minwidth, 1, padding, ' ', 0)`:
/// every cell but the last of a row is padded to its column's width, which is the widest
/// cell plus `padding`, at least `minwidth`. The last cell is not padded.
fn tabwrite<const N: usize>(rows: &[[String; N]], minwidth: usize, padding: usize) -> String {
    let mut widths = [minwidth; N];
    for row in rows {
        for (w, cell) in widths.iter_mut().zip(row.iter()).take(N - 1) {
            *w = (*w).max(cell.chars().count() + padding);
        }
    }
    let mut out = String::new();
    for row in rows {
        for (i, cell) in row.iter().enumerate() {
            out.push_str(cell);
            if i + 1 < N {
                out.extend(std::iter::repeat_n(' ', widths[i] - cell.chars().count()));
            }
        }
        out.push('\n');
    }
    out
}

/// Go's RFC3339Nano drops trailing zeros of the fraction (and the dot if nothing is left).
fn go_rfc3339_nano(t: &str) -> String {
    let Some(dot) = t.find('.') else { return t.to_string() };
    let frac_end = t[dot + 1..].find(|c: char| !c.is_ascii_digit()).map_or(t.len(), |i| dot + 1 + i);
    let frac = t[dot + 1..frac_end].trim_end_matches('0');
    if frac.is_empty() {
        format!("{}{}", &t[..dot], &t[frac_end..])
    } else {
        format!("{}.{}{}", &t[..dot], frac, &t[frac_end..])
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use skiff_core::Status;
    use std::collections::HashMap;
    use std::path::PathBuf;

    fn st(id: &str, pid: i32, status: Status, bundle: &str) -> OciState {
        OciState {
            oci_version: "1.2.0".into(),
            id: id.into(),
            pid,
            status,
            bundle: PathBuf::from(bundle),
            rootfs: PathBuf::from(bundle).join("rootfs"),
            created: "2024-05-06T07:08:09.120000000Z".into(),
            annotations: HashMap::new(),
            owner: "root".into(),
        }
    }

    #[test]
    fn empty_table_is_runc_header() {
        // Byte for byte what `runc list` prints on an empty root.
        assert_eq!(format_table(&[]), "ID          PID         STATUS      BUNDLE      CREATED     OWNER\n");
    }

    #[test]
    fn table_columns_align() {
        let t = format_table(&[
            st("a", 42, Status::Running, "/b"),
            st("longer-container-id", 0, Status::Stopped, "/very/long/bundle/path"),
        ]);
        let want = "\
ID                    PID         STATUS      BUNDLE                   CREATED                   OWNER
a                     42          running     /b                       2024-05-06T07:08:09.12Z   root
longer-container-id   0           stopped     /very/long/bundle/path   2024-05-06T07:08:09.12Z   root
";
        assert_eq!(t, want);
    }

    #[test]
    fn go_time_trimming() {
        assert_eq!(go_rfc3339_nano("2024-05-06T07:08:09.000000000Z"), "2024-05-06T07:08:09Z");
        assert_eq!(go_rfc3339_nano("2024-05-06T07:08:09.100200300Z"), "2024-05-06T07:08:09.1002003Z");
        assert_eq!(go_rfc3339_nano("2024-05-06T07:08:09Z"), "2024-05-06T07:08:09Z");
        assert_eq!(go_rfc3339_nano("2024-05-06T07:08:09.5+02:00"), "2024-05-06T07:08:09.5+02:00");
    }

    #[test]
    fn json_is_null_when_empty() {
        assert_eq!(format_json(&[]).unwrap(), "null\n");
        let j = format_json(&[st("a", 1, Status::Created, "/b")]).unwrap();
        let v: serde_json::Value = serde_json::from_str(&j).unwrap();
        assert_eq!(v[0]["id"], "a");
        assert_eq!(v[0]["status"], "created");
        assert_eq!(v[0]["ociVersion"], "1.2.0");
        assert_eq!(j.lines().count(), 1);
    }
}
