//! Where a camera's video comes from.

use std::fmt;
use std::path::PathBuf;
use std::str::FromStr;

/// A camera source.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Source {
    /// FFmpeg's lavfi `testsrc2` pattern (`testsrc` in the config).
    TestPattern,
    /// An RTSP URL (`rtsp://…` or `rtsps://…`).
    Rtsp(String),
    /// A V4L2 capture node (`v4l2:/dev/videoN`).
    V4l2(PathBuf),
}

/// A source string that is none of the accepted forms.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("`{0}` is not a camera source (expected `testsrc`, `rtsp://…` or `v4l2:/dev/videoN`)")]
pub struct SourceError(pub String);

impl FromStr for Source {
    type Err = SourceError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        if s == "testsrc" {
            return Ok(Source::TestPattern);
        }
        let after_scheme = s
            .strip_prefix("rtsp://")
            .or_else(|| s.strip_prefix("rtsps://"));
        if after_scheme.is_some_and(|rest| !rest.is_empty()) {
            return Ok(Source::Rtsp(s.to_owned()));
        }
        if let Some(path) = s.strip_prefix("v4l2:") {
            if path.starts_with("/dev/") && !path.contains("..") {
                return Ok(Source::V4l2(PathBuf::from(path)));
            }
        }
        Err(SourceError(s.to_owned()))
    }
}

impl fmt::Display for Source {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Source::TestPattern => f.write_str("testsrc"),
            Source::Rtsp(url) => f.write_str(url),
            Source::V4l2(path) => write!(f, "v4l2:{}", path.display()),
        }
    }
}

impl Source {
    /// Whether only one process may read the source at a time (V4L2 devices).
    pub fn is_exclusive(&self) -> bool {
        match self {
            Source::V4l2(_) => true,
            Source::TestPattern | Source::Rtsp(_) => false,
        }
    }
}
