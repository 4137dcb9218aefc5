//! The HTTP client every part shares (runs, login, check, the token refresh): one place that
//! says how volvo-collect talks to the network — its user agent, timeouts, connection reuse, and
//! no redirects, so that no token request's body or bearer token is ever sent elsewhere.

use std::time::Duration;

/// The client of a run: connections reused across all APIs and vehicles.
pub fn client(request_timeout: Duration) -> reqwest::Client {
    reqwest::Client::builder()
        .user_agent(concat!("volvo-collect/", env!("CARGO_PKG_VERSION")))
        .connect_timeout(request_timeout.min(Duration::from_secs(10)))
        .timeout(request_timeout)
        .pool_idle_timeout(Duration::from_secs(30))
        // Never resend a token request's body (refresh token, code) or a bearer token elsewhere.
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .expect("the HTTP client builds with static settings")
}
