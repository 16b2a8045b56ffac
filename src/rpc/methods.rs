//! The method table: names and the role each method requires.

use crate::auth::Role;

/// Every JSON-RPC method of the service.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Method {
    /// `ping` → `"pong"`, no auth.
    Ping,
    /// `authenticate {auth_token}`, no auth.
    Authenticate,
    /// `get_camera_list`
    GetCameraList,
    /// `get_camera_status {device}`
    GetCameraStatus,
    /// `get_camera_capabilities {device}`
    GetCameraCapabilities,
    /// `get_streams`
    GetStreams,
    /// `list_recordings {limit?, offset?}`
    ListRecordings,
    /// `list_snapshots {limit?, offset?}`
    ListSnapshots,
    /// `get_recording_info {filename}`
    GetRecordingInfo,
    /// `get_snapshot_info {filename}`
    GetSnapshotInfo,
    /// `take_snapshot {device, filename?, format?, quality?}`
    TakeSnapshot,
    /// `start_recording {device, duration?}`
    StartRecording,
    /// `stop_recording {device}`
    StopRecording,
    /// `delete_recording {filename}`
    DeleteRecording,
    /// `delete_snapshot {filename}`
    DeleteSnapshot,
    /// `get_storage_info`
    GetStorageInfo,
    /// `set_retention_policy {policy_type, max_age_days?, max_size_gb?, enabled}`
    SetRetentionPolicy,
    /// `cleanup_old_files`
    CleanupOldFiles,
    /// `get_status`
    GetStatus,
    /// `get_metrics`
    GetMetrics,
    /// `get_server_info`
    GetServerInfo,
}

impl Method {
    /// Every method, in documentation order.
    pub const ALL: [Method; 21] = [
        Method::Ping,
        Method::Authenticate,
        Method::GetCameraList,
        Method::GetCameraStatus,
        Method::GetCameraCapabilities,
        Method::GetStreams,
        Method::ListRecordings,
        Method::ListSnapshots,
        Method::GetRecordingInfo,
        Method::GetSnapshotInfo,
        Method::TakeSnapshot,
        Method::StartRecording,
        Method::StopRecording,
        Method::DeleteRecording,
        Method::DeleteSnapshot,
        Method::GetStorageInfo,
        Method::SetRetentionPolicy,
        Method::CleanupOldFiles,
        Method::GetStatus,
        Method::GetMetrics,
        Method::GetServerInfo,
    ];

    /// The wire name.
    pub const fn name(self) -> &'static str {
        match self {
            Method::Ping => "ping",
            Method::Authenticate => "authenticate",
            Method::GetCameraList => "get_camera_list",
            Method::GetCameraStatus => "get_camera_status",
            Method::GetCameraCapabilities => "get_camera_capabilities",
            Method::GetStreams => "get_streams",
            Method::ListRecordings => "list_recordings",
            Method::ListSnapshots => "list_snapshots",
            Method::GetRecordingInfo => "get_recording_info",
            Method::GetSnapshotInfo => "get_snapshot_info",
            Method::TakeSnapshot => "take_snapshot",
            Method::StartRecording => "start_recording",
            Method::StopRecording => "stop_recording",
            Method::DeleteRecording => "delete_recording",
            Method::DeleteSnapshot => "delete_snapshot",
            Method::GetStorageInfo => "get_storage_info",
            Method::SetRetentionPolicy => "set_retention_policy",
            Method::CleanupOldFiles => "cleanup_old_files",
            Method::GetStatus => "get_status",
            Method::GetMetrics => "get_metrics",
            Method::GetServerInfo => "get_server_info",
        }
    }

    /// Looks a method up by wire name.
    pub fn from_name(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|m| m.name() == name)
    }

    /// The lowest role allowed to call it; `None` means no authentication needed.
    pub const fn required_role(self) -> Option<Role> {
        match self {
            Method::Ping | Method::Authenticate => None,
            Method::GetCameraList
            | Method::GetCameraStatus
            | Method::GetCameraCapabilities
            | Method::GetStreams
            | Method::ListRecordings
            | Method::ListSnapshots
            | Method::GetRecordingInfo
            | Method::GetSnapshotInfo => Some(Role::Viewer),
            Method::TakeSnapshot
            | Method::StartRecording
            | Method::StopRecording
            | Method::DeleteRecording
            | Method::DeleteSnapshot => Some(Role::Operator),
            Method::GetStorageInfo
            | Method::SetRetentionPolicy
            | Method::CleanupOldFiles
            | Method::GetStatus
            | Method::GetMetrics
            | Method::GetServerInfo => Some(Role::Admin),
        }
    }
}
