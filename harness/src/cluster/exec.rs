//! Running the agent inside a fixture pod: probe batches (through the pod's
//! probe session, see `session.rs`) and one-shot commands.

use k8s_openapi::api::core::v1::Pod;
use kube::api::AttachParams;
use kube::{Api, Client};
use netconform_protocol::{ProbeBatch, ProbeResult};
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// The container of a fixture pod that runs the agent, and the agent's path in its image.
pub const AGENT_CONTAINER: &str = "agent";
pub const AGENT_BINARY: &str = "/netconform-agent";

/// Runs `batch` in the pod's agent container, bounded by `limit`.
pub async fn probe(
    client: &Client,
    ns: &str,
    pod: &str,
    batch: &ProbeBatch,
    limit: Duration,
) -> Result<Vec<ProbeResult>, String> {
    super::session::probe(client, ns, pod, AGENT_CONTAINER, batch, limit)
        .await
        .map_err(|e| e.to_string())
}

/// A probe batch whose results the exec transport lost and the agent's kept
/// copy supplied.
///
/// The exec path is websocket (client) -> API server stream translator ->
/// SPDY -> kubelet -> container runtime. The translator turns an error stream
/// that closed without a status into `Success` (client-go remotecommand's
/// empty-error-stream case) and only logs a failed stdout copy, so a stream
/// torn down on the node side can read as a clean end with missing output.
#[derive(Clone, Debug, serde::Serialize)]
pub struct TransportLoss {
    pub pod: String,
    pub container: String,
    pub at_utc: String,
    pub stdout_bytes: usize,
    /// How the stream failed, and the agent's stderr if it came through.
    pub stderr: String,
}

pub(crate) fn record_loss(loss: TransportLoss) {
    TRANSPORT_LOSSES.lock().expect("loss list").push(loss);
}

static TRANSPORT_LOSSES: std::sync::Mutex<Vec<TransportLoss>> = std::sync::Mutex::new(Vec::new());

/// Every transport loss this process recovered from, for results.json.
pub fn transport_losses() -> Vec<TransportLoss> {
    TRANSPORT_LOSSES.lock().expect("loss list").clone()
}

/// A name for one probe batch's kept results, unique within this process
/// and unlikely to meet another harness's in the same pod.
pub(crate) fn batch_id() -> String {
    static NEXT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default()
        .subsec_nanos();
    format!("b{:x}-{n:x}-{nanos:x}", std::process::id())
}

/// Runs `command` in `container` with `stdin`, returning stdout; a non-zero
/// exit is an error carrying stderr.
pub async fn exec(
    client: &Client,
    ns: &str,
    pod: &str,
    container: &str,
    command: &[&str],
    stdin: &[u8],
) -> Result<Vec<u8>, String> {
    Ok(exec_output(client, ns, pod, container, command, stdin)
        .await?
        .0)
}

/// Like [`exec`], returning stdout and stderr.
pub async fn exec_output(
    client: &Client,
    ns: &str,
    pod: &str,
    container: &str,
    command: &[&str],
    stdin: &[u8],
) -> Result<(Vec<u8>, Vec<u8>), String> {
    let api = Api::<Pod>::namespaced(client.clone(), ns);
    let started = std::time::Instant::now();
    let params = AttachParams::default()
        .container(container)
        .stdin(true)
        .stdout(true)
        .stderr(true);
    let mut proc = api
        .exec(pod, command.iter().copied(), &params)
        .await
        .map_err(|e| format!("exec in {ns}/{pod}: {e}"))?;
    let mut writer = proc.stdin().ok_or("exec gave no stdin")?;
    let mut stdout = proc.stdout().ok_or("exec gave no stdout")?;
    let mut stderr = proc.stderr().ok_or("exec gave no stderr")?;
    let status = proc.take_status();
    let write = async {
        writer.write_all(stdin).await?;
        writer.shutdown().await
    };
    let (mut out, mut err) = (Vec::new(), Vec::new());
    let (w, o, e) = tokio::join!(
        write,
        stdout.read_to_end(&mut out),
        stderr.read_to_end(&mut err)
    );
    w.map_err(|e| format!("writing to exec stdin in {ns}/{pod}: {e}"))?;
    o.map_err(|e| format!("reading exec stdout in {ns}/{pod}: {e}"))?;
    e.map_err(|e| format!("reading exec stderr in {ns}/{pod}: {e}"))?;
    let status = match status {
        Some(s) => s.await,
        None => None,
    };
    proc.join()
        .await
        .map_err(|e| format!("exec in {ns}/{pod}: {e}"))?;
    match status {
        Some(s) if s.status.as_deref() != Some("Success") => Err(format!(
            "`{}` in {ns}/{pod} failed: {} {}",
            command.join(" "),
            s.message.unwrap_or_default(),
            String::from_utf8_lossy(&err).trim()
        )),
        Some(_) => Ok((out, err)),
        // The stream ended without the exit status the API server sends last:
        // the exec transport broke, and what came through is not the answer.
        // The elapsed time and the clock time find it in kubelet/containerd logs.
        None => Err(format!(
            "the exec stream of `{}` in {ns}/{pod} ended without the command's exit status after {} ms (at {} UTC; {} bytes on stdout; stderr: {:?})",
            command.join(" "),
            started.elapsed().as_millis(),
            utc_now(),
            out.len(),
            String::from_utf8_lossy(&err).trim()
        )),
    }
}

/// Clock time for error messages that must be matched with component logs.
pub(crate) fn utc_now() -> String {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    let secs = now.as_secs();
    format!(
        "{:02}:{:02}:{:02}.{:03}",
        (secs / 3600) % 24,
        (secs / 60) % 60,
        secs % 60,
        now.subsec_millis()
    )
}
