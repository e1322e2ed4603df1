//! The envelope as a delivery record keeps it: deflated (raw DEFLATE, RFC 1951), stored
//! once, in the record's one write. A JSON envelope shrinks to about a third, and
//! DynamoDB bills a write unit per started KB of the item.

use std::cell::RefCell;
use std::io::Read;

use flate2::read::DeflateDecoder;
use flate2::{Compress, Compression, FlushCompress, Status};

use super::MAX_STORED_ENVELOPE_BYTES;

thread_local! {
    /// One compressor per thread, reset for each envelope: a new one allocates over
    /// 200 KB of tables and buffers each time. Reusing it makes packing a 900-byte
    /// envelope 23 % cheaper (22.5 → 17.4 µs); what is left is mostly the reset zeroing
    /// its hash tables (docs/profile.md).
    static DEFLATE: RefCell<Compress> = RefCell::new(Compress::new(Compression::default(), false));
}

/// The deflated bytes of `envelope`, when they fit the item ([`MAX_STORED_ENVELOPE_BYTES`]).
pub fn pack(envelope: &str) -> Option<Vec<u8>> {
    DEFLATE.with_borrow_mut(|deflate| {
        deflate.reset();
        let input = envelope.as_bytes();
        // Text deflates smaller, so the input's length (plus a block header) nearly
        // always holds the output; the buffer grows only for incompressible input.
        let mut packed = Vec::with_capacity(MAX_STORED_ENVELOPE_BYTES.min(input.len() + 64));
        loop {
            let read = usize::try_from(deflate.total_in()).ok()?;
            let status = deflate
                .compress_vec(input.get(read..)?, &mut packed, FlushCompress::Finish)
                .ok()?;
            if status == Status::StreamEnd {
                break;
            }
            if packed.len() > MAX_STORED_ENVELOPE_BYTES {
                return None;
            }
            packed.reserve(packed.capacity().max(64));
        }
        (packed.len() <= MAX_STORED_ENVELOPE_BYTES).then_some(packed)
    })
}

/// The envelope `pack` made, or none when `bytes` are not deflated UTF-8 (another
/// writer's item): a replay then says the delivery has no stored envelope. Reads at most
/// what the receiver accepts, so a corrupt item cannot inflate without bound.
pub fn unpack(bytes: &[u8]) -> Option<String> {
    const MAX_ENVELOPE: u64 = 2 * 1024 * 1024;
    let mut text = String::new();
    DeflateDecoder::new(bytes)
        .take(MAX_ENVELOPE)
        .read_to_string(&mut text)
        .ok()?;
    Some(text)
}

/// `len` characters that deflate hardly at all (a small linear congruential generator).
#[cfg(test)]
pub(super) fn incompressible(len: usize) -> String {
    let mut x: u32 = 7;
    (0..len)
        .map(|_| {
            x = x.wrapping_mul(1_103_515_245).wrapping_add(12_345);
            char::from(b'!' + ((x >> 16) % 90) as u8)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn given_an_envelope_when_packed_then_it_unpacks_to_the_same_text_and_shrinks() {
        let envelope = r#"{"v":1,"delivery_key":"call.ended#c1","webhook":{"data":{"transcript":"hello hello hello hello hello"}}}"#;
        let packed = pack(envelope).expect("fits");
        assert!(packed.len() < envelope.len(), "{}", packed.len());
        assert_eq!(unpack(&packed).as_deref(), Some(envelope));
    }

    #[test]
    fn given_an_abandoned_packing_then_the_next_envelope_packs_alone() {
        // GIVEN one thread's compressor, left mid-stream by an envelope too large to keep
        let envelope = r#"{"v":1,"webhook":{"data":{"call_id":"c1","transcript":"hi"}}}"#;
        let first = pack(envelope).expect("fits");
        assert_eq!(pack(&incompressible(3 * MAX_STORED_ENVELOPE_BYTES)), None);
        // WHEN the next envelope is packed
        let again = pack(envelope).expect("fits");
        // THEN it is the same bytes as before, and nothing of the other is in them
        assert_eq!(again, first);
        assert_eq!(unpack(&again).as_deref(), Some(envelope));
    }

    #[test]
    fn given_bytes_that_are_not_deflated_text_then_nothing_unpacks() {
        assert_eq!(unpack(&[0xff, 0xfe, 0x00, 0x13]), None);
    }

    #[test]
    fn given_an_envelope_too_large_deflated_then_it_is_not_packed() {
        assert_eq!(pack(&incompressible(3 * MAX_STORED_ENVELOPE_BYTES)), None);
        assert!(pack(&"x".repeat(3 * MAX_STORED_ENVELOPE_BYTES)).is_some());
    }
}
