//! The agent's wire contract with the harness: a batch of probe specs goes in
//! on stdin as JSON, a batch of results comes out on stdout as JSON. Its own
//! crate (serde only), so the harness library links the contract and not the
//! agent's runtime.

use serde::{Deserialize, Serialize};

/// Upper bounds that keep every probe loop finite, whatever a scenario asks.
pub const MAX_SAMPLES: u32 = 1000;
pub const MAX_TIMEOUT_MS: u64 = 30_000;
/// Upper bound of one name resolution (search walk, tries and timeouts
/// included), whatever resolv.conf asks for.
pub const MAX_RESOLVE_MS: u64 = 30_000;
/// Upper bound of one throughput stream (seconds, not minutes).
pub const MAX_STREAM_MS: u64 = 10_000;

/// What the TCP and UDP echo servers send first: `NETCONFORM <hostname> <peer-ip>`,
/// so a client learns which pod answered and which source address it saw.
pub const GREETING_PREFIX: &str = "NETCONFORM";

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
pub struct ProbeBatch {
    pub probes: Vec<ProbeSpec>,
    /// Run the probes one after another instead of all at once (latency
    /// measured without the batch's own contention).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub sequential: bool,
}

/// One request on a probe session's stdin (`netconform-agent session`), one
/// JSON line each: the batch and the id its results are kept under.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SessionRequest {
    pub id: String,
    pub batch: ProbeBatch,
}

/// The answer to a [`SessionRequest`] on the session's stdout, one JSON line.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SessionReply {
    pub id: String,
    /// The batch's results, or why the request was refused (not valid JSON,
    /// an id that is not `[a-z0-9-]{1,64}`).
    pub answer: SessionAnswer,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SessionAnswer {
    Results(Vec<ProbeResult>),
    Refused(String),
}

// No deny_unknown_fields here: serde does not support it together with flatten.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub struct ProbeSpec {
    /// Echoed back in the result so the harness can match them up.
    pub id: String,
    #[serde(flatten)]
    pub kind: ProbeKind,
    /// Per-attempt timeout.
    pub timeout_ms: u64,
    /// How many attempts (latency samples), run one after another.
    pub samples: u32,
    /// Stop at the first connected attempt (waiting for something to converge;
    /// `samples` still bounds the attempts).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub until_connected: bool,
    /// Stop after this many attempts in a row that did not connect (0:
    /// never), whether they timed out or failed at once. For a probe that
    /// must connect the verdict is then decided, and every further attempt
    /// could wait out its whole timeout: under a black hole, a 55-sample
    /// latency probe would otherwise take 55 timeouts.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub stop_after_failures: u32,
    /// Pause between attempts.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub interval_ms: u64,
    /// TCP: bytes sent through the echo server and checked on return; UDP: the
    /// datagram's payload size, checked in the reply. 0: a plain probe.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub payload_bytes: u64,
    /// TCP: after the greeting, stream through the echo server for this long
    /// and count what comes back (throughput). 0: a plain probe.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub stream_ms: u64,
    /// A target given by name is reached at its IPv6 (AAAA) address only,
    /// never its IPv4 one (the IPv6 twin of a check).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub ipv6: bool,
    /// TCP and UDP: take source ports from outside the kernel's ephemeral
    /// range (the agent binds them itself). For a probe that waits for a
    /// Service's data path: a connection sent before the Service is
    /// programmed leaves a conntrack entry without its translation on the
    /// client's node (a TCP one for 120 s), and a later connection from the
    /// same client that happened to get the same source port would follow
    /// that entry into nowhere. From separate ports, the wait's connections
    /// can never share a flow with a check's.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub reserved_source_ports: bool,
}

impl ProbeSpec {
    /// How long this probe may take in all: every sample's timeout, plus one
    /// name resolution's budget when the target is a name (a resolution that
    /// waits out its tries ends the probe). The agent starts no sample past it;
    /// the harness waits for it (plus the exec's own overhead).
    pub fn time_bound(&self) -> std::time::Duration {
        let samples = u64::from(self.samples.clamp(1, MAX_SAMPLES));
        let per_sample = self.timeout_ms.clamp(1, MAX_TIMEOUT_MS)
            + self.stream_ms.min(MAX_STREAM_MS)
            + self.interval_ms.min(MAX_TIMEOUT_MS);
        let names = match &self.kind {
            ProbeKind::Tcp { host, .. }
            | ProbeKind::Udp { host, .. }
            | ProbeKind::Http { host, .. }
            | ProbeKind::Https { host, .. } => host.parse::<std::net::IpAddr>().is_err(),
            ProbeKind::Dns { .. } => true,
            ProbeKind::Icmp { .. } | ProbeKind::Identity => false,
        };
        std::time::Duration::from_millis(
            samples * per_sample + if names { MAX_RESOLVE_MS } else { 0 },
        )
    }
}

/// Where fixture pods mount the cluster's root CA (the `kube-root-ca.crt`
/// ConfigMap every namespace has), which signs the API server's certificate.
pub const KUBE_ROOT_CA: &str = "/var/run/netconform/kube-root-ca/ca.crt";

/// The bytes a payload probe sends: a pattern whose every position is checkable.
pub fn payload(len: usize) -> Vec<u8> {
    (0..len).map(|i| (i % 251) as u8).collect()
}

/// Where `got` first differs from the payload of `want_len` bytes, if it does.
pub fn payload_mismatch(got: &[u8], want_len: usize) -> Option<String> {
    if got.len() != want_len {
        return Some(format!("{} of {want_len} bytes came back", got.len()));
    }
    got.iter()
        .enumerate()
        .find(|(i, b)| **b != (*i % 251) as u8)
        .map(|(i, _)| format!("byte {i} of {want_len} differs"))
}

fn is_zero<T: Default + PartialEq>(v: &T) -> bool {
    *v == T::default()
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum ProbeKind {
    /// TCP connect, then read the echo server's greeting.
    Tcp { host: String, port: u16 },
    /// One datagram out, one reply back.
    Udp { host: String, port: u16 },
    /// HTTP GET; the agent's own server answers /clientip, /hostname, /healthz.
    Http {
        host: String,
        port: u16,
        path: String,
    },
    /// A DNS lookup through the pod's resolver (resolv.conf, search path included).
    Dns {
        name: String,
        record: DnsRecord,
        /// Every query over TCP, as with resolv.conf's `use-vc` (clients that
        /// only speak TCP, and what a truncated UDP answer falls back to).
        #[serde(default, skip_serializing_if = "std::ops::Not::not")]
        tcp: bool,
    },
    /// HTTPS GET with the server's certificate verified against `ca_file` (a
    /// PEM file in the pod) for `server_name`: how a pod talks to the API server.
    Https {
        host: String,
        port: u16,
        path: String,
        server_name: String,
        ca_file: String,
    },
    /// ICMP echo (ping) through an unprivileged ping socket; needs the pod's
    /// `net.ipv4.ping_group_range` to include its group. Never to a name.
    Icmp { host: String },
    /// The pod's own hostname, interface addresses and DNS search path.
    Identity,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum DnsRecord {
    A,
    Aaaa,
    Srv,
    /// The name is the reverse name (`...in-addr.arpa.` or `...ip6.arpa.`).
    Ptr,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub struct ProbeResult {
    pub id: String,
    pub attempts: Vec<Attempt>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub struct Attempt {
    pub outcome: Outcome,
    /// Time from the first packet to the answer (or to the failure).
    pub latency_us: u64,
    /// Hostname of the pod that answered, where the protocol tells it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub server: Option<String>,
    /// The source address the server saw for this client.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub seen_client_ip: Option<String>,
    /// HTTP status, DNS answers, or the error text.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
    /// DNS answers (addresses, or `priority weight port target` for SRV); for
    /// identity, the pod's interface addresses.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub answers: Vec<String>,
    /// Identity: the resolv.conf search domains.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub search: Vec<String>,
    /// Every DNS query this attempt sent (name lookups of TCP/UDP/HTTP targets
    /// and DNS probes), in order, as a pod's libc would have sent them.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub dns_queries: Vec<DnsQuery>,
    /// A TCP stream through the echo server (`stream_ms`): what came back.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stream: Option<StreamFigures>,
}

/// Bytes that made the round trip through the echo server, and how long from
/// the first byte sent to the last byte back.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub struct StreamFigures {
    pub bytes: u64,
    pub duration_us: u64,
}

impl StreamFigures {
    /// Megabits per second, as iperf reports them.
    pub fn mbit_per_s(&self) -> f64 {
        self.bytes as f64 * 8.0 / self.duration_us.max(1) as f64
    }
}

/// One DNS query of the agent's stub resolver and what became of it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub struct DnsQuery {
    /// The fully qualified name asked (a search-path candidate, trailing dot).
    pub name: String,
    pub record: DnsRecord,
    /// `ip:port` of the nameserver.
    pub server: String,
    pub transport: DnsTransport,
    /// 1-based try of this name on this server (resolv.conf `attempts`).
    pub attempt: u32,
    pub result: DnsQueryResult,
    /// Send to answer (or to giving up on this query).
    pub latency_us: u64,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DnsTransport {
    Udp,
    Tcp,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DnsQueryResult {
    /// Records of the asked type came back.
    Answer,
    /// The name exists but has no record of this type.
    NoData,
    NxDomain,
    ServFail,
    /// The server answered with another error code (REFUSED, FORMERR, ...).
    OtherRcode,
    /// The UDP answer had the TC bit: the query is repeated over TCP.
    Truncated,
    /// No answer within resolv.conf's `timeout`: a lost query or a lost answer.
    Timeout,
    /// ICMP port unreachable or a TCP reset: nothing listens there.
    Refused,
    /// A local socket error, or an answer that could not be decoded.
    Error,
}

impl DnsQueryResult {
    /// The name it has on the wire (snake_case).
    pub fn as_str(self) -> &'static str {
        match self {
            DnsQueryResult::Answer => "answer",
            DnsQueryResult::NoData => "no_data",
            DnsQueryResult::NxDomain => "nx_domain",
            DnsQueryResult::ServFail => "serv_fail",
            DnsQueryResult::OtherRcode => "other_rcode",
            DnsQueryResult::Truncated => "truncated",
            DnsQueryResult::Timeout => "timeout",
            DnsQueryResult::Refused => "refused",
            DnsQueryResult::Error => "error",
        }
    }

    /// The query got no answer at all (what the resolver retries).
    pub fn is_lost(self) -> bool {
        self == DnsQueryResult::Timeout
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    Connected,
    Refused,
    TimedOut,
    DnsError,
    /// DNS answered that the name has no such record (NXDOMAIN, or no data).
    NotFound,
    /// Connected, but the answer was not what the protocol promises.
    BadReply,
    /// A local error (unreachable network, bad address) before anything was sent.
    Error,
}

impl Outcome {
    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Connected => "connected",
            Outcome::Refused => "refused",
            Outcome::TimedOut => "timed_out",
            Outcome::DnsError => "dns_error",
            Outcome::NotFound => "not_found",
            Outcome::BadReply => "bad_reply",
            Outcome::Error => "error",
        }
    }
}

impl std::fmt::Display for Outcome {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Parses a greeting line `NETCONFORM <hostname> <peer-ip>[ <rest>]`.
pub fn parse_greeting(line: &str) -> Option<(String, String)> {
    let mut words = line.split_whitespace();
    (words.next()? == GREETING_PREFIX).then_some(())?;
    Some((words.next()?.to_string(), normalise_ip(words.next()?)))
}

/// Writes `::ffff:a.b.c.d` (how a dual-stack socket reports IPv4 peers) as `a.b.c.d`.
pub fn normalise_ip(ip: &str) -> String {
    ip.strip_prefix("::ffff:")
        .filter(|v4| v4.contains('.'))
        .unwrap_or(ip)
        .to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn batch_round_trips_with_flattened_kind() {
        let json = r#"{"probes":[{"id":"a","kind":"tcp","host":"10.0.0.1","port":80,"timeout_ms":1000,"samples":3},
                       {"id":"b","kind":"dns","name":"kubernetes.default","record":"SRV","timeout_ms":1000,"samples":1}]}"#;
        let batch: ProbeBatch = serde_json::from_str(json).unwrap();
        assert_eq!(
            batch.probes[0].kind,
            ProbeKind::Tcp {
                host: "10.0.0.1".into(),
                port: 80
            }
        );
        assert_eq!(
            batch.probes[1].kind,
            ProbeKind::Dns {
                name: "kubernetes.default".into(),
                record: DnsRecord::Srv,
                tcp: false,
            }
        );
        let again: ProbeBatch =
            serde_json::from_str(&serde_json::to_string(&batch).unwrap()).unwrap();
        assert_eq!(again, batch);
    }

    #[test]
    fn payload_mismatches_are_located() {
        let p = payload(1000);
        assert_eq!(payload_mismatch(&p, 1000), None);
        assert_eq!(
            payload_mismatch(&p[..10], 1000).unwrap(),
            "10 of 1000 bytes came back"
        );
        let mut bad = p.clone();
        bad[600] ^= 1;
        assert_eq!(
            payload_mismatch(&bad, 1000).unwrap(),
            "byte 600 of 1000 differs"
        );
    }

    #[test]
    fn greeting_is_parsed_and_mapped_addresses_unwrapped() {
        assert_eq!(
            parse_greeting("NETCONFORM pod-a ::ffff:10.1.2.3\n"),
            Some(("pod-a".into(), "10.1.2.3".into()))
        );
        assert_eq!(
            parse_greeting("NETCONFORM pod-a fd00::1 payload"),
            Some(("pod-a".into(), "fd00::1".into()))
        );
        assert_eq!(parse_greeting("HELLO pod-a 10.1.2.3"), None);
        assert_eq!(parse_greeting("NETCONFORM pod-a"), None);
    }
}
