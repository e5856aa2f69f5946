//! `netconform`: the suite as a command, for CI jobs, platform teams and
//! vendors without a checkout's `cargo test`. `run` is the same run as
//! `cargo test -p netconform-suite --test conformance` (same trial names,
//! filters and reports); `list`, `report` and `gc` work around it.

use clap::{Args, Parser, Subcommand, ValueEnum};
use libtest_mimic::Arguments;
use netconform_harness::cluster::{self, liveness};
use netconform_harness::features::{self, PROFILES};
use netconform_harness::report::{html, matrix};
use netconform_harness::scenario::load_dir;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

#[derive(Parser)]
#[command(
    name = "netconform",
    version,
    about = "Conformance suite for Kubernetes cluster networking"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the checks (all, or those the filters select) on a cluster.
    Run(RunArgs),
    /// List scenarios, checks, features or profiles.
    List {
        #[arg(value_enum, default_value_t = What::Checks)]
        what: What,
        #[command(flatten)]
        scenarios: ScenarioArgs,
    },
    /// Render report.html from a run's results.json and conformance.json.
    Report {
        /// The directory holding results.json and conformance.json.
        #[arg(default_value = "reports")]
        dir: PathBuf,
        /// Where to write the page (default: DIR/report.html).
        #[arg(short, long)]
        output: Option<PathBuf>,
    },
    /// A Markdown matrix of feature verdicts from several runs' conformance
    /// reports, one column each (e.g. one per CNI).
    Matrix {
        /// Columns as NAME=PATH, PATH a conformance.json or a report directory.
        #[arg(required = true, value_parser = parse_column)]
        columns: Vec<(String, PathBuf)>,
        /// Where to write the table (default: standard output).
        #[arg(short, long)]
        output: Option<PathBuf>,
    },
    /// Delete what dead runs left behind: the namespaces of every run whose
    /// Lease is no longer renewed. Live runs and anything without
    /// netconform's labels are never touched.
    Gc {
        /// Only say what would be deleted.
        #[arg(long)]
        dry_run: bool,
        #[command(flatten)]
        cluster: ClusterArgs,
    },
}

#[derive(Clone, Copy, ValueEnum)]
enum What {
    Scenarios,
    Checks,
    Features,
    Profiles,
}

#[derive(Args)]
struct ScenarioArgs {
    /// The scenario directory.
    #[arg(long, env = "NETCONFORM_SCENARIOS")]
    scenarios: Option<PathBuf>,
}

#[derive(Args)]
struct ClusterArgs {
    /// The kubeconfig file(s), like kubectl (default: ~/.kube/config, then in-cluster).
    #[arg(long, env = "KUBECONFIG")]
    kubeconfig: Option<String>,
    /// The kubeconfig context (default: its current context).
    #[arg(long, env = "NETCONFORM_CONTEXT")]
    context: Option<String>,
}

#[derive(Args)]
struct RunArgs {
    /// Run only checks whose name (`scenario::check`) contains this.
    filter: Option<String>,
    /// Skip checks whose name contains this (repeatable).
    #[arg(long)]
    skip: Vec<String>,
    /// Filters and --skip match whole names only.
    #[arg(long)]
    exact: bool,
    /// List the checks the filters select, without running them.
    #[arg(long)]
    list: bool,
    /// The configuration file: profile, unsupported features, implementation.
    #[arg(long, env = "NETCONFORM_CONFIG")]
    config: Option<PathBuf>,
    /// The profile to claim (overrides the configuration file's).
    #[arg(long, env = "NETCONFORM_PROFILE")]
    profile: Option<String>,
    /// Where junit.xml, results.json, conformance.json and report.html go.
    #[arg(long, env = "NETCONFORM_REPORT_DIR", default_value = "reports")]
    report_dir: PathBuf,
    /// Verdict lines at most this many at a time (libtest's --test-threads).
    #[arg(long)]
    test_threads: Option<usize>,
    #[command(flatten)]
    cluster: ClusterArgs,
    #[command(flatten)]
    scenarios: ScenarioArgs,
}

fn main() -> ExitCode {
    match Cli::parse().command {
        Command::Run(args) => run(args),
        Command::List { what, scenarios } => {
            scenarios.apply();
            list(what)
        }
        Command::Report { dir, output } => report(&dir, output),
        Command::Matrix { columns, output } => write_matrix(&columns, output),
        Command::Gc { dry_run, cluster } => {
            cluster.apply();
            gc(dry_run)
        }
    }
}

// The harness reads its settings from the environment (as under `cargo
// test`); flags are set there before any thread starts.
fn set(name: &str, value: impl AsRef<std::ffi::OsStr>) {
    std::env::set_var(name, value);
}

impl ClusterArgs {
    fn apply(&self) {
        if let Some(k) = &self.kubeconfig {
            set("KUBECONFIG", k);
        }
        if let Some(c) = &self.context {
            set("NETCONFORM_CONTEXT", c);
        }
    }
}

impl ScenarioArgs {
    fn apply(&self) {
        if let Some(s) = &self.scenarios {
            set("NETCONFORM_SCENARIOS", s);
        }
    }
}

fn run(args: RunArgs) -> ExitCode {
    args.cluster.apply();
    args.scenarios.apply();
    if let Some(c) = &args.config {
        set("NETCONFORM_CONFIG", c);
    }
    if let Some(p) = &args.profile {
        // Said before anything connects.
        if features::profile(p).is_none() {
            let known: Vec<&str> = PROFILES.iter().map(|p| p.name).collect();
            eprintln!(
                "netconform run: unknown profile `{p}` (known: {})",
                known.join(", ")
            );
            return ExitCode::FAILURE;
        }
        set("NETCONFORM_PROFILE", p);
    }
    set("NETCONFORM_REPORT_DIR", &args.report_dir);
    // A command asked to run on a cluster fails without one: said in one
    // line, before any trial is listed.
    set("NETCONFORM_REQUIRE_CLUSTER", "1");
    if !args.list {
        let runtime = tokio::runtime::Runtime::new().expect("tokio runtime");
        if let Err(e) = runtime.block_on(cluster::connect()) {
            eprintln!("netconform run: {e}");
            return ExitCode::FAILURE;
        }
    }
    let libtest = Arguments {
        filter: args.filter,
        skip: args.skip,
        exact: args.exact,
        list: args.list,
        test_threads: args.test_threads,
        ..Arguments::default()
    };
    netconform_suite::run(libtest)
}

fn list(what: What) -> ExitCode {
    let dir = netconform_suite::scenarios_dir();
    let scenarios = match load_dir(&dir) {
        Ok(s) => s,
        Err(errors) => {
            for e in errors {
                eprintln!("netconform: {e}");
            }
            return ExitCode::FAILURE;
        }
    };
    match what {
        What::Checks => {
            for s in &scenarios {
                for c in &s.scenario.checks {
                    println!(
                        "{}",
                        netconform_suite::trial_name(&s.scenario.name, &c.name)
                    );
                }
            }
        }
        What::Scenarios => {
            // The file before the features: names and paths line up, the
            // one column of varying width comes last.
            let files: Vec<String> = scenarios
                .iter()
                .map(|s| {
                    s.file
                        .strip_prefix(&dir)
                        .unwrap_or(&s.file)
                        .display()
                        .to_string()
                })
                .collect();
            let width = files.iter().map(String::len).max().unwrap_or(0);
            for (s, file) in scenarios.iter().zip(&files) {
                println!(
                    "{:<24} {:>3} checks  {file:<width$}  [{}]",
                    s.scenario.name,
                    s.scenario.checks.len(),
                    s.scenario.features.join(", "),
                );
            }
        }
        What::Features => {
            let mut checks: BTreeMap<String, usize> = BTreeMap::new();
            for s in &scenarios {
                for c in &s.scenario.checks {
                    for f in s.scenario.check_features(c) {
                        *checks.entry(f).or_default() += 1;
                    }
                }
            }
            for f in features::FEATURES {
                let profiles: Vec<&str> = PROFILES
                    .iter()
                    .filter(|p| p.features.contains(&f.name))
                    .map(|p| p.name)
                    .collect();
                println!(
                    "{:<22} {:>3} checks  profiles: {:<10} {}",
                    f.name,
                    checks.get(f.name).copied().unwrap_or(0),
                    if profiles.is_empty() {
                        "-".to_string()
                    } else {
                        profiles.join(",")
                    },
                    f.description
                );
            }
        }
        What::Profiles => {
            for p in PROFILES {
                println!("{:<6} {}", p.name, p.features.join(", "));
            }
        }
    }
    ExitCode::SUCCESS
}

fn read_json(path: &Path) -> Result<serde_json::Value, String> {
    let text = std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
    serde_json::from_str(&text).map_err(|e| format!("{}: {e}", path.display()))
}

fn report(dir: &Path, output: Option<PathBuf>) -> ExitCode {
    let rendered = read_json(&dir.join("results.json")).and_then(|results| {
        let conformance = read_json(&dir.join("conformance.json"))?;
        html::render(&results, &conformance).map_err(|e| e.to_string())
    });
    let page = match rendered {
        Ok(page) => page,
        Err(e) => {
            eprintln!("netconform report: {e}");
            return ExitCode::FAILURE;
        }
    };
    let output = output.unwrap_or_else(|| dir.join("report.html"));
    if let Err(e) = std::fs::write(&output, page) {
        eprintln!("netconform report: {}: {e}", output.display());
        return ExitCode::FAILURE;
    }
    println!("{}", output.display());
    ExitCode::SUCCESS
}

fn parse_column(arg: &str) -> Result<(String, PathBuf), String> {
    match arg.split_once('=') {
        Some((name, path)) if !name.is_empty() && !path.is_empty() => {
            Ok((name.to_string(), PathBuf::from(path)))
        }
        _ => Err(format!(
            "`{arg}` is not NAME=PATH (e.g. flannel=reports/flannel)"
        )),
    }
}

fn write_matrix(columns: &[(String, PathBuf)], output: Option<PathBuf>) -> ExitCode {
    let mut read = Vec::new();
    for (name, path) in columns {
        match matrix::read_column(name, path) {
            Ok(c) => read.push(c),
            Err(e) => {
                eprintln!("netconform matrix: {e}");
                return ExitCode::FAILURE;
            }
        }
    }
    let table = matrix::render(&read);
    match output {
        None => print!("{table}"),
        Some(path) => {
            if let Err(e) = std::fs::write(&path, table) {
                eprintln!("netconform matrix: {}: {e}", path.display());
                return ExitCode::FAILURE;
            }
        }
    }
    ExitCode::SUCCESS
}

fn gc(dry_run: bool) -> ExitCode {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("tokio runtime");
    runtime.block_on(async {
        let cluster = match cluster::connect().await {
            Ok(c) => c,
            Err(e) => {
                eprintln!("netconform gc: {e}");
                return ExitCode::FAILURE;
            }
        };
        let found = match liveness::collect_garbage(&cluster.client, dry_run, None).await {
            Ok(found) => found,
            Err(e) => {
                eprintln!("netconform gc: on {}: {e}", cluster.source);
                return ExitCode::FAILURE;
            }
        };
        if found.is_empty() {
            println!(
                "netconform gc: no netconform run left anything on {}",
                cluster.source
            );
        }
        for run in &found {
            let action = if !run.state.is_dead() {
                "kept".to_string()
            } else if dry_run {
                format!("would delete {} namespace(s)", run.namespaces.len())
            } else {
                format!(
                    "deleted {} namespace(s): {}",
                    run.deleted.len(),
                    run.deleted.join(", ")
                )
            };
            println!("run {}: {}; {action}", run.run, run.state);
        }
        ExitCode::SUCCESS
    })
}
