//! One client's trouble and everyone else's transfers (issue 11, test 2): eight bulk reads of
//! 8 MiB each through one tunnel, and while they are mid-transfer a ninth client resets its
//! connection (SO_LINGER 0) and the server fails a tenth's stream. Natively the eight complete
//! byte-exact and the tunnel is not rebuilt. On kubectl, which carries every connection over
//! one session, the test records what each fault cut or stalled and asserts that the tunnel
//! recovers. The bytes come from the harness's bulk server behind the fake API server's proxy
//! relay, so every byte is checked against what was sent.

mod common;

use std::collections::BTreeMap;
use std::io::Read;
use std::net::TcpStream;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::thread::JoinHandle;
use std::time::Duration;

use common::e2e::{E2e, Kubectl};
use common::*;

/// Each bulk read's size.
const LEN: usize = 8 << 20;
/// How much a client reads before the faults come, and what the ninth and tenth read.
const HEAD: usize = 256 << 10;
/// The bulk server's pause after each 64 KiB: 8 MiB take some 3 s, whatever the buffers along
/// the way hold, so the eight are surely mid-transfer, data flowing, while the ninth and tenth
/// come and go.
const PACE: Duration = Duration::from_millis(25);
/// A reader that gets nothing for this long counts its transfer as stalled.
const STALL: Duration = Duration::from_secs(5);
/// The message the server fails the tenth's stream with.
const FAILURE: &str = "fake kubelet: the tenth's stream is failed on purpose";

/// One of the eight: how far it got, and how it ended.
struct Reader {
    seed: u64,
    progress: Arc<AtomicUsize>,
    handle: JoinHandle<Result<(), String>>,
}

/// Starts a checked read of `LEN` bytes of `seed` through 127.0.0.1:`port`, to its end.
fn reader(port: u16, seed: u64) -> Reader {
    let progress = Arc::new(AtomicUsize::new(0));
    let done = progress.clone();
    let handle = std::thread::spawn(move || {
        let expected = bulk_bytes(seed, LEN);
        let mut stream = TcpStream::connect(("127.0.0.1", port)).map_err(|e| e.to_string())?;
        bulk_ask(&mut stream, seed, LEN, PACE).map_err(|e| e.to_string())?;
        // A stalled transfer is a failure too, found well before the test's time is up.
        let _ = stream.set_read_timeout(Some(STALL));
        let step = 64 << 10;
        for offset in (0..LEN).step_by(step) {
            read_expecting(&mut stream, &expected[offset..offset + step], offset)?;
            done.store(offset + step, Ordering::SeqCst);
        }
        match stream.read(&mut [0u8; 1]) {
            Ok(0) => Ok(()),
            Ok(_) => Err("more bytes than were sent".into()),
            Err(e) => Err(format!("{e} after all {LEN} bytes, instead of the end")),
        }
    });
    Reader {
        seed,
        progress,
        handle,
    }
}

/// A client that asks for `seed` and reads `HEAD` bytes of it, checked.
fn head_reader(port: u16, seed: u64) -> TcpStream {
    let mut stream = TcpStream::connect(("127.0.0.1", port)).unwrap();
    bulk_ask(&mut stream, seed, LEN, PACE).unwrap();
    read_expecting(&mut stream, &bulk_bytes(seed, HEAD), 0).unwrap();
    stream
}

/// The fake's open forwarded connections: id to the bytes each has sent its client.
fn forwards(e2e: &E2e) -> BTreeMap<u64, u64> {
    e2e.api.state()["forwards"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| (f["id"].as_u64().unwrap(), f["bytes_down"].as_u64().unwrap()))
        .collect()
}

/// The faults one client's connection meets while the eight read.
#[derive(Debug, Clone, Copy)]
struct Faults {
    /// A ninth client reads `HEAD` and resets its connection.
    ninth_resets: bool,
    /// The server fails the stream of a tenth client that has read `HEAD`.
    tenth_fails: bool,
}

/// The scenario: the eight start; once each has read `HEAD`, the `faults` come, one after the
/// other, while the eight are mid-transfer. The eight's outcomes, in order.
fn eight_reads_and(e2e: &E2e, faults: Faults) -> Vec<(u64, Result<(), String>)> {
    let bulk = e2e.bulk.as_ref().expect("a bulk server");
    let readers: Vec<Reader> = (1..=8).map(|seed| reader(e2e.port, seed)).collect();
    wait_for("the eight to be reading", Duration::from_secs(30), || {
        readers
            .iter()
            .all(|r| r.progress.load(Ordering::SeqCst) >= HEAD || r.handle.is_finished())
            .then_some(())
    });
    let mid: Vec<Option<Transfer>> = (1..=8).map(|s| bulk.transfer(s)).collect();
    assert!(
        mid.iter()
            .all(|t| t.is_some_and(|t| !t.ended && t.written < LEN)),
        "the eight are mid-transfer when the faults come: {mid:?}"
    );

    if faults.ninth_resets {
        reset(head_reader(e2e.port, 9));
        // The reset has gone through the tunnel once the server is done with the ninth.
        wait_for(
            "the ninth's reset to reach the server",
            Duration::from_secs(10),
            || bulk.transfer(9).filter(|t| t.ended),
        );
    }

    if faults.tenth_fails {
        let before = forwards(e2e);
        let mut tenth = head_reader(e2e.port, 10);
        // The tenth's is the connection that sent its first bytes since `before`: the eight's
        // had sent theirs, and one opened ahead has sent none.
        let theirs: Vec<u64> = forwards(e2e)
            .into_iter()
            .filter(|&(id, sent)| sent >= HEAD as u64 && before.get(&id).is_none_or(|&b| b == 0))
            .map(|(id, _)| id)
            .collect();
        assert_eq!(theirs.len(), 1, "one connection is the tenth's: {theirs:?}");
        e2e.api.fail_stream(Some(theirs[0]), FAILURE);
        // The tenth's client sees its connection end, well before its 8 MiB.
        tenth
            .set_read_timeout(Some(Duration::from_secs(10)))
            .unwrap();
        let mut rest = Vec::new();
        let end = tenth.read_to_end(&mut rest);
        assert!(
            HEAD + rest.len() < LEN,
            "the failed stream's client got {} bytes ({end:?})",
            HEAD + rest.len()
        );
        if let Err(e) = &end {
            assert_ne!(
                e.kind(),
                std::io::ErrorKind::WouldBlock,
                "the tenth was left hanging"
            );
        }
    }

    readers
        .into_iter()
        .map(|r| (r.seed, r.handle.join().expect("a reader thread")))
        .collect()
}

#[test]
fn native_eight_bulk_reads_outlive_a_reset_and_a_failed_stream() {
    let Some(e2e) = E2e::bulk(Some("native"), Kubectl::Tripwire, &[]) else {
        return;
    };
    e2e.forward_ok(&[]);
    let restarts = e2e.restarts();
    let outcomes = eight_reads_and(
        &e2e,
        Faults {
            ninth_resets: true,
            tenth_fails: true,
        },
    );
    let failed: Vec<_> = outcomes.iter().filter(|(_, r)| r.is_err()).collect();
    assert!(
        failed.is_empty(),
        "every one of the eight completes byte-exact: {failed:?}\n{}",
        e2e.log()
    );
    assert_eq!(e2e.restarts(), restarts, "no rebuild: {}", e2e.log());
    e2e.logged("about the failed stream and the server's message", |l| {
        l.contains("stream") && l.contains(FAILURE)
    });
    // And the tunnel carries on.
    assert_eq!(e2e.bulk_read(11, LEN), Ok(()));
    assert_eq!(e2e.entry()["transport"], "native");
    e2e.assert_no_kubectl();
}

/// Whether the tunnel carries 1 MiB of `seed` now, each read waiting at most 3 s.
fn carries(e2e: &E2e, seed: u64) -> bool {
    let Ok(mut stream) = TcpStream::connect(("127.0.0.1", e2e.port)) else {
        return false;
    };
    let asked = bulk_ask(&mut stream, seed, 1 << 20, Duration::ZERO);
    let _ = stream.set_read_timeout(Some(Duration::from_secs(3)));
    asked.is_ok() && read_expecting(&mut stream, &bulk_bytes(seed, 1 << 20), 0).is_ok()
}

/// The same eight on the kubectl transport, with the oldest and the newest kubectl, once with
/// the ninth's reset and once with the tenth's failed stream (each on a tunnel of its own: one
/// may wedge kubectl): what kubectl cut or stalled is recorded (on stderr, and in the message of
/// the assertion that the tunnel recovers by itself, with a probe every 2 s: within 45 s, as
/// kubectl 1.27's session wedges after a client's reset and says so only when the next
/// connection's stream times out, 30 s later, which is when rhizome can rebuild it).
#[test]
fn kubectl_eight_bulk_reads_and_a_reset_show_what_kubectl_cuts() {
    let Some(versions) = kubectl_versions() else {
        return;
    };
    let mut findings = Vec::new();
    let mut all_recovered = true;
    let scenarios = [
        (
            "a ninth client's reset",
            Faults {
                ninth_resets: true,
                tenth_fails: false,
            },
        ),
        (
            "a tenth's failed stream",
            Faults {
                ninth_resets: false,
                tenth_fails: true,
            },
        ),
    ];
    for kubectl in versions {
        for (fault, faults) in scenarios {
            let name = kubectl.file_name().unwrap().to_string_lossy().into_owned();
            let Some(e2e) = E2e::bulk(Some("kubectl"), Kubectl::Real(kubectl.clone()), &[]) else {
                return;
            };
            e2e.configure(
                "transport = \"kubectl\"\nprobe_interval_secs = 2\n",
                "",
                "",
                &e2e.api.kubeconfig,
            );
            e2e.forward_ok(&[]);
            let before = e2e.restarts();
            let outcomes = eight_reads_and(&e2e, faults);
            // A read that got nothing for `STALL` was stalled; one that ended or failed, cut.
            let cut: Vec<String> = outcomes
                .iter()
                .filter_map(|(seed, r)| {
                    let e = r.as_ref().err()?;
                    let how = if e.contains("os error 11") || e.contains("timed out") {
                        "stalled"
                    } else {
                        "cut"
                    };
                    Some(format!("#{seed} {how}: {e}"))
                })
                .collect();
            let recovered = poll(Duration::from_secs(45), || carries(&e2e, 12).then_some(()));
            let said: Vec<String> = e2e
                .log_messages()
                .into_iter()
                .filter(|l| l.contains("error") || l.contains("subprocess finished"))
                .collect();
            let finding = format!(
                "{name}: {fault} cut or stalled {} of the eight bulk reads {cut:?}; \
                 restarts {before} -> {}; recovered: {}; kubectl said {said:#?}",
                cut.len(),
                e2e.restarts(),
                recovered.is_some()
            );
            eprintln!("{finding}");
            all_recovered &= recovered.is_some();
            assert_eq!(e2e.entry()["transport"], "kubectl", "{finding}");
            findings.push(finding);
        }
    }
    assert!(
        all_recovered,
        "the tunnel recovers by itself: {findings:#?}"
    );
}
