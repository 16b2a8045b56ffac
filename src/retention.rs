//! The retention policy set by `set_retention_policy` and applied by `cleanup_old_files`.

use std::time::Duration;

/// Which rule deletes old files.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PolicyType {
    /// Delete files older than `max_age_days`.
    Age,
    /// Delete the oldest files until the total is under `max_size_gb`.
    Size,
    /// Only explicit deletes.
    Manual,
}

impl PolicyType {
    /// Parses the wire name.
    pub fn from_name(name: &str) -> Option<Self> {
        match name {
            "age" => Some(PolicyType::Age),
            "size" => Some(PolicyType::Size),
            "manual" => Some(PolicyType::Manual),
            _ => None,
        }
    }

    /// The wire name.
    pub const fn name(self) -> &'static str {
        match self {
            PolicyType::Age => "age",
            PolicyType::Size => "size",
            PolicyType::Manual => "manual",
        }
    }
}

/// The current policy. Default: manual, disabled.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RetentionPolicy {
    /// The rule.
    pub policy_type: PolicyType,
    /// Age limit in days (age policy).
    pub max_age_days: Option<f64>,
    /// Size limit in GB (size policy).
    pub max_size_gb: Option<f64>,
    /// Whether `cleanup_old_files` deletes anything.
    pub enabled: bool,
}

impl Default for RetentionPolicy {
    fn default() -> Self {
        Self {
            policy_type: PolicyType::Manual,
            max_age_days: None,
            max_size_gb: None,
            enabled: false,
        }
    }
}

impl RetentionPolicy {
    /// The limits `Storage::apply_retention` takes: (max age, max bytes).
    pub fn limits(&self) -> (Option<Duration>, Option<u64>) {
        if !self.enabled {
            return (None, None);
        }
        match self.policy_type {
            PolicyType::Age => (
                self.max_age_days
                    .map(|days| Duration::from_secs_f64(days * 86_400.0)),
                None,
            ),
            PolicyType::Size => (None, self.max_size_gb.map(|gb| (gb * 1e9) as u64)),
            PolicyType::Manual => (None, None),
        }
    }
}
