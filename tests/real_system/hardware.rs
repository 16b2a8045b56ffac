//! Hardware tests against real kernel V4L2 drivers (a bench's cameras, or the virtual lab's vivid
//! and v4l2loopback nodes): what the probe makes of each node, the camera service discovering a
//! real capture device with its real capabilities, a v4l2loopback node as a simulated camera, and
//! device leases keeping two tests off the same device.

use std::collections::BTreeSet;
use std::path::Path;
use std::process::Command;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use anyhow::{ensure, Context};
use camera_service::auth::Role;
use realtest::{CameraRequirements, Ctx, Probe, Skip, V4l2Node};
use serde_json::{json, Value};
use v4l::video::Capture;

use crate::scenarios::{direct, expect_started_then};
use crate::support::hygiene::PostTestCheck;
use crate::support::media;
use crate::support::service::ServiceUnderTest;
use crate::support::simulator::{Pattern, TestVideoStreamSimulator};
use crate::support::v4l2dev;
use crate::support::ws_client::WsClient;

/// Longest wait for a loopback writer to be readable (FFmpeg starts slowly under emulation).
const WRITER_READY: Duration = Duration::from_secs(45);

/// The probe's node at `path` (fresh probes list the same paths).
fn node_at<'a>(probe: &'a Probe, path: &Path) -> anyhow::Result<&'a V4l2Node> {
    probe
        .v4l2
        .nodes
        .iter()
        .find(|n| Path::new(&n.path) == path)
        .with_context(|| {
            format!(
                "the probe lists no {}: {}",
                path.display(),
                probe.v4l2.summary()
            )
        })
}

/// The probe tells vivid's capture node (a camera) from its output and metadata nodes (not
/// cameras), and sees a v4l2loopback node as loopback: output only while nobody writes
/// (`exclusive_caps=1`), a capture device offering the written format and size once a writer
/// streams into it (a fresh probe, [`Probe::collect`], after starting the writer).
#[realtest::test(tags = ["needs-v4l2", "needs-v4l2loopback", "needs-ffmpeg"], timeout = "120s")]
fn probe_tells_cameras_from_other_nodes_and_sees_loopback_writers(
    ctx: &mut Ctx,
) -> anyhow::Result<()> {
    let probe = ctx.probe();
    let vivid: Vec<&V4l2Node> = probe
        .v4l2
        .nodes
        .iter()
        .filter(|n| n.driver == "vivid")
        .collect();
    if vivid.is_empty() {
        return Err(Skip::new(
            "needs-v4l2",
            format!("no vivid node (modprobe vivid); {}", probe.v4l2.summary()),
        )
        .into());
    }
    let mut cameras = 0;
    let (mut outputs, mut metadata) = (0, 0);
    for node in &vivid {
        let video_capture = node.caps.iter().any(|c| c.starts_with("VIDEO_CAPTURE"));
        ctx.log(format_args!(
            "{} {}: caps {:?} → capture {}, output {}, metadata {}",
            node.path, node.card, node.caps, node.capture, node.output, node.metadata
        ));
        ensure!(!node.loopback, "{} is vivid, not loopback", node.path);
        ensure!(
            node.capture == video_capture,
            "{}: capture = {} but device caps {:?}",
            node.path,
            node.capture,
            node.caps
        );
        ensure!(
            CameraRequirements::any().matches(node) == node.capture,
            "{}: leasable as a camera = {}, capture = {}",
            node.path,
            CameraRequirements::any().matches(node),
            node.capture
        );
        if node.capture {
            cameras += 1;
            ensure!(
                !node.formats.is_empty() && node.formats.iter().all(|f| !f.sizes.is_empty()),
                "{}: a camera lists its formats and their sizes: {:?}",
                node.path,
                node.formats
            );
            ensure!(
                !node.metadata && !node.m2m,
                "{}: a camera node is neither metadata nor codec",
                node.path
            );
        } else if node.metadata {
            metadata += 1;
        } else if node.output {
            outputs += 1;
        }
    }
    ensure!(
        cameras >= 1 && outputs >= 1 && metadata >= 1,
        "vivid must show a capture node, an output node and a metadata node (module option \
         node_types); found {cameras} capture, {outputs} output, {metadata} metadata"
    );

    let lease = ctx.lease_loopback()?;
    let idle = Probe::collect();
    let node = node_at(&idle, lease.path())?;
    ensure!(
        node.loopback && node.driver == "v4l2 loopback",
        "{}: not seen as loopback: {node:?}",
        node.path
    );
    ensure!(
        !node.capture && !CameraRequirements::any().matches(node),
        "{} captures without a writer (exclusive_caps=1 expected): caps {:?}",
        node.path,
        node.caps
    );
    let pattern = Pattern::new(320, 240, 10);
    let mut sim = TestVideoStreamSimulator::write_loopback(ctx, lease.path(), pattern)?;
    sim.wait_loopback_consumable(ctx, WRITER_READY)?;
    let streaming = Probe::collect();
    let node = node_at(&streaming, lease.path())?;
    ctx.log(format_args!(
        "{} while a writer streams: caps {:?}, formats {:?}",
        node.path, node.caps, node.formats
    ));
    ensure!(
        node.loopback && node.capture,
        "{} does not capture while a writer streams: caps {:?}",
        node.path,
        node.caps
    );
    ensure!(
        CameraRequirements::any()
            .loopback(true)
            .fourcc("YUYV")
            .size(pattern.width, pattern.height)
            .matches(node),
        "{} does not offer the written YUYV {}: {:?}",
        node.path,
        pattern.size(),
        node.formats
    );
    ensure!(
        !CameraRequirements::any().loopback(false).matches(node),
        "a loopback node must not pass for a real camera"
    );
    sim.stop()
}

/// `get_camera_list` entry named `name`, polling until it is listed CONNECTED.
async fn wait_listed(client: &mut WsClient, name: &str) -> anyhow::Result<Value> {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    loop {
        let list = client.call_ok("get_camera_list", json!({})).await?;
        let found = list["cameras"]
            .as_array()
            .and_then(|c| c.iter().find(|c| c["name"] == name))
            .cloned();
        if let Some(camera) = found.filter(|c| c["status"] == "CONNECTED") {
            return Ok(camera);
        }
        ensure!(
            tokio::time::Instant::now() < deadline,
            "no CONNECTED camera named {name:?}: {list}"
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

/// Sets `fourcc` at the size of the device's sizes closest to 640x360 (small enough for
/// encoding under emulation), returns it.
fn set_small_format(device: &Path, node: &V4l2Node, fourcc: &str) -> anyhow::Result<(u32, u32)> {
    let (width, height) = node
        .formats
        .iter()
        .filter(|f| f.fourcc == fourcc)
        .flat_map(|f| f.sizes.iter().map(|s| (s.width, s.height)))
        .min_by_key(|(w, h)| (i64::from(*w) * i64::from(*h) - 640 * 360).abs())
        .with_context(|| format!("{} offers no {fourcc} size", node.path))?;
    let dev = v4l2dev::open(device)?;
    let mut format = dev.format()?;
    format.width = width;
    format.height = height;
    format.fourcc = v4l::FourCC::new(fourcc.as_bytes().try_into()?);
    format.stride = 0;
    format.size = 0;
    let format = dev.set_format(&format)?;
    ensure!(
        (format.width, format.height) == (width, height),
        "asked {} for {width}x{height}, got {}x{}",
        node.path,
        format.width,
        format.height
    );
    Ok((width, height))
}

/// The camera service's discovery finds a real capture device (vivid in the lab) with the
/// capabilities the probe reports for it — every format, sizes and rates the driver
/// enumerates — and its current size; a snapshot of it decodes at that size, and a 3 s recording
/// of it is a readable H.264 file of that size with frames (vivid's rate under emulation is
/// not asserted).
#[realtest::test(tags = ["needs-v4l2", "needs-ffmpeg"], timeout = "180s")]
async fn service_discovers_a_real_camera_with_its_capabilities(
    ctx: &mut Ctx,
) -> anyhow::Result<()> {
    let lease = ctx.lease_camera(&CameraRequirements::any().fourcc("YUYV").loopback(false))?;
    let node = lease.node().clone();
    let (width, height) = set_small_format(lease.path(), &node, "YUYV")?;
    let size = (u64::from(width), u64::from(height));
    let mut check = PostTestCheck::new();
    check.watch_device(lease.path());
    {
        let service = ServiceUnderTest::start_with(
            ctx,
            direct("testsrc").env("CAMERA_SERVICE_CAMERAS_DISCOVER_V4L2", "true"),
        )?;
        check.track_processes_of(service.pid())?;
        check.expect_removed(service.root());
        let mut client = service.client(Role::Operator).await?;
        let camera = wait_listed(&mut client, &node.card).await?;
        ctx.log(format_args!("listed: {camera}"));
        let id = camera["device"].as_str().context("device id")?.to_owned();
        assert_eq!(
            camera["resolution"],
            format!("{width}x{height}"),
            "{camera}"
        );

        let caps = client
            .call_ok("get_camera_capabilities", json!({ "device": id }))
            .await?;
        let strings = |key: &str| -> BTreeSet<String> {
            caps[key]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(|v| v.as_str().map(str::to_owned))
                .collect()
        };
        let formats = strings("formats");
        // Plain FourCCs as the probe names them (its big-endian variants carry a `-BE`).
        let probe_formats: BTreeSet<String> = node
            .formats
            .iter()
            .map(|f| f.fourcc.clone())
            .filter(|f| !f.ends_with("-BE") && f.len() <= 4)
            .collect();
        let missing: Vec<&String> = probe_formats.difference(&formats).collect();
        ensure!(
            missing.is_empty(),
            "formats the probe found but the service does not report: {missing:?}; service: \
             {formats:?}"
        );
        assert_eq!(
            caps["formats"].as_array().map(Vec::len),
            Some(node.formats.len()),
            "one entry per enumerated format: {caps}"
        );
        let probe_sizes: BTreeSet<String> = node
            .formats
            .iter()
            .flat_map(|f| f.sizes.iter().map(|s| format!("{}x{}", s.width, s.height)))
            .collect();
        let resolutions = strings("resolutions");
        ensure!(
            !resolutions.is_empty() && resolutions.is_subset(&probe_sizes),
            "service resolutions {resolutions:?} must be sizes the probe found {probe_sizes:?}"
        );
        let yuyv_sizes: BTreeSet<String> = node
            .formats
            .iter()
            .filter(|f| f.fourcc == "YUYV")
            .flat_map(|f| {
                f.sizes
                    .iter()
                    .take(16)
                    .map(|s| format!("{}x{}", s.width, s.height))
            })
            .collect();
        ensure!(
            yuyv_sizes.is_subset(&resolutions),
            "YUYV sizes {yuyv_sizes:?} missing from the service's {resolutions:?}"
        );
        let probe_rates: BTreeSet<u64> = node
            .formats
            .iter()
            .flat_map(|f| f.sizes.iter().flat_map(|s| s.fps.iter()))
            .map(|fps| fps.floor() as u64)
            .collect();
        let rates: BTreeSet<u64> = caps["fps"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(Value::as_u64)
            .collect();
        ensure!(
            !rates.is_empty() && rates.is_subset(&probe_rates),
            "service frame rates {rates:?} must be rates the probe found {probe_rates:?}"
        );

        let snap = client
            .call_ok("take_snapshot", json!({ "device": id }))
            .await?;
        let still = media::probe(
            ctx,
            &service
                .snapshots_dir()
                .join(snap["filename"].as_str().context("filename")?),
        )?;
        assert_eq!(
            (still.codec.as_str(), still.width, still.height),
            ("mjpeg", size.0, size.1)
        );

        let started = client
            .call_ok("start_recording", json!({ "device": id, "duration": 3 }))
            .await?;
        let recording = started["filename"].as_str().context("filename")?.to_owned();
        expect_started_then(&mut client, &id, &recording, "STOPPED").await?;
        let video = media::probe(ctx, &service.recordings_dir().join(&recording))?;
        ctx.log(format_args!("recording: {video:?}"));
        assert_eq!(
            (video.codec.as_str(), video.width, video.height),
            ("h264", size.0, size.1)
        );
        ensure!(
            video.frames.is_some_and(|f| f > 0),
            "the recording has no frames: {video:?}"
        );
    }
    check.verify(ctx)
}

/// Decodes `image` to 8-bit gray and returns (width × height bytes, standard deviation, distinct
/// values).
fn gray_stats(ctx: &Ctx, image: &Path) -> anyhow::Result<(usize, f64, usize)> {
    let out = ctx.output(
        Command::new("ffmpeg")
            .args(["-hide_banner", "-nostdin", "-loglevel", "error", "-i"])
            .arg(image)
            .args(["-frames:v", "1", "-f", "rawvideo", "-pix_fmt", "gray", "-"]),
        Duration::from_secs(30),
    )?;
    ensure!(
        out.status.success(),
        "ffmpeg could not decode {}",
        image.display()
    );
    let pixels = &out.stdout;
    ensure!(!pixels.is_empty(), "{} decoded to nothing", image.display());
    let n = pixels.len() as f64;
    let mean = pixels.iter().map(|p| f64::from(*p)).sum::<f64>() / n;
    let variance = pixels
        .iter()
        .map(|p| (f64::from(*p) - mean).powi(2))
        .sum::<f64>()
        / n;
    let distinct = pixels.iter().collect::<BTreeSet<_>>().len();
    Ok((pixels.len(), variance.sqrt(), distinct))
}

/// A v4l2loopback node as a simulated camera: the simulator writes the `testsrc2` pattern into
/// it, the service's discovery finds it (by its card name) CONNECTED at the written size, and a
/// snapshot of it is a JPEG of that size that shows the pattern — not a flat colour (gray
/// levels spread widely).
#[realtest::test(tags = ["needs-v4l2loopback", "needs-ffmpeg"], timeout = "120s")]
async fn loopback_simulated_camera_snapshot_shows_the_pattern(ctx: &mut Ctx) -> anyhow::Result<()> {
    let pattern = Pattern::new(320, 240, 10);
    let mut check = PostTestCheck::new();
    {
        let lease = ctx.lease_loopback()?;
        check.watch_device(lease.path());
        let card = lease.node().card.clone();
        let mut sim = TestVideoStreamSimulator::write_loopback(ctx, lease.path(), pattern)?;
        sim.wait_loopback_consumable(ctx, WRITER_READY)?;
        let service = ServiceUnderTest::start_with(
            ctx,
            direct("testsrc").env("CAMERA_SERVICE_CAMERAS_DISCOVER_V4L2", "true"),
        )?;
        check.track_processes_of(service.pid())?;
        check.expect_removed(service.root());
        let mut client = service.client(Role::Operator).await?;
        let camera = wait_listed(&mut client, &card).await?;
        assert_eq!(camera["resolution"], pattern.size(), "{camera}");
        let id = camera["device"].as_str().context("device id")?.to_owned();
        let snap = client
            .call_ok("take_snapshot", json!({ "device": id }))
            .await?;
        let path = service
            .snapshots_dir()
            .join(snap["filename"].as_str().context("filename")?);
        let still = media::probe(ctx, &path)?;
        assert_eq!(
            (still.codec.as_str(), still.width, still.height),
            ("mjpeg", u64::from(pattern.width), u64::from(pattern.height))
        );
        let (bytes, stddev, distinct) = gray_stats(ctx, &path)?;
        ctx.log(format_args!(
            "snapshot gray levels: {bytes} pixels, standard deviation {stddev:.1}, {distinct} \
             distinct values"
        ));
        assert_eq!(bytes, (pattern.width * pattern.height) as usize);
        ensure!(
            stddev > 20.0 && distinct > 32,
            "the snapshot is (nearly) flat: standard deviation {stddev:.1}, {distinct} distinct \
             gray levels"
        );
        sim.stop()?;
    }
    check.verify(ctx)
}

/// Two threads of one test want the same real camera (the leases are `flock`s on separate
/// open files, so threads contend exactly as processes do): the second asks while the first
/// holds it, and gets it only after the first lets go. The order of the four events is
/// asserted; a lease that were not exclusive would let the second in at once, while the first
/// still holds the device (open, its format read) for a good while.
#[realtest::test(tags = ["needs-v4l2"], timeout = "60s")]
fn exclusive_lease_makes_a_second_holder_wait(ctx: &mut Ctx) -> anyhow::Result<()> {
    let first = ctx.lease_camera(&CameraRequirements::any().loopback(false))?;
    let same = CameraRequirements::any().path(&first.node().path);
    let events: Mutex<Vec<&str>> = Mutex::new(vec!["first holds"]);
    let event = |name| events.lock().expect("events").push(name);
    let ctx = &*ctx;
    std::thread::scope(|scope| -> anyhow::Result<()> {
        let second = scope.spawn(|| -> anyhow::Result<()> {
            event("second asks");
            let lease = ctx.lease_camera(&same)?;
            event("second holds");
            let format = v4l2dev::open(lease.path())?.format()?;
            ctx.log(format_args!(
                "second holder reads {}x{}",
                format.width, format.height
            ));
            Ok(())
        });
        let deadline = Instant::now() + Duration::from_secs(10);
        while !events.lock().expect("events").contains(&"second asks") {
            ensure!(Instant::now() < deadline, "the second thread never asked");
            std::thread::sleep(Duration::from_millis(5));
        }
        // The first holder uses the device while the second retries (every 50 ms).
        let device = v4l2dev::open(first.path())?;
        let format = device.format()?;
        ctx.log(format_args!(
            "first holder reads {}x{} of {}",
            format.width,
            format.height,
            first.describe()
        ));
        std::thread::sleep(Duration::from_millis(500));
        drop(device);
        event("first releases");
        drop(first);
        second
            .join()
            .map_err(|_| anyhow::anyhow!("the second thread panicked"))?
    })?;
    assert_eq!(
        *events.lock().expect("events"),
        [
            "first holds",
            "second asks",
            "first releases",
            "second holds"
        ]
    );
    Ok(())
}
