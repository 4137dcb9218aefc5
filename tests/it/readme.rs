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

/// The README's table of Volvo's answers is the classification's specification: each row's
/// status and example body, fed to the code, give the row's reason, exit codes, back-off and
/// the level `check` shows. A row the code disagrees with fails here, naming the row.
#[test]
fn readme_answers_table_matches_the_classification() {
    use volvo_collect::api::ApiError;
    let readme =
        std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("README.md")).unwrap();
    let start = readme
        .find("<!-- answers-table:start -->")
        .expect("start marker");
    let end = readme
        .find("<!-- answers-table:end -->")
        .expect("end marker");
    let rows: Vec<Vec<&str>> = readme[start..end]
        .lines()
        .filter(|l| l.starts_with("| ") && !l.starts_with("| status"))
        .map(|l| l.trim_matches('|').split(" | ").map(str::trim).collect())
        .collect();
    assert!(rows.len() >= 14, "{} rows", rows.len());
    let code = |text: &str| -> i32 { text.trim().parse().unwrap() };
    for row in &rows {
        let [statuses, body, _meaning, reason, exit, backoff, check] = row[..] else {
            panic!("a row of 7 cells: {row:?}");
        };
        let body = body.trim_matches('`');
        let (with_others, alone) = exit.split_once(" / ").expect("exit as `a / b`");
        let level = check.split(':').next().unwrap();
        for status in statuses.split(", ") {
            let e = ApiError::from_status(status.parse().unwrap(), body.as_bytes(), None);
            let got = [
                format!("`{}`", e.reason()),
                e.exit_code(true).code().to_string(),
                e.exit_code(false).code().to_string(),
                e.backoff().label().to_string(),
                volvo_collect::check::answer_level(&e).label().to_string(),
            ];
            let want = [
                reason.to_string(),
                code(with_others).to_string(),
                code(alone).to_string(),
                backoff.to_string(),
                level.to_string(),
            ];
            assert_eq!(got, want, "README row {status} {body}");
        }
    }
}
