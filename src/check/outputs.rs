//! The output probes of the check: the textfile folder, the Pushgateway, the remote-write
//! receiver and the listener, each tried the way a run would use it but without writing a
//! sample anywhere.

use std::path::Path;

use url::Url;

use super::findings::{Finding, Findings};
use super::PROBE_TIMEOUT;
use crate::config::{HttpOutput, PushgatewayOptions, Settings};
use crate::secret::shown_url;
use crate::sinks::http as sink_http;

pub(super) async fn check_outputs(settings: &Settings, offline: bool) -> Vec<Finding> {
    let mut f = Findings::default();
    let o = &settings.output;
    if o.is_empty() {
        if settings.web.listen.is_none() {
            f.warn("outputs: none in [output]: a `--once` run needs --stdout, --textfile, --pushgateway or --remote-write on its command line");
        } else {
            f.ok("outputs: none in [output]; the listener serves the metrics");
        }
    }
    if o.stdout {
        f.ok("output stdout: on");
    }
    if let Some(path) = &o.textfile {
        textfile_finding(&mut f, path);
    }
    let push = async {
        match &o.pushgateway {
            Some(url) if !offline => Some(pushgateway_finding(url, &settings.pushgateway).await),
            _ => None,
        }
    };
    let remote = async {
        match &o.remote_write {
            Some(url) if !offline => Some(remote_write_finding(url, &settings.remote_write).await),
            _ => None,
        }
    };
    let (push, remote) = tokio::join!(push, remote);
    f.0.extend(push);
    f.0.extend(remote);
    if let Some(addr) = settings.web.listen {
        match tokio::net::TcpListener::bind(addr).await {
            Ok(l) => {
                drop(l);
                f.ok(format!("listener {addr}: free to bind"));
            }
            // It may be this collector's own long-running mode, which the check cannot tell.
            Err(e) if e.kind() == std::io::ErrorKind::AddrInUse => f.warn(format!(
                "listener {addr}: in use: fine if volvo-collect's long-running mode runs there; otherwise stop what uses it or change web.listen"
            )),
            Err(e) => f.fail(format!(
                "listener {addr}: cannot bind ({e}): change web.listen (ports below 1024 need privileges)"
            )),
        }
    }
    f.0
}

fn textfile_finding(f: &mut Findings, path: &Path) {
    let path = &std::path::absolute(path).unwrap_or_else(|_| path.to_path_buf());
    let folder = crate::fsutil::folder_of(path);
    let name = path.display();
    if path.is_dir() {
        f.fail(format!(
            "output textfile {name}: is a folder: name a file in it, such as {}",
            path.join("volvo.prom").display()
        ));
        return;
    }
    if let Err(e) = crate::fsutil::probe_writable(&folder) {
        f.fail(format!(
            "output textfile {name}: {e}: {}",
            if folder.exists() {
                "give the collector's user write access to it"
            } else {
                "create it (node_exporter's --collector.textfile.directory) with write access for the collector's user"
            }
        ));
        return;
    }
    if let Some(why) = crate::config::textfile_unread(path) {
        f.warn(format!("output textfile {name}: {why}"));
    } else {
        f.ok(format!(
            "output textfile {name}: folder {} writable",
            folder.display()
        ));
    }
}

async fn pushgateway_finding(url: &Url, o: &PushgatewayOptions) -> Finding {
    let mut f = Findings::default();
    let shown = shown_url(url);
    let ready = ready_url(url);
    let client = match sink_http::client(&o.http) {
        Ok(c) => c,
        Err(e) => {
            f.fail(format!("output pushgateway {shown}: {e:#}"));
            return f.0.remove(0);
        }
    };
    let req = client.get(ready).timeout(o.http.timeout.min(PROBE_TIMEOUT));
    match sink_http::authorize(req, &o.http.auth).send().await {
        Ok(r) if r.status().is_success() => {
            f.ok(format!("output pushgateway {shown}: ready (GET /-/ready answered {})", r.status().as_u16()))
        }
        Ok(r) if matches!(r.status().as_u16(), 401 | 403) => f.fail(format!(
            "output pushgateway {shown}: refused the credentials (HTTP {}): check {}",
            r.status().as_u16(),
            if crate::config::has_userinfo(url) {
                "the user name and password in output.pushgateway (or --pushgateway)"
            } else {
                "pushgateway.username and password"
            }
        )),
        Ok(r) if r.status().as_u16() == 404 => f.warn(format!(
            "output pushgateway {shown}: GET /-/ready answered 404: is this the Pushgateway's base URL (without /metrics/...)?"
        )),
        Ok(r) => f.fail(format!(
            "output pushgateway {shown}: not ready (GET /-/ready answered HTTP {})",
            r.status().as_u16()
        )),
        Err(e) => f.fail(unreachable("pushgateway", &shown, "it", &e, "the Pushgateway")),
    }
    f.0.remove(0)
}

/// Remote-write receivers differ in every path but the write itself, and a write would store
/// a sample; any HTTP answer from the origin proves the network, TLS and the receiver's port.
async fn remote_write_finding(url: &Url, o: &HttpOutput) -> Finding {
    let mut f = Findings::default();
    let shown = shown_url(url);
    let origin = url.origin().ascii_serialization();
    let client = match sink_http::client(o) {
        Ok(c) => c,
        Err(e) => {
            f.fail(format!("output remote_write {shown}: {e:#}"));
            return f.0.remove(0);
        }
    };
    match client
        .get(format!("{origin}/"))
        .timeout(o.timeout.min(PROBE_TIMEOUT))
        .send()
        .await
    {
        Ok(r) => f.ok(format!(
            "output remote_write {shown}: {origin} answers (HTTP {}); the write itself is not tried",
            r.status().as_u16()
        )),
        Err(e) => f.fail(unreachable("remote_write", &shown, &origin, &e, "the receiver")),
    }
    f.0.remove(0)
}

/// `<base>/-/ready`, keeping a base path (a Pushgateway behind a reverse proxy).
fn ready_url(base: &Url) -> Url {
    let mut url = base.clone();
    if let Ok(mut segs) = url.path_segments_mut() {
        segs.pop_if_empty().extend(["-", "ready"]);
    }
    url
}

/// An output that did not answer its probe: what went wrong, and what to do; a refused
/// certificate says what to do about it, not to start a server that is running.
fn unreachable(output: &str, shown: &str, what: &str, e: &reqwest::Error, server: &str) -> String {
    let text = sink_http::explained(e);
    let todo = if sink_http::certificate_hint(&text).is_some() {
        String::new()
    } else {
        format!(": start {server}, or fix output.{output}")
    };
    format!("output {output} {shown}: cannot reach {what}: {text}{todo}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn check_ready_url_keeps_a_base_path_and_urls_are_shown_without_credentials() {
        let u = |s: &str| Url::parse(s).unwrap();
        assert_eq!(
            ready_url(&u("http://h:9091")).as_str(),
            "http://h:9091/-/ready"
        );
        assert_eq!(
            ready_url(&u("https://h/pg/")).as_str(),
            "https://h/pg/-/ready"
        );
        let shown = shown_url(&u("https://user:s3cret@h:9091/pg?token=s3cret"));
        assert_eq!(shown, "https://h:9091/pg");
    }
}
