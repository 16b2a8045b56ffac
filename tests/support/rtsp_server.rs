//! `RealRtspServer`: a real RTSP server — GStreamer's gst-rtsp-server, driven by
//! `tests/support/rtsp_server.py` — serving a live H.264 test pattern (GOP = fps) at
//! `rtsp://127.0.0.1:PORT/cam`. Unlike FFmpeg's RTSP listen mode it accepts readers, so the
//! service can pull from it directly (no MediaMTX). It can be stopped (the camera disappears)
//! and started again on the same port.
//!
//! Requirement tag `needs-gst-rtsp-server` (registered here, so in every test binary that
//! includes the fixtures): a Python with GObject introspection for GstRtspServer and the
//! GStreamer elements of the pipeline. The interpreter is `RTSP_SERVER_PYTHON` when set,
//! otherwise the first of `python3` (PATH) and `/usr/bin/python3` that has them — a pyenv or
//! venv `python3` first on PATH usually does not see Debian's `python3-gi`.

use std::path::PathBuf;
use std::process::Command;
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use anyhow::{bail, ensure, Context};
use realtest::{Ctx, NeedStatus, OwnedChild};

use super::media;
use super::mediamtx::free_port;

/// The requirement tag.
pub const TAG: &str = "needs-gst-rtsp-server";
/// The server script.
pub const SCRIPT: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/support/rtsp_server.py");
/// The Debian packages that provide what the server needs.
pub const APT_PACKAGES: &str = "python3-gi gir1.2-gstreamer-1.0 gir1.2-gst-rtsp-server-1.0 \
     gstreamer1.0-plugins-base gstreamer1.0-plugins-good gstreamer1.0-plugins-ugly";
/// The mount point.
const NAME: &str = "cam";
/// How long the ready line, and then a decoded frame, may take.
const STARTUP: Duration = Duration::from_secs(20);
/// Grace period when stopping the server.
const STOP_GRACE: Duration = Duration::from_secs(5);

/// What the check runs: the import, then the pipeline's elements; prints the missing ones.
const CHECK: &str = "import gi\n\
gi.require_version('Gst', '1.0')\n\
gi.require_version('GstRtspServer', '1.0')\n\
from gi.repository import Gst, GstRtspServer\n\
Gst.init(None)\n\
missing = [e for e in ('videotestsrc', 'x264enc', 'rtph264pay') if Gst.ElementFactory.find(e) is None]\n\
print(' '.join(missing))\n";

/// The interpreter that can run the server, or why none can (checked once per process).
pub fn python() -> Result<&'static str, String> {
    static FOUND: OnceLock<Result<String, String>> = OnceLock::new();
    FOUND
        .get_or_init(|| {
            let candidates: Vec<String> = match std::env::var("RTSP_SERVER_PYTHON") {
                Ok(python) if !python.is_empty() => vec![python],
                _ => vec!["python3".into(), "/usr/bin/python3".into()],
            };
            let mut seen = Vec::new();
            for python in &candidates {
                match Command::new(python).args(["-c", CHECK]).output() {
                    Ok(out) if out.status.success() => {
                        let missing = String::from_utf8_lossy(&out.stdout).trim().to_owned();
                        if missing.is_empty() {
                            return Ok(python.clone());
                        }
                        seen.push(format!("{python}: no GStreamer element {missing}"));
                    }
                    Ok(out) => {
                        let stderr = String::from_utf8_lossy(&out.stderr);
                        let last = stderr.trim().lines().last().unwrap_or("").to_owned();
                        seen.push(format!("{python}: {last}"));
                    }
                    Err(e) => seen.push(format!("{python}: {e}")),
                }
            }
            Err(format!(
                "no Python with GstRtspServer and x264enc ({}); apt-get install {APT_PACKAGES}",
                seen.join("; ")
            ))
        })
        .as_ref()
        .map(String::as_str)
        .map_err(Clone::clone)
}

fn check(_probe: &realtest::Probe) -> NeedStatus {
    match python() {
        Ok(python) => NeedStatus::Met(format!("{python} with GstRtspServer 1.0, x264enc")),
        Err(reason) => NeedStatus::Unmet(reason),
    }
}

realtest::inventory::submit! {
    realtest::NeedDef { tag: TAG, hardware: false, check }
}

/// A running (or stopped) RTSP server.
#[derive(Debug)]
pub struct RealRtspServer {
    child: Option<OwnedChild>,
    /// Its port (kept across [`stop`](Self::stop) and [`restart`](Self::restart)).
    pub port: u16,
    /// Width of the served video.
    pub width: u32,
    /// Height of the served video.
    pub height: u32,
    /// Frames per second (also the GOP length).
    pub fps: u32,
}

impl RealRtspServer {
    /// Starts a server on a free port serving `width`x`height` at `fps`; returns once ffprobe
    /// decodes a frame of that size from it.
    pub fn start(ctx: &Ctx, width: u32, height: u32, fps: u32) -> anyhow::Result<Self> {
        Self::start_on(ctx, free_port()?, width, height, fps)
    }

    /// Starts a server on `port` (e.g. the port of a stopped one).
    pub fn start_on(
        ctx: &Ctx,
        port: u16,
        width: u32,
        height: u32,
        fps: u32,
    ) -> anyhow::Result<Self> {
        let mut server = Self {
            child: None,
            port,
            width,
            height,
            fps,
        };
        server.launch(ctx)?;
        Ok(server)
    }

    /// `rtsp://127.0.0.1:PORT/cam`.
    pub fn url(&self) -> String {
        format!("rtsp://127.0.0.1:{}/{NAME}", self.port)
    }

    /// The server's pid (0 when stopped).
    pub fn pid(&self) -> u32 {
        self.child.as_ref().map(OwnedChild::pid).unwrap_or(0)
    }

    /// Stops the server (SIGTERM): the port is closed and the camera is gone.
    pub fn stop(&mut self) -> anyhow::Result<()> {
        let child = self.child.take().context("RTSP server already stopped")?;
        child.stop(STOP_GRACE)?;
        Ok(())
    }

    /// Starts the stopped server again on the same port with the same video.
    pub fn restart(&mut self, ctx: &Ctx) -> anyhow::Result<()> {
        ensure!(self.child.is_none(), "RTSP server still running");
        self.launch(ctx)
    }

    fn launch(&mut self, ctx: &Ctx) -> anyhow::Result<()> {
        let python = python().map_err(|reason| anyhow::anyhow!("{TAG}: {reason}"))?;
        let child = ctx.spawn(
            Command::new(python)
                .arg(PathBuf::from(SCRIPT))
                .arg(self.port.to_string())
                .arg(NAME)
                .arg(self.width.to_string())
                .arg(self.height.to_string())
                .arg(self.fps.to_string()),
        )?;
        let url = self.url();
        child.wait_for_output_line(
            |l| l.contains(&format!("rtsp server ready on {url}")),
            STARTUP,
        )?;
        self.child = Some(child);
        self.wait_playing(ctx)?;
        ctx.log(format_args!("RTSP server playing on {url}"));
        Ok(())
    }

    /// Waits until ffprobe decodes a frame of the right size from the URL (two GOPs' worth of
    /// packets per try), failing at once if the server exits.
    fn wait_playing(&mut self, ctx: &Ctx) -> anyhow::Result<()> {
        let deadline = Instant::now() + STARTUP;
        let url = self.url();
        loop {
            let child = self.child.as_mut().context("RTSP server not running")?;
            if let Some(status) = child.try_wait()? {
                bail!("RTSP server exited ({status}) before it played");
            }
            match media::probe_stream_frame(ctx, &url, 2 * self.fps) {
                Ok(size) => {
                    ensure!(
                        size == (u64::from(self.width), u64::from(self.height)),
                        "{url} plays {size:?}, not {}x{}",
                        self.width,
                        self.height
                    );
                    return Ok(());
                }
                Err(e) if Instant::now() >= deadline => {
                    return Err(e.context(format!("{url} did not play within {STARTUP:?}")))
                }
                Err(_) => std::thread::sleep(Duration::from_millis(200)),
            }
        }
    }
}
