//! The `ferry` binary: a thin wrapper over the library's CLI.

fn main() -> std::process::ExitCode {
    // What ferry writes (ledger, reports, outbox, temporary archives, file vaults) is for the
    // user running it only: files 0600, folders 0700.
    // SAFETY: umask only sets the process's file mode mask; it cannot fail.
    unsafe {
        libc::umask(0o077);
    }
    malloc_settings();
    ferry::cli::main()
}

/// glibc's allocator, set for a process whose heap is many small records and a few large
/// buffers (measured with the `rss_big` benchmark, export + store of 10,000 integrations: peak
/// RSS 150 -> 128 MiB with the old code): two arenas instead of one per thread (the stores run
/// on a pool of threads, and each thread's arena kept its freed memory), and buffers of 256 KiB
/// and more always mapped on their own (glibc otherwise raises that threshold after the first
/// large free, and later large buffers then fragment the heap). An environment's own
/// `MALLOC_ARENA_MAX` / `MALLOC_MMAP_THRESHOLD_` are left as they are.
fn malloc_settings() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    {
        let set = |var: &str| std::env::var_os(var).is_none();
        // SAFETY: mallopt only changes allocator parameters; called before any thread starts.
        unsafe {
            if set("MALLOC_ARENA_MAX") {
                libc::mallopt(libc::M_ARENA_MAX, 2);
            }
            if set("MALLOC_MMAP_THRESHOLD_") {
                libc::mallopt(libc::M_MMAP_THRESHOLD, 256 * 1024);
            }
        }
    }
}
