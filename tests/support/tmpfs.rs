//! A real tmpfs mounted for one test (full or read-only storage), unmounted on drop.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use anyhow::ensure;
use realtest::{Ctx, Skip};

/// A tmpfs mounted on a directory of the test's.
pub struct Tmpfs(PathBuf);

impl Tmpfs {
    /// Mounts a tmpfs of `size` (`mount -o size=…`, e.g. `3m`) on `dir`. Without the right to
    /// mount (root without CAP_SYS_ADMIN, an unprivileged container) the test is skipped
    /// (`needs-root`) with mount's message.
    pub fn mount(ctx: &Ctx, dir: &Path, size: &str) -> anyhow::Result<Self> {
        let out = ctx.output(
            Command::new("mount")
                .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
                .arg(dir),
            Duration::from_secs(10),
        )?;
        if !out.status.success() {
            return Err(Skip::new(
                "needs-root",
                format!(
                    "cannot mount a tmpfs: {}",
                    String::from_utf8_lossy(&out.stderr).trim()
                ),
            )
            .into());
        }
        Ok(Self(dir.to_owned()))
    }

    /// Remounts it with `mode` (`ro`, `rw`).
    pub fn remount(&self, ctx: &Ctx, mode: &str) -> anyhow::Result<()> {
        let out = ctx.output(
            Command::new("mount")
                .args(["-o", &format!("remount,{mode}")])
                .arg(&self.0),
            Duration::from_secs(10),
        )?;
        ensure!(
            out.status.success(),
            "remount {mode} of {} failed: {}",
            self.0.display(),
            String::from_utf8_lossy(&out.stderr).trim()
        );
        Ok(())
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg(&self.0).status();
    }
}
