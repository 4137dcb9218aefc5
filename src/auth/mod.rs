//! Authentication with Volvo ID: the token file (read, lock, durable save) and the refresh
//! of the access token with the rotating refresh token.

pub mod login;
mod redirect;
pub mod refresh;
pub mod token;
