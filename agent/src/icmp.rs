//! ICMP echo (ping) without root or capabilities: Linux "ping sockets"
//! (`SOCK_DGRAM` + `IPPROTO_ICMP`), allowed to the groups in the network
//! namespace's `net.ipv4.ping_group_range`. Fixture pods set that sysctl (a
//! namespaced, Kubernetes-safe one) in their securityContext.
//!
//! On a ping socket the kernel fills in the identifier and the checksum, and
//! hands back only echo replies addressed to this socket.

use nix::sys::socket::{socket, AddressFamily, SockFlag, SockProtocol, SockType};
use std::io;
use std::net::{IpAddr, SocketAddr};
use std::time::Duration;
use tokio::net::UdpSocket;

const ECHO_REQUEST_V4: u8 = 8;
const ECHO_REPLY_V4: u8 = 0;
const ECHO_REQUEST_V6: u8 = 128;
const ECHO_REPLY_V6: u8 = 129;

/// What one echo request got back.
#[derive(Debug, PartialEq, Eq)]
pub enum Echo {
    /// A reply with our sequence number and payload.
    Reply,
    /// Nothing within the limit.
    Lost,
}

/// The echo request the socket sends: type, code, checksum and id left to
/// the kernel, our sequence number, then `payload`.
fn request(v6: bool, seq: u16, payload: &[u8]) -> Vec<u8> {
    let mut p = vec![
        if v6 { ECHO_REQUEST_V6 } else { ECHO_REQUEST_V4 },
        0,
        0,
        0,
        0,
        0,
    ];
    p.extend_from_slice(&seq.to_be_bytes());
    p.extend_from_slice(payload);
    p
}

/// Whether `reply` answers the request with `seq` and `payload`.
fn answers(v6: bool, reply: &[u8], seq: u16, payload: &[u8]) -> bool {
    reply.len() == 8 + payload.len()
        && reply[0] == if v6 { ECHO_REPLY_V6 } else { ECHO_REPLY_V4 }
        && reply[1] == 0
        && reply[6..8] == seq.to_be_bytes()
        && &reply[8..] == payload
}

/// A ping socket for `ip`'s family; `PermissionDenied` when this process's
/// group is outside `net.ipv4.ping_group_range`.
pub fn open(ip: IpAddr) -> io::Result<UdpSocket> {
    let (family, protocol) = match ip {
        IpAddr::V4(_) => (AddressFamily::Inet, SockProtocol::Icmp),
        IpAddr::V6(_) => (AddressFamily::Inet6, SockProtocol::IcmpV6),
    };
    let fd = socket(
        family,
        SockType::Datagram,
        SockFlag::SOCK_NONBLOCK | SockFlag::SOCK_CLOEXEC,
        protocol,
    )
    .map_err(io::Error::from)?;
    UdpSocket::from_std(std::net::UdpSocket::from(fd))
}

/// One echo request to `ip` and its reply, bounded by `limit`.
pub async fn echo(socket: &UdpSocket, ip: IpAddr, seq: u16, limit: Duration) -> io::Result<Echo> {
    let v6 = ip.is_ipv6();
    let payload = b"netconform-ping";
    socket
        .send_to(&request(v6, seq, payload), SocketAddr::new(ip, 0))
        .await?;
    let mut buf = [0u8; 512];
    let wait = async {
        loop {
            let (n, from) = socket.recv_from(&mut buf).await?;
            // Replies to an earlier sample that arrived late are not this one's.
            if from.ip() == ip && answers(v6, &buf[..n], seq, payload) {
                return Ok::<_, io::Error>(());
            }
        }
    };
    match tokio::time::timeout(limit, wait).await {
        Ok(Ok(())) => Ok(Echo::Reply),
        Ok(Err(e)) => Err(e),
        Err(_) => Ok(Echo::Lost),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_reply_must_carry_our_sequence_and_payload() {
        let mut reply = request(false, 7, b"abc");
        reply[0] = ECHO_REPLY_V4;
        reply[4..6].copy_from_slice(&[0x12, 0x34]); // the kernel's identifier
        assert!(answers(false, &reply, 7, b"abc"));
        assert!(
            !answers(false, &reply, 8, b"abc"),
            "another sequence number"
        );
        assert!(!answers(false, &reply, 7, b"abd"), "another payload");
        assert!(
            !answers(true, &reply, 7, b"abc"),
            "an IPv4 reply is not an IPv6 one"
        );
        let req = request(false, 7, b"abc");
        assert!(!answers(false, &req, 7, b"abc"), "a request is not a reply");
    }

    /// Loopback answers pings where the test's group may open ping sockets
    /// (root in CI); elsewhere the refusal must be PermissionDenied, which the
    /// probe reports as the missing sysctl.
    #[tokio::test]
    async fn loopback_answers_or_the_socket_is_refused_for_the_group() {
        let lo: IpAddr = "127.0.0.1".parse().unwrap();
        match open(lo) {
            Ok(s) => assert_eq!(
                echo(&s, lo, 1, Duration::from_secs(2)).await.unwrap(),
                Echo::Reply
            ),
            Err(e) => assert_eq!(e.kind(), io::ErrorKind::PermissionDenied, "{e}"),
        }
    }
}
