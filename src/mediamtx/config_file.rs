//! The `mediamtx.yml` of a managed instance: written once before start (editing it later would
//! hot-reload and drop API-registered paths), API on loopback, RTSP over TCP only, the protocols
//! the service does not use turned off. Keys depend on the MediaMTX version because unknown keys
//! are fatal.

use std::net::{IpAddr, SocketAddr};

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

/// Parses `vX.Y.Z[-…]` into (X, Y, Z).
pub fn parse_version(text: &str) -> Option<(u32, u32, u32)> {
    let core = text.trim().strip_prefix('v')?.split('-').next()?;
    let mut parts = core.split('.').map(|p| p.parse::<u32>().ok());
    Some((parts.next()??, parts.next()??, parts.next()??))
}

/// The YAML config for MediaMTX `version` (as printed by `mediamtx --version`), listening on
/// `host` for streams.
pub fn render_config(version: &str, host: IpAddr, ports: ManagedPorts) -> String {
    let version = parse_version(version).unwrap_or((1, 11, 0));
    let transports_key = if version >= (1, 11, 0) {
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
         srt: no\n",
        api = ports.api,
        rtsp = SocketAddr::new(host, ports.rtsp),
        hls = SocketAddr::new(host, ports.hls),
        webrtc = SocketAddr::new(host, ports.webrtc),
    );
    if version >= (1, 11, 0) {
        // Older versions name this listener differently; they keep its default (:8189).
        yaml.push_str(&format!(
            "webrtcLocalUDPAddress: {}\n",
            SocketAddr::new(host, ports.webrtc_udp)
        ));
    }
    if version >= (1, 19, 0) {
        yaml.push_str("moq: no\n");
    }
    yaml.push_str("pathDefaults:\n  recordDeleteAfter: 0s\npaths: {}\n");
    yaml
}
