//! Opening V4L2 nodes from a test process without handing them to its child processes.
//!
//! The `v4l` crate opens nodes without `O_CLOEXEC`, so a descriptor opened by one test is
//! inherited by every process another test (a parallel thread of the same process) starts
//! meanwhile — a camera service, a recording FFmpeg — and stays open for that process's whole
//! life. On a v4l2loopback node an opener that stays keeps the node in capture mode with the last
//! writer's format after that writer has gone, and keeps the module from being unloaded. So
//! every node a test opens is marked close-on-exec at once (the moment between `open` and
//! `fcntl` remains, which is as short as it gets without the crate's help).

use std::path::Path;

use anyhow::Context;

/// Opens `path` (read-write, non-blocking, as `v4l::Device::with_path`) and marks the descriptor
/// close-on-exec.
pub fn open(path: &Path) -> anyhow::Result<v4l::Device> {
    let device =
        v4l::Device::with_path(path).with_context(|| format!("open {}", path.display()))?;
    let fd = device.handle().fd();
    // SAFETY: F_SETFD on a descriptor this process has open (owned by `device`); no memory is
    // passed.
    #[allow(unsafe_code)]
    let set = unsafe { nix::libc::fcntl(fd, nix::libc::F_SETFD, nix::libc::FD_CLOEXEC) };
    if set == -1 {
        return Err(std::io::Error::last_os_error())
            .with_context(|| format!("FD_CLOEXEC on {}", path.display()));
    }
    Ok(device)
}
