//! The kubelet's kill clock (SPEC section 3 step 11): after a termination signal, SIGKILL
//! follows within the pod's grace period, so saving outputs must stop in time to write
//! `exitcode`.
//!
//! This module owns when saving must stop. The clock starts at the first termination signal
//! (TERM, INT, HUP, QUIT): whoever reads one calls `terminated` (the supervision loop, for a
//! signal that came while it waited), and `Clock` itself looks at the pending signals while the
//! outputs are saved, since nothing reads the signalfd then. Saving may go on until
//! `grace - margin` after that first signal; `Clock::check`, called per tar entry and per read
//! of file data, fails once that moment has passed, and the caller removes the unfinished file.

use std::io;
use std::mem::MaybeUninit;
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use crate::sys::log;
use crate::sys::signals;

/// When the first termination signal was seen, if one was.
static TERMINATED: OnceLock<Instant> = OnceLock::new();

/// How often a running save looks at the pending signals: a TERM that arrives during saving
/// shortens it within this, for one system call per look.
const POLL: Duration = Duration::from_millis(20);

/// Records that a termination signal was received now; only the first call counts, since the
/// kubelet's clock started with the first.
pub fn terminated() {
    let _ = TERMINATED.set(Instant::now());
}

/// What is kept back from the grace period for what follows the stop: finishing the chunks
/// the deflate threads hold (a few hundred ms on a CPU-throttled container), removing the
/// unfinished file (a multi-GB one takes a while on a busy disk), the warnings, `exitcode`.
/// All that takes milliseconds on a healthy node, but a TERM comes exactly when a node is not
/// healthy (eviction under memory or disk pressure, a drain, a spot reclaim): a tenth of the
/// grace period, at least 2 s, at most 10 s; and never more than half of it, so that even a
/// short grace period leaves saving some time.
pub fn margin(grace: Duration) -> Duration {
    (grace / 10)
        .clamp(Duration::from_secs(2), Duration::from_secs(10))
        .min(grace / 2)
}

/// The saving's view of the kill clock.
pub struct Clock {
    /// Saving may go on this long after the first termination signal; `None`: no limit.
    budget: Option<Duration>,
    next_poll: Instant,
    /// The deadline has been announced in the log.
    told: bool,
}

impl Clock {
    /// The clock of a run whose grace period is `grace`.
    pub fn new(grace: Duration) -> Clock {
        Clock {
            budget: Some(grace - margin(grace)),
            next_poll: Instant::now(),
            told: false,
        }
    }

    /// A clock that never runs out (archives made outside a run: tests, fuzzing).
    #[cfg_attr(not(test), allow(dead_code))]
    pub fn unbounded() -> Clock {
        Clock {
            budget: None,
            next_poll: Instant::now(),
            told: false,
        }
    }

    /// Whether saving must stop now.
    pub fn out_of_time(&mut self) -> bool {
        let Some(budget) = self.budget else {
            return false;
        };
        let now = Instant::now();
        if now >= self.next_poll {
            self.next_poll = now + POLL;
            if termination_pending() {
                terminated();
            }
        }
        let Some(&start) = TERMINATED.get() else {
            return false;
        };
        // A grace period beyond what the clock can add (a huge value): no limit.
        let Some(deadline) = start.checked_add(budget) else {
            return false;
        };
        if !self.told {
            self.told = true;
            let left = deadline.saturating_duration_since(now).as_millis();
            log::info(
                "termination signal received: saving outputs stops before the kubelet's SIGKILL",
                &[("msLeft", &left.to_string())],
            );
        }
        now >= deadline
    }

    /// `out_of_time` as an error to stop a copy with.
    pub fn check(&mut self) -> io::Result<()> {
        if self.out_of_time() {
            Err(io::Error::new(
                io::ErrorKind::TimedOut,
                "out of time before the kubelet's SIGKILL",
            ))
        } else {
            Ok(())
        }
    }
}

/// Whether a termination signal is pending: blocked, not yet read from the signalfd. Looked
/// at without taking it, so whatever reads the signalfd later still sees it. (Also asked
/// between attempts, where a start failure left the signalfd unread.)
pub fn termination_pending() -> bool {
    let mut set = MaybeUninit::<libc::sigset_t>::zeroed();
    // SAFETY: sigpending writes the pending set into valid sigset_t storage.
    if unsafe { libc::sigpending(set.as_mut_ptr()) } != 0 {
        return false;
    }
    // SAFETY: sigpending succeeded, so it filled the set.
    let set = unsafe { set.assume_init() };
    (1..32).any(|sig| {
        // SAFETY: set is a valid sigset_t and sig a valid signal number.
        signals::is_termination(sig) && unsafe { libc::sigismember(&set, sig) } == 1
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn margins() {
        let m = |s| margin(Duration::from_secs(s)).as_millis();
        assert_eq!(m(30), 3000);
        assert_eq!(m(3), 1500);
        assert_eq!(m(1), 500);
        assert_eq!(m(10), 2000);
        assert_eq!(m(600), 10_000);
    }

    #[test]
    fn a_huge_grace_period_is_no_limit() {
        terminated();
        let mut c = Clock::new(Duration::from_secs(u64::MAX / 2));
        assert!(!c.out_of_time());
    }

    #[test]
    fn unbounded_never_runs_out() {
        terminated();
        assert!(!Clock::unbounded().out_of_time());
        assert!(Clock::unbounded().check().is_ok());
        // With a budget it runs out once the first signal is that long ago.
        let mut c = Clock::new(Duration::from_millis(2));
        std::thread::sleep(Duration::from_millis(5));
        assert!(c.out_of_time());
        assert_eq!(c.check().unwrap_err().kind(), io::ErrorKind::TimedOut);
    }
}
