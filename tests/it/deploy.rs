//! The deployment examples in deploy/ (compose files, the Prometheus and Grafana files they
//! mount, the Kubernetes manifests) cannot be run here, since their other images cannot be
//! pulled; so they are checked piece by piece: every file parses, every file they mount is in
//! the repository, every volvo-collect command line in them is one the binary accepts, the
//! image and user are the ones scripts/image builds, the configurations they mount load with
//! the token in the state volume, and the real promtool passes the Prometheus configurations
//! with the rule files mounted where compose mounts them.

use std::path::{Path, PathBuf};
use std::process::Command;

use yaml_rust2::{Yaml, YamlLoader};

use crate::support::*;

/// The image scripts/image builds, as the examples must name it.
const IMAGE: &str = concat!("volvo-collect:", env!("CARGO_PKG_VERSION"));

fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

fn deploy(rel: &str) -> PathBuf {
    root().join("deploy").join(rel)
}

/// Every YAML document of a file under deploy/, with the file named when it does not parse.
fn documents(rel: &str) -> Vec<Yaml> {
    let path = deploy(rel);
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    YamlLoader::load_from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// The one YAML document of a file under deploy/.
fn yaml(rel: &str) -> Yaml {
    let mut docs = documents(rel);
    assert_eq!(docs.len(), 1, "deploy/{rel} holds {} documents", docs.len());
    docs.remove(0)
}

/// A string at `key` of `y`, or a failure that names where it was looked for.
fn string<'a>(y: &'a Yaml, key: &str, what: &str) -> &'a str {
    y[key]
        .as_str()
        .unwrap_or_else(|| panic!("{what}: no string `{key}` in {y:?}"))
}

fn strings(y: &Yaml) -> Vec<String> {
    y.as_vec()
        .map(|v| {
            v.iter()
                .filter_map(|s| s.as_str().map(String::from))
                .collect()
        })
        .unwrap_or_default()
}

/// The user scripts/image makes the container run as.
fn image_uid() -> i64 {
    let script = std::fs::read_to_string(root().join("scripts/image")).unwrap();
    script
        .lines()
        .find_map(|l| l.strip_prefix("uid="))
        .expect("scripts/image sets uid=")
        .parse()
        .unwrap()
}

/// Guards the syntax of every YAML file under deploy/: each parses, as a mapping.
#[test]
fn deploy_files_parse() {
    let mut seen = 0;
    let mut stack = vec![root().join("deploy")];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                stack.push(path);
            } else if path.extension().is_some_and(|e| e == "yml" || e == "yaml") {
                let rel = path.strip_prefix(root().join("deploy")).unwrap();
                let docs = documents(rel.to_str().unwrap());
                assert!(
                    !docs.is_empty() && docs.iter().all(Yaml::is_hash),
                    "{} is not a YAML mapping",
                    path.display()
                );
                seen += 1;
            }
        }
    }
    assert!(seen >= 12, "only {seen} YAML files under deploy/");
}

/// A compose volume `SOURCE:TARGET[:MODE]`.
struct Mount {
    source: String,
    target: String,
    read_only: bool,
}

fn mounts(service: &Yaml) -> Vec<Mount> {
    strings(&service["volumes"])
        .iter()
        .map(|v| {
            let parts: Vec<&str> = v.split(':').collect();
            assert!((2..=3).contains(&parts.len()), "volume {v:?}");
            Mount {
                source: parts[0].into(),
                target: parts[1].into(),
                read_only: parts.get(2) == Some(&"ro"),
            }
        })
        .collect()
}

/// compose.yaml's services, with compose.pushgateway.yaml's laid over them when `pushgateway`:
/// keys replaced, volumes added by target, as compose merges them.
fn services(pushgateway: bool) -> Yaml {
    let mut base = yaml("compose.yaml")["services"].clone();
    if pushgateway {
        let over = yaml("compose.pushgateway.yaml")["services"].clone();
        for (name, service) in over.into_hash().unwrap() {
            let merged = base
                .as_mut_hash()
                .unwrap()
                .entry(name)
                .or_insert(Yaml::Hash(Default::default()));
            for (key, value) in service.into_hash().unwrap() {
                let h = merged.as_mut_hash().unwrap();
                match (key.as_str(), h.get_mut(&key)) {
                    (Some("volumes"), Some(Yaml::Array(old))) => {
                        let new = value.into_vec().unwrap();
                        old.retain(|m| !new.iter().any(|n| target(n) == target(m)));
                        old.extend(new);
                    }
                    _ => {
                        h.insert(key, value);
                    }
                }
            }
        }
    }
    base
}

fn target(volume: &Yaml) -> Option<&str> {
    volume.as_str()?.split(':').nth(1)
}

/// Guards the compose files' mounts: every host file exists in the repository, every named
/// volume is declared, and volvo-collect gets its configuration read-only and its state volume.
#[test]
fn compose_mounts_exist() {
    let declared = yaml("compose.yaml")["volumes"].as_hash().unwrap().clone();
    for pushgateway in [false, true] {
        let services = services(pushgateway);
        for (name, service) in services.as_hash().unwrap() {
            let name = name.as_str().unwrap();
            for m in mounts(service) {
                assert!(m.target.starts_with('/'), "{name}: target {}", m.target);
                if m.source.starts_with('.') {
                    let path = deploy(&m.source);
                    assert!(
                        path.is_file(),
                        "{name} mounts {}, which is not in the repository",
                        m.source
                    );
                    assert!(m.read_only, "{name} mounts {} writable", m.source);
                } else {
                    assert!(
                        declared.contains_key(&Yaml::String(m.source.clone())),
                        "volume {} is not declared",
                        m.source
                    );
                }
            }
        }
        for name in ["volvo-collect", "login"] {
            let m = mounts(&services[name]);
            let config = m
                .iter()
                .find(|m| m.target == "/etc/volvo-collect/collector.toml");
            assert!(
                config.is_some_and(|c| c.read_only && c.source == "./collector.toml"),
                "{name}: the configuration mount"
            );
            assert!(
                m.iter()
                    .any(|m| m.target == "/var/lib/volvo-collect" && !m.source.starts_with('.')),
                "{name}: no state volume"
            );
        }
    }
}

/// Guards the image the examples name: the one scripts/image builds for this version, run as
/// its user; the other images pinned to a version.
#[test]
fn examples_name_the_image_scripts_image_builds() {
    let mut named = 0;
    for (name, service) in services(true).as_hash().unwrap() {
        let name = name.as_str().unwrap();
        let image = string(service, "image", &format!("service {name}"));
        if image.starts_with("volvo-collect:") {
            assert_eq!(image, IMAGE, "service {name}");
            named += 1;
        } else {
            let tag = image.rsplit_once(':').map(|(_, t)| t).unwrap_or("");
            assert!(
                !tag.is_empty() && tag != "latest",
                "{image} is not pinned to a version"
            );
        }
    }
    assert_eq!(named, 2);
    for pod in kubernetes_pods() {
        let container = &pod["containers"][0];
        assert_eq!(string(container, "image", "a Kubernetes container"), IMAGE);
        for key in ["runAsUser", "runAsGroup", "fsGroup"] {
            assert_eq!(
                pod["securityContext"][key].as_i64(),
                Some(image_uid()),
                "{key}"
            );
        }
    }
    // The archive the comments tell to load or import.
    for file in ["compose.yaml", "kubernetes/cronjob.yaml"] {
        let text = std::fs::read_to_string(deploy(file)).unwrap();
        let archive = format!("volvo-collect-{}.oci.tar", env!("CARGO_PKG_VERSION"));
        assert!(
            text.contains(&archive),
            "deploy/{file} does not name {archive}"
        );
    }
}

/// The pod specs of the Kubernetes examples: the CronJob's and the login Pod's.
fn kubernetes_pods() -> Vec<Yaml> {
    let cronjob = yaml("kubernetes/cronjob.yaml");
    let login = yaml("kubernetes/login.yaml");
    vec![
        cronjob["spec"]["jobTemplate"]["spec"]["template"]["spec"].clone(),
        login["spec"].clone(),
    ]
}

/// Every volvo-collect command line in the examples, with where it is.
fn command_lines() -> Vec<(String, Vec<String>)> {
    let mut lines = Vec::new();
    for pushgateway in [false, true] {
        for (name, service) in services(pushgateway).as_hash().unwrap() {
            let line = (
                format!("compose service {}", name.as_str().unwrap()),
                strings(&service["command"]),
            );
            if service["image"].as_str() == Some(IMAGE) && !lines.contains(&line) {
                lines.push(line);
            }
        }
    }
    for pod in kubernetes_pods() {
        lines.push((
            "a Kubernetes pod".into(),
            strings(&pod["containers"][0]["args"]),
        ));
    }
    lines
}

/// Runs the binary with `args` and a configuration file that does not exist: a command line
/// it accepts gets as far as reading the configuration (78), a wrong one is a usage error (2).
fn parse_only(args: &[String]) -> std::process::Output {
    Command::new(BIN)
        .args(["--config", "/nonexistent/volvo-collect/collector.toml"])
        .args(args)
        .env_remove("VOLVO_COLLECT_CONFIG")
        .output()
        .unwrap()
}

/// Guards the flags the examples pass: each command line is one the binary accepts.
#[test]
fn example_command_lines_are_accepted() {
    let lines = command_lines();
    assert_eq!(lines.len(), 5, "{:?}", lines);
    for (place, args) in lines {
        assert!(!args.is_empty(), "{place}: no command");
        let out = parse_only(&args);
        assert_eq!(code(&out), 78, "{place}: {args:?}: {}", stderr(&out));
        assert_stderr_contains(&out, "cannot read configuration file");
    }
    // The method tells a wrong flag from a right one.
    let out = parse_only(&["--once".into(), "--no-such-flag".into()]);
    assert_eq!(code(&out), 2, "{}", stderr(&out));
}

/// Runs `check --offline` on configuration `text` with the given secrets in the environment.
fn check_offline(text: &str, secret: &str, api_key: &str) -> std::process::Output {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("collector.toml");
    std::fs::write(&path, text).unwrap();
    Command::new(BIN)
        .arg("--config")
        .arg(&path)
        .args(["check", "--offline"])
        .env("VOLVO_CLIENT_SECRET", secret)
        .env("VOLVO_API_KEY", api_key)
        .env_remove("CREDENTIALS_DIRECTORY")
        .output()
        .unwrap()
}

/// Guards `collector.toml.example` as the README says to use it (copied, the secrets in the
/// environment): it loads without a warning, so a cron job at `LOG_LEVEL=warn` mails nothing.
/// Its empty `[weather]` table warned on every run.
#[test]
fn the_example_configuration_loads_without_a_warning() {
    let example = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/collector.toml.example"
    ))
    .unwrap();
    let out = check_offline(&example, "a-secret", "an-api-key");
    assert_ne!(code(&out), 78, "{}", stderr(&out));
    assert!(!stderr(&out).contains("WARN"), "{}", stderr(&out));
}

/// Guards the configurations the examples mount: they load (no 78), and keep the token in the
/// state volume. The Kubernetes Secret's placeholders are refused until replaced, as its
/// comment says, and the CronJob's schedule is the configured interval.
#[test]
fn example_configurations_load_with_the_token_in_the_volume() {
    let configmap = yaml("kubernetes/configmap.yaml");
    let k8s_config = string(&configmap["data"], "collector.toml", "the ConfigMap").to_string();
    let compose_config = std::fs::read_to_string(deploy("collector.toml")).unwrap();
    for text in [&compose_config, &k8s_config] {
        let out = check_offline(text, "a-secret", "an-api-key");
        let said = format!("{}{}", stdout(&out), stderr(&out));
        assert_ne!(code(&out), 78, "{said}");
        assert!(said.contains("/var/lib/volvo-collect/token.json"), "{said}");
    }

    let secret = yaml("kubernetes/secret.yaml");
    let placeholders = &secret["stringData"];
    let out = check_offline(
        &k8s_config,
        string(placeholders, "client_secret", "the Secret"),
        string(placeholders, "api_key", "the Secret"),
    );
    assert_eq!(code(&out), 78, "{}", stderr(&out));
    assert_stderr_contains(&out, "contains a space");

    let schedule = string(
        &yaml("kubernetes/cronjob.yaml")["spec"],
        "schedule",
        "the CronJob",
    )
    .to_string();
    let minutes = schedule
        .strip_prefix("*/")
        .and_then(|s| s.split(' ').next())
        .unwrap();
    assert!(
        k8s_config.contains(&format!("interval = \"{minutes}m\"")),
        "schedule {schedule} against:\n{k8s_config}"
    );
}

/// The scrape targets (`host:port`) of a Prometheus configuration.
fn scrape_targets(config: &Yaml) -> Vec<String> {
    let mut targets = Vec::new();
    for job in config["scrape_configs"].as_vec().unwrap() {
        for group in job["static_configs"].as_vec().unwrap() {
            targets.extend(strings(&group["targets"]));
        }
    }
    targets
}

/// Guards the Prometheus configurations of both compose variants: promtool passes each with the
/// files mounted where compose mounts them (so the rule files it names are the ones mounted),
/// and it scrapes a service of the same compose file on the port volvo-collect serves or
/// pushes to.
#[test]
fn prometheus_configurations_pass_promtool_as_mounted() {
    for pushgateway in [false, true] {
        let services = services(pushgateway);
        let prometheus = &services["prometheus"];
        let config_file = strings(&prometheus["command"])
            .iter()
            .find_map(|a| a.strip_prefix("--config.file=").map(String::from))
            .unwrap_or_else(|| "/etc/prometheus/prometheus.yml".into());
        let dir = tempfile::tempdir().unwrap();
        let mut config = None;
        for m in mounts(prometheus) {
            if let Some(rel) = m.target.strip_prefix("/etc/prometheus/") {
                std::fs::copy(deploy(&m.source), dir.path().join(rel)).unwrap();
                if m.target == config_file {
                    config = Some(yaml(&m.source));
                }
            }
        }
        let config = config.unwrap_or_else(|| panic!("nothing is mounted at {config_file}"));
        let rel = config_file.strip_prefix("/etc/prometheus/").unwrap();
        let out = Command::new("promtool")
            .args(["check", "config"])
            .arg(dir.path().join(rel))
            .output()
            .expect("promtool is needed (Debian package `prometheus`)");
        assert!(
            out.status.success(),
            "promtool check config {config_file}:\n{}{}",
            stdout(&out),
            stderr(&out)
        );

        let args = strings(&services["volvo-collect"]["command"]);
        let expected = if pushgateway {
            let url = args
                .iter()
                .skip_while(|a| *a != "--pushgateway")
                .nth(1)
                .expect("--pushgateway URL");
            let u = url::Url::parse(url).unwrap();
            format!("{}:{}", u.host_str().unwrap(), u.port().unwrap())
        } else {
            let listen = args
                .iter()
                .skip_while(|a| *a != "--listen")
                .nth(1)
                .expect("--listen ADDR");
            format!("volvo-collect:{}", listen.rsplit(':').next().unwrap())
        };
        let targets = scrape_targets(&config);
        assert_eq!(
            targets,
            vec![expected.clone()],
            "Prometheus does not scrape {expected}"
        );
        let host = expected.split(':').next().unwrap();
        assert!(!services[host].is_badvalue(), "no compose service {host}");
    }
}

/// Guards Grafana's provisioning: the data source is the compose Prometheus, and the dashboard
/// provider reads the folder the dashboard is mounted into.
#[test]
fn grafana_provisioning_matches_the_mounts() {
    let services = services(false);
    let grafana = &services["grafana"];
    let mounts = mounts(grafana);
    let source_of = |target_dir: &str| {
        mounts
            .iter()
            .find(|m| m.target.starts_with(target_dir))
            .unwrap_or_else(|| panic!("nothing mounted under {target_dir}"))
            .source
            .clone()
    };

    let datasources = yaml(&source_of("/etc/grafana/provisioning/datasources/"));
    let ds = &datasources["datasources"][0];
    assert_eq!(ds["isDefault"].as_bool(), Some(true));
    let url = url::Url::parse(string(ds, "url", "the data source")).unwrap();
    assert_eq!(url.host_str(), Some("prometheus"));
    assert!(!services["prometheus"].is_badvalue());

    let providers = yaml(&source_of("/etc/grafana/provisioning/dashboards/"));
    let folder = string(
        &providers["providers"][0]["options"],
        "path",
        "the dashboard provider",
    );
    let dashboard = mounts
        .iter()
        .find(|m| m.source == "../dashboards/volvo.json")
        .expect("the dashboard is mounted");
    assert_eq!(
        Path::new(&dashboard.target).parent(),
        Some(Path::new(folder))
    );
}

/// The metadata.name of the manifest of `kind` among kustomization.yaml's resources.
fn resource_name(kind: &str) -> String {
    let kustomization = yaml("kubernetes/kustomization.yaml");
    for file in strings(&kustomization["resources"]) {
        let doc = yaml(&format!("kubernetes/{file}"));
        if doc["kind"].as_str() == Some(kind) {
            return string(&doc["metadata"], "name", &file).to_string();
        }
    }
    panic!("no {kind} among kustomization.yaml's resources")
}

/// Guards the Kubernetes manifests fitting together: the CronJob never overlaps runs, and it
/// and the login Pod use the ConfigMap read-only at /etc/volvo-collect, the claim at
/// /var/lib/volvo-collect, and the Secret's keys as the secrets' variables.
#[test]
fn kubernetes_manifests_fit_together() {
    let cronjob = yaml("kubernetes/cronjob.yaml");
    assert_eq!(
        cronjob["spec"]["concurrencyPolicy"].as_str(),
        Some("Forbid")
    );
    let (configmap, claim, secret) = (
        resource_name("ConfigMap"),
        resource_name("PersistentVolumeClaim"),
        resource_name("Secret"),
    );
    let secret_doc = yaml("kubernetes/secret.yaml");
    for pod in kubernetes_pods() {
        let volumes = pod["volumes"].as_vec().unwrap();
        let volume_named = |kind: &str, key: &str, name: &str| {
            volumes
                .iter()
                .find(|v| v[kind][key].as_str() == Some(name))
                .map(|v| string(v, "name", "a volume").to_string())
                .unwrap_or_else(|| panic!("no {kind} volume of {name}"))
        };
        let config = volume_named("configMap", "name", &configmap);
        let state = volume_named("persistentVolumeClaim", "claimName", &claim);
        let container = &pod["containers"][0];
        let mounts = container["volumeMounts"].as_vec().unwrap();
        let mount = |name: &str| {
            mounts
                .iter()
                .find(|m| m["name"].as_str() == Some(name))
                .unwrap_or_else(|| panic!("{name} is not mounted"))
        };
        assert_eq!(
            mount(&config)["mountPath"].as_str(),
            Some("/etc/volvo-collect")
        );
        assert_eq!(mount(&config)["readOnly"].as_bool(), Some(true));
        assert_eq!(
            mount(&state)["mountPath"].as_str(),
            Some("/var/lib/volvo-collect")
        );
        assert_eq!(
            container["securityContext"]["readOnlyRootFilesystem"].as_bool(),
            Some(true)
        );

        let mut vars = Vec::new();
        for var in container["env"].as_vec().unwrap() {
            let reference = &var["valueFrom"]["secretKeyRef"];
            assert_eq!(reference["name"].as_str(), Some(secret.as_str()));
            let key = string(reference, "key", "a secretKeyRef");
            assert!(
                !secret_doc["stringData"][key].is_badvalue(),
                "the Secret has no {key}"
            );
            vars.push(string(var, "name", "an env var").to_string());
        }
        vars.sort();
        assert_eq!(vars, ["VOLVO_API_KEY", "VOLVO_CLIENT_SECRET"]);
    }
}
