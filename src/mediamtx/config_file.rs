//! The `mediamtx.yml` of a managed instance: written once before start (editing it later would
//! hot-reload and drop API-registered paths), API on loopback, RTSP over TCP only, the protocols
//! the service does not use turned off. Keys depend on the MediaMTX version because unknown keys
//! are fatal.

use std::net::{IpAddr, SocketAddr};

use super::version::Version;

/// Listener ports of a managed MediaMTX.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ManagedPorts {
    /// Control API (bound to 127.0.0.1).
    pub api: u16,
    /// RTSP.
    pub rtsp: u16,
    /// HLS.
    pub hls: u16,
    /// WebRTC.
    pub webrtc: u16,
    /// WebRTC's ICE listener (UDP).
    pub webrtc_udp: u16,
}

/// The YAML config for MediaMTX `version` (a supported one, see [`super::check_supported`]),
/// listening on `host` for streams. Every key is one of that release's `mediamtx.yml` (checked
/// per release by the conformance test against tests/data/mediamtx).
pub fn render_config(version: Version, host: IpAddr, ports: ManagedPorts) -> String {
    // `protocols` was renamed in v1.11.0 (the old name is a deprecated alias).
    let transports_key = if version >= Version::new(1, 11, 0) {
        "rtspTransports"
    } else {
        "protocols"
    };
    let mut yaml = format!(
        "# Written by camera-service before MediaMTX starts; paths are registered through the API.\n\
         logLevel: info\n\
         logDestinations: [stdout]\n\
         api: yes\n\
         apiAddress: 127.0.0.1:{api}\n\
         metrics: no\n\
         pprof: no\n\
         playback: no\n\
         rtsp: yes\n\
         {transports_key}: [tcp]\n\
         rtspAddress: {rtsp}\n\
         rtmp: no\n\
         hls: yes\n\
         hlsAddress: {hls}\n\
         webrtc: yes\n\
         webrtcAddress: {webrtc}\n\
         webrtcLocalUDPAddress: {webrtc_udp}\n\
         srt: no\n",
        api = ports.api,
        rtsp = SocketAddr::new(host, ports.rtsp),
        hls = SocketAddr::new(host, ports.hls),
        webrtc = SocketAddr::new(host, ports.webrtc),
        webrtc_udp = SocketAddr::new(host, ports.webrtc_udp),
    );
    // MoQ (v1.19.0+) is on by default and writes a key pair into the working directory.
    if version >= Version::new(1, 19, 0) {
        yaml.push_str("moq: no\n");
    }
    yaml.push_str("pathDefaults:\n  recordDeleteAfter: 0s\npaths: {}\n");
    yaml
}
