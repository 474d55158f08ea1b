//! images, rmi, tag, load, import, save, history, image prune, commit.

use std::io::Read;

use serde_json::{json, Value};
use skiff_engine::{units, Engine};
use skiff_image::reference;

use crate::cli::{CommitArgs, HistoryArgs, ImagePruneArgs, ImagesArgs, ImportArgs, LoadArgs, RmiArgs, SaveArgs};
use crate::table;
use crate::{fail, Result};

/// (repository, tag) as `docker images` shows a full reference.
fn repo_tag(full: &str) -> (String, String) {
    let fam = reference::familiar(full);
    match fam.rfind(':') {
        Some(i) if !fam[i + 1..].contains('/') => (fam[..i].to_string(), fam[i + 1..].to_string()),
        _ => (fam, "<none>".into()),
    }
}

fn hex(id: &str) -> &str {
    id.strip_prefix("sha256:").unwrap_or(id)
}

pub fn images(e: &Engine, a: ImagesArgs) -> Result<i32> {
    let mut list = e.images.list()?;
    list.sort_by(|x, y| y.created.cmp(&x.created));
    let mut values = Vec::new();
    for img in &list {
        let tags: Vec<String> = if img.tags.is_empty() { vec![String::new()] } else { img.tags.clone() };
        for t in tags {
            let (repo, tag) = if t.is_empty() {
                ("<none>".to_string(), "<none>".to_string())
            } else {
                repo_tag(&t)
            };
            if let Some(r) = &a.reference {
                if !(repo == *r || format!("{repo}:{tag}") == *r || reference::familiar(&t) == *r) {
                    continue;
                }
            }
            if t.is_empty() && !a.all && a.filter.iter().all(|f| f != "dangling=true") && !a.quiet {
                // Docker lists dangling images too; keep them.
            }
            values.push(json!({
                "Repository": repo,
                "Tag": tag,
                "ID": if a.no_trunc { img.id.clone() } else { hex(&img.id)[..12].to_string() },
                "Digest": img.digests.first().and_then(|d| d.split('@').nth(1)).unwrap_or("<none>"),
                "CreatedAt": img.created.clone().unwrap_or_default(),
                "CreatedSince": img.created.as_deref().map(table::ago).unwrap_or_else(|| "N/A".into()),
                "Size": units::human_size(img.size),
                "VirtualSize": units::human_size(img.size),
                "Containers": "N/A",
            }));
        }
    }
    for f in &a.filter {
        match f.as_str() {
            "dangling=true" => values.retain(|v| v["Tag"] == "<none>"),
            "dangling=false" => values.retain(|v| v["Tag"] != "<none>"),
            other if other.starts_with("reference=") => {
                let want = &other["reference=".len()..];
                values.retain(|v| v["Repository"] == want || format!("{}:{}", v["Repository"].as_str().unwrap_or(""), v["Tag"].as_str().unwrap_or("")) == want);
            }
            other => return Err(fail(format!("invalid filter '{other}'"))),
        }
    }
    if a.quiet {
        let mut seen = std::collections::HashSet::new();
        for v in &values {
            let id = v["ID"].as_str().unwrap_or("");
            if seen.insert(id.to_string()) {
                println!("{id}");
            }
        }
        return Ok(0);
    }
    let (mut head, mut keys) = (vec!["REPOSITORY", "TAG"], vec!["Repository", "Tag"]);
    if a.digests {
        head.push("DIGEST");
        keys.push("Digest");
    }
    head.extend(["IMAGE ID", "CREATED", "SIZE"]);
    keys.extend(["ID", "CreatedSince", "Size"]);
    table::emit(a.format.as_deref(), &values, &head, &keys).map_err(fail)?;
    Ok(0)
}

/// Ids of images some container uses.
fn used(e: &Engine) -> Result<std::collections::HashSet<String>> {
    Ok(e.list()?.into_iter().map(|r| r.image_id).collect())
}

pub fn rmi(e: &Engine, a: RmiArgs) -> Result<i32> {
    let recs = e.list()?;
    let mut code = 0;
    for name in &a.images {
        let user = |id: &str| recs.iter().find(|r| r.image_id == id).map(|r| r.short_id().to_string());
        match e.images.remove_with(name, a.force, &user) {
            Ok(lines) => lines.iter().for_each(|l| println!("{l}")),
            Err(x) => {
                eprintln!("Error: {x}");
                code = 1;
            }
        }
    }
    Ok(code)
}

pub fn prune(e: &Engine, a: ImagePruneArgs) -> Result<i32> {
    let used = used(e)?;
    let removed = e.images.prune(a.all, &|id| used.contains(id))?;
    if !removed.is_empty() {
        println!("Deleted Images:");
        // Docker's prune lists `untagged: ...` / `deleted: ...` in lower case.
        removed.iter().for_each(|l| println!("{}", lower_first(&l.to_string())));
        println!();
    }
    // Downloads an interrupted pull left for resuming are let go as well.
    let partial = e.images.prune_partials().map_err(|x| fail(x.to_string()))?;
    println!("Total reclaimed space: {}", units::human_size(partial));
    Ok(0)
}

fn input(path: Option<&str>) -> Result<Box<dyn Read>> {
    Ok(match path {
        None | Some("-") => Box::new(std::io::stdin().lock()),
        Some(p) => Box::new(std::io::BufReader::new(std::fs::File::open(p).map_err(|x| fail(format!("open {p}: {x}")))?)),
    })
}

pub fn load(e: &Engine, a: LoadArgs) -> Result<i32> {
    if a.input.is_none() && crate::cmd::run_is_tty(0) {
        return Err(fail("requested load from stdin, but stdin is empty"));
    }
    let imgs = e.images.load(input(a.input.as_deref())?).map_err(|x| fail(x.to_string()))?;
    if !a.quiet {
        for img in imgs {
            if img.tags.is_empty() {
                println!("Loaded image ID: {}", img.id);
            }
            for t in &img.tags {
                println!("Loaded image: {}", reference::familiar(t));
            }
        }
    }
    Ok(0)
}

pub fn import(e: &Engine, a: ImportArgs) -> Result<i32> {
    let opts = skiff_image::ImportOptions {
        reference: a.reference.clone(),
        changes: a.change.clone(),
        message: a.message.clone(),
    };
    let img = e.images.import(input(Some(&a.file))?, &opts).map_err(|x| fail(x.to_string()))?;
    println!("{}", img.id);
    Ok(0)
}

pub fn save(e: &Engine, a: SaveArgs) -> Result<i32> {
    let format = match a.format.as_str() {
        "docker-archive" | "docker" => skiff_image::ArchiveFormat::DockerArchive,
        "oci-archive" | "oci" => skiff_image::ArchiveFormat::OciArchive,
        other => return Err(fail(format!("unknown format {other:?}: use docker-archive or oci-archive"))),
    };
    match &a.output {
        Some(p) => {
            // Written beside the target and renamed: a failed save leaves no partial file.
            let tmp = format!("{p}.skiff-tmp");
            let f = std::fs::File::create(&tmp).map_err(|x| fail(format!("create {p}: {x}")))?;
            let r = e.images.save(&a.images, format, std::io::BufWriter::new(f));
            if let Err(x) = r {
                let _ = std::fs::remove_file(&tmp);
                return Err(fail(x.to_string()));
            }
            std::fs::rename(&tmp, p).map_err(|x| fail(format!("rename {p}: {x}")))?;
        }
        None => {
            if crate::cmd::run_is_tty(1) {
                return Err(fail("cowardly refusing to save to a terminal. Use the -o flag or redirect"));
            }
            e.images
                .save(&a.images, format, std::io::BufWriter::new(std::io::stdout().lock()))
                .map_err(|x| fail(x.to_string()))?;
        }
    }
    Ok(0)
}

pub fn history(e: &Engine, a: HistoryArgs) -> Result<i32> {
    let img = e.images.resolve(&a.image).map_err(|x| fail(x.to_string()))?;
    let rows = skiff_image::history(&img);
    let values: Vec<Value> = rows
        .iter()
        .map(|h| {
            let by = if a.no_trunc || h.created_by.chars().count() <= 45 {
                h.created_by.clone()
            } else {
                format!("{}…", h.created_by.chars().take(44).collect::<String>())
            };
            json!({
                "ID": h.id.as_deref().map(|i| if a.no_trunc { i.to_string() } else { hex(i)[..12].to_string() }).unwrap_or_else(|| "<missing>".into()),
                "CreatedSince": h.created.as_deref().map(table::ago).unwrap_or_else(|| "N/A".into()),
                "CreatedAt": h.created.clone().unwrap_or_default(),
                "CreatedBy": by,
                "Size": if a.human { units::human_size(h.size) } else { h.size.to_string() },
                "Comment": h.comment,
            })
        })
        .collect();
    if a.quiet {
        values.iter().for_each(|v| println!("{}", v["ID"].as_str().unwrap_or("")));
        return Ok(0);
    }
    table::emit(
        a.format.as_deref(),
        &values,
        &["IMAGE", "CREATED", "CREATED BY", "SIZE", "COMMENT"],
        &["ID", "CreatedSince", "CreatedBy", "Size", "Comment"],
    )
    .map_err(fail)?;
    Ok(0)
}

pub fn commit(e: &Engine, a: CommitArgs) -> Result<i32> {
    let id = e.resolve(&a.container).map_err(|x| fail(x.to_string()))?;
    let req = skiff_engine::commit::CommitRequest {
        reference: a.reference.clone(),
        changes: a.change.clone(),
        comment: a.message.clone(),
        author: a.author.clone(),
        pause: a.pause,
    };
    let img = e.commit(&id, &req).map_err(|x| fail(x.to_string()))?;
    println!("{}", img.id);
    Ok(0)
}

/// `Untagged: x` → `untagged: x`.
pub fn lower_first(s: &str) -> String {
    let mut c = s.chars();
    c.next().map(|f| f.to_lowercase().chain(c).collect()).unwrap_or_default()
}
