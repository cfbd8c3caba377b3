//! Helpers shared by the workspace integration tests.

use std::path::PathBuf;

/// Absolute path of a committed fixture under `tests/fixtures/`.
pub fn fixture(rel: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("fixtures").join(rel)
}
