//! Reading and validating scenario files. Every error names the file, the line
//! and column, and the field (as a path like `checks[2].protocol`).

use super::expand::{expand_vary, has_vary, Origin};
use super::model::*;
use super::validate::validate;
use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScenarioError {
    pub file: PathBuf,
    pub line: Option<usize>,
    pub column: Option<usize>,
    /// Field path, e.g. `checks[0].from`; empty for the whole document.
    pub field: String,
    pub message: String,
}

impl fmt::Display for ScenarioError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.file.display())?;
        if let Some(line) = self.line {
            write!(f, ":{line}")?;
            if let Some(col) = self.column {
                write!(f, ":{col}")?;
            }
        }
        if !self.field.is_empty() {
            write!(f, ": field `{}`", self.field)?;
        }
        write!(f, ": {}", self.message)
    }
}

impl std::error::Error for ScenarioError {}

/// A scenario with the file it came from.
#[derive(Debug, Clone)]
pub struct LoadedScenario {
    pub file: PathBuf,
    pub scenario: Scenario,
}

/// The directory below the scenario directory that holds shared fixture sets.
pub const WORLDS_DIR: &str = "worlds";

/// Shared fixture sets by name.
pub type Worlds = BTreeMap<String, WorldFile>;

/// Loads every `*.yaml`/`*.yml` below `dir` (sorted by path), the shared
/// fixture sets of `dir/worlds/` first. Returns all the scenarios, or every
/// error found in any of them.
pub fn load_dir(dir: &Path) -> Result<Vec<LoadedScenario>, Vec<ScenarioError>> {
    let mut errors = Vec::new();
    let worlds = collect_worlds(&dir.join(WORLDS_DIR), &mut errors);
    let mut files = Vec::new();
    if let Err(e) = collect_yaml(dir, &mut files) {
        return Err(vec![ScenarioError {
            file: dir.to_path_buf(),
            line: None,
            column: None,
            field: String::new(),
            message: format!("cannot read the scenario directory: {e}"),
        }]);
    }
    files.sort();
    let mut loaded = Vec::new();
    for file in files {
        match std::fs::read_to_string(&file) {
            Ok(text) => match parse_with(&file, &text, &worlds) {
                Ok(scenario) => loaded.push(LoadedScenario { file, scenario }),
                Err(mut e) => errors.append(&mut e),
            },
            Err(e) => errors.push(ScenarioError {
                file,
                line: None,
                column: None,
                field: String::new(),
                message: format!("cannot read: {e}"),
            }),
        }
    }
    // A scenario is found by its name: the file is called after it.
    for s in &loaded {
        let stem = s
            .file
            .file_stem()
            .and_then(|n| n.to_str())
            .unwrap_or_default();
        if stem != s.scenario.name {
            errors.push(name_error(
                s,
                format!(
                    "scenario `{}` must be in a file named `{}.yaml`",
                    s.scenario.name, s.scenario.name
                ),
            ));
        }
    }
    // Scenario names become namespace and trial names: they must be unique.
    let mut seen: BTreeMap<String, PathBuf> = BTreeMap::new();
    for s in &loaded {
        if let Some(first) = seen.insert(s.scenario.name.clone(), s.file.clone()) {
            errors.push(name_error(
                s,
                format!(
                    "scenario name `{}` is already used by {}",
                    s.scenario.name,
                    first.display()
                ),
            ));
        }
    }
    if errors.is_empty() {
        Ok(loaded)
    } else {
        Err(errors)
    }
}

/// An error about a loaded scenario's `name`, at the line that sets it.
fn name_error(s: &LoadedScenario, message: String) -> ScenarioError {
    let text = std::fs::read_to_string(&s.file).unwrap_or_default();
    let (line, column) = locate(&text, "name", "name", &s.scenario.name);
    ScenarioError {
        file: s.file.clone(),
        line: Some(line),
        column: Some(column),
        field: "name".into(),
        message,
    }
}

/// Reads `dir/*.yaml` as shared fixture sets (none if there is no such dir),
/// for callers that parse scenario files one by one with [`parse_with`].
pub fn load_worlds(dir: &Path) -> Result<Worlds, Vec<ScenarioError>> {
    let mut errors = Vec::new();
    let worlds = collect_worlds(dir, &mut errors);
    if errors.is_empty() {
        Ok(worlds)
    } else {
        Err(errors)
    }
}

/// Parses one shared fixture set (a file of `worlds/`).
pub fn parse_world(file: &Path, text: &str) -> Result<WorldFile, ScenarioError> {
    deserialize(file, text)
}

fn collect_worlds(dir: &Path, errors: &mut Vec<ScenarioError>) -> Worlds {
    let mut worlds = Worlds::new();
    let mut files = Vec::new();
    if dir.is_dir() {
        if let Err(e) = collect_yaml(dir, &mut files) {
            errors.push(whole_file(
                dir,
                format!("cannot read the worlds directory: {e}"),
            ));
        }
    }
    files.sort();
    for file in files {
        let text = match std::fs::read_to_string(&file) {
            Ok(t) => t,
            Err(e) => {
                errors.push(whole_file(&file, format!("cannot read: {e}")));
                continue;
            }
        };
        match parse_world(&file, &text) {
            Ok(w) => {
                let stem = file
                    .file_stem()
                    .and_then(|n| n.to_str())
                    .unwrap_or_default();
                if stem != w.name {
                    let (line, column) = locate(&text, "name", "name", &w.name);
                    errors.push(ScenarioError {
                        file: file.clone(),
                        line: Some(line),
                        column: Some(column),
                        field: "name".into(),
                        message: format!(
                            "world `{}` must be in a file named `{}.yaml`",
                            w.name, w.name
                        ),
                    });
                }
                worlds.insert(w.name.clone(), w);
            }
            Err(e) => errors.push(e),
        }
    }
    worlds
}

fn whole_file(file: &Path, message: String) -> ScenarioError {
    ScenarioError {
        file: file.to_path_buf(),
        line: None,
        column: None,
        field: String::new(),
        message,
    }
}

fn collect_yaml(dir: &Path, out: &mut Vec<PathBuf>) -> std::io::Result<()> {
    for entry in std::fs::read_dir(dir)? {
        let path = entry?.path();
        if path.is_dir() && path.file_name().is_some_and(|n| n == WORLDS_DIR) {
            continue;
        }
        if path.is_dir() {
            collect_yaml(&path, out)?;
        } else if matches!(
            path.extension().and_then(|e| e.to_str()),
            Some("yaml" | "yml")
        ) {
            out.push(path);
        }
    }
    Ok(())
}

/// Parses and validates one scenario document that uses no shared world.
pub fn parse(file: &Path, text: &str) -> Result<Scenario, Vec<ScenarioError>> {
    parse_with(file, text, &Worlds::new())
}

/// Parses one document of type `T`; an error names the line, column and field.
fn deserialize<T: serde::de::DeserializeOwned>(
    file: &Path,
    text: &str,
) -> Result<T, ScenarioError> {
    let deserializer = serde_yaml::Deserializer::from_str(text);
    serde_path_to_error::deserialize(deserializer).map_err(|e| {
        let raw_path = e.path().to_string();
        let path = document_path(raw_path.clone());
        let inner = e.into_inner();
        // serde_yaml has no position for some errors (a missing field of the
        // top-level mapping, a document that is only a comment): the field
        // the path names, else the document's start.
        let (line, column) = match inner.location() {
            Some(l) => (l.line(), l.column()),
            None => path_position(text, &path).unwrap_or((1, 1)),
        };
        ScenarioError {
            file: file.to_path_buf(),
            line: Some(line),
            column: Some(column),
            message: strip_location(&inner.to_string(), &raw_path),
            field: path,
        }
    })
}

/// Parses one scenario document, puts its world's fixtures first, and
/// validates the result.
pub fn parse_with(
    file: &Path,
    text: &str,
    worlds: &Worlds,
) -> Result<Scenario, Vec<ScenarioError>> {
    let (mut scenario, origins) = deserialize_scenario(file, text).map_err(|e| vec![e])?;
    if let Some(name) = &scenario.world {
        let Some(world) = worlds.get(name) else {
            let (line, column) = locate(text, "world", "world", name);
            return Err(vec![ScenarioError {
                file: file.to_path_buf(),
                line: Some(line),
                column: Some(column),
                field: "world".into(),
                message: format!(
                    "no world `{name}` in {WORLDS_DIR}/ (known: {})",
                    if worlds.is_empty() {
                        "none".to_string()
                    } else {
                        worlds.keys().cloned().collect::<Vec<_>>().join(", ")
                    }
                ),
            }]);
        };
        scenario.fixtures = std::mem::take(&mut scenario.fixtures).after(&world.fixtures);
        scenario.world_fixtures = Some(world.fixtures.clone());
    }
    // A world's fixtures come first in the merged scenario, so a fixture's
    // index is not its index in this file: only then is the line searched by
    // key and value instead of walked to.
    let walkable = scenario.world_fixtures.is_none();
    let errors = validate(&scenario)
        .into_iter()
        .map(|(field, key, value, message)| {
            let (field, note) = remap(&field, &origins);
            let (line, column) = walkable
                .then(|| path_position(text, &field))
                .flatten()
                .or_else(|| find_key(text, key, &value))
                .unwrap_or((1, 1));
            ScenarioError {
                file: file.to_path_buf(),
                line: Some(line),
                column: Some(column),
                field,
                message: message + &note,
            }
        })
        .collect::<Vec<_>>();
    if errors.is_empty() {
        scenario.expand_families();
        Ok(scenario)
    } else {
        Err(errors)
    }
}

/// Types a scenario document, expanding `vary` first if a check uses it. A
/// file without `vary` is typed from its text (errors have exact positions);
/// one with it from the expanded document, and an error then names the check
/// in the file, its line, and the combination it was in.
fn deserialize_scenario(file: &Path, text: &str) -> Result<(Scenario, Vec<Origin>), ScenarioError> {
    // Broken YAML, or no `vary`: typed from the text, with its exact positions.
    let original = match serde_yaml::from_str::<serde_yaml::Value>(text) {
        Ok(doc) if has_vary(&doc) => doc,
        _ => return Ok((deserialize(file, text)?, vec![])),
    };
    // The expanded document has no positions: the field's place in the file
    // (paths are remapped to the file's checks), else its check's name.
    let position = |field: &str| {
        path_position(text, field)
            .or_else(|| {
                let index = check_index(field)?;
                let name = original["checks"][index]["name"].as_str()?;
                find_key(text, "name", name)
            })
            .unwrap_or((1, 1))
    };
    let mut doc = original.clone();
    let origins = expand_vary(&mut doc).map_err(|e| {
        let (line, column) = position(&e.field);
        ScenarioError {
            file: file.to_path_buf(),
            line: Some(line),
            column: Some(column),
            field: e.field,
            message: e.message,
        }
    })?;
    let scenario = serde_path_to_error::deserialize(doc).map_err(|e| {
        let raw_path = e.path().to_string();
        let (field, note) = remap(&document_path(raw_path.clone()), &origins);
        let (line, column) = position(&field);
        ScenarioError {
            file: file.to_path_buf(),
            line: Some(line),
            column: Some(column),
            message: strip_location(&e.into_inner().to_string(), &raw_path) + &note,
            field,
        }
    })?;
    Ok((scenario, origins))
}

/// serde_path_to_error's path for the whole document ("." or, when the YAML
/// is broken before any field, "?") as the empty field path.
fn document_path(path: String) -> String {
    if path == "." || path == "?" {
        String::new()
    } else {
        path
    }
}

/// Where an error found after parsing points: its field's place in the file,
/// else the first `key: value` line, else the document's start. Parsed values
/// keep no positions, so this is recovered from the text.
fn locate(text: &str, field: &str, key: &str, value: &str) -> (usize, usize) {
    path_position(text, field)
        .or_else(|| find_key(text, key, value))
        .unwrap_or((1, 1))
}

/// The check index a field path starts with (`checks[3].port` -> 3).
fn check_index(field: &str) -> Option<usize> {
    field
        .strip_prefix("checks[")?
        .split(']')
        .next()?
        .parse()
        .ok()
}

/// A field path of the expanded document as a path in the file, with a note
/// naming the `vary` combination it belongs to.
fn remap(field: &str, origins: &[Origin]) -> (String, String) {
    let Some(origin) = check_index(field).and_then(|i| origins.get(i)) else {
        return (field.to_string(), String::new());
    };
    let rest = field.split_once(']').map_or("", |(_, rest)| rest);
    let note = if origin.combination.is_empty() {
        String::new()
    } else {
        format!(" (with {} from its `vary`)", origin.combination)
    };
    (format!("checks[{}]{rest}", origin.index), note)
}

/// serde_yaml puts the field path before its messages and " at line L column C"
/// after them; the error says both already.
fn strip_location(message: &str, path: &str) -> String {
    let message = match message.split_once(": ") {
        Some((head, rest)) if path.starts_with(head) => rest,
        _ => message,
    };
    match message.rfind(" at line ") {
        Some(i) => message[..i].to_string(),
        None => message.to_string(),
    }
}

/// A line of block-style YAML as the path walk sees it: `- key: v` is an item
/// marker at the dash's indent and `key: v` at the key's.
struct YamlLine<'a> {
    line: usize,
    indent: usize,
    text: &'a str,
    item: bool,
}

fn yaml_lines(text: &str) -> Vec<YamlLine<'_>> {
    let mut out = Vec::new();
    for (n, raw) in text.lines().enumerate() {
        let mut rest = raw.trim_start();
        let mut indent = raw.len() - rest.len();
        if rest.is_empty() || rest.starts_with('#') {
            continue;
        }
        while rest == "-" || rest.starts_with("- ") {
            out.push(YamlLine {
                line: n + 1,
                indent,
                text: "-",
                item: true,
            });
            let after = rest[1..].trim_start();
            indent += rest.len() - after.len();
            rest = after;
        }
        if !rest.is_empty() {
            out.push(YamlLine {
                line: n + 1,
                indent,
                text: rest,
                item: false,
            });
        }
    }
    out
}

/// Line and column (1-based) of a field path such as
/// `fixtures.services[3].selector` in block-style YAML: each key is looked up
/// in the block of the one before, each `[i]` is the i-th `- ` item there. A
/// part the file does not spell (a default, or inside a flow mapping `{...}`)
/// ends the walk at the last part found.
fn path_position(text: &str, path: &str) -> Option<(usize, usize)> {
    let lines = yaml_lines(text);
    let (mut lo, mut hi) = (0, lines.len());
    let mut found = None;
    'walk: for part in path.split('.') {
        let (key, indices) = part.split_once('[').unwrap_or((part, ""));
        let mut steps: Vec<Result<usize, &str>> = vec![];
        if !key.is_empty() {
            steps.push(Err(key));
        }
        for index in indices.split('[').filter(|s| !s.is_empty()) {
            match index.trim_end_matches(']').parse() {
                Ok(i) => steps.push(Ok(i)),
                Err(_) => break 'walk,
            }
        }
        for step in steps {
            let Some(block_indent) = lines[lo..hi].first().map(|l| l.indent) else {
                break 'walk;
            };
            let at = match step {
                Err(key) => lines[lo..hi].iter().position(|l| {
                    !l.item
                        && l.indent == block_indent
                        && l.text.strip_prefix(key).is_some_and(|r| r.starts_with(':'))
                }),
                Ok(i) => lines[lo..hi]
                    .iter()
                    .enumerate()
                    .filter(|(_, l)| l.item && l.indent == block_indent)
                    .nth(i)
                    .map(|(at, _)| at),
            };
            let Some(at) = at.map(|at| lo + at) else {
                break 'walk;
            };
            found = Some((lines[at].line, lines[at].indent + 1));
            // The block of a key holds deeper lines and a sequence written at
            // the key's own indent; an item's block, deeper lines only.
            let is_key = step.is_err();
            let end = lines[at + 1..hi]
                .iter()
                .position(|l| {
                    l.indent < block_indent || (l.indent == block_indent && !(is_key && l.item))
                })
                .map_or(hi, |p| at + 1 + p);
            (lo, hi) = (at + 1, end);
        }
    }
    found
}

/// Line and column (1-based) of the first `key: value` in the text, for
/// errors found after parsing (serde_yaml keeps no positions in the parsed
/// document).
fn find_key(text: &str, key: &str, value: &str) -> Option<(usize, usize)> {
    let pattern = format!("{key}:");
    text.lines().enumerate().find_map(|(n, line)| {
        line.match_indices(&pattern)
            .find(|&(i, _)| {
                let boundary = line[..i]
                    .chars()
                    .next_back()
                    .is_none_or(|c| matches!(c, ' ' | '{' | ',' | '-'));
                boundary && line[i + pattern.len()..].contains(value)
            })
            .map(|(i, _)| (n + 1, line[..i].chars().count() + 1))
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use rstest::rstest;

    const VALID: &str = "\
name: demo
features: [core]
fixtures:
  pods:
    - name: server
      labels: {app: server}
    - name: client
      placement: {other_node_than: server}
checks:
  - name: tcp
    from: client
    to: {pod: server}
    protocol: tcp
    expect: connected
    assert: {source_ip: client_pod_ip}
    samples: 20
";

    fn errors(text: &str) -> Vec<String> {
        parse(Path::new("s.yaml"), text)
            .unwrap_err()
            .iter()
            .map(|e| e.to_string())
            .collect()
    }

    #[test]
    fn each_family_is_a_check_and_ipv6_keeps_the_name_apart_and_needs_its_feature() {
        let s = parse(
            Path::new("s.yaml"),
            &VALID.replace("checks:\n", "families: [ipv4, ipv6]\nchecks:\n"),
        )
        .unwrap();
        let checks: Vec<(&str, IpFamily, &[String])> = s
            .checks
            .iter()
            .map(|c| (c.name.as_str(), c.family, c.features.as_slice()))
            .collect();
        assert_eq!(
            checks,
            [
                ("tcp", IpFamily::Ipv4, &[][..]),
                ("tcp::ipv6", IpFamily::Ipv6, &["ipv6".to_string()][..])
            ]
        );
        // A check's own list wins over the scenario's.
        let s = parse(
            Path::new("s.yaml"),
            &VALID
                .replace("checks:\n", "families: [ipv4, ipv6]\nchecks:\n")
                .replace("    samples: 20", "    samples: 20\n    families: [ipv4]"),
        )
        .unwrap();
        assert_eq!(s.checks.len(), 1);
    }

    #[rstest]
    #[case::twice(
        VALID.replace("checks:\n", "families: [ipv6, ipv6]\nchecks:\n"),
        "s.yaml:9:1: field `families`: `ipv6` is listed twice")]
    #[case::api_server_in_ipv6(
        VALID.replace("    to: {pod: server}\n    protocol: tcp", "    to: {api_server: true}\n    protocol: https\n    families: [ipv4, ipv6]").replace("    assert: {source_ip: client_pod_ip}\n", ""),
        "field `checks[0].families`: the kubernetes Service has one address, IPv4: give this check `families: [ipv4]`")]
    fn a_family_that_cannot_be_checked_is_named(#[case] text: String, #[case] want: &str) {
        let e = errors(&text);
        assert!(e.iter().any(|e| e.contains(want)), "{e:?}");
    }

    /// VALID's check as a PTR lookup of `to`, expecting `answers`.
    fn ptr_check(to: &str, answers: &str) -> String {
        VALID
            .replace(
                "    to: {pod: server}\n    protocol: tcp",
                &format!("    to: {to}\n    protocol: dns\n    record: PTR"),
            )
            .replace("{source_ip: client_pod_ip}", answers)
    }

    #[rstest]
    #[case::names_without_ptr(
        VALID.replace("    to: {pod: server}\n    protocol: tcp", "    to: {name: server}\n    protocol: dns")
            .replace("{source_ip: client_pod_ip}", "{answers: {names: [a.b.]}}"),
        "field `checks[0].assert.answers`: `names` are what a PTR lookup answers: give `record: PTR`")]
    #[case::ptr_without_names(
        ptr_check("{pod: server}", "{answers: {pod_ip_of: server}}"),
        "field `checks[0].assert.answers`: a PTR lookup answers names: give `names`"
    )]
    #[case::ptr_of_a_name(
        ptr_check("{name: server}", "{answers: {names: [a.b.]}}"),
        "field `checks[0].to`: a PTR check looks up one address"
    )]
    #[case::ptr_of_every_pod(
        ptr_check("{pod: \"*\"}", "{answers: {names: [a.b.]}}"),
        "field `checks[0].to`: a PTR check looks up one address"
    )]
    fn a_ptr_check_is_one_address_and_its_names(#[case] text: String, #[case] want: &str) {
        let e = errors(&text);
        assert!(e.iter().any(|e| e.contains(want)), "{e:?}");
    }

    #[test]
    fn a_require_dual_stack_service_needs_a_scenario_that_single_stack_clusters_skip() {
        let text = VALID.replace(
            "checks:\n",
            "  services:\n    - name: dual\n      selector: {app: server}\n      require_dual_stack: true\n      ports: [{port: 80}]\nchecks:\n",
        );
        let e = errors(&text);
        assert!(
            e.iter().any(|e| e.contains("field `fixtures.services[0].require_dual_stack`: a single-stack cluster refuses this Service")),
            "{e:?}"
        );
        parse(
            Path::new("s.yaml"),
            &text.replace("features: [core]", "features: [core, ipv6]"),
        )
        .unwrap();
    }

    #[test]
    fn a_ptr_check_of_one_pod_parses() {
        parse(
            Path::new("s.yaml"),
            &ptr_check("{pod: server}", "{answers: {names: [a.b.]}}"),
        )
        .unwrap();
    }

    #[test]
    fn a_valid_scenario_parses_with_defaults() {
        let s = parse(Path::new("s.yaml"), VALID).unwrap();
        assert_eq!(s.name, "demo");
        assert_eq!(
            s.fixtures.pods[1].placement,
            Placement::other_node_than("server")
        );
        assert_eq!(s.checks[0].samples, 20);
        assert_eq!(s.checks[0].timeout_ms, DEFAULT_TIMEOUT_MS);
        assert_eq!(s.checks[0].assert.source_ip, Some(SourceIp::ClientPodIp));
    }

    #[rstest]
    #[case::unknown_field(
        VALID.replace("    samples: 20", "    sampels: 20"),
        "s.yaml:16:5: field `checks[0].sampels`: unknown field `sampels`, expected one of")]
    #[case::bad_enum(
        VALID.replace("protocol: tcp", "protocol: tcpp"),
        "s.yaml:13:15: field `checks[0].protocol`: unknown variant `tcpp`, expected one of `tcp`, `udp`, `http`")]
    #[case::wrong_type(
        VALID.replace("samples: 20", "samples: many"),
        "s.yaml:16:14: field `checks[0].samples`: invalid type: string \"many\", expected u32")]
    #[case::missing_field(
        VALID.replace("    protocol: tcp\n", ""),
        "field `checks[0]`: missing field `protocol`")]
    #[case::unknown_pod(
        VALID.replace("from: client", "from: clinet"),
        "s.yaml:11:5: field `checks[0].from`: unknown pod `clinet` (pods: client, server)")]
    #[case::unknown_placement(
        VALID.replace("other_node_than: server", "other_node_than: nobody"),
        "s.yaml:8:7: field `fixtures.pods[1].placement`: unknown pod `nobody` (pods: client, server)")]
    #[case::bad_name(
        VALID.replace("name: demo", "name: Demo_1"),
        "s.yaml:1:1: field `name`: must be lower-case letters, digits and '-', at most 30 characters")]
    #[case::too_many_samples(
        VALID.replace("samples: 20", "samples: 5000"),
        "s.yaml:16:5: field `checks[0].samples`: must be between 1 and 1000")]
    #[case::source_ip_needs_connected(
        VALID.replace("expect: connected", "expect: blocked"),
        "s.yaml:15:5: field `checks[0].assert.source_ip`: a source address can only be asserted when the check expects `connected`")]
    #[case::label_names_an_unknown_pod(
        VALID.replace("    samples: 20", "    samples: 20\n    before: [{label: {pod: clinet, labels: {a: b}}}]"),
        "field `checks[0].before[0].label.pod`: unknown pod `clinet` (pods: client, server)")]
    #[case::label_names_pod_and_namespace(
        VALID.replace("    samples: 20", "    samples: 20\n    before: [{label: {pod: client, namespace: main, labels: {a: b}}}]"),
        "field `checks[0].before[0].label`: `label` names exactly one of `pod`, `namespace`")]
    #[case::update_of_an_unknown_policy(
        VALID.replace("    samples: 20", "    samples: 20\n    before: [{update_policy: {name: nope, spec: {}}}]"),
        "field `checks[0].before[0].update_policy.name`: unknown policy `nope`")]
    #[case::slices_and_a_selector(
        VALID.replace("checks:", "  services:\n    - {name: s, selector: {app: server}, endpoint_slices: [{pod: server}], ports: [{port: 80}]}\nchecks:"),
        "field `fixtures.services[0].selector`: give one of selector, synthetic_endpoints, endpoint_slices")]
    #[case::slice_of_an_unknown_pod(
        VALID.replace("checks:", "  services:\n    - {name: s, endpoint_slices: [{pod: nobody}], ports: [{port: 80}]}\nchecks:"),
        "field `fixtures.services[0].endpoint_slices[0].pod`: `nobody` is not a fixture pod in the Service's namespace with its own network")]
    #[case::host_ip_without_host_ports(
        VALID.replace("  pods:\n", "  pods:\n    - {name: hp, host_ip: loopback}\n"),
        "field `fixtures.pods[0].host_ip`: `host_ip` binds the hostPorts of a pod with `host_ports: true` and its own network")]
    #[case::slice_port_unknown(
        VALID.replace("checks:", "  services:\n    - {name: s, endpoint_slices: [{pod: server, ports: [web]}], ports: [{name: http, port: 80}]}\nchecks:"),
        "field `fixtures.services[0].endpoint_slices[0].ports[0]`: the Service has no port named `web`")]
    #[case::update_of_an_unknown_service(
        VALID.replace("    samples: 20", "    samples: 20\n    before: [{update_service: {name: nope, selector: {app: server}, ports: [{port: 80}]}}]"),
        "field `checks[0].before[0].update_service.name`: unknown service `nope`")]
    #[case::update_validated_like_a_service(
        VALID.replace("checks:", "  services:\n    - {name: s, selector: {app: server}, ports: [{port: 80}]}\nchecks:")
            .replace("    samples: 20", "    samples: 20\n    before: [{update_service: {name: s, type: external_name}}]"),
        "field `checks[0].before[0].update_service.external_name`: an external_name Service needs `external_name`")]
    #[case::not_yaml(
        "name: [unclosed".to_string(),
        "s.yaml:1:7")]
    fn invalid_files_name_file_line_and_field(#[case] text: String, #[case] want: &str) {
        let errs = errors(&text);
        assert!(
            errs.iter().any(|e| e.contains(want)),
            "want `{want}` in {errs:#?}"
        );
    }

    /// Checks with actions run after the others, in file order: each sees the
    /// Services as the updates before it left them.
    #[rstest]
    #[case::without_an_update("", Some("service `s` is not of type node_port"))]
    #[case::after_its_update(
        ", before: [{update_service: {name: s, type: node_port, selector: {app: server}, ports: [{port: 80}]}}]",
        None
    )]
    fn a_check_sees_services_as_updated_by_then(#[case] extra: &str, #[case] want: Option<&str>) {
        let text = format!(
            "name: demo\nfeatures: [core]\nfixtures:\n  pods:\n    - {{name: server, labels: {{app: server}}}}\n    - name: client\n  services:\n    - {{name: s, selector: {{app: server}}, ports: [{{port: 80}}]}}\nchecks:\n  - {{name: np, from: client, to: {{node_port: s}}, protocol: tcp{extra}}}\n"
        );
        let errs: Vec<String> = parse(Path::new("s.yaml"), &text)
            .err()
            .unwrap_or_default()
            .iter()
            .map(|e| e.to_string())
            .collect();
        match want {
            None => assert!(errs.is_empty(), "{errs:#?}"),
            Some(want) => assert!(
                errs.iter().any(|e| e.contains(want)),
                "want `{want}` in {errs:#?}"
            ),
        }
    }

    #[rstest]
    #[case::key_in_the_nth_item("fixtures.services[1].ports", (8, 7))]
    #[case::missing_key_stops_at_its_item("fixtures.services[1].selector", (6, 5))]
    #[case::first_key_on_the_item_line("fixtures.services[1].name", (6, 7))]
    #[case::sequence_at_its_key_indent("checks[1].to", (13, 3))]
    #[case::inside_a_flow_mapping("checks[0].to.pod", (11, 3))]
    #[case::nested_index("fixtures.services[0].ports[0]", (5, 9))]
    fn a_field_path_is_walked_to_its_line_and_column(
        #[case] path: &str,
        #[case] want: (usize, usize),
    ) {
        let text = "\
fixtures:
  services:
    - name: web
      ports:
        - {port: 80}
    - name: many   # no selector
      type: headless
      ports: []
checks:
- name: a
  to: {pod: x}
- name: b
  to: {pod: y}
";
        assert_eq!(path_position(text, path), Some(want), "{path}");
    }

    #[test]
    fn duplicate_scenario_names_across_files_are_rejected() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("demo.yaml"), VALID).unwrap();
        std::fs::create_dir(dir.path().join("more")).unwrap();
        std::fs::write(dir.path().join("more/demo.yml"), VALID).unwrap();
        let errs = load_dir(dir.path()).unwrap_err();
        assert_eq!(errs.len(), 1);
        assert!(
            errs[0]
                .to_string()
                .contains("scenario name `demo` is already used by"),
            "{}",
            errs[0]
        );
    }

    #[test]
    fn every_error_in_every_file_is_reported() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join("demo.yaml"),
            VALID.replace("from: client", "from: x"),
        )
        .unwrap();
        std::fs::write(
            dir.path().join("other.yaml"),
            VALID
                .replace("name: demo", "name: other")
                .replace("protocol: tcp", "protocol: x"),
        )
        .unwrap();
        let errs = load_dir(dir.path()).unwrap_err();
        assert_eq!(errs.len(), 2, "{errs:#?}");
    }

    #[test]
    fn a_world_puts_its_fixtures_first_and_an_unknown_one_is_named() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join(WORLDS_DIR)).unwrap();
        std::fs::write(
            dir.path().join("worlds/two-pods.yaml"),
            "name: two-pods\nfixtures:\n  pods:\n    - name: server\n      labels: {app: server}\n    - name: client\n",
        )
        .unwrap();
        let own = "name: demo\nworld: two-pods\nfixtures:\n  pods:\n    - name: extra\nchecks:\n  - {name: tcp, from: client, to: {pod: server}, protocol: tcp}\n";
        std::fs::write(dir.path().join("demo.yaml"), own).unwrap();
        let loaded = load_dir(dir.path()).unwrap();
        assert_eq!(loaded.len(), 1, "the world is not a scenario");
        let pods: Vec<&str> = loaded[0]
            .scenario
            .fixtures
            .pods
            .iter()
            .map(|p| p.name.as_str())
            .collect();
        assert_eq!(pods, ["server", "client", "extra"]);

        std::fs::write(
            dir.path().join("demo.yaml"),
            own.replace("world: two-pods", "world: three-pods"),
        )
        .unwrap();
        let errs = load_dir(dir.path()).unwrap_err();
        assert!(
            errs[0].to_string().ends_with(
                "demo.yaml:2:1: field `world`: no world `three-pods` in worlds/ (known: two-pods)"
            ),
            "{}",
            errs[0]
        );
    }

    #[rstest::rstest]
    #[case::adds_a_pod("fixtures:\n  pods:\n    - name: extra\n", "", None)]
    #[case::adds_nothing("", "", Some("two-pods"))]
    #[case::adds_a_policy(POLICY, ", converge_ms: 5000", Some("two-pods"))]
    #[case::deletes_its_policy(POLICY, ", before: [{delete_policy: deny}]", Some("two-pods"))]
    #[case::replaces_a_pod(POLICY, ", before: [{replace_pods: server}]", None)]
    #[case::relabels_a_pod(
        POLICY,
        ", before: [{label: {pod: server, labels: {app: x}}}]",
        Some("two-pods")
    )]
    #[case::updates_its_policy(
        POLICY,
        ", before: [{update_policy: {name: deny, spec: {podSelector: {}}}}]",
        Some("two-pods")
    )]
    fn only_scenarios_that_add_policies_share_their_world(
        #[case] fixtures: &str,
        #[case] check_extra: &str,
        #[case] shared: Option<&str>,
    ) {
        let worlds = Worlds::from([(
            "two-pods".to_string(),
            serde_yaml::from_str(
                "name: two-pods\nfixtures:\n  pods:\n    - name: server\n      labels: {app: server}\n    - name: client\n",
            )
            .unwrap(),
        )]);
        let text = format!(
            "name: demo\nworld: two-pods\n{fixtures}checks:\n  - {{name: tcp, from: client, to: {{pod: server}}, protocol: tcp{check_extra}}}\n"
        );
        let scenario = parse_with(Path::new("demo.yaml"), &text, &worlds).unwrap();
        assert_eq!(scenario.shared_world().map(|(name, _)| name), shared);
        let own: Vec<&str> = scenario
            .own_policies()
            .iter()
            .map(|p| p.name.as_str())
            .collect();
        assert_eq!(
            own.len(),
            usize::from(!fixtures.is_empty() && fixtures.contains("policies"))
        );
    }

    const POLICY: &str = "fixtures:\n  policies:\n    - {name: deny, spec: {podSelector: {}, policyTypes: [Ingress]}}\n";

    #[test]
    fn a_file_is_named_after_its_scenario() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("records.yaml"), VALID).unwrap();
        let errs = load_dir(dir.path()).unwrap_err();
        assert_eq!(errs.len(), 1, "{errs:#?}");
        assert!(
            errs[0].to_string().ends_with(
                "records.yaml:1:1: field `name`: scenario `demo` must be in a file named `demo.yaml`"
            ),
            "{}",
            errs[0]
        );
    }
}
