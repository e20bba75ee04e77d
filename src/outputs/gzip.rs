//! The gzip stream of an artifact: framing, chunked deflate and the CRC-32 (SPEC section 5).
//!
//! This module owns the bytes around and inside the tar: the member header as Go writes it, a
//! raw deflate body from miniz_oxide, and the CRC-32 and length trailer. The body is cut at
//! fixed offsets into `CHUNK`-byte chunks, each deflated on its own by a fresh compressor and
//! ended on a byte boundary with an empty stored block (a sync flush, not final); the last
//! one ends with the final block. Concatenated in order they are one standard deflate stream,
//! so every gzip reader sees a single ordinary member (pigz does the same). A chunk's bytes
//! depend on its input alone, so they are the same whether this thread deflates them or the
//! workers of `pool` do, in whatever order those finish: the output never depends on the
//! thread count or timing. The cost is the history a chunk does not see: miniz_oxide cannot
//! preset a dictionary, and at 512 KiB that makes the output about 0.2 % larger than one stream.

use std::io::{self, Write};
use std::mem;

use miniz_oxide::deflate::core::CompressorOxide;

use crate::outputs::cpus;
use crate::outputs::deflate::{compressor, deflate_chunk};
use crate::outputs::pool::Pool;

/// Uncompressed bytes per chunk. Measured on a mixed tree: 128 KiB chunks cost 1.1 % in size
/// against one stream, 512 KiB 0.2 %, 1 MiB 0.06 %; memory is a few chunks per thread, so
/// 512 KiB keeps a thread within ~2 MiB.
pub const CHUNK: usize = 512 * 1024;

/// Gzip member header as Go's `compress/gzip` writes it: deflate, no flags, mtime 0, XFL 0,
/// OS 255 (unknown). No name and no time, so the output depends on the input only.
pub(crate) const GZIP_HEADER: [u8; 10] = [0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 255];

/// A gzip stream over `out`: bytes written are gathered into chunks, each deflated here or by
/// worker threads and written out in order, and counted into the CRC-32 and length of the
/// trailer that `finish` writes. Memory stays bounded: one chunk being gathered, and at most a
/// few per thread in flight.
pub struct GzWriter<'a> {
    out: &'a mut dyn Write,
    level: u8,
    /// Worker threads to start at the first full chunk; 1: deflate in this thread.
    threads: usize,
    chunk: Vec<u8>,
    crc: Crc32,
    len: u32,
    /// This thread's compressor and output, when it deflates itself.
    here: Option<Box<CompressorOxide>>,
    deflated: Vec<u8>,
    pool: Option<Pool>,
}

impl<'a> GzWriter<'a> {
    /// A stream at deflate `level` (0 = stored, 9 = best; above 9 means 9) that spreads its
    /// chunks over all the CPUs this process may use, as pigz does: its affinity and its
    /// cgroup's quota (`cpus`), no cap of our own. A thread costs ~2 MiB at most (its ~300 KiB
    /// compressor, a chunk in and out in flight), so a step that may use 16 CPUs pays ~32 MiB
    /// for going 16 times as fast; one limited to a CPU or two (most pods) pays 2-4 MiB.
    pub fn new(out: &'a mut dyn Write, level: u8) -> io::Result<GzWriter<'a>> {
        GzWriter::with_threads(out, level, cpus::usable())
    }

    /// The same with a given thread count (the bytes are the same for any).
    pub fn with_threads(
        out: &'a mut dyn Write,
        level: u8,
        threads: usize,
    ) -> io::Result<GzWriter<'a>> {
        out.write_all(&GZIP_HEADER)?;
        Ok(GzWriter {
            out,
            level,
            threads,
            chunk: Vec::with_capacity(CHUNK),
            crc: Crc32::new(),
            len: 0,
            here: None,
            deflated: Vec::new(),
            pool: None,
        })
    }

    /// Deflates the gathered chunk, or has it deflated, and counts it into the trailer.
    fn send(&mut self, last: bool) -> io::Result<()> {
        let data = mem::take(&mut self.chunk);
        self.crc.update(&data);
        // ISIZE is the length modulo 2^32 (RFC 1952).
        self.len = self.len.wrapping_add(data.len() as u32);
        // Threads start with the first full chunk, once: an artifact of one chunk costs none,
        // and when none can be started, this thread does the work with the same result.
        if self.threads > 1 && !last {
            self.pool = Pool::start(self.level, self.threads);
            self.threads = 1;
        }
        // The buffers go round instead of being freed: each new one would be mapped and
        // faulted in page by page.
        let mut next = if let Some(pool) = &mut self.pool {
            pool.send(data, last, self.out)?
        } else {
            let c = self.here.get_or_insert_with(|| compressor(self.level));
            deflate_chunk(c, &data, last, &mut self.deflated)?;
            self.out.write_all(&self.deflated)?;
            data
        };
        next.clear();
        if !last {
            next.reserve_exact(CHUNK);
        }
        self.chunk = next;
        Ok(())
    }

    /// Ends the deflate stream and writes the trailer: CRC-32 and length mod 2^32, little endian.
    pub fn finish(mut self) -> io::Result<()> {
        self.send(true)?;
        if let Some(pool) = &mut self.pool {
            pool.drain(self.out)?;
        }
        let mut trailer = [0u8; 8];
        trailer[..4].copy_from_slice(&self.crc.sum().to_le_bytes());
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

/// The CRC-32 of gzip (IEEE 802.3, reflected), eight bytes at a step (Intel's slicing-by-8):
/// about four times as fast as a byte at a step, which matters since one thread computes it
/// for the whole stream while the others deflate. The tables (8 KiB) are built when the
/// stream starts rather than at compile time, where they would cost the binary 8 KiB.
pub struct Crc32 {
    table: Box<[[u32; 256]; 8]>,
    crc: u32,
}

impl Crc32 {
    pub fn new() -> Crc32 {
        let mut t = Box::new([[0u32; 256]; 8]);
        for i in 0..256 {
            let mut c = i as u32;
            for _ in 0..8 {
                c = (c >> 1) ^ (0xEDB8_8320 & (c & 1).wrapping_neg());
            }
            t[0][i] = c;
        }
        // t[k][i]: the CRC of byte i followed by k zero bytes.
        for k in 1..8 {
            for i in 0..256 {
                let p = t[k - 1][i];
                t[k][i] = (p >> 8) ^ t[0][(p & 0xff) as usize];
            }
        }
        Crc32 { table: t, crc: 0 }
    }

    /// Continues the CRC over `data`.
    pub fn update(&mut self, data: &[u8]) {
        let t = &self.table;
        let mut c = !self.crc;
        let mut steps = data.chunks_exact(8);
        for b in &mut steps {
            let lo = c ^ u32::from_le_bytes([b[0], b[1], b[2], b[3]]);
            c = t[7][(lo & 0xff) as usize]
                ^ t[6][((lo >> 8) & 0xff) as usize]
                ^ t[5][((lo >> 16) & 0xff) as usize]
                ^ t[4][(lo >> 24) as usize]
                ^ t[3][usize::from(b[4])]
                ^ t[2][usize::from(b[5])]
                ^ t[1][usize::from(b[6])]
                ^ t[0][usize::from(b[7])];
        }
        for &b in steps.remainder() {
            c = t[0][((c ^ u32::from(b)) & 0xff) as usize] ^ (c >> 8);
        }
        self.crc = !c;
    }

    pub fn sum(&self) -> u32 {
        self.crc
    }
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

    /// `data` through a `GzWriter` with `threads`, written in pieces of `piece` bytes.
    fn gz(data: &[u8], level: u8, threads: usize, piece: usize) -> Vec<u8> {
        let mut out = Vec::new();
        let mut w = GzWriter::with_threads(&mut out, level, threads).unwrap();
        for p in data.chunks(piece.max(1)) {
            w.write_all(p).unwrap();
        }
        w.finish().unwrap();
        out
    }

    /// The CRC-32 of `data`.
    pub(crate) fn crc32(data: &[u8]) -> u32 {
        let mut c = Crc32::new();
        c.update(data);
        c.sum()
    }

    #[test]
    fn crc32_check_value() {
        assert_eq!(crc32(b"123456789"), 0xCBF4_3926);
        let mut c = Crc32::new();
        c.update(b"1234");
        c.update(b"56789");
        assert_eq!(c.sum(), 0xCBF4_3926);
        assert_eq!(crc32(b""), 0);
        // Every split of every length up to past two steps, against a bit at a time.
        let data = sample(40);
        for len in 0..=data.len() {
            let want = data[..len].iter().fold(!0u32, |mut c, &b| {
                c ^= u32::from(b);
                for _ in 0..8 {
                    c = if c & 1 != 0 {
                        0xEDB8_8320 ^ (c >> 1)
                    } else {
                        c >> 1
                    };
                }
                c
            });
            for split in 0..=len {
                let mut c = Crc32::new();
                c.update(&data[..split]);
                c.update(&data[split..len]);
                assert_eq!(c.sum(), !want, "len {len} split {split}");
            }
        }
    }

    #[test]
    fn gzip_round_trip_every_level() {
        let data = sample(300_000);
        for level in 0..=10u8 {
            assert_eq!(gunzip(&gz(&data, level, 1, 7000)), data, "level {level}");
        }
        // An empty stream is valid too.
        assert!(gunzip(&gz(b"", 6, 1, 1)).is_empty());
        assert!(gunzip(&gz(b"", 6, 4, 1)).is_empty());
    }

    /// Around the chunk boundaries, at each kind of level: one thread and several give the
    /// same bytes, and they read back.
    #[test]
    fn same_bytes_for_any_thread_count() {
        let big = sample(3 * CHUNK + 1);
        for len in [0, 1, CHUNK - 1, CHUNK, CHUNK + 1, 2 * CHUNK, 3 * CHUNK + 1] {
            let data = &big[..len];
            // Stored blocks, miniz's level 2 and a lazy-matching level; unoptimised deflate
            // is slow, so not every thread count at every level.
            for (level, counts) in [(0, &[4][..]), (1, &[2]), (6, &[2, 3])] {
                let one = gz(data, level, 1, 65536);
                assert!(gunzip(&one) == data, "len {len} level {level}");
                for &threads in counts {
                    let many = gz(data, level, threads, 8192 + threads);
                    assert!(
                        one == many,
                        "len {len} level {level}: {threads} threads differ"
                    );
                }
            }
        }
    }

    /// A full chunk followed by nothing ends with an empty final block: still one member.
    #[test]
    fn chunks_end_byte_aligned_and_only_the_last_is_final() {
        let data = sample(2 * CHUNK);
        let out = gz(&data, 6, 2, CHUNK);
        let body = &out[10..out.len() - 8];
        // The empty final block of fixed Huffman codes, after the sync marker of chunk 2.
        assert_eq!(body[body.len() - 6..], [0, 0, 0xff, 0xff, 3, 0]);
        assert!(gunzip(&out) == data);
    }

    /// Random bytes: every chunk is stored (one stored block header per 64 KiB, nothing
    /// deflated), the same with any thread count, around the chunk boundaries; text between
    /// random stretches is still deflated.
    #[test]
    fn incompressible_chunks_are_stored() {
        let mut x: u32 = 0x9e37_79b9;
        let noise: Vec<u8> = (0..3 * CHUNK + 1)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 17;
                x ^= x << 5;
                (x >> 11) as u8
            })
            .collect();
        for len in [CHUNK - 1, CHUNK, 2 * CHUNK, 3 * CHUNK + 1] {
            let data = &noise[..len];
            for level in [1, 6, 9] {
                let one = gz(data, level, 1, 65536);
                assert!(gunzip(&one) == data, "len {len} level {level}");
                assert!(one == gz(data, level, 3, 10_000), "len {len} level {level}");
                // Header, trailer, 5 bytes a block, and an empty final block when the data
                // ends on a chunk boundary.
                let blocks = len.div_ceil(CHUNK) * CHUNK.div_ceil(65535);
                assert!(
                    one.len() <= 18 + len + 5 * blocks + 5,
                    "len {len} level {level}"
                );
                assert_eq!(
                    one[10..15],
                    [0, 0xff, 0xff, 0, 0],
                    "len {len} level {level}"
                );
            }
        }
        // Text between random chunks is deflated: far smaller than stored.
        let mut mixed = noise[..CHUNK].to_vec();
        mixed.extend(sample(3 * CHUNK).iter().map(|b| b & 0x0f));
        mixed.extend_from_slice(&noise[CHUNK..2 * CHUNK]);
        let out = gz(&mixed, 6, 2, 65536);
        assert!(gunzip(&out) == mixed);
        assert!(out.len() < mixed.len() * 3 / 4, "{}", out.len());
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
        for (level, threads) in [(9, 1), (6, 2), (1, 4), (0, 3)] {
            let out = gz(&data, level, threads, 100_000);
            if let Some(plain) = system_tool(Command::new("gzip").arg("-dc"), &out) {
                assert!(plain == data, "gzip -dc, level {level}");
            }
            let py = "import gzip, sys; sys.stdout.buffer.write(gzip.decompress(sys.stdin.buffer.read()))";
            if let Some(plain) = system_tool(Command::new("python3").args(["-c", py]), &out) {
                assert!(plain == data, "python gzip, level {level}");
            }
        }
    }

    /// A failing output surfaces as that error, whether or not threads are at work.
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
        for threads in [1, 2] {
            for room in [0, 100, CHUNK] {
                let mut out = Full(room);
                let r = GzWriter::with_threads(&mut out, 0, threads).and_then(|mut w| {
                    w.write_all(&data)?;
                    w.finish()
                });
                let e = r.unwrap_err();
                assert_eq!(
                    e.raw_os_error(),
                    Some(libc::ENOSPC),
                    "{threads} {room}: {e}"
                );
            }
        }
    }
}
