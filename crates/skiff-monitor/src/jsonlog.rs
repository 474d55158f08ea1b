//! Docker's json-file log format: one JSON object per entry,
//! `{"log":"hello\n","stream":"stdout","time":"2026-11-30T09:22:44.123456789Z"}`.
//! Output is cut at newlines; a line longer than [`MAX_ENTRY`] is split into several entries
//! (all but the last without a trailing newline), as Docker does.

/// Longest `log` text of one entry (Docker's 16 KiB).
pub const MAX_ENTRY: usize = 16 * 1024;

/// Appends `s` to `out` as a JSON string body, escaped the way Go's encoder does (including
/// `<`, `>` and `&`); invalid UTF-8 becomes U+FFFD.
pub fn escape_into(out: &mut String, bytes: &[u8]) {
    let text = String::from_utf8_lossy(bytes);
    for c in text.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '<' | '>' | '&' | '\u{2028}' | '\u{2029}' => out.push_str(&format!("\\u{:04x}", c as u32)),
            c if (c as u32) < 0x20 => out.push_str(&format!("\\u{:04x}", c as u32)),
            c => out.push(c),
        }
    }
}

/// One log entry as a line (with its trailing newline).
pub fn entry(stream: &str, text: &[u8], time: &str) -> String {
    let mut s = String::with_capacity(text.len() + 64);
    s.push_str("{\"log\":\"");
    escape_into(&mut s, text);
    s.push_str("\",\"stream\":\"");
    s.push_str(stream);
    s.push_str("\",\"time\":\"");
    s.push_str(time);
    s.push_str("\"}\n");
    s
}

/// Cuts buffered output into complete entries: returns the entries' texts and leaves an
/// unterminated tail (shorter than [`MAX_ENTRY`]) in `pending`.
pub fn split(pending: &mut Vec<u8>) -> Vec<Vec<u8>> {
    let mut out = Vec::new();
    loop {
        match pending.iter().position(|&b| b == b'\n') {
            Some(i) if i < MAX_ENTRY => {
                out.push(pending.drain(..=i).collect());
            }
            _ if pending.len() >= MAX_ENTRY => out.push(pending.drain(..MAX_ENTRY).collect()),
            _ => return out,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entry_escapes_as_go() {
        let e = entry("stdout", b"a \"q\" <b> & \x01\tz\n", "T");
        assert_eq!(
            e,
            "{\"log\":\"a \\\"q\\\" \\u003cb\\u003e \\u0026 \\u0001\\tz\\n\",\"stream\":\"stdout\",\"time\":\"T\"}\n"
        );
        assert!(entry("stderr", &[0xff, b'x'], "T").contains("\u{fffd}x"));
    }

    #[test]
    fn split_cuts_lines_and_long_runs() {
        let mut p = b"one\ntwo\nthr".to_vec();
        assert_eq!(split(&mut p), vec![b"one\n".to_vec(), b"two\n".to_vec()]);
        assert_eq!(p, b"thr");
        let mut long = vec![b'x'; MAX_ENTRY + 10];
        long.push(b'\n');
        let parts = split(&mut long);
        assert_eq!(parts.len(), 2);
        assert_eq!(parts[0].len(), MAX_ENTRY);
        assert_eq!(parts[1].len(), 11);
        assert!(long.is_empty());
    }
}
