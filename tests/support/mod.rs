//! Fixtures for testing the camera service: the real binary on a free port with a temporary
//! data directory, a WebSocket JSON-RPC client, a real MediaMTX, FFmpeg-simulated cameras, and
//! the post-test check.
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
