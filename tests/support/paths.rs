//! Where things are on disk: the project's root, its files, and the cache that
//! `scripts/local-cluster.sh build` and `scripts/venv.sh` fill.

use std::path::{Path, PathBuf};

/// The project root (`CARGO_MANIFEST_DIR`).
pub fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// `examples/<file>` from the project root.
pub fn example(file: &str) -> PathBuf {
    root().join("examples").join(file)
}

/// A file of the project, read whole; panics naming it.
pub fn read(file: &str) -> String {
    std::fs::read_to_string(root().join(file)).unwrap_or_else(|e| panic!("read {file}: {e}"))
}

/// `$ECSVNC_CACHE`, else `~/.cache/ecs-vnc-operator`: the control plane's binaries, the venv.
pub fn cache_root() -> PathBuf {
    match std::env::var_os("ECSVNC_CACHE") {
        Some(dir) => PathBuf::from(dir),
        None => {
            let home = std::env::var_os("HOME").expect("HOME is not set");
            PathBuf::from(home).join(".cache/ecs-vnc-operator")
        }
    }
}
