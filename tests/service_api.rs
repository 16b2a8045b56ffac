//! Service-level tests: the real `camera-service` binary, a real WebSocket client over a real
//! socket, real FFmpeg processes and real files checked with ffprobe.

mod service_api {
    pub mod auth;
    pub mod children;
    pub mod lifecycle;
    pub mod limits;
    pub mod mediamtx;
    pub mod methods;
    pub mod recording;
    pub mod snapshot;
    pub mod v4l2;
}
mod support;

realtest::main!();
