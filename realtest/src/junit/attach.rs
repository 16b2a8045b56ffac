//! Files a test keeps next to the report (`Ctx::attach`): copied at once (the test's temporary
//! directories go when it ends) to
//! `<report stem>.attachments/<run id>/<suite>/<test>/<file name>`, and named in the case's
//! `<system-out>` as `[[ATTACHMENT|path]]`, the path relative to the workspace root (GitLab
//! resolves it against the job's artifacts and shows it on a failed test; Jenkins'
//! junit-attachments plugin reads the same marker). A new run removes the attachments of
//! earlier runs together with their suites.

use std::fs::{File, OpenOptions};
use std::io::{self, Read};
use std::path::{Path, PathBuf};

use super::Invocation;
use crate::workspace;

/// Largest file `Ctx::attach` keeps.
pub const MAX_ATTACHMENT_BYTES: u64 = 64 << 20;

const MARKER_START: &str = "[[ATTACHMENT|";

/// The attachments directory of report `report`: `r.xml` → `r.attachments`.
pub fn root_for(report: &Path) -> PathBuf {
    let stem = report
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_else(|| "report".to_string());
    report.with_file_name(format!("{stem}.attachments"))
}

/// The marker line for an attachment at `relative` (to the workspace root).
pub fn marker(relative: &str) -> String {
    format!("{MARKER_START}{relative}]]")
}

/// The attachment marker lines of `text`, each with its newline.
pub fn marker_lines(text: &str) -> String {
    text.lines()
        .filter(|line| line.starts_with(MARKER_START) && line.ends_with("]]"))
        .map(|line| format!("{line}\n"))
        .collect()
}

/// Copies `source` for test `test` of `suite` under `root`; returns the copy's path relative to
/// the workspace root. The copy never replaces a file: a second attachment of the same name gets
/// a numbered one.
pub fn keep(
    root: &Path,
    run: &Invocation,
    suite: &str,
    test: &str,
    source: &Path,
) -> Result<String, String> {
    let cannot = |err: io::Error| format!("cannot attach {}: {err}", source.display());
    let metadata = std::fs::metadata(source).map_err(cannot)?;
    if !metadata.is_file() {
        return Err(format!(
            "cannot attach {}: not a regular file",
            source.display()
        ));
    }
    if metadata.len() > MAX_ATTACHMENT_BYTES {
        return Err(format!(
            "cannot attach {}: {} bytes, more than the {} MiB an attachment may have",
            source.display(),
            metadata.len(),
            MAX_ATTACHMENT_BYTES >> 20
        ));
    }
    let dir = root
        .join(run.id())
        .join(path_component(suite))
        .join(path_component(&test.replace("::", ".")));
    std::fs::create_dir_all(&dir)
        .map_err(|err| format!("cannot create {}: {err}", dir.display()))?;
    let name = source
        .file_name()
        .map(|n| path_component(&n.to_string_lossy()))
        .unwrap_or_else(|| "attachment".to_string());
    let (mut copy, target) = create_new(&dir, &name).map_err(cannot)?;
    let mut input = File::open(source)
        .map_err(cannot)?
        .take(MAX_ATTACHMENT_BYTES);
    io::copy(&mut input, &mut copy).map_err(cannot)?;
    Ok(workspace::relative(&target).replace('\\', "/"))
}

/// A new file `name` in `dir`, or `stem-2.ext`, `stem-3.ext` … when taken.
fn create_new(dir: &Path, name: &str) -> io::Result<(File, PathBuf)> {
    let (stem, ext) = match name.rsplit_once('.') {
        Some((stem, ext)) if !stem.is_empty() => (stem, format!(".{ext}")),
        _ => (name, String::new()),
    };
    for n in 1..1000 {
        let candidate = if n == 1 {
            dir.join(name)
        } else {
            dir.join(format!("{stem}-{n}{ext}"))
        };
        // create_new: never through a link, never over an existing file.
        match OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&candidate)
        {
            Ok(file) => return Ok((file, candidate)),
            Err(err) if err.kind() == io::ErrorKind::AlreadyExists => continue,
            Err(err) => return Err(err),
        }
    }
    Err(io::Error::other(format!(
        "too many attachments named {name}"
    )))
}

/// Removes the attachments of runs other than `run` under `root`.
pub fn remove_other_runs(root: &Path, run: &Invocation) {
    let Ok(entries) = std::fs::read_dir(root) else {
        return;
    };
    for entry in entries.flatten() {
        if entry.file_name() != run.id() {
            // remove_dir_all does not follow links out of the tree.
            let _ = std::fs::remove_dir_all(entry.path());
        }
    }
}

/// `text` as one safe path component.
fn path_component(text: &str) -> String {
    let cleaned: String = text
        .chars()
        .map(|c| if c == '/' || c.is_control() { '_' } else { c })
        .collect();
    match cleaned.as_str() {
        "" | "." | ".." => "_".to_string(),
        _ => cleaned,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn attachments_are_copied_without_overwriting_and_old_runs_removed() {
        let dir = tempfile::tempdir().unwrap();
        let source = dir.path().join("snap.jpg");
        std::fs::write(&source, b"jpeg").unwrap();
        let root = root_for(&dir.path().join("r.xml"));
        assert_eq!(root, dir.path().join("r.attachments"));
        let run = Invocation::with_id("run-1");
        let first = keep(&root, &run, "bin", "media::snap", &source).unwrap();
        let second = keep(&root, &run, "bin", "media::snap", &source).unwrap();
        assert!(
            first.ends_with("r.attachments/run-1/bin/media.snap/snap.jpg"),
            "{first}"
        );
        assert!(
            second.ends_with("r.attachments/run-1/bin/media.snap/snap-2.jpg"),
            "{second}"
        );
        let kept = root.join("run-1/bin/media.snap/snap-2.jpg");
        assert_eq!(std::fs::read(kept).unwrap(), b"jpeg");

        let err = keep(&root, &run, "bin", "t", &dir.path().join("missing")).unwrap_err();
        assert!(err.starts_with("cannot attach "), "{err}");

        remove_other_runs(&root, &Invocation::with_id("run-2"));
        assert!(!root.join("run-1").exists());
    }

    #[test]
    fn only_marker_lines_are_kept_from_a_passing_log() {
        let text = format!("a\n{}\nb\n", marker("x/y.png"));
        assert_eq!(marker_lines(&text), "[[ATTACHMENT|x/y.png]]\n");
    }
}
