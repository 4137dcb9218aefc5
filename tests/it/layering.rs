//! The layout stays a pipeline: `src/lib.rs` lists its modules in order in its opening
//! paragraph, and no module refers to one listed after it (so there is no import cycle
//! either). A module that is not in the list fails the test too.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

/// The modules in the order `src/lib.rs`'s doc comment names them (`` [`name`] `` links).
fn documented_order(root: &Path) -> Vec<String> {
    let lib = std::fs::read_to_string(root.join("src/lib.rs")).unwrap();
    let mut order = Vec::new();
    for line in lib.lines().take_while(|l| l.starts_with("//!")) {
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

/// The top-level modules a file refers to with `crate::<module>`, outside its unit tests.
fn references(text: &str) -> BTreeSet<String> {
    let code = text.split("#[cfg(test)]").next().unwrap_or(text);
    let mut found = BTreeSet::new();
    let mut rest = code;
    while let Some(i) = rest.find("crate::") {
        let after = &rest[i + "crate::".len()..];
        let name: String = after
            .chars()
            .take_while(|c| c.is_ascii_lowercase() || *c == '_')
            .collect();
        if !name.is_empty() {
            found.insert(name);
        }
        rest = after;
    }
    found
}

#[test]
fn no_module_refers_to_one_after_it() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let order = documented_order(root);
    assert!(order.len() > 15, "lib.rs lists {order:?}");
    let rank = |m: &str| order.iter().position(|o| o == m);
    let mut files = Vec::new();
    rust_files(&root.join("src"), &mut files);
    let mut problems = Vec::new();
    for file in files {
        let rel = file.strip_prefix(root.join("src")).unwrap();
        let module = rel
            .components()
            .next()
            .unwrap()
            .as_os_str()
            .to_string_lossy()
            .trim_end_matches(".rs")
            .to_string();
        if module == "lib" || module == "main" {
            continue;
        }
        let Some(own) = rank(&module) else {
            problems.push(format!("src/{module} is not in lib.rs's list of modules"));
            continue;
        };
        for target in references(&std::fs::read_to_string(&file).unwrap()) {
            match rank(&target) {
                Some(t) if t > own => problems.push(format!(
                    "{} refers to crate::{target}, which comes after {module}",
                    rel.display()
                )),
                None => problems.push(format!(
                    "{} refers to crate::{target}, not in lib.rs's list",
                    rel.display()
                )),
                _ => {}
            }
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}
