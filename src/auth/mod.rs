//! Authentication with Volvo ID, each part using only those before it: [`token`] (the token
//! file: read, lock, durable save), [`refresh`] (the access token renewed with the rotating
//! refresh token), [`redirect`] (the login's redirect listener) and [`login`].

pub mod login;
mod redirect;
pub mod refresh;
pub mod token;
