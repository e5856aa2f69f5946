//! Reading and validating scenario files. Every error names the file, the line
//! and column, and the field (as a path like `checks[2].protocol`).

use super::model::*;
use crate::features;
use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::path::{Path, PathBuf};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScenarioError {
    pub file: PathBuf,
    pub line: Option<usize>,
    pub column: Option<usize>,
    /// Field path, e.g. `checks[0].from`; empty for the whole document.
    pub field: String,
    pub message: String,
}

impl fmt::Display for ScenarioError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.file.display())?;
        if let Some(line) = self.line {
            write!(f, ":{line}")?;
            if let Some(col) = self.column {
                write!(f, ":{col}")?;
            }
        }
        if !self.field.is_empty() {
            write!(f, ": field `{}`", self.field)?;
        }
        write!(f, ": {}", self.message)
    }
}

impl std::error::Error for ScenarioError {}

/// A scenario with the file it came from.
#[derive(Debug, Clone)]
pub struct LoadedScenario {
    pub file: PathBuf,
    pub scenario: Scenario,
}

/// Loads every `*.yaml`/`*.yml` below `dir` (sorted by path). Returns all the
/// scenarios, or every error found in any of them.
pub fn load_dir(dir: &Path) -> Result<Vec<LoadedScenario>, Vec<ScenarioError>> {
    let mut files = Vec::new();
    if let Err(e) = collect_yaml(dir, &mut files) {
        return Err(vec![ScenarioError {
            file: dir.to_path_buf(),
            line: None,
            column: None,
            field: String::new(),
            message: format!("cannot read the scenario directory: {e}"),
        }]);
    }
    files.sort();
    let mut loaded = Vec::new();
    let mut errors = Vec::new();
    for file in files {
        match std::fs::read_to_string(&file) {
            Ok(text) => match parse(&file, &text) {
                Ok(scenario) => loaded.push(LoadedScenario { file, scenario }),
                Err(mut e) => errors.append(&mut e),
            },
            Err(e) => errors.push(ScenarioError {
                file,
                line: None,
                column: None,
                field: String::new(),
                message: format!("cannot read: {e}"),
            }),
        }
    }
    // Scenario names become namespace and trial names: they must be unique.
    let mut seen: BTreeMap<String, PathBuf> = BTreeMap::new();
    for s in &loaded {
        if let Some(first) = seen.insert(s.scenario.name.clone(), s.file.clone()) {
            errors.push(ScenarioError {
                file: s.file.clone(),
                line: find_line(&std::fs::read_to_string(&s.file).unwrap_or_default(), "name", &s.scenario.name),
                column: None,
                field: "name".into(),
                message: format!("scenario name `{}` is already used by {}", s.scenario.name, first.display()),
            });
        }
    }
    if errors.is_empty() { Ok(loaded) } else { Err(errors) }
}

fn collect_yaml(dir: &Path, out: &mut Vec<PathBuf>) -> std::io::Result<()> {
    for entry in std::fs::read_dir(dir)? {
        let path = entry?.path();
        if path.is_dir() {
            collect_yaml(&path, out)?;
        } else if matches!(path.extension().and_then(|e| e.to_str()), Some("yaml" | "yml")) {
            out.push(path);
        }
    }
    Ok(())
}

/// Parses and validates one scenario document.
pub fn parse(file: &Path, text: &str) -> Result<Scenario, Vec<ScenarioError>> {
    let deserializer = serde_yaml::Deserializer::from_str(text);
    let scenario: Scenario = serde_path_to_error::deserialize(deserializer).map_err(|e| {
        let path = e.path().to_string();
        let inner = e.into_inner();
        let location = inner.location();
        vec![ScenarioError {
            file: file.to_path_buf(),
            line: location.as_ref().map(|l| l.line()),
            column: location.as_ref().map(|l| l.column()),
            message: strip_location(&inner.to_string(), &path),
            // serde_path_to_error says "?" when the YAML is broken before any field.
            field: if path == "." || path == "?" { String::new() } else { path },
        }]
    })?;
    let errors = validate(&scenario)
        .into_iter()
        .map(|(field, key, value, message)| ScenarioError {
            file: file.to_path_buf(),
            line: find_line(text, key, &value),
            column: None,
            field,
            message,
        })
        .collect::<Vec<_>>();
    if errors.is_empty() { Ok(scenario) } else { Err(errors) }
}

/// serde_yaml puts the field path before its messages and " at line L column C"
/// after them; the error says both already.
fn strip_location(message: &str, path: &str) -> String {
    let message = match message.split_once(": ") {
        Some((head, rest)) if path.starts_with(head) => rest,
        _ => message,
    };
    match message.rfind(" at line ") {
        Some(i) => message[..i].to_string(),
        None => message.to_string(),
    }
}

/// The first line (1-based) where `key: value` appears, for errors found after
/// parsing (serde_yaml keeps no positions in the parsed document).
fn find_line(text: &str, key: &str, value: &str) -> Option<usize> {
    let pattern = format!("{key}:");
    text.lines()
        .position(|line| {
            line.match_indices(&pattern).any(|(i, _)| {
                let boundary = line[..i].chars().next_back().is_none_or(|c| matches!(c, ' ' | '{' | ',' | '-'));
                boundary && line[i + pattern.len()..].contains(value)
            })
        })
        .map(|i| i + 1)
}

/// (field path, yaml key, offending value, message) for each semantic problem.
type Problem = (String, &'static str, String, String);

fn is_dns_label(s: &str, max: usize) -> bool {
    !s.is_empty()
        && s.len() <= max
        && s.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        && !s.starts_with('-')
        && !s.ends_with('-')
}

fn validate(s: &Scenario) -> Vec<Problem> {
    let mut problems: Vec<Problem> = Vec::new();
    if !is_dns_label(&s.name, 30) {
        problems.push(("name".into(), "name", s.name.clone(),
            "must be lower-case letters, digits and '-', at most 30 characters".into()));
    }
    if s.checks.is_empty() {
        problems.push(("checks".into(), "checks", String::new(), "a scenario needs at least one check".into()));
    }

    let namespaces: BTreeSet<&str> = s.fixtures.namespaces.iter().map(|n| n.name.as_str()).collect();
    for (i, ns) in s.fixtures.namespaces.iter().enumerate() {
        if !is_dns_label(&ns.name, 12) {
            problems.push((format!("fixtures.namespaces[{i}].name"), "name", ns.name.clone(),
                "must be lower-case letters, digits and '-', at most 12 characters".into()));
        }
    }
    if namespaces.len() != s.fixtures.namespaces.len() {
        problems.push(("fixtures.namespaces".into(), "namespaces", String::new(), "namespace names must be unique".into()));
    }

    let mut pods: BTreeSet<&str> = BTreeSet::new();
    for (i, pod) in s.fixtures.pods.iter().enumerate() {
        let at = format!("fixtures.pods[{i}]");
        if !is_dns_label(&pod.name, 40) {
            problems.push((format!("{at}.name"), "name", pod.name.clone(),
                "must be lower-case letters, digits and '-', at most 40 characters".into()));
        }
        if pod.name == crate::checks::HARNESS || pod.name == "*" {
            problems.push((format!("{at}.name"), "name", pod.name.clone(), format!("`{}` is reserved", pod.name)));
        }
        if !pods.insert(&pod.name) {
            problems.push((format!("{at}.name"), "name", pod.name.clone(), format!("pod `{}` is defined twice", pod.name)));
        }
        if let Some(ns) = &pod.namespace {
            if !namespaces.contains(ns.as_str()) {
                problems.push((format!("{at}.namespace"), "namespace", ns.clone(),
                    format!("unknown namespace `{ns}` (fixtures.namespaces has: {})", join(&namespaces))));
            }
        }
        if let Some(ports) = &pod.ports {
            if ports.http.is_empty() && ports.tcp.is_empty() && ports.udp.is_empty() {
                problems.push((format!("{at}.ports"), "ports", String::new(), "a pod must serve at least one port".into()));
            }
        }
    }
    for (i, pod) in s.fixtures.pods.iter().enumerate() {
        let at = format!("fixtures.pods[{i}]");
        if pod.host_network {
            let ns = pod.namespace.as_deref().or(s.fixtures.namespaces.first().map(|n| n.name.as_str()));
            let privileged = s.fixtures.namespaces.iter().any(|n| Some(n.name.as_str()) == ns && n.privileged);
            if !privileged {
                problems.push((format!("{at}.host_network"), "host_network", "true".into(),
                    "hostNetwork pods belong in their own namespace marked `privileged: true`".into()));
            }
            let low = pod.ports.iter().flat_map(|p| p.http.iter().chain(&p.tcp).chain(&p.udp)).any(|p| *p < 1024);
            if low {
                problems.push((format!("{at}.ports"), "ports", String::new(), "a hostNetwork pod cannot serve ports below 1024 (it runs without privileges)".into()));
            }
        } else if let Some(ns) = s.fixtures.namespaces.iter().find(|n| Some(&n.name) == pod.namespace.as_ref().or(s.fixtures.namespaces.first().map(|n| &n.name)) && n.privileged) {
            problems.push((format!("{at}.namespace"), "namespace", ns.name.clone(),
                format!("namespace `{}` is privileged: only hostNetwork pods belong there", ns.name)));
        }
        if let (Some(main), Some(side)) = (&pod.ports, &pod.sidecar) {
            let clash = |a: &[u16], b: &[u16]| a.iter().any(|p| b.contains(p));
            if clash(&main.http, &side.http) || clash(&main.tcp, &side.tcp) || clash(&main.tcp, &side.http) || clash(&main.http, &side.tcp) || clash(&main.udp, &side.udp) {
                problems.push((format!("{at}.sidecar"), "sidecar", String::new(), "the sidecar's ports must differ from the main container's (they share the pod's network)".into()));
            }
        }
        let field = format!("fixtures.pods[{i}].placement");
        if pod.per_node && pod.placement.relative_to().is_some() {
            problems.push((field.clone(), "placement", String::new(), "a per_node pod is on every node: it takes no placement".into()));
        }
        if pod.placement.same_node_as.is_some() && pod.placement.other_node_than.is_some() {
            problems.push((field.clone(), "placement", String::new(), "give `same_node_as` or `other_node_than`, not both".into()));
        }
        let Some(other) = pod.placement.relative_to() else { continue };
        let other = other.to_string();
        if s.fixtures.pods.iter().any(|p| p.name == other && p.per_node) {
            problems.push((field.clone(), "placement", other.clone(), format!("`{other}` is per_node: place relative to a single pod")));
        }
        if !pods.contains(other.as_str()) {
            problems.push((field, "placement", other.clone(), format!("unknown pod `{other}` (pods: {})", join(&pods))));
        } else if other == pod.name {
            problems.push((field, "placement", other.clone(), "a pod cannot be placed relative to itself".into()));
        } else if s.fixtures.pods.iter().position(|p| p.name == other).is_some_and(|j| j > i) {
            problems.push((field, "placement", other.clone(),
                format!("`{other}` must be listed before `{}` to be placed relative to it", pod.name)));
        }
    }

    let mut services: BTreeMap<&str, &ServiceFixture> = BTreeMap::new();
    for (i, svc) in s.fixtures.services.iter().enumerate() {
        let at = format!("fixtures.services[{i}]");
        if !is_dns_label(&svc.name, 40) {
            problems.push((format!("{at}.name"), "name", svc.name.clone(), "must be lower-case letters, digits and '-', at most 40 characters".into()));
        }
        if services.insert(&svc.name, svc).is_some() {
            problems.push((format!("{at}.name"), "name", svc.name.clone(), format!("service `{}` is defined twice", svc.name)));
        }
        if let Some(ns) = &svc.namespace {
            if !namespaces.contains(ns.as_str()) {
                problems.push((format!("{at}.namespace"), "namespace", ns.clone(), format!("unknown namespace `{ns}` (fixtures.namespaces has: {})", join(&namespaces))));
            }
        }
        match svc.kind {
            ServiceKind::ExternalName => {
                if svc.external_name.is_none() {
                    problems.push((format!("{at}.external_name"), "type", "external_name".into(), "an external_name Service needs `external_name`".into()));
                }
            }
            _ => {
                if svc.ports.is_empty() {
                    problems.push((format!("{at}.ports"), "ports", String::new(), "a Service needs at least one port".into()));
                }
                if svc.selector.is_empty() {
                    problems.push((format!("{at}.selector"), "selector", String::new(), "a Service needs a selector (fixture pod labels)".into()));
                }
            }
        }
        for (j, p) in svc.ports.iter().enumerate() {
            if !matches!(p.protocol, Protocol::Tcp | Protocol::Udp) {
                problems.push((format!("{at}.ports[{j}].protocol"), "protocol", p.protocol.as_str().into(), "a Service port is tcp or udp".into()));
            }
        }
        if svc.external_traffic_policy_local && svc.kind != ServiceKind::NodePort {
            problems.push((format!("{at}.external_traffic_policy_local"), "external_traffic_policy_local", String::new(), "applies to node_port Services only".into()));
        }
    }
    let mut policies = BTreeSet::new();
    for (i, p) in s.fixtures.policies.iter().enumerate() {
        let at = format!("fixtures.policies[{i}]");
        if !is_dns_label(&p.name, 60) || !policies.insert(&p.name) {
            problems.push((format!("{at}.name"), "name", p.name.clone(), "must be a unique lower-case name ('-' and digits allowed)".into()));
        }
        if let Some(ns) = &p.namespace {
            if !namespaces.contains(ns.as_str()) {
                problems.push((format!("{at}.namespace"), "namespace", ns.clone(), format!("unknown namespace `{ns}` (fixtures.namespaces has: {})", join(&namespaces))));
            }
        }
        if let Err(e) = serde_path_to_error::deserialize::<_, k8s_openapi::api::networking::v1::NetworkPolicySpec>(p.spec.clone()) {
            problems.push((format!("{at}.spec.{}", e.path()), "spec", String::new(), format!("not a NetworkPolicy spec: {}", e.inner())));
        }
    }
    for f in &s.features {
        if !features::is_known(f) {
            problems.push(("features".into(), "features", f.clone(), format!("unknown feature `{f}` (known: {})", features::known())));
        }
    }

    let mut checks = BTreeSet::new();
    for (i, check) in s.checks.iter().enumerate() {
        let at = format!("checks[{i}]");
        if !is_dns_label(&check.name, 60) {
            problems.push((format!("{at}.name"), "name", check.name.clone(),
                "must be lower-case letters, digits and '-', at most 60 characters".into()));
        }
        if !checks.insert(&check.name) {
            problems.push((format!("{at}.name"), "name", check.name.clone(), format!("check `{}` is defined twice", check.name)));
        }
        if check.from == crate::checks::HARNESS {
            if check.to.node_port.is_none() {
                problems.push((format!("{at}.from"), "from", check.from.clone(), "probes from the harness host go to node ports only (`to.node_port`)".into()));
            }
            if check.assert.source_ip.is_some() {
                problems.push((format!("{at}.assert.source_ip"), "source_ip", String::new(), "the harness host has no pod IP to assert".into()));
            }
        } else if check.from != "*" && !pods.contains(check.from.as_str()) {
            problems.push((format!("{at}.from"), "from", check.from.clone(),
                format!("unknown pod `{}` (pods: {})", check.from, join(&pods))));
        }
        validate_target(s, check, &at, &pods, &services, &mut problems);
        for f in &check.features {
            if !features::is_known(f) {
                problems.push((format!("{at}.features"), "features", f.clone(), format!("unknown feature `{f}` (known: {})", features::known())));
            }
        }
        if check.container.as_deref().is_some_and(|c| c != SIDECAR_CONTAINER && c != "agent") {
            problems.push((format!("{at}.container"), "container", check.container.clone().unwrap_or_default(), "must be `agent` or `sidecar`".into()));
        }
        if check.container.as_deref() == Some(SIDECAR_CONTAINER)
            && s.fixtures.pods.iter().any(|p| p.name == check.from && p.sidecar.is_none())
        {
            problems.push((format!("{at}.container"), "container", SIDECAR_CONTAINER.into(), format!("pod `{}` has no sidecar", check.from)));
        }
        if check.samples == 0 || check.samples > netconform_agent::protocol::MAX_SAMPLES {
            problems.push((format!("{at}.samples"), "samples", check.samples.to_string(),
                format!("must be between 1 and {}", netconform_agent::protocol::MAX_SAMPLES)));
        }
        if check.timeout_ms == 0 || check.timeout_ms > netconform_agent::protocol::MAX_TIMEOUT_MS {
            problems.push((format!("{at}.timeout_ms"), "timeout_ms", check.timeout_ms.to_string(),
                format!("must be between 1 and {}", netconform_agent::protocol::MAX_TIMEOUT_MS)));
        }
        if check.path.is_some() && check.protocol != Protocol::Http {
            problems.push((format!("{at}.path"), "path", String::new(), "`path` applies to protocol http only".into()));
        }
        match (check.payload_bytes, check.protocol) {
            (None, _) => {}
            (Some(n), Protocol::Tcp) if (1..=16 << 20).contains(&n) => {}
            (Some(n), Protocol::Udp) if (1..=65_000).contains(&n) => {}
            (Some(n), _) => problems.push((format!("{at}.payload_bytes"), "payload_bytes", n.to_string(),
                "payload_bytes is 1..=16777216 for tcp, 1..=65000 for udp, and nothing else".into())),
        }
        if check.record.is_some() && check.protocol != Protocol::Dns {
            problems.push((format!("{at}.record"), "record", String::new(), "`record` applies to protocol dns only".into()));
        }
        if check.assert.answers.is_some() && check.protocol != Protocol::Dns {
            problems.push((format!("{at}.assert.answers"), "answers", String::new(), "`answers` applies to protocol dns only".into()));
        }
        if check.expect == Expectation::NotFound && check.protocol != Protocol::Dns {
            problems.push((format!("{at}.expect"), "expect", "not_found".into(), "`not_found` applies to protocol dns only".into()));
        }
        if check.assert.source_ip.is_some() && check.expect != Expectation::Connected {
            problems.push((format!("{at}.assert.source_ip"), "source_ip", String::new(),
                "a source address can only be asserted when the check expects `connected`".into()));
        }
    }
    problems
}

fn validate_target(
    s: &Scenario,
    check: &Check,
    at: &str,
    pods: &BTreeSet<&str>,
    services: &BTreeMap<&str, &ServiceFixture>,
    problems: &mut Vec<Problem>,
) {
    let to = &check.to;
    let given = [to.pod.is_some(), to.service.is_some(), to.node_port.is_some(), to.name.is_some(), to.localhost]
        .iter()
        .filter(|b| **b)
        .count();
    let field = format!("{at}.to");
    match check.protocol {
        Protocol::Identity => {
            if given > 0 {
                problems.push((field, "to", String::new(), "an identity check has no target".into()));
            }
            return;
        }
        Protocol::Dns => {
            if to.name.is_none() && to.service.is_none() {
                problems.push((field.clone(), "to", String::new(), "a dns check needs `to.name` or `to.service`".into()));
            }
        }
        _ => {
            if given != 1 {
                problems.push((field.clone(), "to", String::new(), "give exactly one of pod, service, node_port, name, localhost".into()));
            }
            if to.name.is_some() {
                problems.push((format!("{field}.name"), "name", String::new(), "`to.name` is for dns checks; probe a Service with `to.service`".into()));
            }
        }
    }
    if let Some(pod) = &to.pod {
        if pod != "*" && !pods.contains(pod.as_str()) {
            problems.push((format!("{field}.pod"), "pod", pod.clone(), format!("unknown pod `{pod}` (pods: {})", join(pods))));
        }
    }
    for (key, name) in [("service", &to.service), ("node_port", &to.node_port)] {
        if let Some(name) = name {
            match services.get(name.as_str()) {
                None => {
                    let known: BTreeSet<&str> = services.keys().copied().collect();
                    problems.push((format!("{field}.{key}"), key, name.clone(), format!("unknown service `{name}` (services: {})", join(&known))));
                }
                Some(svc) if key == "node_port" && svc.kind != ServiceKind::NodePort => {
                    problems.push((format!("{field}.{key}"), key, name.clone(), format!("service `{name}` is not of type node_port")));
                }
                _ => {}
            }
        }
    }
    for (j, a) in check.before.iter().enumerate() {
        let field = format!("{at}.before[{j}]");
        let given = [&a.replace_pods, &a.make_unready, &a.delete_policy].iter().filter(|o| o.is_some()).count();
        if given != 1 {
            problems.push((field.clone(), "before", String::new(), "an action is one of replace_pods, make_unready, delete_policy".into()));
        }
        for pod in [&a.replace_pods, &a.make_unready].into_iter().flatten() {
            if !pods.contains(pod.as_str()) {
                problems.push((field.clone(), "before", pod.clone(), format!("unknown pod `{pod}` (pods: {})", join(pods))));
            }
        }
        if let Some(pod) = &a.make_unready {
            let http = s.fixtures.pods.iter().find(|p| &p.name == pod).is_some_and(|p| crate::fixtures::main_ports(p).http.first().is_some());
            if !http {
                problems.push((field.clone(), "make_unready", pod.clone(), "only a pod serving HTTP (its readiness probe) can be made unready".into()));
            }
        }
        if let Some(policy) = &a.delete_policy {
            if !s.fixtures.policies.iter().any(|p| &p.name == policy) {
                problems.push((field.clone(), "delete_policy", policy.clone(), format!("unknown policy `{policy}`")));
            }
        }
    }
    for pod in &check.assert.not_served_by {
        if !pods.contains(pod.as_str()) {
            problems.push((format!("{at}.assert.not_served_by"), "not_served_by", pod.clone(), format!("unknown pod `{pod}`")));
        }
    }
    if !check.except.is_empty() && to.pod.is_none() {
        problems.push((format!("{at}.except"), "except", String::new(), "`except` applies to checks whose target is a pod".into()));
    }
    for (j, e) in check.except.iter().enumerate() {
        for (key, pattern) in [("from", &e.from), ("to", &e.to)] {
            let (ns, pod) = pattern.split_once('/').unwrap_or(("*", pattern.as_str()));
            let ns_ok = ns == "*" || s.fixtures.namespaces.iter().any(|n| n.name == ns) || (s.fixtures.namespaces.is_empty() && ns == "main");
            let pod_ok = pod == "*" || pods.contains(pod) || s.fixtures.pods.iter().any(|p| p.per_node && pod.starts_with(&format!("{}-", p.name)));
            if !ns_ok || !pod_ok {
                problems.push((format!("{at}.except[{j}].{key}"), key, pattern.clone(), format!("`{pattern}` names no fixture pod (`<namespace>/<pod>`, `*` for any)")));
            }
        }
    }
    if to.address.is_some() && to.service.is_none() {
        problems.push((format!("{field}.address"), "address", String::new(), "`address` goes with `service`".into()));
    }
    if (to.nodes.is_some() || to.exclude_client_node) && to.node_port.is_none() {
        problems.push((format!("{field}.nodes"), "nodes", String::new(), "`nodes` and `exclude_client_node` go with `node_port`".into()));
    }
    if let Some(a) = &check.assert.answers {
        let given = [&a.cluster_ip_of, &a.ready_pod_ips_of, &a.pod_ip_of, &a.srv_port_of].iter().filter(|o| o.is_some()).count();
        if given != 1 {
            problems.push((format!("{at}.assert.answers"), "answers", String::new(), "give exactly one of cluster_ip_of, ready_pod_ips_of, pod_ip_of, srv_port_of".into()));
        }
        for svc in [&a.cluster_ip_of, &a.ready_pod_ips_of].into_iter().flatten() {
            if !services.contains_key(svc.as_str()) {
                problems.push((format!("{at}.assert.answers"), "answers", svc.clone(), format!("unknown service `{svc}`")));
            }
        }
        if let Some(sp) = &a.srv_port_of {
            let ok = sp.split_once('/').is_some_and(|(svc, port)| {
                services.get(svc).is_some_and(|f| f.ports.iter().any(|p| p.name.as_deref() == Some(port)))
            });
            if !ok {
                problems.push((format!("{at}.assert.answers.srv_port_of"), "srv_port_of", sp.clone(), "must name `<service>/<port name>` of a fixture Service".into()));
            }
        }
        if let Some(p) = &a.pod_ip_of {
            if !pods.contains(p.as_str()) {
                problems.push((format!("{at}.assert.answers.pod_ip_of"), "pod_ip_of", p.clone(), format!("unknown pod `{p}`")));
            }
        }
    }
    let _ = s;
}

fn join(names: &BTreeSet<&str>) -> String {
    if names.is_empty() { "none".into() } else { names.iter().copied().collect::<Vec<_>>().join(", ") }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rstest::rstest;

    const VALID: &str = "\
name: demo
features: [core]
fixtures:
  pods:
    - name: server
      labels: {app: server}
    - name: client
      placement: {other_node_than: server}
checks:
  - name: tcp
    from: client
    to: {pod: server}
    protocol: tcp
    expect: connected
    assert: {source_ip: client_pod_ip}
    samples: 20
";

    fn errors(text: &str) -> Vec<String> {
        parse(Path::new("s.yaml"), text).unwrap_err().iter().map(|e| e.to_string()).collect()
    }

    #[test]
    fn a_valid_scenario_parses_with_defaults() {
        let s = parse(Path::new("s.yaml"), VALID).unwrap();
        assert_eq!(s.name, "demo");
        assert_eq!(s.fixtures.pods[1].placement, Placement::other_node_than("server"));
        assert_eq!(s.checks[0].samples, 20);
        assert_eq!(s.checks[0].timeout_ms, DEFAULT_TIMEOUT_MS);
        assert_eq!(s.checks[0].assert.source_ip, Some(SourceIp::ClientPodIp));
    }

    #[rstest]
    #[case::unknown_field(
        VALID.replace("    samples: 20", "    sampels: 20"),
        "s.yaml:16:5: field `checks[0].sampels`: unknown field `sampels`, expected one of")]
    #[case::bad_enum(
        VALID.replace("protocol: tcp", "protocol: tcpp"),
        "s.yaml:13:15: field `checks[0].protocol`: unknown variant `tcpp`, expected one of `tcp`, `udp`, `http`")]
    #[case::wrong_type(
        VALID.replace("samples: 20", "samples: many"),
        "s.yaml:16:14: field `checks[0].samples`: invalid type: string \"many\", expected u32")]
    #[case::missing_field(
        VALID.replace("    protocol: tcp\n", ""),
        "field `checks[0]`: missing field `protocol`")]
    #[case::unknown_pod(
        VALID.replace("from: client", "from: clinet"),
        "s.yaml:11: field `checks[0].from`: unknown pod `clinet` (pods: client, server)")]
    #[case::unknown_placement(
        VALID.replace("other_node_than: server", "other_node_than: nobody"),
        "s.yaml:8: field `fixtures.pods[1].placement`: unknown pod `nobody` (pods: client, server)")]
    #[case::bad_name(
        VALID.replace("name: demo", "name: Demo_1"),
        "s.yaml:1: field `name`: must be lower-case letters, digits and '-', at most 30 characters")]
    #[case::too_many_samples(
        VALID.replace("samples: 20", "samples: 5000"),
        "s.yaml:16: field `checks[0].samples`: must be between 1 and 1000")]
    #[case::source_ip_needs_connected(
        VALID.replace("expect: connected", "expect: blocked"),
        "s.yaml:15: field `checks[0].assert.source_ip`: a source address can only be asserted when the check expects `connected`")]
    #[case::not_yaml(
        "name: [unclosed".to_string(),
        "s.yaml:1:7")]
    fn invalid_files_name_file_line_and_field(#[case] text: String, #[case] want: &str) {
        let errs = errors(&text);
        assert!(errs.iter().any(|e| e.contains(want)), "want `{want}` in {errs:#?}");
    }

    #[test]
    fn duplicate_scenario_names_across_files_are_rejected() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("a.yaml"), VALID).unwrap();
        std::fs::create_dir(dir.path().join("more")).unwrap();
        std::fs::write(dir.path().join("more/b.yml"), VALID).unwrap();
        let errs = load_dir(dir.path()).unwrap_err();
        assert_eq!(errs.len(), 1);
        assert!(errs[0].to_string().contains("scenario name `demo` is already used by"), "{}", errs[0]);
    }

    #[test]
    fn every_error_in_every_file_is_reported() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("a.yaml"), VALID.replace("from: client", "from: x")).unwrap();
        std::fs::write(dir.path().join("b.yaml"), VALID.replace("name: demo", "name: other").replace("protocol: tcp", "protocol: x")).unwrap();
        let errs = load_dir(dir.path()).unwrap_err();
        assert_eq!(errs.len(), 2, "{errs:#?}");
    }
}
