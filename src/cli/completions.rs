//! `ferry completions SHELL` and `ferry man`: shell completions and a man page, generated from the
//! same clap definition that parses the command line (so they never drift from it).

use std::io::Write;
use std::path::PathBuf;

use clap::{Args, CommandFactory};
use clap_complete::Shell;

use super::{Cli, eprint_error, exit};

#[derive(Args, Debug)]
pub struct CompletionsArgs {
    /// The shell: bash, zsh, fish, elvish or powershell.
    #[arg(value_enum)]
    pub shell: Shell,
}

#[derive(Args, Debug)]
pub struct ManArgs {
    /// Write one page per command (`ferry.1`, `ferry-run.1`, ...) into this folder instead of
    /// printing the main page.
    #[arg(long, value_name = "DIR")]
    pub dir: Option<PathBuf>,
}

/// Prints the completion script for `args.shell` on stdout.
pub fn exec_completions(args: CompletionsArgs) -> u8 {
    let mut cmd = Cli::command();
    let mut out = Vec::new();
    clap_complete::generate(args.shell, &mut cmd, "ferry", &mut out);
    write_stdout(&out)
}

/// Prints the man page (roff) on stdout, or writes every command's page into `--dir`.
pub fn exec_man(args: ManArgs) -> u8 {
    let cmd = Cli::command();
    match args.dir {
        Some(dir) => {
            let res =
                std::fs::create_dir_all(&dir).and_then(|_| clap_mangen::generate_to(cmd, &dir));
            match res {
                Ok(()) => exit::OK,
                Err(e) => {
                    eprint_error(&format!("cannot write man pages to {}: {e}", dir.display()));
                    exit::FAILED
                }
            }
        }
        None => {
            let mut out = Vec::new();
            if let Err(e) = clap_mangen::Man::new(cmd).render(&mut out) {
                eprint_error(&format!("cannot render the man page: {e}"));
                return exit::FAILED;
            }
            write_stdout(&out)
        }
    }
}

fn write_stdout(bytes: &[u8]) -> u8 {
    let mut so = std::io::stdout().lock();
    match so.write_all(bytes).and_then(|_| so.flush()) {
        Ok(()) => exit::OK,
        // A closed pipe (`ferry man | head`) is not an error worth reporting.
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => exit::OK,
        Err(e) => {
            eprint_error(&format!("cannot write to stdout: {e}"));
            exit::FAILED
        }
    }
}
