//! The layout stays a pipeline. `src/lib.rs` lists its modules in order in its opening
//! paragraph, and no file refers to a module listed after its own, nor to an item of the crate
//! root (which sits above every module). Inside a folder, its `mod.rs` lists the folder's files
//! in order the same way, and no file refers to a sibling listed after it; `mod.rs` itself is
//! the folder's shared part, which every file of the folder may use. A module or file that is
//! not in its list fails the test too. Every reference counts: `crate::a::b`, grouped imports
//! (`use crate::{a, b::c}`), `super::x`, in code, tests and macros alike.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

/// The `` [`name`] `` links of a file's opening doc comment, in order.
fn documented_order(file: &Path) -> Vec<String> {
    let text = std::fs::read_to_string(file).unwrap();
    let mut order = Vec::new();
    for line in text.lines().take_while(|l| l.starts_with("//!")) {
        let mut rest = line;
        while let Some(i) = rest.find("[`") {
            let after = &rest[i + 2..];
            let end = after.find("`]").expect("a closed link");
            order.push(after[..end].to_string());
            rest = &after[end + 2..];
        }
    }
    order
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

fn ident(text: &str) -> String {
    text.chars()
        .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
        .collect()
}

/// The first path segment of each path after `prefix` (`crate::`, `super::`, `crate::api::`),
/// a grouped import giving one per member.
fn references(text: &str, prefix: &str) -> BTreeSet<String> {
    let mut found = BTreeSet::new();
    let mut rest = text;
    while let Some(i) = rest.find(prefix) {
        // `$crate::` in macros counts; `supercrate::` and the like do not.
        let before = rest[..i].chars().next_back();
        let after = &rest[i + prefix.len()..];
        rest = after;
        if before.is_some_and(|c| c.is_ascii_alphanumeric() || c == '_') {
            continue;
        }
        match after.strip_prefix('{') {
            Some(group) => found.extend(group_members(group)),
            None => {
                found.insert(ident(after));
            }
        }
    }
    found.remove("");
    found
}

/// The first segment of every member of a `{...}` group (nested groups stay inside theirs).
fn group_members(group: &str) -> Vec<String> {
    let mut members = Vec::new();
    let (mut depth, mut start) = (0usize, 0usize);
    for (i, c) in group.char_indices() {
        match c {
            '{' => depth += 1,
            '}' if depth == 0 => {
                members.push(ident(group[start..i].trim_start()));
                break;
            }
            '}' => depth -= 1,
            ',' if depth == 0 => {
                members.push(ident(group[start..i].trim_start()));
                start = i + 1;
            }
            _ => {}
        }
    }
    members
}

/// What one file may not refer to, as problems.
fn file_problems(root: &Path, file: &Path, order: &[String]) -> Vec<String> {
    let rel = file.strip_prefix(root.join("src")).unwrap();
    let parts: Vec<String> = rel
        .components()
        .map(|c| {
            c.as_os_str()
                .to_string_lossy()
                .trim_end_matches(".rs")
                .to_string()
        })
        .collect();
    let module = &parts[0];
    if module == "lib" || module == "main" {
        return Vec::new();
    }
    let rank = |m: &str| order.iter().position(|o| o == m);
    let Some(own) = rank(module) else {
        return vec![format!("src/{module} is not in lib.rs's list of modules")];
    };
    let text = std::fs::read_to_string(file).unwrap();
    let mut problems = Vec::new();
    for target in references(&text, "crate::") {
        match rank(&target) {
            Some(t) if t > own => problems.push(format!(
                "{} refers to crate::{target}, which comes after {module}",
                rel.display()
            )),
            Some(_) => {}
            None => problems.push(format!(
                "{} refers to crate::{target}, an item of the crate root or a module not in lib.rs's list",
                rel.display()
            )),
        }
    }
    if parts.len() == 2 && parts[1] != "mod" {
        problems.extend(sibling_problems(root, rel, &parts, &text));
    }
    problems
}

/// A file of a folder may use the folder's `mod.rs` and the siblings listed before it.
fn sibling_problems(root: &Path, rel: &Path, parts: &[String], text: &str) -> Vec<String> {
    let (folder, name) = (&parts[0], &parts[1]);
    let order = documented_order(&root.join("src").join(folder).join("mod.rs"));
    let siblings: BTreeSet<String> = std::fs::read_dir(root.join("src").join(folder))
        .unwrap()
        .filter_map(|e| {
            let p = e.unwrap().path();
            let stem = p.file_stem()?.to_string_lossy().to_string();
            (p.extension().is_some_and(|x| x == "rs") && stem != "mod").then_some(stem)
        })
        .collect();
    let rank = |m: &str| order.iter().position(|o| o == m);
    let Some(own) = rank(name) else {
        return vec![format!(
            "{} is not in src/{folder}/mod.rs's list",
            rel.display()
        )];
    };
    let mut used = references(text, "super::");
    used.extend(references(text, &format!("crate::{folder}::")));
    let mut problems = Vec::new();
    for target in used.iter().filter(|t| siblings.contains(*t)) {
        if rank(target).is_none_or(|t| t > own) {
            problems.push(format!(
                "{} refers to {target}, which comes after {name} in src/{folder}/mod.rs's list",
                rel.display()
            ));
        }
    }
    problems
}

#[test]
fn no_module_refers_to_one_after_it() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let order = documented_order(&root.join("src/lib.rs"));
    assert!(order.len() > 15, "lib.rs lists {order:?}");
    let mut files = Vec::new();
    rust_files(&root.join("src"), &mut files);
    files.sort();
    let problems: Vec<String> = files
        .iter()
        .flat_map(|f| file_problems(root, f, &order))
        .collect();
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

/// Guards the reader of references itself: each form of path it must see.
#[test]
fn every_form_of_reference_is_seen() {
    let text = "use crate::{run::x, api::{a, b}, Stop};\n$crate::values::f();\nlet s = crate::state::S;\n#[cfg(test)]\nmod t { use crate::serve; }\nsupercrate::no";
    let found = references(text, "crate::");
    let want: BTreeSet<String> = ["run", "api", "Stop", "values", "state", "serve"]
        .iter()
        .map(|s| s.to_string())
        .collect();
    assert_eq!(found, want);
    let sup = references("use super::{a, b::c};\nsuper::d::e();", "super::");
    assert_eq!(sup.into_iter().collect::<Vec<_>>(), ["a", "b", "d"]);
}
