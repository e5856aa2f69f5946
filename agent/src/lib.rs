//! netconform-agent: the program that runs inside fixture pods.
//!
//! `serve` answers TCP, UDP and HTTP on the ports it is given; `probe` reads a
//! batch of probe specs on stdin, runs them concurrently and prints the results.
//! The wire contract lives in `netconform-protocol` (re-exported as [`protocol`]);
//! the harness library links only that.

pub use netconform_protocol as protocol;

pub mod icmp;
pub mod identity;
pub mod kept;
pub mod probe;
pub mod resolver;
pub mod serve;
pub mod session;
pub mod source_ports;
pub mod tls;
