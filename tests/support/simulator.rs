//! `TestVideoStreamSimulator`: a simulated camera made by FFmpeg from the lavfi `testsrc2`
//! pattern — published to an RTSP path (H.264, GOP = fps so a new reader gets a keyframe within
//! a second, facts doc §1.7, §3.2), written into a v4l2loopback node (§3.6), or rendered to a
//! file. Each waits until its output is really consumable: the MediaMTX path has a stream, the
//! loopback node advertises capture and gives a frame, the file decodes.
//!
//! Environment: `SIMULATOR_FFMPEG_LOGLEVEL` (default `warning`) sets the simulator FFmpeg's
//! `-loglevel`; its output is in the test's captured log.

use std::net::SocketAddr;
use std::os::fd::AsRawFd;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use anyhow::{bail, ensure, Context};
use realtest::{Ctx, OwnedChild};
use serde_json::Value;

use super::media::{self, VideoInfo};
use super::mediamtx;
use super::v4l2dev;

/// Grace period when stopping a simulator (SIGTERM finalises FFmpeg).
const STOP_GRACE: Duration = Duration::from_secs(5);

/// The pattern a simulator produces.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Pattern {
    /// Width in pixels.
    pub width: u32,
    /// Height in pixels.
    pub height: u32,
    /// Frames per second (also the GOP length).
    pub fps: u32,
}

impl Pattern {
    /// A `width`x`height` pattern at `fps`.
    pub const fn new(width: u32, height: u32, fps: u32) -> Self {
        Self { width, height, fps }
    }

    /// `WxH`.
    pub fn size(&self) -> String {
        format!("{}x{}", self.width, self.height)
    }

    fn lavfi(&self) -> String {
        format!("testsrc2=size={}:rate={}", self.size(), self.fps)
    }
}

fn log_level() -> String {
    std::env::var("SIMULATOR_FFMPEG_LOGLEVEL").unwrap_or_else(|_| "warning".to_owned())
}

/// Where a running simulator sends its video.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target {
    /// An RTSP URL it publishes to.
    Rtsp(String),
    /// A v4l2loopback node it writes into.
    Loopback(PathBuf),
}

/// A running simulated camera.
#[derive(Debug)]
pub struct TestVideoStreamSimulator {
    child: Option<OwnedChild>,
    /// What it produces.
    pub pattern: Pattern,
    /// Where it goes.
    pub target: Target,
}

impl TestVideoStreamSimulator {
    /// Starts publishing `pattern` to `rtsp_url` (a MediaMTX path), paced in real time.
    pub fn publish_rtsp(ctx: &Ctx, rtsp_url: &str, pattern: Pattern) -> anyhow::Result<Self> {
        let child = ctx.spawn(
            Command::new("ffmpeg")
                .args(["-hide_banner", "-nostdin", "-loglevel", &log_level()])
                .args(["-re", "-f", "lavfi", "-i", &pattern.lavfi()])
                .args(["-c:v", "libx264", "-preset", "ultrafast", "-tune"])
                .args(["zerolatency", "-pix_fmt", "yuv420p", "-g"])
                .arg(pattern.fps.to_string())
                .args(["-f", "rtsp", "-rtsp_transport", "tcp", rtsp_url]),
        )?;
        Ok(Self {
            child: Some(child),
            pattern,
            target: Target::Rtsp(rtsp_url.to_owned()),
        })
    }

    /// Publishes a rendered file (see [`render_file`](Self::render_file)) to `rtsp_url` in a
    /// loop, paced in real time, without re-encoding — the original suite's simulated camera
    /// (facts doc §2.7).
    pub fn publish_file_rtsp(
        ctx: &Ctx,
        file: &Path,
        rtsp_url: &str,
        pattern: Pattern,
    ) -> anyhow::Result<Self> {
        let child = ctx.spawn(
            Command::new("ffmpeg")
                .args(["-hide_banner", "-nostdin", "-loglevel", &log_level()])
                .args(["-re", "-stream_loop", "-1", "-i"])
                .arg(file)
                .args([
                    "-c",
                    "copy",
                    "-f",
                    "rtsp",
                    "-rtsp_transport",
                    "tcp",
                    rtsp_url,
                ]),
        )?;
        Ok(Self {
            child: Some(child),
            pattern,
            target: Target::Rtsp(rtsp_url.to_owned()),
        })
    }

    /// Waits until the MediaMTX at `api` has a stream on `path` (this simulator's), failing at
    /// once if the simulator exits. Returns the path object.
    pub fn wait_published(
        &mut self,
        api: SocketAddr,
        path: &str,
        timeout: Duration,
    ) -> anyhow::Result<Value> {
        let deadline = Instant::now() + timeout;
        loop {
            self.ensure_running()?;
            let step =
                Duration::from_secs(1).min(deadline.saturating_duration_since(Instant::now()));
            match mediamtx::wait_path_ready(api, path, step) {
                Ok(state) => {
                    ensure!(
                        state["source"]["type"] == "rtspSession",
                        "path `{path}` is fed by something else: {state}"
                    );
                    return Ok(state);
                }
                Err(e) if Instant::now() >= deadline => return Err(e),
                Err(_) => {}
            }
        }
    }

    /// Starts writing `pattern` into the v4l2loopback node `device` as YUYV, paced in real time.
    /// The node is made ready for a writer first (see [`rearm_loopback_output`]).
    pub fn write_loopback(ctx: &Ctx, device: &Path, pattern: Pattern) -> anyhow::Result<Self> {
        rearm_loopback_output(device)?;
        let child = ctx.spawn(
            Command::new("ffmpeg")
                .args(["-hide_banner", "-nostdin", "-loglevel", &log_level()])
                .args(["-re", "-f", "lavfi", "-i", &pattern.lavfi()])
                .args(["-pix_fmt", "yuyv422", "-f", "v4l2"])
                .arg(device),
        )?;
        Ok(Self {
            child: Some(child),
            pattern,
            target: Target::Loopback(device.to_owned()),
        })
    }

    /// Waits until the loopback node advertises video capture (with `exclusive_caps=1` only
    /// while a writer streams, facts doc §3.6) and a reader gets a frame of the pattern's size.
    pub fn wait_loopback_consumable(&mut self, ctx: &Ctx, timeout: Duration) -> anyhow::Result<()> {
        let Target::Loopback(device) = self.target.clone() else {
            bail!("not a loopback simulator");
        };
        let deadline = Instant::now() + timeout;
        let mut last = String::new();
        while Instant::now() < deadline {
            self.ensure_running()?;
            match capture_caps(&device) {
                Ok(true) => {
                    // A reader that hangs (the writer not yet streaming; a slow first start
                    // under emulation) is killed and tried again until the deadline.
                    let read = ctx.output(
                        Command::new("ffmpeg")
                            .args(["-hide_banner", "-nostdin", "-loglevel", "error"])
                            .args(["-f", "v4l2", "-i"])
                            .arg(&device)
                            .args(["-frames:v", "1", "-f", "rawvideo", "-"]),
                        Duration::from_secs(10),
                    );
                    let frame_bytes =
                        u64::from(self.pattern.width) * u64::from(self.pattern.height) * 2;
                    last = match read {
                        Ok(out)
                            if out.status.success() && out.stdout.len() as u64 == frame_bytes =>
                        {
                            return Ok(());
                        }
                        Ok(out) => format!(
                            "reader got {} bytes (expected {frame_bytes}), {}",
                            out.stdout.len(),
                            out.status
                        ),
                        Err(e) => format!("{e:#}"),
                    };
                }
                Ok(false) => last = "no VIDEO_CAPTURE capability yet".to_owned(),
                Err(e) => last = format!("{e:#}"),
            }
            std::thread::sleep(Duration::from_millis(200));
        }
        bail!(
            "{} not consumable within {timeout:?}: {last}",
            device.display()
        )
    }

    /// Renders `seconds` of `pattern` as H.264 MP4 into `path` (as fast as possible) and returns
    /// what ffprobe reads back.
    pub fn render_file(
        ctx: &Ctx,
        path: &Path,
        pattern: Pattern,
        seconds: u32,
    ) -> anyhow::Result<VideoInfo> {
        let out = ctx.output(
            Command::new("ffmpeg")
                .args(["-hide_banner", "-nostdin", "-loglevel", "error"])
                .args(["-f", "lavfi", "-i", &pattern.lavfi(), "-frames:v"])
                .arg((seconds * pattern.fps).to_string())
                .args([
                    "-c:v",
                    "libx264",
                    "-preset",
                    "ultrafast",
                    "-pix_fmt",
                    "yuv420p",
                ])
                .args(["-g", &pattern.fps.to_string(), "-y"])
                .arg(path),
            Duration::from_secs(60),
        )?;
        ensure!(out.status.success(), "rendering failed: {}", out.status);
        media::probe(ctx, path)
    }

    /// Whether FFmpeg is still running.
    pub fn is_running(&mut self) -> bool {
        self.child
            .as_mut()
            .is_some_and(|c| matches!(c.try_wait(), Ok(None)))
    }

    fn ensure_running(&mut self) -> anyhow::Result<()> {
        if let Some(child) = self.child.as_mut() {
            if let Some(status) = child.try_wait()? {
                let tail = child.output();
                let start = tail.len().saturating_sub(10);
                bail!(
                    "simulator FFmpeg exited ({status}):\n{}",
                    tail[start..].join("\n")
                );
            }
        }
        Ok(())
    }

    /// Stops it (the camera goes away).
    pub fn stop(mut self) -> anyhow::Result<()> {
        if let Some(child) = self.child.take() {
            child.stop(STOP_GRACE).context("stopping the simulator")?;
        }
        Ok(())
    }
}

/// Whether `device`'s QUERYCAP device caps include video capture.
pub fn capture_caps(device: &Path) -> anyhow::Result<bool> {
    let caps = v4l2dev::open(device)?.query_caps()?;
    Ok(caps
        .capabilities
        .intersects(v4l::capability::Flags::VIDEO_CAPTURE))
}

/// Makes the v4l2loopback node `device` accept a new FFmpeg writer again.
///
/// v4l2loopback 0.12.7 (Debian 12) with `exclusive_caps=1` marks a node ready for output again
/// only when a *streaming* writer (one that called `VIDIOC_STREAMON` on the output queue)
/// closes it. FFmpeg's v4l2 output writes with `write()`, so after its first writer has gone the
/// node advertises neither output nor capture, and the kernel checks `VIDIOC_G_FMT` against the
/// device caps of the node's *last* `VIDIOC_QUERYCAP`: once anything queried the idle node (a
/// probe, a discovery scan of any service, a test waiting for capture), the next FFmpeg writer
/// fails with `ioctl(VIDIOC_G_FMT): Invalid argument`. A `VIDIOC_STREAMON` on the output queue
/// marks this opener as a streaming writer (even though it then fails: no format is set), so
/// closing it marks the node ready for output; the `VIDIOC_QUERYCAP` after it puts the output
/// capability back into the caps the kernel checks.
pub fn rearm_loopback_output(device: &Path) -> anyhow::Result<()> {
    {
        // std opens with O_CLOEXEC: this opener must really be closed at the end of this block
        // (a child process inheriting it would keep the node from being ready for output).
        let node = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .custom_flags(nix::libc::O_NONBLOCK)
            .open(device)
            .with_context(|| format!("open {}", device.display()))?;
        let mut kind = v4l::buffer::Type::VideoOutput as u32;
        // SAFETY: VIDIOC_STREAMON reads one `int` (the buffer type) through the pointer, which
        // points at a live local for the duration of the call, on a descriptor `node` keeps
        // open. Its result does not matter (it fails while no format is set): see above.
        #[allow(unsafe_code)]
        let _ = unsafe {
            v4l::v4l2::ioctl(
                node.as_raw_fd(),
                v4l::v4l2::vidioc::VIDIOC_STREAMON,
                std::ptr::from_mut(&mut kind).cast::<std::os::raw::c_void>(),
            )
        };
    }
    let caps = v4l2dev::open(device)?.query_caps()?;
    ensure!(
        caps.capabilities
            .intersects(v4l::capability::Flags::VIDEO_OUTPUT),
        "{} does not take a writer: device caps {} (is another process still streaming into it?)",
        device.display(),
        caps.capabilities
    );
    Ok(())
}
