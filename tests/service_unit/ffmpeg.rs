//! FFmpeg command construction: input options before `-i`, `-t` before the output, fragmented
//! MP4, one-frame snapshots. The snapshot command is also run for real.

use std::path::Path;
use std::time::Duration;

use camera_service::camera::Source;
use camera_service::ffmpeg::{jpeg_qscale, FfmpegSettings, ImageFormat, FRAGMENTED_MP4_FLAGS};
use camera_service::process::StdinMode;

fn settings() -> FfmpegSettings {
    FfmpegSettings {
        binary: "ffmpeg".into(),
        ffprobe_binary: "ffprobe".into(),
        rtsp_timeout: Duration::from_secs(5),
        testsrc_size: (320, 240),
        testsrc_fps: 25,
    }
}

fn position(args: &[String], item: &str) -> usize {
    args.iter()
        .position(|a| a == item)
        .unwrap_or_else(|| panic!("`{item}` missing from {args:?}"))
}

#[realtest::test]
fn rtsp_input_options_come_before_dash_i() -> anyhow::Result<()> {
    let source = Source::Rtsp("rtsp://127.0.0.1:8554/camera0".into());
    let spec = settings().snapshot(&source, ImageFormat::Jpeg, 85, Path::new("/d/s.jpg"));
    let args = &spec.args;
    let input = position(args, "-i");
    assert_eq!(args[input + 1], "rtsp://127.0.0.1:8554/camera0");
    assert!(position(args, "-rtsp_transport") < input);
    let timeout = position(args, "-timeout");
    assert!(timeout < input);
    assert_eq!(args[timeout + 1], "5000000", "-timeout is in microseconds");
    assert_eq!(spec.stdin, StdinMode::Null);
    Ok(())
}

#[realtest::test]
fn rtsp_presence_probe_is_ffprobe_with_input_options_before_dash_i() -> anyhow::Result<()> {
    let spec = settings().probe_rtsp("rtsp://10.0.0.5/stream", Duration::from_secs(2));
    assert_eq!(spec.program, "ffprobe");
    assert_eq!(
        spec.args,
        [
            "-v",
            "error",
            "-rtsp_transport",
            "tcp",
            "-timeout",
            "5000000",
            "-analyzeduration",
            "2000000",
            "-i",
            "rtsp://10.0.0.5/stream",
            "-show_entries",
            "stream=codec_type",
            "-of",
            "csv=p=0"
        ]
    );
    assert_eq!(spec.stdin, StdinMode::Null);
    Ok(())
}

#[realtest::test]
fn snapshot_writes_one_frame_to_one_file() -> anyhow::Result<()> {
    let spec = settings().snapshot(
        &Source::TestPattern,
        ImageFormat::Jpeg,
        100,
        Path::new("/d/s.jpg"),
    );
    let args = &spec.args;
    let input = position(args, "-i");
    assert_eq!(args[input + 1], "testsrc2=size=320x240:rate=25");
    assert!(position(args, "lavfi") < input);
    let frames = position(args, "-frames:v");
    assert_eq!(args[frames + 1], "1");
    assert_eq!(args[position(args, "-update") + 1], "1");
    assert!(frames > input, "output options after the input");
    assert_eq!(args.last().map(String::as_str), Some("/d/s.jpg"));
    assert!(!args.contains(&"-re".to_owned()), "snapshots are not paced");
    assert_eq!(
        (jpeg_qscale(100), jpeg_qscale(1), jpeg_qscale(85)),
        (2, 31, 6)
    );
    Ok(())
}

#[realtest::test]
fn timed_recording_has_t_before_the_output_and_fragmented_mp4() -> anyhow::Result<()> {
    let output = Path::new("/d/rec.mp4");
    let spec = settings().recording(
        &Source::TestPattern,
        Some(Duration::from_millis(2500)),
        output,
        None,
    );
    let args = &spec.args;
    let input = position(args, "-i");
    assert!(position(args, "-re") < input, "synthetic input is paced");
    let t = position(args, "-t");
    assert_eq!(args[t + 1], "2.500");
    assert!(
        t > input && t < args.len() - 1,
        "-t is an output option, before the output name"
    );
    assert_eq!(args[position(args, "-movflags") + 1], FRAGMENTED_MP4_FLAGS);
    assert_eq!(
        FRAGMENTED_MP4_FLAGS,
        "+frag_keyframe+empty_moov+default_base_moof"
    );
    assert_eq!(args[position(args, "-flush_packets") + 1], "1");
    assert_eq!(args[position(args, "-g") + 1], "25", "one-second GOP");
    assert_eq!(args.last().map(Path::new), Some(output));
    assert_eq!(spec.stdin, StdinMode::Piped, "stopped with `q` on stdin");
    let untimed = settings().recording(&Source::V4l2("/dev/video0".into()), None, output, None);
    assert!(!untimed.args.contains(&"-t".to_owned()));
    let v4l2_input = position(&untimed.args, "-i");
    assert_eq!(untimed.args[v4l2_input - 1], "v4l2");
    assert_eq!(untimed.args[v4l2_input + 1], "/dev/video0");
    Ok(())
}

#[realtest::test(tags = ["needs-ffmpeg"], timeout = "60s")]
async fn built_snapshot_command_produces_a_decodable_image(
    ctx: &mut realtest::Ctx,
) -> anyhow::Result<()> {
    let dir = ctx.temp_dir()?;
    let out = dir.join("s.jpg");
    let spec = settings().snapshot(&Source::TestPattern, ImageFormat::Jpeg, 90, &out);
    camera_service::process::run(&spec, Duration::from_secs(30)).await?;
    let probe = ctx.output(
        std::process::Command::new("ffprobe")
            .args([
                "-v",
                "error",
                "-show_entries",
                "stream=codec_name,width,height",
                "-of",
                "csv=p=0",
            ])
            .arg(&out),
        Duration::from_secs(30),
    )?;
    assert_eq!(String::from_utf8(probe.stdout)?.trim(), "mjpeg,320,240");
    Ok(())
}

#[realtest::test(tags = ["needs-ffmpeg"], timeout = "60s")]
async fn recording_with_a_live_frame_writes_both_outputs(
    ctx: &mut realtest::Ctx,
) -> anyhow::Result<()> {
    let dir = ctx.temp_dir()?;
    let (video, live) = (dir.join("r.mp4"), dir.join("live.jpg"));
    let spec = settings().recording(
        &Source::TestPattern,
        Some(Duration::from_secs(2)),
        &video,
        Some(&live),
    );
    let live_at = position(&spec.args, &live.display().to_string());
    assert!(position(&spec.args, &video.display().to_string()) < live_at);
    let mut child = camera_service::process::spawn(&spec)?;
    let status = child.wait_with_limit(Duration::from_secs(30)).await?;
    child.check_success(status)?;
    let probe = |path: &Path| {
        ctx.output(
            std::process::Command::new("ffprobe")
                .args([
                    "-v",
                    "error",
                    "-count_frames",
                    "-show_entries",
                    "stream=codec_name,width,height,nb_read_frames",
                    "-of",
                    "csv=p=0",
                ])
                .arg(path),
            Duration::from_secs(30),
        )
    };
    assert_eq!(
        String::from_utf8(probe(&video)?.stdout)?.trim(),
        "h264,320,240,50"
    );
    assert_eq!(
        String::from_utf8(probe(&live)?.stdout)?.trim(),
        "mjpeg,320,240,1"
    );
    // The live frame re-encodes into a PNG snapshot.
    let png = dir.join("s.png");
    camera_service::process::run(
        &settings().convert_still(&live, ImageFormat::Png, 85, &png),
        Duration::from_secs(30),
    )
    .await?;
    assert!(String::from_utf8(probe(&png)?.stdout)?.starts_with("png,320,240"));
    Ok(())
}
