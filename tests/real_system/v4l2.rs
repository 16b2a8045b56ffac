//! Capture from a real V4L2 device through the harness lease.

use std::time::{Duration, Instant};

use anyhow::{ensure, Context};
use realtest::{CameraRequirements, Ctx};
use v4l::buffer::Type;
use v4l::io::traits::CaptureStream;
use v4l::prelude::*;
use v4l::video::Capture;
use v4l::FourCC;

const FRAMES: usize = 5;

/// Bytes per pixel of the packed formats this test knows how to size.
fn packed_bytes_per_pixel(fourcc: &str) -> Option<u32> {
    match fourcc {
        "YUYV" | "UYVY" | "YVYU" | "VYUY" | "RGBP" | "RGBR" => Some(2),
        "RGB3" | "BGR3" => Some(3),
        "AR24" | "XR24" | "RGB4" | "BGR4" => Some(4),
        "GREY" => Some(1),
        _ => None,
    }
}

/// Leases a YUYV capture device, sets a size it advertises, captures a few frames through mmap
/// streaming and checks that each frame is one whole image of the negotiated size and format.
#[realtest::test(tags = ["needs-v4l2"], timeout = "120s")]
fn capture_frames_from_a_leased_device(ctx: &mut Ctx) -> anyhow::Result<()> {
    let lease = ctx.lease_camera(&CameraRequirements::any().fourcc("YUYV"))?;
    let size = lease
        .node()
        .formats
        .iter()
        .find(|f| f.fourcc == "YUYV")
        .and_then(|f| f.sizes.first())
        .context("the lease matched YUYV but the node lists no YUYV size")?;
    let (width, height) = (size.width, size.height);

    let device = Device::with_path(lease.path())
        .with_context(|| format!("open {}", lease.path().display()))?;
    let mut format = device.format()?;
    format.width = width;
    format.height = height;
    format.fourcc = FourCC::new(b"YUYV");
    let format = device.set_format(&format)?;
    ctx.log(format_args!("negotiated {format}"));
    ensure!(
        format.fourcc == FourCC::new(b"YUYV"),
        "driver chose {}",
        format.fourcc
    );
    ensure!(
        (format.width, format.height) == (width, height),
        "asked for {width}x{height}, driver chose {}x{}",
        format.width,
        format.height
    );
    let expected = format.width * format.height * packed_bytes_per_pixel("YUYV").unwrap_or(2);

    let mut stream = MmapStream::with_buffers(&device, Type::VideoCapture, 4)?;
    stream.set_timeout(Duration::from_secs(10));
    let started = Instant::now();
    for frame in 0..FRAMES {
        let (buffer, meta) = stream
            .next()
            .with_context(|| format!("frame {frame} did not arrive"))?;
        ensure!(
            meta.bytesused == expected && buffer.len() >= expected as usize,
            "frame {frame}: {} bytes used, expected {expected}",
            meta.bytesused
        );
    }
    ctx.log(format_args!(
        "captured {FRAMES} frames of {}x{} YUYV in {:?}",
        format.width,
        format.height,
        started.elapsed()
    ));
    Ok(())
}
