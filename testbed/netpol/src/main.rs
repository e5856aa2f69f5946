//! netconform-netpol: the testbed's NetworkPolicy enforcer.
//!
//! One instance runs in each node's network namespace. It watches pods,
//! namespaces and NetworkPolicies, computes the rules for the pods on its node
//! (rules.rs), one ruleset per IP family it is asked to enforce (family.rs),
//! and applies each atomically with iptables-restore or ip6tables-restore. On
//! SIGTERM it removes everything it installed, so stopping it really stops
//! enforcement (the testbed's "NetworkPolicy enforcement stopped" fault).

mod cidr;
mod family;
mod rules;
mod selector;
mod stale;

use anyhow::{bail, Context, Result};
use clap::Parser;
use family::Family;
use futures::StreamExt;
use k8s_openapi::api::core::v1::{Namespace, Pod};
use k8s_openapi::api::networking::v1::NetworkPolicy;
use kube::config::{KubeConfigOptions, Kubeconfig};
use kube::runtime::{reflector, watcher, WatchStreamExt};
use kube::{Api, Client, Config};
use std::collections::BTreeSet;
use std::io::Write;
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::signal::unix::{signal, SignalKind};
use tokio::sync::Notify;

#[derive(Parser)]
#[command(about = "NetworkPolicy enforcer for one node of the netconform testbed")]
struct Args {
    /// Kubeconfig to reach the API server with.
    #[arg(long)]
    kubeconfig: std::path::PathBuf,
    /// Name of the node whose pods this instance protects.
    #[arg(long)]
    node: String,
    /// A fault (testbed `fault netpol-stale-updates`): keep the labels and
    /// policy specs each object had when first seen, ignoring later updates.
    #[arg(long)]
    ignore_updates: bool,
    /// IP families to enforce, comma-separated: the testbed's (ipv4, ipv6 or both).
    #[arg(
        long = "family",
        value_enum,
        value_delimiter = ',',
        default_value = "ipv4"
    )]
    families: Vec<Family>,
}

/// One family's filter table: what this enforcer installed there and last applied.
struct Table {
    family: Family,
    installed: BTreeSet<String>,
    last: Option<rules::Ruleset>,
}

/// Built-in chains that jump to ours: FORWARD for routed and bridged pod
/// traffic, INPUT for pods talking to their own node's addresses.
const HOOKS: [&str; 2] = ["FORWARD", "INPUT"];

#[tokio::main]
async fn main() -> Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()),
        )
        .init();
    let args = Args::parse();
    let kubeconfig = Kubeconfig::read_from(&args.kubeconfig)
        .with_context(|| format!("reading kubeconfig {}", args.kubeconfig.display()))?;
    let client = Client::try_from(
        Config::from_custom_kubeconfig(kubeconfig, &KubeConfigOptions::default()).await?,
    )?;

    let changed = Arc::new(Notify::new());
    let pods = watch::<Pod>(Api::all(client.clone()), changed.clone());
    let namespaces = watch::<Namespace>(Api::all(client.clone()), changed.clone());
    let policies = watch::<NetworkPolicy>(Api::all(client), changed.clone());
    for store in [
        pods.wait_until_ready().await,
        namespaces.wait_until_ready().await,
        policies.wait_until_ready().await,
    ] {
        store.context("a watch ended before its first list")?;
    }
    tracing::info!(node = %args.node, families = ?args.families, "caches synced; enforcing");

    let mut term = signal(SignalKind::terminate())?;
    let mut int = signal(SignalKind::interrupt())?;
    let mut tables = Vec::new();
    for family in args.families.iter().copied().collect::<BTreeSet<_>>() {
        tables.push(Table {
            family,
            installed: existing_chains(family)?,
            last: None,
        });
    }
    // Whether to look at the hook chains this time round: on start, after
    // applying rules, and on the 5 s tick; not on every pod event (that was
    // a thousand `iptables -S` runs per catalogue, most of the node's iptables work).
    let mut check_hooks = true;
    let mut first_seen = args.ignore_updates.then(stale::FirstSeen::default);
    if first_seen.is_some() {
        tracing::warn!("fault: ignoring updates to labels and policy specs");
    }
    loop {
        let started = Instant::now();
        let pod_list = pods.state();
        let (pod_view, namespace_view, policy_view) = match first_seen.as_mut() {
            None => (pod_list, namespaces.state(), policies.state()),
            Some(seen) => (
                seen.pods(&pod_list),
                seen.namespaces(&namespaces.state()),
                seen.policies(&policies.state()),
            ),
        };
        for table in &mut tables {
            for shared in rules::shared_addresses(table.family, &pod_view) {
                tracing::info!(%shared, "an address shown by several pods: the live one owns it");
            }
            let ruleset = rules::compute(
                table.family,
                &args.node,
                &pod_view,
                &namespace_view,
                &policy_view,
            );
            if table.last.as_ref() != Some(&ruleset) {
                iptables_restore(
                    table.family,
                    &rules::restore_script(&ruleset, &table.installed),
                )?;
                table.installed = ruleset.chains.keys().cloned().collect();
                tracing::info!(
                    family = %table.family,
                    chains = table.installed.len(),
                    took_ms = started.elapsed().as_millis() as u64,
                    "rules applied"
                );
                table.last = Some(ruleset);
                check_hooks = true;
            }
        }
        if check_hooks {
            for table in &tables {
                ensure_hooks(table.family)?;
            }
        }
        check_hooks = false;
        tokio::select! {
            _ = changed.notified() => {
                // Let a burst of events (a new namespace full of pods) settle into one apply.
                tokio::time::sleep(Duration::from_millis(30)).await;
            }
            // kube-proxy re-inserts its own jumps; keep ours first.
            _ = tokio::time::sleep(Duration::from_secs(5)) => check_hooks = true,
            _ = term.recv() => break,
            _ = int.recv() => break,
        }
    }
    for table in &tables {
        remove_everything(table.family, &table.installed)?;
    }
    tracing::info!("stopped; rules removed");
    Ok(())
}

/// A reflector store kept current by a watch, notifying `changed` on every event.
fn watch<K>(api: Api<K>, changed: Arc<Notify>) -> reflector::Store<K>
where
    K: kube::Resource<DynamicType = ()>
        + Clone
        + std::fmt::Debug
        + Send
        + Sync
        + serde::de::DeserializeOwned
        + 'static,
{
    let (reader, writer) = reflector::store();
    let stream = reflector(
        writer,
        watcher(api, watcher::Config::default()).default_backoff(),
    );
    tokio::spawn(async move {
        stream
            .for_each(|event| {
                if let Err(e) = event {
                    tracing::warn!("watch error: {e}");
                }
                changed.notify_one();
                futures::future::ready(())
            })
            .await;
    });
    reader
}

fn iptables(family: Family, args: &[&str]) -> Result<std::process::Output> {
    Command::new(family.iptables())
        .args(args)
        .output()
        .with_context(|| format!("running {}", family.iptables()))
}

fn iptables_restore(family: Family, script: &str) -> Result<()> {
    let mut child = Command::new(family.iptables_restore())
        .arg("--noflush")
        .stdin(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .with_context(|| format!("running {}", family.iptables_restore()))?;
    child
        .stdin
        .take()
        .expect("piped")
        .write_all(script.as_bytes())?;
    let out = child.wait_with_output()?;
    if !out.status.success() {
        bail!(
            "{} failed: {}\n--- input ---\n{script}",
            family.iptables_restore(),
            String::from_utf8_lossy(&out.stderr)
        );
    }
    Ok(())
}

/// Chains left by an earlier instance, so they are replaced or deleted, not leaked.
fn existing_chains(family: Family) -> Result<BTreeSet<String>> {
    let out = iptables(family, &["-S"])?;
    Ok(String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| l.strip_prefix("-N "))
        .filter(|c| *c == rules::MAIN_CHAIN || c.starts_with(rules::CHAIN_PREFIX))
        .map(str::to_string)
        .collect())
}

/// Keeps `-j NETCONFORM-NETPOL` the first rule of each hook chain.
fn ensure_hooks(family: Family) -> Result<()> {
    let jump = format!("-j {}", rules::MAIN_CHAIN);
    for hook in HOOKS {
        let out = iptables(family, &["-S", hook])?;
        let listing = String::from_utf8_lossy(&out.stdout);
        let first_rule = listing.lines().find(|l| l.starts_with("-A "));
        if first_rule == Some(format!("-A {hook} {jump}").as_str()) {
            continue;
        }
        while iptables(family, &["-D", hook, "-j", rules::MAIN_CHAIN])?
            .status
            .success()
        {}
        let out = iptables(family, &["-I", hook, "1", "-j", rules::MAIN_CHAIN])?;
        if !out.status.success() {
            bail!(
                "{} -I {hook}: {}",
                family.iptables(),
                String::from_utf8_lossy(&out.stderr)
            );
        }
    }
    Ok(())
}

fn remove_everything(family: Family, installed: &BTreeSet<String>) -> Result<()> {
    for hook in HOOKS {
        while iptables(family, &["-D", hook, "-j", rules::MAIN_CHAIN])?
            .status
            .success()
        {}
    }
    iptables_restore(
        family,
        &rules::restore_script(&rules::Ruleset::default(), installed),
    )
}
