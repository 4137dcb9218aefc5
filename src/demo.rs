//! `volvo-collect demo`: the whole pipeline against the built-in simulator, with its own
//! credentials and token in a temporary folder, printing the exposition. What a new user sees
//! before owning credentials.

use std::time::Duration;

use crate::error::{ExitCode, Fatal};
use crate::simulator;

pub async fn run(latency: Duration) -> Result<ExitCode, Fatal> {
    let opts = simulator::Options {
        latency,
        ..Default::default()
    };
    let sim = simulator::start("127.0.0.1:0".parse().expect("loopback address"), opts)
        .await
        .map_err(|e| {
            Fatal::new(
                ExitCode::Temporary,
                format!("cannot start the simulator: {e}"),
            )
        })?;
    let dir = tempfile_dir()?;
    let token_file = dir.join("token.json");
    crate::auth::token::save(
        &token_file,
        &serde_json::from_value(sim.issue_token(true)).expect("token shape"),
    )?;
    let base = sim.base_url();
    let config = format!(
        "{}[output]\nstdout = true\n",
        simulator::volvo_table(&base, "token.json")
    );
    let path = dir.join("collector.toml");
    let settings = crate::config::parse(&path, &config, &|_| None)?;
    eprintln!(
        "volvo-collect demo: simulated Volvo cloud at {base}, sample cars {}",
        simulator::sample_vins().join(", ")
    );
    let outcome = crate::run::run_once(&settings).await;
    let _ = std::fs::remove_dir_all(&dir);
    let outcome = outcome?;
    for p in &outcome.problems {
        eprintln!("volvo-collect demo: {p}");
    }
    Ok(outcome.exit)
}

/// A private temporary folder for the demo's token and state.
fn tempfile_dir() -> Result<std::path::PathBuf, Fatal> {
    use std::os::unix::fs::DirBuilderExt;
    let dir = std::env::temp_dir().join(format!(
        "volvo-collect-demo-{}-{}",
        std::process::id(),
        fastrand::u32(..)
    ));
    std::fs::DirBuilder::new()
        .mode(0o700)
        .create(&dir)
        .map_err(|e| {
            Fatal::new(
                ExitCode::Output,
                format!("cannot create {}: {e}", dir.display()),
            )
        })?;
    Ok(dir)
}
