//! The `ferry` binary: a thin wrapper over the library's CLI.

fn main() -> std::process::ExitCode {
    ferry::cli::main()
}
