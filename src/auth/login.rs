//! `volvo-collect login`: the authorization-code flow with PKCE against Volvo ID.

use std::time::Duration;

use crate::config::Settings;
use crate::error::{ExitCode, Fatal};

pub async fn run(
    _settings: &Settings,
    _no_browser: bool,
    _timeout: Duration,
) -> Result<ExitCode, Fatal> {
    Err(Fatal::new(
        ExitCode::Usage,
        "login is not available in this build",
    ))
}
