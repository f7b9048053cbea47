//! The code's shape, checked: the modules of the function (`src/`) and of the simulator
//! (`sim/src/`) import each other without a cycle, every module of the function is in the crate
//! docs' Layout, and no file of the function grows past ~400 lines of non-test code.

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::path::Path;

const MAX_LINES: usize = 400;

/// Top-level module → the rest of its source text (submodule files included).
fn modules(root: &Path) -> BTreeMap<String, String> {
    let mut modules: BTreeMap<String, String> = BTreeMap::new();
    for entry in fs::read_dir(root).expect("source folder") {
        let path = entry.expect("entry").path();
        let name = path
            .file_stem()
            .expect("a name")
            .to_string_lossy()
            .into_owned();
        if name == "lib" || name == "main" || name == "bin" {
            continue;
        }
        let text = if path.is_dir() {
            fs::read_dir(&path)
                .expect("module folder")
                .map(|f| fs::read_to_string(f.expect("file").path()).expect("readable"))
                .collect::<Vec<_>>()
                .join("\n")
        } else {
            fs::read_to_string(&path).expect("readable")
        };
        modules.insert(name, text);
    }
    modules
}

/// Which other top-level modules each one names as `crate::<module>`, outside comments and its
/// inline test module.
fn imports(modules: &BTreeMap<String, String>) -> BTreeMap<String, BTreeSet<String>> {
    modules
        .iter()
        .map(|(name, text)| {
            let code: String = text
                .split("#[cfg(test)]")
                .next()
                .unwrap_or_default()
                .lines()
                .filter(|line| !line.trim_start().starts_with("//"))
                .collect::<Vec<_>>()
                .join("\n");
            let used = code
                .match_indices("crate::")
                .map(|(at, _)| {
                    code[at + 7..]
                        .chars()
                        .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                        .collect::<String>()
                })
                .filter(|target| target != name && modules.contains_key(target))
                .collect();
            (name.clone(), used)
        })
        .collect()
}

/// A cycle in the graph, if there is one, as the path that closes it.
fn cycle(graph: &BTreeMap<String, BTreeSet<String>>) -> Option<Vec<String>> {
    fn visit(
        node: &str,
        graph: &BTreeMap<String, BTreeSet<String>>,
        path: &mut Vec<String>,
        done: &mut BTreeSet<String>,
    ) -> Option<Vec<String>> {
        if let Some(start) = path.iter().position(|n| n == node) {
            let mut found = path[start..].to_vec();
            found.push(node.to_owned());
            return Some(found);
        }
        if done.contains(node) {
            return None;
        }
        path.push(node.to_owned());
        for next in graph.get(node).into_iter().flatten() {
            if let Some(found) = visit(next, graph, path, done) {
                return Some(found);
            }
        }
        path.pop();
        done.insert(node.to_owned());
        None
    }
    let mut done = BTreeSet::new();
    graph
        .keys()
        .find_map(|node| visit(node, graph, &mut Vec::new(), &mut done))
}

#[test]
fn the_cycle_finder_finds_cycles() {
    let graph = |edges: &[(&str, &str)]| {
        let mut graph: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
        for (from, to) in edges {
            graph
                .entry((*from).into())
                .or_default()
                .insert((*to).into());
            graph.entry((*to).into()).or_default();
        }
        graph
    };
    assert_eq!(
        cycle(&graph(&[("a", "b"), ("b", "c"), ("c", "a")])),
        Some(vec!["a".into(), "b".into(), "c".into(), "a".into()])
    );
    assert_eq!(cycle(&graph(&[("a", "b"), ("b", "c"), ("a", "c")])), None);
}

#[test]
fn modules_import_each_other_without_a_cycle() {
    let manifest = Path::new(env!("CARGO_MANIFEST_DIR"));
    for root in ["src", "sim/src"] {
        let graph = imports(&modules(&manifest.join(root)));
        assert!(graph.len() > 5, "{root}: modules found");
        if let Some(found) = cycle(&graph) {
            panic!("{root}: import cycle {}", found.join(" → "));
        }
    }
}

#[test]
fn every_module_is_in_the_layout() {
    let manifest = Path::new(env!("CARGO_MANIFEST_DIR"));
    let lib = fs::read_to_string(manifest.join("src/lib.rs")).expect("lib.rs");
    let layout = lib
        .split("# Layout")
        .nth(1)
        .expect("lib.rs has a Layout section");
    for name in modules(&manifest.join("src")).keys() {
        assert!(
            layout.contains(&format!("[`{name}`]")),
            "module {name} is missing from the Layout in src/lib.rs"
        );
    }
}

#[test]
fn no_file_of_the_function_is_too_long() {
    let manifest = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut files = vec![];
    let mut folders = vec![manifest.join("src")];
    while let Some(folder) = folders.pop() {
        for entry in fs::read_dir(folder).expect("folder") {
            let path = entry.expect("entry").path();
            if path.is_dir() {
                folders.push(path);
            } else {
                files.push(path);
            }
        }
    }
    for file in files {
        let text = fs::read_to_string(&file).expect("readable");
        let code = text.split("#[cfg(test)]").next().unwrap_or_default();
        let lines = code.lines().count();
        assert!(
            lines <= MAX_LINES,
            "{} has {lines} lines before its tests: split it by concept",
            file.display()
        );
    }
}
