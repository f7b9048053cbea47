//! The code's shape, checked: the top-level modules of the function (`src/`) and of the simulator
//! (`sim/src/`) import each other without a cycle — read from every file of a folder module, each
//! file's own tests left out —; there are at most 13 of them; every module, folder and file of the
//! function is in the crate docs' Layout; no file of the function grows past ~400 lines of
//! non-test code; and DRS's words for its states are spelled only where they are read (the SDK
//! adapter) and typed (`src/drs/state.rs`).

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::path::{Path, PathBuf};

const MAX_LINES: usize = 400;
const MAX_TOP_LEVEL_MODULES: usize = 13;

fn manifest() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// Every `.rs` file under `root`, in a stable order.
fn rust_files(root: &Path) -> Vec<PathBuf> {
    let mut files = vec![];
    let mut folders = vec![root.to_path_buf()];
    while let Some(folder) = folders.pop() {
        for entry in fs::read_dir(&folder).expect("folder") {
            let path = entry.expect("entry").path();
            if path.is_dir() {
                folders.push(path);
            } else if path.extension().is_some_and(|e| e == "rs") {
                files.push(path);
            }
        }
    }
    files.sort();
    files
}

/// A file's lines before its inline test module (`#[cfg(test)]` on a `mod`): a `#[cfg(test)]`
/// item elsewhere does not end the file's code.
fn before_tests(text: &str) -> Vec<&str> {
    let lines: Vec<&str> = text.lines().collect();
    let end = (0..lines.len())
        .find(|&at| {
            lines[at].trim() == "#[cfg(test)]"
                && lines
                    .get(at + 1)
                    .is_some_and(|next| next.trim_start().starts_with("mod "))
        })
        .unwrap_or(lines.len());
    lines[..end].to_vec()
}

/// A file's code: before its inline test module, without comment lines.
fn code_of(text: &str) -> String {
    before_tests(text)
        .into_iter()
        .filter(|line| !line.trim_start().starts_with("//"))
        .collect::<Vec<_>>()
        .join("\n")
}

/// The first path segment of every `crate::` path in `code`, a grouped `crate::{a, b::c}`
/// counting each of its members.
fn crate_paths(code: &str) -> Vec<String> {
    let ident = |text: &str| -> String {
        text.trim_start()
            .chars()
            .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
            .collect()
    };
    let mut found = vec![];
    for (at, _) in code.match_indices("crate::") {
        let rest = &code[at + 7..];
        match rest.strip_prefix('{') {
            Some(group) => {
                let (mut depth, mut member) = (0, true);
                for (i, c) in group.char_indices() {
                    match c {
                        '{' => depth += 1,
                        '}' if depth == 0 => break,
                        '}' => depth -= 1,
                        ',' if depth == 0 => member = true,
                        _ if member && !c.is_whitespace() => {
                            found.push(ident(&group[i..]));
                            member = false;
                        }
                        _ => {}
                    }
                }
            }
            None => found.push(ident(rest)),
        }
    }
    found
}

/// The top-level module a file belongs to (`launch` for `src/launch/send.rs`), or `None` for the
/// crate root and binaries.
fn top_level(root: &Path, file: &Path) -> Option<String> {
    let relative = file.strip_prefix(root).expect("under the root");
    let first = relative.components().next()?.as_os_str().to_string_lossy();
    let name = first.trim_end_matches(".rs").to_owned();
    (!["lib", "main", "bin"].contains(&name.as_str())).then_some(name)
}

/// Top-level module → the code of all its files (each without its own tests).
fn modules(root: &Path) -> BTreeMap<String, String> {
    let mut modules: BTreeMap<String, String> = BTreeMap::new();
    for file in rust_files(root) {
        if let Some(name) = top_level(root, &file) {
            let code = code_of(&fs::read_to_string(&file).expect("readable"));
            let text = modules.entry(name).or_default();
            text.push('\n');
            text.push_str(&code);
        }
    }
    modules
}

/// Which other top-level modules each one names as `crate::<module>`.
fn imports(modules: &BTreeMap<String, String>) -> BTreeMap<String, BTreeSet<String>> {
    modules
        .iter()
        .map(|(name, code)| {
            let used = crate_paths(code)
                .into_iter()
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

/// An import in any file of a folder module counts, however deep, grouped or not, and whatever
/// comes before it: a folder's files are read one by one, each without only its own test module.
#[test]
fn imports_are_read_from_every_file_of_a_folder() {
    let root = std::env::temp_dir().join(format!("layout-check-{}", std::process::id()));
    let _ = fs::remove_dir_all(&root);
    fs::create_dir_all(root.join("a/deep")).unwrap();
    fs::write(
        root.join("a/mod.rs"),
        "mod deep;\n#[cfg(test)]\nmod tests { use crate::c::X; }\n",
    )
    .unwrap();
    fs::write(
        root.join("a/deep/inner.rs"),
        "#[cfg(test)]\nfn helper() {}\nuse crate::{b::Y, d};\n",
    )
    .unwrap();
    fs::write(root.join("d.rs"), "pub struct Z;\n").unwrap();
    fs::write(root.join("b.rs"), "// use crate::a::Z;\npub struct Y;\n").unwrap();
    fs::write(root.join("c.rs"), "pub struct X;\n").unwrap();
    let graph = imports(&modules(&root));
    fs::remove_dir_all(&root).unwrap();
    assert_eq!(
        graph["a"],
        BTreeSet::from(["b".to_owned(), "d".to_owned()]),
        "{graph:?}"
    );
    assert!(graph["b"].is_empty(), "comments are not imports");
}

#[test]
fn modules_import_each_other_without_a_cycle() {
    for root in ["src", "sim/src"] {
        let graph = imports(&modules(&manifest().join(root)));
        assert!(graph.len() > 5, "{root}: modules found");
        if let Some(found) = cycle(&graph) {
            panic!("{root}: import cycle {}", found.join(" → "));
        }
    }
}

#[test]
fn at_most_a_dozen_or_so_top_level_modules() {
    let found = modules(&manifest().join("src"));
    assert!(
        found.len() <= MAX_TOP_LEVEL_MODULES,
        "src/ has {} top-level modules: {:?}",
        found.len(),
        found.keys()
    );
}

/// Every top-level module is linked in the Layout, and every file of a folder is named (by its
/// stem, in backticks) in its folder's row.
#[test]
fn every_module_folder_and_file_is_in_the_layout() {
    let root = manifest().join("src");
    let lib = fs::read_to_string(root.join("lib.rs")).expect("lib.rs");
    let layout = lib
        .split("# Layout")
        .nth(1)
        .expect("lib.rs has a Layout section");
    for name in modules(&root).keys() {
        let link = format!("[`{name}`]");
        assert!(
            layout.contains(&link),
            "module {name} is missing from the Layout in src/lib.rs"
        );
        let folder = root.join(name);
        if !folder.is_dir() {
            continue;
        }
        let row = layout
            .lines()
            .find(|line| line.starts_with("//! |") && line.contains(&link))
            .expect("a row of its own");
        for file in rust_files(&folder) {
            let stem = file.file_stem().expect("a name").to_string_lossy();
            assert!(
                row.contains(&format!("`{stem}`")),
                "{} is not named in the Layout row of {name}/",
                file.display()
            );
        }
    }
}

#[test]
fn no_file_of_the_function_is_too_long() {
    for file in rust_files(&manifest().join("src")) {
        let text = fs::read_to_string(&file).expect("readable");
        let lines = before_tests(&text).len();
        assert!(
            lines <= MAX_LINES,
            "{} has {lines} lines before its tests: split it by concept",
            file.display()
        );
    }
}

/// The words of DRS's state enums, from the API model the simulator validates against.
fn drs_state_words() -> BTreeSet<String> {
    let model: serde_json::Value = serde_json::from_str(
        &fs::read_to_string(manifest().join("sim/model/drs-service-2.json")).expect("the model"),
    )
    .expect("JSON");
    ["FailbackState", "JobStatus", "LaunchStatus", "JobLogEvent"]
        .iter()
        .flat_map(|shape| {
            model["shapes"][shape]["enum"]
                .as_array()
                .unwrap_or_else(|| panic!("{shape} is an enum in the model"))
                .iter()
                .map(|word| word.as_str().expect("a word").to_owned())
        })
        .collect()
}

/// A DRS state compared as a bare string is a state the compiler cannot check: the function spells
/// DRS's words only in the SDK adapter (which reads them) and the enums that type them.
#[test]
fn drs_states_are_spelled_only_where_they_are_typed() {
    let root = manifest().join("src");
    let words = drs_state_words();
    assert!(words.contains("FAILBACK_READY_FOR_LAUNCH") && words.contains("COMPLETED"));
    let allowed = [root.join("aws"), root.join("drs/state.rs")];
    let mut found = vec![];
    for file in rust_files(&root) {
        if allowed.iter().any(|place| file.starts_with(place)) {
            continue;
        }
        let code = code_of(&fs::read_to_string(&file).expect("readable"));
        for word in &words {
            if code.contains(&format!("\"{word}\"")) {
                found.push(format!("{}: \"{word}\"", file.display()));
            }
        }
    }
    assert!(found.is_empty(), "DRS state words as strings: {found:#?}");
}
