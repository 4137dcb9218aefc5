//! Pushgateway: one PUT per run of the whole exposition to a stable grouping key
//! (`/metrics/job/<job>{/<label>/<value>}`), which replaces the group's previous metrics, so no
//! stale series survive. Values that cannot stand in a path segment use `@base64`.

use anyhow::Context;
use base64::Engine;
use bytes::Bytes;
use url::Url;

use super::http;
use crate::config::PushgatewayOptions;
use crate::secret::shown_url;

/// One grouping-key segment pair: `name/value`, or `name@base64/<urlsafe base64>` when the
/// value is empty or holds a `/` (the Pushgateway's own rule; `=` stands for empty).
fn segment(name: &str, value: &str) -> [String; 2] {
    if value.is_empty() {
        [format!("{name}@base64"), "=".into()]
    } else if value.contains('/') {
        [
            format!("{name}@base64"),
            base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(value),
        ]
    } else {
        [name.to_string(), value.to_string()]
    }
}

/// The group URL: `<base>/metrics/job/<job>/<label>/<value>...`.
pub fn group_url(base: &Url, o: &PushgatewayOptions) -> anyhow::Result<Url> {
    let mut url = base.clone();
    {
        let Ok(mut segs) = url.path_segments_mut() else {
            anyhow::bail!("{} cannot be a Pushgateway URL", shown_url(base));
        };
        segs.pop_if_empty().push("metrics");
        let [k, v] = segment("job", &o.job);
        segs.extend([k, v]);
        for (name, value) in &o.grouping {
            let [k, v] = segment(name, value);
            segs.extend([k, v]);
        }
    }
    Ok(url)
}

/// PUTs the run's exposition to its group. The error names the Pushgateway (without
/// credentials) and what went wrong there.
pub async fn push(base: &Url, o: &PushgatewayOptions, text: &Bytes) -> anyhow::Result<()> {
    put(base, o, text)
        .await
        .with_context(|| format!("pushing to the Pushgateway at {}", shown_url(base)))
}

async fn put(base: &Url, o: &PushgatewayOptions, text: &Bytes) -> anyhow::Result<()> {
    let url = group_url(base, o)?;
    let client = http::client(&o.http)?;
    let req = client
        .put(url)
        .header("content-type", "text/plain; version=0.0.4; charset=utf-8")
        .body(text.clone());
    let resp = http::authorize(req, &o.http.auth)
        .send()
        .await
        .map_err(|e| http::transport(&e))?;
    let status = resp.status();
    if status.is_success() {
        return Ok(());
    }
    Err(http::refused(resp).await)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::HttpOutput;

    fn opts(job: &str, grouping: &[(&str, &str)]) -> PushgatewayOptions {
        PushgatewayOptions {
            job: job.into(),
            grouping: grouping
                .iter()
                .map(|(a, b)| (a.to_string(), b.to_string()))
                .collect(),
            http: HttpOutput {
                auth: Default::default(),
                ca_file: None,
                timeout: std::time::Duration::from_secs(1),
            },
        }
    }

    #[test]
    fn group_url_keeps_a_base_path_and_encodes_awkward_values() {
        let u = group_url(
            &Url::parse("http://h:9091").unwrap(),
            &opts("volvo_collect", &[]),
        )
        .unwrap();
        assert_eq!(u.as_str(), "http://h:9091/metrics/job/volvo_collect");
        let u = group_url(
            &Url::parse("https://h/pg/").unwrap(),
            &opts("j", &[("instance", "home"), ("site", "a/b"), ("empty", "")]),
        )
        .unwrap();
        assert_eq!(
            u.as_str(),
            "https://h/pg/metrics/job/j/instance/home/site@base64/YS9i/empty@base64/="
        );
    }
}
