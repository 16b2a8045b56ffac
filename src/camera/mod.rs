//! Cameras: sources, the registry of known cameras, and V4L2 discovery.

pub mod discovery;
mod registry;
mod source;

pub use registry::{CameraInfo, CameraRegistry, CameraStatus, Capabilities, StreamUrls};
pub use source::{Source, SourceError};
