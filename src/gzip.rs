//! The gzip stream of an artifact: framing, chunked deflate and the CRC-32 (SPEC section 5).
//!
//! This module owns the bytes around and inside the tar: the member header as Go writes it, a
//! raw deflate body from miniz_oxide, and the CRC-32 and length trailer. The body is cut at
//! fixed offsets into `CHUNK`-byte chunks, each deflated on its own by a fresh compressor and
//! ended on a byte boundary with an empty stored block (a sync flush, not final); the last
//! one ends with the final block. Concatenated in order they are one standard deflate stream,
//! so every gzip reader sees a single ordinary member (pigz does the same). A chunk's bytes
//! depend on its input alone, so chunks can be deflated by several threads, in any order,
//! with the same output. The cost is the history a chunk does not see: miniz_oxide cannot
//! preset a dictionary, and at 512 KiB that makes the output about 0.2 % larger than one stream.

use std::io::{self, Write};

use miniz_oxide::deflate::core::{
    compress_to_output, create_comp_flags_from_zip_params, CompressorOxide, TDEFLFlush, TDEFLStatus,
};

/// Uncompressed bytes per chunk. Measured on a mixed tree: 128 KiB chunks cost 1.1 % in size
/// against one stream, 512 KiB 0.2 %, 1 MiB 0.06 %; memory is a few chunks per thread, so
/// 512 KiB keeps 4 threads within a few MiB.
pub const CHUNK: usize = 512 * 1024;

/// Gzip member header as Go's `compress/gzip` writes it: deflate, no flags, mtime 0, XFL 0,
/// OS 255 (unknown). No name and no time, so the output depends on the input only.
pub(crate) const GZIP_HEADER: [u8; 10] = [0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 255];

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

/// A gzip stream over `out`: bytes written are gathered into chunks, each deflated and written
/// out in order, and counted into the CRC-32 and length of the trailer that `finish` writes.
/// Memory stays bounded: one chunk, its deflated bytes and the compressor.
pub struct GzWriter<'a> {
    out: &'a mut dyn Write,
    chunk: Vec<u8>,
    crc: u32,
    len: u32,
    deflate: Box<CompressorOxide>,
    deflated: Vec<u8>,
}

impl<'a> GzWriter<'a> {
    /// A stream at deflate `level` (0 = stored, 9 = best; above 9 means 9).
    pub fn new(out: &'a mut dyn Write, level: u8) -> io::Result<GzWriter<'a>> {
        out.write_all(&GZIP_HEADER)?;
        Ok(GzWriter {
            out,
            chunk: Vec::with_capacity(CHUNK),
            crc: 0,
            len: 0,
            deflate: compressor(level),
            deflated: Vec::new(),
        })
    }

    /// Deflates the gathered chunk, writes it out and counts it into the trailer.
    fn send(&mut self, last: bool) -> io::Result<()> {
        self.crc = crc32(self.crc, &self.chunk);
        // ISIZE is the length modulo 2^32 (RFC 1952).
        self.len = self.len.wrapping_add(self.chunk.len() as u32);
        deflate_chunk(&mut self.deflate, &self.chunk, last, &mut self.deflated)?;
        self.out.write_all(&self.deflated)?;
        self.chunk.clear();
        Ok(())
    }

    /// Ends the deflate stream and writes the trailer: CRC-32 and length mod 2^32, little endian.
    pub fn finish(mut self) -> io::Result<()> {
        self.send(true)?;
        let mut trailer = [0u8; 8];
        trailer[..4].copy_from_slice(&self.crc.to_le_bytes());
        trailer[4..].copy_from_slice(&self.len.to_le_bytes());
        self.out.write_all(&trailer)?;
        self.out.flush()
    }
}

impl Write for GzWriter<'_> {
    /// Takes what fits in the current chunk (`write_all` loops for the rest).
    fn write(&mut self, data: &[u8]) -> io::Result<usize> {
        let n = data.len().min(CHUNK - self.chunk.len());
        self.chunk.extend_from_slice(&data[..n]);
        if self.chunk.len() == CHUNK {
            self.send(false)?;
        }
        Ok(n)
    }

    /// Passes the flush on without a deflate flush: that would make the bytes depend on when
    /// someone flushed.
    fn flush(&mut self) -> io::Result<()> {
        self.out.flush()
    }
}

/// The CRC-32 (IEEE 802.3, reflected, as gzip uses) lookup table, built at compile time.
const CRC_TABLE: [u32; 256] = {
    let mut table = [0u32; 256];
    let mut i = 0;
    while i < 256 {
        let mut c = i as u32;
        let mut k = 0;
        while k < 8 {
            c = if c & 1 != 0 {
                0xEDB8_8320 ^ (c >> 1)
            } else {
                c >> 1
            };
            k += 1;
        }
        table[i] = c;
        i += 1;
    }
    table
};

/// Continues CRC-32 `crc` (0 to start) over `data`. miniz_oxide has only Adler-32.
pub fn crc32(crc: u32, data: &[u8]) -> u32 {
    let mut c = !crc;
    for &b in data {
        c = CRC_TABLE[((c ^ u32::from(b)) & 0xff) as usize] ^ (c >> 8);
    }
    !c
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use std::process::{Command, Stdio};

    /// Unpacks our gzip framing by hand and checks its header and trailer.
    pub(crate) fn gunzip(gz: &[u8]) -> Vec<u8> {
        assert_eq!(gz[..10], GZIP_HEADER);
        let body = &gz[10..gz.len() - 8];
        let data = miniz_oxide::inflate::decompress_to_vec(body).unwrap();
        let trailer = &gz[gz.len() - 8..];
        assert_eq!(trailer[..4], crc32(&data).to_le_bytes());
        assert_eq!(trailer[4..], (data.len() as u32).to_le_bytes());
        data
    }

    /// Deterministic bytes: compressible text with incompressible stretches.
    fn sample(len: usize) -> Vec<u8> {
        let mut x: u32 = 0x1234_5678;
        (0..len)
            .map(|i| {
                x ^= x << 13;
                x ^= x >> 17;
                x ^= x << 5;
                if (i / 100_000) % 3 == 0 {
                    x as u8
                } else {
                    b"abcdefgh \n"[(x % 10) as usize]
                }
            })
            .collect()
    }

    /// `data` through a `GzWriter`, written in pieces of `piece` bytes.
    fn gz(data: &[u8], level: u8, piece: usize) -> Vec<u8> {
        let mut out = Vec::new();
        let mut w = GzWriter::new(&mut out, level).unwrap();
        for p in data.chunks(piece.max(1)) {
            w.write_all(p).unwrap();
        }
        w.finish().unwrap();
        out
    }

    /// The CRC-32 of `data`.
    pub(crate) fn crc32(data: &[u8]) -> u32 {
        super::crc32(0, data)
    }

    #[test]
    fn crc32_check_value() {
        assert_eq!(crc32(b"123456789"), 0xCBF4_3926);
        assert_eq!(
            super::crc32(super::crc32(0, b"1234"), b"56789"),
            0xCBF4_3926
        );
        assert_eq!(crc32(b""), 0);
    }

    #[test]
    fn gzip_round_trip_every_level() {
        let data = sample(300_000);
        for level in 0..=10u8 {
            assert_eq!(gunzip(&gz(&data, level, 7000)), data, "level {level}");
        }
        // An empty stream is valid too.
        assert!(gunzip(&gz(b"", 6, 1)).is_empty());
    }

    /// Around the chunk boundaries, at each kind of level, the bytes read back, and how they
    /// are written in does not change them.
    #[test]
    fn chunk_boundaries_round_trip() {
        let big = sample(3 * CHUNK + 1);
        for len in [0, 1, CHUNK - 1, CHUNK, CHUNK + 1, 2 * CHUNK, 3 * CHUNK + 1] {
            let data = &big[..len];
            for level in [0, 1, 6] {
                let out = gz(data, level, 65536);
                assert!(gunzip(&out) == data, "len {len} level {level}");
                assert!(gz(data, level, 8193) == out, "len {len} level {level}");
            }
        }
    }

    /// A full chunk followed by nothing ends with an empty final block: still one member.
    #[test]
    fn chunks_end_byte_aligned_and_only_the_last_is_final() {
        let data = sample(2 * CHUNK);
        let out = gz(&data, 6, CHUNK);
        let body = &out[10..out.len() - 8];
        // The empty final block of fixed Huffman codes, after the sync marker of chunk 2.
        assert_eq!(body[body.len() - 6..], [0, 0, 0xff, 0xff, 3, 0]);
        assert!(gunzip(&out) == data);
    }

    fn system_tool(cmd: &mut Command, input: &[u8]) -> Option<Vec<u8>> {
        let mut child = match cmd
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
        {
            Ok(c) => c,
            Err(e) => {
                eprintln!("SKIPPED: {:?}: {e}", cmd.get_program());
                return None;
            }
        };
        let mut stdin = child.stdin.take().unwrap();
        let input = input.to_vec();
        let feeder = std::thread::spawn(move || stdin.write_all(&input));
        let out = child.wait_with_output().unwrap();
        feeder.join().unwrap().unwrap();
        assert!(out.status.success(), "{cmd:?}: {out:?}");
        assert!(out.stderr.is_empty(), "{cmd:?}: {out:?}");
        Some(out.stdout)
    }

    #[test]
    fn system_gzip_and_python_accept_it() {
        let data = sample(2 * CHUNK + 12345);
        for level in [9, 6, 1, 0] {
            let out = gz(&data, level, 100_000);
            if let Some(plain) = system_tool(Command::new("gzip").arg("-dc"), &out) {
                assert!(plain == data, "gzip -dc, level {level}");
            }
            let py = "import gzip, sys; sys.stdout.buffer.write(gzip.decompress(sys.stdin.buffer.read()))";
            if let Some(plain) = system_tool(Command::new("python3").args(["-c", py]), &out) {
                assert!(plain == data, "python gzip, level {level}");
            }
        }
    }

    /// A failing output surfaces as that error.
    #[test]
    fn write_errors_surface() {
        struct Full(usize);
        impl Write for Full {
            fn write(&mut self, b: &[u8]) -> io::Result<usize> {
                if self.0 < b.len() {
                    return Err(io::Error::from_raw_os_error(libc::ENOSPC));
                }
                self.0 -= b.len();
                Ok(b.len())
            }
            fn flush(&mut self) -> io::Result<()> {
                Ok(())
            }
        }
        let data = sample(4 * CHUNK);
        for room in [0, 100, CHUNK] {
            let mut out = Full(room);
            let r = GzWriter::new(&mut out, 0).and_then(|mut w| {
                w.write_all(&data)?;
                w.finish()
            });
            let e = r.unwrap_err();
            assert_eq!(e.raw_os_error(), Some(libc::ENOSPC), "{room}: {e}");
        }
    }
}
