//! `ferry test DIR`: run every `*_test.rhai` in DIR against a fresh sandbox, offline, with
//! `assert`, `assert_eq` and sandbox fixtures; print `N passed, N failed`.
//!
//! * A test file's top-level code is its setup. Each `fn test_*()` in it is one test, run after a
//!   fresh evaluation of the setup; a file without `test_*` functions is one test.
//! * Fixtures: each file gets its own emulator and state folder. Leading comment lines
//!   `// fixture: instance NAME gen=2|3 seed=sample|empty|target|generated:N` replace the default
//!   instances (`dev`, `prod`, `uat`); `sandbox::faults("dev", #{ rate_500: 0.3 })` injects
//!   faults (the emulator's `Faults` fields) while the test runs, `sandbox::faults("dev", #{})`
//!   clears them.
//! * Exit code 0 when every test passed, 1 when one failed, 2 when none was found.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use clap::Args;
use rhai::plugin::*;
use rhai::{Array, CallFnOptions, Dynamic, Engine, EvalAltResult, ImmutableString, Map, Scope};
use tokio_util::sync::CancellationToken;

use super::{exit, sandbox};
use crate::ops::run::{RunKind, RunOutcome};
use crate::script::api::args::RhaiResultOf;
use crate::script::runner::{self, RunOptions};
use crate::script::{self, EngineOptions, Host, Output, render};
use crate::sim::{Seed, SimInstanceSpec};

#[derive(Args, Debug)]
pub struct TestArgs {
    /// A folder searched recursively for `*_test.rhai` files, or one test file.
    pub dir: PathBuf,
    /// A folder of shared .rhai modules for `import`. Repeatable; searched before $FERRY_PATH.
    #[arg(long = "lib", value_name = "DIR")]
    pub libs: Vec<PathBuf>,
    /// Only tests whose file or function name contains this text.
    #[arg(long)]
    pub filter: Option<String>,
}

/// The outcome of one test.
#[derive(Debug)]
pub struct TestOutcome {
    /// `file::test_name` (or the file alone).
    pub name: String,
    /// The rendered error, when it failed.
    pub error: Option<String>,
    /// What the test printed.
    pub output: Vec<String>,
    /// What the end of the file's run printed (the file's last test carries it): the
    /// notifications `notify::at_end` sent.
    pub after: Vec<String>,
}

/// Every `*_test.rhai` under `dir` (or `dir` itself when it is a file), sorted.
pub fn find_tests(dir: &Path) -> Vec<PathBuf> {
    if dir.is_file() {
        return vec![dir.to_path_buf()];
    }
    let mut out: Vec<PathBuf> = walkdir::WalkDir::new(dir)
        .follow_links(true)
        .into_iter()
        .flatten()
        .filter(|e| e.file_type().is_file())
        .filter(|e| {
            e.file_name()
                .to_str()
                .is_some_and(|n| n.ends_with("_test.rhai"))
        })
        .map(walkdir::DirEntry::into_path)
        .collect();
    out.sort();
    out
}

/// The instances a test file asks for with `// fixture: instance ...` lines (None: the defaults).
pub fn fixtures(text: &str) -> Result<Option<Vec<SimInstanceSpec>>, String> {
    let mut specs = vec![];
    for (n, line) in text.lines().enumerate() {
        let l = line.trim();
        if !l.starts_with("//") {
            if l.is_empty() {
                continue;
            }
            break;
        }
        let Some(rest) = l
            .trim_start_matches('/')
            .trim_start_matches('!')
            .trim()
            .strip_prefix("fixture:")
        else {
            continue;
        };
        let words: Vec<&str> = rest.split_whitespace().collect();
        let bad = |m: &str| format!("line {}: fixture: {m}", n + 1);
        if words.first() != Some(&"instance") || words.len() < 2 {
            return Err(bad("expected `instance NAME gen=2|3 seed=...`"));
        }
        let mut spec = SimInstanceSpec {
            name: words[1].to_string(),
            generation: 3,
            seed: Seed::Sample,
        };
        for w in &words[2..] {
            match w.split_once('=') {
                Some(("gen", "2")) => spec.generation = 2,
                Some(("gen", "3")) => spec.generation = 3,
                Some(("seed", "sample")) => spec.seed = Seed::Sample,
                Some(("seed", "empty")) => spec.seed = Seed::Empty,
                Some(("seed", "target")) => spec.seed = Seed::TargetConnections,
                Some(("seed", g)) if g.starts_with("generated:") => {
                    let n = g["generated:".len()..]
                        .parse::<usize>()
                        .map_err(|_| bad(&format!("bad count in `{w}`")))?;
                    spec.seed = Seed::Generated(n);
                }
                _ => return Err(bad(&format!("unknown setting `{w}`"))),
            }
        }
        specs.push(spec);
    }
    Ok((!specs.is_empty()).then_some(specs))
}

fn fail(msg: String) -> Box<EvalAltResult> {
    EvalAltResult::ErrorRuntime(msg.into(), rhai::Position::NONE).into()
}

/// Registers `assert`, `assert_eq` and the `sandbox` module (fixtures), for `ferry test` and
/// the reference (`ferry docs`).
pub fn register(e: &mut Engine) {
    e.register_global_module(exported_module!(assert_api).into());
    e.register_static_module("sandbox", exported_module!(sandbox_api).into());
}

#[export_module]
mod assert_api {
    use super::*;

    /// Fails the test when `condition` is false (`ferry test`).
    ///
    /// # Example
    /// ```rhai
    /// assert(dev.integrations().len() > 0);
    /// ```
    #[rhai_fn(name = "assert", volatile, return_raw)]
    pub fn assert(condition: bool) -> RhaiResultOf<()> {
        condition
            .then_some(())
            .ok_or_else(|| fail("assertion failed".into()))
    }

    /// Fails the test with `message` when `condition` is false (`ferry test`).
    ///
    /// # Example
    /// ```rhai
    /// assert(results.all(|r| r.error == ()), "every import worked");
    /// ```
    #[rhai_fn(name = "assert", volatile, return_raw)]
    pub fn assert_with(condition: bool, message: ImmutableString) -> RhaiResultOf<()> {
        let m = || fail(format!("assertion failed: {message}"));
        condition.then_some(()).ok_or_else(m)
    }

    /// Fails the test when the two values differ (compared by type and value), showing both (`ferry test`).
    ///
    /// # Example
    /// ```rhai
    /// assert_eq(select::by_prefix(list, "HR_").len(), 5);
    /// ```
    #[rhai_fn(name = "assert_eq", volatile, return_raw)]
    pub fn assert_eq(actual: Dynamic, expected: Dynamic) -> RhaiResultOf<()> {
        super::assert_eq(&actual, &expected, None)
    }

    /// Like `assert_eq(actual, expected)`, with a message saying what was compared.
    ///
    /// # Example
    /// ```rhai
    /// assert_eq(job.artifacts().len(), 3, "archives in the backup");
    /// ```
    #[rhai_fn(name = "assert_eq", volatile, return_raw)]
    pub fn assert_eq_with(
        actual: Dynamic,
        expected: Dynamic,
        message: ImmutableString,
    ) -> RhaiResultOf<()> {
        super::assert_eq(&actual, &expected, Some(message.as_str()))
    }
}

/// The host of a `ferry test` run (the sandbox's functions work nowhere else).
fn test_host(ctx: &NativeCallContext, what: &str) -> RhaiResultOf<Arc<Host>> {
    let h = crate::script::api::host_of(ctx)?;
    let in_test = h.run.opts.kind == RunKind::Test;
    in_test
        .then_some(h)
        .ok_or_else(|| fail(format!("{what} works only in `ferry test`")))
}

/// Fixtures for `ferry test` (each test file runs against its own emulator). Choose the instances with leading
/// `// fixture: instance NAME gen=2|3 seed=sample|empty|target|generated:N` lines; inject faults with `sandbox::faults`.
#[export_module]
mod sandbox_api {
    use super::*;

    /// Sets the emulator's faults for one instance (`latency_ms`, `jitter_ms`, `rate_429`, `retry_after_secs`, `rate_500`,
    /// `rate_503`, `max_concurrent`, ...; missing fields mean no fault). `#{}` clears them. Only in `ferry test`.
    ///
    /// # Example
    /// ```rhai
    /// sandbox::faults("dev", #{ rate_503: 0.3 });   // 30% of requests answer 503 (retried)
    /// ```
    #[rhai_fn(volatile, return_raw)]
    pub fn faults(
        ctx: NativeCallContext,
        instance: ImmutableString,
        faults: Map,
    ) -> RhaiResultOf<()> {
        let h = test_host(&ctx, "sandbox::faults")?;
        let Some(p) = h.config.instances.get(instance.as_str()) else {
            return Err(fail(format!(
                "sandbox::faults: no instance `{instance}` in the sandbox"
            )));
        };
        let body = script::values::to_json(&Dynamic::from_map(faults))?;
        let url = format!("{}/__sim/faults", p.base_url.trim_end_matches('/'));
        let post = reqwest::Client::new()
            .post(&url)
            .header("content-type", "application/json");
        match h.block_on(post.body(body).send())? {
            Ok(resp) if resp.status().is_success() => Ok(()),
            Ok(resp) => Err(fail(format!(
                "sandbox::faults: the emulator answered {}",
                resp.status()
            ))),
            Err(e) => Err(fail(format!("sandbox::faults: {e}"))),
        }
    }

    /// The names of the sandbox's instances.
    ///
    /// # Example
    /// ```rhai
    /// assert(sandbox::instances().contains("dev"));
    /// ```
    #[rhai_fn(volatile, return_raw)]
    pub fn instances(ctx: NativeCallContext) -> RhaiResultOf<Array> {
        let h = test_host(&ctx, "sandbox::instances")?;
        let mut v: Vec<String> = h.config.instances.keys().cloned().collect();
        v.sort();
        Ok(v.into_iter().map(Dynamic::from).collect())
    }
}

fn assert_eq(a: &Dynamic, b: &Dynamic, msg: Option<&str>) -> Result<(), Box<EvalAltResult>> {
    let (l, r) = (format!("{a:?}"), format!("{b:?}"));
    if l == r {
        return Ok(());
    }
    let what = msg.map(|m| format!(": {m}")).unwrap_or_default();
    Err(fail(format!(
        "assert_eq failed{what}\n  actual:   {l}\n  expected: {r}"
    )))
}

/// Runs one test file against its own sandbox in a temporary state folder.
pub fn run_file(
    rt: &tokio::runtime::Runtime,
    path: &Path,
    libs: &[PathBuf],
    filter: Option<&str>,
) -> Vec<TestOutcome> {
    let shown = path.display().to_string();
    let shown = shown.strip_prefix("./").unwrap_or(&shown).to_string();
    // `_state` is the sandbox's state folder, removed when the file is done.
    let (text, _state, sb) = match file_sandbox(rt, path, &shown) {
        Ok(x) => x,
        Err(e) => return failed(&shown, e),
    };
    let config = Arc::new(sb.config.clone());
    let out = Output::buffer();
    let opts = RunOptions {
        sandbox: true,
        kind: RunKind::Test,
        engine: EngineOptions::with_paths(libs, &[]),
        ..Default::default()
    };
    let host = match runner::start(
        &shown,
        &text,
        config.clone(),
        rt.handle().clone(),
        CancellationToken::new(),
        out.clone(),
        &opts,
    ) {
        Ok(h) => h,
        Err(e) => return failed(&shown, e),
    };
    let mut engine = script::build_engine(host.clone(), &opts.engine);
    register(&mut engine);
    let mut outcomes = run_tests(&engine, &text, &shown, &host, &out, filter);
    end_of_file(&host, &out, &shown, &mut outcomes);
    rt.block_on(sb.sim.shutdown());
    // Secrets never print (printed lines are scrubbed by the output already).
    for o in &mut outcomes {
        o.error = o.error.as_deref().map(|e| config.scrub(e));
    }
    outcomes
}

/// One failed outcome named after the file.
fn failed(shown: &str, error: String) -> Vec<TestOutcome> {
    vec![TestOutcome {
        name: shown.to_string(),
        error: Some(error),
        output: vec![],
        after: vec![],
    }]
}

/// A test file's text, a fresh state folder and the sandbox its fixtures ask for (the default
/// instances without fixture lines); Err: the rendered error.
fn file_sandbox(
    rt: &tokio::runtime::Runtime,
    path: &Path,
    shown: &str,
) -> Result<(String, tempfile::TempDir, sandbox::Sandbox), String> {
    let text =
        std::fs::read_to_string(path).map_err(|e| format!("error: cannot read {shown}: {e}\n"))?;
    let specs = fixtures(&text)
        .map_err(|e| format!("error: {shown}: {e}\n"))?
        .unwrap_or_else(sandbox::default_instances);
    let state =
        tempfile::tempdir().map_err(|e| format!("error: cannot create a state folder: {e}\n"))?;
    let sb = rt
        .block_on(sandbox::start_with(state.path(), specs))
        .map_err(|e| format!("error: cannot start the sandbox: {e:#}\n"))?;
    Ok((text, state, sb))
}

/// Compiles the file and runs its `test_*` functions (each after a fresh evaluation of the
/// setup), or the whole file when it has none; only those `filter` selects.
fn run_tests(
    engine: &Engine,
    text: &str,
    shown: &str,
    host: &Arc<Host>,
    out: &Output,
    filter: Option<&str>,
) -> Vec<TestOutcome> {
    let mut ast = match engine.compile(text) {
        Ok(ast) => ast,
        Err(e) => {
            let e = render::render(&EvalAltResult::from(e), shown, &host.sources);
            return failed(shown, e);
        }
    };
    ast.set_source(shown);
    let tests = test_functions(&ast);
    let mut outcomes = vec![];
    if tests.is_empty() {
        if filter.is_none_or(|f| shown.contains(f)) {
            let r = engine.run_ast_with_scope(&mut Scope::new(), &ast);
            outcomes.push(TestOutcome {
                name: shown.to_string(),
                error: r.err().map(|e| render::render(&e, shown, &host.sources)),
                output: out.lines(),
                after: vec![],
            });
        }
        return outcomes;
    }
    for t in tests {
        let name = format!("{shown}::{t}");
        if filter.is_some_and(|f| !name.contains(f)) {
            continue;
        }
        let before = out.lines().len();
        let r = engine.call_fn_with_options::<Dynamic>(
            CallFnOptions::new().eval_ast(true),
            &mut Scope::new(),
            &ast,
            &t,
            (),
        );
        outcomes.push(TestOutcome {
            name,
            error: r.err().map(|e| render::render(&e, shown, &host.sources)),
            output: out.lines().split_off(before),
            after: vec![],
        });
    }
    outcomes
}

/// The tests of a file: its `test_*` functions without parameters, in the order Rhai lists them.
fn test_functions(ast: &rhai::AST) -> Vec<String> {
    ast.iter_functions()
        .filter(|f| f.name.starts_with("test_") && f.params.is_empty())
        .map(|f| f.name.to_string())
        .collect()
}

/// The file's end is its run's: open jobs finished (their errors are outcomes), and what
/// `notify::at_end` sent with the outcome carried by the last test.
fn end_of_file(host: &Arc<Host>, out: &Output, shown: &str, outcomes: &mut Vec<TestOutcome>) {
    let outcome = if outcomes.iter().any(|o| o.error.is_some()) {
        RunOutcome::Failed
    } else {
        RunOutcome::Ok
    };
    let before = out.lines().len();
    let done = host.run.finish(outcome, None);
    for e in done.errors {
        outcomes.push(TestOutcome {
            name: format!("{shown} (vault jobs)"),
            error: Some(format!("error: {e}\n")),
            output: vec![],
            after: vec![],
        });
    }
    let at_end = out.lines().split_off(before);
    if !at_end.is_empty()
        && let Some(last) = outcomes.last_mut()
    {
        last.after = at_end;
    }
}

pub fn exec(a: TestArgs) -> u8 {
    let files = find_tests(&a.dir);
    if files.is_empty() {
        super::eprint_error(&format!(
            "no *_test.rhai files in {} (0 passed, 0 failed)",
            a.dir.display()
        ));
        return exit::USAGE;
    }
    let rt = match super::runtime() {
        Ok(rt) => rt,
        Err(e) => {
            super::eprint_error(&format!("cannot start the runtime: {e}"));
            return exit::USAGE;
        }
    };
    let (mut passed, mut failed) = (0usize, 0usize);
    for f in &files {
        for o in run_file(&rt, f, &a.libs, a.filter.as_deref()) {
            match &o.error {
                None => {
                    passed += 1;
                    println!("PASS {}", o.name);
                }
                Some(e) => {
                    failed += 1;
                    println!("FAIL {}", o.name);
                    for l in &o.output {
                        println!("  | {l}");
                    }
                    for l in e.lines() {
                        println!("  {l}");
                    }
                }
            }
            for l in &o.after {
                println!("  at end: {l}");
            }
        }
    }
    println!("\n{passed} passed, {failed} failed");
    rt.shutdown_timeout(std::time::Duration::from_secs(2));
    if failed > 0 {
        exit::FAILED
    } else if passed == 0 {
        exit::USAGE
    } else {
        exit::OK
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tests_are_the_parameterless_test_functions() {
        let ast = Engine::new()
            .compile("fn test_b() {}\nfn helper() {}\nfn test_a() {}\nfn test_with(x) {}\n")
            .expect("compiles");
        let mut found = test_functions(&ast);
        found.sort();
        assert_eq!(found, ["test_a", "test_b"]);
        let none = Engine::new().compile("let x = 1;").expect("compiles");
        assert!(test_functions(&none).is_empty());
        assert_eq!(failed("a_test.rhai", "boom".into())[0].name, "a_test.rhai");
    }
}
