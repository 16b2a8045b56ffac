//! How the probe is shown: the `--check-deps` table and the JUnit suite properties.

use std::fmt::Write;

use super::{Probe, ToolStatus, V4l2Node};

fn tool_line(status: &ToolStatus) -> String {
    match status {
        ToolStatus::Found(info) => {
            let mut line = format!("{} ({})", info.version, info.path.display());
            match info.libx264 {
                Some(true) => line.push_str(", libx264"),
                Some(false) => line.push_str(", NO libx264"),
                None => {}
            }
            line
        }
        ToolStatus::Missing { reason } => format!("missing: {reason}"),
        ToolStatus::Error { reason } => format!("PROBE ERROR: {reason}"),
    }
}

fn node_summary(node: &V4l2Node) -> String {
    let mut line = format!(
        "{} {} [{}] driver={} card={:?} bus={}",
        node.path,
        node.role(),
        node.caps.join(","),
        node.driver,
        node.card,
        node.bus
    );
    if node.loopback {
        line.push_str(" loopback");
    }
    if let Some(id) = &node.usb_id {
        let _ = write!(line, " usb={id}");
    }
    if let Some(by_id) = &node.by_id {
        let _ = write!(line, " by-id={by_id}");
    }
    line
}

pub fn table(probe: &Probe) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "kernel    {}", probe.kernel);
    let _ = writeln!(out, "root      {}", if probe.root { "yes" } else { "no" });
    let _ = writeln!(out, "ffmpeg    {}", tool_line(&probe.ffmpeg));
    let _ = writeln!(out, "ffprobe   {}", tool_line(&probe.ffprobe));
    let _ = writeln!(out, "mediamtx  {}", tool_line(&probe.mediamtx));
    if probe.v4l2.nodes.is_empty() && probe.v4l2.errors.is_empty() {
        let _ = writeln!(out, "v4l2      no /dev/video* nodes");
    }
    for node in &probe.v4l2.nodes {
        let _ = writeln!(out, "v4l2      {}", node_summary(node));
        for format in &node.formats {
            let sizes: Vec<String> = format
                .sizes
                .iter()
                .map(|s| {
                    let fps: Vec<String> = s.fps.iter().map(|f| format!("{f:.0}")).collect();
                    format!("{}x{}@{}", s.width, s.height, fps.join("/"))
                })
                .collect();
            let _ = writeln!(
                out,
                "            {} ({}): {}",
                format.fourcc,
                format.description,
                sizes.join(" ")
            );
        }
    }
    for (path, error) in &probe.v4l2.errors {
        let _ = writeln!(out, "v4l2      {path} PROBE ERROR: {error}");
    }
    let _ = writeln!(
        out,
        "probe     took {:.1} ms",
        probe.took.as_secs_f64() * 1000.0
    );
    out
}

pub fn properties(probe: &Probe) -> Vec<(String, String)> {
    let mut properties = vec![
        ("kernel".to_string(), probe.kernel.clone()),
        ("root".to_string(), probe.root.to_string()),
        ("ffmpeg".to_string(), tool_line(&probe.ffmpeg)),
        ("ffprobe".to_string(), tool_line(&probe.ffprobe)),
        ("mediamtx".to_string(), tool_line(&probe.mediamtx)),
    ];
    let devices: Vec<String> = probe
        .v4l2
        .nodes
        .iter()
        .map(|n| format!("{} ({}, {})", n.path, n.driver, n.role()))
        .collect();
    properties.push((
        "v4l2-devices".to_string(),
        if devices.is_empty() {
            "none".to_string()
        } else {
            devices.join("; ")
        },
    ));
    properties
}
