//! Output helpers: Docker-aligned tables, `--format` handling, relative times.

use serde_json::Value;

use crate::template::Template;

/// Prints rows under a header with columns padded as Docker's tabwriter does (at least three
/// spaces between columns, the last column unpadded).
pub fn print(header: &[&str], rows: &[Vec<String>]) {
    let mut out = String::new();
    render(header, rows, &mut out);
    print!("{out}");
}

pub fn render(header: &[&str], rows: &[Vec<String>], out: &mut String) {
    let n = header.len();
    let mut width = vec![0usize; n];
    let all = std::iter::once(header.iter().map(|s| s.to_string()).collect::<Vec<_>>()).chain(rows.iter().cloned());
    let all: Vec<Vec<String>> = all.collect();
    for r in &all {
        for (i, c) in r.iter().enumerate().take(n) {
            width[i] = width[i].max(c.chars().count());
        }
    }
    for r in &all {
        let mut line = String::new();
        for (i, c) in r.iter().enumerate().take(n) {
            line.push_str(c);
            if i + 1 < n {
                line.push_str(&" ".repeat(width[i] - c.chars().count() + 3));
            }
        }
        out.push_str(line.trim_end());
        out.push('\n');
    }
}

/// How a `--format` value is to be used.
pub enum Format {
    Table,
    Json,
    /// `table {{...}}`: a table with the template's columns (headers from the field names).
    TableTemplate(String),
    Template(Template),
}

pub fn format(f: Option<&str>) -> Result<Format, String> {
    match f {
        None | Some("") | Some("table") => Ok(Format::Table),
        Some("json") | Some("{{json .}}") => Ok(Format::Json),
        Some(t) if t.starts_with("table ") => Ok(Format::TableTemplate(t["table ".len()..].to_string())),
        Some(t) => Ok(Format::Template(Template::new(t)?)),
    }
}

/// Prints `values` as `--format` asks: `json` (one object per line), a Go template per value,
/// `table TEMPLATE`, or (default) Docker's table of the string fields `keys` under `header`.
pub fn emit(format: Option<&str>, values: &[Value], header: &[&str], keys: &[&str]) -> Result<(), String> {
    match self::format(format)? {
        Format::Json => values.iter().for_each(|v| println!("{v}")),
        Format::Template(t) => {
            for v in values {
                println!("{}", t.render(v)?);
            }
        }
        Format::TableTemplate(t) => template_table(&t, values)?,
        Format::Table => {
            let rows: Vec<Vec<String>> = values
                .iter()
                .map(|v| keys.iter().map(|k| crate::template::go_string(&v[*k])).collect())
                .collect();
            print(header, &rows);
        }
    }
    Ok(())
}

/// `table {{.ID}}\t{{.Names}}`: header from the field names (Docker's upper-cased forms).
pub fn template_table(t: &str, values: &[Value]) -> Result<(), String> {
    let cols: Vec<&str> = t.split("\\t").collect();
    let header: Vec<String> = cols
        .iter()
        .map(|c| {
            let name = c.trim().trim_start_matches("{{").trim_end_matches("}}").trim().trim_start_matches('.');
            match name {
                "ID" => "CONTAINER ID".to_string(),
                "RunningFor" => "CREATED".to_string(),
                "CreatedAt" => "CREATED AT".to_string(),
                other => other.to_uppercase(),
            }
        })
        .collect();
    let tmpls: Vec<Template> = cols.iter().map(|c| Template::new(c)).collect::<Result<_, _>>()?;
    let mut rows = Vec::new();
    for v in values {
        rows.push(tmpls.iter().map(|t| t.render(v)).collect::<Result<Vec<_>, _>>()?);
    }
    let h: Vec<&str> = header.iter().map(String::as_str).collect();
    print(&h, &rows);
    Ok(())
}

/// "5 seconds ago" from an RFC 3339 time.
pub fn ago(t: &str) -> String {
    match skiff_monitor::time::parse_rfc3339(t) {
        Some((s, _)) => format!("{} ago", skiff_engine::units::human_duration(skiff_monitor::time::now_parts().0 - s)),
        None => "N/A".into(),
    }
}

pub fn since(t: &str) -> String {
    match skiff_monitor::time::parse_rfc3339(t) {
        Some((s, _)) => skiff_engine::units::human_duration(skiff_monitor::time::now_parts().0 - s),
        None => "N/A".into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn columns_line_up() {
        let mut out = String::new();
        render(&["A", "LONGER", "C"], &[vec!["xx".into(), "y".into(), "z".into()]], &mut out);
        assert_eq!(out, "A    LONGER   C\nxx   y        z\n");
    }
}
