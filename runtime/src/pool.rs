//! The thread pool: persistent worker threads that split a range `0..work` into contiguous chunks.
//!
//! `parallel_for` publishes one job (the closure, the range and the grain) under a mutex and wakes
//! the workers through a condition variable; the caller and the workers then claim chunks from the
//! front of the unclaimed range until none is left, and the caller waits until every chunk has
//! finished before it returns, so the closure may borrow from the caller's stack.
//!
//! Chunks are equal: `1 / threads` of the whole range (never less than the grain), claimed in
//! order by whichever thread is free, so a thread that starts late (a worker still waking up) or
//! is preempted finds its chunk taken by another. Guided chunks (`1 / threads` of what is left,
//! shrinking to the grain) were tried: each extra chunk repeats a kernel's per-call work (im2col
//! blocks and the GEMM library's packing), and ResNet-50 on 2 threads ran 71 ms against 54 ms
//! with equal chunks.
//!
//! Threads far apart make splitting costly (see [`crate::placement`]): a new pool measures the
//! round trip between the caller and a worker ([`ThreadPool::round_trip`], again on
//! [`ThreadPool::refresh_placement`]) and, from [`FAR_ROUND_TRIP`] on or when no worker answers,
//! doubles every grain, so only steps with enough work per chunk to pay for the traffic are split.
//!
//! Between loops a worker spins for a bounded time (watching an atomic job counter) before it
//! blocks on the condition variable, and the caller likewise spins before it sleeps waiting for the
//! last chunk: kernel steps follow each other within microseconds, while a futex wake-up costs tens
//! of microseconds. Past its first microseconds a spin yields the core on every round, so spinning
//! threads do not starve other runnable threads on a loaded machine. A panic inside a chunk is
//! caught, the remaining chunks still complete, and the first panic is resumed on the calling
//! thread.

use std::any::Any;
use std::panic::{self, AssertUnwindSafe};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError, TryLockError};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crate::placement::{forced_round_trip, probe, Placement, PROBE_TIMEOUT, REFRESH_TIMEOUT};
#[cfg(doc)]
use crate::placement::{FAR_ROUND_TRIP, ROUND_TRIP_ENV};

/// How long an idle thread spins (yielding after [`BUSY_SPIN`]) before it sleeps, by default:
/// longer than the gap between two kernel steps, so consecutive steps do not pay a futex wake-up
/// each. Tune it with [`ThreadPool::with_spin`].
pub const DEFAULT_SPIN: Duration = Duration::from_micros(200);

/// How long a spin runs without yielding the core.
const BUSY_SPIN: Duration = Duration::from_micros(5);

/// The closure type of a job: computes `begin..end` of the range.
type ChunkFn = dyn Fn(usize, usize) + Sync;

/// A fixed set of worker threads for data-parallel loops.
pub struct ThreadPool {
    threads: usize,
    shared: Arc<Shared>,
    workers: Vec<JoinHandle<()>>,
    /// Held by the thread whose job is in flight; a concurrent or nested `parallel_for` that finds
    /// it taken runs inline instead of waiting (which could deadlock).
    busy: Mutex<()>,
    /// How far apart the threads are, probed at creation and refreshed on request.
    placement: Placement,
}

struct Shared {
    state: Mutex<State>,
    /// Counts published jobs; idle workers spin on it before sleeping.
    epoch: AtomicU64,
    /// Mirror of `State::unfinished`, for the caller to spin on.
    remaining: AtomicUsize,
    /// Spin time before sleeping.
    spin: Duration,
    /// Signalled when a job is published or the pool shuts down.
    work_ready: Condvar,
    /// Signalled when the last chunk of a job finishes.
    work_done: Condvar,
}

struct State {
    /// The current job's closure with its lifetime erased; only dereferenced while the job is in
    /// flight, and the publishing caller does not return before `unfinished` reaches zero.
    job: Option<*const ChunkFn>,
    work: usize,
    /// Smallest chunk handed out (except when less is left).
    grain: usize,
    /// Start of the unclaimed part of `0..work`.
    next: usize,
    /// Units of `0..work` not finished yet (claimed or not).
    unfinished: usize,
    panic: Option<Box<dyn Any + Send>>,
    /// Workers blocked on `work_ready` (publishing skips the wake-up call when there are none).
    sleepers: usize,
    shutdown: bool,
}

// SAFETY: the raw closure pointer is only dereferenced while the job is in flight (see `State::job`),
// and the closure is `Sync`, so sharing it between threads is sound.
unsafe impl Send for State {}

fn lock(m: &Mutex<State>) -> MutexGuard<'_, State> {
    // Chunks run outside the lock and their panics are caught, so poisoning only follows a bug in
    // the pool itself; the state stays consistent either way.
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

impl State {
    /// Claims the next chunk of the job for one of `threads` threads: `1 / threads` of the
    /// whole range, at least `grain`, and all that is left when the rest would be under `grain`.
    fn claim(&mut self, threads: usize) -> Option<(usize, usize)> {
        let left = self.work - self.next;
        if self.job.is_none() || left == 0 {
            return None;
        }
        let mut size = self.work.div_ceil(threads).max(self.grain);
        if left - size.min(left) < self.grain {
            size = left;
        }
        let b = self.next;
        self.next += size;
        Some((b, self.next))
    }
}

impl ThreadPool {
    /// A pool running loops on `threads` threads: the caller plus `threads - 1` workers
    /// (`threads == 0` is treated as 1), spinning [`DEFAULT_SPIN`] before sleeping, its grain
    /// scale set from a measured round trip (see the module doc; under a millisecond when the
    /// threads answer). Fails only when the OS cannot spawn a thread.
    pub fn new(threads: usize) -> std::io::Result<Self> {
        Self::with_spin(threads, DEFAULT_SPIN)
    }

    /// Like [`ThreadPool::new`] with an explicit spin time (`Duration::ZERO`: sleep at once).
    pub fn with_spin(threads: usize, spin: Duration) -> std::io::Result<Self> {
        let pool = Self::spawn(threads, spin)?;
        if pool.threads > 1 {
            match forced_round_trip() {
                Some(rt) => pool.placement.fix(rt),
                None => {
                    if let Some(rt) = probe(&pool, PROBE_TIMEOUT) {
                        pool.placement.update(rt);
                    }
                }
            }
        }
        Ok(pool)
    }

    /// Like [`ThreadPool::with_spin`], with the caller-worker round trip given instead of
    /// measured (and [`ROUND_TRIP_ENV`] ignored): loops split the same way on every machine.
    pub fn with_round_trip(
        threads: usize,
        spin: Duration,
        round_trip: Duration,
    ) -> std::io::Result<Self> {
        let pool = Self::spawn(threads, spin)?;
        if pool.threads > 1 {
            pool.placement.fix(round_trip);
        }
        Ok(pool)
    }

    /// The pool with its workers started, grains unscaled.
    fn spawn(threads: usize, spin: Duration) -> std::io::Result<Self> {
        let threads = threads.max(1);
        let shared = Arc::new(Shared {
            state: Mutex::new(State {
                job: None,
                work: 0,
                grain: 1,
                next: 0,
                unfinished: 0,
                panic: None,
                sleepers: 0,
                shutdown: false,
            }),
            epoch: AtomicU64::new(0),
            remaining: AtomicUsize::new(0),
            spin,
            work_ready: Condvar::new(),
            work_done: Condvar::new(),
        });
        let mut pool = ThreadPool {
            threads,
            shared,
            workers: Vec::with_capacity(threads - 1),
            busy: Mutex::new(()),
            placement: Placement::default(),
        };
        for i in 1..threads {
            let shared = Arc::clone(&pool.shared);
            let handle = std::thread::Builder::new()
                .name(format!("sparsec-worker-{i}"))
                .spawn(move || worker_loop(&shared, threads))?;
            pool.workers.push(handle);
        }
        Ok(pool)
    }

    /// Number of threads loops run on, the caller included.
    pub fn threads(&self) -> usize {
        self.threads
    }

    /// The caller-worker round trip last measured (or given by [`ROUND_TRIP_ENV`]); `None` with
    /// one thread or when no worker answered in time.
    pub fn round_trip(&self) -> Option<Duration> {
        self.placement.round_trip()
    }

    /// The threads are far apart: the last probe measured at least [`FAR_ROUND_TRIP`], or no
    /// worker answered it. Always false with one thread.
    pub fn is_far(&self) -> bool {
        self.threads > 1 && self.placement.is_far()
    }

    /// The factor every grain is multiplied by: 1 unless the threads are far apart (see the
    /// module doc).
    pub fn grain_scale(&self) -> usize {
        self.placement.grain_scale()
    }

    /// Probes the round trip again when the last probe is older than `max_age` (a virtual
    /// machine's vCPUs move between hosts' cores while a process runs), unless the round trip
    /// was given; a probe that finds a loop in flight changes nothing. It waits at most
    /// [`REFRESH_TIMEOUT`] for an answer.
    pub fn refresh_placement(&self, max_age: Duration) {
        if self.threads > 1 && self.placement.is_stale(max_age) {
            if let Some(rt) = probe(self, REFRESH_TIMEOUT) {
                self.placement.update(rt);
            }
        }
    }

    /// Calls `f(begin, end)` over contiguous chunks that cover `0..work` exactly once, each at
    /// least `grain` long, the grain first multiplied by [`ThreadPool::grain_scale`] (a single
    /// chunk when `work < 2 * grain`), claimed by the threads as they
    /// become free (see the module doc for their sizes). Nothing is called when `work == 0`. With
    /// one thread, or when the pool is already running a loop (a nested or concurrent call),
    /// `f(0, work)` runs inline. A panic in `f` is resumed here after every other chunk has
    /// finished.
    pub fn parallel_for(&self, work: usize, grain: usize, f: &(dyn Fn(usize, usize) + Sync)) {
        let grain = grain.max(1).saturating_mul(self.placement.grain_scale());
        self.parallel_for_unscaled(work, grain, f)
    }

    /// [`ThreadPool::parallel_for`] with the grain used as given.
    pub(crate) fn parallel_for_unscaled(
        &self,
        work: usize,
        grain: usize,
        f: &(dyn Fn(usize, usize) + Sync),
    ) {
        if work == 0 {
            return;
        }
        let grain = grain.max(1);
        if self.threads == 1 || work < 2 * grain {
            return f(0, work);
        }
        let _busy = match self.busy.try_lock() {
            Ok(g) => g,
            Err(TryLockError::WouldBlock) => return f(0, work),
            Err(TryLockError::Poisoned(p)) => p.into_inner(),
        };
        let shared = &*self.shared;
        let wake = {
            let mut st = lock(&shared.state);
            // SAFETY: only the lifetime is erased; the pointer is cleared below before this
            // function returns, after every chunk that dereferences it has finished.
            let erased: *const ChunkFn = unsafe {
                std::mem::transmute::<*const (dyn Fn(usize, usize) + Sync + '_), *const ChunkFn>(
                    f as *const _,
                )
            };
            st.job = Some(erased);
            st.work = work;
            st.grain = grain;
            st.next = 0;
            st.unfinished = work;
            st.panic = None;
            shared.remaining.store(work, Ordering::Release);
            shared.epoch.fetch_add(1, Ordering::Release);
            // The caller's first chunk, claimed without another trip through the lock.
            let first = st.claim(self.threads);
            (st.sleepers > 0, first)
        };
        let (wake, first) = wake;
        if wake {
            shared.work_ready.notify_all();
        }

        // The caller takes chunks too, so the loop progresses even while the workers are asleep.
        let mut chunk = first;
        let mut st = loop {
            let Some((b, e)) = chunk else {
                break lock(&shared.state);
            };
            let result = panic::catch_unwind(AssertUnwindSafe(|| f(b, e)));
            let mut st = lock(&shared.state);
            finish_chunk(shared, &mut st, e - b, result);
            chunk = st.claim(self.threads);
            if chunk.is_none() {
                break st;
            }
        };
        if st.unfinished > 0 {
            drop(st);
            spin_until(shared.spin, || {
                shared.remaining.load(Ordering::Acquire) == 0
            });
            st = lock(&shared.state);
        }
        while st.unfinished > 0 {
            st = shared
                .work_done
                .wait(st)
                .unwrap_or_else(PoisonError::into_inner);
        }
        st.job = None;
        let payload = st.panic.take();
        drop(st);
        drop(_busy);
        if let Some(p) = payload {
            panic::resume_unwind(p);
        }
    }
}

/// Records the end of a chunk of `len` units (and its panic, if it is the first); wakes the caller
/// after the last.
fn finish_chunk(shared: &Shared, st: &mut State, len: usize, result: std::thread::Result<()>) {
    if let Err(p) = result {
        st.panic.get_or_insert(p);
    }
    st.unfinished -= len;
    shared.remaining.store(st.unfinished, Ordering::Release);
    if st.unfinished == 0 {
        shared.work_done.notify_all();
    }
}

/// Spins (for at most `limit`) until `done` holds, yielding the core on every round after
/// [`BUSY_SPIN`].
fn spin_until(limit: Duration, done: impl Fn() -> bool) {
    if limit.is_zero() {
        return;
    }
    let start = Instant::now();
    loop {
        for _ in 0..64 {
            if done() {
                return;
            }
            std::hint::spin_loop();
        }
        let spent = start.elapsed();
        if spent >= limit {
            return;
        }
        if spent >= BUSY_SPIN {
            std::thread::yield_now();
        }
    }
}

fn worker_loop(shared: &Shared, threads: usize) {
    let mut st = lock(&shared.state);
    let mut seen = shared.epoch.load(Ordering::Acquire);
    loop {
        if st.shutdown {
            return;
        }
        match (st.job, st.claim(threads)) {
            (Some(job), Some((b, e))) => {
                drop(st);
                // SAFETY: the job is in flight (this chunk is counted in `unfinished`), so the
                // caller is still waiting inside `parallel_for` and the closure is alive.
                let f = unsafe { &*job };
                let result = panic::catch_unwind(AssertUnwindSafe(|| f(b, e)));
                st = lock(&shared.state);
                finish_chunk(shared, &mut st, e - b, result);
            }
            _ => {
                // Nothing to do: spin a little for the next job, then sleep until one is published.
                // Publishing happens under the lock, so re-checking under it loses no wake-up.
                drop(st);
                spin_until(shared.spin, || shared.epoch.load(Ordering::Acquire) != seen);
                st = lock(&shared.state);
                seen = shared.epoch.load(Ordering::Acquire);
                let idle = st.job.is_none() || st.next >= st.work;
                if idle && !st.shutdown {
                    st.sleepers += 1;
                    st = shared
                        .work_ready
                        .wait(st)
                        .unwrap_or_else(PoisonError::into_inner);
                    st.sleepers -= 1;
                    seen = shared.epoch.load(Ordering::Acquire);
                }
            }
        }
    }
}

impl Drop for ThreadPool {
    fn drop(&mut self) {
        lock(&self.shared.state).shutdown = true;
        // Bumping the epoch ends the workers' spinning at once.
        self.shared.epoch.fetch_add(1, Ordering::Release);
        self.shared.work_ready.notify_all();
        for w in self.workers.drain(..) {
            // A worker never panics (chunk panics are caught), so there is nothing to report.
            let _ = w.join();
        }
    }
}

impl std::fmt::Debug for ThreadPool {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "ThreadPool({} threads)", self.threads)
    }
}

/// Number of physical cores: distinct (`physical id`, `core id`) pairs in `/proc/cpuinfo`, or
/// `std::thread::available_parallelism` when that file is missing or lacks those fields.
pub fn physical_cores() -> usize {
    std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|t| count_physical_cores(&t))
        .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()))
}

/// Counts distinct (`physical id`, `core id`) pairs over the processor blocks of a cpuinfo text.
fn count_physical_cores(cpuinfo: &str) -> Option<usize> {
    let mut cores = std::collections::BTreeSet::new();
    for block in cpuinfo.split("\n\n") {
        let field = |key: &str| {
            block.lines().find_map(|l| {
                let (k, v) = l.split_once(':')?;
                (k.trim() == key).then(|| v.trim().to_string())
            })
        };
        if let Some(core) = field("core id") {
            cores.insert((field("physical id").unwrap_or_default(), core));
        }
    }
    (!cores.is_empty()).then_some(cores.len())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};

    /// A pool whose threads count as near: grains are used as given.
    fn near(threads: usize) -> ThreadPool {
        ThreadPool::with_round_trip(threads, DEFAULT_SPIN, Duration::ZERO).unwrap()
    }

    /// Runs one loop and checks every index is covered exactly once by chunks of at least `grain`
    /// (a single chunk when `work < 2 * grain`).
    fn check_cover(pool: &ThreadPool, work: usize, grain: usize) {
        let hits: Vec<AtomicUsize> = (0..work).map(|_| AtomicUsize::new(0)).collect();
        let chunks = Mutex::new(Vec::new());
        pool.parallel_for(work, grain, &|b, e| {
            assert!(b < e && e <= work, "chunk {b}..{e} of {work}");
            for h in &hits[b..e] {
                h.fetch_add(1, Ordering::Relaxed);
            }
            chunks.lock().unwrap().push((b, e));
        });
        for (i, h) in hits.iter().enumerate() {
            assert_eq!(
                h.load(Ordering::Relaxed),
                1,
                "index {i} work {work} grain {grain}"
            );
        }
        let chunks = chunks.into_inner().unwrap();
        if work > 0 && work < 2 * grain.max(1) {
            assert_eq!(chunks, [(0, work)]);
        }
        if chunks.len() > 1 {
            assert!(chunks.iter().all(|(b, e)| e - b >= grain), "{chunks:?}");
        }
    }

    /// Equal sizes: `1 / threads` of the range, at least the grain, a short tail merged.
    #[test]
    fn claims_are_equal_shares_of_the_range() {
        let claims = |work: usize, grain: usize, threads: usize| {
            let job: &ChunkFn = &|_, _| {};
            let mut st = State {
                job: Some(job as *const ChunkFn),
                work,
                grain,
                next: 0,
                unfinished: work,
                panic: None,
                sleepers: 0,
                shutdown: false,
            };
            std::iter::from_fn(|| st.claim(threads)).collect::<Vec<_>>()
        };
        assert_eq!(claims(100, 5, 2), [(0, 50), (50, 100)]);
        assert_eq!(claims(100, 30, 4), [(0, 30), (30, 60), (60, 100)]);
        assert_eq!(claims(10, 4, 2), [(0, 5), (5, 10)]);
        assert_eq!(claims(7, 4, 2), [(0, 7)]);
        assert_eq!(claims(10, 1, 3), [(0, 4), (4, 8), (8, 10)]);
    }

    #[test]
    fn a_stalled_worker_leaves_its_share_to_the_caller() {
        // The caller's first chunk waits until the worker holds a chunk; the worker then stays in
        // it until the caller has run everything else, which it can only do by claiming every
        // other chunk itself.
        use std::sync::atomic::AtomicBool;
        let pool = near(2);
        let caller = std::thread::current().id();
        let by_caller = AtomicUsize::new(0);
        let held = AtomicUsize::new(0);
        let released = AtomicBool::new(false);
        let deadline = Instant::now() + Duration::from_secs(20);
        let wait_for = |cond: &dyn Fn() -> bool| {
            while !cond() {
                assert!(Instant::now() < deadline, "timed out");
                std::thread::sleep(Duration::from_micros(100));
            }
        };
        pool.parallel_for(1000, 10, &|b, e| {
            if std::thread::current().id() == caller {
                if b == 0 {
                    wait_for(&|| held.load(Ordering::Acquire) > 0);
                }
                let done = by_caller.fetch_add(e - b, Ordering::AcqRel) + e - b;
                if done + held.load(Ordering::Acquire) == 1000 {
                    released.store(true, Ordering::Release);
                }
            } else {
                assert_eq!(
                    held.swap(e - b, Ordering::AcqRel),
                    0,
                    "a second worker chunk"
                );
                wait_for(&|| released.load(Ordering::Acquire));
            }
        });
        let held = held.load(Ordering::Relaxed);
        assert!(held > 0 && held <= 500, "worker chunk of {held}");
        assert_eq!(by_caller.load(Ordering::Relaxed), 1000 - held);
    }

    #[test]
    fn reuse_across_many_calls() {
        let pool = near(3);
        let total = AtomicUsize::new(0);
        for round in 0..2000 {
            let work = 1 + round % 37;
            pool.parallel_for(work, 1, &|b, e| {
                total.fetch_add((b..e).sum::<usize>(), Ordering::Relaxed);
            });
        }
        let expected: usize = (0..2000).map(|r| (0..1 + r % 37).sum::<usize>()).sum();
        assert_eq!(total.load(Ordering::Relaxed), expected);
    }

    #[test]
    fn uses_several_threads() {
        let pool = near(2);
        let ids = Mutex::new(std::collections::HashSet::new());
        // Each chunk waits for the other, so both must run at the same time on different threads.
        let barrier = std::sync::Barrier::new(2);
        pool.parallel_for(2, 1, &|_, _| {
            barrier.wait();
            ids.lock().unwrap().insert(std::thread::current().id());
        });
        assert_eq!(ids.into_inner().unwrap().len(), 2);
    }

    #[test]
    fn panic_propagates_and_pool_survives() {
        let pool = near(2);
        for victim in [0, 1] {
            let r = panic::catch_unwind(AssertUnwindSafe(|| {
                pool.parallel_for(10, 1, &|b, _| {
                    if (b == 0) == (victim == 0) {
                        panic!("chunk at {b} failed");
                    }
                })
            }));
            let msg = r.unwrap_err();
            let msg = msg.downcast_ref::<String>().unwrap();
            assert!(msg.starts_with("chunk at"), "{msg}");
        }
        check_cover(&pool, 100, 1);
        // Inline (single-chunk) calls propagate too.
        let r = panic::catch_unwind(AssertUnwindSafe(|| {
            pool.parallel_for(1, 1, &|_, _| panic!("x"))
        }));
        assert!(r.is_err());
        check_cover(&pool, 100, 1);
    }

    #[test]
    fn nested_and_concurrent_calls_do_not_deadlock() {
        let pool = near(2);
        let count = AtomicUsize::new(0);
        pool.parallel_for(4, 1, &|b, e| {
            for _ in b..e {
                pool.parallel_for(3, 1, &|b2, e2| {
                    count.fetch_add(e2 - b2, Ordering::Relaxed);
                });
            }
        });
        assert_eq!(count.load(Ordering::Relaxed), 12);
        std::thread::scope(|s| {
            for _ in 0..3 {
                s.spawn(|| {
                    for _ in 0..200 {
                        check_cover(&pool, 50, 1);
                    }
                });
            }
        });
    }

    #[test]
    fn counts_cores_from_cpuinfo() {
        let two_cores_smt = "processor\t: 0\nphysical id\t: 0\ncore id\t: 0\n\n\
                             processor\t: 1\nphysical id\t: 0\ncore id\t: 1\n\n\
                             processor\t: 2\nphysical id\t: 0\ncore id\t: 0\n\n\
                             processor\t: 3\nphysical id\t: 0\ncore id\t: 1\n";
        assert_eq!(count_physical_cores(two_cores_smt), Some(2));
        let two_sockets = "physical id : 0\ncore id : 0\n\nphysical id : 1\ncore id : 0\n";
        assert_eq!(count_physical_cores(two_sockets), Some(2));
        assert_eq!(count_physical_cores("processor : 0\n"), None);
        assert!(physical_cores() >= 1);
    }
}
