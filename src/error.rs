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
