//! Recordings and snapshots on disk: name validation (nothing outside the storage directories is
//! ever touched), listing, info, deletion, disk usage and retention.

use std::path::{Path, PathBuf};
use std::time::SystemTime;

use chrono::{DateTime, SecondsFormat, Utc};
use serde::Serialize;

/// The two kinds of stored files.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FileKind {
    /// `recordings/`
    Recording,
    /// `snapshots/`
    Snapshot,
}

impl FileKind {
    /// The directory name, also used in download URLs.
    pub const fn dir_name(self) -> &'static str {
        match self {
            FileKind::Recording => "recordings",
            FileKind::Snapshot => "snapshots",
        }
    }

    /// Parses a directory name from a download URL.
    pub fn from_dir_name(name: &str) -> Option<Self> {
        match name {
            "recordings" => Some(FileKind::Recording),
            "snapshots" => Some(FileKind::Snapshot),
            _ => None,
        }
    }
}

/// A storage failure.
#[derive(Debug, thiserror::Error)]
pub enum StorageError {
    /// A client-supplied file name that could leave the directory or is otherwise unusable.
    #[error("invalid file name `{name}`: {reason}")]
    InvalidName {
        /// The name as given (NULs escaped).
        name: String,
        /// Why it was refused.
        reason: &'static str,
    },
    /// No such file.
    #[error("{kind} file `{name}` not found")]
    NotFound {
        /// `recordings` or `snapshots`.
        kind: &'static str,
        /// The file name.
        name: String,
    },
    /// A client-chosen name that is taken (by a file, a directory or a symbolic link).
    #[error("{kind} file `{name}` already exists; choose another name or delete it first")]
    Exists {
        /// `recordings` or `snapshots`.
        kind: &'static str,
        /// The file name.
        name: String,
    },
    /// A new file could not be created (read-only or full storage, permissions).
    #[error("cannot create {kind} file `{name}`: {source}")]
    Create {
        /// `recordings` or `snapshots`.
        kind: &'static str,
        /// The file name.
        name: String,
        /// The error.
        #[source]
        source: std::io::Error,
    },
    /// An I/O error on a path.
    #[error("{operation} {}: {source}", path.display())]
    Io {
        /// What was being done.
        operation: &'static str,
        /// The path.
        path: PathBuf,
        /// The error.
        #[source]
        source: std::io::Error,
    },
}

/// Checks a client-supplied file name: no `/`, `\`, NUL, `..`, leading `.`, empty or over 255 bytes.
pub fn validate_file_name(name: &str) -> Result<&str, StorageError> {
    let reason = if name.is_empty() {
        Some("is empty")
    } else if name.len() > 255 {
        Some("is longer than 255 bytes")
    } else if name.contains('\0') {
        Some("contains NUL")
    } else if name.starts_with('/') {
        Some("is an absolute path")
    } else if name.contains('/') || name.contains('\\') {
        Some("contains a path separator")
    } else if name.contains("..") {
        Some("contains `..`")
    } else if name.starts_with('.') {
        Some("starts with `.`")
    } else if name.chars().any(char::is_control) {
        Some("contains control characters")
    } else {
        None
    };
    match reason {
        Some(reason) => Err(StorageError::InvalidName {
            name: name.escape_default().to_string(),
            reason,
        }),
        None => Ok(name),
    }
}

/// Metadata of one stored file.
#[derive(Debug, Clone, Serialize)]
pub struct FileEntry {
    /// File name.
    pub filename: String,
    /// Size in bytes.
    pub file_size: u64,
    /// Last modification, RFC 3339 UTC.
    pub modified_time: String,
    /// Creation (birth) time when the filesystem knows it, else the modification time.
    pub created_time: String,
    /// Authenticated download path on this server.
    pub download_url: String,
    #[serde(skip)]
    modified: SystemTime,
}

/// Disk usage of the filesystem holding the data directory.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct DiskUsage {
    /// Bytes in the filesystem.
    pub total_space: u64,
    /// Bytes in use.
    pub used_space: u64,
    /// Bytes available to unprivileged users.
    pub available_space: u64,
}

impl DiskUsage {
    /// Used space in percent of (used + available), as `df` computes it.
    pub fn usage_percent(&self) -> f64 {
        let denominator = self.used_space + self.available_space;
        if denominator == 0 {
            return 0.0;
        }
        self.used_space as f64 * 100.0 / denominator as f64
    }
}

/// A file the service has just created for FFmpeg to fill.
///
/// It is created new (`O_CREAT|O_EXCL|O_NOFOLLOW`: never over an existing file, never through a
/// symbolic link) and kept open. FFmpeg is handed [`NewFile::writer_path`],
/// `/proc/<service pid>/fd/<n>`: opening that reaches exactly this open file, whatever has
/// happened to its name in the directory meanwhile, so no name lookup of FFmpeg's can be raced
/// into writing elsewhere (a path in a shared directory could be swapped for a link between
/// creation and FFmpeg's open). The file is at its final name from the start, so a recording
/// is visible while it runs and survives a crash of the service.
#[derive(Debug)]
pub struct NewFile {
    file: std::fs::File,
    name: String,
    path: PathBuf,
}

impl NewFile {
    /// Creates `path` new, refusing existing names and symbolic links.
    fn create(path: PathBuf, name: String) -> std::io::Result<Self> {
        use std::os::unix::fs::OpenOptionsExt;
        let file = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .custom_flags(nix::fcntl::OFlag::O_NOFOLLOW.bits())
            .mode(0o644)
            .open(&path)?;
        Ok(Self { file, name, path })
    }

    /// The file name in its directory.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Where the file is.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The path a child process opens to write (or read) exactly this file.
    pub fn writer_path(&self) -> PathBuf {
        use std::os::fd::AsRawFd;
        PathBuf::from(format!(
            "/proc/{}/fd/{}",
            std::process::id(),
            self.file.as_raw_fd()
        ))
    }

    /// Writes `bytes` at the current position.
    pub fn write_all(&self, bytes: &[u8]) -> std::io::Result<()> {
        use std::io::Write;
        (&self.file).write_all(bytes)
    }

    /// Bytes in the file now (of the file itself, not of whatever its name points to).
    pub fn len(&self) -> u64 {
        self.file.metadata().map(|m| m.len()).unwrap_or(0)
    }

    /// Whether nothing was written yet.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Removes the file (a failed snapshot or recording), if its name still refers to it.
    pub fn discard(self) {
        use std::os::unix::fs::MetadataExt;
        let ours = self.file.metadata().ok().map(|m| (m.dev(), m.ino()));
        let named = std::fs::symlink_metadata(&self.path)
            .ok()
            .map(|m| (m.dev(), m.ino()));
        if ours.is_some() && ours == named {
            if let Err(e) = std::fs::remove_file(&self.path) {
                tracing::warn!(path = %self.path.display(), "cannot remove a failed file: {e}");
            }
        }
    }
}

/// The storage directories.
#[derive(Debug, Clone)]
pub struct Storage {
    data_dir: PathBuf,
}

impl Storage {
    /// Storage under `data_dir`; call [`Storage::create_dirs`] before use.
    pub fn new(data_dir: PathBuf) -> Self {
        Self { data_dir }
    }

    /// The data directory.
    pub fn data_dir(&self) -> &Path {
        &self.data_dir
    }

    /// The directory of `kind`.
    pub fn dir(&self, kind: FileKind) -> PathBuf {
        self.data_dir.join(kind.dir_name())
    }

    /// Creates the data directory and both file directories.
    pub fn create_dirs(&self) -> Result<(), StorageError> {
        for kind in [FileKind::Recording, FileKind::Snapshot] {
            let dir = self.dir(kind);
            std::fs::create_dir_all(&dir).map_err(|source| StorageError::Io {
                operation: "create directory",
                path: dir.clone(),
                source,
            })?;
        }
        Ok(())
    }

    /// The path of a validated client-supplied name inside `kind`'s directory.
    pub fn path_of(&self, kind: FileKind, name: &str) -> Result<PathBuf, StorageError> {
        Ok(self.dir(kind).join(validate_file_name(name)?))
    }

    /// Creates the client-chosen file `name` of `kind`; [`StorageError::Exists`] when the name
    /// is taken.
    pub fn create(&self, kind: FileKind, name: &str) -> Result<NewFile, StorageError> {
        let path = self.path_of(kind, name)?;
        NewFile::create(path, name.to_owned()).map_err(|source| {
            if source.kind() == std::io::ErrorKind::AlreadyExists {
                StorageError::Exists {
                    kind: kind.dir_name(),
                    name: name.to_owned(),
                }
            } else {
                create_error(kind, name, source)
            }
        })
    }

    /// Creates the first free name of `stem.extension`, `stem_1.extension`, `stem_2…` in
    /// `kind`'s directory (service-chosen names never collide, never reuse a taken name).
    pub fn create_unique(
        &self,
        kind: FileKind,
        stem: &str,
        extension: &str,
    ) -> Result<NewFile, StorageError> {
        for n in 0u32.. {
            let name = match n {
                0 => format!("{stem}.{extension}"),
                n => format!("{stem}_{n}.{extension}"),
            };
            match self.create(kind, &name) {
                Err(StorageError::Exists { .. }) => continue,
                other => return other,
            }
        }
        unreachable!("an unbounded counter always finds a free name")
    }

    /// A hidden scratch file in `kind`'s directory (same filesystem), created new; for
    /// intermediate copies that are discarded after use.
    pub fn create_scratch(&self, kind: FileKind, purpose: &str) -> Result<NewFile, StorageError> {
        let name = format!(".{purpose}-{}", uuid::Uuid::new_v4().simple());
        let path = self.dir(kind).join(&name);
        NewFile::create(path, name.clone()).map_err(|source| create_error(kind, &name, source))
    }

    /// The path of an existing file, or [`StorageError::NotFound`].
    pub fn existing(&self, kind: FileKind, name: &str) -> Result<PathBuf, StorageError> {
        let path = self.path_of(kind, name)?;
        match std::fs::symlink_metadata(&path) {
            Ok(meta) if meta.is_file() => Ok(path),
            Ok(_) => Err(not_found(kind, name)),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Err(not_found(kind, name)),
            Err(source) => Err(StorageError::Io {
                operation: "stat",
                path,
                source,
            }),
        }
    }

    /// Metadata of one file.
    pub fn info(&self, kind: FileKind, name: &str) -> Result<FileEntry, StorageError> {
        let path = self.existing(kind, name)?;
        let meta = std::fs::metadata(&path).map_err(|source| StorageError::Io {
            operation: "stat",
            path: path.clone(),
            source,
        })?;
        Ok(entry(kind, name.to_owned(), &meta))
    }

    /// All regular files of `kind`, newest first.
    pub fn list(&self, kind: FileKind) -> Result<Vec<FileEntry>, StorageError> {
        let dir = self.dir(kind);
        let io = |source| StorageError::Io {
            operation: "list directory",
            path: dir.clone(),
            source,
        };
        let mut files = Vec::new();
        for item in std::fs::read_dir(&dir).map_err(io)? {
            let item = item.map_err(io)?;
            let Ok(name) = item.file_name().into_string() else {
                continue;
            };
            if validate_file_name(&name).is_err() {
                continue;
            }
            let Ok(meta) = item.metadata() else { continue };
            if meta.is_file() {
                files.push(entry(kind, name, &meta));
            }
        }
        files.sort_by(|a, b| {
            b.modified
                .cmp(&a.modified)
                .then_with(|| a.filename.cmp(&b.filename))
        });
        Ok(files)
    }

    /// Deletes one file.
    pub fn delete(&self, kind: FileKind, name: &str) -> Result<u64, StorageError> {
        let path = self.existing(kind, name)?;
        let size = std::fs::metadata(&path).map(|m| m.len()).unwrap_or(0);
        std::fs::remove_file(&path).map_err(|source| StorageError::Io {
            operation: "delete",
            path,
            source,
        })?;
        Ok(size)
    }

    /// Total bytes of the files of `kind`.
    pub fn total_size(&self, kind: FileKind) -> Result<u64, StorageError> {
        Ok(self.list(kind)?.iter().map(|f| f.file_size).sum())
    }

    /// Disk usage of the filesystem holding the data directory.
    pub fn disk_usage(&self) -> Result<DiskUsage, StorageError> {
        let stat =
            nix::sys::statvfs::statvfs(&self.data_dir).map_err(|errno| StorageError::Io {
                operation: "statvfs",
                path: self.data_dir.clone(),
                source: errno.into(),
            })?;
        let fragment = stat.fragment_size() as u64;
        let total = stat.blocks() as u64 * fragment;
        let free = stat.blocks_free() as u64 * fragment;
        let available = stat.blocks_available() as u64 * fragment;
        Ok(DiskUsage {
            total_space: total,
            used_space: total.saturating_sub(free),
            available_space: available,
        })
    }

    /// Deletes files of both kinds older than `max_age` and then, oldest first, until both
    /// directories together hold at most `max_bytes`. Returns (files deleted, bytes freed).
    /// `skip` names files that must stay (recordings in progress).
    pub fn apply_retention(
        &self,
        max_age: Option<std::time::Duration>,
        max_bytes: Option<u64>,
        skip: &[String],
    ) -> Result<(u64, u64), StorageError> {
        let mut all: Vec<(FileKind, FileEntry)> = Vec::new();
        for kind in [FileKind::Recording, FileKind::Snapshot] {
            all.extend(self.list(kind)?.into_iter().map(|f| (kind, f)));
        }
        let mut total: u64 = all.iter().map(|(_, f)| f.file_size).sum();
        all.retain(|(_, f)| !skip.contains(&f.filename));
        all.sort_by_key(|(_, file)| file.modified);
        let now = SystemTime::now();
        let (mut deleted, mut freed) = (0u64, 0u64);
        for (kind, file) in all {
            let too_old = max_age.is_some_and(|age| {
                now.duration_since(file.modified)
                    .is_ok_and(|elapsed| elapsed > age)
            });
            let too_big = max_bytes.is_some_and(|limit| total > limit);
            if too_old || too_big {
                let size = self.delete(kind, &file.filename)?;
                total = total.saturating_sub(size);
                deleted += 1;
                freed += size;
            }
        }
        Ok((deleted, freed))
    }
}

fn create_error(kind: FileKind, name: &str, source: std::io::Error) -> StorageError {
    StorageError::Create {
        kind: kind.dir_name(),
        name: name.to_owned(),
        source,
    }
}

fn not_found(kind: FileKind, name: &str) -> StorageError {
    StorageError::NotFound {
        kind: kind.dir_name(),
        name: name.to_owned(),
    }
}

fn entry(kind: FileKind, filename: String, meta: &std::fs::Metadata) -> FileEntry {
    let modified = meta.modified().unwrap_or(SystemTime::UNIX_EPOCH);
    let created = meta.created().unwrap_or(modified);
    FileEntry {
        download_url: format!("/files/{}/{}", kind.dir_name(), filename),
        filename,
        file_size: meta.len(),
        modified_time: rfc3339(modified),
        created_time: rfc3339(created),
        modified,
    }
}

/// Formats a time as RFC 3339 UTC with second precision (`2025-01-15T14:30:00Z`).
pub fn rfc3339(time: SystemTime) -> String {
    DateTime::<Utc>::from(time).to_rfc3339_opts(SecondsFormat::Secs, true)
}
