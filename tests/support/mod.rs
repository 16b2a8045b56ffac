//! Fixtures for testing the camera service: the real binary on a free port with a temporary
//! data directory, a WebSocket JSON-RPC client, a real MediaMTX, FFmpeg-simulated cameras, and
//! the post-test check.
//!
//! Every fixture starts its processes through the test's `Ctx` and makes its temporary
//! directories with `Ctx::fixture_temp_dir`, so the harness knows them: an interrupted run
//! (Ctrl-C, SIGTERM) stops the processes and removes the directories, and what a killed run left
//! is swept by the next run.
// Each test binary uses a different part of the fixtures.
#![allow(dead_code)]

pub mod http;
pub mod hygiene;
pub mod media;
pub mod mediamtx;
pub mod procfs;
pub mod rtsp_server;
pub mod service;
pub mod simulator;
pub mod tmpfs;
pub mod v4l2dev;
pub mod ws_client;
