//! netconform-agent: see lib.rs.

use clap::{Parser, Subcommand};
use netconform_agent::{identity, kept, probe, protocol::ProbeBatch, serve, session};
use std::io::Read;
use std::process::ExitCode;

#[derive(Parser)]
#[command(version, about = "netconform probe agent: runs inside fixture pods")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Serve TCP echo, UDP echo and HTTP until stopped.
    Serve {
        /// TCP echo port (repeatable).
        #[arg(long = "tcp")]
        tcp: Vec<u16>,
        /// UDP echo port (repeatable).
        #[arg(long = "udp")]
        udp: Vec<u16>,
        /// HTTP port (repeatable): /clientip, /hostname, /healthz.
        #[arg(long = "http")]
        http: Vec<u16>,
    },
    /// Read a probe batch (JSON) on stdin, run it, print the results (JSON).
    Probe {
        /// Also keep the results in the pod under this id, for `results`.
        #[arg(long)]
        keep: Option<String>,
    },
    /// Answer probe batches (JSON lines on stdin, one reply line each on
    /// stdout, results kept in the pod) until stdin ends.
    Session,
    /// Print (and remove) the results a `probe --keep <ID>` or a session kept.
    Results { id: String },
    /// Print this pod's hostname and interface addresses (JSON).
    Info,
    /// Make this pod's readiness probe (HTTP /healthz) pass or fail.
    SetReady {
        #[arg(action = clap::ArgAction::Set)]
        ready: bool,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("tokio runtime");
    let result: Result<(), String> = runtime.block_on(async {
        match cli.command {
            Command::Serve { tcp, udp, http } => {
                // No ports is allowed: a hostNetwork pod that only runs probes.
                let ports = serve::Ports { tcp, udp, http };
                tokio::select! {
                    r = serve::run(ports, identity::hostname()) => r.map_err(|e| e.to_string()),
                    _ = tokio::signal::ctrl_c() => Ok(()),
                    _ = sigterm() => Ok(()),
                }
            }
            Command::Probe { keep } => {
                if let Some(id) = &keep {
                    // Refused before any probe runs, not after.
                    if !kept::valid_id(id) {
                        return Err(format!("--keep {id:?}: not [a-z0-9-]{{1,64}}"));
                    }
                }
                let mut input = String::new();
                std::io::stdin()
                    .read_to_string(&mut input)
                    .map_err(|e| format!("reading stdin: {e}"))?;
                let batch: ProbeBatch = serde_json::from_str(&input)
                    .map_err(|e| format!("probe batch on stdin is not valid: {e}"))?;
                let results = probe::run_batch(batch).await;
                let json = serde_json::to_string(&results).expect("results serialise");
                if let Some(id) = &keep {
                    // Kept before printing: once stdout is written the harness may ask.
                    // Best effort: the copy only matters if stdout is lost,
                    // and a full /tmp must not cost the results themselves.
                    if let Err(e) = kept::keep(id, &json) {
                        eprintln!("netconform-agent: could not keep results {id}: {e}");
                    }
                }
                println!("{json}");
                // Read by the harness only when stdout did not arrive whole.
                eprintln!(
                    "netconform-agent: {} results, {} bytes on stdout",
                    results.len(),
                    json.len() + 1
                );
                Ok(())
            }
            Command::Session => session::run(tokio::io::stdin(), tokio::io::stdout())
                .await
                .map_err(|e| format!("session: {e}")),
            Command::Results { id } => {
                let json = kept::take(&id).map_err(|e| format!("results {id}: {e}"))?;
                println!("{json}");
                Ok(())
            }
            Command::SetReady { ready } => {
                serve::set_ready(ready).map_err(|e| format!("set-ready: {e}"))
            }
            Command::Info => {
                let me = identity::identity().map_err(|e| format!("reading interfaces: {e}"))?;
                println!(
                    "{}",
                    serde_json::to_string(&me).expect("identity serialises")
                );
                Ok(())
            }
        }
    });
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("netconform-agent: {e}");
            ExitCode::FAILURE
        }
    }
}

async fn sigterm() {
    match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
        Ok(mut s) => {
            s.recv().await;
        }
        Err(_) => std::future::pending().await,
    }
}
