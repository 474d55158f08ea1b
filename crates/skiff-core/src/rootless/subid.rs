//! Subordinate id ranges delegated to a user in `/etc/subuid` and `/etc/subgid`
//! (`name_or_uid:start:count` per line, see subuid(5)).

/// One delegated range: host ids `start .. start + count`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Range {
    pub start: u64,
    pub count: u64,
}

impl Range {
    /// Whether host ids `first .. first + size` lie inside this range.
    pub fn covers(&self, first: u64, size: u64) -> bool {
        first >= self.start && first + size <= self.start + self.count
    }
}

/// The ranges of the user `name` (or numeric `uid`) in the text of a subuid/subgid file.
/// Comments, blank and malformed lines are skipped, as shadow's tools do.
pub fn parse(text: &str, name: Option<&str>, uid: u32) -> Vec<Range> {
    let uid = uid.to_string();
    text.lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .filter_map(|l| {
            let mut f = l.split(':');
            let (who, start, count) = (f.next()?, f.next()?, f.next()?);
            if f.next().is_some() || !(Some(who) == name || who == uid) {
                return None;
            }
            let r = Range { start: start.trim().parse().ok()?, count: count.trim().parse().ok()? };
            (r.count > 0).then_some(r)
        })
        .collect()
}

/// The ranges of the user `uid` in `file` (`/etc/subuid` or `/etc/subgid`); none when the
/// file is missing or unreadable.
pub fn of_user(file: &str, uid: u32) -> Vec<Range> {
    let name = nix::unistd::User::from_uid(nix::unistd::Uid::from_raw(uid)).ok().flatten().map(|u| u.name);
    std::fs::read_to_string(file).map(|t| parse(&t, name.as_deref(), uid)).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_by_name_and_uid() {
        let text = "# comment\nalice:100000:65536\nbob:165536:65536\n1000:300000:10\nbad line\nalice:x:1\nalice:5:0\n";
        assert_eq!(parse(text, Some("alice"), 1000), vec![Range { start: 100000, count: 65536 }, Range { start: 300000, count: 10 }]);
        assert_eq!(parse(text, None, 1001), vec![]);
        assert_eq!(parse(text, Some("bob"), 7), vec![Range { start: 165536, count: 65536 }]);
    }

    #[test]
    fn covers_only_whole_ranges() {
        let r = Range { start: 100, count: 10 };
        assert!(r.covers(100, 10) && r.covers(105, 1));
        assert!(!r.covers(99, 2) && !r.covers(105, 6));
    }
}
