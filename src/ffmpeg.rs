//! FFmpeg and FFprobe command lines. Input options always come before `-i`; a timed recording
//! carries `-t` before the output; recordings are fragmented MP4 so a killed FFmpeg still leaves
//! a readable file.

use std::path::Path;
use std::time::Duration;

use crate::camera::Source;
use crate::process::CommandSpec;

/// Movflags of every recording: a killed writer still leaves a readable file.
pub const FRAGMENTED_MP4_FLAGS: &str = "+frag_keyframe+empty_moov+default_base_moof";

/// What command construction needs from the configuration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FfmpegSettings {
    /// The ffmpeg binary.
    pub binary: String,
    /// The ffprobe binary.
    pub ffprobe_binary: String,
    /// RTSP socket timeout (`-timeout`, microseconds on the command line).
    pub rtsp_timeout: Duration,
    /// Frame size of the test pattern.
    pub testsrc_size: (u32, u32),
    /// Frame rate of the test pattern.
    pub testsrc_fps: u32,
}

/// Still image formats of snapshots.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ImageFormat {
    /// JPEG (`mjpeg` encoder).
    Jpeg,
    /// PNG.
    Png,
}

impl ImageFormat {
    /// The file extension, without dot.
    pub const fn extension(self) -> &'static str {
        match self {
            ImageFormat::Jpeg => "jpg",
            ImageFormat::Png => "png",
        }
    }
}

impl FfmpegSettings {
    /// Input options and `-i` for `source`; `realtime` paces synthetic input (`-re`).
    pub fn input_args(&self, source: &Source, realtime: bool) -> Vec<String> {
        let mut args: Vec<String> = Vec::new();
        match source {
            Source::TestPattern => {
                if realtime {
                    args.push("-re".into());
                }
                let (w, h) = self.testsrc_size;
                args.extend(strings(&["-f", "lavfi", "-i"]));
                args.push(format!("testsrc2=size={w}x{h}:rate={}", self.testsrc_fps));
            }
            Source::Rtsp(url) => {
                args.extend(strings(&["-rtsp_transport", "tcp", "-timeout"]));
                args.push(self.rtsp_timeout.as_micros().to_string());
                args.push("-i".into());
                args.push(url.clone());
            }
            Source::V4l2(device) => {
                args.extend(strings(&["-f", "v4l2", "-i"]));
                args.push(device.display().to_string());
            }
        }
        args
    }

    /// One still image from `source` into `output`. `quality` 1–100 (higher is better) applies
    /// to JPEG.
    pub fn snapshot(
        &self,
        source: &Source,
        format: ImageFormat,
        quality: u8,
        output: &Path,
    ) -> CommandSpec {
        let mut args = strings(&["-hide_banner", "-nostdin", "-loglevel", "error"]);
        args.extend(self.input_args(source, false));
        args.extend(self.still_output_args(format, quality));
        args.push(output.display().to_string());
        CommandSpec::new(self.binary.clone(), args)
    }

    /// A recording of `source` into fragmented MP4 at `output`, stopped by `-t duration` when
    /// given. Stdin is piped so the service can stop it with `q`. With `live_frame`, a second
    /// output keeps the latest frame there as JPEG (one per second), so snapshots of a
    /// single-reader device come from this pipeline instead of a second open.
    pub fn recording(
        &self,
        source: &Source,
        duration: Option<Duration>,
        output: &Path,
        live_frame: Option<&Path>,
    ) -> CommandSpec {
        let mut args = strings(&["-hide_banner", "-loglevel", "error"]);
        args.extend(self.input_args(source, true));
        match source {
            Source::Rtsp(_) => args.extend(strings(&["-c:v", "copy", "-c:a", "aac"])),
            Source::TestPattern | Source::V4l2(_) => args.extend(self.live_h264_args(source)),
        }
        if let Some(duration) = duration {
            args.push("-t".into());
            args.push(format_seconds(duration));
        }
        args.extend(strings(&[
            "-movflags",
            FRAGMENTED_MP4_FLAGS,
            "-flush_packets",
            "1",
            "-f",
            "mp4",
            "-y",
        ]));
        args.push(output.display().to_string());
        if let Some(live) = live_frame {
            args.extend(strings(&["-map", "0:v", "-vf", "fps=1"]));
            if let Some(duration) = duration {
                args.push("-t".into());
                args.push(format_seconds(duration));
            }
            args.extend(strings(&["-update", "1", "-c:v", "mjpeg", "-q:v", "2"]));
            args.extend(strings(&["-f", "image2", "-y"]));
            args.push(live.display().to_string());
        }
        CommandSpec::new(self.binary.clone(), args).with_stdin_pipe()
    }

    /// Re-encodes a still image file (a copy of a recording's live frame) into a snapshot.
    pub fn convert_still(
        &self,
        input: &Path,
        format: ImageFormat,
        quality: u8,
        output: &Path,
    ) -> CommandSpec {
        let mut args = strings(&["-hide_banner", "-nostdin", "-loglevel", "error", "-i"]);
        args.push(input.display().to_string());
        args.extend(self.still_output_args(format, quality));
        args.push(output.display().to_string());
        CommandSpec::new(self.binary.clone(), args)
    }

    fn still_output_args(&self, format: ImageFormat, quality: u8) -> Vec<String> {
        let mut args = strings(&["-frames:v", "1", "-update", "1"]);
        match format {
            ImageFormat::Jpeg => {
                args.extend(strings(&["-c:v", "mjpeg", "-q:v"]));
                args.push(jpeg_qscale(quality).to_string());
            }
            ImageFormat::Png => args.extend(strings(&["-c:v", "png"])),
        }
        args.extend(strings(&["-f", "image2", "-y"]));
        args
    }

    /// A publisher of `source` to an RTSP server (MediaMTX's `runOnInit` for test patterns and
    /// V4L2 devices): H.264 with a one-second GOP, so new readers start fast.
    pub fn publish(&self, source: &Source, rtsp_url: &str) -> CommandSpec {
        let mut args = strings(&["-hide_banner", "-loglevel", "warning"]);
        args.extend(self.input_args(source, true));
        args.extend(self.live_h264_args(source));
        args.extend(strings(&["-f", "rtsp", "-rtsp_transport", "tcp"]));
        args.push(rtsp_url.to_owned());
        CommandSpec::new(self.binary.clone(), args)
    }

    /// Low-latency H.264 for live sources (test pattern, V4L2): one-second GOP, so a reader or
    /// a fragmented file gets a keyframe every second.
    fn live_h264_args(&self, source: &Source) -> Vec<String> {
        let mut args = strings(&[
            "-c:v",
            "libx264",
            "-preset",
            "ultrafast",
            "-tune",
            "zerolatency",
            "-pix_fmt",
            "yuv420p",
            "-g",
        ]);
        args.push(self.gop(source).to_string());
        args
    }

    /// `ffprobe` printing `WIDTHxHEIGHT` of the first video stream.
    pub fn probe_resolution(&self, file: &Path) -> CommandSpec {
        let mut args = strings(&[
            "-v",
            "error",
            "-select_streams",
            "v:0",
            "-show_entries",
            "stream=width,height",
            "-of",
            "csv=s=x:p=0",
        ]);
        args.push(file.display().to_string());
        CommandSpec::new(self.ffprobe_binary.clone(), args)
    }

    /// `ffprobe` of an RTSP URL printing one `codec_type` per stream (`video`, `audio`): the
    /// presence check of an RTSP camera without MediaMTX. Input options (`-rtsp_transport`,
    /// `-timeout` in µs, `-analyzeduration` in µs) go before `-i`.
    pub fn probe_rtsp(&self, url: &str, analyze: Duration) -> CommandSpec {
        let mut args = strings(&["-v", "error"]);
        let mut input = self.input_args(&Source::Rtsp(url.to_owned()), false);
        let at_i = input.len() - 2;
        input.splice(
            at_i..at_i,
            [
                "-analyzeduration".to_owned(),
                analyze.as_micros().to_string(),
            ],
        );
        args.extend(input);
        args.extend(strings(&[
            "-show_entries",
            "stream=codec_type",
            "-of",
            "csv=p=0",
        ]));
        CommandSpec::new(self.ffprobe_binary.clone(), args)
    }

    /// `ffprobe` printing the container duration in seconds.
    pub fn probe_duration(&self, file: &Path) -> CommandSpec {
        let mut args = strings(&[
            "-v",
            "error",
            "-show_entries",
            "format=duration",
            "-of",
            "default=noprint_wrappers=1:nokey=1",
        ]);
        args.push(file.display().to_string());
        CommandSpec::new(self.ffprobe_binary.clone(), args)
    }

    /// A one-second GOP for synthetic input, 30 frames otherwise.
    fn gop(&self, source: &Source) -> u32 {
        match source {
            Source::TestPattern => self.testsrc_fps,
            Source::Rtsp(_) | Source::V4l2(_) => 30,
        }
    }
}

/// Maps quality 1–100 (higher is better) to the MJPEG qscale 31–2 (lower is better).
pub fn jpeg_qscale(quality: u8) -> u8 {
    let quality = u32::from(quality.clamp(1, 100));
    (2 + (100 - quality) * 29 / 99) as u8
}

/// Seconds with millisecond precision, as FFmpeg's `-t` accepts (`10`, `2.5`).
fn format_seconds(duration: Duration) -> String {
    let millis = duration.as_millis();
    if millis % 1000 == 0 {
        (millis / 1000).to_string()
    } else {
        format!("{}.{:03}", millis / 1000, millis % 1000)
    }
}

fn strings(items: &[&str]) -> Vec<String> {
    items.iter().map(|s| (*s).to_owned()).collect()
}
