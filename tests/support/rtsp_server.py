#!/usr/bin/env python3
"""A real RTSP server for the tests: GStreamer's gst-rtsp-server serving a live H.264 test
pattern at rtsp://127.0.0.1:PORT/NAME.

Usage: rtsp_server.py PORT NAME WIDTH HEIGHT FPS

Prints `rtsp server ready on rtsp://127.0.0.1:PORT/NAME` (flushed) once listening; exits on
SIGTERM or SIGINT. The factory is shared, so every client reads the same live pipeline; the GOP
is FPS frames, so a new reader gets a keyframe within a second.
"""

import signal
import sys

import gi

gi.require_version("Gst", "1.0")
gi.require_version("GstRtspServer", "1.0")
from gi.repository import GLib, Gst, GstRtspServer  # noqa: E402


def main():
    if len(sys.argv) != 6:
        sys.stderr.write(__doc__)
        return 2
    port, name = int(sys.argv[1]), sys.argv[2]
    width, height, fps = (int(v) for v in sys.argv[3:6])
    Gst.init(None)
    server = GstRtspServer.RTSPServer()
    server.set_address("127.0.0.1")
    server.set_service(str(port))
    factory = GstRtspServer.RTSPMediaFactory()
    factory.set_launch(
        f"( videotestsrc is-live=true pattern=smpte "
        f"! video/x-raw,width={width},height={height},framerate={fps}/1 "
        f"! x264enc tune=zerolatency speed-preset=ultrafast key-int-max={fps} "
        f"! video/x-h264,profile=constrained-baseline "
        f"! rtph264pay name=pay0 pt=96 config-interval=1 )"
    )
    factory.set_shared(True)
    server.get_mount_points().add_factory(f"/{name}", factory)
    loop = GLib.MainLoop()
    if server.attach(None) == 0:
        sys.stderr.write(f"rtsp server: cannot listen on 127.0.0.1:{port}\n")
        return 1
    for sig in (signal.SIGTERM, signal.SIGINT):
        GLib.unix_signal_add(GLib.PRIORITY_DEFAULT, sig, loop.quit)
    print(f"rtsp server ready on rtsp://127.0.0.1:{port}/{name}", flush=True)
    loop.run()
    return 0


if __name__ == "__main__":
    sys.exit(main())
