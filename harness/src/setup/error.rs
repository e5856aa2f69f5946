//! Why setting up a world, or changing it for a check, failed: data that the
//! verdict carries (`Failure::SetupFailed` in the verdict module) and the report
//! renders (`Display`).

use serde::Serialize;

/// What a step of setup or of an action waited for.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Awaited {
    Ready,
    Gone,
    NotReady,
}

#[derive(Clone, Debug, PartialEq, Serialize, thiserror::Error)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum SetupError {
    /// A request to the API server failed; `doing` is e.g. "applying pod".
    #[error("{doing} {object}: {detail}")]
    Api {
        doing: &'static str,
        object: String,
        detail: String,
    },
    /// The scenario's pods cannot be placed on this cluster's nodes.
    #[error("{reason}")]
    Placement { reason: String },
    /// A pod did not get where the step needs it within the step's bound.
    #[error("{}", timeout_text(object, *awaited, *limit_s, diagnosis))]
    Timeout {
        object: String,
        awaited: Awaited,
        limit_s: u64,
        /// The pod's phase, container states and last events, when known.
        diagnosis: Option<String>,
    },
    #[error("pod {object} was deleted while waiting for it to be Ready")]
    PodDeleted { object: String },
    #[error("pod {object} is Ready but has no IP")]
    NoPodIp { object: String },
    #[error("service {object} did not get {want} ready endpoints within {limit_s}s")]
    EndpointsNotReady {
        object: String,
        want: usize,
        limit_s: u64,
    },
    /// A name the scenario refers to is not in this world (validation
    /// should have caught it; kept as a verdict rather than a panic).
    #[error("no {what} `{name}` in this world")]
    Unknown { what: &'static str, name: String },
    #[error("the cluster domain could not be discovered from a pod's resolv.conf")]
    NoClusterDomain,
    #[error("`{name}` has a placeholder this run cannot fill (known: {{domain}}, {{ns}}, {{ns:<namespace>}})")]
    UnknownPlaceholder { name: String },
    /// A NetworkPolicy fixture whose spec (after placeholders) is not a NetworkPolicySpec.
    #[error("NetworkPolicy {policy}: {detail}")]
    BadPolicy { policy: String, detail: String },
    /// A step that runs through the cluster module (namespaces, exec, probes).
    #[error("{0}")]
    Cluster(String),
}

fn timeout_text(
    object: &str,
    awaited: Awaited,
    limit_s: u64,
    diagnosis: &Option<String>,
) -> String {
    let what = match awaited {
        Awaited::Ready => format!("pod {object} not Ready after {limit_s}s"),
        Awaited::Gone => format!("pod {object} was not gone within {limit_s}s"),
        Awaited::NotReady => format!("pod {object} still Ready {limit_s}s after set-ready false"),
    };
    match diagnosis {
        Some(d) => format!("{what}: {d}"),
        None => what,
    }
}

impl SetupError {
    /// A failed API request: what was being done, to which object.
    pub fn api(
        doing: &'static str,
        object: impl Into<String>,
        error: impl std::fmt::Display,
    ) -> Self {
        SetupError::Api {
            doing,
            object: object.into(),
            detail: error.to_string(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_timeout_names_the_pod_the_wait_and_what_the_pod_was_doing() {
        let e = SetupError::Timeout {
            object: "nc-a/web".into(),
            awaited: Awaited::Ready,
            limit_s: 90,
            diagnosis: Some("phase Pending; agent: waiting (ErrImageNeverPull)".into()),
        };
        assert_eq!(
            e.to_string(),
            "pod nc-a/web not Ready after 90s: phase Pending; agent: waiting (ErrImageNeverPull)"
        );
        let json = serde_json::to_value(&e).unwrap();
        assert_eq!(json["kind"], "timeout");
        assert_eq!(json["awaited"], "ready");
    }

    #[test]
    fn an_api_error_says_what_was_being_done_to_which_object() {
        let e = SetupError::api("applying pod", "nc-a/web", "connection refused");
        assert_eq!(e.to_string(), "applying pod nc-a/web: connection refused");
    }
}
