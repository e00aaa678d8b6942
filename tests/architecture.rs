//! ARCHITECTURE.md and the shape of the code, kept true: every path the code map names exists,
//! every room of src/ is in the map, the decision core does no I/O, and no source file outside
//! tests is over 500 lines nor any function over 80 (rustfmt's layout makes a function's end the
//! first line at its own indentation that is a lone `}`).

mod support;

use std::path::Path;

use support::paths::root;
use support::source_tree::{is_test_file, rust_files};

const MAX_FILE_LINES: usize = 500;
const MAX_FN_LINES: usize = 80;

fn architecture() -> String {
    std::fs::read_to_string(root().join("ARCHITECTURE.md")).expect("ARCHITECTURE.md at the root")
}

fn relative(path: &Path) -> String {
    path.strip_prefix(root()).unwrap().display().to_string()
}

/// The paths the code map names in backticks: `src/…`, `tests/…`, `scripts/…` and the like.
fn named_paths(text: &str) -> Vec<String> {
    let prefixes = [
        "src/",
        "tests/",
        "scripts/",
        "charts/",
        "deploy/",
        "crds/",
        "bench/",
        "fuzz/",
        "examples/",
    ];
    text.split('`')
        .skip(1)
        .step_by(2)
        .filter(|s| prefixes.iter().any(|p| s.starts_with(p)))
        .filter(|s| !s.contains(['*', '<', ' ']))
        .map(|s| s.trim_end_matches(':').to_owned())
        .collect()
}

/// The paths `text` names, and those of them that are not in the tree.
fn named_and_missing(text: &str) -> (Vec<String>, Vec<String>) {
    let named = named_paths(text);
    let missing = named
        .iter()
        .filter(|p| !root().join(p).exists())
        .cloned()
        .collect();
    (named, missing)
}

#[test]
fn every_path_the_code_map_names_exists() {
    let text = architecture();
    let (named, missing) = named_and_missing(&text);
    assert!(named.len() > 20, "the code map names its rooms: {named:?}");
    assert!(
        missing.is_empty(),
        "ARCHITECTURE.md names paths that are gone: {missing:?}"
    );
    assert!(text.lines().count() < 250, "ARCHITECTURE.md stays short");
}

#[test]
fn every_file_the_threat_model_cites_exists() {
    let text = std::fs::read_to_string(root().join("SECURITY.md")).unwrap();
    let (cited, missing) = named_and_missing(&text);
    assert!(cited.len() > 10, "SECURITY.md cites its proofs: {cited:?}");
    assert!(
        missing.is_empty(),
        "SECURITY.md cites files that are gone: {missing:?}"
    );
}

#[test]
fn every_room_of_src_is_in_the_code_map() {
    let text = architecture();
    for entry in std::fs::read_dir(root().join("src")).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            let room = format!("{}/", relative(&path));
            assert!(
                text.contains(&format!("`{room}")),
                "{room} is not in ARCHITECTURE.md"
            );
        }
    }
}

#[test]
fn the_decision_core_does_no_io() {
    let forbidden = [
        "tokio",
        "kube::Api",
        "kube::Client",
        "reqwest",
        "std::fs",
        "std::net",
        "hyper",
        "std::process",
        "SystemTime::now",
        "Timestamp::now",
    ];
    for file in rust_files(&root().join("src/session")) {
        let text = std::fs::read_to_string(&file).unwrap();
        for word in forbidden {
            assert!(
                !text.contains(word),
                "{} uses {word}: src/session decides, the shells do I/O",
                relative(&file)
            );
        }
    }
}

/// Functions longer than the limit in `text`, as `(name, first line, lines)`; test modules
/// (after a `#[cfg(test)]`) are not counted.
fn long_functions(text: &str) -> Vec<(String, usize, usize)> {
    let lines: Vec<&str> = text.lines().collect();
    let end = lines
        .iter()
        .position(|l| l.trim() == "#[cfg(test)]")
        .unwrap_or(lines.len());
    let mut long = Vec::new();
    for (i, line) in lines[..end].iter().enumerate() {
        let trimmed = line.trim_start();
        let indent = &line[..line.len() - trimmed.len()];
        let Some(name) = fn_name(trimmed) else {
            continue;
        };
        if line.trim_end().ends_with(';') {
            continue;
        }
        let close = format!("{indent}}}");
        if let Some(j) = lines[i + 1..end].iter().position(|l| *l == close) {
            let n = j + 2;
            if n > MAX_FN_LINES {
                long.push((name, i + 1, n));
            }
        }
    }
    long
}

/// The name of a function declared on this (trimmed) line.
fn fn_name(line: &str) -> Option<String> {
    let mut rest = line;
    for word in [
        "pub(crate) ",
        "pub(super) ",
        "pub ",
        "async ",
        "const ",
        "unsafe ",
    ] {
        rest = rest.strip_prefix(word).unwrap_or(rest);
    }
    let rest = rest.strip_prefix("fn ")?;
    let name: String = rest
        .chars()
        .take_while(|c| c.is_alphanumeric() || *c == '_')
        .collect();
    (!name.is_empty()).then_some(name)
}

#[test]
fn no_source_file_is_over_500_lines_nor_any_function_over_80() {
    let mut problems = Vec::new();
    for file in rust_files(&root().join("src")) {
        let text = std::fs::read_to_string(&file).unwrap();
        let name = relative(&file);
        if is_test_file(&file) {
            continue;
        }
        let n = text.lines().count();
        if n > MAX_FILE_LINES {
            problems.push(format!("{name}: {n} lines"));
        }
        for (function, at, n) in long_functions(&text) {
            problems.push(format!("{name}:{at}: fn {function} is {n} lines"));
        }
    }
    assert!(
        problems.is_empty(),
        "split by job (one file, one job):\n{}",
        problems.join("\n")
    );
}

#[test]
fn the_shape_check_finds_a_long_function() {
    let body = "    let x = 1;\n".repeat(MAX_FN_LINES);
    let text = format!("pub async fn long() {{\n{body}}}\n\nfn short() {{\n}}\n");
    assert_eq!(
        long_functions(&text),
        [("long".to_owned(), 1, MAX_FN_LINES + 2)]
    );
    let in_tests = format!("#[cfg(test)]\nmod tests {{\n{text}}}\n");
    assert!(
        long_functions(&in_tests).is_empty(),
        "tests are not counted"
    );
}
