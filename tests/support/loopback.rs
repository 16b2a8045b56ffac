//! `LoopbackLease`: an exclusive hold on a v4l2loopback node to *write into*. realtest's
//! `lease_camera` only matches nodes that advertise capture, which a loopback created with
//! `exclusive_caps=1` does only once a writer streams; this takes the same per-device lock file
//! as realtest's lease (`$TMPDIR/realtest-leases/dev-videoN.lock`, `flock`), so the two never
//! hand out the same node.

use std::fs::{File, OpenOptions};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use nix::fcntl::{Flock, FlockArg};
use realtest::{Ctx, Skip, V4l2Node};

/// An exclusive hold on one loopback node, released on drop.
#[derive(Debug)]
pub struct LoopbackLease {
    node: V4l2Node,
    _lock: Flock<File>,
}

impl LoopbackLease {
    /// Leases a v4l2loopback node, waiting up to `wait` while all are leased; skips the test
    /// (`needs-v4l2loopback`) when the probe found none.
    pub fn acquire(ctx: &Ctx, wait: Duration) -> anyhow::Result<Self> {
        let nodes: Vec<&V4l2Node> = ctx
            .probe()
            .v4l2
            .nodes
            .iter()
            .filter(|n| n.loopback)
            .collect();
        if nodes.is_empty() {
            return Err(Skip::new("needs-v4l2loopback", "no v4l2loopback node").into());
        }
        let deadline = Instant::now() + wait;
        loop {
            for node in &nodes {
                if let Some(lock) = try_lock(node)? {
                    ctx.log(format_args!(
                        "leased loopback {} ({})",
                        node.path, node.card
                    ));
                    return Ok(Self {
                        node: (*node).clone(),
                        _lock: lock,
                    });
                }
            }
            anyhow::ensure!(
                Instant::now() < deadline,
                "every v4l2loopback node stayed leased for {wait:?}"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// The node as the probe saw it.
    pub fn node(&self) -> &V4l2Node {
        &self.node
    }

    /// Its path.
    pub fn path(&self) -> &Path {
        Path::new(&self.node.path)
    }
}

fn lock_path(node: &V4l2Node) -> PathBuf {
    std::env::temp_dir().join("realtest-leases").join(format!(
        "{}.lock",
        node.path.trim_start_matches('/').replace('/', "-")
    ))
}

fn try_lock(node: &V4l2Node) -> anyhow::Result<Option<Flock<File>>> {
    let path = lock_path(node);
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)?;
    }
    let file = OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&path)?;
    match Flock::lock(file, FlockArg::LockExclusiveNonblock) {
        Ok(lock) => Ok(Some(lock)),
        Err((_, nix::errno::Errno::EWOULDBLOCK)) => Ok(None),
        Err((_, errno)) => Err(anyhow::anyhow!("lock {}: {errno}", path.display())),
    }
}
