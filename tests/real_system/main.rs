//! The real-system suite: real FFmpeg, real V4L2 devices, a real MediaMTX — each test skipped
//! with the reason where its part is missing. Run with `cargo test --test real_system`; see the
//! README for tags and flags.

mod hardening;
mod hardware;
mod interrupt;
mod mediamtx;
mod rtsp_direct;
mod scenarios;
#[path = "../support/mod.rs"]
mod support;
mod tools;
mod v4l2;

realtest::main!();
