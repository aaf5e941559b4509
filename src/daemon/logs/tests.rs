//! The writer's rotation and the cursor's reading, in process.

use std::sync::Arc;

use super::ProcessLog;
use super::read::LogCursor;
use crate::config::Rotation;

fn log(dir: &tempfile::TempDir, max_bytes: u64, keep: usize) -> Arc<ProcessLog> {
    Arc::new(ProcessLog::new(
        dir.path(),
        1,
        "web",
        Rotation { max_bytes, keep },
    ))
}

/// Lines `from..to`, each `NNNNNN\n`, as one batch.
fn lines(from: u64, to: u64) -> Vec<u8> {
    (from..to)
        .flat_map(|n| format!("{n:06}\n").into_bytes())
        .collect()
}

fn sizes(dir: &tempfile::TempDir) -> Vec<(String, u64)> {
    let mut files: Vec<(String, u64)> = std::fs::read_dir(dir.path())
        .unwrap()
        .flatten()
        .map(|e| {
            let name = e.file_name().to_string_lossy().into_owned();
            (name, e.metadata().unwrap().len())
        })
        .collect();
    files.sort();
    files
}

#[test]
fn a_batch_is_split_between_files_at_line_ends() {
    let dir = tempfile::tempdir().unwrap();
    let log = log(&dir, 4096, 10);
    // 1000 lines of 7 bytes: 585 fit in 4096 bytes.
    log.append(&lines(0, 1000)).unwrap();
    assert_eq!(
        sizes(&dir),
        [("1-web.log".into(), 2905), ("1-web.log.1".into(), 4095)]
    );
    // A line longer than a file has a file of its own; the next line starts another.
    let mut long = vec![b'x'; 5000];
    long.push(b'\n');
    log.append(&long).unwrap();
    log.append(b"after\n").unwrap();
    assert_eq!(
        sizes(&dir),
        [
            ("1-web.log".into(), 6),
            ("1-web.log.1".into(), 5001),
            ("1-web.log.2".into(), 2905),
            ("1-web.log.3".into(), 4095),
        ]
    );
}

/// Everything the cursor has to give now, as the numbers read.
async fn drain(cursor: &mut LogCursor) -> Vec<u64> {
    let mut bytes = Vec::new();
    while let Some(chunk) = cursor.next_chunk().await.unwrap() {
        bytes.extend_from_slice(&chunk);
    }
    String::from_utf8(bytes)
        .unwrap()
        .lines()
        .map(|l| l.parse().unwrap())
        .collect()
}

#[tokio::test]
async fn a_new_daemon_reads_every_file_an_old_one_rotated() {
    let dir = tempfile::tempdir().unwrap();
    let old = log(&dir, 70, 3);
    old.append(&lines(0, 25)).unwrap();
    drop(old);
    let new = log(&dir, 70, 3);
    let mut cursor = LogCursor::open(new.clone(), None).await.unwrap();
    assert_eq!(drain(&mut cursor).await, (0..25).collect::<Vec<_>>());
    new.append(&lines(25, 40)).unwrap();
    assert_eq!(drain(&mut cursor).await, (25..40).collect::<Vec<_>>());
}
