//! Fixtures for testing the camera service: the real binary on a free port with a temporary
//! data directory, and a WebSocket JSON-RPC client.
// Each test binary uses a different part of the fixtures.
#![allow(dead_code)]

pub mod http;
pub mod media;
pub mod procfs;
pub mod service;
pub mod ws_client;
