//! Property tests of the frame decoder: whatever bytes arrive, decoding returns a message or an
//! error and never panics or allocates past the frame cap. Bounded so that CI runs them quickly;
//! `PROPTEST_CASES=100000 cargo test --test decoder_fuzz` runs longer.

use bytes::BytesMut;
use proptest::prelude::*;
use rhizome::connection::codec;
use rhizome::protocol::{MAX_FRAME, Request, Response};
use tokio_util::codec::Decoder;

/// Feeds `bytes` to the framing and decodes every complete frame as both message types.
fn decode_all(bytes: &[u8]) {
    let mut codec = codec();
    let mut buffer = BytesMut::from(bytes);
    while let Ok(Some(frame)) = codec.decode(&mut buffer) {
        let _ = postcard::from_bytes::<Request>(&frame);
        let _ = postcard::from_bytes::<Response>(&frame);
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    #[test]
    fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..4096)) {
        decode_all(&bytes);
        let _ = postcard::from_bytes::<Request>(&bytes);
    }

    #[test]
    fn well_framed_garbage_never_panics(body in proptest::collection::vec(any::<u8>(), 0..2048)) {
        let mut bytes = (body.len() as u32).to_be_bytes().to_vec();
        bytes.extend_from_slice(&body);
        decode_all(&bytes);
    }

    #[test]
    fn lengths_over_the_cap_are_errors(len in (MAX_FRAME as u32 + 1)..=u32::MAX) {
        let mut buffer = BytesMut::from(&len.to_be_bytes()[..]);
        prop_assert!(codec().decode(&mut buffer).is_err());
    }

    #[test]
    fn valid_requests_survive_the_round_trip(all in any::<bool>(), target in "[a-z0-9/-]{0,40}", lines in proptest::option::of(any::<u64>())) {
        for request in [
            Request::Ps { all },
            Request::Logs(rhizome::protocol::LogsRequest { target: target.clone(), lines, follow: all }),
            Request::MergedLogs(rhizome::protocol::MergedLogsRequest {
                targets: vec![target.clone(), "web".into()],
                all,
                lines,
                follow: !all,
            }),
        ] {
            let bytes = postcard::to_stdvec(&request).unwrap();
            let back: Request = postcard::from_bytes(&bytes).unwrap();
            prop_assert_eq!(format!("{back:?}"), format!("{request:?}"));
        }
    }
}
