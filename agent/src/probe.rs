//! `probe`: runs a batch of probe specs concurrently. Each spec runs its samples
//! one after another (so they measure latency, not contention), every attempt
//! bounded by its timeout, every loop bounded by [`MAX_SAMPLES`].

use crate::protocol::*;
use futures::future::join_all;
use hickory_resolver::proto::rr::RData;
use hickory_resolver::TokioResolver;
use http_body_util::{BodyExt, Empty};
use hyper::body::Bytes;
use std::io;
use std::time::{Duration, Instant};
use tokio::io::AsyncBufReadExt;
use std::net::{IpAddr, SocketAddr};
use std::sync::OnceLock;
use tokio::net::{TcpStream, UdpSocket};
use tokio::time::timeout;

pub async fn run_batch(batch: ProbeBatch) -> Vec<ProbeResult> {
    join_all(batch.probes.into_iter().map(run_probe)).await
}

async fn run_probe(spec: ProbeSpec) -> ProbeResult {
    let per_attempt = Duration::from_millis(spec.timeout_ms.clamp(1, MAX_TIMEOUT_MS));
    let samples = spec.samples.clamp(1, MAX_SAMPLES);
    let resolver = match &spec.kind {
        ProbeKind::Dns { .. } => Some(dns_resolver(per_attempt)),
        _ => None,
    };
    let mut attempts = Vec::with_capacity(samples as usize);
    for _ in 0..samples {
        let started = Instant::now();
        let attempt = match &spec.kind {
            ProbeKind::Tcp { host, port } => tcp(host, *port, per_attempt, spec.payload_bytes).await,
            ProbeKind::Udp { host, port } => udp(host, *port, per_attempt, spec.payload_bytes).await,
            ProbeKind::Http { host, port, path } => http(host, *port, path, per_attempt).await,
            ProbeKind::Dns { name, record } => match resolver.as_ref().expect("built for dns") {
                Ok(r) => dns(r, name, *record, per_attempt).await,
                Err(e) => failed(Outcome::DnsError, e.to_string()),
            },
            ProbeKind::Identity => identity(),
        };
        let done = spec.until_connected && attempt.outcome == Outcome::Connected;
        attempts.push(Attempt { latency_us: attempt.latency_us.max(1).min(elapsed_us(started)), ..attempt });
        if done {
            break;
        }
        if spec.interval_ms > 0 {
            tokio::time::sleep(Duration::from_millis(spec.interval_ms.min(MAX_TIMEOUT_MS))).await;
        }
    }
    ProbeResult { id: spec.id, attempts }
}

fn elapsed_us(since: Instant) -> u64 {
    since.elapsed().as_micros().try_into().unwrap_or(u64::MAX)
}

fn failed(outcome: Outcome, detail: String) -> Attempt {
    Attempt { outcome, detail: Some(detail), ..connected(u64::MAX) }
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
    failed(Outcome::TimedOut, format!("no answer within {} ms", after.as_millis()))
}

/// A target's address. Names go through hickory and the pod's resolv.conf, not
/// getaddrinfo: the agent is a static binary, and static glibc cannot load NSS.
async fn resolve(host: &str, port: u16) -> io::Result<SocketAddr> {
    if let Ok(ip) = host.parse::<IpAddr>() {
        return Ok(SocketAddr::new(ip, port));
    }
    static RESOLVER: OnceLock<Result<TokioResolver, String>> = OnceLock::new();
    let resolver = RESOLVER
        .get_or_init(|| dns_resolver(Duration::from_secs(5)))
        .as_ref()
        .map_err(|e| io::Error::other(e.clone()))?;
    let lookup = resolver.lookup_ip(host).await.map_err(|e| io::Error::new(io::ErrorKind::NotFound, format!("{host}: {e}")))?;
    lookup
        .iter()
        .next()
        .map(|ip| SocketAddr::new(ip, port))
        .ok_or_else(|| io::Error::new(io::ErrorKind::NotFound, format!("{host} has no address")))
}

/// TCP: the latency is the connect (one handshake); then the echo server's
/// greeting tells who answered and which source address it saw.
async fn tcp(host: &str, port: u16, limit: Duration, payload_bytes: u64) -> Attempt {
    let addr = match timeout(limit, resolve(host, port)).await {
        Ok(Ok(a)) => a,
        Ok(Err(e)) => return failed(Outcome::DnsError, e.to_string()),
        Err(_) => return failed(Outcome::DnsError, format!("resolving {host}: no answer within {} ms", limit.as_millis())),
    };
    let started = Instant::now();
    let stream = match timeout(limit, TcpStream::connect(addr)).await {
        Err(_) => return timed_out(limit),
        Ok(Err(e)) => return io_failure(&e),
        Ok(Ok(s)) => s,
    };
    let mut attempt = connected(elapsed_us(started));
    let mut line = String::new();
    let mut reader = tokio::io::BufReader::new(stream);
    match timeout(limit.saturating_sub(started.elapsed()), reader.read_line(&mut line)).await {
        Ok(Ok(n)) if n > 0 => match parse_greeting(&line) {
            Some((server, seen)) => {
                attempt.server = Some(server);
                attempt.seen_client_ip = Some(seen);
            }
            None => attempt.detail = Some(format!("not a netconform greeting: {:?}", line.trim_end())),
        },
        _ => attempt.detail = Some("connected; the server sent no greeting".into()),
    }
    if payload_bytes > 0 && attempt.server.is_some() {
        let remaining = limit.saturating_sub(started.elapsed());
        match timeout(remaining, echo_payload(reader.into_inner(), payload_bytes as usize)).await {
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
                attempt.detail = Some(format!("TCP payload of {payload_bytes} bytes not echoed within {} ms", limit.as_millis()));
            }
        }
        attempt.latency_us = elapsed_us(started);
    }
    attempt
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
async fn udp(host: &str, port: u16, limit: Duration, payload_bytes: u64) -> Attempt {
    let addr = match timeout(limit, resolve(host, port)).await {
        Ok(Ok(a)) => a,
        Ok(Err(e)) => return failed(Outcome::DnsError, e.to_string()),
        Err(_) => return failed(Outcome::DnsError, format!("resolving {host}: no answer within {} ms", limit.as_millis())),
    };
    let local = if addr.is_ipv4() { "0.0.0.0:0" } else { "[::]:0" };
    let socket = match UdpSocket::bind(local).await {
        Ok(s) => s,
        Err(e) => return io_failure(&e),
    };
    if let Err(e) = socket.connect(addr).await {
        return io_failure(&e);
    }
    let started = Instant::now();
    let datagram = if payload_bytes > 0 { payload(payload_bytes as usize) } else { b"netconform-probe".to_vec() };
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
                        let start = buf[..n].iter().enumerate().filter(|(_, b)| **b == b' ').nth(2).map(|(i, _)| i + 1).unwrap_or(n);
                        match payload_mismatch(&buf[start..n], payload_bytes as usize) {
                            None => attempt.detail = Some(format!("{payload_bytes}-byte datagram echoed intact")),
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
async fn http(host: &str, port: u16, path: &str, limit: Duration) -> Attempt {
    let addr = match timeout(limit, resolve(host, port)).await {
        Ok(Ok(a)) => a,
        Ok(Err(e)) => return failed(Outcome::DnsError, e.to_string()),
        Err(_) => return failed(Outcome::DnsError, format!("resolving {host}: no answer within {} ms", limit.as_millis())),
    };
    let started = Instant::now();
    let exchange = async {
        let stream = TcpStream::connect(addr).await?;
        let (mut sender, conn) = hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(stream))
            .await
            .map_err(io::Error::other)?;
        tokio::spawn(conn);
        let req = hyper::Request::get(path)
            .header("host", format!("{host}:{port}"))
            .header("user-agent", "netconform-agent")
            .body(Empty::<Bytes>::new())
            .map_err(io::Error::other)?;
        let resp = sender.send_request(req).await.map_err(io::Error::other)?;
        let status = resp.status();
        let header = |name: &str| resp.headers().get(name).and_then(|v| v.to_str().ok()).map(str::to_string);
        let (server, seen) = (header("x-netconform-server"), header("x-netconform-client-ip"));
        let body = resp.into_body().collect().await.map_err(io::Error::other)?.to_bytes();
        Ok::<_, io::Error>((status, server, seen, body))
    };
    match timeout(limit, exchange).await {
        Err(_) => timed_out(limit),
        Ok(Err(e)) => io_failure(&e),
        Ok(Ok((status, server, seen, body))) => {
            let mut attempt = connected(elapsed_us(started));
            attempt.server = server;
            attempt.seen_client_ip = seen.map(|ip| normalise_ip(&ip));
            let body = String::from_utf8_lossy(&body[..body.len().min(512)]).trim().to_string();
            attempt.detail = Some(format!("HTTP {} {body}", status.as_u16()));
            if !status.is_success() {
                attempt.outcome = Outcome::BadReply;
            }
            attempt
        }
    }
}

/// A resolver from the pod's own resolv.conf (search path and ndots included),
/// with caching off so every sample is a real query.
fn dns_resolver(limit: Duration) -> Result<TokioResolver, String> {
    let mut builder = TokioResolver::builder_tokio().map_err(|e| format!("reading resolv.conf: {e}"))?;
    let opts = builder.options_mut();
    opts.cache_size = 0;
    opts.timeout = limit;
    opts.attempts = 1;
    builder.build().map_err(|e| e.to_string())
}

async fn dns(resolver: &TokioResolver, name: &str, record: DnsRecord, limit: Duration) -> Attempt {
    let started = Instant::now();
    let answers: Result<Vec<String>, String> = match timeout(limit, async {
        match record {
            DnsRecord::A => resolver
                .ipv4_lookup(name)
                .await
                .map(|l| l.answers().iter().filter_map(|r| match &r.data { RData::A(a) => Some(a.to_string()), _ => None }).collect()),
            DnsRecord::Aaaa => resolver
                .ipv6_lookup(name)
                .await
                .map(|l| l.answers().iter().filter_map(|r| match &r.data { RData::AAAA(a) => Some(a.to_string()), _ => None }).collect()),
            DnsRecord::Srv => resolver.srv_lookup(name).await.map(|l| {
                l.answers()
                    .iter()
                    .filter_map(|r| match &r.data { RData::SRV(s) => Some(s), _ => None })
                    .map(|s| format!("{} {} {} {}", s.priority, s.weight, s.port, s.target))
                    .collect()
            }),
        }
        .map_err(|e| e.to_string())
    })
    .await
    {
        Err(_) => return timed_out(limit),
        Ok(r) => r,
    };
    match answers {
        Ok(mut answers) => {
            answers.sort();
            let mut attempt = connected(elapsed_us(started));
            attempt.answers = answers;
            attempt
        }
        Err(e) => {
            // "No records" (NXDOMAIN or an empty answer) is an answer; anything
            // else (timeouts, SERVFAIL) is a failure to get one.
            let lower = e.to_lowercase();
            let outcome = if lower.contains("no record") || lower.contains("nxdomain") { Outcome::NotFound } else { Outcome::DnsError };
            let mut attempt = failed(outcome, e);
            attempt.latency_us = elapsed_us(started);
            attempt
        }
    }
}
