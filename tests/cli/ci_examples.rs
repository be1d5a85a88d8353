//! The pipelines in examples/ci/ parse as YAML, have the shape they promise (plan, a manual
//! approval, apply; a nightly backup on a schedule; a Kubernetes CronJob running as non-root),
//! and every `ferry` command in them parses with ferry's own command line (the real clap `Cli`),
//! so a renamed or removed flag breaks this test.

use std::path::Path;

use clap::Parser;
use serde_norway::Value;

fn docs(name: &str) -> Vec<Value> {
    let p = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("examples/ci")
        .join(name);
    let text = std::fs::read_to_string(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()));
    serde_norway::Deserializer::from_str(&text)
        .map(|d| Value::deserialize(d).unwrap_or_else(|e| panic!("{name}: {e}")))
        .collect()
}

use serde::Deserialize;

/// Every string and every sequence of strings in a YAML tree.
fn walk(v: &Value, strings: &mut Vec<String>, seqs: &mut Vec<Vec<String>>) {
    match v {
        Value::String(s) => strings.push(s.clone()),
        Value::Sequence(items) => {
            let words: Vec<String> = items
                .iter()
                .filter_map(|i| i.as_str().map(str::to_string))
                .collect();
            if words.len() == items.len() && !words.is_empty() {
                seqs.push(words);
            }
            for i in items {
                walk(i, strings, seqs);
            }
        }
        Value::Mapping(m) => {
            for (_, x) in m {
                walk(x, strings, seqs);
            }
        }
        Value::Tagged(t) => walk(&t.value, strings, seqs),
        _ => {}
    }
}

/// The `ferry ...` commands in shell text: continuation lines joined, each cut at the first shell
/// operator, split as the shell does.
fn shell_commands(script: &str) -> Vec<Vec<String>> {
    let joined = script.replace("\\\n", " ");
    let mut out = vec![];
    for line in joined.lines() {
        let words = shlex::split(line).unwrap_or_default();
        // A command starts a line or follows an operator; a lone `ferry` (a name) is none.
        let mut cmd: Vec<String> = vec![];
        let mut at_start = true;
        let mut in_ferry = false;
        for w in words {
            if ["||", "&&", ";", "|", ">", ">>", "2>"].contains(&w.as_str()) {
                if in_ferry && cmd.len() > 1 {
                    out.push(std::mem::take(&mut cmd));
                }
                cmd.clear();
                (in_ferry, at_start) = (false, true);
                continue;
            }
            if at_start && w == "ferry" {
                in_ferry = true;
            }
            at_start = false;
            if in_ferry {
                cmd.push(w);
            }
        }
        if in_ferry && cmd.len() > 1 {
            out.push(cmd);
        }
    }
    out
}

/// Every ferry command of a file, each checked with the real `Cli`; returns them.
fn ferry_commands(name: &str) -> Vec<Vec<String>> {
    let (mut strings, mut seqs) = (vec![], vec![]);
    for d in docs(name) {
        walk(&d, &mut strings, &mut seqs);
    }
    let mut cmds: Vec<Vec<String>> = seqs
        .into_iter()
        .filter(|s| s[0] == "ferry" && s.len() > 1)
        .collect();
    for s in &strings {
        cmds.extend(shell_commands(s));
    }
    for c in &cmds {
        if let Err(e) = ferry::cli::Cli::try_parse_from(c) {
            panic!(
                "{name}: `{}` is not a valid ferry command:\n{e}",
                c.join(" ")
            );
        }
    }
    cmds
}

fn get<'a>(v: &'a Value, path: &[&str]) -> &'a Value {
    path.iter().fold(v, |v, k| &v[*k])
}

#[test]
fn the_checker_refuses_a_wrong_flag() {
    let bad = shell_commands("ferry plan r.rhai --junit x.xml --no-such-flag || [ $? -eq 2 ]");
    assert_eq!(bad.len(), 1);
    assert_eq!(bad[0].last().unwrap(), "--no-such-flag");
    assert!(ferry::cli::Cli::try_parse_from(&bad[0]).is_err());
    let good = shell_commands("ferry plan r.rhai --junit x.xml || [ $? -eq 2 ]");
    assert!(ferry::cli::Cli::try_parse_from(&good[0]).is_ok());
}

/// The plan writes a plan file (`-o FILE`) and the apply performs that file: the same name.
fn plan_file_is_applied(cmds: &[Vec<String>]) {
    let plan = cmds.iter().find(|c| c[1] == "plan").expect("a plan");
    let i = plan.iter().position(|a| a == "-o").expect("plan -o FILE");
    let file = std::path::Path::new(&plan[i + 1]).file_name().unwrap();
    let apply = cmds.iter().find(|c| c[1] == "apply").expect("an apply");
    assert_eq!(
        std::path::Path::new(&apply[2]).file_name().unwrap(),
        file,
        "{apply:?}"
    );
}

#[test]
fn github_actions_plans_waits_for_approval_applies_and_backs_up_nightly() {
    let d = &docs("github-actions.yml")[0];
    assert!(
        get(d, &["on", "schedule"])
            .as_sequence()
            .is_some_and(|s| !s.is_empty())
    );
    let jobs = get(d, &["jobs"]);
    assert_eq!(jobs["apply"]["needs"].as_str(), Some("plan"));
    assert_eq!(jobs["apply"]["environment"].as_str(), Some("production"));
    assert!(
        jobs["nightly-backup"]["if"]
            .as_str()
            .unwrap()
            .contains("schedule")
    );
    let cmds = ferry_commands("github-actions.yml");
    let verbs: Vec<&str> = cmds.iter().map(|c| c[1].as_str()).collect();
    for v in ["test", "plan", "apply", "run", "runs"] {
        assert!(verbs.contains(&v), "{v} in {verbs:?}");
    }
    plan_file_is_applied(&cmds);
    assert!(
        cmds.iter()
            .filter(|c| c.contains(&"--junit".to_string()))
            .count()
            >= 3
    );
}

#[test]
fn gitlab_ci_plans_waits_for_a_manual_apply_and_backs_up_on_schedule() {
    let d = &docs("gitlab-ci.yml")[0];
    let rules = d["apply"]["rules"].as_sequence().unwrap();
    assert!(rules.iter().any(|r| r["when"].as_str() == Some("manual")));
    assert_eq!(d["apply"]["environment"].as_str(), Some("production"));
    assert_eq!(
        d["plan"]["artifacts"]["reports"]["junit"].as_str(),
        Some("plan.xml")
    );
    let nightly = d["nightly-backup"]["rules"][0]["if"].as_str().unwrap();
    assert!(nightly.contains("schedule"), "{nightly}");
    let cmds = ferry_commands("gitlab-ci.yml");
    let verbs: Vec<&str> = cmds.iter().map(|c| c[1].as_str()).collect();
    for v in ["test", "plan", "apply", "run", "errors"] {
        assert!(verbs.contains(&v), "{v} in {verbs:?}");
    }
    plan_file_is_applied(&cmds);
    let kept = d["plan"]["artifacts"]["paths"].as_sequence().unwrap();
    assert!(kept.iter().any(|p| p.as_str() == Some("plan.json")));
}

#[test]
fn kubernetes_cronjob_runs_the_nightly_backup_as_non_root() {
    let all = docs("k8s-nightly-backup.yaml");
    let cron = all
        .iter()
        .find(|d| d["kind"].as_str() == Some("CronJob"))
        .expect("a CronJob");
    assert_eq!(cron["apiVersion"].as_str(), Some("batch/v1"));
    assert!(cron["spec"]["schedule"].as_str().is_some());
    let pod = get(cron, &["spec", "jobTemplate", "spec", "template", "spec"]);
    assert_eq!(pod["securityContext"]["runAsNonRoot"].as_bool(), Some(true));
    let cfg = all
        .iter()
        .find(|d| d["kind"].as_str() == Some("ConfigMap"))
        .expect("a ConfigMap");
    // The ferry.toml it carries is a config ferry reads (with its secret set).
    let toml_text = cfg["data"]["ferry.toml"].as_str().unwrap();
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("secret"), "x").unwrap();
    let patched = toml_text.replace("env:PROD_OIC_CLIENT_SECRET", "file:secret");
    ferry::config::Config::parse(&patched, "ferry.toml", dir.path())
        .unwrap_or_else(|e| panic!("{e}"));
    let cmds = ferry_commands("k8s-nightly-backup.yaml");
    assert_eq!(cmds.len(), 1, "{cmds:?}");
    assert_eq!(cmds[0][1], "run");
}
