//! MediaMTX: the control API client, the config file of a managed instance, the supervisor
//! that runs it and keeps one path per camera registered, and the supported version range.

mod client;
mod config_file;
mod paths;
mod supervisor;
mod version;

pub use client::{
    ErrorReply, GlobalFeatures, InstanceInfo, MediamtxClient, MediamtxError, PathList, PathState,
};
pub use config_file::{render_config, ManagedPorts};
pub use paths::path_config;
pub use supervisor::{
    find_binary, PathSet, RenderConfig, Supervisor, SupervisorError, SupervisorSettings,
    STOP_SIGNAL,
};
pub use version::{
    check_reported, check_supported, check_version_output, supported_range, ReportedVersion,
    UnsupportedVersion, Version, NEWEST_SUPPORTED_MINOR, OLDEST_SUPPORTED,
};
