//! `probe`: runs a batch of probe specs concurrently. Each spec runs its samples
//! one after another (so they measure latency, not contention), every attempt
//! bounded by its timeout, every loop bounded by [`MAX_SAMPLES`].

use crate::icmp;
use crate::protocol::*;
use crate::resolver::{self, ClientConf, ResolveError};
use crate::source_ports;
use crate::tls;
use futures::future::join_all;
use hickory_proto::rr::RData;
use http_body_util::{BodyExt, Empty};
use hyper::body::Bytes;
use std::io;
use std::net::{IpAddr, SocketAddr};
use std::os::fd::AsRawFd;
use std::sync::OnceLock;
use std::time::{Duration, Instant};
use tokio::io::AsyncBufReadExt;
use tokio::net::{TcpSocket, TcpStream};
use tokio::time::timeout;

pub async fn run_batch(batch: ProbeBatch) -> Vec<ProbeResult> {
    if !batch.sequential {
        return join_all(batch.probes.into_iter().map(run_probe)).await;
    }
    let mut results = Vec::with_capacity(batch.probes.len());
    for spec in batch.probes {
        results.push(run_probe(spec).await);
    }
    results
}

async fn run_probe(spec: ProbeSpec) -> ProbeResult {
    let per_attempt = Duration::from_millis(spec.timeout_ms.clamp(1, MAX_TIMEOUT_MS));
    let samples = spec.samples.clamp(1, MAX_SAMPLES);
    // The bound the harness waits for; past it no new sample starts.
    let deadline = Instant::now() + spec.time_bound();
    let mut attempts = Vec::with_capacity(samples as usize);
    let mut failures_in_a_row = 0;
    for done in 0..samples {
        if Instant::now() >= deadline {
            attempts.push(failed(
                Outcome::Error,
                format!(
                    "the probe's time bound ({} ms) ran out after {done} of {samples} samples",
                    spec.time_bound().as_millis()
                ),
            ));
            break;
        }
        let started = Instant::now();
        let attempt = attempt_once(&spec, per_attempt).await;
        // Any sample that did not connect counts: an immediate error between
        // two timeouts must not restart the count, or an alternating pattern
        // would still wait out every sample's timeout.
        if attempt.outcome != Outcome::Connected {
            failures_in_a_row += 1;
        } else {
            failures_in_a_row = 0;
        }
        let stop = (spec.until_connected && attempt.outcome == Outcome::Connected)
            || spent_dns_budget(&attempt)
            || (spec.stop_after_failures > 0 && failures_in_a_row >= spec.stop_after_failures);
        attempts.push(Attempt {
            latency_us: attempt.latency_us.max(1).min(elapsed_us(started)),
            ..attempt
        });
        if stop {
            break;
        }
        if spec.interval_ms > 0 {
            tokio::time::sleep(Duration::from_millis(spec.interval_ms.min(MAX_TIMEOUT_MS))).await;
        }
    }
    ProbeResult {
        id: spec.id,
        attempts,
    }
}

async fn attempt_once(spec: &ProbeSpec, limit: Duration) -> Attempt {
    match &spec.kind {
        ProbeKind::Tcp { host, port } => match address(host, *port, spec.ipv6).await {
            Ok((addr, queries)) => with_queries(
                tcp(
                    addr,
                    limit,
                    spec.payload_bytes,
                    stream_time(spec),
                    spec.reserved_source_ports,
                )
                .await,
                queries,
            ),
            Err(failure) => failure,
        },
        ProbeKind::Udp { host, port } => match address(host, *port, spec.ipv6).await {
            Ok((addr, queries)) => with_queries(
                udp(addr, limit, spec.payload_bytes, spec.reserved_source_ports).await,
                queries,
            ),
            Err(failure) => failure,
        },
        ProbeKind::Http { host, port, path } => match address(host, *port, spec.ipv6).await {
            Ok((addr, queries)) => with_queries(http(addr, host, path, limit).await, queries),
            Err(failure) => failure,
        },
        ProbeKind::Dns { name, record, tcp } => dns(name, *record, *tcp).await,
        ProbeKind::Https {
            host,
            port,
            path,
            server_name,
            ca_file,
        } => match address(host, *port, spec.ipv6).await {
            Ok((addr, queries)) => {
                let tls = TlsTarget {
                    server_name,
                    ca_file,
                };
                with_queries(http_over(addr, host, path, limit, Some(tls)).await, queries)
            }
            Err(failure) => failure,
        },
        ProbeKind::Icmp { host } => ping(host, limit).await,
        ProbeKind::Identity => identity(),
    }
}

/// One ICMP echo; the latency is the round trip. A ping socket the pod may
/// not open is an error that names the sysctl, never a lost echo.
async fn ping(host: &str, limit: Duration) -> Attempt {
    static SEQ: std::sync::atomic::AtomicU16 = std::sync::atomic::AtomicU16::new(1);
    let ip: IpAddr = match host.parse() {
        Ok(ip) => ip,
        Err(_) => {
            return failed(
                Outcome::Error,
                format!("icmp targets an address, not {host:?}"),
            )
        }
    };
    let socket = match icmp::open(ip) {
        Ok(s) => s,
        Err(e) if e.kind() == io::ErrorKind::PermissionDenied => {
            return failed(
                Outcome::Error,
                format!("cannot open an ICMP ping socket ({e}): this pod's group is outside net.ipv4.ping_group_range"),
            )
        }
        Err(e) => return io_failure(&e),
    };
    let seq = SEQ.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let started = Instant::now();
    match icmp::echo(&socket, ip, seq, limit).await {
        Ok(icmp::Echo::Reply) => connected(elapsed_us(started)),
        Ok(icmp::Echo::Lost) => {
            let mut a = timed_out(limit);
            a.detail = Some(format!("no echo reply within {} ms", limit.as_millis()));
            a
        }
        Err(e) => io_failure(&e),
    }
}

fn with_queries(attempt: Attempt, dns_queries: Vec<DnsQuery>) -> Attempt {
    Attempt {
        dns_queries,
        ..attempt
    }
}

/// A name lookup that waited out every try: more samples would only wait the
/// same way, and the verdict is already known.
fn spent_dns_budget(attempt: &Attempt) -> bool {
    attempt.outcome == Outcome::DnsError
        && attempt
            .dns_queries
            .last()
            .is_some_and(|q| q.result.is_lost())
}

fn elapsed_us(since: Instant) -> u64 {
    since.elapsed().as_micros().try_into().unwrap_or(u64::MAX)
}

fn failed(outcome: Outcome, detail: String) -> Attempt {
    Attempt {
        outcome,
        detail: Some(detail),
        ..connected(u64::MAX)
    }
}

fn connected(latency_us: u64) -> Attempt {
    Attempt {
        outcome: Outcome::Connected,
        latency_us,
        server: None,
        seen_client_ip: None,
        detail: None,
        answers: vec![],
        search: vec![],
        dns_queries: vec![],
        stream: None,
    }
}

fn identity() -> Attempt {
    let started = Instant::now();
    match crate::identity::identity() {
        Ok(me) => Attempt {
            server: Some(me.hostname),
            answers: me.addresses,
            search: me.search,
            ..connected(elapsed_us(started))
        },
        Err(e) => failed(Outcome::Error, format!("reading interfaces: {e}")),
    }
}

fn io_failure(e: &io::Error) -> Attempt {
    let outcome = match e.kind() {
        io::ErrorKind::ConnectionRefused => Outcome::Refused,
        io::ErrorKind::TimedOut => Outcome::TimedOut,
        _ => Outcome::Error,
    };
    failed(outcome, e.to_string())
}

fn timed_out(after: Duration) -> Attempt {
    failed(
        Outcome::TimedOut,
        format!("no answer within {} ms", after.as_millis()),
    )
}

/// The pod's resolv.conf, read once per agent run.
fn client_conf() -> Result<&'static ClientConf, String> {
    static CONF: OnceLock<Result<ClientConf, String>> = OnceLock::new();
    CONF.get_or_init(ClientConf::system)
        .as_ref()
        .map_err(Clone::clone)
}

/// A target's address: an IP as it is, a name through the stub resolver (its
/// A records, or its AAAA records when it has no A record, like getaddrinfo;
/// only its AAAA records when `ipv6`). The agent is a static binary, and
/// static glibc cannot load NSS.
async fn address(
    host: &str,
    port: u16,
    ipv6: bool,
) -> Result<(SocketAddr, Vec<DnsQuery>), Attempt> {
    if let Ok(ip) = host.parse::<IpAddr>() {
        return Ok((SocketAddr::new(ip, port), vec![]));
    }
    let conf = client_conf().map_err(|e| failed(Outcome::DnsError, e))?;
    let started = Instant::now();
    let first = if ipv6 { DnsRecord::Aaaa } else { DnsRecord::A };
    let mut resolution = resolver::resolve(conf, host, first).await;
    if !ipv6 && resolution.result == Err(ResolveError::NotFound) {
        let v6 = resolver::resolve(conf, host, DnsRecord::Aaaa).await;
        resolution.queries.extend(v6.queries);
        resolution.result = v6.result;
    }
    let ip = match &resolution.result {
        Ok(records) => records.iter().find_map(|r| match r {
            RData::A(a) => Some(IpAddr::V4(a.0)),
            RData::AAAA(a) => Some(IpAddr::V6(a.0)),
            _ => None,
        }),
        Err(_) => None,
    };
    match ip {
        Some(ip) => Ok((SocketAddr::new(ip, port), resolution.queries)),
        None => {
            let why = resolution
                .result
                .err()
                .map(|e| e.to_string())
                .unwrap_or_else(|| "no address record".into());
            let mut attempt = failed(Outcome::DnsError, format!("resolving {host}: {why}"));
            attempt.latency_us = elapsed_us(started);
            Err(with_queries(attempt, resolution.queries))
        }
    }
}

/// TCP: the latency is the connect (one handshake); then the echo server's
/// greeting tells who answered and which source address it saw.
async fn tcp(
    addr: SocketAddr,
    limit: Duration,
    payload_bytes: u64,
    stream_for: Option<Duration>,
    reserved_source_port: bool,
) -> Attempt {
    let started = Instant::now();
    let socket = match if addr.is_ipv4() {
        TcpSocket::new_v4()
    } else {
        TcpSocket::new_v6()
    } {
        Ok(s) => s,
        Err(e) => return io_failure(&e),
    };
    if reserved_source_port {
        // Closed with a reset, the port comes back at once instead of after
        // TIME_WAIT's 60 s: a wait that does not converge probes for many
        // rounds, both families' twins share the reserved ports, and with a
        // normal close every one of them sat in TIME_WAIT until the next
        // bind failed with EADDRINUSE instead of showing the data path.
        if let Err(e) = socket
            .set_zero_linger()
            .and_then(|()| source_ports::bind_tcp(&socket, addr.is_ipv4()))
        {
            return io_failure(&e);
        }
    }
    let fd = socket.as_raw_fd();
    let connect = socket.connect(addr);
    tokio::pin!(connect);
    let stream = match timeout(limit, &mut connect).await {
        // The kernel picked the source port at connect(); naming it lets a
        // timeout be matched with the nodes' conntrack entries for that flow.
        Err(_) => {
            let mut attempt = timed_out(limit);
            if let Some(port) = local_port(fd) {
                attempt.detail = Some(format!(
                    "no answer within {} ms (from local port {port})",
                    limit.as_millis()
                ));
            }
            return attempt;
        }
        Ok(Err(e)) => return io_failure(&e),
        Ok(Ok(s)) => s,
    };
    let mut attempt = connected(elapsed_us(started));
    let mut line = String::new();
    let mut reader = tokio::io::BufReader::new(stream);
    match timeout(
        limit.saturating_sub(started.elapsed()),
        reader.read_line(&mut line),
    )
    .await
    {
        Ok(Ok(n)) if n > 0 => match parse_greeting(&line) {
            Some((server, seen)) => {
                attempt.server = Some(server);
                attempt.seen_client_ip = Some(seen);
            }
            None => {
                attempt.detail = Some(format!("not a netconform greeting: {:?}", line.trim_end()))
            }
        },
        _ => attempt.detail = Some("connected; the server sent no greeting".into()),
    }
    if payload_bytes > 0 && attempt.server.is_some() {
        let remaining = limit.saturating_sub(started.elapsed());
        match timeout(
            remaining,
            echo_payload(reader.into_inner(), payload_bytes as usize),
        )
        .await
        {
            Ok(Ok(None)) => attempt.detail = Some(format!("{payload_bytes} bytes echoed intact")),
            Ok(Ok(Some(mismatch))) => {
                attempt.outcome = Outcome::BadReply;
                attempt.detail = Some(format!("TCP payload: {mismatch}"));
            }
            Ok(Err(e)) => {
                attempt.outcome = Outcome::BadReply;
                attempt.detail = Some(format!("TCP payload transfer failed: {e}"));
            }
            Err(_) => {
                attempt.outcome = Outcome::TimedOut;
                attempt.detail = Some(format!(
                    "TCP payload of {payload_bytes} bytes not echoed within {} ms",
                    limit.as_millis()
                ));
            }
        }
        attempt.latency_us = elapsed_us(started);
    } else if let (Some(stream_for), Some(_)) = (stream_for, &attempt.server) {
        let figures = echo_stream(reader.into_inner(), stream_for, limit).await;
        match figures {
            Ok(f) if f.bytes > 0 => {
                attempt.detail = Some(format!(
                    "{} bytes echoed in {} ms ({:.0} Mbit/s)",
                    f.bytes,
                    f.duration_us / 1000,
                    f.mbit_per_s()
                ));
                attempt.stream = Some(f);
            }
            Ok(_) => {
                attempt.outcome = Outcome::TimedOut;
                attempt.detail = Some(format!(
                    "TCP stream: nothing came back within {} ms",
                    (stream_for + limit).as_millis()
                ));
            }
            Err(e) => {
                attempt.outcome = Outcome::BadReply;
                attempt.detail = Some(format!("TCP stream failed: {e}"));
            }
        }
    }
    attempt
}

fn stream_time(spec: &ProbeSpec) -> Option<Duration> {
    (spec.stream_ms > 0).then(|| Duration::from_millis(spec.stream_ms.min(MAX_STREAM_MS)))
}

/// Streams through the echo server for `stream_for`, reading the echo all
/// along, then closes its side and waits (at most `drain` more) for the rest.
/// Full duplex, so the slower direction of the path sets the rate.
async fn echo_stream(
    stream: TcpStream,
    stream_for: Duration,
    drain: Duration,
) -> io::Result<StreamFigures> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let (mut rd, mut wr) = stream.into_split();
    let started = Instant::now();
    let stop_sending = started + stream_for;
    let writer = async move {
        let chunk = payload(128 * 1024);
        while Instant::now() < stop_sending {
            match timeout(stop_sending - Instant::now(), wr.write_all(&chunk)).await {
                Ok(r) => r?,
                Err(_) => break,
            }
        }
        wr.shutdown().await
    };
    let reader = async move {
        let mut bytes = 0u64;
        let mut buf = vec![0u8; 128 * 1024];
        let cut = stop_sending + drain;
        loop {
            match timeout(
                cut.saturating_duration_since(Instant::now()),
                rd.read(&mut buf),
            )
            .await
            {
                Ok(Ok(0)) | Err(_) => break,
                Ok(Ok(n)) => bytes += n as u64,
                Ok(Err(e)) => return Err(e),
            }
        }
        Ok::<_, io::Error>(StreamFigures {
            bytes,
            duration_us: elapsed_us(started),
        })
    };
    let (w, figures) = tokio::join!(writer, reader);
    w?;
    figures
}

/// The local port of a socket whose connect is under way (`fd` is owned by a
/// live connect future).
fn local_port(fd: std::os::fd::RawFd) -> Option<u16> {
    use nix::sys::socket::{getsockname, SockaddrStorage};
    let addr: SockaddrStorage = getsockname(fd).ok()?;
    let port = addr
        .as_sockaddr_in()
        .map(|a| a.port())
        .or_else(|| addr.as_sockaddr_in6().map(|a| a.port()))?;
    (port != 0).then_some(port)
}

/// Sends the payload through the echo server and reads it back; Some(what
/// differs) when it did not come back intact.
async fn echo_payload(stream: TcpStream, len: usize) -> io::Result<Option<String>> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let (mut rd, mut wr) = stream.into_split();
    let data = payload(len);
    let writer = async move {
        wr.write_all(&data).await?;
        wr.shutdown().await
    };
    let reader = async move {
        let mut got = Vec::with_capacity(len);
        let mut buf = vec![0u8; 64 * 1024];
        while got.len() < len {
            let n = rd.read(&mut buf).await?;
            if n == 0 {
                break;
            }
            got.extend_from_slice(&buf[..n]);
        }
        Ok::<_, io::Error>(got)
    };
    let (w, got) = tokio::join!(writer, reader);
    w?;
    Ok(payload_mismatch(&got?, len))
}

/// UDP: one datagram out, the echo server's greeting back. ICMP port
/// unreachable surfaces as a refused receive on a connected socket.
async fn udp(
    addr: SocketAddr,
    limit: Duration,
    payload_bytes: u64,
    reserved_source_port: bool,
) -> Attempt {
    let socket = match source_ports::bind_udp(addr.is_ipv4(), reserved_source_port) {
        Ok(s) => s,
        Err(e) => return io_failure(&e),
    };
    if let Err(e) = socket.connect(addr).await {
        return io_failure(&e);
    }
    let started = Instant::now();
    let datagram = if payload_bytes > 0 {
        payload(payload_bytes as usize)
    } else {
        b"netconform-probe".to_vec()
    };
    if let Err(e) = socket.send(&datagram).await {
        return io_failure(&e);
    }
    let mut buf = vec![0u8; 65536];
    match timeout(limit, socket.recv(&mut buf)).await {
        Err(_) => timed_out(limit),
        Ok(Err(e)) => io_failure(&e),
        Ok(Ok(n)) => {
            let mut attempt = connected(elapsed_us(started));
            let reply = String::from_utf8_lossy(&buf[..n]);
            match parse_greeting(&reply) {
                Some((server, seen)) => {
                    attempt.server = Some(server);
                    attempt.seen_client_ip = Some(seen);
                    if payload_bytes > 0 {
                        // The reply is `<greeting> <payload>`: the payload starts after the third space.
                        let start = buf[..n]
                            .iter()
                            .enumerate()
                            .filter(|(_, b)| **b == b' ')
                            .nth(2)
                            .map(|(i, _)| i + 1)
                            .unwrap_or(n);
                        match payload_mismatch(&buf[start..n], payload_bytes as usize) {
                            None => {
                                attempt.detail =
                                    Some(format!("{payload_bytes}-byte datagram echoed intact"))
                            }
                            Some(m) => {
                                attempt.outcome = Outcome::BadReply;
                                attempt.detail = Some(format!("UDP payload: {m}"));
                            }
                        }
                    }
                }
                None => {
                    attempt.outcome = Outcome::BadReply;
                    attempt.detail = Some(format!("not a netconform reply: {:?}", reply));
                }
            }
            attempt
        }
    }
}

/// HTTP GET over a fresh connection; latency covers connect, request and response.
async fn http(addr: SocketAddr, host: &str, path: &str, limit: Duration) -> Attempt {
    http_over(addr, host, path, limit, None).await
}

/// The TLS side of an HTTPS probe: whom the certificate must name, and the CA
/// it must chain to.
struct TlsTarget<'a> {
    server_name: &'a str,
    ca_file: &'a str,
}

/// A GET over plain TCP or, with `tls`, over a verified TLS session; the
/// latency covers connect, handshake and response.
async fn http_over(
    addr: SocketAddr,
    host: &str,
    path: &str,
    limit: Duration,
    tls: Option<TlsTarget<'_>>,
) -> Attempt {
    let port = addr.port();
    let started = Instant::now();
    let exchange = async {
        let tcp = TcpStream::connect(addr).await?;
        // The connection task ends with the exchange; the sender is all we keep.
        let mut sender = match tls {
            None => {
                let (s, c) =
                    hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(tcp))
                        .await
                        .map_err(io::Error::other)?;
                tokio::spawn(c);
                s
            }
            Some(t) => {
                let stream = tls::connect(tcp, t.server_name, t.ca_file).await?;
                let (s, c) =
                    hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(stream))
                        .await
                        .map_err(io::Error::other)?;
                tokio::spawn(c);
                s
            }
        };
        let req = hyper::Request::get(path)
            .header("host", format!("{host}:{port}"))
            .header("user-agent", "netconform-agent")
            .body(Empty::<Bytes>::new())
            .map_err(io::Error::other)?;
        let resp = sender.send_request(req).await.map_err(io::Error::other)?;
        let status = resp.status();
        let header = |name: &str| {
            resp.headers()
                .get(name)
                .and_then(|v| v.to_str().ok())
                .map(str::to_string)
        };
        let (server, seen) = (
            header("x-netconform-server"),
            header("x-netconform-client-ip"),
        );
        let body = resp
            .into_body()
            .collect()
            .await
            .map_err(io::Error::other)?
            .to_bytes();
        Ok::<_, io::Error>((status, server, seen, body))
    };
    match timeout(limit, exchange).await {
        Err(_) => timed_out(limit),
        Ok(Err(e)) => io_failure(&e),
        Ok(Ok((status, server, seen, body))) => {
            let mut attempt = connected(elapsed_us(started));
            attempt.server = server;
            attempt.seen_client_ip = seen.map(|ip| normalise_ip(&ip));
            let body = String::from_utf8_lossy(&body[..body.len().min(512)])
                .trim()
                .to_string();
            attempt.detail = Some(format!("HTTP {} {body}", status.as_u16()));
            if !status.is_success() {
                attempt.outcome = Outcome::BadReply;
            }
            attempt
        }
    }
}

/// A DNS lookup as the pod's libc would make it; the latency is the whole
/// resolution (search walk and retries included), every query is recorded.
async fn dns(name: &str, record: DnsRecord, tcp: bool) -> Attempt {
    let conf = match client_conf() {
        Ok(c) if tcp => ClientConf {
            use_tcp: true,
            ..c.clone()
        },
        Ok(c) => c.clone(),
        Err(e) => return failed(Outcome::DnsError, e),
    };
    let started = Instant::now();
    let resolution = resolver::resolve(&conf, name, record).await;
    let mut attempt = match resolution.result {
        Ok(records) => {
            let mut answers: Vec<String> = records
                .iter()
                .filter_map(|r| match r {
                    RData::A(a) => Some(a.to_string()),
                    RData::AAAA(a) => Some(a.to_string()),
                    RData::SRV(s) => Some(format!(
                        "{} {} {} {}",
                        s.priority, s.weight, s.port, s.target
                    )),
                    RData::PTR(p) => Some(p.0.to_string()),
                    _ => None,
                })
                .collect();
            answers.sort();
            Attempt {
                answers,
                ..connected(0)
            }
        }
        // "No such record" is an answer; anything else is a failure to get one.
        Err(ResolveError::NotFound) => failed(
            Outcome::NotFound,
            format!("{name}: {}", ResolveError::NotFound),
        ),
        Err(e) => {
            let over = if tcp { " over TCP" } else { "" };
            failed(Outcome::DnsError, format!("resolving {name}{over}: {e}"))
        }
    };
    attempt.latency_us = elapsed_us(started);
    with_queries(attempt, resolution.queries)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A UDP server that reads nothing and answers nothing: every sample
    /// waits out its timeout, as across a black hole.
    fn silent_udp_probe(stop_after_failures: u32) -> (std::net::UdpSocket, ProbeSpec) {
        let silent = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        let port = silent.local_addr().unwrap().port();
        let spec = serde_json::from_value(serde_json::json!({
            "id": "p", "kind": "udp", "host": "127.0.0.1", "port": port,
            "timeout_ms": 20, "samples": 8
        }))
        .unwrap();
        (
            silent,
            ProbeSpec {
                stop_after_failures,
                ..spec
            },
        )
    }

    #[tokio::test]
    async fn a_silent_probe_stops_after_its_timeouts_in_a_row() {
        let (_silent, spec) = silent_udp_probe(3);
        let result = run_probe(spec).await;
        let outcomes: Vec<_> = result.attempts.iter().map(|a| a.outcome).collect();
        assert_eq!(outcomes, vec![Outcome::TimedOut; 3]);
    }

    /// Samples that fail at once count too (before, only timeouts did: a
    /// refused port took all its samples, and refusals between timeouts
    /// restarted the count).
    #[tokio::test]
    async fn a_probe_stops_after_its_failures_in_a_row_of_any_kind() {
        let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = closed.local_addr().unwrap().port();
        drop(closed);
        let (_silent, spec) = silent_udp_probe(3);
        let refused = ProbeSpec {
            kind: ProbeKind::Tcp {
                host: "127.0.0.1".into(),
                port,
            },
            ..spec
        };
        let result = run_probe(refused).await;
        let outcomes: Vec<_> = result.attempts.iter().map(|a| a.outcome).collect();
        assert_eq!(outcomes, vec![Outcome::Refused; 3]);
    }

    /// Entries of /proc/net/tcp (IPv4) in TIME_WAIT towards `port`.
    fn time_wait_towards(port: u16) -> usize {
        let table = std::fs::read_to_string("/proc/net/tcp").unwrap();
        table
            .lines()
            .skip(1)
            .filter(|line| {
                let fields: Vec<&str> = line.split_whitespace().collect();
                let remote_port = fields[2].rsplit(':').next().unwrap();
                u16::from_str_radix(remote_port, 16).unwrap() == port && fields[3] == "06"
            })
            .count()
    }

    /// A wait's probes close with a reset: each sample's reserved port is
    /// free again at once, where a normal close (the client closes first
    /// here) holds it in TIME_WAIT for 60 s.
    #[tokio::test]
    async fn probes_on_reserved_ports_leave_no_time_wait_behind() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        tokio::spawn(async move {
            loop {
                let (mut conn, _) = listener.accept().await.unwrap();
                tokio::spawn(async move {
                    use tokio::io::{AsyncReadExt, AsyncWriteExt};
                    conn.write_all(b"hello\n").await.unwrap();
                    let mut rest = Vec::new();
                    let _ = conn.read_to_end(&mut rest).await;
                });
            }
        });
        let spec: ProbeSpec = serde_json::from_value(serde_json::json!({
            "id": "p", "kind": "tcp", "host": "127.0.0.1", "port": port,
            "timeout_ms": 1000, "samples": 3, "reserved_source_ports": true
        }))
        .unwrap();
        let result = run_probe(spec).await;
        let outcomes: Vec<_> = result.attempts.iter().map(|a| a.outcome).collect();
        assert_eq!(outcomes, vec![Outcome::Connected; 3]);
        assert_eq!(time_wait_towards(port), 0);
    }

    #[tokio::test]
    async fn without_a_limit_every_sample_is_taken() {
        let (_silent, spec) = silent_udp_probe(0);
        let result = run_probe(spec).await;
        assert_eq!(result.attempts.len(), 8);
    }
}
