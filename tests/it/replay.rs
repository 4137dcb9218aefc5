//! The replay suite: answers Volvo's servers have given in the field, one file each in
//! `tests/replay/`, each served by the real simulator on the endpoint it belongs to (as a fault:
//! status, headers, content type, body) and read by the real binary, which must give the
//! file's exit code, reason and samples. Adding a case is adding a file; its fields are those of
//! the simulator's faults, and `$VIN` stands for the car's VIN.

use std::path::{Path, PathBuf};

use serde::Deserialize;
use serde_json::Value;

use crate::support::*;

/// One recorded answer and what it must give.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Case {
    /// What the answer is, and when and where it was seen.
    answer: String,
    /// The simulator's fault that serves it (`path`, `status`, `headers`, `content_type`,
    /// `body`, `times`, `pad_bytes`, `pass_through`).
    fault: Value,
    /// Extra `[volvo]` TOML; default `vins = ["$VIN"]` (one car, so the list only checks it).
    volvo: Option<String>,
    /// Extra TOML after `[volvo]`.
    #[serde(default)]
    config: String,
    /// Runs one after another; the expectations are of the last.
    #[serde(default = "one")]
    runs: usize,
    expect: Expect,
}

fn one() -> usize {
    1
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Expect {
    exit: i32,
    /// The endpoint's bounded reason: a failure's `volvo_collect_endpoint_error` reason, or
    /// `not_available` / `not_supported` (their own families); absent: no endpoint failed.
    reason: Option<String>,
    /// Text that must be in the exposition (a sample line, or part of one).
    #[serde(default)]
    present: Vec<String>,
    /// Text that must not be.
    #[serde(default)]
    absent: Vec<String>,
    #[serde(default)]
    stderr_has: Vec<String>,
    #[serde(default)]
    stderr_lacks: Vec<String>,
    /// Requests the simulator saw on the fault's path, over all runs.
    requests: Option<usize>,
    /// The token file's refresh token after the runs: `kept` or `rotated`.
    refresh_token: Option<String>,
}

fn cases() -> Vec<(String, Case)> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/replay");
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "json"))
        .collect();
    files.sort();
    files
        .into_iter()
        .map(|p| {
            let name = p.file_stem().unwrap().to_string_lossy().into_owned();
            let text = std::fs::read_to_string(&p).unwrap().replace("$VIN", BEV);
            let case = serde_json::from_str(&text)
                .unwrap_or_else(|e| panic!("{}: not a replay case: {e}", p.display()));
            (name, case)
        })
        .collect()
}

/// Runs one case; the problems it found, one line each.
fn replay(case: &Case) -> Vec<String> {
    let sim = Sim::start(&[]);
    let volvo = case
        .volvo
        .clone()
        .unwrap_or_else(|| format!("vins = [\"{BEV}\"]"));
    let ws = Workspace::new(&sim, &volvo, &case.config);
    let refresh_before = ws.token()["refresh_token"].clone();
    sim.faults(Value::Array(vec![case.fault.clone()]));
    let mut last = None;
    for _ in 0..case.runs {
        last = Some(ws.run(&["--once", "--stdout"]));
    }
    let o = last.expect("at least one run");
    let (out, err) = (stdout(&o), stderr(&o));
    let e = &case.expect;
    let mut problems = Vec::new();
    let mut check = |ok: bool, what: String| {
        if !ok {
            problems.push(what);
        }
    };
    check(!err.contains("panicked"), "the process panicked".into());
    check(
        code(&o) == e.exit,
        format!("exit {} (expected {})", code(&o), e.exit),
    );
    if let Some(wrong) = reason_problem(&out, e.reason.as_deref()) {
        check(false, wrong);
    }
    for p in &e.present {
        check(
            out.contains(p.as_str()),
            format!("missing from the exposition: {p}"),
        );
    }
    for a in &e.absent {
        check(!out.contains(a.as_str()), format!("in the exposition: {a}"));
    }
    for s in &e.stderr_has {
        check(err.contains(s.as_str()), format!("stderr lacks {s:?}"));
    }
    for s in &e.stderr_lacks {
        check(!err.contains(s.as_str()), format!("stderr says {s:?}"));
    }
    if let Some(n) = e.requests {
        let path = case.fault["path"].as_str().unwrap();
        let seen = requests_on(&sim, path);
        check(
            seen == n,
            format!("{seen} requests on {path} (expected {n})"),
        );
    }
    if let Some(t) = e.refresh_token.as_deref() {
        let kept = ws.token()["refresh_token"] == refresh_before;
        check(
            kept == (t == "kept"),
            format!("the refresh token was not {t}"),
        );
    }
    if !problems.is_empty() {
        problems.push(format!("stderr:\n{err}"));
    }
    problems
}

/// Whether the exposition shows `reason` for the endpoint (none: no endpoint failed).
fn reason_problem(out: &str, reason: Option<&str>) -> Option<String> {
    let failed: Vec<&str> = out
        .lines()
        .filter(|l| l.starts_with("volvo_collect_endpoint_error{"))
        .collect();
    let ok = match reason {
        None => failed.is_empty(),
        // No failure on a car's endpoint; on the vehicle list, a failure with that reason.
        Some(r @ ("not_available" | "not_supported")) => {
            out.contains(&format!("volvo_collect_endpoint_{r}{{"))
                || failed.iter().any(|l| {
                    l.contains("endpoint=\"vehicles\"") && l.contains(&format!("reason=\"{r}\""))
                })
        }
        Some(r) => failed
            .iter()
            .any(|l| l.contains(&format!("reason=\"{r}\""))),
    };
    (!ok).then(|| format!("reason {reason:?} not shown; failed endpoints: {failed:?}"))
}

/// Requests the simulator saw on a fault's path (exact with a leading `=`, else a part).
fn requests_on(sim: &Sim, path: &str) -> usize {
    sim.stats()["requests"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| {
            let p = r["path"].as_str().unwrap();
            match path.strip_prefix('=') {
                Some(exact) => p == exact,
                None => p.contains(path),
            }
        })
        .count()
}

/// Every recorded answer gives its exit code, reason and samples, and none panics the
/// process. The cases run a few at a time; all failures are reported together.
#[test]
fn answers_seen_in_the_field_replay_as_recorded() {
    let cases = cases();
    assert!(cases.len() >= 20, "{} cases", cases.len());
    let mut report = Vec::new();
    for batch in cases.chunks(4) {
        let results: Vec<Vec<String>> = std::thread::scope(|s| {
            let handles: Vec<_> = batch
                .iter()
                .map(|(_, case)| s.spawn(|| replay(case)))
                .collect();
            handles.into_iter().map(|h| h.join().unwrap()).collect()
        });
        for ((name, case), problems) in batch.iter().zip(results) {
            if !problems.is_empty() {
                report.push(format!(
                    "tests/replay/{name}.json ({}):\n  {}",
                    case.answer,
                    problems.join("\n  ")
                ));
            }
        }
    }
    assert!(report.is_empty(), "{}", report.join("\n\n"));
}
