//! The outcome of a command as a documented exit code, decided in one place.
//!
//! Errors that end a command carry the exit code the operator needs (see the README's table);
//! everything else is an `anyhow` error with context, which exits 1.

use std::fmt;

/// Exit codes, as documented in the README and PRODUCT contract.
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

/// The exit code for an error that ended a command: a `Fatal` anywhere in the chain decides,
/// anything else is a plain failure (1).
pub fn exit_code_of(err: &anyhow::Error) -> ExitCode {
    err.chain()
        .find_map(|e| e.downcast_ref::<Fatal>())
        .map(|f| f.code)
        .unwrap_or(ExitCode::Partial)
}
