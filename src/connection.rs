//! Framing of protocol messages over a local socket: a u32 big-endian length, then postcard.
//!
//! Both the client and the daemon talk through a `Connection`, so the framing rules (the frame
//! cap above all) live in one place.

use std::io;

use futures_util::{SinkExt, StreamExt};
use interprocess::local_socket::tokio::Stream;
use std::marker::PhantomData;

use serde::{Serialize, de::DeserializeOwned};
use tokio_util::codec::{Framed, LengthDelimitedCodec};

use crate::protocol::{MAX_FRAME, Request, Response};

/// Why a message could not be read.
#[derive(Debug, thiserror::Error)]
pub enum RecvError {
    /// The OS error is the whole story: shown once, not once per layer.
    #[error(transparent)]
    Io(#[from] io::Error),
    #[error("a message could not be decoded")]
    Decode(#[from] postcard::Error),
}

/// A framed, message-oriented view of a local socket stream, typed by direction: it sends only
/// `Out` and reads only `In`, so the daemon cannot send a `Request`, nor a client a `Response`.
pub struct Connection<Out, In> {
    framed: Framed<Stream, LengthDelimitedCodec>,
    direction: PhantomData<fn(Out) -> In>,
}

/// The daemon's end of a client connection.
pub type DaemonSide = Connection<Response, Request>;

/// A client's end of its connection to the daemon.
pub type ClientSide = Connection<Request, Response>;

/// The framing: a u32 big-endian length, frames capped at `MAX_FRAME`.
pub fn codec() -> LengthDelimitedCodec {
    LengthDelimitedCodec::builder()
        .length_field_type::<u32>()
        .big_endian()
        .max_frame_length(MAX_FRAME)
        .new_codec()
}

impl<Out: Serialize, In: DeserializeOwned> Connection<Out, In> {
    pub fn new(stream: Stream) -> Self {
        Connection {
            framed: Framed::new(stream, codec()),
            direction: PhantomData,
        }
    }

    /// The underlying stream, for peer credentials.
    pub fn stream(&self) -> &Stream {
        self.framed.get_ref()
    }

    /// Encodes and sends one message, flushing it to the socket.
    pub async fn send(&mut self, message: &Out) -> io::Result<()> {
        let bytes = postcard::to_stdvec(message).map_err(io::Error::other)?;
        if bytes.len() > MAX_FRAME {
            return Err(io::Error::other(format!(
                "a message of {} bytes is larger than the {MAX_FRAME}-byte frame limit",
                bytes.len()
            )));
        }
        self.framed.send(bytes::Bytes::from(bytes)).await
    }

    /// Receives one message; `Ok(None)` when the peer closed the connection cleanly.
    pub async fn recv(&mut self) -> Result<Option<In>, RecvError> {
        match self.framed.next().await {
            None => Ok(None),
            Some(frame) => Ok(Some(postcard::from_bytes(&frame?)?)),
        }
    }
}
