//! Unit-level tests of the camera-service library, run through realtest.

mod service_unit {
    pub mod auth;
    pub mod camera;
    pub mod config;
    pub mod envelope;
    pub mod ffmpeg;
    pub mod mediamtx;
    pub mod mediamtx_conformance;
    pub mod mediamtx_release;
    pub mod mediamtx_standin;
    pub mod presence;
    pub mod process;
    pub mod storage;
}

realtest::main!();
