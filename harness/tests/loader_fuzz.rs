//! Fuzzes the scenario loader with mutations of the real scenario and world
//! files: whatever the input, loading must not panic or hang, and every error
//! must name its file, line and column.
//!
//! `cargo test` runs 3,000 inputs from a fixed seed; `bench/fuzz-scenarios`
//! runs 100k+ from a new one and records the figures. Knobs: `NETCONFORM_FUZZ_CASES` (inputs),
//! `NETCONFORM_FUZZ_SEED` (a u64, to replay a run; printed at the start).

use netconform_harness::scenario::{load_worlds, parse_with, parse_world, ScenarioError, Worlds};
use proptest::prelude::*;
use proptest::sample::Index;
use proptest::test_runner::{Config, RngAlgorithm, TestCaseError, TestRng, TestRunner};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

/// One edit of a document's text. Positions are indices into whatever the
/// text is by then, so a sequence of edits stays valid.
#[derive(Debug, Clone)]
enum Mutation {
    DeleteLine(Index),
    DuplicateLine(Index),
    SwapLines(Index, Index),
    Indent(Index, i8),
    ReplaceValue(Index, String),
    ReplaceKey(Index, String),
    Insert(Index, Index, String),
    DeleteChars(Index, usize),
    Truncate(Index),
}

/// Text that is special to YAML, to the scenario format, or to neither.
fn token() -> impl Strategy<Value = String> {
    let fixed = prop::sample::select(vec![
        "",
        "~",
        "null",
        "-1",
        "0",
        "1e400",
        "99999999999999999999",
        "1.5",
        "true",
        "[",
        "]",
        "{",
        "}",
        ":",
        "- ",
        "-",
        "&a",
        "*a",
        "!!binary",
        "!tag",
        "'",
        "\"",
        "#",
        "|",
        ">",
        "\t",
        "é",
        "\u{0}",
        "<<: *a",
        "? x",
        "tcp",
        "udp",
        "sctp",
        "icmp",
        "connected",
        "blocked",
        "web-a",
        "client",
        "nope",
        "vary",
        "{pod: nope}",
        "{pod: web-a}",
        "[a, b]",
        "[]",
        "{}",
        "*",
        "0.0.0.0/0",
        "::1",
        "65536",
        "9000",
        "node_port",
        "cluster_ip",
        "expect",
        "samples",
    ])
    .prop_map(str::to_string);
    prop_oneof![3 => fixed, 1 => "[a-z0-9:{}\\[\\],\\-_ .*&'\"]{0,12}"]
}

fn mutation() -> impl Strategy<Value = Mutation> {
    prop_oneof![
        any::<Index>().prop_map(Mutation::DeleteLine),
        any::<Index>().prop_map(Mutation::DuplicateLine),
        (any::<Index>(), any::<Index>()).prop_map(|(a, b)| Mutation::SwapLines(a, b)),
        (any::<Index>(), -4i8..=4).prop_map(|(l, d)| Mutation::Indent(l, d)),
        (any::<Index>(), token()).prop_map(|(l, t)| Mutation::ReplaceValue(l, t)),
        (any::<Index>(), token()).prop_map(|(l, t)| Mutation::ReplaceKey(l, t)),
        (any::<Index>(), any::<Index>(), token()).prop_map(|(l, c, t)| Mutation::Insert(l, c, t)),
        (any::<Index>(), 1usize..12).prop_map(|(at, n)| Mutation::DeleteChars(at, n)),
        any::<Index>().prop_map(Mutation::Truncate),
    ]
}

/// The char boundary at or before byte `at`.
fn floor_boundary(text: &str, mut at: usize) -> usize {
    at = at.min(text.len());
    while !text.is_char_boundary(at) {
        at -= 1;
    }
    at
}

fn apply(text: &str, mutation: &Mutation) -> String {
    let mut lines: Vec<String> = text.lines().map(str::to_string).collect();
    if lines.is_empty() {
        lines.push(String::new());
    }
    let n = lines.len();
    match mutation {
        Mutation::DeleteLine(l) => {
            lines.remove(l.index(n));
        }
        Mutation::DuplicateLine(l) => {
            let i = l.index(n);
            lines.insert(i, lines[i].clone());
        }
        Mutation::SwapLines(a, b) => lines.swap(a.index(n), b.index(n)),
        Mutation::Indent(l, delta) => {
            let line = &mut lines[l.index(n)];
            if *delta >= 0 {
                line.insert_str(0, &" ".repeat(*delta as usize));
            } else {
                let spaces = line.len() - line.trim_start_matches(' ').len();
                line.drain(..spaces.min(delta.unsigned_abs() as usize));
            }
        }
        Mutation::ReplaceValue(l, token) => {
            let line = &mut lines[l.index(n)];
            if let Some(colon) = line.find(": ") {
                line.truncate(colon + 2);
                line.push_str(token);
            }
        }
        Mutation::ReplaceKey(l, token) => {
            let line = &mut lines[l.index(n)];
            if let Some(colon) = line.find(':') {
                let start = line.len() - line.trim_start_matches([' ', '-']).len();
                if start <= colon {
                    line.replace_range(start..colon, token);
                }
            }
        }
        Mutation::Insert(l, c, token) => {
            let line = &mut lines[l.index(n)];
            let at = floor_boundary(line, c.index(line.len() + 1));
            line.insert_str(at, token);
        }
        Mutation::DeleteChars(at, len) => {
            let joined = lines.join("\n");
            let start = floor_boundary(&joined, at.index(joined.len() + 1));
            let end = floor_boundary(&joined, start + len);
            return format!("{}{}\n", &joined[..start], &joined[end..]);
        }
        Mutation::Truncate(at) => {
            let joined = lines.join("\n");
            let end = floor_boundary(&joined, at.index(joined.len() + 1));
            return joined[..end].to_string();
        }
    }
    lines.join("\n") + "\n"
}

struct Corpus {
    scenarios: Vec<(PathBuf, String)>,
    worlds_files: Vec<(PathBuf, String)>,
    worlds: Worlds,
}

fn corpus() -> Corpus {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../scenarios")
        .canonicalize()
        .expect("the scenarios directory exists");
    let mut scenarios = Vec::new();
    let mut worlds_files = Vec::new();
    let mut stack = vec![dir.clone()];
    while let Some(d) = stack.pop() {
        for entry in std::fs::read_dir(&d).expect("the scenarios directory is readable") {
            let path = entry.unwrap().path();
            if path.is_dir() {
                stack.push(path);
            } else if path.extension().is_some_and(|e| e == "yaml") {
                let text = std::fs::read_to_string(&path).unwrap();
                if path.parent().is_some_and(|p| p.ends_with("worlds")) {
                    worlds_files.push((path, text));
                } else {
                    scenarios.push((path, text));
                }
            }
        }
    }
    scenarios.sort();
    worlds_files.sort();
    assert!(
        scenarios.len() >= 20,
        "expected the real scenarios in {}",
        dir.display()
    );
    let worlds = load_worlds(&dir.join("worlds")).expect("the real worlds load");
    Corpus {
        scenarios,
        worlds_files,
        worlds,
    }
}

/// The promise every loader error keeps: it names the file, a line inside
/// the text and a column, and says what is wrong.
fn check_error(file: &Path, text: &str, e: &ScenarioError) -> Result<(), TestCaseError> {
    let (Some(line), Some(column)) = (e.line, e.column) else {
        return Err(TestCaseError::fail(format!("no line and column in: {e}")));
    };
    let lines = text.lines().count().max(1);
    prop_assert!(
        line >= 1 && line <= lines + 1,
        "line {line} outside the {lines}-line text: {e}"
    );
    prop_assert!(column >= 1, "column 0 in: {e}");
    let shown = e.to_string();
    let prefix = format!("{}:{line}:{column}", file.display());
    prop_assert!(
        shown.starts_with(&prefix),
        "`{shown}` does not start with `{prefix}`"
    );
    prop_assert!(!e.message.trim().is_empty(), "empty message: {shown}");
    Ok(())
}

/// Inputs slower than this are reported: a loader that takes a second over a
/// file of a few hundred lines has a blow-up worth knowing about.
const SLOW: Duration = Duration::from_secs(1);

const DEFAULT_SEED: u64 = 20_261_123;

#[test]
fn mutated_scenarios_never_panic_and_every_error_has_a_position() {
    let cases: u32 = std::env::var("NETCONFORM_FUZZ_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(3000);
    let seed: u64 = std::env::var("NETCONFORM_FUZZ_SEED")
        .ok()
        .and_then(|v| v.parse().ok())
        // `cargo test` replays the same inputs (a CI verdict should not
        // depend on the draw); bench/fuzz-scenarios draws new ones.
        .unwrap_or(DEFAULT_SEED);
    println!("fuzz: {cases} inputs, NETCONFORM_FUZZ_SEED={seed}");
    let corpus = corpus();
    let mut seed_bytes = [0u8; 32];
    seed_bytes[..8].copy_from_slice(&seed.to_le_bytes());
    let config = Config {
        cases,
        failure_persistence: None,
        ..Config::default()
    };
    let mut runner = TestRunner::new_with_rng(
        config,
        TestRng::from_seed(RngAlgorithm::ChaCha, &seed_bytes),
    );

    let files = corpus.scenarios.len() + corpus.worlds_files.len();
    let (accepted, rejected, errors) = (
        AtomicUsize::new(0),
        AtomicUsize::new(0),
        AtomicUsize::new(0),
    );
    let started = Instant::now();
    let strategy = (0..files, prop::collection::vec(mutation(), 1..5));
    let result = runner.run(&strategy, |(which, mutations)| {
        let (file, original, is_world) = match corpus.scenarios.get(which) {
            Some((f, t)) => (f, t, false),
            None => {
                let (f, t) = &corpus.worlds_files[which - corpus.scenarios.len()];
                (f, t, true)
            }
        };
        let text = mutations.iter().fold(original.clone(), |t, m| apply(&t, m));
        let began = Instant::now();
        let outcome = if is_world {
            parse_world(file, &text).map(drop).map_err(|e| vec![e])
        } else {
            parse_with(file, &text, &corpus.worlds).map(drop)
        };
        prop_assert!(began.elapsed() < SLOW, "took {:?}", began.elapsed());
        match outcome {
            Ok(()) => {
                accepted.fetch_add(1, Ordering::Relaxed);
            }
            Err(list) => {
                prop_assert!(!list.is_empty(), "rejected without an error");
                rejected.fetch_add(1, Ordering::Relaxed);
                errors.fetch_add(list.len(), Ordering::Relaxed);
                for e in &list {
                    check_error(file, &text, e)?;
                }
            }
        }
        Ok(())
    });
    let elapsed = started.elapsed();
    if let Err(e) = result {
        panic!("{e} (replay with NETCONFORM_FUZZ_SEED={seed})");
    }
    // One line for bench/fuzz-scenarios to record.
    println!(
        "fuzz result: inputs={} accepted={} rejected={} errors={} panics=0 seconds={:.1} seed={seed}",
        cases,
        accepted.load(Ordering::Relaxed),
        rejected.load(Ordering::Relaxed),
        errors.load(Ordering::Relaxed),
        elapsed.as_secs_f64()
    );
}
