//! The one output type: everything a script prints goes through here, to stdout, to stderr (under
//! `--json`, where stdout carries only the JSON report) or into a buffer (tests).

use std::io::Write;
use std::sync::{Arc, Mutex};

use crate::config::Secret;

#[derive(Clone)]
enum Sink {
    Stdout,
    Stderr,
    Buffer(Arc<Mutex<Vec<String>>>),
}

/// Where script output goes. Secret values are scrubbed from every line.
#[derive(Clone)]
pub struct Output {
    sink: Sink,
    secrets: Arc<Mutex<Vec<Secret>>>,
}

impl Output {
    pub fn stdout() -> Output {
        Output {
            sink: Sink::Stdout,
            secrets: Arc::default(),
        }
    }
    pub fn stderr() -> Output {
        Output {
            sink: Sink::Stderr,
            secrets: Arc::default(),
        }
    }
    /// An output that keeps the lines; read them with [`Output::lines`].
    pub fn buffer() -> Output {
        Output {
            sink: Sink::Buffer(Arc::default()),
            secrets: Arc::default(),
        }
    }
    /// Adds secret values to scrub.
    pub fn add_secrets(&self, s: &[Secret]) {
        self.secrets
            .lock()
            .expect("secrets lock")
            .extend_from_slice(s);
    }
    /// Writes one line.
    pub fn line(&self, text: &str) {
        let text = crate::config::scrub(text, &self.secrets.lock().expect("secrets lock"));
        let text = crate::ledger::report::escape_controls(&text);
        match &self.sink {
            Sink::Stdout => {
                let mut o = std::io::stdout().lock();
                let _ = writeln!(o, "{text}");
            }
            Sink::Stderr => {
                let mut o = std::io::stderr().lock();
                let _ = writeln!(o, "{text}");
            }
            Sink::Buffer(b) => b.lock().expect("output lock").push(text),
        }
    }
    /// The lines written so far (buffer outputs only).
    pub fn lines(&self) -> Vec<String> {
        match &self.sink {
            Sink::Buffer(b) => b.lock().expect("output lock").clone(),
            _ => vec![],
        }
    }
}
