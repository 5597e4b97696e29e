//! The daemon's settings of the C allocator (glibc's malloc): its limits,
//! set once at start, and handing freed heap memory back to the kernel
//! after the evaluations that allocate the most.

/// Sets glibc's malloc up for a small long-running daemon. Call it before
/// any thread starts: the arena limit counts only for threads that
/// allocate afterwards.
pub(crate) fn configure() {
    #[cfg(target_env = "gnu")]
    // SAFETY: mallopt takes two integers and changes only malloc's
    // parameters; no other thread exists yet.
    unsafe {
        // glibc gives threads that allocate at the same time arenas of
        // their own (up to eight per core), and each arena keeps what was
        // freed in it. The daemon's threads seldom allocate at once, so one
        // arena costs no waiting and bounds the idle heap.
        libc::mallopt(libc::M_ARENA_MAX, 1);
        // Fixed thresholds (setting them turns off glibc's sliding ones,
        // which rise to the largest block ever freed): a large buffer, such
        // as a decompressed apt list of several megabytes, is then always a
        // mapping of its own, unmapped when freed, rather than a hole in the
        // heap that outlives it.
        libc::mallopt(libc::M_MMAP_THRESHOLD, 128 * 1024);
        libc::mallopt(libc::M_TRIM_THRESHOLD, 128 * 1024);
    }
}

/// Hands the free pages inside the heap back to the kernel. A full
/// evaluation parses every source and leaves freed memory spread through
/// the heap, which glibc would otherwise keep for later.
pub(crate) fn release_free() {
    #[cfg(target_env = "gnu")]
    // SAFETY: malloc_trim only returns free memory; it is thread-safe.
    unsafe {
        libc::malloc_trim(0);
    }
}
