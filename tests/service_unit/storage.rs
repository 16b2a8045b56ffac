//! File name validation and storage operations on a real directory.

use camera_service::storage::{validate_file_name, FileKind, Storage, StorageError};

#[realtest::test]
fn client_file_names_are_validated() -> anyhow::Result<()> {
    for good in [
        "camera0_2025-01-15_14-30-00.mp4",
        "snap.jpg",
        "a b.png",
        "x.y.jpg",
    ] {
        assert!(
            validate_file_name(good).is_ok(),
            "{good:?} should be accepted"
        );
    }
    let bad = [
        ("", "empty"),
        ("/etc/passwd", "absolute"),
        ("../jwt-secret", "separator"),
        ("a/b", "separator"),
        ("a\\b", "separator"),
        ("..", "`..`"),
        ("x..jpg", "`..`"),
        ("nul\0.jpg", "NUL"),
        (".hidden", "starts with"),
        ("line\nbreak", "control"),
    ];
    for (name, reason) in bad {
        match validate_file_name(name) {
            Err(StorageError::InvalidName { reason: got, .. }) => {
                assert!(got.contains(reason), "{name:?}: {got}")
            }
            other => panic!("{name:?} accepted: {other:?}"),
        }
    }
    assert!(validate_file_name(&"a".repeat(256)).is_err());
    Ok(())
}

#[realtest::test]
fn list_info_delete_and_retention(ctx: &mut realtest::Ctx) -> anyhow::Result<()> {
    let dir = ctx.temp_dir()?;
    let storage = Storage::new(dir.join("data"));
    storage.create_dirs()?;
    let snapshots = storage.dir(FileKind::Snapshot);
    std::fs::write(snapshots.join("a.jpg"), [0u8; 10])?;
    std::fs::write(snapshots.join("b.jpg"), [0u8; 20])?;
    std::fs::write(storage.dir(FileKind::Recording).join("r.mp4"), [0u8; 30])?;
    std::fs::write(dir.join("data/jwt-secret"), "outside the file dirs")?;
    let listed = storage.list(FileKind::Snapshot)?;
    assert_eq!(listed.len(), 2);
    assert_eq!(storage.total_size(FileKind::Snapshot)?, 30);
    let info = storage.info(FileKind::Snapshot, "b.jpg")?;
    assert_eq!(
        (info.file_size, info.download_url.as_str()),
        (20, "/files/snapshots/b.jpg")
    );
    assert!(matches!(
        storage.info(FileKind::Snapshot, "r.mp4"),
        Err(StorageError::NotFound { .. })
    ));
    assert!(matches!(
        storage.delete(FileKind::Snapshot, "../jwt-secret"),
        Err(StorageError::InvalidName { .. })
    ));
    assert_eq!(storage.delete(FileKind::Snapshot, "a.jpg")?, 10);
    // Size policy: keep at most 25 bytes over both dirs, sparing the file in progress.
    let (deleted, freed) = storage.apply_retention(None, Some(25), &["r.mp4".to_owned()])?;
    assert_eq!((deleted, freed), (1, 20));
    assert!(storage.dir(FileKind::Recording).join("r.mp4").exists());
    assert!(dir.join("data/jwt-secret").exists());
    let usage = storage.disk_usage()?;
    assert!(usage.total_space > 0 && usage.usage_percent() <= 100.0);
    Ok(())
}
