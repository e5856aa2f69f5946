//! A probe session: many probe batches over one exec.
//!
//! Every exec costs the node a container-runtime exec (a runc process that
//! joins the container and compiles its seccomp filter) and the API server a
//! stream; at one exec per batch that was a third of a catalogue run's CPU on
//! a 2-core testbed. A session reads [`SessionRequest`]s as JSON lines on
//! stdin and answers each with one [`SessionReply`] line on stdout, until
//! stdin ends. Each batch's results are kept in the pod first (see
//! [`crate::kept`]), so a reply the transport loses can still be read.

use crate::protocol::{SessionAnswer, SessionReply, SessionRequest};
use crate::{kept, probe};
use tokio::io::{AsyncBufReadExt, AsyncWrite, AsyncWriteExt, BufReader};

/// Serves requests from `input` until it ends; replies go to `output`.
pub async fn run<R, W>(input: R, mut output: W) -> std::io::Result<()>
where
    R: tokio::io::AsyncRead + Unpin,
    W: AsyncWrite + Unpin,
{
    let mut lines = BufReader::new(input).lines();
    while let Some(line) = lines.next_line().await? {
        if line.trim().is_empty() {
            continue;
        }
        let reply = answer(&line).await;
        let mut json = serde_json::to_string(&reply).expect("replies serialise");
        json.push('\n');
        output.write_all(json.as_bytes()).await?;
        output.flush().await?;
    }
    Ok(())
}

async fn answer(line: &str) -> SessionReply {
    let request: SessionRequest = match serde_json::from_str(line) {
        Ok(r) => r,
        Err(e) => {
            return SessionReply {
                id: String::new(),
                answer: SessionAnswer::Refused(format!("request is not valid: {e}")),
            }
        }
    };
    if !kept::valid_id(&request.id) {
        return SessionReply {
            answer: SessionAnswer::Refused(format!("id {:?} is not [a-z0-9-]{{1,64}}", request.id)),
            id: request.id,
        };
    }
    let results = probe::run_batch(request.batch).await;
    let json = serde_json::to_string(&results).expect("results serialise");
    // Kept before the reply is written: once it is, the harness may ask.
    // Best effort, as for `probe --keep`.
    if let Err(e) = kept::keep(&request.id, &json) {
        eprintln!(
            "netconform-agent: could not keep results {}: {e}",
            request.id
        );
    }
    SessionReply {
        id: request.id,
        answer: SessionAnswer::Results(results),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::ProbeBatch;

    async fn replies(input: &str) -> Vec<SessionReply> {
        let mut out = Vec::new();
        run(input.as_bytes(), &mut out).await.unwrap();
        String::from_utf8(out)
            .unwrap()
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect()
    }

    #[tokio::test]
    async fn each_request_gets_one_reply_line_in_order() {
        let empty = serde_json::to_string(&ProbeBatch {
            probes: vec![],
            sequential: false,
        })
        .unwrap();
        let input = format!(
            "{{\"id\":\"s-1\",\"batch\":{empty}}}\n\n{{\"id\":\"s-2\",\"batch\":{empty}}}\n"
        );
        let got = replies(&input).await;
        assert_eq!(
            got,
            vec![
                SessionReply {
                    id: "s-1".into(),
                    answer: SessionAnswer::Results(vec![])
                },
                SessionReply {
                    id: "s-2".into(),
                    answer: SessionAnswer::Results(vec![])
                },
            ]
        );
    }

    #[tokio::test]
    async fn bad_requests_are_refused_and_the_session_goes_on() {
        let got = replies(
            "not json\n{\"id\":\"../x\",\"batch\":{\"probes\":[]}}\n{\"id\":\"ok\",\"batch\":{\"probes\":[]}}\n",
        )
        .await;
        assert!(matches!(&got[0].answer, SessionAnswer::Refused(why) if why.contains("not valid")));
        assert!(matches!(&got[1].answer, SessionAnswer::Refused(why) if why.contains("../x")));
        assert_eq!(got[2].answer, SessionAnswer::Results(vec![]));
    }
}
