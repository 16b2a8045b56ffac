//! The report file's read-modify-write: writers (several binaries of `cargo test`, nextest's
//! parallel processes) take turns through an exclusive `flock` on the file's directory, read the
//! report, and write the new one to a temporary file in the same directory that is renamed over
//! the old one, so a reader never sees half a report and a crash never leaves one.

use std::fs::File;
use std::io::Write;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::time::{Duration, Instant};

use nix::fcntl::{Flock, FlockArg};
use quick_junit::Report;

use super::{strict, Format};

/// How long a writer waits for the others before giving up.
const LOCK_WAIT: Duration = Duration::from_secs(120);
const LOCK_POLL: Duration = Duration::from_millis(20);

/// Replaces the report at `path` by `update(the report there now)`, under the lock; returns what
/// was written.
pub fn update(
    path: &Path,
    format: Format,
    update: impl FnOnce(Option<Report>) -> Report,
) -> Result<Report, String> {
    let dir = match path.parent().filter(|p| !p.as_os_str().is_empty()) {
        Some(dir) => dir,
        None => Path::new("."),
    };
    std::fs::create_dir_all(dir)
        .map_err(|err| format!("cannot create {}: {err}", dir.display()))?;
    let _lock = lock(dir)?;
    let existing = read(path)?;
    let report = update(existing);
    let xml = match format {
        Format::Rich => report.to_string().map_err(|err| err.to_string()),
        Format::Strict => strict::to_xml(&report),
    }
    .map_err(|err| format!("cannot serialise the JUnit report: {err}"))?;
    let mut temp = tempfile::Builder::new()
        .prefix(".realtest-junit-")
        .suffix(".tmp")
        .tempfile_in(dir)
        .map_err(|err| format!("cannot create a temporary file in {}: {err}", dir.display()))?;
    let write_error = |err: std::io::Error| format!("cannot write {}: {err}", path.display());
    temp.write_all(xml.as_bytes()).map_err(write_error)?;
    temp.as_file().sync_all().map_err(write_error)?;
    temp.as_file()
        .set_permissions(std::fs::Permissions::from_mode(0o644))
        .map_err(write_error)?;
    temp.persist(path).map_err(|err| write_error(err.error))?;
    Ok(report)
}

/// An exclusive lock on directory `dir`, waiting up to [`LOCK_WAIT`] for other writers.
fn lock(dir: &Path) -> Result<Flock<File>, String> {
    let deadline = Instant::now() + LOCK_WAIT;
    let mut file =
        File::open(dir).map_err(|err| format!("cannot open {}: {err}", dir.display()))?;
    loop {
        match Flock::lock(file, FlockArg::LockExclusiveNonblock) {
            Ok(lock) => return Ok(lock),
            Err((back, nix::errno::Errno::EWOULDBLOCK)) if Instant::now() < deadline => {
                file = back;
                std::thread::sleep(LOCK_POLL);
            }
            Err((_, errno)) => {
                return Err(format!(
                    "cannot lock {} for the JUnit report: {}",
                    dir.display(),
                    if errno == nix::errno::Errno::EWOULDBLOCK {
                        format!("another writer held it for {}s", LOCK_WAIT.as_secs())
                    } else {
                        errno.desc().to_string()
                    }
                ))
            }
        }
    }
}

/// The report at `path`: `None` when there is none (or the file is empty); an error, naming the
/// file, when it is something else than a JUnit report: it is not overwritten.
fn read(path: &Path) -> Result<Option<Report>, String> {
    let text = match std::fs::read_to_string(path) {
        Ok(text) => text,
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(err) => return Err(format!("cannot read {}: {err}", path.display())),
    };
    if text.trim().is_empty() {
        return Ok(None);
    }
    Report::deserialize_from_str(&text)
        .map(Some)
        .map_err(|err| {
            format!(
            "{} is not a JUnit report realtest can add to ({err}); remove it or choose another \
             --junit path",
            path.display()
        )
        })
}

#[cfg(test)]
mod tests {
    use quick_junit::TestSuite;

    use super::*;

    #[test]
    fn a_report_is_replaced_whole_and_a_foreign_file_is_left_alone() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("sub/r.xml");
        let written = update(&path, Format::Rich, |existing| {
            assert!(existing.is_none());
            let mut report = Report::new("realtest");
            report.add_test_suite(TestSuite::new("a"));
            report
        })
        .unwrap();
        assert_eq!(written.test_suites.len(), 1);
        update(&path, Format::Rich, |existing| {
            let existing = existing.expect("the first report");
            assert_eq!(existing.test_suites[0].name.as_str(), "a");
            existing
        })
        .unwrap();
        let mode = std::fs::metadata(&path).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o644);
        let leftovers: Vec<_> = std::fs::read_dir(path.parent().unwrap())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(leftovers, ["r.xml"]);

        let foreign = dir.path().join("notes.xml");
        std::fs::write(&foreign, "my notes").unwrap();
        let err = update(&foreign, Format::Rich, |_| Report::new("x")).unwrap_err();
        assert!(err.contains("is not a JUnit report"), "{err}");
        assert_eq!(std::fs::read_to_string(&foreign).unwrap(), "my notes");
    }

    #[test]
    fn concurrent_writers_lose_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("r.xml");
        let writers: Vec<_> = (0..8)
            .map(|i| {
                let path = path.clone();
                std::thread::spawn(move || {
                    update(&path, Format::Rich, |existing| {
                        let mut report = existing.unwrap_or_else(|| Report::new("realtest"));
                        report.add_test_suite(TestSuite::new(format!("s{i}")));
                        report
                    })
                    .unwrap();
                })
            })
            .collect();
        for writer in writers {
            writer.join().unwrap();
        }
        let report =
            Report::deserialize_from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
        assert_eq!(report.test_suites.len(), 8);
    }
}
