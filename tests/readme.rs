//! The README's metrics table is made from the metric catalog in the code; this test keeps
//! them in step (`UPDATE_GOLDEN=1` rewrites the table), and checks that the README names the
//! test command CI runs.

use std::path::Path;

const START: &str = "<!-- metrics-table:start -->\n";
const END: &str = "<!-- metrics-table:end -->";

#[test]
fn readme_metrics_table_matches_the_catalog() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("README.md");
    let readme = std::fs::read_to_string(&path).unwrap();
    let start = readme
        .find(START)
        .expect("README has the metrics-table:start marker")
        + START.len();
    let end = readme
        .find(END)
        .expect("README has the metrics-table:end marker");
    let table = volvo_collect::metrics::catalog::markdown_table();
    if std::env::var_os("UPDATE_GOLDEN").is_some() {
        let new = format!("{}{}{}", &readme[..start], table, &readme[end..]);
        std::fs::write(&path, new).unwrap();
        return;
    }
    assert_eq!(
        &readme[start..end],
        table,
        "README metrics table is out of date: run the tests with UPDATE_GOLDEN=1"
    );
}

/// The README's endpoint table is made from the endpoint table in the code, like the metrics
/// table (`UPDATE_GOLDEN=1` rewrites it).
#[test]
fn readme_endpoints_table_matches_the_code() {
    const START: &str = "<!-- endpoints-table:start -->\n";
    const END: &str = "<!-- endpoints-table:end -->";
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("README.md");
    let readme = std::fs::read_to_string(&path).unwrap();
    let start = readme
        .find(START)
        .expect("README has the endpoints-table:start marker")
        + START.len();
    let end = readme
        .find(END)
        .expect("README has the endpoints-table:end marker");
    let table = volvo_collect::endpoints::markdown_table();
    if std::env::var_os("UPDATE_GOLDEN").is_some() {
        let new = format!("{}{}{}", &readme[..start], table, &readme[end..]);
        std::fs::write(&path, new).unwrap();
        return;
    }
    assert_eq!(
        &readme[start..end],
        table,
        "README endpoints table is out of date: run the tests with UPDATE_GOLDEN=1"
    );
}

#[test]
fn readme_names_the_ci_test_command() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let readme = std::fs::read_to_string(root.join("README.md")).unwrap();
    let ci = std::fs::read_to_string(root.join(".ci/run")).unwrap();
    assert!(ci.contains("scripts/test"), "{ci}");
    assert!(readme.contains("scripts/test"));
}
