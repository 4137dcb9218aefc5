//! The outcome of a command as a documented exit code, decided in one place.
//!
//! Errors that end a command carry the exit code the operator needs (see the README's table)
//! and a one-line message that says what to do.

use std::fmt;

/// Exit codes, as documented in the README.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum ExitCode {
    Ok = 0,
    Partial = 1,
    Usage = 2,
    Output = 74,
    Temporary = 75,
    LoginNeeded = 77,
    Config = 78,
}

impl ExitCode {
    pub fn code(self) -> i32 {
        self as i32
    }
}

/// An error that ends the command with a specific exit code. The message is one line that
/// says what went wrong and what to do.
#[derive(Debug)]
pub struct Fatal {
    pub code: ExitCode,
    pub message: String,
}

impl Fatal {
    pub fn new(code: ExitCode, message: impl Into<String>) -> Self {
        Fatal {
            code,
            message: message.into(),
        }
    }

    pub fn config(message: impl Into<String>) -> Self {
        Self::new(ExitCode::Config, message)
    }

    pub fn login(message: impl Into<String>) -> Self {
        Self::new(ExitCode::LoginNeeded, message)
    }
}

impl fmt::Display for Fatal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for Fatal {}

/// What one account's collection came to; [`Tally::exit`] is the one rule that turns it into
/// an exit code.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Tally {
    /// Something was collected this run (any answer came).
    pub collected: bool,
    /// Something failed: the vehicle list, an API or an endpoint of a car. Deferred and
    /// unsupported endpoints are not failures.
    pub failed: bool,
    /// The refresh token is dead or the client was refused: only a new login helps.
    pub login_needed: bool,
    /// The configuration is wrong (a secret that cannot be sent, say).
    pub config: bool,
    /// Volvo refused the API key on some request. One refusal proves little (Volvo has
    /// refused good keys on single requests): it is a configuration error only when nothing
    /// else of the run answered either.
    pub key_refused: bool,
    /// Something has no data to show: deferred with no earlier answer to replay (a first run
    /// under a full minute). No failure, and the run exits 0, but not everything was collected.
    pub missing: bool,
}

impl Tally {
    /// Whether the account collected everything: no failure, and nothing missing.
    pub fn complete(self) -> bool {
        self.exit() == ExitCode::Ok && !self.missing
    }

    /// Login before configuration before the rest; nothing collected is temporary (the next
    /// run retries), some collected is partial. A refused API key is a configuration error
    /// when no answer came at all, else the failure of the endpoints it was refused on.
    pub fn exit(self) -> ExitCode {
        if self.login_needed {
            ExitCode::LoginNeeded
        } else if self.config || (self.key_refused && !self.collected) {
            ExitCode::Config
        } else if !self.failed {
            ExitCode::Ok
        } else if !self.collected {
            ExitCode::Temporary
        } else {
            ExitCode::Partial
        }
    }
}

/// What writing a command's text to standard output came to: a closed pipe (`| head`) is the
/// reader's choice, not an error; anything else (a full disk) is the output failing (74).
pub fn stdout_written(written: std::io::Result<()>) -> Result<(), Fatal> {
    match written {
        Err(e) if e.kind() != std::io::ErrorKind::BrokenPipe => Err(Fatal::new(
            ExitCode::Output,
            format!("writing to standard output failed: {e}"),
        )),
        _ => Ok(()),
    }
}

/// A run's exit code from its accounts' codes and whether an output failed. What only the
/// operator can fix (login, configuration, an output) comes first; then the accounts agree
/// (all fine, all temporary) or the run is partial.
pub fn merge(accounts: &[ExitCode], output_failed: bool) -> ExitCode {
    for code in [ExitCode::LoginNeeded, ExitCode::Config] {
        if accounts.contains(&code) {
            return code;
        }
    }
    if output_failed {
        ExitCode::Output
    } else if accounts.iter().all(|c| *c == ExitCode::Ok) {
        ExitCode::Ok
    } else if accounts.iter().all(|c| *c == ExitCode::Temporary) {
        ExitCode::Temporary
    } else {
        ExitCode::Partial
    }
}

#[cfg(test)]
mod tests {
    use super::ExitCode::*;
    use super::*;

    #[test]
    fn one_rule_for_an_account() {
        let t = |collected, failed, login_needed, config| {
            Tally {
                collected,
                failed,
                login_needed,
                config,
                ..Tally::default()
            }
            .exit()
        };
        assert_eq!(t(true, false, false, false), Ok);
        assert_eq!(
            t(false, false, false, false),
            Ok,
            "everything replayed or deferred"
        );
        assert_eq!(t(true, true, false, false), Partial);
        assert_eq!(t(false, true, false, false), Temporary, "nothing collected");
        assert_eq!(t(true, true, true, false), LoginNeeded);
        assert_eq!(t(false, true, false, true), Config);
        assert_eq!(t(false, true, true, true), LoginNeeded);
        let key = |collected| {
            Tally {
                collected,
                failed: true,
                key_refused: true,
                ..Tally::default()
            }
            .exit()
        };
        assert_eq!(
            key(true),
            Partial,
            "refused on one endpoint, others answered"
        );
        assert_eq!(key(false), Config, "refused wherever it was asked");
        // Deferred with nothing to replay: exit 0, yet not everything was collected.
        let missing = Tally {
            collected: true,
            missing: true,
            ..Tally::default()
        };
        assert_eq!((missing.exit(), missing.complete()), (Ok, false));
        let all = Tally {
            collected: true,
            ..Tally::default()
        };
        assert!(all.complete());
    }

    #[test]
    fn one_rule_for_a_run() {
        assert_eq!(merge(&[Ok, Ok], false), Ok);
        assert_eq!(merge(&[Ok, Ok], true), Output);
        assert_eq!(merge(&[Temporary, Temporary], false), Temporary);
        assert_eq!(merge(&[Temporary, Ok], false), Partial);
        assert_eq!(merge(&[Partial, Ok], true), Output);
        assert_eq!(merge(&[Ok, Config], true), Config);
        assert_eq!(merge(&[Config, LoginNeeded], true), LoginNeeded);
        assert_eq!(merge(&[], false), Ok);
    }
}
