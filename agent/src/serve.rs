//! `serve`: the fixture pod's servers. TCP echo and UDP echo greet every client
//! with `NETCONFORM <hostname> <client-ip>`; HTTP answers /clientip, /hostname and
//! /healthz and puts the same facts in X-Netconform-* headers. The client IP is
//! the source address as this pod saw it, which is how "no NAT" is proven.

use crate::protocol::{normalise_ip, GREETING_PREFIX};
use http_body_util::Full;
use hyper::body::Bytes;
use hyper::{Request, Response, StatusCode};
use std::io;
use std::net::{Ipv6Addr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream, UdpSocket};

/// An idle echo connection is closed after this long, so no server task lives forever.
const IDLE_TIMEOUT: Duration = Duration::from_secs(60);

/// While this file exists, /healthz answers 503 and the pod's readiness probe
/// fails (`netconform-agent set-ready false`); fixture pods mount an emptyDir here.
pub const UNREADY_MARKER: &str = "/tmp/netconform-unready";

/// Marks this pod ready or not ready for its readiness probe.
pub fn set_ready(ready: bool) -> io::Result<()> {
    if ready {
        match std::fs::remove_file(UNREADY_MARKER) {
            Err(e) if e.kind() != io::ErrorKind::NotFound => Err(e),
            _ => Ok(()),
        }
    } else {
        std::fs::write(UNREADY_MARKER, b"unready\n")
    }
}

#[derive(Clone, Debug, Default)]
pub struct Ports {
    pub tcp: Vec<u16>,
    pub udp: Vec<u16>,
    pub http: Vec<u16>,
}

/// Binds every port (dual-stack where the pod has IPv6, IPv4 otherwise) and
/// serves until the process is stopped.
pub async fn run(ports: Ports, hostname: String) -> io::Result<()> {
    let hostname: Arc<str> = hostname.into();
    let mut tasks = tokio::task::JoinSet::new();
    for port in ports.tcp {
        let listener = bind_tcp(port).await?;
        tasks.spawn(tcp_echo(listener, hostname.clone()));
    }
    for port in ports.udp {
        let socket = bind_udp(port).await?;
        tasks.spawn(udp_echo(socket, hostname.clone()));
    }
    for port in ports.http {
        let listener = bind_tcp(port).await?;
        tasks.spawn(http(listener, hostname.clone()));
    }
    eprintln!(
        "netconform-agent: serving as {hostname} ({} listeners)",
        tasks.len()
    );
    match tasks.join_next().await {
        Some(Ok(result)) => result,
        Some(Err(e)) => Err(io::Error::other(e)),
        None => std::future::pending().await,
    }
}

async fn bind_tcp(port: u16) -> io::Result<TcpListener> {
    match TcpListener::bind((Ipv6Addr::UNSPECIFIED, port)).await {
        Ok(l) => Ok(l),
        Err(_) => TcpListener::bind(("0.0.0.0", port)).await,
    }
    .map_err(|e| io::Error::new(e.kind(), format!("binding TCP port {port}: {e}")))
}

async fn bind_udp(port: u16) -> io::Result<UdpSocket> {
    match UdpSocket::bind((Ipv6Addr::UNSPECIFIED, port)).await {
        Ok(s) => Ok(s),
        Err(_) => UdpSocket::bind(("0.0.0.0", port)).await,
    }
    .map_err(|e| io::Error::new(e.kind(), format!("binding UDP port {port}: {e}")))
}

fn greeting(hostname: &str, peer: SocketAddr) -> String {
    format!(
        "{GREETING_PREFIX} {hostname} {}",
        normalise_ip(&peer.ip().to_string())
    )
}

async fn tcp_echo(listener: TcpListener, hostname: Arc<str>) -> io::Result<()> {
    loop {
        let (stream, peer) = listener.accept().await?;
        let hostname = hostname.clone();
        tokio::spawn(async move {
            let _ =
                tokio::time::timeout(IDLE_TIMEOUT, echo_connection(stream, peer, &hostname)).await;
        });
    }
}

async fn echo_connection(
    mut stream: TcpStream,
    peer: SocketAddr,
    hostname: &str,
) -> io::Result<()> {
    stream
        .write_all(format!("{}\n", greeting(hostname, peer)).as_bytes())
        .await?;
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        let n = stream.read(&mut buf).await?;
        if n == 0 {
            return Ok(());
        }
        stream.write_all(&buf[..n]).await?;
    }
}

async fn udp_echo(socket: UdpSocket, hostname: Arc<str>) -> io::Result<()> {
    let mut buf = vec![0u8; 65536];
    loop {
        let (n, peer) = socket.recv_from(&mut buf).await?;
        let mut reply = format!("{} ", greeting(&hostname, peer)).into_bytes();
        reply.extend_from_slice(&buf[..n]);
        // A reply that cannot be sent (peer gone) is not the server's failure.
        let _ = socket.send_to(&reply, peer).await;
    }
}

async fn http(listener: TcpListener, hostname: Arc<str>) -> io::Result<()> {
    loop {
        let (stream, peer) = listener.accept().await?;
        let hostname = hostname.clone();
        tokio::spawn(async move {
            let service = hyper::service::service_fn(move |req| {
                let hostname = hostname.clone();
                async move { Ok::<_, std::convert::Infallible>(answer(&req, &hostname, peer)) }
            });
            let conn = hyper::server::conn::http1::Builder::new()
                .serve_connection(hyper_util::rt::TokioIo::new(stream), service);
            let _ = tokio::time::timeout(IDLE_TIMEOUT, conn).await;
        });
    }
}

fn answer<B>(req: &Request<B>, hostname: &str, peer: SocketAddr) -> Response<Full<Bytes>> {
    let client_ip = normalise_ip(&peer.ip().to_string());
    let (status, body) = match req.uri().path() {
        "/clientip" => (StatusCode::OK, client_ip.clone()),
        "/hostname" => (StatusCode::OK, hostname.to_string()),
        "/healthz" if std::path::Path::new(UNREADY_MARKER).exists() => {
            (StatusCode::SERVICE_UNAVAILABLE, "unready".to_string())
        }
        "/healthz" => (StatusCode::OK, "ok".to_string()),
        _ => (StatusCode::NOT_FOUND, "not found".to_string()),
    };
    Response::builder()
        .status(status)
        .header("content-type", "text/plain")
        .header("x-netconform-server", hostname)
        .header("x-netconform-client-ip", client_ip)
        .body(Full::new(Bytes::from(body)))
        .expect("static response parts are valid")
}
