//! Worker threads that deflate the chunks of one gzip stream, and the order of their output.
//!
//! This module owns the threads and what they share: a queue of chunks to deflate and the
//! deflated chunks not yet written, under one mutex, with one condition variable that wakes
//! both sides. The writer hands over chunks numbered in stream order and writes the results
//! in that order, whichever thread finishes first; at most one chunk per thread and two more
//! are in flight, so memory stays bounded whatever the stream's length. Plain blocking threads:
//! deflate is pure computation, so nothing here waits on anything but the other side.

use std::io::{self, Write};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};
use std::thread::{self, JoinHandle};

use crate::outputs::deflate::{compressor, deflate_chunk};

/// A worker's stack: deflate keeps its big tables on the heap, but `CompressorOxide::reset`
/// may build its 64 KiB code buffer on the stack, and unoptimised test builds use several
/// times more. Set explicitly so that `RUST_MIN_STACK` in a user's environment cannot shrink
/// it; untouched stack pages cost no memory.
const STACK: usize = 1024 * 1024;

/// The deflate threads of one stream; stopped and joined when dropped.
pub struct Pool {
    shared: Arc<Shared>,
    workers: Vec<JoinHandle<()>>,
    /// Chunks handed over so far; the next one gets this number.
    sent: u64,
    /// Chunks written out so far, all in order.
    written: u64,
    /// Chunks in flight at most: sent but not yet written.
    limit: u64,
    /// Chunk buffers back from the workers, for the writer's next chunks.
    spare: Vec<Vec<u8>>,
}

struct Shared {
    state: Mutex<State>,
    wake: Condvar,
}

#[derive(Default)]
struct State {
    /// Chunks waiting for a thread: number, bytes, whether it ends the stream. A Vec, taken
    /// from the front: it holds a few entries, and a VecDeque costs more code.
    todo: Vec<(u64, Vec<u8>, bool)>,
    /// Deflated chunks not yet written, in any order, each with its input buffer.
    done: Vec<(u64, io::Result<Vec<u8>>, Vec<u8>)>,
    /// Output buffers written out, for the workers to fill again.
    spare: Vec<Vec<u8>>,
    /// A worker died: the chunk it held will never come.
    failed: bool,
    /// The stream is over or abandoned: workers return.
    closed: bool,
}

impl Shared {
    /// The state, also after a worker panicked while holding the lock: the state is changed
    /// by single pushes and pops only, so it is whole whenever the lock is free.
    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn wait<'a>(&self, state: MutexGuard<'a, State>) -> MutexGuard<'a, State> {
        self.wake
            .wait(state)
            .unwrap_or_else(PoisonError::into_inner)
    }
}

impl Pool {
    /// Starts up to `threads` workers deflating at gzip `level`; None when not even one could
    /// be started (out of processes or memory): the caller then deflates in its own thread.
    pub fn start(level: u8, threads: usize) -> Option<Pool> {
        let shared = Arc::new(Shared {
            state: Mutex::new(State::default()),
            wake: Condvar::new(),
        });
        let mut workers = Vec::new();
        for _ in 0..threads {
            let s = Arc::clone(&shared);
            match thread::Builder::new()
                .stack_size(STACK)
                .spawn(move || work(&s, level))
            {
                Ok(w) => workers.push(w),
                // Fewer threads give the same bytes, only later.
                Err(_) => break,
            }
        }
        if workers.is_empty() {
            return None;
        }
        Some(Pool {
            shared,
            // Two beyond one per thread: a thread that finishes early finds work while the
            // oldest chunk, which must be written first, is still being deflated.
            limit: workers.len() as u64 + 2,
            workers,
            sent: 0,
            written: 0,
            spare: Vec::new(),
        })
    }

    /// Hands chunk `data` over, after writing to `out` what is finished in order and waiting
    /// while `limit` chunks are in flight. Returns a buffer for the next chunk.
    pub fn send(&mut self, data: Vec<u8>, last: bool, out: &mut dyn Write) -> io::Result<Vec<u8>> {
        self.settle(out, self.limit - 1)?;
        self.shared.lock().todo.push((self.sent, data, last));
        self.sent += 1;
        self.shared.wake.notify_all();
        Ok(self.spare.pop().unwrap_or_default())
    }

    /// Waits for every chunk handed over and writes it to `out`.
    pub fn drain(&mut self, out: &mut dyn Write) -> io::Result<()> {
        self.settle(out, 0)
    }

    /// Writes every finished chunk that is next in order to `out`, waiting until at most
    /// `pending` chunks are still in flight.
    fn settle(&mut self, out: &mut dyn Write, pending: u64) -> io::Result<()> {
        let mut state = self.shared.lock();
        loop {
            if let Some(i) = state.done.iter().position(|d| d.0 == self.written) {
                let (_, deflated, input) = state.done.swap_remove(i);
                // Other threads go on while this one writes.
                drop(state);
                let deflated = deflated?;
                out.write_all(&deflated)?;
                self.written += 1;
                self.spare.push(input);
                state = self.shared.lock();
                state.spare.push(deflated);
            } else if self.sent - self.written <= pending {
                return Ok(());
            } else if state.failed {
                return Err(io::Error::other("a compression thread failed"));
            } else {
                state = self.shared.wait(state);
            }
        }
    }
}

impl Drop for Pool {
    /// Stops the workers, even with chunks left (the stream failed), and waits for them: at
    /// most the one chunk each is deflating.
    fn drop(&mut self) {
        self.shared.lock().closed = true;
        self.shared.wake.notify_all();
        for w in self.workers.drain(..) {
            // A worker that panicked has already said so through `failed`.
            let _ = w.join();
        }
    }
}

/// A worker: deflates chunks from the queue, first come first served, until closed.
fn work(shared: &Shared, level: u8) {
    let _alarm = Alarm(shared);
    let mut c = compressor(level);
    loop {
        let mut state = shared.lock();
        let (n, data, last) = loop {
            if state.closed {
                return;
            }
            if !state.todo.is_empty() {
                break state.todo.remove(0);
            }
            state = shared.wait(state);
        };
        let mut deflated = state.spare.pop().unwrap_or_default();
        drop(state);
        let r = deflate_chunk(&mut c, &data, last, &mut deflated).map(|()| deflated);
        shared.lock().done.push((n, r, data));
        shared.wake.notify_all();
    }
}

/// Marks the pool failed when its worker unwinds (a panic in a test build; the release builds
/// abort), so the writer stops waiting for a chunk that will never come instead of hanging.
struct Alarm<'a>(&'a Shared);

impl Drop for Alarm<'_> {
    fn drop(&mut self) {
        if thread::panicking() {
            self.0.lock().failed = true;
            self.0.wake.notify_all();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::{Duration, Instant};

    /// A worker that panics makes the writer fail instead of waiting forever for its chunk.
    #[test]
    fn a_panicking_worker_fails_the_stream() {
        let shared = Arc::new(Shared {
            state: Mutex::new(State::default()),
            wake: Condvar::new(),
        });
        let s = Arc::clone(&shared);
        let dies = thread::spawn(move || {
            let _alarm = Alarm(&s);
            // Dies holding the lock, as a panic inside it would: the mutex is poisoned too.
            let _state = s.lock();
            panic!("a worker dies");
        });
        let mut pool = Pool {
            shared,
            workers: vec![dies],
            sent: 0,
            written: 0,
            limit: 2,
            spare: Vec::new(),
        };
        let start = Instant::now();
        let mut out = Vec::new();
        pool.send(vec![1, 2, 3], true, &mut out).unwrap();
        let e = pool.drain(&mut out).unwrap_err();
        assert!(e.to_string().contains("compression thread failed"), "{e}");
        assert!(out.is_empty());
        drop(pool);
        assert!(start.elapsed() < Duration::from_secs(10));
    }

    /// Results are written in the order sent, whichever worker finishes first.
    #[test]
    fn written_in_order() {
        let mut pool = Pool::start(6, 3).unwrap();
        let mut out = Vec::new();
        let chunks: Vec<Vec<u8>> = (0..20u8)
            .map(|i| vec![i; 1000 + usize::from(i) * 5000])
            .collect();
        let mut want = Vec::new();
        let mut c = compressor(6);
        for (i, chunk) in chunks.iter().enumerate() {
            let last = i == chunks.len() - 1;
            let mut z = Vec::new();
            deflate_chunk(&mut c, chunk, last, &mut z).unwrap();
            want.extend(z);
            pool.send(chunk.clone(), last, &mut out).unwrap();
        }
        pool.drain(&mut out).unwrap();
        assert!(out == want);
    }
}
