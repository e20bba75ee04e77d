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
    let flags = create_comp_flags_from_zip_params(miniz_level(level).into(), -15, 0);
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
    c.reset();
    out.clear();
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
    Ok(())
}
