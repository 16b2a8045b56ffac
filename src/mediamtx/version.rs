//! MediaMTX versions and the supported range: v1.5.0 up to the newest minor release checked
//! against MediaMTX's own `mediamtx.yml` and `openapi.yaml` (tests/data/mediamtx).
//!
//! Why v1.5.0: before it a path that does not exist is not a 404 (replace and delete answer 400,
//! the runtime path 500, told apart from real failures only by the error text), so a new camera
//! could not be registered nor a path lost by a restarted MediaMTX be found; and `playback`, which
//! the managed config turns off, is an unknown (fatal) key. v1.0/v1.1 have no v3 API at all.
//! Why the upper bound: a later release may drop or rename a key or a field; it is accepted once
//! its files have been extracted and the conformance test passes.

use std::fmt;

/// A release version `vMAJOR.MINOR.PATCH`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Version {
    /// Major.
    pub major: u32,
    /// Minor.
    pub minor: u32,
    /// Patch.
    pub patch: u32,
}

impl Version {
    /// `vmajor.minor.patch`.
    pub const fn new(major: u32, minor: u32, patch: u32) -> Self {
        Self {
            major,
            minor,
            patch,
        }
    }

    /// Parses what `mediamtx --version` prints: `vX.Y.Z`, or `vX.Y.Z-N-gHASH[-dirty]` for a
    /// build between tags (the release it follows).
    pub fn parse(text: &str) -> Option<Self> {
        let core = text.trim().strip_prefix('v')?.split('-').next()?;
        let mut parts = core.split('.').map(|p| p.parse::<u32>().ok());
        let version = Self::new(parts.next()??, parts.next()??, parts.next()??);
        parts.next().is_none().then_some(version)
    }
}

impl fmt::Display for Version {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "v{}.{}.{}", self.major, self.minor, self.patch)
    }
}

/// The oldest supported release.
pub const OLDEST_SUPPORTED: Version = Version::new(1, 5, 0);
/// The newest supported minor release (every patch of it).
pub const NEWEST_SUPPORTED_MINOR: (u32, u32) = (1, 20);

/// The supported range as the README states it: `v1.5.0 … v1.20.x`.
pub fn supported_range() -> String {
    let (major, minor) = NEWEST_SUPPORTED_MINOR;
    format!("{OLDEST_SUPPORTED} … v{major}.{minor}.x")
}

/// A MediaMTX the service refuses to work with.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("MediaMTX {found} is not supported: camera-service works with MediaMTX {} ({why}); install a release in that range (see README, \"MediaMTX\")", supported_range())]
pub struct UnsupportedVersion {
    /// The version found, or what stood for it.
    pub found: String,
    /// Why it is outside the range.
    pub why: String,
}

/// Whether `version` is in the supported range.
pub fn check_supported(version: Version) -> Result<(), UnsupportedVersion> {
    let newest = NEWEST_SUPPORTED_MINOR;
    let why = if version == Version::new(0, 0, 0) {
        "a build without version information (built outside git)".to_owned()
    } else if version < OLDEST_SUPPORTED {
        format!("older than {OLDEST_SUPPORTED}: no 404 for a missing path, no `playback` key")
    } else if (version.major, version.minor) > newest {
        format!(
            "newer than v{}.{}.x, the newest release checked against its mediamtx.yml and openapi.yaml",
            newest.0, newest.1
        )
    } else {
        return Ok(());
    };
    Err(UnsupportedVersion {
        found: version.to_string(),
        why,
    })
}

/// Parses and checks what `mediamtx --version` printed.
pub fn check_version_output(output: &str) -> Result<Version, UnsupportedVersion> {
    let version = Version::parse(output).ok_or_else(|| UnsupportedVersion {
        found: format!("`{}`", output.trim()),
        why: "`--version` printed no vX.Y.Z".to_owned(),
    })?;
    check_supported(version)?;
    Ok(version)
}

/// What a running (external) MediaMTX tells about its version.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ReportedVersion {
    /// `GET /v3/info` answered with this version (v1.15.2 and later).
    Info(String),
    /// No `/v3/info` (before v1.15.2), but the v3 API answers; whether its global config has
    /// the `playback` key (v1.5.0 and later).
    NoInfo {
        /// `playback` is a key of `GET /v3/config/global/get`.
        has_playback: bool,
    },
    /// No v3 API at all (before v1.2.0, or not MediaMTX).
    NoV3Api,
}

/// Whether an external MediaMTX is in the supported range; its version when it told it.
pub fn check_reported(reported: &ReportedVersion) -> Result<Option<Version>, UnsupportedVersion> {
    match reported {
        ReportedVersion::Info(text) => check_version_output(text).map(Some),
        ReportedVersion::NoInfo { has_playback: true } => Ok(None),
        ReportedVersion::NoInfo {
            has_playback: false,
        } => Err(UnsupportedVersion {
            found: format!("older than {OLDEST_SUPPORTED}"),
            why: "no /v3/info and no `playback` in its global config".to_owned(),
        }),
        ReportedVersion::NoV3Api => Err(UnsupportedVersion {
            found: "older than v1.2.0".to_owned(),
            why: "its API has no /v3 routes".to_owned(),
        }),
    }
}
