//! The one error type of the command line: what a command could not do, with its exit code.

use super::exit;

/// Why a command stopped before (or instead of) doing its work.
#[derive(Debug, thiserror::Error)]
pub enum CliError {
    /// A wrong argument or a combination the command refuses.
    #[error("{0}")]
    Usage(String),
    /// The configuration (or the sandbox) could not be loaded; already reported.
    #[error("the configuration could not be loaded")]
    Config,
    /// The async runtime could not start.
    #[error("cannot start the runtime: {0}")]
    Runtime(#[from] std::io::Error),
    /// The run ledger could not be opened or read, or does not hold what was asked for.
    #[error("{0}")]
    Ledger(String),
    /// A vault could not be opened or read.
    #[error("{0}")]
    Vault(String),
}

impl CliError {
    /// The exit code (see `ferry --help`): every one of these is a usage, configuration or
    /// environment error.
    pub fn code(&self) -> u8 {
        match self {
            CliError::Usage(_)
            | CliError::Config
            | CliError::Runtime(_)
            | CliError::Ledger(_)
            | CliError::Vault(_) => exit::USAGE,
        }
    }

    /// Prints the error (unless already reported) on `shell` and gives the exit code.
    pub fn report(&self, shell: &crate::shell::Shell) -> u8 {
        if !matches!(self, CliError::Config) {
            shell.error(&self.to_string());
        }
        self.code()
    }
}
