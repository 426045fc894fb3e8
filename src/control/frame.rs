//! Control messages on a byte stream: each one CBOR (ciborium), in a frame
//! with a 4-byte big-endian length (tokio-util's length-delimited codec).
//! CBOR carries bodies as bytes, not text, and both crates are maintained;
//! serde's derives keep the messages themselves in one place.

use futures::{SinkExt, StreamExt};
use serde::de::DeserializeOwned;
use serde::Serialize;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::sync::mpsc;
use tokio_util::codec::{FramedRead, FramedWrite, LengthDelimitedCodec};

/// Largest control message accepted by default (a call's request body
/// travels in one).
pub const DEFAULT_MAX_MESSAGE_BYTES: usize = 32 * 1024 * 1024;

/// One message as frame contents.
pub fn encode<T: Serialize>(message: &T) -> Result<Vec<u8>, String> {
    let mut out = Vec::new();
    ciborium::into_writer(message, &mut out).map_err(|e| e.to_string())?;
    Ok(out)
}

/// A frame's contents as a message.
pub fn decode<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, String> {
    ciborium::from_reader(bytes).map_err(|e| e.to_string())
}

fn codec(max_message_bytes: usize) -> LengthDelimitedCodec {
    LengthDelimitedCodec::builder()
        .length_field_length(4)
        .max_frame_length(max_message_bytes)
        .new_codec()
}

/// Why a framed connection ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Ended {
    /// The other side closed it.
    Closed,
    /// What arrived was not a message: the connection was dropped.
    Garbage(String),
}

/// Reads messages from `read` into `to` until the stream ends, a frame is
/// not a message (or is too large), or `to` is dropped.
pub async fn read_messages<R, T>(read: R, max_message_bytes: usize, to: mpsc::Sender<T>) -> Ended
where
    R: AsyncRead + Unpin,
    T: DeserializeOwned,
{
    let mut frames = FramedRead::new(read, codec(max_message_bytes));
    while let Some(frame) = frames.next().await {
        let message = match frame {
            Ok(bytes) => match decode::<T>(&bytes) {
                Ok(m) => m,
                Err(e) => return Ended::Garbage(format!("not a control message: {e}")),
            },
            Err(e) => return Ended::Garbage(format!("bad frame: {e}")),
        };
        if to.send(message).await.is_err() {
            break;
        }
    }
    Ended::Closed
}

/// Writes the messages from `from` to `write` until `from` ends or the
/// stream breaks. Whatever is queued goes out together, flushed once the
/// queue is empty: a burst of events costs a few writes, not one each.
pub async fn write_messages<W, T>(write: W, max_message_bytes: usize, mut from: mpsc::Receiver<T>)
where
    W: AsyncWrite + Unpin,
    T: Serialize,
{
    let mut frames = FramedWrite::new(write, codec(max_message_bytes));
    'connection: while let Some(first) = from.recv().await {
        let mut next = Some(first);
        while let Some(message) = next {
            if let Some(bytes) = frame_of(&message, max_message_bytes) {
                if frames.feed(bytes).await.is_err() {
                    break 'connection;
                }
            }
            next = from.try_recv().ok();
        }
        if SinkExt::<bytes::Bytes>::flush(&mut frames).await.is_err() {
            break;
        }
    }
    let _ = SinkExt::<bytes::Bytes>::close(&mut frames).await;
}

/// `message` as a frame's contents; `None` (logged) when it cannot be sent.
fn frame_of<T: Serialize>(message: &T, max_message_bytes: usize) -> Option<bytes::Bytes> {
    let bytes = match encode(message) {
        Ok(b) => b,
        Err(e) => {
            tracing::warn!("control message not sent: {e}");
            return None;
        }
    };
    if bytes.len() > max_message_bytes {
        tracing::warn!(
            bytes = bytes.len(),
            "control message over the limit, not sent"
        );
        return None;
    }
    Some(bytes::Bytes::from(bytes))
}
