//! Decoder robustness: every truncation, seeded random byte flips, lying lengths. Bytes from the
//! network must produce errors, never panics, and never allocations beyond the frame.
#![allow(clippy::indexing_slicing)]

use bytes::{Bytes, BytesMut};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

use crate::protocol::compression::Compression;
use crate::protocol::frame::{Direction, Frame, FrameHeader, HEADER_LEN};
use crate::protocol::limits::Limits;
use crate::protocol::request::RequestEnvelope;
use crate::protocol::request_tests::{frame, ls, sample_requests};
use crate::protocol::response::ResponseEnvelope;
use crate::protocol::response_tests::sample_responses;

/// Records the largest single allocation made by the current thread, so tests can prove that a
/// lying length never turns into a large allocation. Test-only; wraps the system allocator.
mod alloc_probe {
    use std::alloc::{GlobalAlloc, Layout, System};
    use std::cell::Cell;

    thread_local! {
        static LARGEST: Cell<usize> = const { Cell::new(0) };
    }

    fn note(size: usize) {
        // try_with: never panic, even while thread-locals are being torn down
        let _ = LARGEST.try_with(|l| {
            if size > l.get() {
                l.set(size);
            }
        });
    }

    pub(super) struct Probe;

    // SAFETY: every method forwards unchanged to `System`, which upholds the GlobalAlloc contract;
    // the probe only reads `layout.size()` / `new_size` into a const-initialised thread-local.
    #[allow(unsafe_code)]
    unsafe impl GlobalAlloc for Probe {
        unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
            note(layout.size());
            // SAFETY: forwarded with the caller's guarantees.
            unsafe { System.alloc(layout) }
        }

        unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
            note(layout.size());
            // SAFETY: forwarded with the caller's guarantees.
            unsafe { System.alloc_zeroed(layout) }
        }

        unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
            // SAFETY: forwarded with the caller's guarantees.
            unsafe { System.dealloc(ptr, layout) }
        }

        unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
            note(new_size);
            // SAFETY: forwarded with the caller's guarantees.
            unsafe { System.realloc(ptr, layout, new_size) }
        }
    }

    /// Runs `f` and returns its result with the largest allocation it made on this thread.
    pub(super) fn largest_allocation<T>(f: impl FnOnce() -> T) -> (T, usize) {
        LARGEST.with(|l| l.set(0));
        let out = f();
        (out, LARGEST.with(|l| l.get()))
    }
}

#[global_allocator]
static PROBE: alloc_probe::Probe = alloc_probe::Probe;

const COMPRESSIONS: [Option<Compression>; 3] = [None, Some(Compression::Lz4), Some(Compression::Snappy)];

/// Seed from `SIBYL_SEED`, or a fresh one; always printed so a failure can be replayed.
fn seed(test: &str) -> u64 {
    let seed = std::env::var("SIBYL_SEED").ok().and_then(|s| s.parse().ok()).unwrap_or_else(rand::random);
    println!("{test}: SIBYL_SEED={seed}");
    seed
}

/// Every valid sample frame: (direction, compression, bytes).
fn sample_frames() -> Vec<(Direction, Option<Compression>, Bytes)> {
    let mut out = Vec::new();
    for c in COMPRESSIONS {
        for r in sample_requests() {
            out.push((Direction::Request, c, r.encode(c).unwrap()));
        }
        for r in sample_responses() {
            out.push((Direction::Response, c, r.encode(9, c).unwrap()));
        }
    }
    out
}

/// The whole decode path a server (or client) runs on untrusted bytes.
fn decode_all(
    direction: Direction,
    compression: Option<Compression>,
    bytes: &[u8],
    limits: &Limits,
) -> Result<(), String> {
    let mut buf = BytesMut::from(bytes);
    loop {
        let frame = match Frame::decode(&mut buf, direction, limits.max_frame_bytes) {
            Ok(Some(f)) => f,
            Ok(None) => return Ok(()),
            Err(e) => return Err(e.to_string()),
        };
        match direction {
            Direction::Request => {
                let env = RequestEnvelope::decode_frame(&frame.header, frame.body, compression, limits)
                    .map_err(|e| e.to_string())?;
                // whatever decodes must re-encode to something that decodes to the same value
                let again = env.encode(compression).map_err(|e| format!("re-encode failed: {e}"))?;
                let mut again_buf = BytesMut::from(&again[..]);
                let f = Frame::decode(&mut again_buf, direction, usize::MAX).unwrap().unwrap();
                let env2 = RequestEnvelope::decode_frame(&f.header, f.body, compression, limits).unwrap();
                assert_eq!(env, env2, "re-encoding changed a decoded request");
            }
            Direction::Response => {
                ResponseEnvelope::decode_frame(
                    &frame.header,
                    frame.body,
                    compression,
                    limits.max_frame_bytes,
                )
                .map_err(|e| e.to_string())?;
            }
        }
    }
}

#[test]
fn every_truncation_of_a_valid_frame_is_incomplete_or_an_error() {
    let limits = Limits::default();
    let mut cases = 0;
    for (direction, compression, bytes) in sample_frames() {
        // the stream stops early: the frame is simply not complete yet
        for cut in 0..bytes.len() {
            let mut buf = BytesMut::from(&bytes[..cut]);
            assert_eq!(Frame::decode(&mut buf, direction, limits.max_frame_bytes).unwrap(), None);
        }
        // the header agrees with a shortened body: the body decoder must notice
        let header = FrameHeader::decode(&bytes, direction, limits.max_frame_bytes).unwrap();
        for cut in 0..header.length {
            let mut h = header;
            h.length = cut;
            let body = bytes.slice(HEADER_LEN..HEADER_LEN + cut);
            let result = match direction {
                Direction::Request => RequestEnvelope::decode_frame(&h, body, compression, &limits).map(drop),
                Direction::Response => {
                    ResponseEnvelope::decode_frame(&h, body, compression, limits.max_frame_bytes).map(drop)
                }
            };
            assert!(
                result.is_err(),
                "{direction:?} {compression:?} body cut at {cut}/{} decoded",
                header.length
            );
            cases += 1;
        }
    }
    assert!(cases > 10_000, "only {cases} truncations tested");
}

#[test]
fn random_byte_flips_never_panic() {
    let seed = seed("random_byte_flips_never_panic");
    let mut rng = StdRng::seed_from_u64(seed);
    let frames = sample_frames();
    let limits = Limits { max_frame_bytes: 1 << 20, ..Limits::default() };
    let (mut ok, mut err) = (0, 0);
    for _ in 0..30_000 {
        let (direction, compression, bytes) = &frames[rng.random_range(0..frames.len())];
        let mut bytes = bytes.to_vec();
        for _ in 0..rng.random_range(1..=3) {
            let i = rng.random_range(0..bytes.len());
            bytes[i] ^= rng.random_range(1..=255u8);
        }
        match decode_all(*direction, *compression, &bytes, &limits) {
            Ok(()) => ok += 1,
            Err(_) => err += 1,
        }
    }
    println!("flips: {ok} decoded, {err} rejected");
    assert!(err > 1000, "flips should mostly be detected (seed {seed})");
}

#[test]
fn random_bodies_for_every_opcode_never_panic() {
    let seed = seed("random_bodies_for_every_opcode_never_panic");
    let mut rng = StdRng::seed_from_u64(seed);
    let limits = Limits::default();
    for _ in 0..20_000 {
        let opcode = rng.random_range(0..=0x11u8);
        let flags = rng.random_range(0..=0x0Fu8);
        let len = rng.random_range(0..64);
        let mut body: Vec<u8> = (0..len).map(|_| rng.random()).collect();
        // small lengths are more interesting than random ones
        if len >= 4 && rng.random_bool(0.5) {
            body[..4].copy_from_slice(&rng.random_range(-3i32..16).to_be_bytes());
        }
        let mut bytes = frame(flags, 1, opcode, &body);
        let c = COMPRESSIONS[rng.random_range(0..3)];
        let _ = decode_all(Direction::Request, c, &bytes, &limits);
        bytes[0] = 0x84;
        let _ = decode_all(Direction::Response, c, &bytes, &limits);
    }
}

#[test]
fn lying_lengths_never_allocate_more_than_the_frame() {
    let limits = Limits { max_frame_bytes: 64 * 1024, ..Limits::default() };
    let max_alloc = 4096;
    let request_cases: Vec<(&str, Option<Compression>, Vec<u8>)> = vec![
        ("header length i32::MAX", None, {
            let mut h = frame(0, 1, 0x07, &[]);
            h[5..9].copy_from_slice(&i32::MAX.to_be_bytes());
            h
        }),
        (
            "query string claims 2 GiB",
            None,
            frame(0, 1, 0x07, &[&i32::MAX.to_be_bytes()[..], b"SELECT"].concat()),
        ),
        (
            "65535 values in 20 bytes",
            None,
            frame(0, 1, 0x07, &[&ls("q")[..], &[0, 1, 1, 0xFF, 0xFF, 0, 0, 0, 1, 7]].concat()),
        ),
        ("65535 batch statements", None, frame(0, 1, 0x0D, &[0, 0xFF, 0xFF, 0, 0x7F, 0xFF, 0xFF, 0xFF])),
        ("65535 startup options", None, frame(0, 1, 0x01, &[0xFF, 0xFF, 0xFF, 0xFF])),
        (
            "65535 custom payload entries",
            None,
            frame(0x04, 1, 0x07, &[0xFF, 0xFF, 0, 1, b'k', 0x7F, 0xFF, 0xFF, 0xFF]),
        ),
        (
            "lz4 claims 2 GiB",
            Some(Compression::Lz4),
            frame(0x01, 1, 0x07, &[0x7F, 0xFF, 0xFF, 0xFF, 0x10, b'a']),
        ),
        (
            "lz4 claims 60 KiB from 2 bytes",
            Some(Compression::Lz4),
            frame(0x01, 1, 0x07, &[0, 0, 0xF0, 0, 0x10, b'a']),
        ),
        (
            "snappy claims 4 GiB",
            Some(Compression::Snappy),
            frame(0x01, 1, 0x07, &[0xFF, 0xFF, 0xFF, 0xFF, 0x0F, 0]),
        ),
    ];
    for (name, compression, bytes) in request_cases {
        let (result, largest) =
            alloc_probe::largest_allocation(|| decode_all(Direction::Request, compression, &bytes, &limits));
        assert!(result.is_err(), "{name}: decoded");
        assert!(largest <= max_alloc, "{name}: allocated {largest} bytes");
    }

    let response_cases: Vec<(&str, Vec<u8>)> = vec![
        // RESULT Rows, no metadata, 1 column, 2^31-1 rows, no cells
        (
            "rows claims 2^31 rows",
            [&[0, 0, 0, 2][..], &[0, 0, 0, 4, 0, 0, 0, 1], &i32::MAX.to_be_bytes()].concat(),
        ),
        // RESULT Rows, no metadata, 0 columns, 2^31-1 rows of nothing
        ("2^31 empty rows", [&[0, 0, 0, 2][..], &[0, 0, 0, 4, 0, 0, 0, 0], &i32::MAX.to_be_bytes()].concat()),
        // RESULT Rows with metadata, 2^31-1 column specs
        (
            "2^31 column specs",
            [&[0, 0, 0, 2][..], &[0, 0, 0, 0], &i32::MAX.to_be_bytes(), &[0, 1, b'k']].concat(),
        ),
        // RESULT Prepared with 2^31-1 partition key indexes
        (
            "2^31 pk indexes",
            [&[0, 0, 0, 4][..], &[0, 0], &[0, 0, 0, 0, 0, 0, 0, 0], &i32::MAX.to_be_bytes()].concat(),
        ),
        // SUPPORTED with 65535 entries of 65535 values
        ("multimap", vec![0xFF, 0xFF, 0, 1, b'k', 0xFF, 0xFF]),
    ];
    for (name, body) in response_cases {
        let opcode = if name == "multimap" { 0x06 } else { 0x08 };
        let mut bytes = frame(0, 1, opcode, &body);
        bytes[0] = 0x84;
        let (result, largest) =
            alloc_probe::largest_allocation(|| decode_all(Direction::Response, None, &bytes, &limits));
        assert!(result.is_err(), "{name}: decoded");
        assert!(largest <= max_alloc, "{name}: allocated {largest} bytes");
    }
}

#[test]
fn the_probe_sees_large_allocations() {
    // guard against a probe that measures nothing
    let (v, largest) = alloc_probe::largest_allocation(|| vec![0u8; 1 << 20]);
    assert_eq!(v.len(), 1 << 20);
    assert!(largest >= 1 << 20);
}
