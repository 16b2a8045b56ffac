//! The workspace root, so that paths in reports are relative to it (as CI systems resolve a
//! test case's `file` and an attachment's path against the checked-out repository).

use std::path::{Path, PathBuf};

/// The workspace root: `NEXTEST_WORKSPACE_ROOT` under nextest (remapped when an archive runs
/// elsewhere), else the nearest directory from the current one up that holds a `Cargo.lock`
/// (tests run in their package's directory), else the current directory.
pub fn root() -> PathBuf {
    if let Some(root) = std::env::var_os("NEXTEST_WORKSPACE_ROOT").filter(|r| !r.is_empty()) {
        return PathBuf::from(root);
    }
    let cwd = std::env::current_dir().unwrap_or_else(|_| PathBuf::from("."));
    cwd.ancestors()
        .find(|dir| dir.join("Cargo.lock").is_file())
        .map(Path::to_path_buf)
        .unwrap_or(cwd)
}

/// `path` (relative to the current directory, or absolute) relative to the workspace root;
/// unchanged (absolute) when it lies outside.
pub fn relative(path: &Path) -> String {
    let absolute = std::path::absolute(path).unwrap_or_else(|_| path.to_path_buf());
    let root = root();
    let root = std::path::absolute(&root).unwrap_or(root);
    match absolute.strip_prefix(&root) {
        Ok(inside) => inside.display().to_string(),
        Err(_) => absolute.display().to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_are_made_relative_to_the_directory_holding_cargo_lock() {
        // The harness's own unit tests run in realtest/, inside the workspace of this repository.
        let root = root();
        assert!(root.join("Cargo.lock").is_file(), "{}", root.display());
        assert_eq!(
            relative(Path::new("src/workspace.rs")),
            "realtest/src/workspace.rs"
        );
        assert_eq!(relative(Path::new("/nonexistent/x")), "/nonexistent/x");
    }
}
