//! camera-service: discovers cameras, takes snapshots and recordings with FFmpeg, and serves a
//! WebSocket JSON-RPC 2.0 API with authentication, roles and push notifications.
//!
//! The binary (`src/main.rs`) only parses the command line and calls into this library.

// Unsafe code only where a syscall must run in a forked child (`process.rs`).
#![deny(unsafe_code)]
#![warn(missing_docs)]

pub mod api;
pub mod auth;
pub mod backend;
pub mod camera;
pub mod cli;
pub mod config;
pub mod daemon;
pub mod ffmpeg;
pub mod media_slots;
pub mod mediamtx;
pub mod metrics;
pub mod notify;
pub mod process;
pub mod readiness;
pub mod recording;
pub mod retention;
pub mod rpc;
pub mod service;
pub mod snapshot;
pub mod storage;
