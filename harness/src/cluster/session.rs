//! Probe sessions: one long-lived `netconform-agent session` exec per fixture
//! container carries all of its probe batches, one JSON line each way.
//!
//! Why: each exec costs the node a runc process that joins the container and
//! compiles its seccomp filter, and the API server and kubelet a stream. At one
//! exec per batch that was about a third of a catalogue run's CPU on a 2-core
//! testbed, and the exec's own start-up (up to seconds under that load) was
//! most of each policy round. A session pays it once per container.
//!
//! A session whose stream breaks (ends, garbles a reply, or is abandoned when
//! a batch runs out of time) is closed and never reused; the next batch opens a
//! new one. A batch whose reply was lost after it was sent is recovered from
//! the copy the agent keeps in the pod, as for a one-shot exec (see
//! [`super::exec::TransportLoss`]): the same observations, no probe run twice.

use super::exec::{self, TransportLoss, AGENT_BINARY};
use crate::timeouts::TIMEOUTS;
use k8s_openapi::api::core::v1::Pod;
use kube::api::{AttachParams, AttachedProcess};
use kube::{Api, Client};
use netconform_protocol::{ProbeBatch, ProbeResult, SessionAnswer, SessionReply, SessionRequest};
use std::collections::HashMap;
use std::sync::{Arc, LazyLock, Mutex};
use std::time::Duration;
use tokio::io::{
    AsyncBufReadExt, AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, BufReader, Lines,
};

#[derive(Debug, thiserror::Error)]
pub enum SessionError {
    #[error("opening a probe session in {target}: {source}")]
    Open {
        target: String,
        #[source]
        source: kube::Error,
    },
    #[error("agent probes in {target} did not finish within {}s", limit.as_secs())]
    TimedOut { target: String, limit: Duration },
    #[error("the session to {target} stayed busy with other probe batches for {}s", limit.as_secs())]
    Busy { target: String, limit: Duration },
    #[error("the agent in {target} refused a probe batch: {why}")]
    Refused { target: String, why: String },
    #[error("the probe session in {target} broke ({broke}) and the kept copy of batch {id} could not be read: {kept}")]
    Lost {
        target: String,
        id: String,
        broke: Broke,
        kept: String,
    },
}

/// How a session's stream failed one request.
#[derive(Debug, thiserror::Error)]
pub enum Broke {
    #[error("writing the request: {0}")]
    Write(std::io::Error),
    #[error("reading the reply: {0}")]
    Read(std::io::Error),
    #[error("the stream ended before the reply{}", stderr_note(.stderr))]
    Ended { stderr: String },
    #[error("the reply is not a session reply: {0}")]
    Garbled(serde_json::Error),
    #[error("the reply is for batch {got}, not {want}")]
    WrongId { want: String, got: String },
}

fn stderr_note(stderr: &str) -> String {
    if stderr.is_empty() {
        String::new()
    } else {
        format!("; agent stderr: {stderr:?}")
    }
}

type Writer = Box<dyn AsyncWrite + Send + Unpin>;
type Reader = Box<dyn AsyncRead + Send + Unpin>;

/// The last bytes the agent wrote to stderr, for messages.
const STDERR_TAIL: usize = 2048;

struct Session {
    requests: Writer,
    replies: Lines<BufReader<Reader>>,
    stderr: Arc<Mutex<String>>,
    /// Dropping it aborts the stream; the agent then sees stdin end and exits.
    _stream: Option<AttachedProcess>,
}

impl Session {
    fn new(
        requests: Writer,
        replies: Reader,
        stderr: Option<Reader>,
        stream: Option<AttachedProcess>,
    ) -> Session {
        let tail = Arc::new(Mutex::new(String::new()));
        if let Some(mut err) = stderr {
            // Drained all the time: a full stderr pipe would stall the stream.
            let tail = tail.clone();
            tokio::spawn(async move {
                let mut buf = [0u8; 1024];
                while let Ok(n) = err.read(&mut buf).await {
                    if n == 0 {
                        break;
                    }
                    let mut t = tail.lock().expect("stderr tail");
                    t.push_str(&String::from_utf8_lossy(&buf[..n]));
                    if t.len() > STDERR_TAIL {
                        let cut = t.len() - STDERR_TAIL;
                        let cut = (cut..t.len())
                            .find(|i| t.is_char_boundary(*i))
                            .unwrap_or(t.len());
                        t.drain(..cut);
                    }
                }
            });
        }
        Session {
            requests,
            replies: BufReader::new(replies).lines(),
            stderr: tail,
            _stream: stream,
        }
    }

    async fn open(client: &Client, ns: &str, pod: &str, container: &str) -> kube::Result<Session> {
        let params = AttachParams::default()
            .container(container)
            .stdin(true)
            .stdout(true)
            .stderr(true);
        let mut proc = Api::<Pod>::namespaced(client.clone(), ns)
            .exec(pod, [AGENT_BINARY, "session"], &params)
            .await?;
        let requests = proc.stdin().expect("exec asked for stdin");
        let replies = proc.stdout().expect("exec asked for stdout");
        let stderr = proc.stderr().map(|e| Box::new(e) as Reader);
        Ok(Session::new(
            Box::new(requests),
            Box::new(replies),
            stderr,
            Some(proc),
        ))
    }

    fn stderr_tail(&self) -> String {
        self.stderr.lock().expect("stderr tail").trim().to_string()
    }

    /// Sends one batch and reads its reply.
    async fn ask(&mut self, id: &str, batch: &ProbeBatch) -> Result<SessionAnswer, Broke> {
        let request = SessionRequest {
            id: id.to_string(),
            batch: batch.clone(),
        };
        let mut line = serde_json::to_string(&request).expect("a request serialises");
        line.push('\n');
        self.requests
            .write_all(line.as_bytes())
            .await
            .map_err(Broke::Write)?;
        self.requests.flush().await.map_err(Broke::Write)?;
        let reply = match self.replies.next_line().await.map_err(Broke::Read)? {
            Some(reply) => reply,
            None => {
                // The drain task may still be reading the agent's last words.
                tokio::time::sleep(Duration::from_millis(50)).await;
                return Err(Broke::Ended {
                    stderr: self.stderr_tail(),
                });
            }
        };
        let reply: SessionReply = serde_json::from_str(&reply).map_err(Broke::Garbled)?;
        if reply.id != id {
            return Err(Broke::WrongId {
                want: id.to_string(),
                got: reply.id,
            });
        }
        Ok(reply.answer)
    }
}

type Key = (String, String, String);
type Slot = Arc<tokio::sync::Mutex<Option<Session>>>;

/// Open sessions by (namespace, pod, container). A slot's lock is held for
/// one batch at a time; a slot is empty when its session broke or was never opened.
static SESSIONS: LazyLock<Mutex<HashMap<Key, Slot>>> = LazyLock::new(Default::default);

fn slot(ns: &str, pod: &str, container: &str) -> Slot {
    SESSIONS
        .lock()
        .expect("session table")
        .entry((ns.to_string(), pod.to_string(), container.to_string()))
        .or_default()
        .clone()
}

/// Closes the sessions into pods of these namespaces (they are being deleted).
pub fn close_in(namespaces: &[String]) {
    close_where(|ns, _| namespaces.iter().any(|n| n == ns));
}

/// Closes the sessions into one pod (it is being replaced: a pod of the same
/// name is a new container, and a session into the old one would only break).
pub fn close_pod(namespace: &str, pod: &str) {
    close_where(|ns, p| ns == namespace && p == pod);
}

fn close_where(closing: impl Fn(&str, &str) -> bool) {
    SESSIONS
        .lock()
        .expect("session table")
        .retain(|(ns, pod, _), _| !closing(ns, pod));
}

/// Runs `batch` in the container's agent through its session (opened on first
/// use), bounded by `limit`.
pub async fn probe(
    client: &Client,
    ns: &str,
    pod: &str,
    container: &str,
    batch: &ProbeBatch,
    limit: Duration,
) -> Result<Vec<ProbeResult>, SessionError> {
    let target = format!("{ns}/{pod} ({container})");
    let id = exec::batch_id();
    let slot = slot(ns, pod, container);
    // Batches for the same pod take turns on its session. The wait is not
    // this batch's time: its limit starts once it holds the session (a
    // batch queued behind one whose probes time out would otherwise be
    // reported as timed out itself). Each holder is bounded by its own
    // limit, so the queue is too; `session_queue` bounds it all the same.
    let mut held = tokio::time::timeout(TIMEOUTS.session_queue, slot.lock())
        .await
        .map_err(|_| SessionError::Busy {
            target: target.clone(),
            limit: TIMEOUTS.session_queue,
        })?;
    let attempt = async {
        // Out of the slot while in use: if this future is dropped at the time
        // limit, the session goes with it and a half-answered stream is never reused.
        let mut session = match held.take() {
            Some(s) => s,
            None => Session::open(client, ns, pod, container)
                .await
                .map_err(|source| SessionError::Open {
                    target: target.clone(),
                    source,
                })?,
        };
        let answer = session.ask(&id, batch).await;
        // A broken session is dropped here; its stderr is kept for the record.
        let stderr = match answer {
            Ok(_) => {
                *held = Some(session);
                String::new()
            }
            Err(_) => session.stderr_tail(),
        };
        Ok::<_, SessionError>((answer, stderr))
    };
    let (answer, stderr) =
        tokio::time::timeout(limit, attempt)
            .await
            .map_err(|_| SessionError::TimedOut {
                target: target.clone(),
                limit,
            })??;
    match answer {
        Ok(SessionAnswer::Results(results)) => Ok(results),
        Ok(SessionAnswer::Refused(why)) => Err(SessionError::Refused { target, why }),
        Err(broke) => recover(client, ns, pod, container, &id, broke, stderr).await,
    }
}

/// The kept copy of a batch whose reply the stream lost; the loss is recorded.
async fn recover(
    client: &Client,
    ns: &str,
    pod: &str,
    container: &str,
    id: &str,
    broke: Broke,
    stderr: String,
) -> Result<Vec<ProbeResult>, SessionError> {
    let target = format!("{ns}/{pod} ({container})");
    let kept = exec::exec(
        client,
        ns,
        pod,
        container,
        &[AGENT_BINARY, "results", id],
        b"",
    )
    .await
    .and_then(|json| {
        serde_json::from_slice::<Vec<ProbeResult>>(&json)
            .map_err(|e| format!("the kept copy is not a result batch: {e}"))
    });
    match kept {
        Ok(results) => {
            tracing::warn!(target: "netconform::exec", pod = %target, %broke,
                "a probe session lost a reply; the batch's kept results were read instead");
            exec::record_loss(TransportLoss {
                pod: format!("{ns}/{pod}"),
                container: container.to_string(),
                at_utc: exec::utc_now(),
                stdout_bytes: 0,
                stderr: format!("{broke}; {stderr}"),
            });
            Ok(results)
        }
        Err(kept) => Err(SessionError::Lost {
            target,
            id: id.to_string(),
            broke,
            kept,
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use netconform_protocol::ProbeSpec;

    /// A session wired to the agent's real session loop in this process.
    fn local_session() -> Session {
        let (harness_out, agent_in) = tokio::io::duplex(1 << 16);
        let (agent_out, harness_in) = tokio::io::duplex(1 << 16);
        tokio::spawn(netconform_agent::session::run(agent_in, agent_out));
        Session::new(Box::new(harness_out), Box::new(harness_in), None, None)
    }

    fn batch(n: usize) -> ProbeBatch {
        let spec: ProbeSpec = serde_json::from_value(serde_json::json!({
            "id": "p", "kind": "tcp", "host": "127.0.0.1", "port": 9, "timeout_ms": 200, "samples": 1
        }))
        .unwrap();
        ProbeBatch {
            probes: (0..n)
                .map(|i| ProbeSpec {
                    id: format!("p{i}"),
                    ..spec.clone()
                })
                .collect(),
            sequential: false,
        }
    }

    fn open_slots(namespace: &str) -> Vec<(String, String)> {
        let mut keys: Vec<_> = SESSIONS
            .lock()
            .unwrap()
            .keys()
            .filter(|(ns, _, _)| ns.starts_with(namespace))
            .map(|(ns, pod, _)| (ns.clone(), pod.clone()))
            .collect();
        keys.sort();
        keys
    }

    #[test]
    fn closing_drops_only_the_named_pod_or_namespaces() {
        for (ns, pod) in [
            ("t-close-a", "p1"),
            ("t-close-a", "p2"),
            ("t-close-b", "p1"),
        ] {
            slot(ns, pod, "agent");
        }
        close_pod("t-close-a", "p1");
        let left = |v: &[(&str, &str)]| -> Vec<(String, String)> {
            v.iter()
                .map(|(a, b)| (a.to_string(), b.to_string()))
                .collect()
        };
        assert_eq!(
            open_slots("t-close-"),
            left(&[("t-close-a", "p2"), ("t-close-b", "p1")])
        );
        close_in(&["t-close-b".to_string()]);
        assert_eq!(open_slots("t-close-"), left(&[("t-close-a", "p2")]));
    }

    #[tokio::test]
    async fn one_session_answers_many_batches_in_turn() {
        let mut s = local_session();
        for (i, n) in [0, 2, 1].into_iter().enumerate() {
            let id = format!("t-{i}");
            match s.ask(&id, &batch(n)).await.unwrap() {
                SessionAnswer::Results(r) => assert_eq!(r.len(), n),
                other => panic!("{other:?}"),
            }
        }
    }

    #[tokio::test]
    async fn a_stream_that_ends_or_garbles_is_broken_not_answered() {
        let (harness_out, _agent_in) = tokio::io::duplex(1024);
        let mut ended = Session::new(Box::new(harness_out), Box::new(&b""[..]), None, None);
        assert!(matches!(
            ended.ask("a", &batch(0)).await,
            Err(Broke::Ended { .. })
        ));

        let (harness_out, _agent_in) = tokio::io::duplex(1024);
        let mut garbled = Session::new(
            Box::new(harness_out),
            Box::new(&b"[{\"id\":\n"[..]),
            None,
            None,
        );
        assert!(matches!(
            garbled.ask("a", &batch(0)).await,
            Err(Broke::Garbled(_))
        ));

        let (harness_out, _agent_in) = tokio::io::duplex(1024);
        let other = b"{\"id\":\"b\",\"answer\":{\"results\":[]}}\n";
        let mut wrong = Session::new(Box::new(harness_out), Box::new(&other[..]), None, None);
        assert!(matches!(
            wrong.ask("a", &batch(0)).await,
            Err(Broke::WrongId { .. })
        ));
    }
}
