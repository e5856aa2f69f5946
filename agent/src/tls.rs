//! A TLS client that verifies the server the way a pod's client library
//! would: the certificate must chain to a CA file in the pod and name the
//! server (`kubernetes.default.svc` for the API server).

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName};
use std::io;
use std::sync::Arc;
use tokio::net::TcpStream;
use tokio_rustls::client::TlsStream;
use tokio_rustls::TlsConnector;

/// Handshakes over `tcp`; a certificate that does not verify is an error
/// naming why (unknown issuer, wrong name...).
pub async fn connect(
    tcp: TcpStream,
    server_name: &str,
    ca_file: &str,
) -> io::Result<TlsStream<TcpStream>> {
    let mut roots = rustls::RootCertStore::empty();
    let certs = CertificateDer::pem_file_iter(ca_file).map_err(|e| {
        io::Error::new(
            io::ErrorKind::NotFound,
            format!("reading CA {ca_file}: {e}"),
        )
    })?;
    for cert in certs {
        let cert = cert.map_err(|e| io::Error::other(format!("CA {ca_file}: {e}")))?;
        roots
            .add(cert)
            .map_err(|e| io::Error::other(format!("CA {ca_file}: {e}")))?;
    }
    let config = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .map_err(io::Error::other)?
    .with_root_certificates(roots)
    .with_no_client_auth();
    let name = ServerName::try_from(server_name.to_string()).map_err(|e| {
        io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("server name {server_name:?}: {e}"),
        )
    })?;
    TlsConnector::from(Arc::new(config))
        .connect(name, tcp)
        .await
        .map_err(|e| io::Error::other(format!("TLS with {server_name}: {e}")))
}
