//! How far apart a pool's threads are: an atomic round trip between the caller and a worker,
//! probed when the pool is made and again on request, and the grain factor that follows from it.
//!
//! Threads far apart make splitting costly. On the development machine (a virtual machine with
//! two vCPUs) the round trip was 28-115 ns most of the time and 250-450 ns, or no answer within
//! 50 ms, at others: the second vCPU was then shared with other work on the host. In that state
//! tiny BERT at 90% sparsity ran 1.8-2.6 ms on two threads against 1.0 ms on one, and ResNet-50
//! at 90% 23-32 ms against 17.5-18 ms in the good state (33-36 ms on one thread). A
//! [`ThreadPool`](crate::ThreadPool) on far threads doubles its grains, and the compiler's engine
//! runs small plans on the caller alone.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Mutex, PoisonError};
use std::time::{Duration, Instant};

use crate::pool::ThreadPool;

/// The caller-worker round trip (one atomic store seen and answered) from which threads count as
/// far apart (see the module doc for the two states measured).
pub const FAR_ROUND_TRIP: Duration = Duration::from_nanos(200);

/// Factor grains are multiplied by on far threads. Measured on ResNet-50 at 90% sparsity (two
/// threads, the scale forced): in the good state 2 leaves it unchanged (17.7 vs 17.8 ms) and 3
/// makes it 35% slower, its sparse convolutions having barely more work than two grains; in the
/// far state 2 gave 17.7-28 ms against 23-32 ms with 1.
const FAR_GRAIN_SCALE: usize = 2;

/// Round trips per timed batch of the probe, and batches (the median batch counts).
const PROBE_TRIPS: u64 = 100;
const PROBE_BATCHES: usize = 7;

/// How long the probe made with a new pool waits for a worker to answer.
pub const PROBE_TIMEOUT: Duration = Duration::from_millis(50);

/// How long a later probe ([`ThreadPool::refresh_placement`]) waits: it runs between two plan
/// runs, so it must stay short even when no worker answers.
pub const REFRESH_TIMEOUT: Duration = Duration::from_millis(5);

/// Environment variable that replaces the measured round trip (in nanoseconds) for the pools of
/// the process, to reproduce a placement of the threads at will.
pub const ROUND_TRIP_ENV: &str = "SPARSEC_ROUND_TRIP_NS";

/// No round trip known (one thread, or no probe yet).
const UNKNOWN: u64 = u64::MAX;

/// The pool's view of its threads' placement; shared by every thread through `&self`.
#[derive(Debug)]
pub(crate) struct Placement {
    /// The last round trip in nanoseconds, or [`UNKNOWN`].
    round_trip_ns: AtomicU64,
    /// The last probe got no answer in time.
    silent: AtomicBool,
    /// The round trip was given: never probed again.
    fixed: AtomicBool,
    /// When the last probe started.
    probed: Mutex<Option<Instant>>,
}

impl Default for Placement {
    fn default() -> Self {
        Placement {
            round_trip_ns: AtomicU64::new(UNKNOWN),
            silent: AtomicBool::new(false),
            fixed: AtomicBool::new(false),
            probed: Mutex::new(None),
        }
    }
}

impl Placement {
    /// Sets the round trip for good.
    pub(crate) fn fix(&self, round_trip: Duration) {
        self.fixed.store(true, Ordering::Relaxed);
        self.update(Some(round_trip));
    }

    /// Records a probe's result (`None`: no answer).
    pub(crate) fn update(&self, round_trip: Option<Duration>) {
        let ns = round_trip.map_or(UNKNOWN, |d| (d.as_nanos() as u64).min(UNKNOWN - 1));
        self.round_trip_ns.store(ns, Ordering::Relaxed);
        self.silent.store(round_trip.is_none(), Ordering::Relaxed);
    }

    /// Whether a new probe is due; if so, notes that one starts now, so concurrent callers do
    /// not probe too.
    pub(crate) fn is_stale(&self, max_age: Duration) -> bool {
        if self.fixed.load(Ordering::Relaxed) {
            return false;
        }
        let Ok(mut probed) = self.probed.try_lock() else {
            return false;
        };
        if probed.is_some_and(|t| t.elapsed() < max_age) {
            return false;
        }
        *probed = Some(Instant::now());
        true
    }

    /// The last measured or given round trip.
    pub(crate) fn round_trip(&self) -> Option<Duration> {
        let ns = self.round_trip_ns.load(Ordering::Relaxed);
        (ns != UNKNOWN).then(|| Duration::from_nanos(ns))
    }

    /// At least [`FAR_ROUND_TRIP`], or the last probe got no answer.
    pub(crate) fn is_far(&self) -> bool {
        self.silent.load(Ordering::Relaxed)
            || self.round_trip().is_some_and(|rt| rt >= FAR_ROUND_TRIP)
    }

    /// [`FAR_GRAIN_SCALE`] on far threads, else 1.
    pub(crate) fn grain_scale(&self) -> usize {
        if self.is_far() {
            FAR_GRAIN_SCALE
        } else {
            1
        }
    }
}

/// The round trip set by [`ROUND_TRIP_ENV`], if any.
pub(crate) fn forced_round_trip() -> Option<Duration> {
    std::env::var(ROUND_TRIP_ENV)
        .ok()
        .and_then(|v| v.trim().parse::<u64>().ok())
        .map(Duration::from_nanos)
}

/// Times atomic round trips between the caller and one worker of `pool`: a loop of two chunks,
/// the caller's storing odd values and waiting for the worker's even answers. The median of
/// [`PROBE_BATCHES`] batches of [`PROBE_TRIPS`] counts, so a preemption in one batch does not.
/// `Some(None)` when the worker has not answered within `timeout`; `None` when the loop could
/// not be split (the pool was running another loop), which says nothing about the threads.
pub(crate) fn probe(pool: &ThreadPool, timeout: Duration) -> Option<Option<Duration>> {
    let flag = AtomicU64::new(0);
    let abandoned = AtomicBool::new(false);
    let split = AtomicBool::new(false);
    let batches = Mutex::new(Vec::with_capacity(PROBE_BATCHES));
    let total = PROBE_TRIPS * PROBE_BATCHES as u64;
    pool.parallel_for_unscaled(2, 1, &|b, e| {
        if e - b != 1 {
            return;
        }
        split.store(true, Ordering::Relaxed);
        let wait_for = |value: u64, start: Instant| {
            while flag.load(Ordering::Acquire) != value {
                if abandoned.load(Ordering::Relaxed) {
                    return false;
                }
                if start.elapsed() > timeout {
                    abandoned.store(true, Ordering::Relaxed);
                    return false;
                }
                std::hint::spin_loop();
            }
            true
        };
        if b == 0 {
            let mut times = Vec::with_capacity(PROBE_BATCHES);
            let mut trip = 0;
            for _ in 0..PROBE_BATCHES {
                let start = Instant::now();
                for _ in 0..PROBE_TRIPS {
                    flag.store(2 * trip + 1, Ordering::Release);
                    if !wait_for(2 * trip + 2, start) {
                        return;
                    }
                    trip += 1;
                }
                times.push(start.elapsed() / PROBE_TRIPS as u32);
            }
            *batches.lock().unwrap_or_else(PoisonError::into_inner) = times;
        } else {
            let start = Instant::now();
            for trip in 0..total {
                if !wait_for(2 * trip + 1, start) {
                    return;
                }
                flag.store(2 * trip + 2, Ordering::Release);
            }
        }
    });
    if !split.into_inner() {
        return None;
    }
    let mut times = batches.into_inner().unwrap_or_else(PoisonError::into_inner);
    if times.len() < PROBE_BATCHES {
        return Some(None);
    }
    times.sort();
    Some(Some(times[PROBE_BATCHES / 2]))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pool::DEFAULT_SPIN;

    #[test]
    fn far_threads_scale_the_grain() {
        let p = Placement::default();
        assert!(!p.is_far() && p.grain_scale() == 1 && p.round_trip().is_none());
        for (ns, far) in [(0, false), (99, false), (200, true), (1_000_000_000, true)] {
            p.update(Some(Duration::from_nanos(ns)));
            assert_eq!(p.is_far(), far, "{ns} ns");
            assert_eq!(p.grain_scale(), if far { FAR_GRAIN_SCALE } else { 1 });
        }
        // No answer counts as far.
        p.update(None);
        assert!(p.is_far() && p.round_trip().is_none());
        // Far apart: grain 10 becomes 20, so 39 units run as one chunk and 40 split in two.
        let far = ThreadPool::with_round_trip(2, DEFAULT_SPIN, Duration::from_nanos(340)).unwrap();
        assert!(far.is_far());
        assert_eq!(far.grain_scale(), 2);
        for (work, chunks) in [(39, 1), (40, 2)] {
            let seen = Mutex::new(Vec::new());
            far.parallel_for(work, 10, &|b, e| seen.lock().unwrap().push((b, e)));
            let mut seen = seen.into_inner().unwrap();
            seen.sort();
            assert_eq!(seen.len(), chunks, "{work}: {seen:?}");
            assert!(seen.iter().all(|(b, e)| e - b >= 20 || seen.len() == 1));
            assert_eq!((seen[0].0, seen[seen.len() - 1].1), (0, work));
        }
        // A given round trip is never probed again.
        far.refresh_placement(Duration::ZERO);
        assert_eq!(far.round_trip(), Some(Duration::from_nanos(340)));
        // One thread: nothing to measure, nothing to scale.
        let one = ThreadPool::with_round_trip(1, DEFAULT_SPIN, Duration::from_secs(1)).unwrap();
        assert_eq!(
            (one.round_trip(), one.grain_scale(), one.is_far()),
            (None, 1, false)
        );
    }

    #[test]
    fn the_probe_measures_a_round_trip() {
        let pool = ThreadPool::with_spin(2, DEFAULT_SPIN).unwrap();
        assert_eq!(pool.grain_scale(), if pool.is_far() { 2 } else { 1 });
        // Other tests load the cores meanwhile, so a probe may time out (`None`); one of a few
        // gets its answers, and every probe leaves the pool usable.
        let rt = (0..20).find_map(|_| {
            let rt = probe(&pool, PROBE_TIMEOUT).expect("an idle pool splits the probe");
            let hits = AtomicU64::new(0);
            pool.parallel_for_unscaled(1000, 1, &|b, e| {
                hits.fetch_add((e - b) as u64, Ordering::Relaxed);
            });
            assert_eq!(hits.into_inner(), 1000);
            rt
        });
        let rt = rt.expect("a probe got its answers");
        assert!(rt > Duration::ZERO && rt < PROBE_TIMEOUT, "{rt:?}");
        // A probe from inside a loop of the same pool cannot split: it reports nothing.
        pool.parallel_for_unscaled(2, 1, &|b, _| {
            if b == 0 {
                assert_eq!(probe(&pool, PROBE_TIMEOUT), None);
            }
        });
        // A refresh due now probes again; one not due keeps the value.
        let p = Placement::default();
        assert!(p.is_stale(Duration::from_secs(3600)));
        assert!(!p.is_stale(Duration::from_secs(3600)));
        assert!(p.is_stale(Duration::ZERO));
        assert_eq!(ThreadPool::new(1).unwrap().round_trip(), None);
    }
}
