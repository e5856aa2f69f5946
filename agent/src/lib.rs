//! netconform-agent: the program that runs inside fixture pods.
//!
//! `serve` answers TCP, UDP and HTTP on the ports it is given; `probe` reads a
//! batch of probe specs on stdin, runs them concurrently and prints the results.
//! The harness links only [`protocol`] (build with `default-features = false`).

pub mod protocol;

#[cfg(feature = "runtime")]
pub mod icmp;
#[cfg(feature = "runtime")]
pub mod identity;
#[cfg(feature = "runtime")]
pub mod kept;
#[cfg(feature = "runtime")]
pub mod probe;
#[cfg(feature = "runtime")]
pub mod resolver;
#[cfg(feature = "runtime")]
pub mod serve;
#[cfg(feature = "runtime")]
pub mod session;
#[cfg(feature = "runtime")]
pub mod tls;
