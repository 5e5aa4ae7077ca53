//! Helpers shared by the benchmark examples (`mod common;` in each).

/// `struct timespec` of Linux x86-64.
#[repr(C)]
struct Timespec {
    sec: i64,
    nsec: i64,
}

extern "C" {
    fn clock_gettime(clock: i32, ts: *mut Timespec) -> i32;
}

/// CPU seconds of the calling thread (`CLOCK_THREAD_CPUTIME_ID`): unlike the wall clock it does
/// not count the time the thread waits for a core on a shared machine.
pub fn thread_cpu() -> f64 {
    let mut ts = Timespec { sec: 0, nsec: 0 };
    // SAFETY: `ts` is a valid `timespec` and 3 is `CLOCK_THREAD_CPUTIME_ID` on Linux.
    unsafe { clock_gettime(3, &mut ts) };
    ts.sec as f64 + ts.nsec as f64 * 1e-9
}
