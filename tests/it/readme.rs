//! The README's metrics table is made from the metric catalog in the code; this test keeps
//! them in step (`UPDATE_GOLDEN=1` rewrites the table), and checks that the README names the
//! test command CI runs.

use std::path::Path;

/// Compares the README between `<!-- {marker}:start -->` and `<!-- {marker}:end -->` with
/// `table`; `UPDATE_GOLDEN=1` rewrites it.
fn generated_table_is_current(marker: &str, table: &str) {
    let (start_tag, end_tag) = (
        format!("<!-- {marker}:start -->\n"),
        format!("<!-- {marker}:end -->"),
    );
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("README.md");
    let readme = std::fs::read_to_string(&path).unwrap();
    let start = readme
        .find(&start_tag)
        .unwrap_or_else(|| panic!("README has the {marker}:start marker"))
        + start_tag.len();
    let end = readme
        .find(&end_tag)
        .unwrap_or_else(|| panic!("README has the {marker}:end marker"));
    if std::env::var_os("UPDATE_GOLDEN").is_some() {
        let new = format!("{}{}{}", &readme[..start], table, &readme[end..]);
        std::fs::write(&path, new).unwrap();
        return;
    }
    assert_eq!(
        &readme[start..end],
        table,
        "README {marker} is out of date: run the tests with UPDATE_GOLDEN=1"
    );
}

#[test]
fn readme_metrics_table_matches_the_catalog() {
    generated_table_is_current(
        "metrics-table",
        &volvo_collect::metrics::catalog::markdown_table(),
    );
}

/// The README's endpoint table is made from the endpoint table in the code.
#[test]
fn readme_endpoints_table_matches_the_code() {
    generated_table_is_current(
        "endpoints-table",
        &volvo_collect::endpoints::markdown_table(),
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
