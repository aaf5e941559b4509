//! The writer's rotation and the cursor's reading, in process: every line read once, or counted
//! as missed, whatever happens to the files.

use std::sync::Arc;
use std::time::Instant;

use super::read::{LogCursor, Piece};
use super::{ProcessLog, RECHECK};
use crate::config::Rotation;
use crate::protocol::{GapCause, GapSize};

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

/// Everything the cursor has to give now: the numbers read, and the lines said missing.
async fn drain(cursor: &mut LogCursor) -> (Vec<u64>, Vec<(GapCause, GapSize)>) {
    let (mut bytes, mut gaps) = (Vec::new(), Vec::new());
    while let Some(piece) = cursor.next().await.unwrap() {
        match piece {
            Piece::Bytes(chunk) => bytes.extend_from_slice(&chunk),
            Piece::Gap(missed) => gaps.extend(missed.gaps("web").iter().map(|g| (g.cause, g.size))),
        }
    }
    let numbers = String::from_utf8(bytes)
        .unwrap()
        .lines()
        .map(|l| l.parse().unwrap())
        .collect();
    (numbers, gaps)
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

#[tokio::test]
async fn a_cursor_lapped_by_rotation_is_told_exactly_what_it_missed() {
    let dir = tempfile::tempdir().unwrap();
    let log = log(&dir, 4096, 2);
    log.append(&lines(0, 10)).unwrap();
    let mut cursor = LogCursor::open(log.clone(), None).await.unwrap();
    let (first, gaps) = drain(&mut cursor).await;
    assert_eq!(first, (0..10).collect::<Vec<_>>());
    assert!(gaps.is_empty());

    // Far more than two files' worth while the cursor waits.
    log.append(&lines(10, 5000)).unwrap();
    let (rest, gaps) = drain(&mut cursor).await;
    let [(GapCause::Rotated, GapSize::Lines(missed))] = gaps[..] else {
        panic!("one gap of counted lines: {gaps:?}");
    };
    // The file the cursor held is read to its end; the gap comes after it.
    let jumps: Vec<(u64, u64)> = std::iter::once(9)
        .chain(rest.iter().copied())
        .collect::<Vec<_>>()
        .windows(2)
        .filter(|w| w[1] != w[0] + 1)
        .map(|w| (w[0], w[1] - w[0] - 1))
        .collect();
    assert_eq!(jumps, [(584, missed)], "one file was read to its end first");
    assert_eq!(rest.last(), Some(&4999));
    assert_eq!(10 + missed + rest.len() as u64, 5000);
}

#[tokio::test]
async fn a_cursor_follows_a_file_deleted_and_started_again() {
    let dir = tempfile::tempdir().unwrap();
    let log = log(&dir, 1 << 20, 3);
    log.append(&lines(0, 10)).unwrap();
    let mut cursor = LogCursor::open(log.clone(), None).await.unwrap();
    assert_eq!(drain(&mut cursor).await.0.len(), 10);

    std::fs::remove_file(log.path_at(0)).unwrap();
    // Until the writer looks again, lines go into the deleted file, which the cursor holds.
    log.append(&lines(10, 20)).unwrap();
    let look_again = |log: &ProcessLog| {
        let mut slot = log.file.lock().unwrap();
        slot.as_mut().unwrap().checked = Instant::now().checked_sub(RECHECK).unwrap();
    };
    look_again(&log);
    log.append(&lines(20, 30)).unwrap();
    assert!(log.path_at(0).exists(), "the writer started the file again");
    let (numbers, gaps) = drain(&mut cursor).await;
    assert_eq!(numbers, (10..30).collect::<Vec<_>>());
    assert!(gaps.is_empty(), "{gaps:?}");

    // A cursor that never held the deleted file is told what was in it.
    let mut late = LogCursor::open(log.clone(), None).await.unwrap();
    assert_eq!(drain(&mut late).await.0, (20..30).collect::<Vec<_>>());
    let mut behind = LogCursor::open(log.clone(), None).await.unwrap();
    log.append(&lines(30, 40)).unwrap();
    log.file.lock().unwrap().as_mut().unwrap().checked = Instant::now();
    std::fs::remove_file(log.path_at(0)).unwrap();
    log.append(&lines(40, 45)).unwrap();
    look_again(&log);
    log.append(&lines(45, 50)).unwrap();
    // `behind` holds the deleted file: it reads it all, then the new one.
    assert_eq!(drain(&mut behind).await.0, (20..50).collect::<Vec<_>>());
    // `late` holds it too, at its end; it also reads on.
    assert_eq!(drain(&mut late).await.0, (30..50).collect::<Vec<_>>());
}

#[tokio::test]
async fn a_cursor_behind_a_deleted_file_is_told_it_missed_it() {
    let dir = tempfile::tempdir().unwrap();
    let log = log(&dir, 70, 3);
    // Ten lines per file: the cursor holds the first file, then the current one is deleted.
    log.append(&lines(0, 10)).unwrap();
    let mut cursor = LogCursor::open(log.clone(), Some(0)).await.unwrap();
    log.append(&lines(10, 20)).unwrap();
    std::fs::remove_file(log.path_at(0)).unwrap();
    log.file.lock().unwrap().as_mut().unwrap().checked =
        Instant::now().checked_sub(RECHECK).unwrap();
    log.append(&lines(20, 25)).unwrap();
    let (numbers, gaps) = drain(&mut cursor).await;
    assert_eq!(numbers, (20..25).collect::<Vec<_>>());
    assert_eq!(gaps, [(GapCause::Deleted, GapSize::Lines(10))]);
}

#[tokio::test]
async fn a_new_daemon_reads_every_file_an_old_one_rotated() {
    let dir = tempfile::tempdir().unwrap();
    let old = log(&dir, 70, 3);
    old.append(&lines(0, 25)).unwrap();
    drop(old);
    let new = log(&dir, 70, 3);
    let mut cursor = LogCursor::open(new.clone(), None).await.unwrap();
    assert_eq!(drain(&mut cursor).await.0, (0..25).collect::<Vec<_>>());
    new.append(&lines(25, 40)).unwrap();
    assert_eq!(drain(&mut cursor).await.0, (25..40).collect::<Vec<_>>());
}
