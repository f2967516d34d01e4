//! Settings of the long-running commands (`serve`, `agent`, `dns`, `demo`;
//! `admin` reads `serve`'s): one typed struct per command, read in one
//! layered pass — the struct's `Default`, then the `--config` TOML file,
//! then `POOLWATCH_*` variables, then flags — and judged by one
//! [`Settings::validate`] whatever the source.
//!
//! The flags are declared with clap as before (names, help, variable), each
//! with its TOML key as its clap id (`#[arg(id = "selector.active")]`), and
//! clap takes their values as text only: it judges nothing. [`load`] puts
//! each source's text at those keys, figment merges the layers and serde
//! reads the struct (unknown keys, wrong types, bad durations and choices
//! are refused there), then `validate` checks ranges and relations. Every
//! refusal names where the value came from: the flag, the variable, or the
//! file and its key. clap sees the variables too (its help shows them),
//! but [`load`] ignores what clap read from them and reads each variable
//! itself through an [`Env`], so a test can hand it a map instead of the
//! process environment. (The flag structs' fields are never read: they
//! only declare the flags, hence their `allow(dead_code)`.)

mod duration;
pub use duration::HumanDuration;

pub mod agent;
pub mod demo;
pub mod dns;
pub mod serve;

#[cfg(test)]
mod file_tests;
#[cfg(test)]
mod tests;

use crate::util::usage;
use clap::parser::ValueSource;
use clap::{ArgAction, ArgMatches, Command};
use figment::Figment;
use figment::providers::Serialized;
use figment::value::{Dict, Value};
use serde::Serialize;
use serde::de::DeserializeOwned;
use std::collections::BTreeMap;
use std::fmt::Display;
use std::path::{Path, PathBuf};

/// The typed settings of one command.
pub trait Settings: Serialize + DeserializeOwned + Default {
    /// Ranges, choices and relations, on the merged struct: the one check
    /// every value passes, wherever it came from.
    fn validate(&self) -> Result<(), Invalid>;
}

/// A refused setting: its key (as in the TOML file) and why.
#[derive(Debug, Clone, PartialEq)]
pub struct Invalid {
    pub key: String,
    pub msg: String,
}

impl Invalid {
    pub fn new(key: impl Into<String>, msg: impl Display) -> Invalid {
        Invalid {
            key: key.into(),
            msg: msg.to_string(),
        }
    }
}

/// `--log-format`: how every command logs on stderr.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    Text,
    Json,
}

/// Refuse a duration at `key` shorter than `min`.
pub fn at_least(key: &str, d: HumanDuration, min: std::time::Duration) -> Result<(), Invalid> {
    if d.0 < min {
        return Err(Invalid::new(
            key,
            format!("{d} is too short: at least {}", HumanDuration(min)),
        ));
    }
    Ok(())
}

/// Where a value came from.
#[derive(Debug, Clone, PartialEq)]
pub enum Origin {
    Default,
    File(PathBuf),
    /// The variable's name.
    Env(String),
    /// The flag, with its dashes.
    Flag(String),
}

impl Origin {
    /// The source and the key, as error messages start.
    fn describe(&self, key: &str) -> String {
        match self {
            Origin::Default => key.to_string(),
            Origin::File(path) => format!("{}: config {key}", path.display()),
            Origin::Env(var) => format!("environment {var}"),
            Origin::Flag(flag) => flag.clone(),
        }
    }
}

/// A command's settings and where each value came from.
#[derive(Debug)]
pub struct Loaded<S> {
    pub settings: S,
    origins: BTreeMap<String, Origin>,
}

impl<S> Loaded<S> {
    /// Where the value at `key` came from.
    pub fn origin(&self, key: &str) -> Origin {
        self.origins.get(key).cloned().unwrap_or(Origin::Default)
    }

    /// A usage error about the value at `key` (exit status 2), for what
    /// only shows once the value is used (an unreadable file).
    pub fn refuse(&self, key: &str, msg: impl Display) -> anyhow::Error {
        usage(format!("{}: {msg}", self.origin(key).describe(key)))
    }
}

/// How [`load`] reads a variable: the process environment, or a map in tests.
pub type Env<'a> = &'a dyn Fn(&str) -> Option<String>;

/// The process environment (empty values count as unset, as clap has it).
pub fn process_env(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|v| !v.is_empty())
}

/// One setting's flag: its key (the clap id), flag, variable and kind.
struct Spec {
    key: String,
    flag: String,
    env: String,
    kind: Kind,
}

enum Kind {
    /// `--lab` (true when given) or `--no-ipv4` (false when given).
    Switch { sets: bool },
    /// Text; a list when the default is one.
    Text,
}

/// The settings among `cmd`'s flags: those with a variable, but `--config`.
fn specs(cmd: &Command) -> Vec<Spec> {
    cmd.get_arguments()
        .filter(|a| a.get_id() != "config")
        .filter_map(|a| {
            let env = a.get_env()?.to_string_lossy().into_owned();
            let kind = match a.get_action() {
                ArgAction::SetTrue => Kind::Switch { sets: true },
                ArgAction::SetFalse => Kind::Switch { sets: false },
                _ => Kind::Text,
            };
            Some(Spec {
                key: a.get_id().to_string(),
                flag: format!("--{}", a.get_long().unwrap_or(a.get_id().as_str())),
                env,
                kind,
            })
        })
        .collect()
}

/// Read `S` for the command `cmd` parsed into `m`: defaults, the file of
/// `--config` (or its variable), `POOLWATCH_*` variables from `env`, flags;
/// then `validate`. Errors are usage errors naming source and key.
pub fn load<S: Settings>(cmd: &Command, m: &ArgMatches, env: Env) -> anyhow::Result<Loaded<S>> {
    let defaults =
        Value::serialize(S::default()).map_err(|e| anyhow::anyhow!("settings defaults: {e}"))?;
    let mut origins = BTreeMap::new();
    let mut fig = Figment::from(Serialized::defaults(&defaults));

    if let Some(path) = config_path(cmd, m, env) {
        let file = read_file(&path)?;
        for key in file_keys(&file) {
            origins.insert(key, Origin::File(path.clone()));
        }
        fig = fig.merge(Serialized::defaults(file));
    }

    let specs = specs(cmd);
    let mut env_layer = Dict::new();
    for s in &specs {
        if let Some(text) = env(&s.env) {
            let v = match s.kind {
                Kind::Switch { sets } => Value::from(truthy(&text) == sets),
                Kind::Text => typed(&[text], hint(&defaults, &s.key)),
            };
            insert(&mut env_layer, &s.key, v);
            origins.insert(s.key.clone(), Origin::Env(s.env.clone()));
        }
    }
    let mut flag_layer = Dict::new();
    for s in &specs {
        if m.value_source(&s.key) != Some(ValueSource::CommandLine) {
            continue;
        }
        let v = match s.kind {
            Kind::Switch { sets } => Value::from(sets),
            Kind::Text => {
                let texts: Vec<String> = m
                    .get_raw(&s.key)
                    .into_iter()
                    .flatten()
                    .map(|t| t.to_string_lossy().into_owned())
                    .collect();
                typed(&texts, hint(&defaults, &s.key))
            }
        };
        insert(&mut flag_layer, &s.key, v);
        origins.insert(s.key.clone(), Origin::Flag(s.flag.clone()));
    }
    fig = fig
        .merge(Serialized::defaults(env_layer))
        .merge(Serialized::defaults(flag_layer));

    let describe = |key: &str| {
        origins
            .get(key)
            .cloned()
            .unwrap_or(Origin::Default)
            .describe(key)
    };
    let settings: S = fig.extract().map_err(|err| {
        let all: Vec<String> = err
            .into_iter()
            .map(|e| format!("{}: {}", describe(&e.path.join(".")), e.kind))
            .collect();
        usage(all.join("; "))
    })?;
    if let Err(bad) = settings.validate() {
        return Err(usage(format!("{}: {}", describe(&bad.key), bad.msg)));
    }
    Ok(Loaded { settings, origins })
}

/// `--config`, else its variable (read through `env` like the others).
fn config_path(cmd: &Command, m: &ArgMatches, env: Env) -> Option<PathBuf> {
    let arg = cmd.get_arguments().find(|a| a.get_id() == "config")?;
    if m.value_source("config") == Some(ValueSource::CommandLine) {
        return m.get_raw("config")?.next().map(PathBuf::from);
    }
    env(&arg.get_env()?.to_string_lossy()).map(PathBuf::from)
}

/// The TOML file as values; an unreadable or malformed file names its path.
fn read_file(path: &Path) -> anyhow::Result<Dict> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| usage(format!("cannot read {}: {e}", path.display())))?;
    let table: toml::Table =
        toml::from_str(&text).map_err(|e| usage(format!("{}: {e}", path.display())))?;
    Value::serialize(table)
        .ok()
        .and_then(Value::into_dict)
        .ok_or_else(|| usage(format!("{}: not a table of settings", path.display())))
}

/// Every key of the file, sections too, as `section.key`.
fn file_keys(d: &Dict) -> Vec<String> {
    let mut out = Vec::new();
    for (k, v) in d {
        out.push(k.clone());
        if let Value::Dict(_, inner) = v {
            out.extend(file_keys(inner).into_iter().map(|i| format!("{k}.{i}")));
        }
    }
    out
}

/// The default's value at `key`: it says how to read a text (number,
/// switch, list); a key without a default value (`None`) is read as text.
fn hint<'a>(defaults: &'a Value, key: &str) -> Option<&'a Value> {
    key.split('.')
        .try_fold(defaults, |v, k| v.as_dict().and_then(|d| d.get(k)))
}

/// The value of a variable's or flag's text, of the default's kind. Text
/// that does not read as that kind stays text, so serde refuses it with
/// the key ("found string "4x", expected u32").
fn typed(texts: &[String], hint: Option<&Value>) -> Value {
    let last = texts.last().map(|t| t.trim()).unwrap_or("");
    match hint {
        Some(Value::Array(..)) => Value::from(
            texts
                .iter()
                .flat_map(|t| t.split(','))
                .map(str::trim)
                .filter(|t| !t.is_empty())
                .map(|t| Value::from(t.to_string()))
                .collect::<Vec<_>>(),
        ),
        Some(Value::Num(..)) => last
            .parse::<u64>()
            .map(Value::from)
            .or_else(|_| last.parse::<i64>().map(Value::from))
            .or_else(|_| last.parse::<f64>().map(Value::from))
            .unwrap_or_else(|_| Value::from(last.to_string())),
        Some(Value::Bool(..)) => match last {
            "true" => Value::from(true),
            "false" => Value::from(false),
            _ => Value::from(last.to_string()),
        },
        _ => Value::from(last.to_string()),
    }
}

/// A switch's variable: clap's reading (`0`, `false`, `no`, `off`, `n`,
/// `f` and empty are false).
fn truthy(text: &str) -> bool {
    !matches!(
        text.trim().to_ascii_lowercase().as_str(),
        "" | "0" | "false" | "no" | "off" | "n" | "f"
    )
}

/// Put `v` at the dotted `key` of `d`.
fn insert(d: &mut Dict, key: &str, v: Value) {
    match key.split_once('.') {
        None => {
            d.insert(key.to_string(), v);
        }
        Some((section, rest)) => {
            let entry = d
                .entry(section.to_string())
                .or_insert_with(|| Value::from(Dict::new()));
            if let Value::Dict(_, inner) = entry {
                insert(inner, rest, v);
            }
        }
    }
}

/// `cmd` with each setting's TOML key added to its help, so `--help`
/// shows flag, variable (clap's `[env: …]`) and key together.
pub fn with_config_keys(cmd: Command) -> Command {
    let note = |a: clap::Arg| {
        if a.get_env().is_none() || a.get_id() == "config" {
            return a;
        }
        // A switch's key takes the value the switch sets.
        let key = match a.get_action() {
            ArgAction::SetTrue => format!("{} = true", a.get_id()),
            ArgAction::SetFalse => format!("{} = false", a.get_id()),
            _ => a.get_id().to_string(),
        };
        let help = a.get_help().map(|h| h.to_string()).unwrap_or_default();
        let long = a.get_long_help().map(|h| h.to_string());
        let a = a.help(format!("{help} [config: {key}]"));
        match long {
            Some(l) => a.long_help(format!("{l}\n\n[config: {key}]")),
            None => a,
        }
    };
    cmd.mut_subcommands(move |sub| sub.mut_args(note))
}
