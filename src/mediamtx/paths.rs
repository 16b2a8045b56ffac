//! The MediaMTX path configuration of one camera.

use serde_json::{json, Value};

use crate::camera::Source;
use crate::ffmpeg::FfmpegSettings;

/// The body registered for camera path `name`: an RTSP camera is pulled by MediaMTX
/// (`source: rtsp://…`, always on: no `sourceOnDemand`, so the path is ready exactly while the
/// source delivers and its state is the camera's presence; an on-demand path would stay
/// not-ready until someone reads it); a test pattern or V4L2 device is published by an FFmpeg that MediaMTX
/// starts with the path and restarts when it exits (`runOnInit`, `runOnInitRestart`), so the
/// device has exactly one reader.
pub fn path_config(source: &Source, name: &str, rtsp_port: u16, ffmpeg: &FfmpegSettings) -> Value {
    match source {
        Source::Rtsp(url) => json!({ "source": url }),
        Source::TestPattern | Source::V4l2(_) => {
            let target = format!("rtsp://127.0.0.1:{rtsp_port}/{name}");
            let command = ffmpeg.publish(source, &target).argv().to_string();
            json!({
                "source": "publisher",
                "runOnInit": command,
                "runOnInitRestart": true,
            })
        }
    }
}
