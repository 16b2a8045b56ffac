//! MediaMTX: the control API client, the config file of a managed instance, and the supervisor
//! that runs it and keeps one path per camera registered.

mod client;
mod config_file;
mod paths;
mod supervisor;

pub use client::{MediamtxClient, MediamtxError, PathState};
pub use config_file::{parse_version, render_config, ManagedPorts};
pub use paths::path_config;
pub use supervisor::{find_binary, PathSet, Supervisor, SupervisorError, SupervisorSettings};
