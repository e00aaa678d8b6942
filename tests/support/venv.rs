//! The Python of `scripts/venv.sh`'s venv, for the tests that compare with Alibaba's official
//! Python SDK through a script in `tests/support/`.

use std::process::Command;

use super::paths::{cache_root, root};

/// `python -I tests/support/<script>` in the venv; panics with `fix` if the venv is missing.
pub fn script(script: &str, fix: &str) -> Command {
    let python = cache_root().join("venv/bin/python");
    assert!(
        python.exists(),
        "the venv's Python {} is missing: {fix}",
        python.display()
    );
    let mut command = Command::new(python);
    command
        .arg("-I")
        .arg(root().join("tests/support").join(script));
    command
}
