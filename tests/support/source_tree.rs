//! The project's Rust sources as files on disk, for the tests that check the code itself
//! (its shape, the codes and names the docs must list).

use std::path::{Path, PathBuf};

/// Every `.rs` file under `dir`, recursively, sorted.
pub fn rust_files(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut pending = vec![dir.to_path_buf()];
    while let Some(dir) = pending.pop() {
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                pending.push(path);
            } else if path.extension().is_some_and(|e| e == "rs") {
                out.push(path);
            }
        }
    }
    out.sort();
    out
}

/// The `.rs` files under `dir` that are not unit-test files.
pub fn source_files(dir: &Path) -> Vec<PathBuf> {
    rust_files(dir)
        .into_iter()
        .filter(|p| !is_test_file(p))
        .collect()
}

/// Unit tests kept in files of their own (`tests.rs`, `*_tests.rs`, a `tests/` folder).
pub fn is_test_file(path: &Path) -> bool {
    let name = path.file_name().unwrap().to_string_lossy();
    name == "tests.rs"
        || name.ends_with("_tests.rs")
        || path.components().any(|c| c.as_os_str() == "tests")
}
