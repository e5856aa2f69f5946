//! The harness's modules form a layered graph: no import cycles, the
//! scenario format is a leaf, and every folder imports only the folders
//! before it on a scenario's path. Read from the sources (`crate::<module>` paths),
//! so a new cycle fails `cargo test` with the path that closes it.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

/// Top-level module -> the top-level modules it names.
fn module_graph() -> BTreeMap<String, BTreeSet<String>> {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut graph: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    let mut files = vec![src.clone()];
    while let Some(path) = files.pop() {
        if path.is_dir() {
            files.extend(std::fs::read_dir(&path).unwrap().map(|e| e.unwrap().path()));
            continue;
        }
        if path.extension().and_then(|e| e.to_str()) != Some("rs") {
            continue;
        }
        let relative = path.strip_prefix(&src).unwrap();
        let module = relative
            .components()
            .next()
            .unwrap()
            .as_os_str()
            .to_string_lossy()
            .trim_end_matches(".rs")
            .to_string();
        if module == "lib" {
            continue;
        }
        let text = std::fs::read_to_string(&path).unwrap();
        let deps = graph.entry(module.clone()).or_default();
        for (i, _) in text.match_indices("crate::") {
            let name: String = text[i + "crate::".len()..]
                .chars()
                .take_while(|c| c.is_ascii_lowercase() || *c == '_')
                .collect();
            if !name.is_empty() && name != module {
                deps.insert(name);
            }
        }
    }
    graph
}

fn find_cycle(graph: &BTreeMap<String, BTreeSet<String>>) -> Option<Vec<String>> {
    fn visit(
        node: &str,
        graph: &BTreeMap<String, BTreeSet<String>>,
        path: &mut Vec<String>,
        done: &mut BTreeSet<String>,
    ) -> Option<Vec<String>> {
        if let Some(start) = path.iter().position(|n| n == node) {
            let mut cycle = path[start..].to_vec();
            cycle.push(node.to_string());
            return Some(cycle);
        }
        if done.contains(node) {
            return None;
        }
        path.push(node.to_string());
        for next in graph.get(node).into_iter().flatten() {
            if let Some(c) = visit(next, graph, path, done) {
                return Some(c);
            }
        }
        path.pop();
        done.insert(node.to_string());
        None
    }
    let mut done = BTreeSet::new();
    graph
        .keys()
        .find_map(|n| visit(n, graph, &mut Vec::new(), &mut done))
}

#[test]
fn harness_modules_have_no_import_cycle() {
    let graph = module_graph();
    assert!(graph.len() >= 10, "read the modules: {graph:?}");
    if let Some(cycle) = find_cycle(&graph) {
        panic!("import cycle: {}", cycle.join(" -> "));
    }
}

#[test]
fn the_scenario_format_imports_nothing_else_from_the_harness() {
    let graph = module_graph();
    assert_eq!(graph["scenario"], BTreeSet::new());
}

/// A scenario's path through the harness; `progress` and `timeouts` are
/// leaves anyone may use.
const LAYERS: [&[&str]; 8] = [
    &["scenario", "progress", "timeouts"],
    &["cluster"],
    &["setup"],
    &["probes"],
    &["verdict"],
    &["features"],
    &["report"],
    &["runner"],
];

#[test]
fn each_folder_imports_only_earlier_ones() {
    let rank = |m: &str| {
        LAYERS
            .iter()
            .position(|layer| layer.contains(&m))
            .unwrap_or_else(|| panic!("module `{m}` is in no layer of {LAYERS:?}"))
    };
    let mut wrong = Vec::new();
    for (module, deps) in module_graph() {
        for dep in deps {
            if rank(&dep) >= rank(&module) && !LAYERS[0].contains(&dep.as_str()) {
                wrong.push(format!("{module} -> {dep}"));
            }
        }
    }
    assert!(wrong.is_empty(), "imports against the layering: {wrong:?}");
}

#[test]
fn the_cycle_finder_finds_cycles() {
    let graph: BTreeMap<String, BTreeSet<String>> =
        [("a", vec!["b"]), ("b", vec!["c"]), ("c", vec!["a"])]
            .into_iter()
            .map(|(k, v)| (k.to_string(), v.into_iter().map(String::from).collect()))
            .collect();
    assert_eq!(find_cycle(&graph).unwrap(), vec!["a", "b", "c", "a"]);
}
