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
pub async fn probe_in(
    client: &Client,
    ns: &str,
    pod: &str,
    container: &str,
    batch: &ProbeBatch,
    limit: Duration,
) -> Result<Vec<ProbeResult>, String> {
    let input = serde_json::to_vec(batch).expect("a probe batch serialises");
    let (out, err) = tokio::time::timeout(
        limit,
        exec_output(client, ns, pod, container, &[AGENT_BINARY, "probe"], &input),
    )
    .await
    .map_err(|_| {
        format!(
            "agent probe in {ns}/{pod} did not finish within {}s",
            limit.as_secs()
        )
    })??;
    // The agent says on stderr how much it printed: with it, lost output
    // (the runtime's) is told apart from output the agent never wrote.
    serde_json::from_slice(&out).map_err(|e| {
        format!(
            "agent probe in {ns}/{pod} printed something that is not a result batch ({e}; {} bytes on stdout, stderr: {:?}): {}",
            out.len(),
            String::from_utf8_lossy(&err).trim(),
            String::from_utf8_lossy(&out)
        )
    })
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
