//! Checking produced media with the real ffprobe.

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use anyhow::{ensure, Context};
use realtest::Ctx;
use serde_json::Value;

/// What ffprobe says about a file's first video stream.
#[derive(Debug, Clone, PartialEq)]
pub struct VideoInfo {
    /// Codec name (`h264`, `mjpeg`, `png`).
    pub codec: String,
    /// Width in pixels.
    pub width: u64,
    /// Height in pixels.
    pub height: u64,
    /// Container duration in seconds, when known.
    pub duration: Option<f64>,
    /// Decoded frame count (`-count_frames`).
    pub frames: Option<u64>,
}

/// Runs ffprobe on `path`, decoding every frame, and returns the first video stream.
pub fn probe(ctx: &Ctx, path: &Path) -> anyhow::Result<VideoInfo> {
    let output = ctx.output(
        Command::new("ffprobe")
            .args([
                "-v",
                "error",
                "-count_frames",
                "-show_streams",
                "-show_format",
                "-of",
                "json",
            ])
            .arg(path),
        Duration::from_secs(30),
    )?;
    ensure!(
        output.status.success(),
        "ffprobe rejected {}: {}",
        path.display(),
        String::from_utf8_lossy(&output.stderr)
    );
    let json: Value = serde_json::from_slice(&output.stdout)?;
    let stream = json["streams"]
        .as_array()
        .and_then(|s| s.iter().find(|s| s["codec_type"] == "video"))
        .context("no video stream")?;
    Ok(VideoInfo {
        codec: stream["codec_name"].as_str().unwrap_or_default().to_owned(),
        width: stream["width"].as_u64().unwrap_or(0),
        height: stream["height"].as_u64().unwrap_or(0),
        duration: json["format"]["duration"]
            .as_str()
            .and_then(|d| d.parse().ok()),
        frames: stream["nb_read_frames"]
            .as_str()
            .and_then(|n| n.parse().ok()),
    })
}

/// Probes `path` and checks its first video stream's codec and size. When ffprobe cannot read it
/// or it is not what was expected, the file is attached to the test's JUnit report.
pub fn expect_video(
    ctx: &Ctx,
    path: &Path,
    codec: &str,
    (width, height): (u64, u64),
) -> anyhow::Result<VideoInfo> {
    let checked = probe(ctx, path).and_then(|info| {
        ensure!(
            (info.codec.as_str(), info.width, info.height) == (codec, width, height),
            "{}: {} {}x{}, expected {codec} {width}x{height}",
            path.display(),
            info.codec,
            info.width,
            info.height
        );
        Ok(info)
    });
    attach_if_failed(ctx, path, checked)
}

/// `result`, after attaching `path` to the test's JUnit report when it is an error.
pub fn attach_if_failed<T>(ctx: &Ctx, path: &Path, result: anyhow::Result<T>) -> anyhow::Result<T> {
    if result.is_err() {
        if let Err(err) = ctx.attach(path) {
            ctx.log(format_args!("{err:#}"));
        }
    }
    result
}

/// Reads frames from a live stream URL (RTSP over TCP) with ffprobe, up to `packets` packets —
/// enough to reach a keyframe when the GOP is shorter — and returns the first decoded frame's
/// size. Proof that the URL really plays.
pub fn probe_stream_frame(ctx: &Ctx, url: &str, packets: u32) -> anyhow::Result<(u64, u64)> {
    let output = ctx.output(
        Command::new("ffprobe")
            .args([
                "-v",
                "error",
                "-rtsp_transport",
                "tcp",
                "-timeout",
                "5000000",
            ])
            .args(["-select_streams", "v:0", "-read_intervals"])
            .arg(format!("%+#{packets}"))
            .args(["-show_frames", "-show_entries", "frame=width,height"])
            .args(["-of", "json", url]),
        Duration::from_secs(30),
    )?;
    ensure!(
        output.status.success(),
        "ffprobe could not read {url}: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    let json: Value = serde_json::from_slice(&output.stdout)?;
    let frame = json["frames"]
        .as_array()
        .and_then(|frames| frames.first())
        .with_context(|| format!("no frame decoded from {url}: {json}"))?;
    Ok((
        frame["width"].as_u64().unwrap_or(0),
        frame["height"].as_u64().unwrap_or(0),
    ))
}
