//! Source ports outside the kernel's ephemeral range, for probes that wait
//! for a data path (`ProbeSpec::reserved_source_ports`).
//!
//! Why: a connection to a Service sent before its node is programmed leaves
//! a conntrack entry with no translation (TCP: SYN_SENT, 120 s). A later
//! connection from the same pod that gets the same source port from the
//! kernel matches that entry, is never translated and is lost (kubernetes
//! issue 48719): a check fails on a healthy cluster. Ports the kernel never
//! hands out keep the wait's flows apart from every check's.

use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::ops::RangeInclusive;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::OnceLock;
use tokio::net::{TcpSocket, UdpSocket};

/// Ports tried per socket before giving up (each one in use by another
/// socket of this pod is skipped).
const TRIES: u32 = 64;

/// The lowest port handed out below the ephemeral range (under it: the
/// well-known and registered ports servers listen on).
const LOWEST: u16 = 1024;

/// The ports outside the ephemeral range `low..=high`: above it if at least
/// 256 ports are left there, else below it; None when the range leaves
/// neither (the kernel's own choice is then all there is).
pub fn outside(low: u16, high: u16) -> Option<RangeInclusive<u16>> {
    if u32::from(high) + 256 <= u32::from(u16::MAX) {
        Some(high + 1..=u16::MAX)
    } else if u32::from(low) >= u32::from(LOWEST) + 256 {
        Some(LOWEST..=low - 1)
    } else {
        None
    }
}

struct Reserved {
    ports: RangeInclusive<u16>,
    next: AtomicU32,
}

impl Reserved {
    /// Ports in turn, from a start that differs per process: two agents of
    /// one pod (two waits) should not walk the same ports.
    fn next(&self) -> u16 {
        let (start, len) = (u32::from(*self.ports.start()), self.ports.len() as u32);
        (start + self.next.fetch_add(1, Ordering::Relaxed) % len) as u16
    }
}

/// The kernel's ephemeral range, `ip_local_port_range` (None if unreadable).
pub fn ephemeral_range() -> Option<(u16, u16)> {
    let text = std::fs::read_to_string("/proc/sys/net/ipv4/ip_local_port_range").ok()?;
    let mut fields = text.split_whitespace().map(str::parse::<u16>);
    match (fields.next(), fields.next()) {
        (Some(Ok(low)), Some(Ok(high))) => Some((low, high)),
        _ => None,
    }
}

fn reserved() -> Option<&'static Reserved> {
    static RESERVED: OnceLock<Option<Reserved>> = OnceLock::new();
    RESERVED
        .get_or_init(|| {
            let (low, high) = ephemeral_range()?;
            let ports = outside(low, high)?;
            let seed = std::process::id()
                ^ std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .map_or(0, |d| d.subsec_nanos());
            Some(Reserved {
                ports,
                next: AtomicU32::new(seed),
            })
        })
        .as_ref()
}

fn unspecified(ipv4: bool, port: u16) -> SocketAddr {
    let ip = if ipv4 {
        IpAddr::V4(Ipv4Addr::UNSPECIFIED)
    } else {
        IpAddr::V6(Ipv6Addr::UNSPECIFIED)
    };
    SocketAddr::new(ip, port)
}

/// Runs `bind` on reserved ports in turn until one is free. None where
/// there is no reserved range (the caller then leaves the choice to the
/// kernel).
fn on_a_reserved_port<T>(
    ipv4: bool,
    mut bind: impl FnMut(SocketAddr) -> io::Result<T>,
) -> Option<io::Result<T>> {
    let reserved = reserved()?;
    let mut last = None;
    for _ in 0..TRIES {
        match bind(unspecified(ipv4, reserved.next())) {
            Ok(bound) => return Some(Ok(bound)),
            Err(e) if e.kind() == io::ErrorKind::AddrInUse => last = Some(e),
            Err(e) => return Some(Err(e)),
        }
    }
    Some(Err(last.unwrap_or_else(|| {
        io::Error::from(io::ErrorKind::AddrInUse)
    })))
}

/// Binds `socket` to a reserved port (no-op where there is no reserved range:
/// connect() then picks the port).
pub fn bind_tcp(socket: &TcpSocket, ipv4: bool) -> io::Result<()> {
    on_a_reserved_port(ipv4, |addr| socket.bind(addr)).unwrap_or(Ok(()))
}

/// A UDP socket for a probe: bound to a reserved port if `on_reserved_port`
/// and there is a reserved range, else to any port.
pub fn bind_udp(ipv4: bool, on_reserved_port: bool) -> io::Result<UdpSocket> {
    let bind = |addr| {
        let socket = std::net::UdpSocket::bind(addr)?;
        socket.set_nonblocking(true)?;
        UdpSocket::from_std(socket)
    };
    let bound = if on_reserved_port {
        on_a_reserved_port(ipv4, bind)
    } else {
        None
    };
    bound.unwrap_or_else(|| bind(unspecified(ipv4, 0)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_reserved_ports_lie_outside_the_ephemeral_range() {
        assert_eq!(outside(32768, 60999), Some(61000..=65535));
        // No room above: below it, never into the well-known ports.
        assert_eq!(outside(10000, 65535), Some(1024..=9999));
        assert_eq!(outside(1024, 65535), None);
        assert_eq!(outside(1100, 65400), None);
    }

    #[tokio::test]
    async fn a_reserved_socket_is_bound_outside_the_ephemeral_range() {
        let (low, high) = ephemeral_range().unwrap();
        let Some(ports) = outside(low, high) else {
            return; // this machine leaves no room; nothing to show
        };
        let socket = TcpSocket::new_v4().unwrap();
        bind_tcp(&socket, true).unwrap();
        let port = socket.local_addr().unwrap().port();
        assert!(ports.contains(&port), "{port} not in {ports:?}");
        let udp = bind_udp(true, true).unwrap();
        let port = udp.local_addr().unwrap().port();
        assert!(ports.contains(&port), "{port} not in {ports:?}");
    }
}
