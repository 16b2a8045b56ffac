//! V4L2 device nodes: what each `/dev/videoN` is (QUERYCAP device caps), and for capture nodes
//! the formats, frame sizes and frame rates they offer.

use std::collections::BTreeMap;
use std::io;
use std::path::{Path, PathBuf};

use serde::Serialize;
use v4l::capability::Flags;
use v4l::frameinterval::FrameIntervalEnum;
use v4l::framesize::FrameSizeEnum;
use v4l::video::Capture;
use v4l::{Device, FourCC};

use crate::process;

/// The driver name v4l2loopback reports.
pub const LOOPBACK_DRIVER: &str = "v4l2 loopback";

/// All V4L2 nodes found, and the nodes that could not be read.
#[derive(Debug, Clone, Default, Serialize)]
pub struct V4l2Probe {
    /// Nodes that answered QUERYCAP, in numeric order.
    pub nodes: Vec<V4l2Node>,
    /// Nodes that exist but could not be opened or queried: `(path, error)`.
    pub errors: Vec<(String, String)>,
}

/// One `/dev/videoN` node.
#[derive(Debug, Clone, Serialize)]
pub struct V4l2Node {
    /// Device path, e.g. `/dev/video0`.
    pub path: String,
    /// Driver (`uvcvideo`, `vivid`, `v4l2 loopback`, …).
    pub driver: String,
    /// Card name.
    pub card: String,
    /// Bus info (`usb-0000:00:14.0-1`, `platform:vivid-000`, …).
    pub bus: String,
    /// Device capability names from QUERYCAP (device_caps).
    pub caps: Vec<String>,
    /// Advertises video capture (single- or multi-planar) and is not a memory-to-memory codec.
    pub capture: bool,
    /// Advertises video output.
    pub output: bool,
    /// A metadata node (capture or output).
    pub metadata: bool,
    /// A memory-to-memory (codec) node.
    pub m2m: bool,
    /// Driven by v4l2loopback.
    pub loopback: bool,
    /// On a USB bus.
    pub usb: bool,
    /// USB `vendor:product` when on USB.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub usb_id: Option<String>,
    /// Its `/dev/v4l/by-id` name, when udev made one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub by_id: Option<String>,
    /// Capture formats (empty for nodes that do not capture).
    pub formats: Vec<FormatInfo>,
}

/// A pixel format a capture node offers.
#[derive(Debug, Clone, Serialize)]
pub struct FormatInfo {
    /// FourCC, e.g. `YUYV`, `MJPG`.
    pub fourcc: String,
    /// The driver's description.
    pub description: String,
    /// Frame sizes; for a stepwise range, its smallest and largest size.
    pub sizes: Vec<SizeInfo>,
}

/// A frame size and the frame rates offered at it.
#[derive(Debug, Clone, Serialize)]
pub struct SizeInfo {
    /// Width in pixels.
    pub width: u32,
    /// Height in pixels.
    pub height: u32,
    /// Frame rates (frames per second); for a stepwise range, its ends.
    pub fps: Vec<f64>,
}

impl V4l2Probe {
    /// What was found, for skip reasons: `found /dev/video0 (capture, vivid), /dev/video1
    /// (unreadable: …)` or `no /dev/video* nodes`.
    pub fn summary(&self) -> String {
        let mut found: Vec<String> = self
            .nodes
            .iter()
            .map(|node| format!("{} ({}, {})", node.path, node.role(), node.driver))
            .collect();
        found.extend(
            self.errors
                .iter()
                .map(|(path, error)| format!("{path} (unreadable: {error})")),
        );
        if found.is_empty() {
            "no /dev/video* nodes".to_string()
        } else {
            format!("found {}", found.join(", "))
        }
    }
}

impl V4l2Node {
    /// What the node is, in a few words: `capture`, `output only`, `metadata`, `codec (m2m)`, …
    pub fn role(&self) -> &'static str {
        match (self.capture, self.m2m, self.metadata, self.output) {
            (_, true, _, _) => "codec (m2m)",
            (true, false, _, _) => "capture",
            (false, false, true, _) => "metadata",
            (false, false, false, true) => "output only",
            (false, false, false, false) => "no video capture",
        }
    }

    /// Whether the node offers `fourcc` at `width`×`height` (any size when `None`).
    pub fn offers(&self, fourcc: &str, size: Option<(u32, u32)>) -> bool {
        self.formats.iter().any(|format| {
            format.fourcc == fourcc
                && size
                    .is_none_or(|(w, h)| format.sizes.iter().any(|s| s.width == w && s.height == h))
        })
    }
}

/// Reads every `/dev/videoN` node.
pub fn scan() -> V4l2Probe {
    scan_dir(Path::new("/dev"))
}

fn scan_dir(dev: &Path) -> V4l2Probe {
    let mut probe = V4l2Probe::default();
    let Ok(entries) = std::fs::read_dir(dev) else {
        return probe;
    };
    let mut numbers: Vec<u32> = entries
        .filter_map(|entry| entry.ok())
        .filter_map(|entry| {
            let name = entry.file_name().into_string().ok()?;
            name.strip_prefix("video")?.parse().ok()
        })
        .collect();
    numbers.sort_unstable();
    let by_id = by_id_names();
    for number in numbers {
        let path = dev.join(format!("video{number}"));
        // QUERYCAP strings are decoded with unwrap() inside the v4l crate: keep a malformed
        // answer from taking the harness down.
        match process::without_forks(|| std::panic::catch_unwind(|| read_node(&path))) {
            Ok(Ok(mut node)) => {
                node.by_id = by_id.get(&path).cloned();
                probe.nodes.push(node);
            }
            Ok(Err(err)) => probe
                .errors
                .push((path.display().to_string(), describe_error(&err))),
            Err(_) => probe.errors.push((
                path.display().to_string(),
                "QUERYCAP returned undecodable strings".to_string(),
            )),
        }
    }
    probe
}

fn describe_error(err: &io::Error) -> String {
    match err.kind() {
        io::ErrorKind::PermissionDenied => {
            format!("{err} (is the user in the 'video' group?)")
        }
        _ => err.to_string(),
    }
}

fn read_node(path: &Path) -> io::Result<V4l2Node> {
    let device = Device::with_path(path)?;
    let caps = device.query_caps()?;
    let flags = caps.capabilities;
    let m2m = flags.intersects(Flags::VIDEO_M2M | Flags::VIDEO_M2M_MPLANE);
    let capture = !m2m && flags.intersects(Flags::VIDEO_CAPTURE | Flags::VIDEO_CAPTURE_MPLANE);
    let output = flags.intersects(Flags::VIDEO_OUTPUT | Flags::VIDEO_OUTPUT_MPLANE);
    let metadata = flags.intersects(Flags::META_CAPTURE | Flags::META_OUTPUT);
    let usb = caps.bus.starts_with("usb-");
    let formats = if capture {
        read_formats(&device)?
    } else {
        Vec::new()
    };
    Ok(V4l2Node {
        path: path.display().to_string(),
        loopback: caps.driver == LOOPBACK_DRIVER,
        usb_id: if usb { usb_id(path) } else { None },
        driver: caps.driver,
        card: caps.card,
        bus: caps.bus,
        caps: flag_names(flags),
        capture,
        output,
        metadata,
        m2m,
        usb,
        by_id: None,
        formats,
    })
}

/// The device capabilities worth naming (v4l's bitflags 1.x cannot list names itself).
const FLAG_NAMES: [(Flags, &str); 12] = [
    (Flags::VIDEO_CAPTURE, "VIDEO_CAPTURE"),
    (Flags::VIDEO_CAPTURE_MPLANE, "VIDEO_CAPTURE_MPLANE"),
    (Flags::VIDEO_OUTPUT, "VIDEO_OUTPUT"),
    (Flags::VIDEO_OUTPUT_MPLANE, "VIDEO_OUTPUT_MPLANE"),
    (Flags::VIDEO_M2M, "VIDEO_M2M"),
    (Flags::VIDEO_M2M_MPLANE, "VIDEO_M2M_MPLANE"),
    (Flags::META_CAPTURE, "META_CAPTURE"),
    (Flags::META_OUTPUT, "META_OUTPUT"),
    (Flags::VBI_CAPTURE, "VBI_CAPTURE"),
    (Flags::SDR_CAPTURE, "SDR_CAPTURE"),
    (Flags::TOUCH, "TOUCH"),
    (Flags::STREAMING, "STREAMING"),
];

fn flag_names(flags: Flags) -> Vec<String> {
    FLAG_NAMES
        .iter()
        .filter(|(flag, _)| flags.contains(*flag))
        .map(|(_, name)| name.to_string())
        .collect()
}

fn read_formats(device: &Device) -> io::Result<Vec<FormatInfo>> {
    let mut formats = Vec::new();
    for description in device.enum_formats()? {
        let fourcc = description.fourcc;
        let mut sizes = Vec::new();
        // Some drivers (v4l2loopback before a writer) answer EINVAL here: no sizes, not an error.
        for size in device.enum_framesizes(fourcc).unwrap_or_default() {
            let ends = match size.size {
                FrameSizeEnum::Discrete(d) => vec![(d.width, d.height)],
                FrameSizeEnum::Stepwise(s) => {
                    vec![(s.min_width, s.min_height), (s.max_width, s.max_height)]
                }
            };
            for (width, height) in ends {
                sizes.push(SizeInfo {
                    width,
                    height,
                    fps: frame_rates(device, fourcc, width, height),
                });
            }
        }
        formats.push(FormatInfo {
            fourcc: fourcc_text(fourcc),
            description: description.description,
            sizes,
        });
    }
    Ok(formats)
}

fn frame_rates(device: &Device, fourcc: FourCC, width: u32, height: u32) -> Vec<f64> {
    let fps = |f: v4l::Fraction| {
        if f.numerator == 0 {
            0.0
        } else {
            f64::from(f.denominator) / f64::from(f.numerator)
        }
    };
    device
        .enum_frameintervals(fourcc, width, height)
        .unwrap_or_default()
        .into_iter()
        .flat_map(|interval| match interval.interval {
            FrameIntervalEnum::Discrete(f) => vec![fps(f)],
            FrameIntervalEnum::Stepwise(s) => vec![fps(s.max), fps(s.min)],
        })
        .collect()
}

/// Bit 31 of a V4L2 FourCC marks the big-endian variant of the format (`v4l2_fourcc_be`).
const BIG_ENDIAN: u32 = 1 << 31;

/// `YUYV`, or `Y16 -BE` for a big-endian variant; hex when the code is not printable.
fn fourcc_text(fourcc: FourCC) -> String {
    let code = u32::from(fourcc);
    let (base, suffix) = if code & BIG_ENDIAN != 0 {
        (FourCC::from(code & !BIG_ENDIAN), "-BE")
    } else {
        (fourcc, "")
    };
    match base.str() {
        // As v4l2-ctl prints them: `Y16 -BE` keeps the padding space before the suffix.
        Ok(text) if text.chars().all(|c| c.is_ascii_graphic() || c == ' ') => {
            if suffix.is_empty() {
                text.trim_end().to_string()
            } else {
                format!("{text}{suffix}")
            }
        }
        _ => format!("{code:08x}"),
    }
}

/// `/dev/v4l/by-id` link targets → link names.
fn by_id_names() -> BTreeMap<PathBuf, String> {
    let Ok(entries) = std::fs::read_dir("/dev/v4l/by-id") else {
        return BTreeMap::new();
    };
    entries
        .filter_map(|entry| entry.ok())
        .filter_map(|entry| {
            let target = std::fs::canonicalize(entry.path()).ok()?;
            Some((target, entry.file_name().to_string_lossy().into_owned()))
        })
        .collect()
}

/// USB `idVendor:idProduct` of the device behind a node, from sysfs.
fn usb_id(path: &Path) -> Option<String> {
    let name = path.file_name()?.to_str()?;
    let device = std::fs::canonicalize(format!("/sys/class/video4linux/{name}/device")).ok()?;
    device.ancestors().take(4).find_map(|dir| {
        let vendor = std::fs::read_to_string(dir.join("idVendor")).ok()?;
        let product = std::fs::read_to_string(dir.join("idProduct")).ok()?;
        Some(format!("{}:{}", vendor.trim(), product.trim()))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fourcc_names_include_big_endian_variants() {
        assert_eq!(fourcc_text(FourCC::new(b"YUYV")), "YUYV");
        assert_eq!(fourcc_text(FourCC::new(b"Y16 ")), "Y16");
        let y16_be = u32::from(FourCC::new(b"Y16 ")) | BIG_ENDIAN;
        assert_eq!(fourcc_text(FourCC::from(y16_be)), "Y16 -BE");
        assert_eq!(fourcc_text(FourCC::from(0x0000_0001)), "00000001");
    }
}
