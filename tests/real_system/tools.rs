//! The probed tools do what the suite relies on.

use std::process::Command;
use std::time::Duration;

use anyhow::{ensure, Context};
use realtest::Ctx;

const FFMPEG_TIMEOUT: Duration = Duration::from_secs(60);

/// ffmpeg renders a known test pattern to H.264/MP4, and ffprobe reads back its size and frame
/// count by decoding every frame.
#[realtest::test(tags = ["needs-ffmpeg"], timeout = "90s")]
fn ffmpeg_renders_a_pattern_that_ffprobe_reads_back(ctx: &mut Ctx) -> anyhow::Result<()> {
    let dir = ctx.temp_dir()?;
    let clip = dir.join("pattern.mp4");
    let render = ctx.output(
        Command::new("ffmpeg")
            .args(["-hide_banner", "-loglevel", "error", "-f", "lavfi"])
            .args(["-i", "testsrc2=size=320x240:rate=10", "-frames:v", "25"])
            .args([
                "-c:v",
                "libx264",
                "-preset",
                "ultrafast",
                "-pix_fmt",
                "yuv420p",
                "-y",
            ])
            .arg(&clip),
        FFMPEG_TIMEOUT,
    )?;
    ensure!(render.status.success(), "ffmpeg failed: {}", render.status);

    let probe = ctx.output(
        Command::new("ffprobe")
            .args(["-v", "error", "-select_streams", "v:0", "-count_frames"])
            .args([
                "-show_entries",
                "stream=codec_name,width,height,nb_read_frames",
            ])
            .args(["-of", "json"])
            .arg(&clip),
        FFMPEG_TIMEOUT,
    )?;
    ensure!(probe.status.success(), "ffprobe failed: {}", probe.status);
    let json: serde_json::Value =
        serde_json::from_slice(&probe.stdout).context("ffprobe printed no JSON")?;
    let stream = &json["streams"][0];
    ensure!(
        stream["codec_name"] == "h264",
        "codec: {}",
        stream["codec_name"]
    );
    ensure!(
        (stream["width"].as_u64(), stream["height"].as_u64()) == (Some(320), Some(240)),
        "size: {}x{}",
        stream["width"],
        stream["height"]
    );
    ensure!(
        stream["nb_read_frames"] == "25",
        "decoded frames: {}",
        stream["nb_read_frames"]
    );
    Ok(())
}
