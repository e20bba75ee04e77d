//! One chunk's raw deflate, the same whichever thread runs it (`gzip` here, or `pool`'s workers).
//!
//! This module owns the compressor settings for a gzip level and the cut of one chunk: no
//! history from the chunks before it, ended on a byte boundary (a sync flush) or by the final
//! block. Kept apart from `gzip` and `pool` so that both use it and neither uses the other's
//! insides.

use std::io;

use miniz_oxide::deflate::core::{
    compress_to_output, create_comp_flags_from_zip_params, CompressorOxide, TDEFLFlush, TDEFLStatus,
};

/// The bits of miniz_oxide's compressor flags that hold the number of match candidates tried.
const TDEFL_MAX_PROBES_MASK: u32 = 0xfff;

/// The miniz_oxide level for a gzip level. miniz's level 1 tries a single match candidate
/// where gzip -1 tries four, and comes out about 10 % larger than gzip -1 on a mixed tree;
/// its level 2 is within a few per cent of gzip -1's size and still several times faster, so
/// level 1 asks for it. Other levels (above 9: 9) are the same in both.
fn miniz_level(level: u8) -> u8 {
    match level {
        1 => 2,
        l => l.min(9),
    }
}

/// A raw deflate compressor for gzip `level` (0 = stored blocks). Boxed: it is ~300 KiB.
pub fn compressor(level: u8) -> Box<CompressorOxide> {
    // Negative window bits: a raw deflate stream, the gzip framing is ours.
    let mut flags = create_comp_flags_from_zip_params(miniz_level(level).into(), -15, 0);
    if level == 6 {
        // miniz's level 6 follows up to 128 match candidates where zlib's level 6 cuts its
        // chains of 128 short once a match is good: measured on the benchmark's mixed tree
        // (361 MB from /usr, 2 threads), 128 cost 22.2 CPU-s for 127.39 MB, 64 cost 18.5 s for
        // 127.81 MB (+0.3 %), against pigz -6's 15.7 s for 126.74 MB. The default level is
        // the one every artifact pays for, so it takes the 64.
        flags = (flags & !TDEFL_MAX_PROBES_MASK) | 64;
    }
    Box::new(CompressorOxide::new(flags))
}

/// Deflates one chunk on its own (no history from the chunks before it) into `out`, replacing
/// what it held; ended on a byte boundary by a sync flush, or by the final block when `last`.
pub fn deflate_chunk(
    c: &mut CompressorOxide,
    data: &[u8],
    last: bool,
    out: &mut Vec<u8>,
) -> io::Result<()> {
    out.clear();
    if data.len() >= 4 * SAMPLE && !shrinks(data) {
        store(data, last, out);
        return Ok(());
    }
    c.reset();
    let (flush, want) = if last {
        (TDEFLFlush::Finish, TDEFLStatus::Done)
    } else {
        (TDEFLFlush::Sync, TDEFLStatus::Okay)
    };
    // The callback takes all the output, so one call consumes the whole chunk.
    let (status, used) = compress_to_output(c, data, flush, |b| {
        out.extend_from_slice(b);
        true
    });
    if status != want || used != data.len() {
        return Err(io::Error::other("deflate failed"));
    }
    // The sample can be wrong: what deflate made longer than the input is stored instead, so
    // that no chunk grows by more than its stored blocks' headers.
    if out.len() > stored_len(data.len()) {
        store(data, last, out);
    }
    Ok(())
}

/// Bytes of each of the four slices `shrinks` looks at: 32 KiB of a 512 KiB chunk.
const SAMPLE: usize = 8 * 1024;

/// Whether deflate is worth its time on `data`, judged from four slices spread over it: their
/// byte counts must be far enough from uniform for the order-0 entropy to be under 7.9 bits a
/// byte. Deflate's Huffman codes cannot beat that entropy, so above it they save under 1.3 %;
/// random bytes and what is compressed already (images, video, archives, most model weights)
/// come out at 7.99, text at 4-6, and such chunks are then stored at the speed of a copy
/// instead of deflated at a few tens of MiB/s to gain nothing. A byte count over 32 KiB costs
/// ~1 % of the copy. What this misses: repeats of high-entropy strings within deflate's 32 KiB
/// window (the same random block twice), which are stored instead of matched. It depends on
/// the chunk's bytes alone, so the output still does not depend on threads or timing.
///
/// Near the uniform distribution, 8 bits minus the entropy is the chi-square statistic over
/// 2 n ln 2 (n bytes counted), so "under 7.9 bits" is a chi-square above 0.1 x 2 n ln 2 =
/// 4,543 for n = 32,768; with 128 of each value expected, the sum of (count - 128)^2 above
/// 4,543 x 128. Integers only: no floating-point logarithm in the binary.
fn shrinks(data: &[u8]) -> bool {
    const EXPECTED: i64 = (4 * SAMPLE / 256) as i64;
    const THRESHOLD: i64 = 4_543 * EXPECTED;
    let mut count = [0i64; 256];
    for i in 0..4 {
        let at = (data.len() - SAMPLE) / 3 * i;
        for &b in &data[at..at + SAMPLE] {
            count[usize::from(b)] += 1;
        }
    }
    let spread: i64 = count.iter().map(|&c| (c - EXPECTED) * (c - EXPECTED)).sum();
    spread > THRESHOLD
}

/// The size of `len` bytes as stored deflate blocks: a 5-byte header per 65,535 bytes.
fn stored_len(len: usize) -> usize {
    len + 5 * len.div_ceil(65535).max(1)
}

/// `data` as stored deflate blocks (RFC 1951 3.2.4) into `out`: each a header byte (BFINAL,
/// BTYPE 00; the stream is byte-aligned here, as every chunk ends on a byte boundary), then
/// LEN and its complement, then the bytes as they are. Only the last block of the last chunk
/// is final; the blocks end on a byte boundary, so the next chunk follows as it would a sync
/// flush.
fn store(data: &[u8], last: bool, out: &mut Vec<u8>) {
    out.clear();
    out.reserve(stored_len(data.len()));
    let mut blocks = data.chunks(65535).peekable();
    if data.is_empty() {
        // An empty final chunk still needs its final block.
        out.extend_from_slice(&[u8::from(last), 0, 0, 0xff, 0xff]);
        return;
    }
    while let Some(b) = blocks.next() {
        let fin = last && blocks.peek().is_none();
        // chunks(65535): the length fits in 16 bits.
        let len = b.len() as u16;
        out.push(u8::from(fin));
        out.extend_from_slice(&len.to_le_bytes());
        out.extend_from_slice(&(!len).to_le_bytes());
        out.extend_from_slice(b);
    }
}
