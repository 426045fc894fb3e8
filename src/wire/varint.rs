//! Unsigned LEB128 varints, as multiformats' unsigned-varint (at most 9 bytes
//! for the multiformats spec; we accept protobuf's 10 for a u64 and refuse more).

use bytes::BufMut;

/// The longest varint accepted for a u64.
pub const MAX_VARINT_BYTES: usize = 10;

/// Appends `value` as a varint.
pub fn encode_varint(mut value: u64, buf: &mut impl BufMut) {
    while value >= 0x80 {
        buf.put_u8((value as u8) | 0x80);
        value >>= 7;
    }
    buf.put_u8(value as u8);
}

pub(crate) enum Step {
    More,
    Done(u64),
    Invalid,
}

/// Incremental decoder: partial input is a normal state.
#[derive(Default)]
pub(crate) struct Decoder {
    value: u64,
    len: usize,
}

impl Decoder {
    pub(crate) fn push(&mut self, byte: u8) -> Step {
        if self.len >= MAX_VARINT_BYTES {
            return Step::Invalid;
        }
        let bits = u64::from(byte & 0x7f);
        let shift = 7 * self.len as u32;
        // The 10th byte may only carry the top bit of a u64.
        if self.len == MAX_VARINT_BYTES - 1 && bits > 1 {
            return Step::Invalid;
        }
        self.value |= bits << shift;
        self.len += 1;
        if byte & 0x80 == 0 {
            Step::Done(self.value)
        } else if self.len == MAX_VARINT_BYTES {
            Step::Invalid
        } else {
            Step::More
        }
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.len == 0
    }

    pub(crate) fn len(&self) -> usize {
        self.len
    }
}
