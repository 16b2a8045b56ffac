//! Requirement tags (`needs-*`): what each one checks, and the built-in ones.
//!
//! A project adds its own the same way tests are registered:
//!
//! ```ignore
//! realtest::inventory::submit! {
//!     realtest::NeedDef { tag: "needs-gpu", hardware: true, check: |_probe| {
//!         if std::path::Path::new("/dev/dri/renderD128").exists() {
//!             realtest::NeedStatus::Met("renderD128".into())
//!         } else {
//!             realtest::NeedStatus::Unmet("no /dev/dri/renderD128".into())
//!         }
//!     }}
//! }
//! ```

use std::collections::{BTreeSet, HashMap};
use std::sync::{Mutex, OnceLock};

use crate::probe::{Probe, ToolStatus};

/// A requirement tag and how to check it.
#[derive(Debug)]
pub struct NeedDef {
    /// The tag, starting with `needs-`.
    pub tag: &'static str,
    /// Whether tests with this tag are hardware tests (they get the `hardware` tag too).
    pub hardware: bool,
    /// Decides from the probe (and anything else it wants to look at) whether the need is met.
    pub check: fn(&Probe) -> NeedStatus,
}

inventory::collect!(NeedDef);

/// The answer of a requirement check.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NeedStatus {
    /// Met; the text says with what (shown by `--check-deps`).
    Met(String),
    /// Not met; the text is the skip reason.
    Unmet(String),
    /// The check itself failed (a tool that does not answer, a node that cannot be opened):
    /// reported as a probe error, distinct from absence.
    ProbeError(String),
}

/// Prefix of every requirement tag.
pub const PREFIX: &str = "needs-";

/// Whether `tag` is a requirement tag.
pub fn is_requirement(tag: &str) -> bool {
    tag.starts_with(PREFIX)
}

/// Whether a test with `tag` is a hardware test.
pub fn implies_hardware(tag: &str) -> bool {
    inventory::iter::<NeedDef>
        .into_iter()
        .any(|def| def.tag == tag && def.hardware)
}

/// Every known requirement tag.
pub fn known() -> BTreeSet<&'static str> {
    inventory::iter::<NeedDef>
        .into_iter()
        .map(|def| def.tag)
        .collect()
}

/// Checks `tag` against the process's probe; each tag is checked once per process.
pub fn status(tag: &str) -> NeedStatus {
    static CACHE: OnceLock<Mutex<HashMap<String, NeedStatus>>> = OnceLock::new();
    let cache = CACHE.get_or_init(Default::default);
    if let Some(status) = cache.lock().unwrap().get(tag) {
        return status.clone();
    }
    let status = match inventory::iter::<NeedDef>
        .into_iter()
        .find(|def| def.tag == tag)
    {
        Some(def) => (def.check)(Probe::get()),
        None => NeedStatus::ProbeError(format!("unknown requirement tag {tag:?}")),
    };
    cache
        .lock()
        .unwrap()
        .insert(tag.to_string(), status.clone());
    status
}

fn tool(status: &ToolStatus) -> Result<String, NeedStatus> {
    match status {
        ToolStatus::Found(info) => Ok(format!("{} {}", info.path.display(), info.version)),
        ToolStatus::Missing { reason } => Err(NeedStatus::Unmet(reason.clone())),
        ToolStatus::Error { reason } => Err(NeedStatus::ProbeError(reason.clone())),
    }
}

fn ffmpeg(probe: &Probe) -> NeedStatus {
    let ffmpeg = match tool(&probe.ffmpeg) {
        Ok(found) => found,
        Err(status) => return status,
    };
    let ffprobe = match tool(&probe.ffprobe) {
        Ok(found) => found,
        Err(status) => return status,
    };
    match probe.ffmpeg.found().and_then(|info| info.libx264) {
        Some(true) => NeedStatus::Met(format!("{ffmpeg} with libx264; {ffprobe}")),
        _ => NeedStatus::Unmet(format!("{ffmpeg} was built without libx264")),
    }
}

fn mediamtx(probe: &Probe) -> NeedStatus {
    match tool(&probe.mediamtx) {
        Ok(found) => NeedStatus::Met(found),
        Err(status) => status,
    }
}

fn v4l2(probe: &Probe) -> NeedStatus {
    let capture: Vec<&str> = probe
        .v4l2
        .nodes
        .iter()
        .filter(|node| node.capture)
        .map(|node| node.path.as_str())
        .collect();
    if !capture.is_empty() {
        NeedStatus::Met(capture.join(", "))
    } else if !probe.v4l2.errors.is_empty() {
        NeedStatus::ProbeError(format!(
            "no readable capture device; {}",
            probe.v4l2.summary()
        ))
    } else {
        NeedStatus::Unmet(format!("no capture device; {}", probe.v4l2.summary()))
    }
}

fn v4l2loopback(probe: &Probe) -> NeedStatus {
    let loopback: Vec<&str> = probe
        .v4l2
        .nodes
        .iter()
        .filter(|node| node.loopback)
        .map(|node| node.path.as_str())
        .collect();
    if loopback.is_empty() {
        NeedStatus::Unmet(format!(
            "no v4l2loopback node (module not loaded?); {}",
            probe.v4l2.summary()
        ))
    } else {
        NeedStatus::Met(loopback.join(", "))
    }
}

fn usb_camera(probe: &Probe) -> NeedStatus {
    let usb: Vec<String> = probe
        .v4l2
        .nodes
        .iter()
        .filter(|node| node.capture && node.usb)
        .map(|node| format!("{} ({})", node.path, node.card))
        .collect();
    if usb.is_empty() {
        NeedStatus::Unmet(format!("no USB capture device; {}", probe.v4l2.summary()))
    } else {
        NeedStatus::Met(usb.join(", "))
    }
}

fn root(probe: &Probe) -> NeedStatus {
    if probe.root {
        NeedStatus::Met("running as root".to_string())
    } else {
        NeedStatus::Unmet("not running as root".to_string())
    }
}

inventory::submit! { NeedDef { tag: "needs-ffmpeg", hardware: false, check: ffmpeg } }
inventory::submit! { NeedDef { tag: "needs-mediamtx", hardware: false, check: mediamtx } }
inventory::submit! { NeedDef { tag: "needs-v4l2", hardware: true, check: v4l2 } }
inventory::submit! { NeedDef { tag: "needs-v4l2loopback", hardware: true, check: v4l2loopback } }
inventory::submit! { NeedDef { tag: "needs-usb-camera", hardware: true, check: usb_camera } }
inventory::submit! { NeedDef { tag: "needs-root", hardware: false, check: root } }
