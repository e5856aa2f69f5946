//! Running the agent inside a fixture pod: one exec carries a whole probe batch
//! (JSON on stdin, JSON results on stdout), never one exec per probe.

use k8s_openapi::api::core::v1::Pod;
use kube::api::AttachParams;
use kube::{Api, Client};
use netconform_agent::protocol::{ProbeBatch, ProbeResult};
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// The container of a fixture pod that runs the agent, and the agent's path in its image.
pub const AGENT_CONTAINER: &str = "agent";
pub const AGENT_BINARY: &str = "/netconform-agent";

/// Runs `netconform-agent probe` in the pod's agent container with `batch`, bounded by `limit`.
pub async fn probe(
    client: &Client,
    ns: &str,
    pod: &str,
    batch: &ProbeBatch,
    limit: Duration,
) -> Result<Vec<ProbeResult>, String> {
    probe_in(client, ns, pod, AGENT_CONTAINER, batch, limit).await
}

/// Like [`probe`], in another container of the pod (a sidecar).
///
/// The agent keeps a copy of its results in the pod. When the exec reports
/// success but stdout is not a result batch, the transport lost the output
/// (see [`TransportLoss`]), and the kept copy is read instead: the same
/// observations, no probe run twice. Each such recovery is recorded.
pub async fn probe_in(
    client: &Client,
    ns: &str,
    pod: &str,
    container: &str,
    batch: &ProbeBatch,
    limit: Duration,
) -> Result<Vec<ProbeResult>, String> {
    let input = serde_json::to_vec(batch).expect("a probe batch serialises");
    let id = batch_id();
    let (out, err) = tokio::time::timeout(
        limit,
        exec_output(
            client,
            ns,
            pod,
            container,
            &[AGENT_BINARY, "probe", "--keep", &id],
            &input,
        ),
    )
    .await
    .map_err(|_| {
        format!(
            "agent probe in {ns}/{pod} did not finish within {}s",
            limit.as_secs()
        )
    })??;
    let kept = || async {
        exec(
            client,
            ns,
            pod,
            container,
            &[AGENT_BINARY, "results", &id],
            b"",
        )
        .await
    };
    let (results, loss) =
        results_or_kept(&format!("{ns}/{pod}"), container, &out, &err, kept).await?;
    if let Some(loss) = loss {
        tracing::warn!(target: "netconform::exec", pod = %loss.pod, stdout_bytes = loss.stdout_bytes,
            "exec reported success but lost the agent's output; its kept results were read instead");
        TRANSPORT_LOSSES.lock().expect("loss list").push(loss);
    }
    Ok(results)
}

/// The results on stdout, or else (the exec said success, so the agent ran
/// and printed) the copy it kept, with the loss described.
async fn results_or_kept<F, Fut>(
    pod: &str,
    container: &str,
    out: &[u8],
    err: &[u8],
    read_kept: F,
) -> Result<(Vec<ProbeResult>, Option<TransportLoss>), String>
where
    F: FnOnce() -> Fut,
    Fut: std::future::Future<Output = Result<Vec<u8>, String>>,
{
    let parse_error = match serde_json::from_slice(out) {
        Ok(results) => return Ok((results, None)),
        Err(e) => e,
    };
    // The agent says on stderr how much it printed: with it, lost output
    // (the transport's) is told apart from output the agent never wrote.
    let stderr = String::from_utf8_lossy(err).trim().to_string();
    let lost = format!(
        "agent probe in {pod} printed something that is not a result batch ({parse_error}; {} bytes on stdout, stderr: {stderr:?}): {}",
        out.len(),
        String::from_utf8_lossy(out)
    );
    match read_kept().await {
        Ok(kept) => match serde_json::from_slice(&kept) {
            Ok(results) => Ok((
                results,
                Some(TransportLoss {
                    pod: pod.to_string(),
                    container: container.to_string(),
                    at_utc: utc_now(),
                    stdout_bytes: out.len(),
                    stderr,
                }),
            )),
            Err(e) => Err(format!(
                "{lost}; the kept copy is not a result batch either: {e}"
            )),
        },
        Err(e) => Err(format!("{lost}; reading the kept copy failed: {e}")),
    }
}

/// An exec that reported success while its stdout did not arrive whole.
///
/// The exec path is websocket (client) -> API server stream translator ->
/// SPDY -> kubelet -> container runtime. The translator turns an error stream
/// that closed without a status into `Success` (client-go remotecommand's
/// empty-error-stream case) and only logs a failed stdout copy, so a stream
/// torn down on the node side reads as a clean exit with missing output.
#[derive(Clone, Debug, serde::Serialize)]
pub struct TransportLoss {
    pub pod: String,
    pub container: String,
    pub at_utc: String,
    pub stdout_bytes: usize,
    /// The agent's own account ("N results, M bytes on stdout") if stderr came through.
    pub stderr: String,
}

static TRANSPORT_LOSSES: std::sync::Mutex<Vec<TransportLoss>> = std::sync::Mutex::new(Vec::new());

/// Every transport loss this process recovered from, for results.json.
pub fn transport_losses() -> Vec<TransportLoss> {
    TRANSPORT_LOSSES.lock().expect("loss list").clone()
}

/// A name for one probe batch's kept results, unique within this process
/// and unlikely to meet another harness's in the same pod.
fn batch_id() -> String {
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
fn utc_now() -> String {
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

#[cfg(test)]
mod tests {
    use super::*;

    const BATCH: &[u8] = b"[]\n";

    #[tokio::test]
    async fn stdout_that_parses_is_used_and_the_kept_copy_never_read() {
        let (r, loss) = results_or_kept("ns/p", "agent", BATCH, b"", || async {
            panic!("read the kept copy although stdout was whole")
        })
        .await
        .unwrap();
        assert!(r.is_empty() && loss.is_none());
    }

    #[tokio::test]
    async fn lost_or_cut_stdout_is_read_from_the_kept_copy_and_recorded() {
        for out in [&b""[..], b"[{\"id\":"] {
            let (r, loss) = results_or_kept(
                "ns/p",
                "agent",
                out,
                b"netconform-agent: 0 results, 3 bytes on stdout",
                || async { Ok(BATCH.to_vec()) },
            )
            .await
            .unwrap();
            assert!(r.is_empty());
            let loss = loss.expect("the loss is recorded");
            assert_eq!((loss.pod.as_str(), loss.stdout_bytes), ("ns/p", out.len()));
            assert!(loss.stderr.contains("3 bytes"));
        }
    }

    #[tokio::test]
    async fn without_a_usable_kept_copy_the_error_names_both_failures() {
        let e = results_or_kept("ns/p", "agent", b"", b"", || async {
            Err("no such file".to_string())
        })
        .await
        .unwrap_err();
        assert!(
            e.contains("0 bytes on stdout")
                && e.contains("reading the kept copy failed: no such file"),
            "{e}"
        );
        let e = results_or_kept("ns/p", "agent", b"", b"", || async {
            Ok(b"garbage".to_vec())
        })
        .await
        .unwrap_err();
        assert!(
            e.contains("the kept copy is not a result batch either"),
            "{e}"
        );
    }
}
