//! Bench inventories (`--bench FILE`): the cameras a lab bench must have and the capabilities its
//! runs require. Format: `hardware/benches/README.md`.

use std::path::Path;

use serde::Deserialize;

use crate::outcome::Location;
use crate::probe::{Probe, V4l2Node};
use crate::workspace;

/// A bench inventory file.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Bench {
    /// Name, shown in JUnit suite properties.
    pub name: String,
    /// Free text.
    #[serde(default)]
    pub description: String,
    /// Capabilities that must be present (`needs-v4l2` or `v4l2`): a skip for them is a failure.
    #[serde(default)]
    pub require: Vec<String>,
    /// Cameras that must be present.
    #[serde(default, rename = "camera")]
    pub cameras: Vec<BenchCamera>,
}

/// One expected camera; every field given must match the same node.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BenchCamera {
    /// Label used in messages and test names.
    pub id: String,
    /// Driver name from QUERYCAP (`uvcvideo`, `vivid`, `v4l2 loopback`).
    pub driver: Option<String>,
    /// Card name from QUERYCAP.
    pub card: Option<String>,
    /// Bus info prefix from QUERYCAP (`usb-0000:00:14.0-1`).
    pub bus: Option<String>,
    /// USB `vendor:product` (hex, as in `lsusb`).
    pub usb: Option<String>,
    /// Name under `/dev/v4l/by-id`.
    pub by_id: Option<String>,
    /// Must advertise video capture now (default true; false for an idle loopback node).
    #[serde(default = "yes")]
    pub capture: bool,
    /// FourCCs it must offer.
    #[serde(default)]
    pub formats: Vec<String>,
    /// The bench file and the line of this camera's `[[camera]]` header (for reports).
    #[serde(skip)]
    pub location: Option<Location>,
}

fn yes() -> bool {
    true
}

impl Bench {
    /// Reads and parses a bench file; errors name the file and the problem.
    pub fn load(path: &Path) -> Result<Bench, String> {
        let text = std::fs::read_to_string(path)
            .map_err(|err| format!("cannot read bench file {}: {err}", path.display()))?;
        let mut bench: Bench =
            toml::from_str(&text).map_err(|err| format!("bench file {}: {err}", path.display()))?;
        let file = workspace::relative(path);
        // TOML keeps an array of tables in order: the n-th `[[camera]]` header is camera n.
        let headers = text
            .lines()
            .enumerate()
            .filter(|(_, line)| line.trim_start().starts_with("[[camera]]"))
            .map(|(index, _)| index as u32 + 1);
        for (camera, line) in bench.cameras.iter_mut().zip(headers) {
            camera.location = Some(Location {
                file: file.clone(),
                line,
            });
        }
        Ok(bench)
    }
}

impl BenchCamera {
    fn identity_matches(&self, node: &V4l2Node) -> bool {
        self.driver.as_ref().is_none_or(|d| *d == node.driver)
            && self.card.as_ref().is_none_or(|c| *c == node.card)
            && self
                .bus
                .as_ref()
                .is_none_or(|b| node.bus.starts_with(b.as_str()))
            && self.usb.as_ref().is_none_or(|u| {
                node.usb_id
                    .as_ref()
                    .is_some_and(|id| id.eq_ignore_ascii_case(u))
            })
            && self
                .by_id
                .as_ref()
                .is_none_or(|b| node.by_id.as_ref() == Some(b))
    }

    /// The node that is this camera, or why none is.
    pub fn find<'a>(&self, probe: &'a Probe) -> Result<&'a V4l2Node, String> {
        let same: Vec<&V4l2Node> = probe
            .v4l2
            .nodes
            .iter()
            .filter(|node| self.identity_matches(node))
            .collect();
        if same.is_empty() {
            let found: Vec<String> = probe
                .v4l2
                .nodes
                .iter()
                .map(|n| {
                    format!(
                        "{} (driver {:?}, card {:?}, bus {:?})",
                        n.path, n.driver, n.card, n.bus
                    )
                })
                .collect();
            return Err(format!(
                "bench camera {:?} is not present; found {}",
                self.id,
                if found.is_empty() {
                    "no /dev/video* nodes".to_string()
                } else {
                    found.join(", ")
                }
            ));
        }
        let mut problems = Vec::new();
        for node in &same {
            if self.capture && !node.capture {
                problems.push(format!(
                    "{} does not advertise video capture ({})",
                    node.path,
                    node.role()
                ));
                continue;
            }
            let missing: Vec<&str> = self
                .formats
                .iter()
                .filter(|f| !node.offers(f, None))
                .map(String::as_str)
                .collect();
            if missing.is_empty() {
                return Ok(node);
            }
            problems.push(format!(
                "{} lacks format(s) {}",
                node.path,
                missing.join(", ")
            ));
        }
        Err(format!(
            "bench camera {:?}: {}",
            self.id,
            problems.join("; ")
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_documented_format_and_rejects_typos() {
        let bench: Bench = toml::from_str(
            r#"
            name = "lab-1"
            require = ["needs-v4l2"]
            [[camera]]
            id = "logitech"
            usb = "046d:0825"
            formats = ["YUYV", "MJPG"]
            "#,
        )
        .unwrap();
        assert_eq!(bench.cameras.len(), 1);
        assert!(bench.cameras[0].capture);
        let err =
            toml::from_str::<Bench>("name = \"x\"\n[[camera]]\nid = \"a\"\ndriverr = \"vivid\"\n")
                .unwrap_err();
        assert!(err.to_string().contains("driverr"), "{err}");
    }
}
