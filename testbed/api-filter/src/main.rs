//! An API server proxy for one node's kube-proxy, for two testbed faults. It
//! forwards every request with the credentials of the kubeconfig it is given
//! and hides one thing from kube-proxy:
//!
//! - `service-updates` (fault `service-stale-updates`): the MODIFIED events
//!   of Service watches. kube-proxy follows new and deleted Services but keeps
//!   the spec it first saw of each one: a Service proxy that handles add and
//!   delete events and not updates (a type change, affinity switched).
//! - `extra-endpoint-slices` (fault `endpoint-slices-first-only`): every
//!   EndpointSlice of a Service but the first one it sees of each address
//!   type (the lowest name in its first list), in lists and watches: a
//!   Service proxy that reads one slice per Service and family, as if
//!   Endpoints had only become slices by renaming. Per family, so that on a
//!   dual-stack cluster the fault still means "a Service over several slices
//!   loses all but one", not "a whole family's endpoints are gone".
//!
//! Everything else passes untouched.
//!
//! It listens on loopback only, in the node's network namespace, in plain
//! HTTP (kube-proxy's kubeconfig for the fault points at it).

use anyhow::Context;
use bytes::Bytes;
use clap::{Parser, ValueEnum};
use futures::SinkExt;
use http::header::{self, HeaderValue};
use http_body_util::{combinators::UnsyncBoxBody, BodyExt, Full, StreamBody};
use hyper::body::{Frame, Incoming};
use hyper_util::rt::TokioIo;
use serde_json::Value;
use std::collections::BTreeMap;
use std::convert::Infallible;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

#[derive(Parser)]
#[command(about = "An API server proxy that hides Service updates from watches")]
struct Args {
    /// The kubeconfig whose server and credentials every request is sent with.
    #[arg(long)]
    kubeconfig: PathBuf,
    /// Where to listen for plain HTTP (a loopback address).
    #[arg(long, default_value = "127.0.0.1:16443")]
    listen: SocketAddr,
    /// What kube-proxy is not shown.
    #[arg(long, value_enum)]
    hide: Hide,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
enum Hide {
    ServiceUpdates,
    ExtraEndpointSlices,
}

/// The EndpointSlice kept per Service and family:
/// (namespace, service, address type) -> slice name.
type FirstSlices = Arc<Mutex<BTreeMap<(String, String, String), String>>>;

/// How one response is filtered.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Filter {
    None,
    /// A JSON watch stream, one event per line.
    WatchLines,
    /// A JSON list, filtered item by item.
    ListItems,
}

type Reply = http::Response<UnsyncBoxBody<Bytes, std::io::Error>>;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    anyhow::ensure!(
        args.listen.ip().is_loopback(),
        "--listen {} is not a loopback address",
        args.listen
    );
    let kubeconfig = kube::config::Kubeconfig::read_from(&args.kubeconfig)
        .with_context(|| format!("reading {}", args.kubeconfig.display()))?;
    let config = kube::Config::from_custom_kubeconfig(kubeconfig, &Default::default())
        .await
        .with_context(|| format!("using {}", args.kubeconfig.display()))?;
    let client = kube::Client::try_from(config)?;
    let (hide, first_slices) = (args.hide, FirstSlices::default());
    let listener = tokio::net::TcpListener::bind(args.listen)
        .await
        .with_context(|| format!("listening on {}", args.listen))?;
    eprintln!("api-filter: listening on {}", args.listen);
    loop {
        let (stream, _) = listener.accept().await?;
        let (client, first_slices) = (client.clone(), first_slices.clone());
        tokio::spawn(async move {
            let service = hyper::service::service_fn(move |req| {
                forward(client.clone(), hide, first_slices.clone(), req)
            });
            // A connection that ends badly ends only itself.
            let _ = hyper::server::conn::http1::Builder::new()
                .serve_connection(TokioIo::new(stream), service)
                .await;
        });
    }
}

async fn forward(
    client: kube::Client,
    hide: Hide,
    first_slices: FirstSlices,
    req: http::Request<Incoming>,
) -> Result<Reply, Infallible> {
    let filter = filter_for(hide, req.uri());
    let (mut parts, body) = req.into_parts();
    // kube-proxy's requests are small (reads, events): read them whole.
    let body = match body.collect().await {
        Ok(b) => b.to_bytes(),
        Err(e) => return Ok(error_reply(http::StatusCode::BAD_REQUEST, e.to_string())),
    };
    for hop in [header::HOST, header::CONNECTION, header::TRANSFER_ENCODING] {
        parts.headers.remove(hop);
    }
    if filter != Filter::None {
        // JSON watch events are one per line (protobuf ones are not).
        parts
            .headers
            .insert(header::ACCEPT, HeaderValue::from_static("application/json"));
    }
    // The client puts its server in front of the path.
    parts.uri = match parts.uri.path_and_query() {
        Some(pq) => match pq.as_str().parse() {
            Ok(uri) => uri,
            Err(_) => return Ok(error_reply(http::StatusCode::BAD_REQUEST, "bad URI".into())),
        },
        None => http::Uri::from_static("/"),
    };
    let request = http::Request::from_parts(parts, kube::client::Body::from(body));
    let response = match client.send(request).await {
        Ok(r) => r,
        Err(e) => return Ok(error_reply(http::StatusCode::BAD_GATEWAY, e.to_string())),
    };
    let (mut parts, body) = response.into_parts();
    parts.headers.remove(header::TRANSFER_ENCODING);
    if !parts.status.is_success() {
        return Ok(http::Response::from_parts(
            parts,
            body.map_err(std::io::Error::other).boxed_unsync(),
        ));
    }
    let keep = move |event: &Value| keep_event(hide, &first_slices, event);
    let body = match filter {
        Filter::None => body.map_err(std::io::Error::other).boxed_unsync(),
        Filter::WatchLines => {
            parts.headers.remove(header::CONTENT_LENGTH);
            filtered_lines(body, keep)
        }
        Filter::ListItems => {
            parts.headers.remove(header::CONTENT_LENGTH);
            match body.collect().await {
                Ok(list) => Full::new(Bytes::from(filtered_list(&list.to_bytes(), keep)))
                    .map_err(|never| match never {})
                    .boxed_unsync(),
                Err(e) => return Ok(error_reply(http::StatusCode::BAD_GATEWAY, e.to_string())),
            }
        }
    };
    Ok(http::Response::from_parts(parts, body))
}

/// How the response to a request for `uri` is filtered.
fn filter_for(hide: Hide, uri: &http::Uri) -> Filter {
    let path = uri.path().trim_end_matches('/');
    // A collection, cluster-wide or in one namespace.
    let collection = |group: &str, resource: &str| {
        path.strip_prefix(group).is_some_and(|rest| {
            rest == format!("/{resource}")
                || rest
                    .strip_prefix("/namespaces/")
                    .and_then(|rest| rest.split_once('/'))
                    .is_some_and(|(_, r)| r == resource)
        })
    };
    let watch = uri
        .query()
        .unwrap_or_default()
        .split('&')
        .any(|kv| kv == "watch=true" || kv == "watch=1");
    match hide {
        Hide::ServiceUpdates if watch && collection("/api/v1", "services") => Filter::WatchLines,
        Hide::ExtraEndpointSlices if collection("/apis/discovery.k8s.io/v1", "endpointslices") => {
            if watch {
                Filter::WatchLines
            } else {
                Filter::ListItems
            }
        }
        _ => Filter::None,
    }
}

/// Whether kube-proxy sees this watch event (`{"type", "object"}`) or list
/// item (an object).
fn keep_event(hide: Hide, first_slices: &FirstSlices, event: &Value) -> bool {
    match hide {
        Hide::ServiceUpdates => event["type"] != "MODIFIED",
        Hide::ExtraEndpointSlices => {
            let object = event.get("object").unwrap_or(event);
            let meta = &object["metadata"];
            let (Some(ns), Some(service), Some(name)) = (
                meta["namespace"].as_str(),
                meta["labels"]["kubernetes.io/service-name"].as_str(),
                meta["name"].as_str(),
            ) else {
                return true; // bookmarks, errors, slices of no Service
            };
            let family = object["addressType"].as_str().unwrap_or_default();
            let mut first = first_slices.lock().unwrap_or_else(|e| e.into_inner());
            first
                .entry((ns.to_string(), service.to_string(), family.to_string()))
                .or_insert_with(|| name.to_string())
                == name
        }
    }
}

/// A JSON list with the items `keep` refuses left out (a body that is not a
/// JSON object with `items` passes as it is).
fn filtered_list(body: &[u8], keep: impl Fn(&Value) -> bool) -> Vec<u8> {
    let Ok(mut list) = serde_json::from_slice::<Value>(body) else {
        return body.to_vec();
    };
    let Some(items) = list.get_mut("items").and_then(Value::as_array_mut) else {
        return body.to_vec();
    };
    items.retain(|item| keep(item));
    serde_json::to_vec(&list).unwrap_or_else(|_| body.to_vec())
}

/// Takes whole lines off the front of `pending` and returns those to pass on
/// (a line that is not JSON passes).
fn pass_complete_lines(pending: &mut Vec<u8>, keep: &impl Fn(&Value) -> bool) -> Vec<u8> {
    let mut kept = Vec::new();
    while let Some(end) = pending.iter().position(|b| *b == b'\n') {
        let line: Vec<u8> = pending.drain(..=end).collect();
        if serde_json::from_slice::<Value>(&line).map_or(true, |event| keep(&event)) {
            kept.extend(line);
        }
    }
    kept
}

/// The watch stream with the events `keep` refuses left out.
fn filtered_lines(
    mut body: kube::client::Body,
    keep: impl Fn(&Value) -> bool + Send + 'static,
) -> UnsyncBoxBody<Bytes, std::io::Error> {
    let (mut tx, rx) = futures::channel::mpsc::channel::<Result<Frame<Bytes>, std::io::Error>>(16);
    tokio::spawn(async move {
        let mut pending = Vec::new();
        while let Some(frame) = body.frame().await {
            let data = match frame {
                Ok(frame) => match frame.into_data() {
                    Ok(data) => data,
                    Err(_) => continue,
                },
                Err(e) => {
                    let _ = tx.send(Err(std::io::Error::other(e))).await;
                    return;
                }
            };
            pending.extend_from_slice(&data);
            let kept = pass_complete_lines(&mut pending, &keep);
            if !kept.is_empty() && tx.send(Ok(Frame::data(Bytes::from(kept)))).await.is_err() {
                return; // kube-proxy went away
            }
        }
        pending.push(b'\n');
        let kept = pass_complete_lines(&mut pending, &keep);
        if !kept.is_empty() {
            let _ = tx.send(Ok(Frame::data(Bytes::from(kept)))).await;
        }
    });
    StreamBody::new(rx).boxed_unsync()
}

fn error_reply(status: http::StatusCode, message: String) -> Reply {
    let mut reply = http::Response::new(
        Full::new(Bytes::from(message))
            .map_err(|never| match never {})
            .boxed_unsync(),
    );
    *reply.status_mut() = status;
    reply
}

#[cfg(test)]
mod tests {
    use super::*;
    use rstest::rstest;

    #[rstest]
    #[case::all_services(
        Hide::ServiceUpdates,
        "/api/v1/services?watch=true&resourceVersion=5",
        Filter::WatchLines
    )]
    #[case::one_namespace(
        Hide::ServiceUpdates,
        "/api/v1/namespaces/a/services?watch=1",
        Filter::WatchLines
    )]
    #[case::a_service_list(Hide::ServiceUpdates, "/api/v1/services?limit=500", Filter::None)]
    #[case::slices_not_hidden(
        Hide::ServiceUpdates,
        "/apis/discovery.k8s.io/v1/endpointslices?watch=true",
        Filter::None
    )]
    #[case::one_service(
        Hide::ServiceUpdates,
        "/api/v1/namespaces/a/services/web?watch=true",
        Filter::None
    )]
    #[case::slice_watch(
        Hide::ExtraEndpointSlices,
        "/apis/discovery.k8s.io/v1/endpointslices?watch=true",
        Filter::WatchLines
    )]
    #[case::slice_list(
        Hide::ExtraEndpointSlices,
        "/apis/discovery.k8s.io/v1/endpointslices?limit=500",
        Filter::ListItems
    )]
    #[case::services_not_hidden(
        Hide::ExtraEndpointSlices,
        "/api/v1/services?watch=true",
        Filter::None
    )]
    fn filters_the_right_collections(#[case] hide: Hide, #[case] uri: &str, #[case] want: Filter) {
        assert_eq!(filter_for(hide, &uri.parse().unwrap()), want);
    }

    #[test]
    fn drops_update_lines_and_keeps_partial_ones_for_later() {
        let keep = |e: &Value| keep_event(Hide::ServiceUpdates, &FirstSlices::default(), e);
        let mut pending = br#"{"type":"ADDED","object":{}}
{"type":"MODIFIED","object":{"a":1}}
{"type":"DELETED","object":{}}
{"type":"MODI"#
            .to_vec();
        let kept = pass_complete_lines(&mut pending, &keep);
        assert_eq!(
            String::from_utf8(kept).unwrap(),
            "{\"type\":\"ADDED\",\"object\":{}}\n{\"type\":\"DELETED\",\"object\":{}}\n"
        );
        assert_eq!(pending, br#"{"type":"MODI"#.to_vec());
        pending.extend_from_slice(b"FIED\",\"object\":{}}\n{\"type\":\"BOOKMARK\"}\n");
        assert_eq!(
            pass_complete_lines(&mut pending, &keep),
            b"{\"type\":\"BOOKMARK\"}\n".to_vec()
        );
    }

    fn slice(ns: &str, service: &str, name: &str) -> Value {
        family_slice(ns, service, name, "IPv4")
    }

    fn family_slice(ns: &str, service: &str, name: &str, family: &str) -> Value {
        serde_json::json!({"addressType": family, "metadata": {"namespace": ns, "name": name,
            "labels": {"kubernetes.io/service-name": service}}})
    }

    /// A dual-stack Service has a slice per family: each family keeps its
    /// first, so only a Service split within one family loses endpoints.
    #[test]
    fn keeps_the_first_slice_of_each_family() {
        let first = FirstSlices::default();
        let keep = |e: &Value| keep_event(Hide::ExtraEndpointSlices, &first, e);
        assert!(keep(&family_slice("a", "web", "web-v4", "IPv4")));
        assert!(keep(&family_slice("a", "web", "web-v6", "IPv6")));
        assert!(!keep(&family_slice("a", "web", "web-v4b", "IPv4")));
        assert!(!keep(&family_slice("a", "web", "web-v6b", "IPv6")));
        assert!(keep(&family_slice("a", "web", "web-v6", "IPv6")));
    }

    #[test]
    fn keeps_the_first_slice_of_each_service_in_lists_and_watches() {
        let first = FirstSlices::default();
        let keep = |e: &Value| keep_event(Hide::ExtraEndpointSlices, &first, e);
        let list = serde_json::json!({"kind": "EndpointSliceList", "items": [
            slice("a", "split", "split-0"), slice("a", "split", "split-1"),
            slice("a", "web", "web-x7"), slice("b", "split", "split-9")]});
        let kept: Value =
            serde_json::from_slice(&filtered_list(&serde_json::to_vec(&list).unwrap(), keep))
                .unwrap();
        let names: Vec<&str> = kept["items"]
            .as_array()
            .unwrap()
            .iter()
            .map(|i| i["metadata"]["name"].as_str().unwrap())
            .collect();
        assert_eq!(names, ["split-0", "web-x7", "split-9"]);
        let event = |name: &str| serde_json::json!({"type": "MODIFIED", "object": slice("a", "split", name)});
        assert!(keep(&event("split-0")));
        assert!(!keep(&event("split-1")));
        assert!(keep(
            &serde_json::json!({"type": "BOOKMARK", "object": {"metadata": {}}})
        ));
    }
}
