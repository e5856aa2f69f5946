//! A stub resolver that asks what a pod's libc would ask, the way glibc asks
//! it, and keeps a record of every query.
//!
//! Why not a ready resolver: the verdict must be the one a real client would
//! reach (resolv.conf's `ndots`, `search`, `timeout`, `attempts` honoured, with
//! glibc's defaults of 5 s and 2 tries), and a lost query that the client's own
//! retry covered must be visible as loss, not hidden inside a resolver or
//! turned into a failure. hickory-proto encodes and decodes the messages.
//!
//! Semantics (glibc's `res_search`/`res_send`, documented in docs/dns.md):
//! - names ending in `.` are asked as they are; names with at least `ndots`
//!   dots are asked as they are first, then with each search domain; others
//!   go through the search domains first and are asked as they are last;
//! - NXDOMAIN and NODATA move on to the next candidate, SERVFAIL too; a query
//!   that no server answered (every try timed out or was refused) ends the walk;
//! - each candidate is tried `attempts` times on each nameserver in turn, each
//!   try waiting `timeout`, one query at a time (glibc's `single-request`), a
//!   fresh socket for every try;
//! - a truncated UDP answer is asked again over TCP (`use-vc` asks over TCP
//!   from the start).

use crate::protocol::{DnsQuery, DnsQueryResult, DnsRecord, DnsTransport, MAX_RESOLVE_MS};
use hickory_proto::op::{Message, Query, ResponseCode};
use hickory_proto::rr::{Name, RData, RecordType};
use std::io;
use std::net::{IpAddr, SocketAddr};
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpStream, UdpSocket};
use tokio::time::timeout;

/// glibc's defaults (`RES_TIMEOUT`, `RES_DFLRETRY`, `ndots`).
const DEFAULT_TIMEOUT_S: u32 = 5;
const DEFAULT_ATTEMPTS: u32 = 2;
/// glibc caps `attempts` at 5 and `timeout` at 30 s.
const MAX_ATTEMPTS: u32 = 5;
const MAX_TIMEOUT_S: u32 = 30;

/// What the client side of DNS is configured to do: the parts of resolv.conf
/// that change which queries are sent and how long they are waited for.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ClientConf {
    pub nameservers: Vec<SocketAddr>,
    pub search: Vec<String>,
    pub ndots: u32,
    pub timeout: Duration,
    pub attempts: u32,
    pub use_tcp: bool,
}

impl ClientConf {
    pub fn parse(text: &str) -> Result<ClientConf, String> {
        let conf = resolv_conf::Config::parse(text).map_err(|e| format!("resolv.conf: {e}"))?;
        let nameservers: Vec<SocketAddr> = conf
            .nameservers
            .iter()
            .map(|ip| SocketAddr::new(IpAddr::from(ip), 53))
            .take(3)
            .collect();
        if nameservers.is_empty() {
            return Err("resolv.conf names no nameserver".into());
        }
        let search = conf
            .get_last_search_or_domain()
            .map(|d| d.trim_end_matches('.').to_string())
            .filter(|d| !d.is_empty())
            .collect();
        // resolv-conf reports glibc's defaults when an option is absent.
        let timeout_s = if conf.timeout == 0 {
            DEFAULT_TIMEOUT_S
        } else {
            conf.timeout.min(MAX_TIMEOUT_S)
        };
        let attempts = if conf.attempts == 0 {
            DEFAULT_ATTEMPTS
        } else {
            conf.attempts.min(MAX_ATTEMPTS)
        };
        Ok(ClientConf {
            nameservers,
            search,
            ndots: conf.ndots.min(15),
            timeout: Duration::from_secs(timeout_s.into()),
            attempts,
            use_tcp: conf.use_vc,
        })
    }

    /// The pod's own /etc/resolv.conf.
    pub fn system() -> Result<ClientConf, String> {
        let text = std::fs::read_to_string("/etc/resolv.conf")
            .map_err(|e| format!("reading /etc/resolv.conf: {e}"))?;
        ClientConf::parse(&text)
    }

    /// The names asked for `name`, in order, each fully qualified.
    pub fn candidates(&self, name: &str) -> Vec<String> {
        if let Some(absolute) = name.strip_suffix('.') {
            return vec![format!("{absolute}.")];
        }
        let searched = self.search.iter().map(|d| format!("{name}.{d}."));
        let as_is = std::iter::once(format!("{name}."));
        let dots = name.matches('.').count() as u32;
        let mut out: Vec<String> = if dots >= self.ndots {
            as_is.chain(searched).collect()
        } else {
            searched.chain(as_is).collect()
        };
        out.dedup();
        out
    }
}

/// The outcome of resolving one name: records or why not, and every query sent.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Resolution {
    pub result: Result<Vec<RData>, ResolveError>,
    pub queries: Vec<DnsQuery>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ResolveError {
    /// Every candidate was NXDOMAIN or NODATA: the answer is "no such record".
    NotFound,
    /// A server answered SERVFAIL (or another error code) and no candidate resolved.
    ServerFailure(ResponseCode),
    /// No server answered one of the queries within the client's tries.
    NoAnswer {
        refused: bool,
    },
    /// The client's whole budget ([`MAX_RESOLVE_MS`]) ran out.
    OutOfTime,
    Local(String),
}

impl std::fmt::Display for ResolveError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ResolveError::NotFound => {
                f.write_str("no such record (NXDOMAIN or no data for every search candidate)")
            }
            ResolveError::ServerFailure(code) => write!(f, "the nameserver answered {code}"),
            ResolveError::NoAnswer { refused: true } => {
                f.write_str("no nameserver listens (port unreachable on every try)")
            }
            ResolveError::NoAnswer { refused: false } => {
                f.write_str("no answer from any nameserver within the resolver's tries")
            }
            ResolveError::OutOfTime => write!(f, "resolution took longer than {MAX_RESOLVE_MS} ms"),
            ResolveError::Local(e) => f.write_str(e),
        }
    }
}

fn record_type(record: DnsRecord) -> RecordType {
    match record {
        DnsRecord::A => RecordType::A,
        DnsRecord::Aaaa => RecordType::AAAA,
        DnsRecord::Srv => RecordType::SRV,
        DnsRecord::Ptr => RecordType::PTR,
    }
}

/// Resolves `name` for `record` as glibc would, bounded by [`MAX_RESOLVE_MS`].
pub async fn resolve(conf: &ClientConf, name: &str, record: DnsRecord) -> Resolution {
    let mut queries = Vec::new();
    let walk = search_walk(conf, name, record, &mut queries);
    let result = match timeout(Duration::from_millis(MAX_RESOLVE_MS), walk).await {
        Ok(r) => r,
        Err(_) => Err(ResolveError::OutOfTime),
    };
    Resolution { result, queries }
}

async fn search_walk(
    conf: &ClientConf,
    name: &str,
    record: DnsRecord,
    log: &mut Vec<DnsQuery>,
) -> Result<Vec<RData>, ResolveError> {
    let mut servfail = None;
    for candidate in conf.candidates(name) {
        let fqdn = Name::from_ascii(&candidate)
            .map_err(|e| ResolveError::Local(format!("`{name}` is not a valid name: {e}")))?;
        match ask_servers(conf, &fqdn, record, log).await {
            Asked::Records(r) => return Ok(r),
            Asked::NxDomainOrNoData => {}
            Asked::Failure(code) => servfail = Some(code),
            Asked::Unanswered { refused } => return Err(ResolveError::NoAnswer { refused }),
        }
    }
    Err(servfail
        .map(ResolveError::ServerFailure)
        .unwrap_or(ResolveError::NotFound))
}

enum Asked {
    Records(Vec<RData>),
    NxDomainOrNoData,
    Failure(ResponseCode),
    Unanswered { refused: bool },
}

/// One candidate: `attempts` rounds over the nameservers until one answers.
async fn ask_servers(
    conf: &ClientConf,
    name: &Name,
    record: DnsRecord,
    log: &mut Vec<DnsQuery>,
) -> Asked {
    let mut all_refused = true;
    for attempt in 1..=conf.attempts {
        for server in &conf.nameservers {
            let transport = if conf.use_tcp {
                DnsTransport::Tcp
            } else {
                DnsTransport::Udp
            };
            let mut reply = exchange(*server, transport, name, record, conf.timeout).await;
            log.push(query_record(
                name, record, *server, transport, attempt, &reply,
            ));
            if matches!(&reply.answer, Answer::Message(m) if m.metadata.truncation)
                && transport == DnsTransport::Udp
            {
                reply = exchange(*server, DnsTransport::Tcp, name, record, conf.timeout).await;
                log.push(query_record(
                    name,
                    record,
                    *server,
                    DnsTransport::Tcp,
                    attempt,
                    &reply,
                ));
            }
            match reply.answer {
                Answer::Message(m) => return classify(m, record),
                Answer::Refused => {}
                Answer::Timeout | Answer::Error => all_refused = false,
            }
        }
    }
    Asked::Unanswered {
        refused: all_refused,
    }
}

fn classify(message: Message, record: DnsRecord) -> Asked {
    match message.metadata.response_code {
        ResponseCode::NoError => {
            let want = record_type(record);
            let records: Vec<RData> = message
                .answers
                .into_iter()
                .filter(|r| r.record_type() == want)
                .map(|r| r.data)
                .collect();
            if records.is_empty() {
                Asked::NxDomainOrNoData
            } else {
                Asked::Records(records)
            }
        }
        ResponseCode::NXDomain => Asked::NxDomainOrNoData,
        code => Asked::Failure(code),
    }
}

enum Answer {
    Message(Message),
    Refused,
    Timeout,
    Error,
}

struct Reply {
    answer: Answer,
    latency: Duration,
}

fn query_record(
    name: &Name,
    record: DnsRecord,
    server: SocketAddr,
    transport: DnsTransport,
    attempt: u32,
    reply: &Reply,
) -> DnsQuery {
    let result = match &reply.answer {
        Answer::Message(m) if m.metadata.truncation && transport == DnsTransport::Udp => {
            DnsQueryResult::Truncated
        }
        Answer::Message(m) => match m.metadata.response_code {
            ResponseCode::NoError
                if m.answers
                    .iter()
                    .any(|r| r.record_type() == record_type(record)) =>
            {
                DnsQueryResult::Answer
            }
            ResponseCode::NoError => DnsQueryResult::NoData,
            ResponseCode::NXDomain => DnsQueryResult::NxDomain,
            ResponseCode::ServFail => DnsQueryResult::ServFail,
            _ => DnsQueryResult::OtherRcode,
        },
        Answer::Refused => DnsQueryResult::Refused,
        Answer::Timeout => DnsQueryResult::Timeout,
        Answer::Error => DnsQueryResult::Error,
    };
    DnsQuery {
        name: name.to_ascii(),
        record,
        server: server.to_string(),
        transport,
        attempt,
        result,
        latency_us: reply
            .latency
            .as_micros()
            .try_into()
            .unwrap_or(u64::MAX)
            .max(1),
    }
}

/// One query, one answer (or none within `limit`).
async fn exchange(
    server: SocketAddr,
    transport: DnsTransport,
    name: &Name,
    record: DnsRecord,
    limit: Duration,
) -> Reply {
    let mut query = Message::query();
    query.metadata.recursion_desired = true;
    query.add_query(Query::query(name.clone(), record_type(record)));
    let id = query.metadata.id;
    let started = Instant::now();
    let wire = match query.to_vec() {
        Ok(w) => w,
        Err(_) => {
            return Reply {
                answer: Answer::Error,
                latency: started.elapsed(),
            }
        }
    };
    let answer = match timeout(limit, async {
        match transport {
            DnsTransport::Udp => udp_exchange(server, &wire, id).await,
            DnsTransport::Tcp => tcp_exchange(server, &wire).await,
        }
    })
    .await
    {
        Err(_) => Answer::Timeout,
        Ok(Ok(bytes)) => match Message::from_vec(&bytes) {
            Ok(m) => Answer::Message(m),
            Err(_) => Answer::Error,
        },
        Ok(Err(e))
            if matches!(
                e.kind(),
                io::ErrorKind::ConnectionRefused | io::ErrorKind::ConnectionReset
            ) =>
        {
            Answer::Refused
        }
        Ok(Err(_)) => Answer::Error,
    };
    Reply {
        answer,
        latency: started.elapsed(),
    }
}

async fn udp_exchange(server: SocketAddr, wire: &[u8], id: u16) -> io::Result<Vec<u8>> {
    let local: SocketAddr = if server.is_ipv4() {
        "0.0.0.0:0".parse().expect("literal")
    } else {
        "[::]:0".parse().expect("literal")
    };
    let socket = UdpSocket::bind(local).await?;
    socket.connect(server).await?;
    socket.send(wire).await?;
    let mut buf = vec![0u8; 65535];
    loop {
        let n = socket.recv(&mut buf).await?;
        // A stray datagram with another id is not our answer (glibc skips those too).
        if n >= 2 && u16::from_be_bytes([buf[0], buf[1]]) == id {
            buf.truncate(n);
            return Ok(buf);
        }
    }
}

async fn tcp_exchange(server: SocketAddr, wire: &[u8]) -> io::Result<Vec<u8>> {
    let mut stream = TcpStream::connect(server).await?;
    let len = u16::try_from(wire.len()).map_err(|_| io::Error::other("query too long"))?;
    let mut framed = len.to_be_bytes().to_vec();
    framed.extend_from_slice(wire);
    stream.write_all(&framed).await?;
    let mut len = [0u8; 2];
    stream.read_exact(&mut len).await?;
    let mut buf = vec![0u8; u16::from_be_bytes(len) as usize];
    stream.read_exact(&mut buf).await?;
    Ok(buf)
}

#[cfg(test)]
mod tests {
    use super::*;

    const K8S: &str = "search ns1.svc.cluster.local svc.cluster.local cluster.local\nnameserver 10.96.0.10\noptions ndots:5\n";

    #[test]
    fn kubelet_resolv_conf_gets_glibc_defaults() {
        let c = ClientConf::parse(K8S).unwrap();
        assert_eq!(c.nameservers, vec!["10.96.0.10:53".parse().unwrap()]);
        assert_eq!(
            (c.ndots, c.timeout, c.attempts, c.use_tcp),
            (5, Duration::from_secs(5), 2, false)
        );
        let c = ClientConf::parse("nameserver 10.0.0.1\noptions timeout:1 attempts:9 use-vc\n")
            .unwrap();
        assert_eq!(
            (c.ndots, c.timeout, c.attempts, c.use_tcp),
            (1, Duration::from_secs(1), 5, true)
        );
        assert!(ClientConf::parse("search a\n")
            .unwrap_err()
            .contains("no nameserver"));
    }

    #[test]
    fn candidates_follow_ndots_like_glibc() {
        let c = ClientConf::parse(K8S).unwrap();
        // 4 dots < ndots 5: the search domains first, the name as it is last.
        assert_eq!(
            c.candidates("web.ns1.svc.cluster.local"),
            [
                "web.ns1.svc.cluster.local.ns1.svc.cluster.local.",
                "web.ns1.svc.cluster.local.svc.cluster.local.",
                "web.ns1.svc.cluster.local.cluster.local.",
                "web.ns1.svc.cluster.local.",
            ]
        );
        assert_eq!(
            c.candidates("web.ns1.svc.cluster.local."),
            ["web.ns1.svc.cluster.local."]
        );
        let one = ClientConf { ndots: 1, ..c };
        assert_eq!(one.candidates("web.ns1")[0], "web.ns1.");
        assert_eq!(one.candidates("web")[0], "web.ns1.svc.cluster.local.");
    }

    /// A one-shot DNS server on loopback: drops the first `drop` queries, then
    /// answers each with `answer`.
    async fn server(drop: usize, answer: fn(&Message) -> Message) -> SocketAddr {
        let socket = UdpSocket::bind("127.0.0.1:0").await.unwrap();
        let addr = socket.local_addr().unwrap();
        tokio::spawn(async move {
            let mut buf = vec![0u8; 512];
            for i in 0..16 {
                let Ok((n, peer)) = socket.recv_from(&mut buf).await else {
                    return;
                };
                if i < drop {
                    continue;
                }
                let q = Message::from_vec(&buf[..n]).unwrap();
                let _ = socket.send_to(&answer(&q).to_vec().unwrap(), peer).await;
            }
        });
        addr
    }

    fn a_record(q: &Message) -> Message {
        use hickory_proto::rr::{rdata::A, Record};
        let mut m = Message::response(q.metadata.id, q.metadata.op_code);
        m.add_query(q.queries[0].clone());
        if q.queries[0].name().to_ascii() == "web.ns1." {
            m.add_answer(Record::from_rdata(
                q.queries[0].name().clone(),
                5,
                RData::A(A::new(10, 1, 2, 3)),
            ));
        } else {
            m.metadata.response_code = ResponseCode::NXDomain;
        }
        m
    }

    fn conf(server: SocketAddr, timeout_ms: u64) -> ClientConf {
        ClientConf {
            nameservers: vec![server],
            search: vec!["ns1".into(), "svc".into()],
            ndots: 5,
            timeout: Duration::from_millis(timeout_ms),
            attempts: 2,
            use_tcp: false,
        }
    }

    #[tokio::test]
    async fn search_walk_is_logged_query_by_query() {
        let c = conf(server(0, a_record).await, 1000);
        let r = resolve(&c, "web", DnsRecord::A).await;
        assert_eq!(
            r.result.unwrap(),
            vec![RData::A(hickory_proto::rr::rdata::A::new(10, 1, 2, 3))]
        );
        let asked: Vec<(&str, DnsQueryResult)> = r
            .queries
            .iter()
            .map(|q| (q.name.as_str(), q.result))
            .collect();
        assert_eq!(asked, [("web.ns1.", DnsQueryResult::Answer)]);
        let r = resolve(&c, "nope", DnsRecord::A).await;
        assert_eq!(r.result, Err(ResolveError::NotFound));
        assert_eq!(
            r.queries.len(),
            3,
            "ns1, svc, then the name itself: {:?}",
            r.queries
        );
    }

    #[tokio::test]
    async fn a_lost_query_is_retried_and_recorded_as_lost() {
        let c = conf(server(1, a_record).await, 200);
        let r = resolve(&c, "web", DnsRecord::A).await;
        assert!(r.result.is_ok(), "{r:?}");
        let results: Vec<DnsQueryResult> = r.queries.iter().map(|q| q.result).collect();
        assert_eq!(results, [DnsQueryResult::Timeout, DnsQueryResult::Answer]);
        assert_eq!(r.queries[1].attempt, 2);
    }

    #[tokio::test]
    async fn no_server_answers_ends_the_walk() {
        let c = conf(server(16, a_record).await, 100);
        let r = resolve(&c, "web", DnsRecord::A).await;
        assert_eq!(r.result, Err(ResolveError::NoAnswer { refused: false }));
        assert_eq!(
            r.queries.len(),
            2,
            "two tries of the first candidate, then stop"
        );
        // Nothing listening: ICMP port unreachable, reported as refused.
        let closed = UdpSocket::bind("127.0.0.1:0")
            .await
            .unwrap()
            .local_addr()
            .unwrap();
        let r = resolve(&conf(closed, 1000), "web", DnsRecord::A).await;
        assert_eq!(r.result, Err(ResolveError::NoAnswer { refused: true }));
    }
}
