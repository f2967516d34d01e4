//! Every `poolwatch …` command line in docs/monitor-operators.md and
//! docs/deploying.md parses with the real binary's flags: each is run with `--help` appended (clap
//! refuses an unknown subcommand or flag, or a bad value, before it prints
//! the help), so a renamed flag or subcommand fails here, not on a
//! volunteer's or the pool operator's host.

use std::process::Command;

const BIN: &str = env!("CARGO_BIN_EXE_poolwatch");
const DOC: &str = include_str!("../../../docs/monitor-operators.md");
const DEPLOYING: &str = include_str!("../../../docs/deploying.md");

/// Shell words of `line`: whitespace-separated, "…" and '…' quoting.
fn words(line: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut cur = String::new();
    let mut quote = None;
    let mut any = false;
    for c in line.chars() {
        match (quote, c) {
            (Some(q), c) if c == q => quote = None,
            (Some(_), c) => cur.push(c),
            (None, '"' | '\'') => {
                quote = Some(c);
                any = true;
            }
            (None, c) if c.is_whitespace() => {
                if any || !cur.is_empty() {
                    out.push(std::mem::take(&mut cur));
                }
                any = false;
            }
            (None, c) => cur.push(c),
        }
    }
    if any || !cur.is_empty() {
        out.push(cur);
    }
    out
}

/// The arguments after `poolwatch` of each command line in `doc`: in `sh`
/// blocks (continuation lines joined; `sudo [-u USER]`, leading
/// `NAME=value` variables and comments dropped) and in inline code spans
/// of the prose.
fn commands(doc: &str) -> Vec<Vec<String>> {
    let mut found = Vec::new();
    let mut prose = String::new();
    let mut block: Option<bool> = None; // Some(is sh) inside a fence
    let mut joined = String::new();
    for line in doc.lines() {
        if let Some(lang) = line.trim_start().strip_prefix("```") {
            block = match block {
                None => Some(lang.trim() == "sh"),
                Some(_) => None,
            };
            continue;
        }
        match block {
            Some(true) => {
                joined.push_str(line.trim_end_matches('\\'));
                joined.push(' ');
                if !line.ends_with('\\') {
                    let cmd = std::mem::take(&mut joined);
                    let cmd = cmd.split(" # ").next().unwrap_or("");
                    found.push(words(cmd));
                }
            }
            Some(false) => {}
            None => {
                prose.push_str(line);
                prose.push(' ');
            }
        }
    }
    for (i, span) in prose.split('`').enumerate() {
        if i % 2 == 1 {
            found.push(words(span));
        }
    }
    found
        .into_iter()
        .filter_map(|mut w| {
            while w.first().is_some_and(|s| is_variable(s)) {
                w.remove(0);
            }
            if w.first().is_some_and(|s| s == "sudo") {
                w.remove(0);
                if w.first().is_some_and(|s| s == "-u") {
                    w.drain(..2);
                }
            }
            (w.first().is_some_and(|s| s == "poolwatch")).then(|| w.split_off(1))
        })
        .collect()
}

/// `NAME=value` before a command: an environment variable for it.
fn is_variable(word: &str) -> bool {
    word.split_once('=').is_some_and(|(name, _)| {
        !name.is_empty() && name.chars().all(|c| c.is_ascii_uppercase() || c == '_')
    })
}

#[test]
fn words_and_commands_are_read_as_a_shell_would() {
    assert_eq!(words(r#"a "b c" '' d"#), ["a", "b c", "", "d"]);
    assert_eq!(
        commands("```sh\nPOOLWATCH_X=y poolwatch serve --z\n```\n"),
        [vec!["serve", "--z"]]
    );
    let doc = "x `poolwatch a\n--b` y\n```sh\nsudo -u pw poolwatch c \\\n  --d \"e f\" # note\nls\n```\n```toml\npoolwatch = 1\n```\n";
    assert_eq!(commands(doc), [vec!["c", "--d", "e f"], vec!["a", "--b"]]);
}

#[test]
fn every_command_line_in_the_monitor_guide_parses() {
    every_command_parses(
        DOC,
        &["agent setup ", "agent --config ", "admin monitor set "],
    );
}

#[test]
fn every_command_line_in_the_deploying_guide_parses() {
    every_command_parses(
        DEPLOYING,
        &[
            "serve ",
            "dns ",
            "admin backup ",
            "admin --data-dir",
            "admin export ",
        ],
    );
}

/// Runs every command of `doc` with `--help`; `needed` are prefixes of
/// command lines the document is built around (losing one is a doc bug).
fn every_command_parses(doc: &str, needed: &[&str]) {
    let cmds = commands(doc);
    let lines: Vec<String> = cmds.iter().map(|c| c.join(" ")).collect();
    for needed in needed {
        assert!(
            lines.iter().any(|l| l.starts_with(needed)),
            "no `poolwatch {needed}…` in the document: {lines:#?}"
        );
    }
    let mut failed = Vec::new();
    for args in &cmds {
        let out = Command::new(BIN).args(args).arg("--help").output().unwrap();
        if !out.status.success() {
            failed.push(format!(
                "poolwatch {}: {}",
                args.join(" "),
                String::from_utf8_lossy(&out.stderr).trim()
            ));
        }
    }
    assert!(failed.is_empty(), "{}", failed.join("\n\n"));
}
