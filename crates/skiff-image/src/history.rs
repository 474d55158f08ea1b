//! `history`: the config's history entries with the size of the layer each made, newest
//! first, as `docker history` prints them.

use crate::Image;

/// One line of `docker history`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HistoryEntry {
    /// The image id on the newest entry (docker prints `<missing>` for the others).
    pub id: Option<String>,
    pub created: Option<String>,
    pub created_by: String,
    /// Unpacked bytes of the layer this step made (0 for an empty layer).
    pub size: u64,
    pub comment: String,
    pub empty_layer: bool,
}

/// The image's history, newest first. Layers without a history entry get a blank one.
pub fn history(img: &Image) -> Vec<HistoryEntry> {
    let mut layers = img.layers.iter();
    let mut out = Vec::new();
    for h in img.config.history().iter().flatten() {
        let empty = h.empty_layer().unwrap_or(false);
        let size = if empty { 0 } else { layers.next().map_or(0, |l| l.unpacked_size) };
        out.push(HistoryEntry {
            id: None,
            created: h.created().clone(),
            created_by: h.created_by().clone().unwrap_or_default(),
            size,
            comment: h.comment().clone().unwrap_or_default(),
            empty_layer: empty,
        });
    }
    for l in layers {
        out.push(HistoryEntry {
            id: None,
            created: None,
            created_by: String::new(),
            size: l.unpacked_size,
            comment: String::new(),
            empty_layer: false,
        });
    }
    out.reverse();
    if let Some(first) = out.first_mut() {
        first.id = Some(img.id.clone());
    }
    out
}
