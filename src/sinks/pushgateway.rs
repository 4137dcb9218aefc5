//! Pushgateway: one PUT per run of the whole exposition to a stable grouping key
//! (`/metrics/job/volvo_collect`), which replaces the group's previous metrics.

use std::time::Duration;

use url::Url;

pub const DEFAULT_JOB: &str = "volvo_collect";

/// The group URL: `<base>/metrics/job/<job>`.
pub fn group_url(base: &Url, job: &str) -> Result<Url, String> {
    let mut url = base.clone();
    url.path_segments_mut()
        .map_err(|_| format!("{base} cannot be a Pushgateway URL"))?
        .pop_if_empty()
        .extend(["metrics", "job", job]);
    Ok(url)
}

pub async fn push(base: &Url, text: &[u8]) -> Result<(), String> {
    let url = group_url(base, DEFAULT_JOB)?;
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(15))
        .build()
        .map_err(|e| e.to_string())?;
    let resp = client
        .put(url.clone())
        .header("content-type", "text/plain; version=0.0.4; charset=utf-8")
        .body(text.to_vec())
        .send()
        .await
        .map_err(|e| {
            format!(
                "cannot reach the Pushgateway at {base}: {}",
                crate::api::client::describe(&e)
            )
        })?;
    let status = resp.status();
    if status.is_success() {
        return Ok(());
    }
    let body = resp.text().await.unwrap_or_default();
    Err(format!(
        "the Pushgateway at {base} answered HTTP {}: {}",
        status.as_u16(),
        body.trim().chars().take(200).collect::<String>()
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn group_url_keeps_a_base_path() {
        let u = group_url(&Url::parse("http://h:9091").unwrap(), "volvo_collect").unwrap();
        assert_eq!(u.as_str(), "http://h:9091/metrics/job/volvo_collect");
        let u = group_url(&Url::parse("https://h/pg/").unwrap(), "j").unwrap();
        assert_eq!(u.as_str(), "https://h/pg/metrics/job/j");
    }
}
