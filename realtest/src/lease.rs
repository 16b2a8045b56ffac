//! Device leases: a test that needs a camera gets one matching device for itself. The lease is a
//! `flock` on a lock file per device, so it is exclusive across threads *and* processes (parallel
//! tests, concurrent nextest processes).

use std::fmt;
use std::fs::{File, OpenOptions};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use nix::fcntl::{Flock, FlockArg};

use crate::probe::{Probe, V4l2Node};
use crate::Skip;

const RETRY: Duration = Duration::from_millis(50);

/// What a test needs from a camera. Unset fields match anything.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct CameraRequirements {
    /// Pixel format FourCC, e.g. `YUYV` or `MJPG`.
    pub fourcc: Option<String>,
    /// Frame size offered for that format.
    pub size: Option<(u32, u32)>,
    /// Lowest acceptable frame rate at that size.
    pub min_fps: Option<f64>,
    /// Only v4l2loopback nodes (`Some(true)`) or only real drivers (`Some(false)`).
    pub loopback: Option<bool>,
    /// Only the node at this path (`/dev/video0`), e.g. the one another lease holds.
    pub path: Option<String>,
}

impl CameraRequirements {
    /// Any capture device.
    pub fn any() -> Self {
        Self::default()
    }

    /// Requires pixel format `fourcc`.
    pub fn fourcc(mut self, fourcc: &str) -> Self {
        self.fourcc = Some(fourcc.to_string());
        self
    }

    /// Requires frame size `width`×`height`.
    pub fn size(mut self, width: u32, height: u32) -> Self {
        self.size = Some((width, height));
        self
    }

    /// Requires at least `fps` frames per second.
    pub fn min_fps(mut self, fps: f64) -> Self {
        self.min_fps = Some(fps);
        self
    }

    /// Requires (or excludes) v4l2loopback nodes.
    pub fn loopback(mut self, loopback: bool) -> Self {
        self.loopback = Some(loopback);
        self
    }

    /// Requires the node at `path`.
    pub fn path(mut self, path: &str) -> Self {
        self.path = Some(path.to_string());
        self
    }

    /// Whether `node` meets the requirements.
    pub fn matches(&self, node: &V4l2Node) -> bool {
        if !node.capture
            || self.loopback.is_some_and(|l| l != node.loopback)
            || self.path.as_ref().is_some_and(|p| *p != node.path)
        {
            return false;
        }
        let fps_ok = |fps: &[f64]| self.min_fps.is_none_or(|min| fps.iter().any(|f| *f >= min));
        let needs_format = self.fourcc.is_some() || self.size.is_some() || self.min_fps.is_some();
        !needs_format
            || node.formats.iter().any(|format| {
                self.fourcc.as_ref().is_none_or(|f| *f == format.fourcc)
                    && format.sizes.iter().any(|size| {
                        self.size
                            .is_none_or(|(w, h)| size.width == w && size.height == h)
                            && fps_ok(&size.fps)
                    })
            })
    }
}

impl fmt::Display for CameraRequirements {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut parts = Vec::new();
        if let Some(fourcc) = &self.fourcc {
            parts.push(fourcc.clone());
        }
        if let Some((w, h)) = self.size {
            parts.push(format!("{w}x{h}"));
        }
        if let Some(fps) = self.min_fps {
            parts.push(format!(">= {fps} fps"));
        }
        match self.loopback {
            Some(true) => parts.push("v4l2loopback".to_string()),
            Some(false) => parts.push("not v4l2loopback".to_string()),
            None => {}
        }
        if let Some(path) = &self.path {
            parts.push(format!("at {path}"));
        }
        if parts.is_empty() {
            write!(f, "any capture format")
        } else {
            write!(f, "{}", parts.join(" "))
        }
    }
}

/// An exclusive hold on one capture device, released on drop.
#[derive(Debug)]
pub struct CameraLease {
    node: V4l2Node,
    _lock: Flock<File>,
}

impl CameraLease {
    /// The leased node as the probe saw it.
    pub fn node(&self) -> &V4l2Node {
        &self.node
    }

    /// Its device path, e.g. `/dev/video0`.
    pub fn path(&self) -> &Path {
        Path::new(&self.node.path)
    }

    /// `"/dev/video0 (vivid, Vivid webcam)"`.
    pub fn describe(&self) -> String {
        format!(
            "{} ({}, {})",
            self.node.path, self.node.driver, self.node.card
        )
    }
}

/// An exclusive hold on a named resource (a fixed port, a singleton service), released on drop.
#[derive(Debug)]
pub struct ResourceLease {
    name: String,
    _lock: Flock<File>,
}

impl ResourceLease {
    /// The resource's name.
    pub fn name(&self) -> &str {
        &self.name
    }
}

/// The lock file for `key`; device keys come from their path (`dev-video0`), resource keys are
/// `resource-<name>`.
fn lock_path(key: &str) -> PathBuf {
    std::env::temp_dir()
        .join("realtest-leases")
        .join(format!("{key}.lock"))
}

fn device_key(node: &V4l2Node) -> String {
    node.path.trim_start_matches('/').replace('/', "-")
}

fn try_lock(key: &str) -> anyhow::Result<Option<Flock<File>>> {
    let path = lock_path(key);
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)?;
    }
    let file = OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&path)
        .map_err(|err| anyhow::anyhow!("failed to open lease file {}: {err}", path.display()))?;
    match Flock::lock(file, FlockArg::LockExclusiveNonblock) {
        Ok(lock) => Ok(Some(lock)),
        Err((_, nix::errno::Errno::EWOULDBLOCK)) => Ok(None),
        Err((_, errno)) => Err(anyhow::anyhow!(
            "failed to lock {}: {errno}",
            path.display()
        )),
    }
}

/// Locks the first free key of `keys`, retrying until `deadline`; returns its index.
fn lock_any(
    keys: &[String],
    deadline: Instant,
    what: &str,
) -> anyhow::Result<(usize, Flock<File>)> {
    loop {
        for (index, key) in keys.iter().enumerate() {
            if let Some(lock) = try_lock(key)? {
                return Ok((index, lock));
            }
        }
        if Instant::now() >= deadline {
            anyhow::bail!("{what} stayed leased by other tests until this test's timeout");
        }
        std::thread::sleep(RETRY);
    }
}

fn lease_one_of(
    candidates: Vec<&V4l2Node>,
    deadline: Instant,
    what: &str,
) -> anyhow::Result<CameraLease> {
    let keys: Vec<String> = candidates.iter().map(|node| device_key(node)).collect();
    let paths: Vec<&str> = candidates.iter().map(|n| n.path.as_str()).collect();
    let (index, lock) = lock_any(
        &keys,
        deadline,
        &format!("every {what} ({})", paths.join(", ")),
    )?;
    Ok(CameraLease {
        node: candidates[index].clone(),
        _lock: lock,
    })
}

/// Leases a matching capture node, waiting until `deadline` while all matching ones are leased.
pub fn acquire(
    probe: &Probe,
    requirements: &CameraRequirements,
    deadline: Instant,
) -> anyhow::Result<CameraLease> {
    let candidates: Vec<&V4l2Node> = probe
        .v4l2
        .nodes
        .iter()
        .filter(|node| requirements.matches(node))
        .collect();
    if candidates.is_empty() {
        return Err(Skip::new(
            "needs-v4l2",
            format!(
                "no capture device offers {requirements}; {}",
                probe.v4l2.summary()
            ),
        )
        .into());
    }
    lease_one_of(
        candidates,
        deadline,
        &format!("device matching {requirements}"),
    )
}

/// Leases a v4l2loopback node whatever it advertises now (one created with `exclusive_caps=1`
/// advertises capture only while a writer streams into it), for a test that writes into it.
/// Shares the per-device locks with [`acquire`], so a node is never handed out twice.
pub fn acquire_loopback(probe: &Probe, deadline: Instant) -> anyhow::Result<CameraLease> {
    let candidates: Vec<&V4l2Node> = probe.v4l2.nodes.iter().filter(|n| n.loopback).collect();
    if candidates.is_empty() {
        return Err(Skip::new(
            "needs-v4l2loopback",
            format!("no v4l2loopback node; {}", probe.v4l2.summary()),
        )
        .into());
    }
    lease_one_of(candidates, deadline, "v4l2loopback node")
}

/// Leases the named resource, waiting until `deadline` while another test holds it.
pub fn acquire_resource(name: &str, deadline: Instant) -> anyhow::Result<ResourceLease> {
    anyhow::ensure!(
        !name.is_empty()
            && name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.')),
        "resource name {name:?} must be letters, digits, '-', '_' or '.'"
    );
    let (_, lock) = lock_any(
        &[format!("resource-{name}")],
        deadline,
        &format!("resource {name:?}"),
    )?;
    Ok(ResourceLease {
        name: name.to_string(),
        _lock: lock,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::probe::{FormatInfo, SizeInfo, ToolStatus, V4l2Probe};

    fn node(path: &str, loopback: bool) -> V4l2Node {
        V4l2Node {
            path: path.to_string(),
            driver: if loopback { "v4l2 loopback" } else { "vivid" }.to_string(),
            card: "card".to_string(),
            bus: "platform:test".to_string(),
            caps: vec!["VIDEO_CAPTURE".to_string()],
            capture: true,
            output: false,
            metadata: false,
            m2m: false,
            loopback,
            usb: false,
            usb_id: None,
            by_id: None,
            formats: vec![FormatInfo {
                fourcc: "YUYV".to_string(),
                description: "YUYV 4:2:2".to_string(),
                sizes: vec![SizeInfo {
                    width: 640,
                    height: 480,
                    fps: vec![30.0, 15.0],
                }],
            }],
        }
    }

    /// A probe that lists `nodes` (paths that do not exist: only the lease files are touched).
    fn probe(nodes: Vec<V4l2Node>) -> Probe {
        let missing = || ToolStatus::Missing {
            reason: "not needed".to_string(),
        };
        Probe {
            kernel: "test".to_string(),
            root: false,
            ffmpeg: missing(),
            ffprobe: missing(),
            mediamtx: missing(),
            v4l2: V4l2Probe {
                nodes,
                errors: Vec::new(),
            },
            took: Duration::ZERO,
        }
    }

    #[test]
    fn requirements_match_format_size_rate_and_kind() {
        let camera = node("/dev/video0", false);
        assert!(CameraRequirements::any().matches(&camera));
        assert!(CameraRequirements::any()
            .fourcc("YUYV")
            .size(640, 480)
            .min_fps(30.0)
            .matches(&camera));
        assert!(!CameraRequirements::any().fourcc("MJPG").matches(&camera));
        assert!(!CameraRequirements::any().size(1280, 720).matches(&camera));
        assert!(!CameraRequirements::any().min_fps(60.0).matches(&camera));
        assert!(!CameraRequirements::any().loopback(true).matches(&camera));
        let mut output_only = node("/dev/video1", true);
        output_only.capture = false;
        assert!(!CameraRequirements::any().matches(&output_only));
    }

    #[test]
    fn a_lease_is_exclusive_until_dropped() {
        let path = format!("/dev/realtest-selftest-{}", std::process::id());
        let probe = probe(vec![node(&path, false)]);
        let soon = || Instant::now() + Duration::from_millis(200);
        let first = acquire(&probe, &CameraRequirements::any(), soon()).unwrap();
        assert_eq!(first.path(), Path::new(&path));
        let err = acquire(&probe, &CameraRequirements::any(), soon()).unwrap_err();
        assert!(
            err.to_string().contains("stayed leased by other tests"),
            "{err}"
        );
        drop(first);
        let again = acquire(&probe, &CameraRequirements::any(), soon()).unwrap();
        drop(again);
        let _ = std::fs::remove_file(lock_path(&device_key(&probe.v4l2.nodes[0])));
    }

    #[test]
    fn no_matching_device_is_a_skip_with_the_reason() {
        let probe = probe(vec![node("/dev/video7", false)]);
        let err = acquire(
            &probe,
            &CameraRequirements::any().fourcc("MJPG"),
            Instant::now(),
        )
        .unwrap_err();
        let skip = err.downcast::<Skip>().unwrap();
        assert_eq!(skip.need, "needs-v4l2");
        assert_eq!(
            skip.reason,
            "no capture device offers MJPG; found /dev/video7 (capture, vivid)"
        );
    }

    #[test]
    fn a_named_resource_is_exclusive_until_dropped() {
        let name = format!("selftest-{}", std::process::id());
        let soon = || Instant::now() + Duration::from_millis(200);
        let first = acquire_resource(&name, soon()).unwrap();
        assert_eq!(first.name(), name);
        let err = acquire_resource(&name, soon()).unwrap_err();
        assert!(
            err.to_string()
                .contains(&format!("resource {name:?} stayed leased")),
            "{err}"
        );
        drop(first);
        drop(acquire_resource(&name, soon()).unwrap());
        let _ = std::fs::remove_file(lock_path(&format!("resource-{name}")));
        let err = acquire_resource("../etc", soon()).unwrap_err();
        assert!(err.to_string().contains("must be letters"), "{err}");
    }
}
