//! The one output of ferry (cargo's `Shell`): what scripts print, warnings, errors, the final
//! report, and progress bars all go through it. It knows the verbosity (`-q`, `-v`), whether
//! stdout carries the JSON report (`--json`, script output then goes to stderr), and draws every
//! progress bar in one `indicatif::MultiProgress` so that bars and lines never garble each other.
//! Secret values are scrubbed here, once, from everything written.

use std::io::{IsTerminal, Write};
use std::sync::{Arc, Mutex};

use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};

use crate::config::Secret;

/// Exit codes, as documented in `--help` and the README.
pub mod exit {
    /// Everything worked.
    pub const OK: u8 = 0;
    /// The recipe ran, but some artifact failed (or the run stopped on a domain error).
    pub const FAILED: u8 = 1;
    /// Usage, configuration or script error: nothing was attempted, or the script is wrong.
    pub const USAGE: u8 = 2;
    /// Interrupted (Ctrl-C).
    pub const INTERRUPTED: u8 = 130;
    /// Stopped by SIGTERM (resumable like an interrupt).
    pub const TERMINATED: u8 = 143;
}

/// How much to say.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord)]
pub enum Verbosity {
    /// Errors only; no progress bars (`-q`).
    Quiet,
    #[default]
    Normal,
    /// `-v` and more.
    Verbose,
}

#[derive(Clone)]
enum Sink {
    Stdout,
    Stderr,
    Buffer(Arc<Mutex<Vec<String>>>),
}

/// Where output goes. Cheap to clone; clones share secrets and bars.
#[derive(Clone)]
pub struct Shell {
    /// Where script output (`print`) goes.
    sink: Sink,
    secrets: Arc<Mutex<Vec<Secret>>>,
    verbosity: Verbosity,
    json: bool,
    /// Present when bars are drawn (a terminal, not `--json`, not `-q`).
    bars: Option<MultiProgress>,
}

impl Shell {
    fn with_sink(sink: Sink) -> Shell {
        Shell {
            sink,
            secrets: Arc::default(),
            verbosity: Verbosity::Normal,
            json: false,
            bars: None,
        }
    }

    /// Script output on stdout.
    pub fn stdout() -> Shell {
        Shell::with_sink(Sink::Stdout)
    }

    /// Script output on stderr.
    pub fn stderr() -> Shell {
        Shell::with_sink(Sink::Stderr)
    }

    /// A shell that keeps every line (script output, warnings, errors); read them with
    /// [`Shell::lines`].
    pub fn buffer() -> Shell {
        Shell::with_sink(Sink::Buffer(Arc::default()))
    }

    /// The shell of a command: script output on stdout, or on stderr under `--json` (stdout then
    /// carries only the JSON document); progress bars on a terminal unless `-q` or `--json`.
    pub fn for_command(verbosity: Verbosity, json: bool) -> Shell {
        let mut s = if json {
            Shell::stderr()
        } else {
            Shell::stdout()
        };
        s.verbosity = verbosity;
        s.json = json;
        if verbosity != Verbosity::Quiet && !json && std::io::stderr().is_terminal() {
            s.bars = Some(MultiProgress::with_draw_target(ProgressDrawTarget::stderr()));
        }
        s
    }

    /// Adds secret values to scrub.
    pub fn add_secrets(&self, s: &[Secret]) {
        self.secrets
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .extend_from_slice(s);
    }

    /// `text` with every secret value replaced.
    pub fn scrub(&self, text: &str) -> String {
        crate::config::scrub(
            text,
            &self.secrets.lock().unwrap_or_else(|p| p.into_inner()),
        )
    }

    pub fn verbosity(&self) -> Verbosity {
        self.verbosity
    }

    /// True under `--json`.
    pub fn json(&self) -> bool {
        self.json
    }

    /// True when progress bars are drawn.
    pub fn progress(&self) -> bool {
        self.bars.is_some()
    }

    /// Writes `text` (scrubbed) to stdout or stderr, above the progress bars.
    fn write(&self, to_stderr: bool, text: &str) {
        let text = self.scrub(text);
        let write = || {
            if to_stderr {
                let _ = write!(std::io::stderr().lock(), "{text}");
            } else {
                let _ = write!(std::io::stdout().lock(), "{text}");
            }
        };
        match &self.bars {
            Some(m) => m.suspend(write),
            None => write(),
        }
    }

    fn push(&self, text: &str) -> bool {
        if let Sink::Buffer(b) = &self.sink {
            let text = self.scrub(text);
            b.lock().unwrap_or_else(|p| p.into_inner()).push(text);
            return true;
        }
        false
    }

    /// One line of script output (`print`).
    pub fn line(&self, text: &str) {
        let text = &crate::ledger::report::escape_controls(text);
        if !self.push(text) {
            self.write(matches!(self.sink, Sink::Stderr), &format!("{text}\n"));
        }
    }

    /// A warning (`warning: ...` on stderr), unless `-q`.
    pub fn warn(&self, msg: &str) {
        if self.verbosity != Verbosity::Quiet && !self.push(&format!("warning: {msg}")) {
            self.write(true, &format!("warning: {msg}\n"));
        }
    }

    /// An error (`error: ...` on stderr), always.
    pub fn error(&self, msg: &str) {
        if !self.push(&format!("error: {msg}")) {
            self.write(true, &format!("error: {msg}\n"));
        }
    }

    /// Text already rendered (a script error with its caret), on stderr.
    pub fn eprint(&self, text: &str) {
        if !self.push(text) {
            self.write(true, text);
        }
    }

    /// Whether notes are shown (not under `--json` or `-q`).
    fn shows_notes(&self) -> bool {
        !(self.json || self.verbosity == Verbosity::Quiet)
    }

    /// A note for people (`Run X recorded in ...`): stdout, not under `--json` or `-q`.
    pub fn note(&self, text: &str) {
        if !self.shows_notes() {
            return;
        }
        if !self.push(text) {
            self.write(false, &format!("{text}\n"));
        }
    }

    /// [`Shell::note`] of a text made only when notes are shown (a run's summary table is a
    /// line per artifact: not made at all under `-q`).
    pub fn note_with(&self, text: impl FnOnce() -> String) {
        if self.shows_notes() {
            self.note(&text());
        }
    }

    /// The command's result document (a table, or the JSON report under `--json`) on stdout.
    pub fn report(&self, text: &str) {
        if !self.push(text) {
            let nl = if text.ends_with('\n') { "" } else { "\n" };
            self.write(false, &format!("{text}{nl}"));
        }
    }

    /// The lines written so far (buffer shells only).
    pub fn lines(&self) -> Vec<String> {
        match &self.sink {
            Sink::Buffer(b) => b.lock().unwrap_or_else(|p| p.into_inner()).clone(),
            _ => vec![],
        }
    }

    /// A progress bar for `len` items in the shell's one `MultiProgress` (hidden when bars are
    /// off or there is one item).
    pub fn bar(&self, len: usize, label: &str) -> ProgressBar {
        let Some(m) = &self.bars else {
            return ProgressBar::hidden();
        };
        if len < 2 {
            return ProgressBar::hidden();
        }
        let pb = m.add(ProgressBar::new(len as u64));
        pb.set_style(
            ProgressStyle::with_template("{prefix:>10} [{bar:30}] {pos}/{len} {msg} ({elapsed})")
                .unwrap_or_else(|_| ProgressStyle::default_bar())
                .progress_chars("=> "),
        );
        pb.set_prefix(label.to_string());
        pb
    }
}
