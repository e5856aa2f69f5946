//! The checks serde cannot make: names, references between fixtures and
//! checks, bounds, and which fields go together. Each problem names its field.

use super::features;
use super::model::*;
use std::collections::{BTreeMap, BTreeSet};

/// (field path, yaml key, offending value, message) for each semantic problem.
pub type Problem = (String, &'static str, String, String);

fn is_dns_label(s: &str, max: usize) -> bool {
    !s.is_empty()
        && s.len() <= max
        && s.bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        && !s.starts_with('-')
        && !s.ends_with('-')
}

pub fn validate(s: &Scenario) -> Vec<Problem> {
    let mut problems: Vec<Problem> = Vec::new();
    if !is_dns_label(&s.name, 30) {
        problems.push((
            "name".into(),
            "name",
            s.name.clone(),
            "must be lower-case letters, digits and '-', at most 30 characters".into(),
        ));
    }
    if s.checks.is_empty() {
        problems.push((
            "checks".into(),
            "checks",
            String::new(),
            "a scenario needs at least one check".into(),
        ));
    }

    let namespaces: BTreeSet<&str> = s
        .fixtures
        .namespaces
        .iter()
        .map(|n| n.name.as_str())
        .collect();
    for (i, ns) in s.fixtures.namespaces.iter().enumerate() {
        if !is_dns_label(&ns.name, 12) {
            problems.push((
                format!("fixtures.namespaces[{i}].name"),
                "name",
                ns.name.clone(),
                "must be lower-case letters, digits and '-', at most 12 characters".into(),
            ));
        }
    }
    if namespaces.len() != s.fixtures.namespaces.len() {
        problems.push((
            "fixtures.namespaces".into(),
            "namespaces",
            String::new(),
            "namespace names must be unique".into(),
        ));
    }

    let mut pods: BTreeSet<&str> = BTreeSet::new();
    for (i, pod) in s.fixtures.pods.iter().enumerate() {
        let at = format!("fixtures.pods[{i}]");
        if !is_dns_label(&pod.name, 40) {
            problems.push((
                format!("{at}.name"),
                "name",
                pod.name.clone(),
                "must be lower-case letters, digits and '-', at most 40 characters".into(),
            ));
        }
        if pod.name == super::model::HARNESS || pod.name == "*" {
            problems.push((
                format!("{at}.name"),
                "name",
                pod.name.clone(),
                format!("`{}` is reserved", pod.name),
            ));
        }
        if !pods.insert(&pod.name) {
            problems.push((
                format!("{at}.name"),
                "name",
                pod.name.clone(),
                format!("pod `{}` is defined twice", pod.name),
            ));
        }
        known_namespace(pod.namespace.as_deref(), &at, &namespaces, &mut problems);
        if let Some(ports) = &pod.ports {
            if ports.http.is_empty() && ports.tcp.is_empty() && ports.udp.is_empty() {
                problems.push((
                    format!("{at}.ports"),
                    "ports",
                    String::new(),
                    "a pod must serve at least one port".into(),
                ));
            }
        }
    }
    for (i, pod) in s.fixtures.pods.iter().enumerate() {
        let at = format!("fixtures.pods[{i}]");
        if pod.host_ip.is_some() && (!pod.host_ports || pod.host_network) {
            problems.push((
                format!("{at}.host_ip"),
                "host_ip",
                String::new(),
                "`host_ip` binds the hostPorts of a pod with `host_ports: true` and its own network".into(),
            ));
        }
        if pod.tolerate_taints && !pod.per_node {
            problems.push((
                format!("{at}.tolerate_taints"),
                "tolerate_taints",
                "true".into(),
                "applies to `per_node` pods only".into(),
            ));
        }
        if pod.host_network {
            let ns =
                pod.namespace
                    .as_deref()
                    .or(s.fixtures.namespaces.first().map(|n| n.name.as_str()));
            let privileged = s
                .fixtures
                .namespaces
                .iter()
                .any(|n| Some(n.name.as_str()) == ns && n.privileged);
            if !privileged {
                problems.push((
                    format!("{at}.host_network"),
                    "host_network",
                    "true".into(),
                    "hostNetwork pods belong in their own namespace marked `privileged: true`"
                        .into(),
                ));
            }
            let low = pod
                .ports
                .iter()
                .flat_map(|p| p.http.iter().chain(&p.tcp).chain(&p.udp))
                .any(|p| *p < 1024);
            if low {
                problems.push((
                    format!("{at}.ports"),
                    "ports",
                    String::new(),
                    "a hostNetwork pod cannot serve ports below 1024 (it runs without privileges)"
                        .into(),
                ));
            }
        } else if let Some(ns) = s.fixtures.namespaces.iter().find(|n| {
            Some(&n.name)
                == pod
                    .namespace
                    .as_ref()
                    .or(s.fixtures.namespaces.first().map(|n| &n.name))
                && n.privileged
        }) {
            problems.push((
                format!("{at}.namespace"),
                "namespace",
                ns.name.clone(),
                format!(
                    "namespace `{}` is privileged: only hostNetwork pods belong there",
                    ns.name
                ),
            ));
        }
        if let (Some(main), Some(side)) = (&pod.ports, &pod.sidecar) {
            let clash = |a: &[u16], b: &[u16]| a.iter().any(|p| b.contains(p));
            if clash(&main.http, &side.http)
                || clash(&main.tcp, &side.tcp)
                || clash(&main.tcp, &side.http)
                || clash(&main.http, &side.tcp)
                || clash(&main.udp, &side.udp)
            {
                problems.push((format!("{at}.sidecar"), "sidecar", String::new(), "the sidecar's ports must differ from the main container's (they share the pod's network)".into()));
            }
        }
        let field = format!("fixtures.pods[{i}].placement");
        if pod.per_node && pod.placement.relative_to().is_some() {
            problems.push((
                field.clone(),
                "placement",
                String::new(),
                "a per_node pod is on every node: it takes no placement".into(),
            ));
        }
        if pod.placement.same_node_as.is_some() && pod.placement.other_node_than.is_some() {
            problems.push((
                field.clone(),
                "placement",
                String::new(),
                "give `same_node_as` or `other_node_than`, not both".into(),
            ));
        }
        let Some(other) = pod.placement.relative_to() else {
            continue;
        };
        let other = other.to_string();
        if s.fixtures
            .pods
            .iter()
            .any(|p| p.name == other && p.per_node)
        {
            problems.push((
                field.clone(),
                "placement",
                other.clone(),
                format!("`{other}` is per_node: place relative to a single pod"),
            ));
        }
        if !pods.contains(other.as_str()) {
            problems.push((
                field,
                "placement",
                other.clone(),
                format!("unknown pod `{other}` (pods: {})", join(&pods)),
            ));
        } else if other == pod.name {
            problems.push((
                field,
                "placement",
                other.clone(),
                "a pod cannot be placed relative to itself".into(),
            ));
        } else if s
            .fixtures
            .pods
            .iter()
            .position(|p| p.name == other)
            .is_some_and(|j| j > i)
        {
            problems.push((
                field,
                "placement",
                other.clone(),
                format!(
                    "`{other}` must be listed before `{}` to be placed relative to it",
                    pod.name
                ),
            ));
        }
    }

    let mut set_members: BTreeSet<String> = BTreeSet::new();
    for (i, set) in s.fixtures.statefulsets.iter().enumerate() {
        let at = format!("fixtures.statefulsets[{i}]");
        if !is_dns_label(&set.name, 40) || !pods.insert(&set.name) {
            problems.push((
                format!("{at}.name"),
                "name",
                set.name.clone(),
                "must be a unique lower-case name, at most 40 characters, not used by a pod".into(),
            ));
        }
        if set.replicas == 0 || set.replicas > 10 {
            problems.push((
                format!("{at}.replicas"),
                "replicas",
                set.replicas.to_string(),
                "must be between 1 and 10".into(),
            ));
        }
        if !s
            .fixtures
            .services
            .iter()
            .any(|sv| sv.name == set.service && sv.kind == ServiceKind::Headless)
        {
            problems.push((
                format!("{at}.service"),
                "service",
                set.service.clone(),
                "must name a headless fixture Service".into(),
            ));
        }
        if let Some(ns) = &set.namespace {
            if !namespaces.contains(ns.as_str()) {
                problems.push((
                    format!("{at}.namespace"),
                    "namespace",
                    ns.clone(),
                    format!("unknown namespace `{ns}`"),
                ));
            }
        }
        set_members.extend((0..set.replicas).map(|r| format!("{}-{r}", set.name)));
    }
    let mut services: BTreeMap<&str, &ServiceFixture> = BTreeMap::new();
    for (i, svc) in s.fixtures.services.iter().enumerate() {
        let at = format!("fixtures.services[{i}]");
        if !is_dns_label(&svc.name, 40) {
            problems.push((
                format!("{at}.name"),
                "name",
                svc.name.clone(),
                "must be lower-case letters, digits and '-', at most 40 characters".into(),
            ));
        }
        if services.insert(&svc.name, svc).is_some() {
            problems.push((
                format!("{at}.name"),
                "name",
                svc.name.clone(),
                format!("service `{}` is defined twice", svc.name),
            ));
        }
        validate_service(s, svc, &at, &namespaces, &mut problems);
    }
    let mut policies = BTreeSet::new();
    for (i, p) in s.fixtures.policies.iter().enumerate() {
        let at = format!("fixtures.policies[{i}]");
        if !is_dns_label(&p.name, 60) || !policies.insert(&p.name) {
            problems.push((
                format!("{at}.name"),
                "name",
                p.name.clone(),
                "must be a unique lower-case name ('-' and digits allowed)".into(),
            ));
        }
        known_namespace(p.namespace.as_deref(), &at, &namespaces, &mut problems);
        if let Err(e) = serde_path_to_error::deserialize::<
            _,
            k8s_openapi::api::networking::v1::NetworkPolicySpec,
        >(p.spec.clone())
        {
            problems.push((
                format!("{at}.spec.{}", e.path()),
                "spec",
                String::new(),
                format!("not a NetworkPolicy spec: {}", e.inner()),
            ));
        }
    }
    for f in &s.features {
        if !features::is_known(f) {
            problems.push((
                "features".into(),
                "features",
                f.clone(),
                format!("unknown feature `{f}` (known: {})", features::known()),
            ));
        }
    }

    if let Some(problem) = repeated_family(&s.families, "families") {
        problems.push(problem);
    }
    let mut checks = BTreeSet::new();
    // What each Service is when a check probes: checks without actions run
    // first and see the fixtures; checks with actions run after them in file
    // order and see every `update_service` made so far.
    let mut updated = services.clone();
    for (i, check) in s.checks.iter().enumerate() {
        let at = format!("checks[{i}]");
        for a in &check.before {
            if let Some(f) = &a.update_service {
                if updated.contains_key(f.name.as_str()) {
                    updated.insert(&f.name, f);
                }
            }
        }
        let services_now = if check.before.is_empty() {
            &services
        } else {
            &updated
        };
        if let Some(families) = &check.families {
            if let Some(problem) = repeated_family(families, &format!("{at}.families")) {
                problems.push(problem);
            }
        }
        let families = check.families.as_ref().unwrap_or(&s.families);
        if families.contains(&IpFamily::Ipv6) {
            if let Some(why) = ipv4_only(check) {
                problems.push((
                    format!("{at}.families"),
                    "families",
                    "ipv6".into(),
                    format!("{why}: give this check `families: [ipv4]`"),
                ));
            }
        }
        if !is_dns_label(&check.name, 60) {
            problems.push((
                format!("{at}.name"),
                "name",
                check.name.clone(),
                "must be lower-case letters, digits and '-', at most 60 characters".into(),
            ));
        }
        if !checks.insert(&check.name) {
            problems.push((
                format!("{at}.name"),
                "name",
                check.name.clone(),
                format!("check `{}` is defined twice", check.name),
            ));
        }
        if check.from == super::model::HARNESS {
            if check.to.node_port.is_none() && check.to.host_port.is_none() {
                problems.push((
                    format!("{at}.from"),
                    "from",
                    check.from.clone(),
                    "probes from the harness host go to node addresses only (`to.node_port`, `to.host_port`)".into(),
                ));
            }
            if check.assert.source_ip.is_some() {
                problems.push((
                    format!("{at}.assert.source_ip"),
                    "source_ip",
                    String::new(),
                    "the harness host has no pod IP to assert".into(),
                ));
            }
        } else if check.from != "*" && !pods.contains(check.from.as_str()) {
            problems.push((
                format!("{at}.from"),
                "from",
                check.from.clone(),
                format!("unknown pod `{}` (pods: {})", check.from, join(&pods)),
            ));
        }
        validate_target(
            s,
            check,
            &at,
            &pods,
            &set_members,
            (&services, services_now),
            &mut problems,
        );
        for f in &check.features {
            if !features::is_known(f) {
                problems.push((
                    format!("{at}.features"),
                    "features",
                    f.clone(),
                    format!("unknown feature `{f}` (known: {})", features::known()),
                ));
            }
        }
        if check
            .container
            .as_deref()
            .is_some_and(|c| c != SIDECAR_CONTAINER && c != "agent")
        {
            problems.push((
                format!("{at}.container"),
                "container",
                check.container.clone().unwrap_or_default(),
                "must be `agent` or `sidecar`".into(),
            ));
        }
        if check.container.as_deref() == Some(SIDECAR_CONTAINER)
            && s.fixtures
                .pods
                .iter()
                .any(|p| p.name == check.from && p.sidecar.is_none())
        {
            problems.push((
                format!("{at}.container"),
                "container",
                SIDECAR_CONTAINER.into(),
                format!("pod `{}` has no sidecar", check.from),
            ));
        }
        if check.latency.any() && !s.quiet {
            problems.push((format!("{at}.latency"), "latency", String::new(),
                "latency thresholds are judged only in a `quiet: true` scenario (elsewhere the suite's own load is in every figure)".into()));
        }
        if let Some(o) = &check.latency.pair_outliers {
            if !(o.ratio > 1.0 && o.floor_ms >= 0.0) {
                problems.push((
                    format!("{at}.latency.pair_outliers"),
                    "pair_outliers",
                    format!("ratio {} floor_ms {}", o.ratio, o.floor_ms),
                    "ratio must be over 1 and floor_ms at least 0".into(),
                ));
            }
            if check.to.pod.is_none() {
                problems.push((
                    format!("{at}.latency.pair_outliers"),
                    "pair_outliers",
                    String::new(),
                    "node pairs need a pod target (`to.pod`)".into(),
                ));
            }
        }
        if check.warmup > netconform_protocol::MAX_SAMPLES.saturating_sub(check.samples) {
            problems.push((
                format!("{at}.warmup"),
                "warmup",
                check.warmup.to_string(),
                format!(
                    "samples + warmup must be at most {}",
                    netconform_protocol::MAX_SAMPLES
                ),
            ));
        }
        if check.samples == 0 || check.samples > netconform_protocol::MAX_SAMPLES {
            problems.push((
                format!("{at}.samples"),
                "samples",
                check.samples.to_string(),
                format!("must be between 1 and {}", netconform_protocol::MAX_SAMPLES),
            ));
        }
        if check.timeout_ms == 0 || check.timeout_ms > netconform_protocol::MAX_TIMEOUT_MS {
            problems.push((
                format!("{at}.timeout_ms"),
                "timeout_ms",
                check.timeout_ms.to_string(),
                format!(
                    "must be between 1 and {}",
                    netconform_protocol::MAX_TIMEOUT_MS
                ),
            ));
        }
        if check.path.is_some() && check.protocol != Protocol::Http {
            problems.push((
                format!("{at}.path"),
                "path",
                String::new(),
                "`path` applies to protocol http only".into(),
            ));
        }
        match (check.payload_bytes, check.protocol) {
            (None, _) => {}
            (Some(n), Protocol::Tcp) if (1..=16 << 20).contains(&n) => {}
            (Some(n), Protocol::Udp) if (1..=65_000).contains(&n) => {}
            (Some(n), _) => problems.push((
                format!("{at}.payload_bytes"),
                "payload_bytes",
                n.to_string(),
                "payload_bytes is 1..=16777216 for tcp, 1..=65000 for udp, and nothing else".into(),
            )),
        }
        match (check.stream_ms, check.protocol) {
            (None, _) => {}
            (Some(_), Protocol::Tcp) if check.payload_bytes.is_some() => problems.push((
                format!("{at}.stream_ms"),
                "stream_ms",
                String::new(),
                "a check either streams (`stream_ms`) or sends one payload (`payload_bytes`), not both".into(),
            )),
            (Some(n), Protocol::Tcp) if (1..=netconform_protocol::MAX_STREAM_MS).contains(&n) => {}
            (Some(n), _) => problems.push((
                format!("{at}.stream_ms"),
                "stream_ms",
                n.to_string(),
                format!(
                    "stream_ms is 1..={} and applies to protocol tcp only",
                    netconform_protocol::MAX_STREAM_MS
                ),
            )),
        }
        if let Some(o) = &check.throughput.pair_outliers {
            let mut why = vec![];
            if !(o.ratio > 1.0 && o.floor_mbps >= 0.0) {
                why.push(format!(
                    "ratio must be over 1 and floor_mbps at least 0 (got ratio {} floor_mbps {})",
                    o.ratio, o.floor_mbps
                ));
            }
            if check.stream_ms.is_none() {
                why.push("throughput is measured only by a `stream_ms` check".into());
            }
            if !s.quiet {
                why.push("throughput is judged only in a `quiet: true` scenario (elsewhere the suite's own load is in every figure)".into());
            }
            if check.to.pod.is_none() {
                why.push("node pairs need a pod target (`to.pod`)".into());
            }
            for w in why {
                problems.push((
                    format!("{at}.throughput.pair_outliers"),
                    "pair_outliers",
                    String::new(),
                    w,
                ));
            }
        }
        if check.assert.dns_tcp_fallback && check.protocol != Protocol::Dns {
            problems.push((
                format!("{at}.assert.dns_tcp_fallback"),
                "dns_tcp_fallback",
                "true".into(),
                "applies to protocol dns (queries over UDP first) only".into(),
            ));
        }
        if check.record.is_some() && !check.protocol.is_dns() {
            problems.push((
                format!("{at}.record"),
                "record",
                String::new(),
                "`record` applies to protocol dns only".into(),
            ));
        }
        if check.assert.answers.is_some() && !check.protocol.is_dns() {
            problems.push((
                format!("{at}.assert.answers"),
                "answers",
                String::new(),
                "`answers` applies to protocol dns only".into(),
            ));
        }
        if check.expect == Expectation::NotFound && !check.protocol.is_dns() {
            problems.push((
                format!("{at}.expect"),
                "expect",
                "not_found".into(),
                "`not_found` applies to protocol dns only".into(),
            ));
        }
        if check.assert.source_ip.is_some() && check.expect != Expectation::Connected {
            problems.push((
                format!("{at}.assert.source_ip"),
                "source_ip",
                String::new(),
                "a source address can only be asserted when the check expects `connected`".into(),
            ));
        }
    }
    problems
}

/// A fixture's `namespace`, when given, must be one of `fixtures.namespaces`.
fn known_namespace(
    ns: Option<&str>,
    at: &str,
    namespaces: &BTreeSet<&str>,
    problems: &mut Vec<Problem>,
) {
    if let Some(ns) = ns.filter(|ns| !namespaces.contains(ns)) {
        problems.push((
            format!("{at}.namespace"),
            "namespace",
            ns.to_string(),
            format!(
                "unknown namespace `{ns}` (fixtures.namespaces has: {})",
                join(namespaces)
            ),
        ));
    }
}

/// One Service definition, in `fixtures.services` or in an `update_service`
/// action (`at` is its field path).
fn validate_service(
    s: &Scenario,
    svc: &ServiceFixture,
    at: &str,
    namespaces: &BTreeSet<&str>,
    problems: &mut Vec<Problem>,
) {
    known_namespace(svc.namespace.as_deref(), at, namespaces, problems);
    if let Some(n) = svc.synthetic_endpoints {
        if svc.kind != ServiceKind::Headless || !svc.selector.is_empty() || !(1..=200).contains(&n)
        {
            problems.push((
                format!("{at}.synthetic_endpoints"),
                "synthetic_endpoints",
                n.to_string(),
                "1..=200, on a headless Service without a selector (its endpoints are netconform's, not pods)".into(),
            ));
        }
    }
    match svc.kind {
        ServiceKind::ExternalName => {
            if svc.external_name.is_none() {
                problems.push((
                    format!("{at}.external_name"),
                    "type",
                    "external_name".into(),
                    "an external_name Service needs `external_name`".into(),
                ));
            }
        }
        _ => {
            if svc.ports.is_empty() {
                problems.push((
                    format!("{at}.ports"),
                    "ports",
                    String::new(),
                    "a Service needs at least one port".into(),
                ));
            }
            let own_endpoints = usize::from(svc.synthetic_endpoints.is_some())
                + usize::from(!svc.endpoint_slices.is_empty());
            if svc.selector.is_empty() && own_endpoints == 0 {
                problems.push((
                    format!("{at}.selector"),
                    "selector",
                    String::new(),
                    "a Service needs a selector (fixture pod labels), synthetic_endpoints or endpoint_slices"
                        .into(),
                ));
            }
            if own_endpoints > 0 && !svc.selector.is_empty() || own_endpoints > 1 {
                problems.push((
                    format!("{at}.selector"),
                    "selector",
                    String::new(),
                    "give one of selector, synthetic_endpoints, endpoint_slices".into(),
                ));
            }
        }
    }
    for (j, p) in svc.ports.iter().enumerate() {
        if !matches!(p.protocol, Protocol::Tcp | Protocol::Udp) {
            problems.push((
                format!("{at}.ports[{j}].protocol"),
                "protocol",
                p.protocol.as_str().into(),
                "a Service port is tcp or udp".into(),
            ));
        }
    }
    let default_ns = s
        .fixtures
        .namespaces
        .first()
        .map_or("main", |n| n.name.as_str());
    let ns_of = |ns: &Option<String>| ns.clone().unwrap_or_else(|| default_ns.to_string());
    for (j, slice) in svc.endpoint_slices.iter().enumerate() {
        let pod = &slice.pod;
        let fits = s.fixtures.pods.iter().any(|p| {
            &p.name == pod && !p.host_network && ns_of(&p.namespace) == ns_of(&svc.namespace)
        });
        if !fits {
            problems.push((
                format!("{at}.endpoint_slices[{j}].pod"),
                "pod",
                pod.clone(),
                format!(
                    "`{pod}` is not a fixture pod in the Service's namespace with its own network"
                ),
            ));
        }
        for (k, port) in slice.ports.iter().enumerate() {
            if !svc.ports.iter().any(|p| p.name.as_ref() == Some(port)) {
                problems.push((
                    format!("{at}.endpoint_slices[{j}].ports[{k}]"),
                    "ports",
                    port.clone(),
                    format!("the Service has no port named `{port}`"),
                ));
            }
        }
    }
    if !svc.endpoint_slices.is_empty()
        && svc
            .ports
            .iter()
            .any(|p| matches!(p.target_port, Some(PortRef::Name(_))))
    {
        problems.push((
            format!("{at}.ports"),
            "ports",
            String::new(),
            "with endpoint_slices a target_port is a number (netconform writes it into the slices)"
                .into(),
        ));
    }
    if svc.external_traffic_policy_local && svc.kind != ServiceKind::NodePort {
        problems.push((
            format!("{at}.external_traffic_policy_local"),
            "external_traffic_policy_local",
            String::new(),
            "applies to node_port Services only".into(),
        ));
    }
    // A single-stack cluster refuses the Service: the scenario must be one
    // that such a cluster skips.
    if svc.require_dual_stack && svc.kind == ServiceKind::ExternalName {
        problems.push((
            format!("{at}.require_dual_stack"),
            "require_dual_stack",
            "true".into(),
            "an external_name Service has no clusterIP in any family".into(),
        ));
    } else if svc.require_dual_stack && !s.features.iter().any(|f| f == "ipv6") {
        problems.push((
            format!("{at}.require_dual_stack"),
            "require_dual_stack",
            "true".into(),
            "a single-stack cluster refuses this Service: give the scenario `features: [..., ipv6]` so that such a cluster skips it".into(),
        ));
    }
}

fn validate_target(
    s: &Scenario,
    check: &Check,
    at: &str,
    pods: &BTreeSet<&str>,
    set_members: &BTreeSet<String>,
    // (the Services as fixtures define them, as they are when this check probes)
    (defined, services): (
        &BTreeMap<&str, &ServiceFixture>,
        &BTreeMap<&str, &ServiceFixture>,
    ),
    problems: &mut Vec<Problem>,
) {
    let to = &check.to;
    let given = [
        to.pod.is_some(),
        to.service.is_some(),
        to.node_port.is_some(),
        to.name.is_some(),
        to.localhost,
        to.api_server,
        to.host_port.is_some(),
        to.outside_host,
    ]
    .iter()
    .filter(|b| **b)
    .count();
    let field = format!("{at}.to");
    match check.protocol {
        Protocol::Identity => {
            if given > 0 {
                problems.push((
                    field,
                    "to",
                    String::new(),
                    "an identity check has no target".into(),
                ));
            }
            return;
        }
        Protocol::Https => {
            if !to.api_server || given != 1 {
                problems.push((
                    field.clone(),
                    "to",
                    String::new(),
                    "an https check targets `to.api_server: true` (the only server whose CA a pod has)".into(),
                ));
            }
        }
        Protocol::Icmp => {
            // ICMP has no port: a Service (a port mapping) is not its target.
            if to.pod.is_none() || given != 1 {
                problems.push((
                    field.clone(),
                    "to",
                    String::new(),
                    "an icmp check targets `to.pod` (a Service maps ports; ICMP has none)".into(),
                ));
            }
            for (set, key) in [
                (check.port.is_some(), "port"),
                (check.assert.source_ip.is_some(), "assert.source_ip"),
            ] {
                if set {
                    problems.push((
                        format!("{at}.{key}"),
                        key.rsplit('.').next().unwrap_or(key),
                        String::new(),
                        format!("`{key}` does not apply to icmp (no port; the echo carries no seen address)"),
                    ));
                }
            }
        }
        Protocol::Dns | Protocol::DnsTcp => {
            // PTR's own rule on `to` is checked with its answers.
            if to.name.is_none() && to.service.is_none() && check.record != Some(DnsRecordKind::Ptr)
            {
                problems.push((
                    field.clone(),
                    "to",
                    String::new(),
                    "a dns check needs `to.name` or `to.service`".into(),
                ));
            }
        }
        _ => {
            if given != 1 {
                problems.push((
                    field.clone(),
                    "to",
                    String::new(),
                    "give exactly one of pod, service, node_port, host_port, name, localhost, api_server, outside_host"
                        .into(),
                ));
            }
            if to.name.is_some() {
                problems.push((
                    format!("{field}.name"),
                    "name",
                    String::new(),
                    "`to.name` is for dns checks; probe a Service with `to.service`".into(),
                ));
            }
        }
    }
    if let Some(pod) = &to.host_port {
        if !pods.contains(pod.as_str()) {
            problems.push((
                format!("{field}.host_port"),
                "host_port",
                pod.clone(),
                format!("unknown pod `{pod}` (pods: {})", join(pods)),
            ));
        } else if !s
            .fixtures
            .pods
            .iter()
            .any(|p| &p.name == pod && p.host_ports)
        {
            problems.push((
                format!("{field}.host_port"),
                "host_port",
                pod.clone(),
                format!("pod `{pod}` publishes no hostPorts (set `host_ports: true` on it)"),
            ));
        }
    }
    if to.api_server && check.protocol != Protocol::Https {
        problems.push((
            format!("{field}.api_server"),
            "api_server",
            "true".into(),
            "`to.api_server` is reached with protocol https".into(),
        ));
    }
    if let Some(pod) = &to.pod {
        // A PTR lookup may name one StatefulSet pod too (`web-0`).
        let set_member = check.record == Some(DnsRecordKind::Ptr) && set_members.contains(pod);
        if pod != "*" && !pods.contains(pod.as_str()) && !set_member {
            problems.push((
                format!("{field}.pod"),
                "pod",
                pod.clone(),
                format!("unknown pod `{pod}` (pods: {})", join(pods)),
            ));
        }
    }
    for (key, name) in [("service", &to.service), ("node_port", &to.node_port)] {
        if let Some(name) = name {
            match services.get(name.as_str()) {
                None => {
                    let known: BTreeSet<&str> = services.keys().copied().collect();
                    problems.push((
                        format!("{field}.{key}"),
                        key,
                        name.clone(),
                        format!("unknown service `{name}` (services: {})", join(&known)),
                    ));
                }
                Some(svc) if key == "node_port" && svc.kind != ServiceKind::NodePort => {
                    problems.push((
                        format!("{field}.{key}"),
                        key,
                        name.clone(),
                        format!("service `{name}` is not of type node_port"),
                    ));
                }
                _ => {}
            }
        }
    }
    for (j, a) in check.before.iter().enumerate() {
        let field = format!("{at}.before[{j}]");
        let given = [
            a.replace_pods.is_some(),
            a.make_unready.is_some(),
            a.delete_policy.is_some(),
            a.update_policy.is_some(),
            a.label.is_some(),
            a.update_service.is_some(),
        ]
        .iter()
        .filter(|given| **given)
        .count();
        if given != 1 {
            problems.push((
                field.clone(),
                "before",
                String::new(),
                "an action is one of replace_pods, make_unready, delete_policy, update_policy, label, update_service"
                    .into(),
            ));
        }
        if let Some(update) = &a.update_policy {
            if !s.fixtures.policies.iter().any(|p| p.name == update.name) {
                problems.push((
                    format!("{field}.update_policy.name"),
                    "name",
                    update.name.clone(),
                    format!("unknown policy `{}`", update.name),
                ));
            }
        }
        if let Some(svc) = &a.update_service {
            let field = format!("{field}.update_service");
            match defined.get(svc.name.as_str()) {
                None => problems.push((
                    format!("{field}.name"),
                    "name",
                    svc.name.clone(),
                    format!("unknown service `{}`", svc.name),
                )),
                Some(old) if old.namespace != svc.namespace => problems.push((
                    format!("{field}.namespace"),
                    "namespace",
                    svc.namespace.clone().unwrap_or_default(),
                    "a Service stays in its namespace".into(),
                )),
                Some(old)
                    if [old, &svc].iter().any(|f| {
                        f.synthetic_endpoints.is_some() || !f.endpoint_slices.is_empty()
                    }) =>
                {
                    problems.push((
                        field.clone(),
                        "update_service",
                        svc.name.clone(),
                        "a Service whose EndpointSlices netconform writes is not updated in place"
                            .into(),
                    ))
                }
                Some(_) => {}
            }
            let namespaces = s
                .fixtures
                .namespaces
                .iter()
                .map(|n| n.name.as_str())
                .collect();
            validate_service(s, svc, &field, &namespaces, problems);
        }
        if let Some(change) = &a.label {
            let field = format!("{field}.label");
            match (&change.pod, &change.namespace) {
                (Some(pod), None) if !pods.contains(pod.as_str()) => problems.push((
                    format!("{field}.pod"),
                    "pod",
                    pod.clone(),
                    format!("unknown pod `{pod}` (pods: {})", join(pods)),
                )),
                (None, Some(ns)) if !s.fixtures.namespaces.iter().any(|n| &n.name == ns) => {
                    problems.push((
                        format!("{field}.namespace"),
                        "namespace",
                        ns.clone(),
                        format!("unknown namespace `{ns}`"),
                    ))
                }
                (Some(_), None) | (None, Some(_)) => {}
                _ => problems.push((
                    field.clone(),
                    "label",
                    String::new(),
                    "`label` names exactly one of `pod`, `namespace`".into(),
                )),
            }
            if change.labels.is_empty() {
                problems.push((
                    format!("{field}.labels"),
                    "labels",
                    String::new(),
                    "`labels` sets or removes at least one label".into(),
                ));
            }
        }
        for pod in [&a.replace_pods, &a.make_unready].into_iter().flatten() {
            if !pods.contains(pod.as_str()) {
                problems.push((
                    field.clone(),
                    "before",
                    pod.clone(),
                    format!("unknown pod `{pod}` (pods: {})", join(pods)),
                ));
            }
        }
        if let Some(pod) = &a.make_unready {
            let http = s
                .fixtures
                .pods
                .iter()
                .find(|p| &p.name == pod)
                .is_some_and(|p| !p.main_ports().http.is_empty());
            if !http {
                problems.push((
                    field.clone(),
                    "make_unready",
                    pod.clone(),
                    "only a pod serving HTTP (its readiness probe) can be made unready".into(),
                ));
            }
        }
        if let Some(policy) = &a.delete_policy {
            if !s.fixtures.policies.iter().any(|p| &p.name == policy) {
                problems.push((
                    field.clone(),
                    "delete_policy",
                    policy.clone(),
                    format!("unknown policy `{policy}`"),
                ));
            }
        }
    }
    for pod in &check.assert.not_served_by {
        if !pods.contains(pod.as_str()) {
            problems.push((
                format!("{at}.assert.not_served_by"),
                "not_served_by",
                pod.clone(),
                format!("unknown pod `{pod}`"),
            ));
        }
    }
    if !check.except.is_empty() && to.pod.is_none() {
        problems.push((
            format!("{at}.except"),
            "except",
            String::new(),
            "`except` applies to checks whose target is a pod".into(),
        ));
    }
    for (j, e) in check.except.iter().enumerate() {
        for (key, pattern) in [("from", &e.from), ("to", &e.to)] {
            let (ns, pod) = pattern.split_once('/').unwrap_or(("*", pattern.as_str()));
            let ns_ok = ns == "*"
                || s.fixtures.namespaces.iter().any(|n| n.name == ns)
                || (s.fixtures.namespaces.is_empty() && ns == "main");
            let pod_ok = pod == "*"
                || pods.contains(pod)
                || s.fixtures
                    .pods
                    .iter()
                    .any(|p| p.per_node && pod.starts_with(&format!("{}-", p.name)));
            if !ns_ok || !pod_ok {
                problems.push((
                    format!("{at}.except[{j}].{key}"),
                    key,
                    pattern.clone(),
                    format!("`{pattern}` names no fixture pod (`<namespace>/<pod>`, `*` for any)"),
                ));
            }
        }
    }
    if to.address.is_some() && to.service.is_none() {
        problems.push((
            format!("{field}.address"),
            "address",
            String::new(),
            "`address` goes with `service`".into(),
        ));
    }
    if to.pair.is_some() && to.pod.is_none() {
        problems.push((
            format!("{field}.pair"),
            "pair",
            String::new(),
            "`pair` goes with `pod`".into(),
        ));
    }
    if check.record == Some(DnsRecordKind::Ptr) {
        let by_cluster_ip =
            to.service.is_some() && matches!(to.address, None | Some(ServiceAddress::ClusterIp));
        let by_pod = to.pod.as_deref().is_some_and(|p| p != "*");
        if by_cluster_ip == by_pod || to.name.is_some() {
            problems.push((
                field.to_string(),
                "to",
                String::new(),
                "a PTR check looks up one address: `to.service` (its cluster IP) or `to.pod` naming one pod".into(),
            ));
        }
    }
    if (to.nodes.is_some() || to.exclude_client_node) && to.node_port.is_none() {
        problems.push((
            format!("{field}.nodes"),
            "nodes",
            String::new(),
            "`nodes` and `exclude_client_node` go with `node_port`".into(),
        ));
    }
    if let Some(a) = &check.assert.answers {
        let given = [
            &a.cluster_ip_of,
            &a.ready_pod_ips_of,
            &a.pod_ip_of,
            &a.srv_port_of,
        ]
        .iter()
        .filter(|o| o.is_some())
        .count()
            + usize::from(a.api_server_cluster_ip)
            + usize::from(a.synthetic_endpoints_of.is_some())
            + usize::from(!a.names.is_empty());
        if given != 1 {
            problems.push((
                format!("{at}.assert.answers"),
                "answers",
                String::new(),
                "give exactly one of cluster_ip_of, ready_pod_ips_of, pod_ip_of, srv_port_of, api_server_cluster_ip, synthetic_endpoints_of, names"
                    .into(),
            ));
        }
        // Addresses never answer a PTR query, and names answer only PTR.
        let ptr = check.record == Some(DnsRecordKind::Ptr);
        if ptr != (given == 1 && !a.names.is_empty()) {
            problems.push((
                format!("{at}.assert.answers"),
                "answers",
                String::new(),
                if ptr {
                    "a PTR lookup answers names: give `names`".into()
                } else {
                    "`names` are what a PTR lookup answers: give `record: PTR`".into()
                },
            ));
        }
        for svc in [&a.cluster_ip_of, &a.ready_pod_ips_of]
            .into_iter()
            .flatten()
        {
            if !services.contains_key(svc.as_str()) {
                problems.push((
                    format!("{at}.assert.answers"),
                    "answers",
                    svc.clone(),
                    format!("unknown service `{svc}`"),
                ));
            }
        }
        if let Some(sp) = &a.srv_port_of {
            let ok = sp.split_once('/').is_some_and(|(svc, port)| {
                services
                    .get(svc)
                    .is_some_and(|f| f.ports.iter().any(|p| p.name.as_deref() == Some(port)))
            });
            if !ok {
                problems.push((
                    format!("{at}.assert.answers.srv_port_of"),
                    "srv_port_of",
                    sp.clone(),
                    "must name `<service>/<port name>` of a fixture Service".into(),
                ));
            }
        }
        if let Some(p) = &a.pod_ip_of {
            if !pods.contains(p.as_str()) && !set_members.contains(p) {
                problems.push((
                    format!("{at}.assert.answers.pod_ip_of"),
                    "pod_ip_of",
                    p.clone(),
                    format!("unknown pod `{p}`"),
                ));
            }
        }
    }
    let _ = s;
}

/// Why a check has no IPv6 twin, if it has none: what it targets or
/// expects exists in IPv4 only (or, SRV, in no family).
fn ipv4_only(check: &Check) -> Option<&'static str> {
    let answers = check.assert.answers.as_ref();
    if check.to.api_server || answers.is_some_and(|a| a.api_server_cluster_ip) {
        Some("the kubernetes Service has one address, IPv4")
    } else if answers.is_some_and(|a| a.synthetic_endpoints_of.is_some()) {
        Some("synthetic endpoints are IPv4 addresses")
    } else if check.record == Some(DnsRecordKind::Srv) {
        Some("SRV records name hosts, not addresses of a family")
    } else {
        None
    }
}

/// A family named twice in a `families` list.
fn repeated_family(families: &[IpFamily], field: &str) -> Option<Problem> {
    let mut seen = BTreeSet::new();
    families.iter().find(|f| !seen.insert(**f)).map(|f| {
        (
            field.to_string(),
            "families",
            f.as_str().to_string(),
            format!("`{}` is listed twice", f.as_str()),
        )
    })
}

fn join(names: &BTreeSet<&str>) -> String {
    if names.is_empty() {
        "none".into()
    } else {
        names.iter().copied().collect::<Vec<_>>().join(", ")
    }
}
