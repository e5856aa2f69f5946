//! Progress of long work (setup, convergence, cleanup) as `tracing` events:
//! target `netconform`, the scenario (or shared world copy) in the `scenario`
//! field. The suite prints them as `netconform [<scenario>] <message>`; a
//! program using the harness as a library routes them with its own subscriber.

pub fn progress(scenario: &str, message: impl std::fmt::Display) {
    tracing::info!(target: "netconform", scenario, "{message}");
}
