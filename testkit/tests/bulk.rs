//! The harness's bulk data and resets, as the tests through tunnels rely on them: a read of the
//! bulk server is byte-exact against `bulk_bytes`, a short one says where it ended, and
//! `reset` reaches the other end as a reset, not as an orderly end.

use std::io::Read;
use std::net::{TcpListener, TcpStream};
use std::time::Duration;

use rhizome_testkit::harness::{
    BulkServer, Transfer, bulk_ask, bulk_bytes, poll, read_expecting, reset,
};

#[test]
fn a_bulk_read_is_checked_byte_for_byte() {
    let bulk = BulkServer::start();
    let server = bulk.addr;
    assert_eq!(bulk.transfer(7), None);
    let expected = bulk_bytes(7, 1 << 20);
    assert_ne!(
        expected,
        bulk_bytes(8, 1 << 20),
        "each seed has its own bytes"
    );
    let mut stream = TcpStream::connect(server).unwrap();
    bulk_ask(&mut stream, 7, expected.len(), Duration::ZERO).unwrap();
    assert_eq!(read_expecting(&mut stream, &expected[..1000], 0), Ok(()));
    assert_eq!(read_expecting(&mut stream, &expected[1000..], 1000), Ok(()));
    assert_eq!(stream.read(&mut [0u8; 1]).unwrap(), 0, "then the end");
    drop(stream);
    let done = Transfer {
        written: 1 << 20,
        ended: true,
    };
    let ended = poll(Duration::from_secs(5), || {
        bulk.transfer(7).filter(|t| t.ended)
    });
    assert_eq!(ended, Some(done));

    let mut stream = TcpStream::connect(server).unwrap();
    bulk_ask(&mut stream, 7, 100, Duration::ZERO).unwrap();
    assert_eq!(
        read_expecting(&mut stream, &expected[..200], 0),
        Err("ended after 100 bytes".to_string())
    );
    let mut stream = TcpStream::connect(server).unwrap();
    bulk_ask(&mut stream, 8, 100, Duration::ZERO).unwrap();
    assert!(read_expecting(&mut stream, &expected[..100], 0).is_err());

    // Paced: a pause after each 64 KiB, whatever the reader does.
    let mut stream = TcpStream::connect(server).unwrap();
    let started = std::time::Instant::now();
    bulk_ask(&mut stream, 7, 4 << 16, Duration::from_millis(50)).unwrap();
    assert_eq!(read_expecting(&mut stream, &expected[..4 << 16], 0), Ok(()));
    assert!(started.elapsed() >= Duration::from_millis(150));
}

#[test]
fn reset_is_a_reset() {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let client = TcpStream::connect(listener.local_addr().unwrap()).unwrap();
    let (mut server, _) = listener.accept().unwrap();
    reset(client);
    let err = server.read(&mut [0u8; 16]).unwrap_err();
    assert_eq!(err.kind(), std::io::ErrorKind::ConnectionReset, "{err}");
}
