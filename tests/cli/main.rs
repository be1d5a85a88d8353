//! The `ferry` binary as a user runs it: errors and exit codes, CI output, completions and shell
//! habits, the reference docs, `ferry test`, recipes in the sandbox, the REPL in a pseudo-terminal,
//! install paths, and parsers fed hostile input.
//!
//! One test binary with a module per area (as cargo's own `tests/testsuite`): run one area with
//! `cargo test --test cli MODULE::`.

#[path = "../support/mod.rs"]
mod support;

mod ci_examples;
mod ci_output;
mod cli_errors;
mod docs_reference;
mod e2e_sandbox;
mod install_paths;
mod parsers_never_panic;
mod recipes_ferry_test;
mod recipes_sandbox;
mod repl_pty;
mod shell_habits;
mod stdlib_modules;
