//! `--policy` values: a built-in preset by name ([`Policy::PRESETS`]) or a
//! TOML file in the format of `scoring::policy`'s module doc. A bad file is
//! refused naming the file, the line and the field.

use scoring::Policy;
use std::path::Path;

/// The help text's list of presets and the file format.
pub fn presets_help() -> String {
    let mut s = String::from("Presets (--policy NAME):\n");
    for (name, what) in Policy::PRESETS {
        s.push_str(&format!("  {name:<16} {what}\n"));
    }
    s
}

/// One `--policy` value: a preset's name, else a file's path.
pub fn policy(spec: &str) -> Result<Policy, String> {
    if let Some(p) = Policy::preset(spec) {
        return Ok(p);
    }
    let path = Path::new(spec);
    if !path.exists() && !spec.contains(['/', '.']) {
        let names: Vec<&str> = Policy::PRESETS.iter().map(|(n, _)| *n).collect();
        return Err(format!(
            "--policy {spec:?}: neither a preset ({}) nor a file",
            names.join(", ")
        ));
    }
    let text = std::fs::read_to_string(path)
        .map_err(|e| format!("policy file {}: {e}", path.display()))?;
    parse(&text).map_err(|e| format!("policy file {}: {e}", path.display()))
}

/// A policy file's text; the error names the line and the field.
pub fn parse(text: &str) -> Result<Policy, String> {
    let table: toml::Table = toml::from_str(text).map_err(|e| located(text, &e))?;
    if !table.contains_key("name") {
        return Err("name: missing (every policy file names its policy)".into());
    }
    let p: Policy = toml::from_str(text).map_err(|e| located(text, &e))?;
    p.validate()
        .map_err(|e| e.to_string().replacen("policy ", "", 1))?;
    Ok(p)
}

/// "line N: FIELD: message" from a TOML error.
fn located(text: &str, e: &toml::de::Error) -> String {
    let msg = e.message().trim();
    let Some(span) = e.span() else {
        return msg.to_string();
    };
    let line_no = text[..span.start.min(text.len())].matches('\n').count() + 1;
    let line = text.lines().nth(line_no - 1).unwrap_or_default();
    match line.split_once('=') {
        Some((key, _)) if !key.trim().is_empty() => {
            format!("line {line_no}: {}: {msg}", key.trim())
        }
        _ => format!("line {line_no}: {msg}"),
    }
}

/// The policies to replay from `--policy` values, in order; `current` is
/// put first as the baseline unless one of them is named "current".
pub fn policies(specs: &[String]) -> Result<Vec<Policy>, String> {
    let mut out = specs
        .iter()
        .map(|s| policy(s))
        .collect::<Result<Vec<_>, _>>()?;
    if !out.iter().any(|p| p.name == "current") {
        out.insert(0, Policy::current());
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use scoring::Combine;

    #[test]
    fn a_file_replaces_what_it_names() {
        let p = parse(
            "name = \"strict\"\nsamples = 2\ncombine = \"all-must-answer\"\n\
             [steps]\nrate = { step = -1.0 }\n",
        )
        .unwrap();
        assert_eq!(p.name, "strict");
        assert_eq!((p.samples, p.combine), (2, Combine::AllMustAnswer));
        assert_eq!(p.steps.rate.step, -1.0);
        assert_eq!(p.steps.no_response, Policy::current().steps.no_response);
        assert_eq!(p.timeout, 3.0);
    }

    #[test]
    fn bad_files_name_the_field() {
        for (text, want) in [
            ("samples = 2\n", "name: missing"),
            ("name = \"x\"\nsamples = 0\n", "samples: must be 1 to 16"),
            (
                "name = \"x\"\nsamples = \"four\"\n",
                "line 2: samples: invalid type",
            ),
            (
                "name = \"x\"\ncombine = \"most\"\n",
                "line 2: combine: unknown variant",
            ),
            ("name = \"x\"\nsample = 4\n", "unknown field `sample`"),
            (
                "name = \"x\"\n[steps]\nrate = { step = 1000.0 }\n",
                "steps.rate",
            ),
            ("name = \"a b\"\n", "name: 1 to 40"),
            ("name = \n", "line 1"),
        ] {
            let err = parse(text).unwrap_err();
            assert!(err.contains(want), "{text:?}: {err}");
        }
    }

    #[test]
    fn presets_files_and_the_baseline() {
        let names = |v: Vec<Policy>| v.into_iter().map(|p| p.name).collect::<Vec<_>>();
        assert_eq!(
            names(policies(&["all-must-answer".into()]).unwrap()),
            ["current", "all-must-answer"]
        );
        assert_eq!(
            names(policies(&["first-1".into(), "current".into()]).unwrap()),
            ["first-1", "current"]
        );
        let err = policies(&["best-of-9".into()]).unwrap_err();
        assert!(err.contains("neither a preset (current, first-1"), "{err}");
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("p.toml");
        std::fs::write(&f, "name = \"x\"\ntimeout = -1.0\n").unwrap();
        let err = policy(f.to_str().unwrap()).unwrap_err();
        assert!(err.contains("p.toml") && err.contains("timeout"), "{err}");
        let err = policy("missing.toml").unwrap_err();
        assert!(err.starts_with("policy file missing.toml: "), "{err}");
    }
}
