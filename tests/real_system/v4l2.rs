//! Capture from a real V4L2 device through the harness lease.

use std::time::{Duration, Instant};

use anyhow::{bail, ensure, Context};
use realtest::{CameraRequirements, Ctx, V4l2Node};
use v4l::buffer::Type;
use v4l::io::traits::CaptureStream;
use v4l::prelude::*;
use v4l::video::Capture;
use v4l::FourCC;

use crate::support::v4l2dev;

/// Frames captured per format.
const FRAMES: usize = 3;
/// Longest wait for one frame (vivid gives about 5 fps under QEMU/TCG).
const FRAME_TIMEOUT: Duration = Duration::from_secs(10);
/// Formats tried after YUYV, in this order; the first one the device offers is captured too.
const SECOND_FORMATS: [&str; 6] = ["NV12", "RGB3", "UYVY", "BGR3", "GREY", "MJPG"];

/// How many bytes a frame of `format` takes, from the negotiated line stride (the driver may
/// pad lines, or keep a larger stride than the width needs): `None` for compressed formats.
fn frame_bytes(format: &v4l::Format) -> Option<u32> {
    let lines = match &format.fourcc.repr {
        b"YUYV" | b"UYVY" | b"YVYU" | b"VYUY" | b"RGB3" | b"BGR3" | b"GREY" | b"RGBP" | b"AR24"
        | b"XR24" => format.height,
        // Y plane, then the interleaved CbCr plane of half the height.
        b"NV12" | b"NV21" => format.height + format.height / 2,
        _ => return None,
    };
    Some(format.stride * lines)
}

/// Bytes per pixel of the first plane, for the smallest stride the width needs.
fn min_stride(format: &v4l::Format) -> Option<u32> {
    let bpp = match &format.fourcc.repr {
        b"YUYV" | b"UYVY" | b"YVYU" | b"VYUY" | b"RGBP" => 2,
        b"RGB3" | b"BGR3" => 3,
        b"AR24" | b"XR24" => 4,
        b"GREY" | b"NV12" | b"NV21" => 1,
        _ => return None,
    };
    Some(format.width * bpp)
}

/// Sets `fourcc` at `width`x`height` (the stride left to the driver), captures [`FRAMES`]
/// frames through mmap streaming and checks that each is one whole image of the negotiated
/// format. Returns the frames captured.
fn capture(
    ctx: &Ctx,
    device: &Device,
    fourcc: &str,
    (width, height): (u32, u32),
) -> anyhow::Result<usize> {
    let mut format = device.format()?;
    format.width = width;
    format.height = height;
    format.fourcc = FourCC::new(
        fourcc
            .as_bytes()
            .try_into()
            .context("a FourCC has four characters")?,
    );
    // Whatever an earlier user of the device negotiated must not carry over: the driver picks
    // the stride and the image size for this format.
    format.stride = 0;
    format.size = 0;
    let format = device.set_format(&format)?;
    ctx.log(format_args!(
        "{fourcc}: negotiated {}x{} {} stride {} size {}",
        format.width, format.height, format.fourcc, format.stride, format.size
    ));
    ensure!(
        format.fourcc == FourCC::new(fourcc.as_bytes().try_into()?),
        "asked for {fourcc}, driver chose {}",
        format.fourcc
    );
    ensure!(
        (format.width, format.height) == (width, height),
        "asked for {width}x{height} {fourcc}, driver chose {}x{}",
        format.width,
        format.height
    );
    if let Some(min) = min_stride(&format) {
        ensure!(
            format.stride >= min,
            "{fourcc}: stride {} is less than the {min} bytes a line of {width} pixels needs",
            format.stride
        );
    }
    let expected = frame_bytes(&format);
    if let Some(expected) = expected {
        ensure!(
            format.size == expected,
            "{fourcc}: image size {} is not stride × lines = {expected}",
            format.size
        );
    }

    let mut stream = MmapStream::with_buffers(device, Type::VideoCapture, 4)?;
    stream.set_timeout(FRAME_TIMEOUT);
    let started = Instant::now();
    let mut frames = 0;
    for frame in 0..FRAMES {
        let (buffer, meta) = stream
            .next()
            .with_context(|| format!("{fourcc}: frame {frame} did not arrive"))?;
        match expected {
            Some(expected) => ensure!(
                meta.bytesused == expected && buffer.len() >= expected as usize,
                "{fourcc} frame {frame}: {} bytes used, expected {expected} \
                 (stride {} × {} lines)",
                meta.bytesused,
                format.stride,
                format.height
            ),
            None => ensure!(
                meta.bytesused > 0
                    && meta.bytesused <= format.size
                    && buffer.starts_with(&[0xFF, 0xD8]),
                "{fourcc} frame {frame}: {} bytes used of {}, not a JPEG image",
                meta.bytesused,
                format.size
            ),
        }
        frames += 1;
    }
    ctx.log(format_args!(
        "{fourcc}: captured {frames} frames of {}x{} in {:?}",
        format.width,
        format.height,
        started.elapsed()
    ));
    Ok(frames)
}

/// The sizes `node` offers for `fourcc`.
fn sizes(node: &V4l2Node, fourcc: &str) -> Vec<(u32, u32)> {
    node.formats
        .iter()
        .filter(|f| f.fourcc == fourcc)
        .flat_map(|f| f.sizes.iter().map(|s| (s.width, s.height)))
        .collect()
}

/// Leases a real (not loopback) capture device offering YUYV and captures frames in YUYV and
/// in a second format it offers (NV12, RGB3, … or MJPG), each at a size it advertises, checking
/// each frame against the negotiated format: stride × lines bytes (the driver's stride, which
/// may be larger than the width needs), or a JPEG image. Frame counts, not rates: vivid gives
/// about 5 fps under emulation.
#[realtest::test(tags = ["needs-v4l2"], timeout = "120s")]
fn capture_frames_from_a_leased_device(ctx: &mut Ctx) -> anyhow::Result<()> {
    let lease = ctx.lease_camera(&CameraRequirements::any().fourcc("YUYV").loopback(false))?;
    let node = lease.node().clone();
    let second = SECOND_FORMATS
        .iter()
        .copied()
        .find(|f| !sizes(&node, f).is_empty());
    let Some(second) = second else {
        bail!(
            "{} offers no second format to capture besides YUYV (tried {SECOND_FORMATS:?}); it \
             offers {:?}",
            lease.describe(),
            node.formats.iter().map(|f| &f.fourcc).collect::<Vec<_>>()
        );
    };
    let yuyv_sizes = sizes(&node, "YUYV");
    let second_sizes = sizes(&node, second);
    // Different sizes for the two formats where the device offers them, so the second format
    // is negotiated from a different earlier state.
    let yuyv_size = yuyv_sizes[0];
    let second_size = second_sizes
        .iter()
        .copied()
        .find(|s| *s != yuyv_size && s.0 <= 1280)
        .unwrap_or(second_sizes[0]);

    let device = v4l2dev::open(lease.path())?;
    let mut total = 0;
    for (fourcc, size) in [("YUYV", yuyv_size), (second, second_size)] {
        let frames = capture(ctx, &device, fourcc, size)?;
        ensure!(frames > 0, "{fourcc}: no frame captured");
        total += frames;
    }
    ctx.log(format_args!(
        "{}: {total} frames in YUYV and {second}",
        lease.describe()
    ));
    Ok(())
}
