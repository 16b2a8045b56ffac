//! Cameras: sources, the registry of known cameras, V4L2 discovery, and the presence of RTSP
//! cameras (and of every camera while MediaMTX is down).

pub mod discovery;
pub mod presence;
mod registry;
mod source;

pub use registry::{CameraInfo, CameraRegistry, CameraStatus, Capabilities, StreamUrls};
pub use source::{Source, SourceError};
