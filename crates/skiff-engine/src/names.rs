//! Container names: Docker's rules and generated `adjective_surname` names. A name is reserved
//! by creating the symlink `names/<name>` → id: creation is atomic, so of two concurrent
//! `create --name x` exactly one wins, without a store-wide lock.

use std::path::Path;

use rand::Rng;

use crate::error::{Error, Result};

const LEFT: &[&str] = &[
    "admiring",
    "affectionate",
    "agitated",
    "amazing",
    "angry",
    "awesome",
    "blissful",
    "bold",
    "boring",
    "brave",
    "busy",
    "charming",
    "clever",
    "compassionate",
    "competent",
    "condescending",
    "confident",
    "cool",
    "cranky",
    "crazy",
    "dazzling",
    "determined",
    "distracted",
    "dreamy",
    "eager",
    "ecstatic",
    "elastic",
    "elated",
    "elegant",
    "eloquent",
    "epic",
    "exciting",
    "fervent",
    "festive",
    "flamboyant",
    "focused",
    "friendly",
    "frosty",
    "funny",
    "gallant",
    "gifted",
    "goofy",
    "gracious",
    "great",
    "happy",
    "hardcore",
    "heuristic",
    "hopeful",
    "hungry",
    "infallible",
    "inspiring",
    "intelligent",
    "interesting",
    "jolly",
    "jovial",
    "keen",
    "kind",
    "laughing",
    "loving",
    "lucid",
    "magical",
    "modest",
    "musing",
    "mystifying",
    "naughty",
    "nervous",
    "nice",
    "nifty",
    "nostalgic",
    "objective",
    "optimistic",
    "peaceful",
    "pedantic",
    "pensive",
    "practical",
    "priceless",
    "quirky",
    "quizzical",
    "recursing",
    "relaxed",
    "reverent",
    "romantic",
    "sad",
    "serene",
    "sharp",
    "silly",
    "sleepy",
    "stoic",
    "strange",
    "stupefied",
    "suspicious",
    "sweet",
    "tender",
    "thirsty",
    "trusting",
    "unruffled",
    "upbeat",
    "vibrant",
    "vigilant",
    "vigorous",
    "wizardly",
    "wonderful",
    "xenodochial",
    "youthful",
    "zealous",
    "zen",
];

const RIGHT: &[&str] = &[
    "agnesi",
    "albattani",
    "allen",
    "almeida",
    "archimedes",
    "ardinghelli",
    "aryabhata",
    "austin",
    "babbage",
    "banach",
    "bardeen",
    "bartik",
    "bassi",
    "bell",
    "benz",
    "bhabha",
    "bhaskara",
    "blackwell",
    "bohr",
    "booth",
    "borg",
    "bose",
    "boyd",
    "brahmagupta",
    "brattain",
    "brown",
    "carson",
    "cerf",
    "chandrasekhar",
    "clarke",
    "colden",
    "cori",
    "cray",
    "curie",
    "darwin",
    "davinci",
    "dijkstra",
    "dubinsky",
    "easley",
    "edison",
    "einstein",
    "elion",
    "engelbart",
    "euclid",
    "euler",
    "fermat",
    "fermi",
    "feynman",
    "franklin",
    "galileo",
    "gates",
    "goldberg",
    "goldstine",
    "goldwasser",
    "golick",
    "goodall",
    "haibt",
    "hamilton",
    "hawking",
    "heisenberg",
    "hermann",
    "heyrovsky",
    "hodgkin",
    "hoover",
    "hopper",
    "hugle",
    "hypatia",
    "jackson",
    "jang",
    "jennings",
    "jepsen",
    "johnson",
    "joliot",
    "jones",
    "kalam",
    "kare",
    "keller",
    "kepler",
    "khorana",
    "kilby",
    "kirch",
    "knuth",
    "kowalevski",
    "lalande",
    "lamarr",
    "lamport",
    "leakey",
    "leavitt",
    "lewin",
    "lichterman",
    "liskov",
    "lovelace",
    "lumiere",
    "mahavira",
    "mayer",
    "mccarthy",
    "mcclintock",
    "mclean",
    "meitner",
    "meninsky",
    "mestorf",
    "minsky",
    "mirzakhani",
    "morse",
    "murdock",
    "neumann",
    "newton",
    "nightingale",
    "nobel",
    "noether",
    "northcutt",
    "noyce",
    "panini",
    "pare",
    "pasteur",
    "payne",
    "perlman",
    "pike",
    "poincare",
    "poitras",
    "ptolemy",
    "raman",
    "ramanujan",
    "ride",
    "ritchie",
    "roentgen",
    "rosalind",
    "saha",
    "sammet",
    "shannon",
    "shaw",
    "shirley",
    "shockley",
    "sinoussi",
    "snyder",
    "spence",
    "stonebraker",
    "sutherland",
    "swanson",
    "swartz",
    "swirles",
    "tesla",
    "thompson",
    "torvalds",
    "turing",
    "varahamihira",
    "visvesvaraya",
    "volhard",
    "wescoff",
    "wiles",
    "williams",
    "wilson",
    "wing",
    "wozniak",
    "wright",
    "yalow",
    "yonath",
];

/// Docker's name rule: `[a-zA-Z0-9][a-zA-Z0-9_.-]+` (a leading `/` is accepted and dropped).
pub fn validate(name: &str) -> Result<String> {
    let n = name.strip_prefix('/').unwrap_or(name);
    let mut chars = n.chars();
    let ok = matches!(chars.next(), Some(c) if c.is_ascii_alphanumeric())
        && n.len() >= 2
        && n.len() <= 255
        && chars.all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-'));
    if ok {
        Ok(n.to_string())
    } else {
        Err(Error::BadName(name.to_string()))
    }
}

/// A random `adjective_surname`.
pub fn generate() -> String {
    let mut r = rand::thread_rng();
    format!("{}_{}", LEFT[r.gen_range(0..LEFT.len())], RIGHT[r.gen_range(0..RIGHT.len())])
}

/// Reserves `name` for `id`; fails if another container holds it.
pub fn reserve(dir: &Path, name: &str, id: &str) -> Result<()> {
    let link = dir.join(name);
    match std::os::unix::fs::symlink(id, &link) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
            let holder = lookup(dir, name).unwrap_or_default();
            Err(Error::NameInUse {
                name: name.to_string(),
                id: holder,
            })
        }
        Err(e) => Err(Error::io("reserve name", link, e)),
    }
}

/// The id holding `name`, if any.
pub fn lookup(dir: &Path, name: &str) -> Option<String> {
    if name.contains('/') || name.is_empty() {
        return None;
    }
    std::fs::read_link(dir.join(name)).ok().map(|p| p.to_string_lossy().into_owned())
}

/// Releases `name` if it still points at `id`.
pub fn release(dir: &Path, name: &str, id: &str) {
    if lookup(dir, name).as_deref() == Some(id) {
        let _ = std::fs::remove_file(dir.join(name));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_follow_docker_rules() {
        assert_eq!(validate("/web-1").unwrap(), "web-1");
        assert!(validate("a").is_err());
        assert!(validate("-x").is_err());
        assert!(validate("a/b").is_err());
        assert!(validate("has space").is_err());
        let g = generate();
        assert!(validate(&g).is_ok() && g.contains('_'));
    }

    #[test]
    fn one_reservation_wins() {
        let d = tempfile::tempdir().unwrap();
        reserve(d.path(), "web", "id1").unwrap();
        let e = reserve(d.path(), "web", "id2").unwrap_err();
        assert!(e.to_string().contains("\"/web\" is already in use by container \"id1\""), "{e}");
        release(d.path(), "web", "id2");
        assert_eq!(lookup(d.path(), "web").as_deref(), Some("id1"));
        release(d.path(), "web", "id1");
        assert_eq!(lookup(d.path(), "web"), None);
    }
}
