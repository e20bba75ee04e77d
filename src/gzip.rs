//! The gzip stream of an artifact: framing, deflate and the CRC-32 (SPEC section 5).
//!
//! This module owns the bytes around and inside the tar: the member header as Go writes it
//! (mtime 0, OS 255), a raw deflate body from miniz_oxide, and the CRC-32 and length trailer.
//! Memory stays bounded whatever the size: only the deflate window, the compressor's tables
//! and one output buffer are held.

use std::io::{self, Write};

use miniz_oxide::deflate::core::{
    compress, create_comp_flags_from_zip_params, CompressorOxide, TDEFLFlush, TDEFLStatus,
};

/// Gzip member header as Go's `compress/gzip` writes it: deflate, no flags, mtime 0, XFL 0,
/// OS 255 (unknown). No name and no time, so the output depends on the input only.
pub(crate) const GZIP_HEADER: [u8; 10] = [0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 255];

/// Output buffer size. Larger than miniz_oxide's own output block, so it compresses straight
/// into it instead of through its internal buffer.
const OUT_CHUNK: usize = 128 * 1024;

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

/// A gzip stream over `out`: every byte written is deflated (bounded memory: the 32 KiB window,
/// the compressor's tables and one output chunk) and counted into the CRC-32 and length
/// of the trailer that `finish` writes.
pub struct GzWriter<'a> {
    out: &'a mut dyn Write,
    deflate: Box<CompressorOxide>,
    buf: Vec<u8>,
    crc: u32,
    len: u32,
}

impl<'a> GzWriter<'a> {
    pub fn new(out: &'a mut dyn Write, level: u8) -> io::Result<GzWriter<'a>> {
        out.write_all(&GZIP_HEADER)?;
        // Negative window bits: a raw deflate stream, the gzip framing is ours.
        let flags = create_comp_flags_from_zip_params(miniz_level(level).into(), -15, 0);
        Ok(GzWriter {
            out,
            deflate: Box::new(CompressorOxide::new(flags)),
            buf: vec![0; OUT_CHUNK],
            crc: 0,
            len: 0,
        })
    }

    /// Feeds `input` to the compressor and writes out whatever it produces.
    fn deflate(&mut self, mut input: &[u8], flush: TDEFLFlush) -> io::Result<()> {
        loop {
            let (status, used, made) = compress(&mut self.deflate, input, &mut self.buf, flush);
            self.out.write_all(&self.buf[..made])?;
            input = &input[used..];
            match status {
                TDEFLStatus::Done => return Ok(()),
                TDEFLStatus::Okay if used == 0 && made == 0 && !input.is_empty() => {
                    return Err(io::Error::other("deflate made no progress"));
                }
                // A full buffer may mean more output is pending; Finish goes on until Done.
                TDEFLStatus::Okay
                    if input.is_empty() && made < self.buf.len() && flush != TDEFLFlush::Finish =>
                {
                    return Ok(())
                }
                TDEFLStatus::Okay => {}
                TDEFLStatus::BadParam | TDEFLStatus::PutBufFailed => {
                    return Err(io::Error::other("deflate failed"));
                }
            }
        }
    }

    /// Ends the deflate stream and writes the trailer: CRC-32 and length mod 2^32, little endian.
    pub fn finish(&mut self) -> io::Result<()> {
        self.deflate(&[], TDEFLFlush::Finish)?;
        let mut trailer = [0u8; 8];
        trailer[..4].copy_from_slice(&self.crc.to_le_bytes());
        trailer[4..].copy_from_slice(&self.len.to_le_bytes());
        self.out.write_all(&trailer)?;
        self.out.flush()
    }
}

impl Write for GzWriter<'_> {
    fn write(&mut self, data: &[u8]) -> io::Result<usize> {
        self.deflate(data, TDEFLFlush::None)?;
        self.crc = crc32(self.crc, data);
        // ISIZE is the length modulo 2^32 (RFC 1952).
        self.len = self.len.wrapping_add(data.len() as u32);
        Ok(data.len())
    }

    /// Passes the flush on without a deflate sync flush: that would put extra blocks in the
    /// stream and make the bytes depend on when someone flushed.
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
    use std::fs::{self, File};
    use std::process::Command;

    use crate::archive::tests::scratch;

    /// Unpacks our gzip framing by hand and checks its header and trailer.
    pub(crate) fn gunzip(gz: &[u8]) -> Vec<u8> {
        assert_eq!(gz[..10], GZIP_HEADER);
        let body = &gz[10..gz.len() - 8];
        let data = miniz_oxide::inflate::decompress_to_vec(body).unwrap();
        let trailer = &gz[gz.len() - 8..];
        assert_eq!(trailer[..4], crc32(0, &data).to_le_bytes());
        assert_eq!(trailer[4..], (data.len() as u32).to_le_bytes());
        data
    }

    /// Deterministic, poorly compressible bytes.
    fn noise(len: usize) -> Vec<u8> {
        let mut x: u32 = 0x1234_5678;
        (0..len)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 17;
                x ^= x << 5;
                x as u8
            })
            .collect()
    }

    #[test]
    fn crc32_check_value() {
        assert_eq!(crc32(0, b"123456789"), 0xCBF4_3926);
        assert_eq!(crc32(crc32(0, b"1234"), b"56789"), 0xCBF4_3926);
        assert_eq!(crc32(0, b""), 0);
    }

    #[test]
    fn gzip_round_trip_every_level() {
        let data = noise(300_000);
        for level in 0..=10u8 {
            let mut out = Vec::new();
            {
                let mut gz = GzWriter::new(&mut out, level).unwrap();
                for chunk in data.chunks(7000) {
                    gz.write_all(chunk).unwrap();
                }
                gz.finish().unwrap();
            }
            assert_eq!(gunzip(&out), data, "level {level}");
        }
        // An empty stream is valid too.
        let mut out = Vec::new();
        GzWriter::new(&mut out, 6).unwrap().finish().unwrap();
        assert!(gunzip(&out).is_empty());
    }

    #[test]
    fn system_gzip_accepts_it() {
        let base = scratch("gzip");
        let p = base.join("x.gz");
        let mut f = File::create(&p).unwrap();
        let mut gz = GzWriter::new(&mut f, 9).unwrap();
        gz.write_all(b"hello gzip\n").unwrap();
        gz.finish().unwrap();
        let out = Command::new("gzip").arg("-dc").arg(&p).output();
        match out {
            Ok(out) => {
                assert!(out.status.success());
                assert_eq!(out.stdout, b"hello gzip\n");
            }
            Err(e) => eprintln!("SKIPPED: gzip: {e}"),
        }
        fs::remove_dir_all(&base).unwrap();
    }
}
