//! Prometheus remote write 1.0: the exposition as a snappy-compressed protobuf `WriteRequest`
//! (labels sorted by name, one sample per series stamped with the run's time), POSTed with the
//! protocol's headers. Only 5xx, 429 and a connection that could not be made are retried; any
//! other answer is final, and so is a timeout (the receiver may be working on it, and three
//! waits of the output's timeout would hold the run up three times as long). Prometheus,
//! Grafana Mimir, Thanos Receive, VictoriaMetrics and Cortex accept it.

use std::time::Duration;

use anyhow::Context;
use url::Url;

use super::http;
use crate::config::HttpOutput;
use crate::metrics::Exposition;
use crate::secret::shown_url;

#[derive(Clone, PartialEq, prost::Message)]
pub struct WriteRequest {
    #[prost(message, repeated, tag = "1")]
    pub timeseries: Vec<TimeSeries>,
}

#[derive(Clone, PartialEq, prost::Message)]
pub struct TimeSeries {
    #[prost(message, repeated, tag = "1")]
    pub labels: Vec<Label>,
    #[prost(message, repeated, tag = "2")]
    pub samples: Vec<Sample>,
}

#[derive(Clone, PartialEq, prost::Message)]
pub struct Label {
    #[prost(string, tag = "1")]
    pub name: String,
    #[prost(string, tag = "2")]
    pub value: String,
}

#[derive(Clone, PartialEq, prost::Message)]
pub struct Sample {
    #[prost(double, tag = "1")]
    pub value: f64,
    #[prost(int64, tag = "2")]
    pub timestamp: i64,
}

/// Builds the request from the run's exposition, every sample at `timestamp_ms`. Labels are
/// sorted by name, `__name__` included; an empty label value means "no such label" to
/// Prometheus, and some receivers (Thanos Receive) reject a series that carries one.
pub fn write_request(exp: &Exposition, timestamp_ms: i64) -> WriteRequest {
    let timeseries = exp
        .samples()
        .map(|(name, pairs, value)| {
            let mut labels: Vec<Label> = pairs
                .into_iter()
                .filter(|(_, v)| !v.is_empty())
                .map(|(n, v)| Label {
                    name: n.to_string(),
                    value: v.to_string(),
                })
                .collect();
            labels.push(Label {
                name: "__name__".into(),
                value: name.to_string(),
            });
            labels.sort_by(|a, b| a.name.cmp(&b.name));
            TimeSeries {
                labels,
                samples: vec![Sample {
                    value,
                    timestamp: timestamp_ms,
                }],
            }
        })
        .collect();
    WriteRequest { timeseries }
}

pub fn encode(req: &WriteRequest) -> Vec<u8> {
    let raw = prost::Message::encode_to_vec(req);
    snap::raw::Encoder::new()
        .compress_vec(&raw)
        .expect("snappy compression of memory cannot fail")
}

const ATTEMPTS: u32 = 3;

/// POSTs `body`, retrying 5xx, 429 and failed connections, never a timeout. The error names
/// the receiver (without credentials), the attempts, and the last answer.
pub async fn send(url: &Url, o: &HttpOutput, body: Vec<u8>) -> anyhow::Result<()> {
    let client = http::client(o).with_context(|| format!("writing to {}", shown_url(url)))?;
    let mut attempt = 0;
    loop {
        attempt += 1;
        let req = client
            .post(url.clone())
            .header("content-encoding", "snappy")
            .header("content-type", "application/x-protobuf")
            .header("x-prometheus-remote-write-version", "0.1.0")
            .body(body.clone());
        let result = http::authorize(req, &o.auth).send().await;
        let (retry, err) = match result {
            Ok(resp) if resp.status().is_success() => return Ok(()),
            Ok(resp) => {
                let status = resp.status();
                let retry = status.is_server_error() || status.as_u16() == 429;
                (retry, http::refused(resp).await)
            }
            // A connection that was never made delivered nothing: sending again is safe (the
            // same samples with the same timestamps are idempotent anyway), and quick. A
            // timeout is not retried: it already took the output's whole timeout.
            Err(e) => (e.is_connect() && !e.is_timeout(), http::transport(&e)),
        };
        if !retry || attempt >= ATTEMPTS {
            let tries = if attempt == 1 {
                String::new()
            } else {
                format!(" ({attempt} attempts)")
            };
            return Err(err.context(format!("writing to {}{tries}", shown_url(url))));
        }
        tokio::time::sleep(Duration::from_millis(250 << attempt)).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn families_become_sorted_series() {
        let mut exp = crate::metrics::Exposition::new();
        exp.gauge(&crate::metrics::catalog::ODOMETER_METERS, &["VIN1"], 12.5);
        let req = write_request(&exp, 1000);
        assert_eq!(req.timeseries.len(), 1);
        let names: Vec<_> = req.timeseries[0]
            .labels
            .iter()
            .map(|l| l.name.as_str())
            .collect();
        assert_eq!(names, ["__name__", "vin"]);
        assert_eq!(
            req.timeseries[0].samples[0],
            Sample {
                value: 12.5,
                timestamp: 1000
            }
        );
        let mut info = crate::metrics::Exposition::new();
        let labels = [
            "VIN1", "default", "XC40", "2023", "PETROL", "MANUAL", "", "x", "LEFT",
        ];
        info.gauge(&crate::metrics::catalog::VEHICLE_INFO, &labels, 1.0);
        let info = write_request(&info, 1000);
        assert!(
            info.timeseries[0]
                .labels
                .iter()
                .all(|l| !l.value.is_empty()),
            "{:?}",
            info.timeseries[0].labels
        );
        let body = encode(&req);
        let raw = snap::raw::Decoder::new().decompress_vec(&body).unwrap();
        let back: WriteRequest = prost::Message::decode(raw.as_slice()).unwrap();
        assert_eq!(back, req);
    }
}
