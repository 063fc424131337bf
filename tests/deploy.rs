//! Every file under `deploy/` is parsed and checked: the TOML configurations through lifeboat's
//! own loaders (unknown keys refused) and the trial policy through `lifeboat policy check`; the
//! systemd units with `systemd-analyze verify` and `security`, plus their hardening directives;
//! the compose file and the Kubernetes manifests as YAML with structural checks (images, shared
//! database, probes on the configured port, secrets only by reference, referenced files exist);
//! the Containerfile line by line; and `garage-init.sh` against a real Garage server.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::Command;

use lifeboat::agent::config::AgentConfig;
use lifeboat::coordinator::config::CoordinatorConfig;
use serde::Deserialize;
use serde_json::Value;

fn deploy() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("deploy")
}

fn read(rel: &str) -> String {
    std::fs::read_to_string(deploy().join(rel)).unwrap_or_else(|e| panic!("deploy/{rel}: {e}"))
}

/// Every YAML document of `text`, merge keys (`<<: *anchor`) applied, as JSON values.
fn yaml_docs(name: &str, text: &str) -> Vec<Value> {
    yaml_serde::Deserializer::from_str(text)
        .map(|doc| {
            let mut v = yaml_serde::Value::deserialize(doc)
                .unwrap_or_else(|e| panic!("{name}: not YAML: {e}"));
            // Merges nest (an anchor that merges another): apply until none is left.
            for _ in 0..4 {
                v.apply_merge().unwrap();
            }
            let json = serde_json::to_value(&v).unwrap();
            assert!(
                !json.to_string().contains("\"<<\""),
                "{name}: merge keys left"
            );
            json
        })
        .collect()
}

fn coordinator_config(rel: &str) -> CoordinatorConfig {
    CoordinatorConfig::load(&deploy().join(rel)).unwrap_or_else(|p| panic!("{p}"))
}

fn agent_config(rel: &str) -> AgentConfig {
    AgentConfig::load(&deploy().join(rel)).unwrap_or_else(|p| panic!("{p}"))
}

const AGENT_EXAMPLES: [&str; 3] = [
    "examples/agent-branch-linfen.toml",
    "examples/agent-branch-yuncheng.toml",
    "examples/agent-standby.toml",
];

/// The version every lifeboat image is tagged with.
fn version() -> &'static str {
    env!("CARGO_PKG_VERSION")
}

// ---------------------------------------------------------------------------------------------
// TOML

#[test]
fn every_toml_config_loads_through_lifeboats_parsers() {
    coordinator_config("coordinator.toml");
    agent_config("agent.toml");
    let pg = coordinator_config("examples/coordinator-postgres.toml");
    assert!(pg.database.starts_with("postgres://"), "{}", pg.database);
    // No password in the URL: user@host only.
    let authority = pg.database["postgres://".len()..]
        .split('@')
        .next()
        .unwrap();
    assert!(!authority.contains(':'), "a password in {}", pg.database);
    for rel in AGENT_EXAMPLES {
        agent_config(rel);
    }
    // Every *.toml under deploy/ is one of the above, the trial policy, or Garage's.
    let mut all = Vec::new();
    let mut stack = vec![deploy()];
    while let Some(dir) = stack.pop() {
        for e in std::fs::read_dir(dir).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                stack.push(p);
            } else if p.extension().is_some_and(|x| x == "toml") {
                all.push(p.strip_prefix(deploy()).unwrap().display().to_string());
            }
        }
    }
    let known: BTreeSet<&str> = [
        "coordinator.toml",
        "agent.toml",
        "examples/coordinator-postgres.toml",
        "garage.toml",
    ]
    .into_iter()
    .chain(AGENT_EXAMPLES)
    .collect();
    for f in &all {
        assert!(
            known.contains(f.as_str()) || f.starts_with("examples/policies/"),
            "deploy/{f} is checked by no test"
        );
    }
}

#[test]
fn the_trial_policy_passes_policy_check() {
    let out = common::lifeboat()
        .args(["policy", "check"])
        .arg(deploy().join("examples/policies"))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    // Every agent host of the trial has work in it (systems, or the drill's standby host), so
    // its enrolment token can be issued; the setup script issues one per agent.
    let setup = read("compose-setup.sh");
    for rel in AGENT_EXAMPLES {
        let cfg = agent_config(rel);
        let pair = format!("{}:{}", cfg.host.as_deref().unwrap(), cfg.site);
        assert!(
            setup.contains(&pair),
            "compose-setup.sh issues no token for {pair}"
        );
    }
}

#[test]
fn garage_toml_names_its_secrets_by_file() {
    let g: toml::Table = toml::from_str(&read("garage.toml")).unwrap();
    assert_eq!(g["replication_factor"].as_integer(), Some(1));
    assert!(!g.contains_key("rpc_secret"), "the RPC secret is inline");
    assert!(
        g["rpc_secret_file"]
            .as_str()
            .unwrap()
            .starts_with("/run/secrets/")
    );
    let admin = g["admin"].as_table().unwrap();
    assert!(
        !admin.contains_key("admin_token"),
        "the admin token is inline"
    );
    assert!(
        admin["admin_token_file"]
            .as_str()
            .unwrap()
            .starts_with("/run/secrets/")
    );
    assert!(
        g["s3_api"]["api_bind_addr"]
            .as_str()
            .unwrap()
            .ends_with(":3900")
    );
}

// ---------------------------------------------------------------------------------------------
// systemd

/// `Key=value` lines of a unit file, in order (a key may repeat).
fn unit_directives(text: &str) -> Vec<(String, String)> {
    text.lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#') && !l.starts_with('['))
        .map(|l| {
            let (k, v) = l
                .split_once('=')
                .unwrap_or_else(|| panic!("not a directive: {l}"));
            (k.to_string(), v.to_string())
        })
        .collect()
}

fn directive<'a>(d: &'a [(String, String)], key: &str) -> Vec<&'a str> {
    d.iter()
        .filter(|(k, _)| k == key)
        .map(|(_, v)| v.as_str())
        .collect()
}

fn systemd_analyze(args: &[&str], files: &[&Path]) -> std::process::Output {
    let analyze = Path::new("/usr/bin/systemd-analyze");
    assert!(
        analyze.exists(),
        "systemd-analyze not found: run ./tests/run.sh or `apt-get install systemd`"
    );
    Command::new(analyze)
        .args(args)
        .args(files)
        .output()
        .unwrap()
}

#[test]
fn the_coordinator_units_verify_and_are_hardened() {
    let dir = tempfile::tempdir().unwrap();
    let names = [
        "lifeboat-coordinator.service",
        "lifeboat-coordinator-backup.service",
        "lifeboat-coordinator-backup.timer",
    ];
    let mut paths = Vec::new();
    for name in names {
        // verify checks that ExecStart's binary exists: point it at the one under test.
        let text = read(name).replace("/usr/local/bin/lifeboat", env!("CARGO_BIN_EXE_lifeboat"));
        let path = dir.path().join(name);
        std::fs::write(&path, text).unwrap();
        paths.push(path);
    }
    let refs: Vec<&Path> = paths.iter().map(PathBuf::as_path).collect();
    let out = systemd_analyze(&["verify"], &refs);
    assert!(
        out.status.success(),
        "systemd-analyze verify: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    for path in &refs[..2] {
        let out = systemd_analyze(&["security", "--offline=true", "--threshold=20"], &[path]);
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(
            out.status.success(),
            "{}: exposure above 2.0:\n{text}",
            path.display()
        );
    }

    let unit = read("lifeboat-coordinator.service");
    let d = unit_directives(&unit);
    let one = |k: &str| {
        let v = directive(&d, k);
        assert_eq!(v.len(), 1, "{k}: {v:?}");
        v[0].to_string()
    };
    // A dedicated unprivileged user, declared by the shipped sysusers.d file.
    assert_eq!(one("User"), "lifeboat");
    let sysusers = read("lifeboat.sysusers");
    assert!(
        sysusers
            .lines()
            .any(|l| l.split_whitespace().take(2).eq(["u", "lifeboat"])),
        "{sysusers}"
    );
    for (k, v) in [
        ("NoNewPrivileges", "yes"),
        ("CapabilityBoundingSet", ""),
        ("ProtectSystem", "strict"),
        ("ProtectHome", "yes"),
        ("PrivateTmp", "yes"),
        ("PrivateDevices", "yes"),
        ("RestrictSUIDSGID", "yes"),
        ("SystemCallArchitectures", "native"),
        ("UMask", "0077"),
        ("RestartPreventExitStatus", "3"),
    ] {
        assert_eq!(one(k), v, "{k}");
    }
    // Writable: the state directory only, where the database lives.
    let state = one("StateDirectory");
    assert_eq!(one("ReadWritePaths"), format!("/var/lib/{state}"));
    assert!(
        directive(&d, "SystemCallFilter").contains(&"@system-service"),
        "{d:?}"
    );
    // systemctl reload re-reads the TLS certificate.
    assert!(one("ExecReload").contains("-HUP $MAINPID"));
    // Its example configuration keeps the database in that state directory.
    let toml = coordinator_config("coordinator.toml");
    assert_eq!(
        toml.database,
        format!("sqlite:///var/lib/{state}/coordinator.db")
    );

    // The nightly copy uses backup-db on the same state directory and keeps to it.
    let backup = unit_directives(&read("lifeboat-coordinator-backup.service"));
    let exec = directive(&backup, "ExecStart")[0];
    assert!(exec.contains("backup-db --to /var/lib/lifeboat-coordinator/backups/"));
    assert_eq!(directive(&backup, "User"), ["lifeboat"]);
    assert_eq!(directive(&backup, "PrivateNetwork"), ["yes"]);
}

// ---------------------------------------------------------------------------------------------
// compose

/// Keys whose value would be a secret if written inline.
fn secret_like(key: &str) -> bool {
    let k = key.to_ascii_uppercase();
    ["PASSWORD", "TOKEN", "SECRET", "KEY"]
        .iter()
        .any(|w| k.contains(w))
}

fn strs(v: &Value) -> Vec<String> {
    v.as_array()
        .map(|a| a.iter().map(|x| x.as_str().unwrap().to_string()).collect())
        .unwrap_or_default()
}

#[test]
fn the_compose_trial_is_consistent() {
    let docs = yaml_docs("compose.yaml", &read("compose.yaml"));
    assert_eq!(docs.len(), 1);
    let c = &docs[0];
    let services = c["services"].as_object().unwrap();
    let names: BTreeSet<&str> = services.keys().map(String::as_str).collect();
    for s in [
        "postgres",
        "garage",
        "garage-init",
        "setup",
        "coordinator-1",
        "coordinator-2",
        "agent-linfen",
        "agent-yuncheng",
        "agent-standby",
    ] {
        assert!(names.contains(s), "no service {s}");
    }
    let declared: BTreeMap<&str, &Value> = c["secrets"]
        .as_object()
        .unwrap()
        .iter()
        .map(|(k, v)| (k.as_str(), v))
        .collect();
    let make_secrets = read("compose-secrets.sh");
    for (name, s) in &declared {
        // Secrets are files made by compose-secrets.sh, never values in the compose file.
        assert_eq!(s["file"], format!("./secrets/{name}"), "secret {name}");
        assert!(
            make_secrets.contains(&format!("\nnew {name} ")),
            "compose-secrets.sh does not create {name}"
        );
    }
    assert!(read(".gitignore").lines().any(|l| l == "secrets/"));
    let containerfile = read("Containerfile");
    let stages = containerfile_stages(&containerfile);

    let mut coordinators = Vec::new();
    for (name, s) in services {
        // Environment: no inline secret; secret-looking keys name files under /run/secrets.
        if let Some(env) = s["environment"].as_object() {
            for (k, v) in env {
                if secret_like(k) {
                    assert!(
                        k.ends_with("_FILE") && v.as_str().unwrap().starts_with("/run/secrets/"),
                        "{name}: {k} is not a file reference"
                    );
                }
            }
        }
        assert!(
            s["environment"].as_array().is_none(),
            "{name}: use the map form"
        );
        // Every secret used is declared, and every /run/secrets path it is told about is mounted.
        let used = strs(&s["secrets"]);
        for u in &used {
            assert!(declared.contains_key(u.as_str()), "{name}: secret {u}");
        }
        let text = s.to_string();
        for (i, _) in text.match_indices("/run/secrets/") {
            let rest = &text[i + "/run/secrets/".len()..];
            let secret: String = rest
                .chars()
                .take_while(|c| c.is_ascii_alphanumeric() || *c == '-')
                .collect();
            assert!(used.contains(&secret), "{name} reads {secret} unmounted");
        }
        // Bind mounts: every file exists (relative to deploy/).
        for v in strs(&s["volumes"]) {
            let source = v.split(':').next().unwrap();
            if source.starts_with("./") {
                assert!(
                    deploy().join(source).exists(),
                    "{name}: {source} does not exist"
                );
            }
        }
        // lifeboat's images: one version, built from the Containerfile's stages.
        let image = s["image"].as_str().unwrap();
        if image.contains("lifeboat") {
            assert!(
                image.ends_with(&format!(":{}", version())),
                "{name}: {image}"
            );
            assert_eq!(s["build"]["dockerfile"], "deploy/Containerfile");
            assert_eq!(s["build"]["context"], "..");
            let target = s["build"]["target"].as_str().unwrap();
            assert!(stages.contains(target), "{name}: no stage {target}");
            assert_eq!(s["user"], "10001:10001", "{name}");
            assert_eq!(s["read_only"], true, "{name}");
            assert_eq!(strs(&s["cap_drop"]), ["ALL"], "{name}");
        } else {
            assert!(
                image
                    .rsplit_once(':')
                    .is_some_and(|(_, tag)| tag != "latest"),
                "{name}: pin {image}"
            );
        }
        if strs(&s["command"]).first().map(String::as_str) == Some("coordinator") {
            coordinators.push((name.as_str(), s));
        }
    }

    // Two replicas or more, one configuration (so one database), the password by secret.
    assert!(coordinators.len() >= 2, "{coordinators:?}");
    let mut configs = BTreeSet::new();
    for (name, s) in &coordinators {
        let vols = strs(&s["volumes"]);
        let config = vols
            .iter()
            .find(|v| v.contains(":/etc/lifeboat/coordinator.toml"))
            .unwrap_or_else(|| panic!("{name}: no coordinator.toml"));
        configs.insert(config.split(':').next().unwrap().to_string());
        assert!(strs(&s["secrets"]).contains(&"db-password".to_string()));
        let entry = strs(&s["entrypoint"]).join(" ");
        assert!(entry.contains("PGPASSWORD=") && entry.contains("/run/secrets/db-password"));
    }
    assert_eq!(configs.len(), 1, "{configs:?}");
    let rel = configs
        .first()
        .unwrap()
        .trim_start_matches("./")
        .to_string();
    let cfg = coordinator_config(&rel);
    assert!(cfg.database.starts_with("postgres://"));
    let db_host = cfg
        .database
        .split('@')
        .nth(1)
        .unwrap()
        .split([':', '/'])
        .next();
    assert_eq!(db_host, Some("postgres"));
    let port = cfg.listen.port();
    for (name, s) in &coordinators {
        let check = strs(&s["healthcheck"]["test"]).join(" ");
        assert!(
            check.contains(&format!("127.0.0.1:{port}/readyz")),
            "{name}: {check}"
        );
    }

    // Agents: each reaches a coordinator service on its port, holds its enrolment token in
    // the shared volume, and has the secrets its systems' repositories read.
    let policy = std::fs::read_dir(deploy().join("examples/policies"))
        .unwrap()
        .map(|e| std::fs::read_to_string(e.unwrap().path()).unwrap())
        .collect::<String>();
    for (name, s) in services.iter().filter(|(n, _)| n.starts_with("agent-")) {
        let vols = strs(&s["volumes"]);
        let config = vols
            .iter()
            .find(|v| v.ends_with(":/etc/lifeboat/agent.toml:ro"))
            .unwrap_or_else(|| panic!("{name}: no agent.toml"));
        let rel = config.split(':').next().unwrap().trim_start_matches("./");
        let cfg = agent_config(rel);
        let coord = cfg.coordinator.as_ref().unwrap();
        let url = coord.url.to_string();
        let target = url
            .trim_start_matches("http://")
            .trim_end_matches('/')
            .to_string();
        let (svc, p) = target.split_once(':').unwrap();
        assert!(services.contains_key(svc), "{name}: {url}");
        assert_eq!(p, port.to_string(), "{name}: {url}");
        assert_eq!(s["hostname"].as_str(), cfg.host.as_deref(), "{name}");
        assert!(vols.contains(&"enrol:/run/lifeboat-enrol:ro".to_string()));
        // The systems of this host read these secrets.
        let used = strs(&s["secrets"]);
        for secret in ["garage-key-id", "garage-secret-key"] {
            assert!(used.contains(&secret.to_string()), "{name}: {secret}");
        }
        let site = &cfg.site;
        if policy.contains(&format!("repo-password-{site}")) {
            assert!(used.contains(&format!("repo-password-{site}")), "{name}");
        }
    }
    // Every /run/secrets file named by the trial policy is a declared secret.
    for (i, _) in policy.match_indices("/run/secrets/") {
        let secret: String = policy[i + "/run/secrets/".len()..]
            .chars()
            .take_while(|c| c.is_ascii_alphanumeric() || *c == '-')
            .collect();
        assert!(declared.contains_key(secret.as_str()), "policy: {secret}");
    }
}

// ---------------------------------------------------------------------------------------------
// Kubernetes

fn k8s_docs() -> Vec<(String, Value)> {
    let mut out = Vec::new();
    let mut files: Vec<PathBuf> = std::fs::read_dir(deploy().join("k8s"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    files.sort();
    for f in files {
        let name = f.file_name().unwrap().to_string_lossy().into_owned();
        assert!(name.ends_with(".yaml"), "deploy/k8s/{name}");
        for doc in yaml_docs(&name, &std::fs::read_to_string(&f).unwrap()) {
            out.push((name.clone(), doc));
        }
    }
    out
}

fn find<'a>(docs: &'a [(String, Value)], kind: &str, name: &str) -> &'a Value {
    docs.iter()
        .map(|(_, d)| d)
        .find(|d| d["kind"] == kind && d["metadata"]["name"] == name)
        .unwrap_or_else(|| panic!("no {kind} {name}"))
}

#[test]
fn the_kubernetes_manifests_are_consistent() {
    let docs = k8s_docs();
    for (file, d) in &docs {
        assert!(
            d["apiVersion"].is_string() && d["kind"].is_string(),
            "{file}"
        );
        if d["kind"] != "Kustomization" && d["kind"] != "Namespace" {
            assert_eq!(d["metadata"]["namespace"], "lifeboat", "{file}: {d}");
        }
        // Secrets only as empty templates.
        if d["kind"] == "Secret" {
            assert_eq!(file, "secrets.template.yaml");
            assert!(d["data"].is_null(), "{file}");
            for (k, v) in d["stringData"].as_object().unwrap() {
                assert_eq!(v, "", "{file}: {k} has a value");
            }
        }
    }
    // kustomize applies every manifest but the secret templates.
    let kustomization = find_kind(&docs, "Kustomization");
    let listed: BTreeSet<String> = strs(&kustomization["resources"]).into_iter().collect();
    let files: BTreeSet<String> = docs
        .iter()
        .map(|(f, _)| f.clone())
        .filter(|f| f != "kustomization.yaml" && f != "secrets.template.yaml")
        .collect();
    assert_eq!(listed, files);

    // The ConfigMaps hold the example configuration and policy, byte for byte.
    let cm = find(&docs, "ConfigMap", "lifeboat-coordinator");
    let toml = cm["data"]["coordinator.toml"].as_str().unwrap();
    assert_eq!(toml, read("examples/coordinator-postgres.toml"));
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("coordinator.toml"), toml).unwrap();
    let cfg = CoordinatorConfig::load(&dir.path().join("coordinator.toml")).unwrap();
    let policies = find(&docs, "ConfigMap", "lifeboat-policies");
    let policy_files: BTreeMap<String, String> =
        std::fs::read_dir(deploy().join("examples/policies"))
            .unwrap()
            .map(|e| {
                let p = e.unwrap().path();
                (
                    p.file_name().unwrap().to_string_lossy().into_owned(),
                    std::fs::read_to_string(&p).unwrap(),
                )
            })
            .collect();
    let in_map: BTreeMap<String, String> = policies["data"]
        .as_object()
        .unwrap()
        .iter()
        .map(|(k, v)| (k.clone(), v.as_str().unwrap().to_string()))
        .collect();
    assert_eq!(in_map, policy_files, "regenerate deploy/k8s/configmap.yaml");

    let deployment = find(&docs, "Deployment", "lifeboat-coordinator");
    let spec = &deployment["spec"];
    assert!(
        spec["replicas"].as_u64().unwrap() >= 2,
        "replicas share PostgreSQL"
    );
    let labels = &spec["template"]["metadata"]["labels"];
    assert_eq!(
        spec["selector"]["matchLabels"]["app.kubernetes.io/name"],
        labels["app.kubernetes.io/name"]
    );
    let pod = &spec["template"]["spec"];
    assert_eq!(pod["securityContext"]["runAsNonRoot"], true);
    assert_eq!(pod["automountServiceAccountToken"], false);
    let containers = pod["containers"].as_array().unwrap();
    assert_eq!(containers.len(), 1);
    let c = &containers[0];
    assert_eq!(
        c["image"],
        format!("localhost/lifeboat-coordinator:{}", version())
    );
    let sc = &c["securityContext"];
    assert_eq!(sc["readOnlyRootFilesystem"], true);
    assert_eq!(sc["allowPrivilegeEscalation"], false);
    assert_eq!(strs(&sc["capabilities"]["drop"]), ["ALL"]);
    assert!(c["resources"]["requests"]["cpu"].is_string());
    assert!(c["resources"]["requests"]["memory"].is_string());
    assert!(c["resources"]["limits"]["memory"].is_string());
    // The port is the configured one; probes: readiness on /readyz, liveness on /healthz.
    let ports = c["ports"].as_array().unwrap();
    let http = ports.iter().find(|p| p["name"] == "http").unwrap();
    assert_eq!(http["containerPort"], cfg.listen.port());
    assert_eq!(c["readinessProbe"]["httpGet"]["path"], "/readyz");
    assert_eq!(c["livenessProbe"]["httpGet"]["path"], "/healthz");
    for probe in ["readinessProbe", "livenessProbe", "startupProbe"] {
        assert_eq!(c[probe]["httpGet"]["port"], "http", "{probe}");
    }
    // The password by reference only; every env var with a secret-looking name is one.
    for e in c["env"].as_array().unwrap() {
        let name = e["name"].as_str().unwrap();
        if secret_like(name) {
            assert!(e["value"].is_null(), "{name} inline");
            let r = &e["valueFrom"]["secretKeyRef"];
            let secret = find(&docs, "Secret", r["name"].as_str().unwrap());
            assert!(secret["stringData"][r["key"].as_str().unwrap()].is_string());
        }
    }
    assert!(
        c["env"]
            .as_array()
            .unwrap()
            .iter()
            .any(|e| e["name"] == "PGPASSWORD")
    );
    // Mounts: the ConfigMaps; writable only tmp and home (emptyDir).
    let volumes: BTreeMap<&str, &Value> = pod["volumes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| (v["name"].as_str().unwrap(), v))
        .collect();
    for m in c["volumeMounts"].as_array().unwrap() {
        let v = volumes[m["name"].as_str().unwrap()];
        if let Some(cm) = v["configMap"]["name"].as_str() {
            find(&docs, "ConfigMap", cm);
            assert_eq!(m["readOnly"], true);
        } else {
            assert!(v["emptyDir"].is_object(), "{v}");
        }
    }

    let svc = find(&docs, "Service", "lifeboat-coordinator");
    assert_eq!(svc["spec"]["selector"], spec["selector"]["matchLabels"]);
    assert_eq!(svc["spec"]["ports"][0]["targetPort"], "http");
    let pdb = find(&docs, "PodDisruptionBudget", "lifeboat-coordinator");
    assert_eq!(
        pdb["spec"]["selector"]["matchLabels"],
        spec["selector"]["matchLabels"]
    );
    assert!(pdb["spec"]["minAvailable"].as_u64().unwrap() >= 1);
    let np = find(&docs, "NetworkPolicy", "lifeboat-coordinator");
    assert_eq!(
        np["spec"]["podSelector"]["matchLabels"],
        spec["selector"]["matchLabels"]
    );
    assert_eq!(
        np["spec"]["ingress"][0]["ports"][0]["port"],
        cfg.listen.port()
    );
    let ns = find(&docs, "Namespace", "lifeboat");
    assert_eq!(
        ns["metadata"]["labels"]["pod-security.kubernetes.io/enforce"],
        "restricted"
    );
}

fn find_kind<'a>(docs: &'a [(String, Value)], kind: &str) -> &'a Value {
    docs.iter()
        .map(|(_, d)| d)
        .find(|d| d["kind"] == kind)
        .unwrap_or_else(|| panic!("no {kind}"))
}

// ---------------------------------------------------------------------------------------------
// Containerfile

/// Instructions of a Containerfile: (keyword, arguments), continuation lines joined.
fn containerfile(text: &str) -> Vec<(String, String)> {
    let mut out = Vec::new();
    let mut current = String::new();
    for line in text.lines() {
        let t = line.trim();
        if t.starts_with('#') || (t.is_empty() && current.is_empty()) {
            continue;
        }
        if let Some(head) = t.strip_suffix('\\') {
            current.push_str(head);
            current.push(' ');
            continue;
        }
        current.push_str(t);
        let (k, rest) = current.split_once(' ').unwrap_or((current.as_str(), ""));
        out.push((k.to_string(), rest.trim().to_string()));
        current.clear();
    }
    assert!(current.is_empty(), "a continuation at the end");
    out
}

fn containerfile_stages(text: &str) -> BTreeSet<String> {
    containerfile(text)
        .iter()
        .filter(|(k, _)| k == "FROM")
        .filter_map(|(_, a)| a.split_once(" AS ").map(|(_, s)| s.trim().to_string()))
        .collect()
}

#[test]
fn the_containerfile_builds_locked_and_runs_unprivileged() {
    let text = read("Containerfile");
    let ins = containerfile(&text);
    const KNOWN: [&str; 18] = [
        "FROM",
        "RUN",
        "CMD",
        "LABEL",
        "EXPOSE",
        "ENV",
        "ADD",
        "COPY",
        "ENTRYPOINT",
        "VOLUME",
        "USER",
        "WORKDIR",
        "ARG",
        "ONBUILD",
        "STOPSIGNAL",
        "HEALTHCHECK",
        "SHELL",
        "MAINTAINER",
    ];
    for (k, a) in &ins {
        assert!(KNOWN.contains(&k.as_str()), "unknown instruction {k} {a}");
    }
    assert_eq!(
        containerfile_stages(&text),
        ["builder", "coordinator", "runtime"]
            .map(String::from)
            .into_iter()
            .collect()
    );
    // Stage by stage: who runs the image of each final stage, what it installs.
    let mut stage = String::new();
    let mut user: BTreeMap<String, String> = BTreeMap::new();
    let mut runs: BTreeMap<String, String> = BTreeMap::new();
    for (k, a) in &ins {
        match k.as_str() {
            "FROM" => {
                let (base, name) = a.split_once(" AS ").unwrap();
                stage = name.to_string();
                // A stage built on another inherits its user.
                if let Some(u) = user.get(base.trim()).cloned() {
                    user.insert(stage.clone(), u);
                }
                assert!(
                    base.contains(':') || user.contains_key(base.trim()),
                    "pin {base}"
                );
            }
            "USER" => {
                user.insert(stage.clone(), a.clone());
            }
            "RUN" => runs.entry(stage.clone()).or_default().push_str(a),
            "COPY" => {
                let parts: Vec<&str> = a.split_whitespace().collect();
                if !parts[0].starts_with("--from") {
                    for src in &parts[..parts.len() - 1] {
                        let p = Path::new(env!("CARGO_MANIFEST_DIR")).join(src);
                        assert!(p.exists(), "COPY {src}: no such file");
                    }
                }
            }
            _ => {}
        }
    }
    assert!(runs["builder"].contains("cargo build --release --locked"));
    for final_stage in ["runtime", "coordinator"] {
        let u = &user[final_stage];
        assert!(u != "root" && u != "0", "{final_stage} runs as {u}");
    }
    assert!(runs["runtime"].contains("useradd --system --uid 10001"));
    for pkg in ["ca-certificates", "restic", "curl"] {
        assert!(runs["runtime"].contains(pkg), "runtime: {pkg}");
    }
    for pkg in ["chromium", "fonts-noto-cjk"] {
        assert!(runs["coordinator"].contains(pkg), "coordinator: {pkg}");
    }
    let health: Vec<&String> = ins
        .iter()
        .filter(|(k, _)| k == "HEALTHCHECK")
        .map(|(_, a)| a)
        .collect();
    assert_eq!(health.len(), 1);
    assert!(
        health[0].contains("127.0.0.1:8443/healthz"),
        "{}",
        health[0]
    );
    let port = coordinator_config("examples/coordinator-postgres.toml")
        .listen
        .port();
    assert!(
        ins.iter()
            .any(|(k, a)| k == "EXPOSE" && *a == port.to_string())
    );
}

// ---------------------------------------------------------------------------------------------
// Scripts

#[test]
fn garage_init_prepares_a_real_garage_and_is_idempotent() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let [rpc, s3, admin] = [0; 3].map(|_| common::free_port());
    let secret = |name: &str, value: &str| {
        use std::os::unix::fs::PermissionsExt;
        let p = d.join(name);
        std::fs::write(&p, value).unwrap();
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o600)).unwrap();
        p.display().to_string()
    };
    let rpc_secret = secret("rpc", &"ab".repeat(32));
    let admin_token = secret("admin", &"cd".repeat(16));
    let key_id = secret("key-id", common::GARAGE_ACCESS_KEY_ID);
    let key = secret("key", common::GARAGE_SECRET_ACCESS_KEY);
    // deploy/garage.toml with this machine's paths and ports.
    let config = read("garage.toml")
        .replace("/var/lib/garage", &d.display().to_string())
        .replace("[::]:3901", &format!("127.0.0.1:{rpc}"))
        .replace("garage:3901", &format!("127.0.0.1:{rpc}"))
        .replace("[::]:3900", &format!("127.0.0.1:{s3}"))
        .replace("[::]:3903", &format!("127.0.0.1:{admin}"))
        .replace("/run/secrets/garage-rpc-secret", &rpc_secret)
        .replace("/run/secrets/garage-admin-token", &admin_token);
    let config_path = d.join("garage.toml");
    std::fs::write(&config_path, config).unwrap();
    let garage = common::garage_bin();
    let log = std::fs::File::create(d.join("garage.log")).unwrap();
    struct Kill(std::process::Child);
    impl Drop for Kill {
        fn drop(&mut self) {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }
    let _server = Kill(
        Command::new(&garage)
            .arg("-c")
            .arg(&config_path)
            .arg("server")
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .unwrap(),
    );
    let init = || {
        Command::new("sh")
            .arg(deploy().join("garage-init.sh"))
            .arg(format!("http://127.0.0.1:{admin}"))
            .env("GARAGE_ADMIN_TOKEN_FILE", &admin_token)
            .env("GARAGE_KEY_ID_FILE", &key_id)
            .env("GARAGE_SECRET_KEY_FILE", &key)
            .output()
            .unwrap()
    };
    let first = init();
    let log_text = || std::fs::read_to_string(d.join("garage.log")).unwrap_or_default();
    assert!(
        first.status.success(),
        "{}{}\n{}",
        String::from_utf8_lossy(&first.stdout),
        String::from_utf8_lossy(&first.stderr),
        log_text()
    );
    let text = String::from_utf8_lossy(&first.stdout);
    assert!(text.contains("layout applied"), "{text}");
    assert!(text.contains("bucket lifeboat-offsite created"), "{text}");
    let again = init();
    assert!(again.status.success());
    let text = String::from_utf8_lossy(&again.stdout);
    assert!(
        !text.contains("created") && !text.contains("applied"),
        "{text}"
    );
    // The key may read, write and own the bucket.
    let info = Command::new(&garage)
        .arg("-c")
        .arg(&config_path)
        .args(["bucket", "info", "lifeboat-offsite"])
        .output()
        .unwrap();
    let info = String::from_utf8_lossy(&info.stdout);
    assert!(
        info.lines()
            .any(|l| l.contains("RWO") && l.contains(common::GARAGE_ACCESS_KEY_ID)),
        "{info}"
    );
    // No secret value reached the output.
    for out in [&first, &again] {
        let all = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(!all.contains(common::GARAGE_SECRET_ACCESS_KEY));
        assert!(!all.contains(&"cd".repeat(16)));
    }
}

#[test]
fn compose_secrets_makes_files_only_their_reader_can_read() {
    let dir = tempfile::tempdir().unwrap();
    let out = Command::new("sh")
        .arg(deploy().join("compose-secrets.sh"))
        .arg(dir.path())
        .output()
        .unwrap();
    if !out.status.success() {
        // chown needs root; CI runs as root.
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(
            err.contains("chown") && !is_root(),
            "compose-secrets.sh: {err}"
        );
        return;
    }
    use std::os::unix::fs::MetadataExt;
    let compose = yaml_docs("compose.yaml", &read("compose.yaml"));
    for name in compose[0]["secrets"].as_object().unwrap().keys() {
        let meta = std::fs::metadata(dir.path().join(name)).unwrap();
        assert!(meta.len() >= 16, "{name} is short");
        let mode = meta.mode() & 0o777;
        if name == "db-password" {
            assert_eq!((mode, meta.uid(), meta.gid()), (0o640, 999, 10001));
        } else {
            assert_eq!(mode, 0o600, "{name}");
        }
    }
    // Run again: nothing changes.
    let before = std::fs::read(dir.path().join("admin-password")).unwrap();
    let out = Command::new("sh")
        .arg(deploy().join("compose-secrets.sh"))
        .arg(dir.path())
        .output()
        .unwrap();
    assert!(out.status.success());
    assert_eq!(
        std::fs::read(dir.path().join("admin-password")).unwrap(),
        before
    );
}

fn is_root() -> bool {
    std::process::Command::new("id")
        .arg("-u")
        .output()
        .map(|o| o.stdout.starts_with(b"0\n"))
        .unwrap_or(false)
}
