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
        // No TCP keep-alive probes: a connection idles at most the pool's 30 s and no request
        // outlives its timeout, so they would find nothing; they cost four system calls on
        // each of a run's hundreds of connections.
        .tcp_keepalive(None)
        .tcp_keepalive_interval(None)
        .tcp_keepalive_retries(None)
        // Never resend a token request's body (refresh token, code) or a bearer token elsewhere.
        .redirect(reqwest::redirect::Policy::none())
        // No resending by the client itself: its default retries only HTTP/2 refusals, which
        // an HTTP/1 client never meets, yet copies every request's headers in case it must.
        // The API client retries what is worth retrying, within Volvo's minute window.
        .retry(reqwest::retry::never().max_retries_per_request(0))
        .build()
        .expect("the HTTP client builds with static settings")
}

/// The longest wait a `Retry-After` may ask for; a longer one (2^63 s, a date in 2100) is
/// taken as this. No run lasts that long anyway: a wait past the run's deadline is not waited.
pub const MAX_RETRY_AFTER: Duration = Duration::from_secs(3600);

/// The wait a `Retry-After` header asks for, in either of its forms (seconds, or an HTTP
/// date), clamped to `0..=MAX_RETRY_AFTER`; `None` when absent or unreadable (negative,
/// garbage). A header is input like any other: no value of it may overflow a clock.
pub fn retry_after(headers: &reqwest::header::HeaderMap) -> Option<Duration> {
    let value = headers.get(reqwest::header::RETRY_AFTER)?.to_str().ok()?;
    // An HTTP date is the server's real time, so the system's clock reads it.
    parse_retry_after(value, crate::clock::Clock::system().now())
}

/// [`retry_after`] of one header value, `now` in Unix seconds.
pub fn parse_retry_after(value: &str, now: i64) -> Option<Duration> {
    let v = value.trim();
    if !v.is_empty() && v.bytes().all(|b| b.is_ascii_digit()) {
        // Too many digits for a u64 is still a number: a very long wait.
        let secs = v.parse::<u64>().unwrap_or(u64::MAX);
        return Some(Duration::from_secs(secs).min(MAX_RETRY_AFTER));
    }
    let at = chrono::DateTime::parse_from_rfc2822(v).ok()?.timestamp();
    let secs = at
        .saturating_sub(now)
        .clamp(0, MAX_RETRY_AFTER.as_secs() as i64);
    Some(Duration::from_secs(secs as u64))
}

/// Why an answer's body was not read whole.
#[derive(Debug)]
pub enum BodyError {
    /// Larger than the cap: refused unread beyond it.
    TooLarge(usize),
    Read(reqwest::Error),
}

impl std::fmt::Display for BodyError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            BodyError::TooLarge(max) => write!(f, "the answer is larger than {max} bytes"),
            BodyError::Read(e) => write!(
                f,
                "reading the answer failed: {}",
                e.to_string().replace('\n', " ")
            ),
        }
    }
}

/// An answer's body, whole, when it is at most `max` bytes. Every body read from the network
/// goes through here or [`read_start`], so that no server can fill the memory.
pub async fn read_capped(resp: reqwest::Response, max: usize) -> Result<Vec<u8>, BodyError> {
    // An answer that says it is too large is not read at all.
    if resp.content_length().is_some_and(|n| n > max as u64) {
        return Err(BodyError::TooLarge(max));
    }
    match read_start(resp, max).await? {
        (body, false) => Ok(body),
        (_, true) => Err(BodyError::TooLarge(max)),
    }
}

/// The first `max` bytes of an answer's body, and whether there was more (not read).
pub async fn read_start(
    mut resp: reqwest::Response,
    max: usize,
) -> Result<(Vec<u8>, bool), BodyError> {
    // Sized for the answer when it says its length, so that the body is neither copied as
    // it grows nor again when it is kept.
    let mut body = Vec::with_capacity(
        resp.content_length()
            .map_or(0, |n| n.min(max as u64) as usize),
    );
    while let Some(chunk) = resp.chunk().await.map_err(BodyError::Read)? {
        if body.len() + chunk.len() > max {
            let room = max - body.len();
            body.extend_from_slice(&chunk[..room]);
            return Ok((body, true));
        }
        body.extend_from_slice(&chunk);
    }
    Ok((body, false))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every form of `Retry-After`, absurd ones included, gives a bounded wait or none.
    #[test]
    fn retry_after_is_clamped_in_both_forms() {
        let now = 1_780_000_000; // 2026-05-28T20:26:40Z
        let p = |v| parse_retry_after(v, now);
        assert_eq!(p("5"), Some(Duration::from_secs(5)));
        assert_eq!(p(" 0 "), Some(Duration::ZERO));
        assert_eq!(p("9223372036854775807"), Some(MAX_RETRY_AFTER));
        assert_eq!(p("99999999999999999999999999999"), Some(MAX_RETRY_AFTER));
        assert_eq!(p("-5"), None);
        assert_eq!(p("soon"), None);
        assert_eq!(p(""), None);
        assert_eq!(p("1.5"), None);
        assert_eq!(
            p("Thu, 28 May 2026 20:27:10 GMT"),
            Some(Duration::from_secs(30))
        );
        assert_eq!(p("Fri, 01 Jan 2100 00:00:00 GMT"), Some(MAX_RETRY_AFTER));
        assert_eq!(p("Thu, 01 Jan 1970 00:00:00 GMT"), Some(Duration::ZERO));
    }
}
