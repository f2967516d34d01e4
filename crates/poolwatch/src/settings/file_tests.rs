//! The settings as operators write them: each command's documented file
//! example, the file forms of the settings with a syntax of their own, the
//! switches, and the help that shows flag, variable and key together.

use super::serve::{LogRetention, ServeSettings, parse_log_retention};
use super::tests::{agent_cmd, demo_cmd, dns_cmd, load_with, serve_cmd};
use super::{HumanDuration, Origin};
use scoring::ZoneGuardConfig;
use server::housekeeping_job::MIN_LOG_RETENTION;
use std::time::Duration;

/// The TOML example in the doc comment of `source`.
fn example(source: &str) -> String {
    source
        .lines()
        .skip_while(|l| !l.starts_with("//! ```toml"))
        .skip(1)
        .take_while(|l| !l.starts_with("//! ```"))
        .map(|l| l.trim_start_matches("//!").trim_start())
        .collect::<Vec<_>>()
        .join("\n")
}

#[test]
fn serve_reads_its_documented_example() {
    let file = example(include_str!("serve.rs"));
    let l = load_with::<ServeSettings>(&serve_cmd(), &[], &[], Some(&file)).unwrap();
    let c = &l.settings;
    assert_eq!(c.listen.to_string(), "0.0.0.0:8080");
    assert_eq!(c.metrics_listen.unwrap().to_string(), "127.0.0.1:9122");
    assert_eq!(c.http.idle_timeout, HumanDuration::secs(5));
    assert_eq!(c.http.max_connections_per_client, 32);
    assert_eq!(c.samples, 4);
    assert_eq!(c.rate_limit.burst, 40.0);
    assert_eq!(c.alerts.max_reminders, 5);
    assert!(c.selector.enabled);
    assert_eq!(c.selector.interval, HumanDuration::secs(600));
    assert_eq!(c.selector.candidate_budget, 8000);
    assert_eq!(c.public_url.as_deref(), Some("https://pool.example.org"));
    assert_eq!(c.reference_servers.len(), 2);
    assert_eq!(c.zone_guard.0, ZoneGuardConfig::MaxShare(0.1));
    assert_eq!(c.log_retention, LogRetention(None));
    assert_eq!(c.dns_rrl.rate, 200);
    assert_eq!(c.dns_rrl.ipv6_prefix, 64);
    assert_eq!(c.dns_ns, ["ns1.example.org.", "ns2"]);
    assert!(matches!(l.origin("dns_rrl.rate"), Origin::File(_)));
}

#[test]
fn agent_and_dns_read_their_documented_examples() {
    let file = example(include_str!("agent.rs"));
    let a = load_with::<super::agent::AgentSettings>(&agent_cmd(), &[], &[], Some(&file))
        .unwrap()
        .settings;
    assert_eq!(a.api.as_deref(), Some("https://pool.example.org"));
    assert!(!a.ipv6 && a.ipv4);
    assert_eq!(a.concurrency, 100);
    let file = example(include_str!("dns.rs"));
    let d = load_with::<super::dns::DnsSettings>(&dns_cmd(), &[], &[], Some(&file))
        .unwrap()
        .settings;
    assert_eq!(d.zone, ["pool.example.org", "pool.example.net"]);
    assert_eq!(d.listen.to_string(), "[::]:53");
}

#[test]
fn an_empty_file_is_the_defaults_and_a_typo_is_refused() {
    let cmd = serve_cmd();
    let empty = load_with::<ServeSettings>(&cmd, &[], &[], Some("")).unwrap();
    assert_eq!(empty.settings, ServeSettings::default());
    let e = load_with::<ServeSettings>(&cmd, &[], &[], Some("listn = \"x\"")).unwrap_err();
    assert!(e.contains("listn"), "{e}");
}

#[test]
fn selector_flags_over_file_over_defaults() {
    let cmd = serve_cmd();
    let settings = |args: &[&str], file: &str| {
        load_with::<ServeSettings>(&cmd, args, &[], Some(file))
            .map(|l| l.settings.selector_settings().unwrap())
    };
    let d = server::selector_job::SelectorSettings::default();
    assert_eq!(settings(&[], "").unwrap(), Some(d.clone()));
    let file = "[selector]\nactive = 3\ntesting = 1\ninterval = \"30s\"\ncandidate_budget = 50\n";
    let s = settings(&[], file).unwrap().unwrap();
    assert_eq!((s.config.target_active, s.config.base_testing), (3, 1));
    assert_eq!(s.interval, Duration::from_secs(30));
    assert_eq!(s.candidate_budget, 50);
    assert_eq!(s.config.min_count_active, d.config.min_count_active);
    let s = settings(
        &["--selector-active", "4", "--selector-interval", "1m"],
        file,
    )
    .unwrap()
    .unwrap();
    assert_eq!((s.config.target_active, s.config.base_testing), (4, 1));
    assert_eq!(s.interval, Duration::from_secs(60));
    assert_eq!(settings(&["--no-selector"], file).unwrap(), None);
    assert_eq!(
        settings(&[], "[selector]\nenabled = false\n").unwrap(),
        None
    );

    for (args, file, want) in [
        (vec!["--selector-active", "0"], "", "--selector-active"),
        (vec![], "[selector]\nactive = 0\n", "config selector.active"),
        (
            vec!["--selector-candidate-budget", "0"],
            "",
            "candidate-budget",
        ),
        (
            vec![],
            "[selector]\ninterval = \"soon\"\n",
            "selector.interval",
        ),
        (vec!["--selector-interval", "500ms"], "", "at least 1s"),
    ] {
        let e = settings(&args, file).unwrap_err();
        assert!(e.contains(want), "{args:?} {file:?}: {e}");
    }
    assert!(
        settings(&[], "[selector]\nactiv = 3\n").is_err(),
        "typos are refused"
    );
}

#[test]
fn log_retention_settings() {
    assert_eq!(parse_log_retention("forever"), Ok(LogRetention(None)));
    assert_eq!(parse_log_retention(" Forever "), Ok(LogRetention(None)));
    assert_eq!(
        parse_log_retention("90d"),
        Ok(LogRetention(Some(Duration::from_secs(90 * 86_400))))
    );
    assert_eq!(
        parse_log_retention("2d"),
        Ok(LogRetention(Some(MIN_LOG_RETENTION)))
    );
    let short = parse_log_retention("1d").unwrap_err();
    assert!(short.contains("too short"), "{short}");
    assert_eq!(
        parse_log_retention("2w"),
        Ok(LogRetention(Some(Duration::from_secs(14 * 86_400))))
    );
    assert_eq!(
        parse_log_retention("72h"),
        Ok(LogRetention(Some(Duration::from_secs(72 * 3600))))
    );
    for bad in ["", "ninety days", "-3d", "90", "d", "NaNd", "1e300d", "3m"] {
        let e = parse_log_retention(bad).unwrap_err();
        assert!(e.contains("log retention"), "{bad}: {e}");
    }
}

#[test]
fn zone_guard_from_the_file() {
    let cmd = serve_cmd();
    let guard = |file: &str| {
        load_with::<ServeSettings>(&cmd, &[], &[], Some(file)).map(|l| l.settings.zone_guard.0)
    };
    assert_eq!(
        guard("zone_guard = 0.25"),
        Ok(ZoneGuardConfig::MaxShare(0.25))
    );
    assert_eq!(guard("zone_guard = \"off\""), Ok(ZoneGuardConfig::Off));
    assert_eq!(
        guard("zone_guard = \"10%\""),
        Ok(ZoneGuardConfig::MaxShare(0.1))
    );
    let e = guard("zone_guard = true").unwrap_err();
    assert!(e.contains("config zone_guard"), "{e}");
}

#[test]
fn serve_switch_and_variable_spellings() {
    let cmd = serve_cmd();
    let off = "[selector]\nenabled = false\n";
    let l = load_with::<ServeSettings>(&cmd, &[], &[], Some(off)).unwrap();
    assert_eq!(l.settings.selector_settings(), Ok(None));
    // POOLWATCH_NO_SELECTOR=0 is clap's "false": the selector runs again.
    let on = [("POOLWATCH_NO_SELECTOR", "0")];
    let l = load_with::<ServeSettings>(&cmd, &[], &on, Some(off)).unwrap();
    assert!(l.settings.selector.enabled);
    let l = load_with::<ServeSettings>(&cmd, &["--no-selector"], &on, None).unwrap();
    assert!(!l.settings.selector.enabled);
    assert_eq!(
        l.origin("selector.enabled"),
        Origin::Flag("--no-selector".into())
    );
}

#[test]
fn help_shows_flag_variable_and_key() {
    for cmd in [serve_cmd(), agent_cmd(), dns_cmd(), demo_cmd()] {
        // Wide, so that no line break falls inside what is looked for.
        let help = cmd
            .clone()
            .term_width(10_000)
            .render_long_help()
            .to_string();
        for a in cmd.get_arguments().filter(|a| a.get_env().is_some()) {
            if a.get_id() == "config" || a.is_hide_set() {
                continue;
            }
            let env = a.get_env().unwrap().to_string_lossy().into_owned();
            assert!(
                help.contains(&format!("[env: {env}")),
                "{env} in {}",
                cmd.get_name()
            );
            let key = format!("[config: {}", a.get_id());
            assert!(help.contains(&key), "{key} in {} help", cmd.get_name());
        }
    }
}

/// Every flag's id is a key of its command's settings, so no flag can be
/// refused as an unknown key (a typo in an `id = "…"`).
#[test]
fn every_flag_names_a_setting() {
    fn keys_exist<S: super::Settings>(cmd: &clap::Command) {
        let defaults = figment::value::Value::serialize(S::default()).unwrap();
        let specs = super::specs(cmd);
        assert!(specs.len() >= 5, "{}", cmd.get_name());
        for s in specs {
            assert!(
                super::hint(&defaults, &s.key).is_some(),
                "{} {}: no setting {}",
                cmd.get_name(),
                s.flag,
                s.key
            );
        }
    }
    keys_exist::<ServeSettings>(&serve_cmd());
    keys_exist::<super::agent::AgentSettings>(&agent_cmd());
    keys_exist::<super::dns::DnsSettings>(&dns_cmd());
    keys_exist::<super::demo::DemoSettings>(&demo_cmd());
}

/// `text` with every commented-out `# key = value` line taken in; how many.
fn uncommented(text: &str) -> (String, usize) {
    let mut n = 0;
    let lines: Vec<&str> = text
        .lines()
        .map(|l| match l.strip_prefix("# ") {
            Some(kv)
                if kv.split_once(" = ").is_some_and(|(k, _)| {
                    k.chars().all(|c| c.is_ascii_lowercase() || c == '_')
                }) =>
            {
                n += 1;
                kv
            }
            _ => l,
        })
        .collect();
    (lines.join("\n"), n)
}

/// The example settings the .deb installs in /etc/poolwatch/ (dist/):
/// accepted as shipped, and with every key in them uncommented, so none
/// names a key or value the commands would refuse.
#[test]
fn packaged_examples_load_as_shipped_and_uncommented() {
    let agent = include_str!("../../../../dist/agent.toml");
    let serve = include_str!("../../../../dist/serve.toml");
    let flags = ["--api", "https://pool.example.org", "--key", "pwk_test"];
    for (text, keys) in [(agent.to_string(), 0), uncommented(agent)] {
        let a = load_with::<super::agent::AgentSettings>(&agent_cmd(), &flags, &[], Some(&text))
            .unwrap_or_else(|e| panic!("dist/agent.toml ({keys} keys uncommented): {e}"));
        if keys > 0 {
            assert_eq!(
                a.settings.metrics_listen.unwrap().to_string(),
                "127.0.0.1:9123"
            );
        }
    }
    for (text, keys) in [(serve.to_string(), 0), uncommented(serve)] {
        let s = load_with::<ServeSettings>(&serve_cmd(), &[], &[], Some(&text))
            .unwrap_or_else(|e| panic!("dist/serve.toml ({keys} keys uncommented): {e}"));
        if keys > 0 {
            assert_eq!(
                s.settings.public_url.as_deref(),
                Some("https://pool.example.org")
            );
            assert_eq!(s.settings.manage.max_monitors_per_account, 3);
        }
    }
    assert!(uncommented(agent).1 >= 5 && uncommented(serve).1 >= 8);
}
