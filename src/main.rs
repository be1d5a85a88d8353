//! The `ferry` binary: a thin wrapper over the library's CLI.

fn main() -> std::process::ExitCode {
    // What ferry writes (ledger, reports, outbox, temporary archives, file vaults) is for the
    // user running it only: files 0600, folders 0700.
    // SAFETY: umask only sets the process's file mode mask; it cannot fail.
    unsafe {
        libc::umask(0o077);
    }
    ferry::cli::main()
}
