//! CPU time, from the kernel's own accounting.

use std::time::Duration;

fn timespec(clock: libc::clockid_t) -> Duration {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `ts` is a valid, writable timespec; the clock id is a constant the kernel knows.
    let ok = unsafe { libc::clock_gettime(clock, &mut ts) } == 0;
    if !ok {
        return Duration::ZERO;
    }
    Duration::new(
        u64::try_from(ts.tv_sec).unwrap_or(0),
        u32::try_from(ts.tv_nsec).unwrap_or(0),
    )
}

/// CPU time of the calling thread.
pub fn thread() -> Duration {
    timespec(libc::CLOCK_THREAD_CPUTIME_ID)
}

/// CPU time of the whole process, every thread (user + system).
pub fn process() -> Duration {
    timespec(libc::CLOCK_PROCESS_CPUTIME_ID)
}
