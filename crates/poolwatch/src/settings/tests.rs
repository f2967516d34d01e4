//! The layering and the one validation, for every command: each source
//! wins over the one before it, and every bad value is refused naming its
//! source and key. Variables come from a map, never the process
//! environment, so tests cannot race.

use super::agent::AgentSettings;
use super::demo::DemoSettings;
use super::dns::DnsSettings;
use super::serve::ServeSettings;
use super::*;

/// A command's flags, as `main` builds them (with the keys in the help).
pub(super) fn command<A: clap::Args>(name: &'static str) -> Command {
    let root = Command::new("poolwatch").subcommand(A::augment_args(Command::new(name)));
    with_config_keys(root)
        .find_subcommand(name)
        .expect("subcommand")
        .clone()
}

pub(super) fn serve_cmd() -> Command {
    command::<crate::serve_cmd::Args>("serve")
}
pub(super) fn agent_cmd() -> Command {
    command::<crate::agent_cmd::Args>("agent")
}
pub(super) fn dns_cmd() -> Command {
    command::<crate::dns_cmd::Args>("dns")
}
pub(super) fn demo_cmd() -> Command {
    command::<crate::demo_cmd::Args>("demo")
}

/// Load `S` for `cmd` with these flags, variables and TOML file text.
pub(super) fn load_with<S: Settings>(
    cmd: &Command,
    flags: &[&str],
    env: &[(&str, &str)],
    file: Option<&str>,
) -> Result<Loaded<S>, String> {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("settings.toml");
    let mut argv: Vec<String> = vec![cmd.get_name().to_string()];
    argv.extend(flags.iter().map(|f| f.to_string()));
    if let Some(text) = file {
        std::fs::write(&path, text).unwrap();
        argv.extend(["--config".to_string(), path.display().to_string()]);
    }
    let m = cmd
        .clone()
        .try_get_matches_from(argv)
        .map_err(|e| e.to_string())?;
    let env: BTreeMap<String, String> = env
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    load::<S>(cmd, &m, &|k| env.get(k).cloned()).map_err(|e| format!("{e:#}"))
}

/// The value at dotted `key` of `s`, as text ("30s", "7", "json", "a,b").
fn text_at<S: Serialize>(s: &S, key: &str) -> String {
    let v = Value::serialize(s).unwrap();
    let at = hint(&v, key).unwrap_or_else(|| panic!("no {key}"));
    show(at)
}

fn show(v: &Value) -> String {
    match v {
        Value::String(_, s) => s.clone(),
        Value::Num(_, n) => n
            .to_u128()
            .map(|u| u.to_string())
            .unwrap_or_else(|| format!("{}", n.to_f64().unwrap())),
        Value::Bool(_, b) => b.to_string(),
        Value::Array(_, a) => a.iter().map(show).collect::<Vec<_>>().join(","),
        Value::Empty(..) => String::new(),
        other => format!("{other:?}"),
    }
}

/// One setting of a command: key, flag, variable; the text to write in
/// the file (TOML value), variable and flag; and what each reads as.
struct Layered {
    key: &'static str,
    flag: &'static str,
    env: &'static str,
    file: &'static str,
    env_text: &'static str,
    flag_text: &'static str,
    /// What the file, variable and flag values read as.
    want: [&'static str; 3],
}

/// `--log-format`, which every command has, layered and refused alike.
const LOG_FORMAT_LAYERED: Layered = Layered {
    key: "log_format",
    flag: "--log-format",
    env: "POOLWATCH_LOG_FORMAT",
    file: "\"json\"",
    env_text: "text",
    flag_text: "json",
    want: ["json", "text", "json"],
};
const LOG_FORMAT_BAD: Bad = Bad {
    key: "log_format",
    flag: "--log-format",
    env: "POOLWATCH_LOG_FORMAT",
    text: "jsn",
    toml: "\"jsn\"",
    why: "`jsn`",
};

/// `key = value` in its TOML section.
fn toml_line(key: &str, value: &str) -> String {
    match key.split_once('.') {
        Some((section, k)) => format!("[{section}]\n{k} = {value}\n"),
        None => format!("{key} = {value}\n"),
    }
}

/// Default < file < environment < flag, for each setting of `cases`, with
/// `base` flags that make the command's settings complete.
fn check_layering<S: Settings>(cmd: &Command, base: &[&str], cases: &[Layered]) {
    for c in cases {
        let name = c.key;
        let default = load_with::<S>(cmd, base, &[], None).unwrap();
        let default_text = text_at(&default.settings, c.key);
        assert_eq!(default.origin(c.key), Origin::Default, "{name}");
        let file = toml_line(c.key, c.file);
        let env = [(c.env, c.env_text)];
        let mut flags = base.to_vec();
        flags.extend([c.flag, c.flag_text]);

        let l = load_with::<S>(cmd, base, &[], Some(&file)).unwrap();
        assert_eq!(text_at(&l.settings, c.key), c.want[0], "{name}: file");
        assert!(matches!(l.origin(c.key), Origin::File(_)), "{name}");
        let l = load_with::<S>(cmd, base, &env, Some(&file)).unwrap();
        assert_eq!(text_at(&l.settings, c.key), c.want[1], "{name}: env");
        assert_eq!(l.origin(c.key), Origin::Env(c.env.into()), "{name}");
        let l = load_with::<S>(cmd, &flags, &env, Some(&file)).unwrap();
        assert_eq!(text_at(&l.settings, c.key), c.want[2], "{name}: flag");
        assert_eq!(l.origin(c.key), Origin::Flag(c.flag.into()), "{name}");
        // Each step changed the value, so each source really won.
        assert_ne!(
            default_text, c.want[0],
            "{name}: pick a file value not the default"
        );
        assert_ne!(c.want[0], c.want[1], "{name}");
        assert_ne!(c.want[1], c.want[2], "{name}");
    }
}

/// A bad value of one setting: key, flag, variable, the bad text (and its
/// TOML form), and a word the refusal must contain.
struct Bad {
    key: &'static str,
    flag: &'static str,
    env: &'static str,
    text: &'static str,
    toml: &'static str,
    why: &'static str,
}

/// Each bad value is refused from each source, naming the source and key.
fn check_refusals<S: Settings + std::fmt::Debug>(cmd: &Command, base: &[&str], cases: &[Bad]) {
    for b in cases {
        let mut flags = base.to_vec();
        flags.extend([b.flag, b.text]);
        let from_flag = load_with::<S>(cmd, &flags, &[], None).unwrap_err();
        assert!(
            from_flag.starts_with(&format!("{}:", b.flag)),
            "{from_flag}"
        );
        let from_env = load_with::<S>(cmd, base, &[(b.env, b.text)], None).unwrap_err();
        assert!(
            from_env.starts_with(&format!("environment {}:", b.env)),
            "{from_env}"
        );
        let from_file =
            load_with::<S>(cmd, base, &[], Some(&toml_line(b.key, b.toml))).unwrap_err();
        assert!(from_file.contains("settings.toml: "), "{from_file}");
        assert!(
            from_file.contains(&format!("config {}:", b.key)),
            "{from_file}"
        );
        for e in [&from_flag, &from_env, &from_file] {
            assert!(e.contains(b.why), "{}: {e}", b.key);
        }
    }
}

/// An unknown key in the file is refused naming the file and the key.
fn check_unknown_key<S: Settings + std::fmt::Debug>(cmd: &Command, base: &[&str]) {
    for (file, key) in [
        ("listn = \"x\"\n", "config listn:"),
        ("[nosuch]\nx = 1\n", "config nosuch:"),
    ] {
        let e = load_with::<S>(cmd, base, &[], Some(file)).unwrap_err();
        assert!(e.contains(&format!("settings.toml: {key}")), "{e}");
        assert!(e.contains("unknown field"), "{e}");
    }
}

const SERVE: &[&str] = &[];
const AGENT: &[&str] = &["--api", "http://127.0.0.1:1", "--key", "k"];
const DNS: &[&str] = &[
    "--zone",
    "pool.test",
    "--zone-file",
    "/nonexistent/zone.json",
];
const DEMO: &[&str] = &[];

#[test]
fn serve_sources_win_in_order() {
    check_layering::<ServeSettings>(
        &serve_cmd(),
        SERVE,
        &[
            Layered {
                key: "interval_active",
                flag: "--interval-active",
                env: "POOLWATCH_INTERVAL_ACTIVE",
                file: "\"1m\"",
                env_text: "2m",
                flag_text: "90s",
                want: ["1m", "2m", "90s"],
            },
            Layered {
                key: "samples",
                flag: "--samples",
                env: "POOLWATCH_SAMPLES",
                file: "5",
                env_text: "6",
                flag_text: "7",
                want: ["5", "6", "7"],
            },
            Layered {
                key: "instance_name",
                flag: "--instance-name",
                env: "POOLWATCH_INSTANCE_NAME",
                file: "\"web-1\"",
                env_text: "web-2",
                flag_text: "web-3.example:a",
                want: ["web-1", "web-2", "web-3.example:a"],
            },
            Layered {
                key: "http.drain_delay",
                flag: "--drain-delay",
                env: "POOLWATCH_DRAIN_DELAY",
                file: "\"2s\"",
                env_text: "3s",
                flag_text: "0s",
                want: ["2s", "3s", "0s"],
            },
            LOG_FORMAT_LAYERED,
            Layered {
                key: "public_url",
                flag: "--public-url",
                env: "POOLWATCH_PUBLIC_URL",
                file: "\"http://a.test\"",
                env_text: "http://b.test",
                flag_text: "http://c.test",
                want: ["http://a.test", "http://b.test", "http://c.test"],
            },
            Layered {
                key: "selector.active",
                flag: "--selector-active",
                env: "POOLWATCH_SELECTOR_ACTIVE",
                file: "3",
                env_text: "4",
                flag_text: "5",
                want: ["3", "4", "5"],
            },
            Layered {
                key: "reference_servers",
                flag: "--reference-server",
                env: "POOLWATCH_REFERENCE_SERVERS",
                file: "[\"a.test\"]",
                env_text: "b.test, c.test",
                flag_text: "d.test",
                want: ["a.test", "b.test,c.test", "d.test"],
            },
            Layered {
                key: "zone_guard",
                flag: "--zone-guard",
                env: "POOLWATCH_ZONE_GUARD",
                file: "0.2",
                env_text: "off",
                flag_text: "30%",
                want: ["0.2", "off", "0.3"],
            },
            Layered {
                key: "log_retention",
                flag: "--log-retention",
                env: "POOLWATCH_LOG_RETENTION",
                file: "\"90d\"",
                env_text: "2w",
                flag_text: "forever",
                want: ["90d", "2w", "forever"],
            },
            Layered {
                key: "sample_retention",
                flag: "--sample-retention",
                env: "POOLWATCH_SAMPLE_RETENTION",
                file: "\"30d\"",
                env_text: "2d",
                flag_text: "12h",
                want: ["30d", "2d", "12h"],
            },
            Layered {
                key: "dns_count_retention",
                flag: "--dns-count-retention",
                env: "POOLWATCH_DNS_COUNT_RETENTION",
                file: "\"30d\"",
                env_text: "4d",
                flag_text: "5d",
                want: ["30d", "4d", "5d"],
            },
            Layered {
                key: "dns_count_interval",
                flag: "--dns-count-interval",
                env: "POOLWATCH_DNS_COUNT_INTERVAL",
                file: "\"2m\"",
                env_text: "30s",
                flag_text: "5s",
                want: ["2m", "30s", "5s"],
            },
            Layered {
                key: "manage.signup",
                flag: "--signup",
                env: "POOLWATCH_SIGNUP",
                file: "\"closed\"",
                env_text: "open",
                flag_text: "closed",
                want: ["closed", "open", "closed"],
            },
            Layered {
                key: "manage.session_idle",
                flag: "--session-idle",
                env: "POOLWATCH_SESSION_IDLE",
                file: "\"30m\"",
                env_text: "1h",
                flag_text: "90m",
                want: ["30m", "1h", "90m"],
            },
            Layered {
                key: "manage.session_max_age",
                flag: "--session-max-age",
                env: "POOLWATCH_SESSION_MAX_AGE",
                file: "\"1d\"",
                env_text: "2d",
                flag_text: "12h",
                want: ["1d", "2d", "12h"],
            },
            Layered {
                key: "manage.max_servers_per_account",
                flag: "--max-servers-per-account",
                env: "POOLWATCH_MAX_SERVERS_PER_ACCOUNT",
                file: "5",
                env_text: "6",
                flag_text: "7",
                want: ["5", "6", "7"],
            },
            Layered {
                key: "manage.max_monitors_per_account",
                flag: "--max-monitors-per-account",
                env: "POOLWATCH_MAX_MONITORS_PER_ACCOUNT",
                file: "4",
                env_text: "5",
                flag_text: "9",
                want: ["4", "5", "9"],
            },
            Layered {
                key: "manage.max_unverified",
                flag: "--max-unverified",
                env: "POOLWATCH_MAX_UNVERIFIED",
                file: "0",
                env_text: "1",
                flag_text: "3",
                want: ["0", "1", "3"],
            },
        ],
    );
}

#[test]
fn serve_manage_settings_reach_the_service() {
    let l = load_with::<ServeSettings>(
        &serve_cmd(),
        &[
            "--allow-private",
            "--signup",
            "closed",
            "--session-idle",
            "20m",
        ],
        &[],
        Some("[manage]\nsession_max_age = \"1h\"\nmax_servers_per_account = 3\nmax_monitors_per_account = 7\n"),
    )
    .unwrap();
    let m = l.settings.manage_settings().unwrap();
    assert_eq!(m.max_monitors_per_account, 7);
    assert!(m.allow_private);
    assert_eq!(m.signup, server::manage::settings::Signup::Closed);
    assert_eq!(m.session_idle, std::time::Duration::from_secs(1200));
    assert_eq!(m.session_absolute, std::time::Duration::from_secs(3600));
    assert_eq!(m.max_servers_per_account, 3);
    let d = load_with::<ServeSettings>(
        &serve_cmd(),
        SERVE,
        &[],
        Some("[manage]\nallow_private = true\n"),
    )
    .unwrap();
    assert!(d.settings.manage_settings().unwrap().allow_private);
    let d = load_with::<ServeSettings>(&serve_cmd(), SERVE, &[], None).unwrap();
    assert_eq!(
        d.settings.manage_settings().unwrap(),
        server::manage::settings::ManageSettings::default()
    );
    // The relation of the two lifetimes, whatever their sources.
    let e = load_with::<ServeSettings>(
        &serve_cmd(),
        &["--session-idle", "3h"],
        &[],
        Some("[manage]\nsession_max_age = \"2h\"\n"),
    )
    .unwrap_err();
    assert!(
        e.contains("manage.session_max_age") && e.contains("at least manage.session_idle"),
        "{e}"
    );
}

#[test]
fn serve_public_sample_detail_is_a_switch_in_every_source() {
    let get = |flags: &[&str], env: &[(&str, &str)], file: Option<&str>| {
        let l = load_with::<ServeSettings>(&serve_cmd(), flags, env, file).unwrap();
        (
            l.settings.public_sample_detail,
            l.origin("public_sample_detail"),
        )
    };
    let env_off = [("POOLWATCH_PUBLIC_SAMPLE_DETAIL", "0")];
    let env_on = [("POOLWATCH_PUBLIC_SAMPLE_DETAIL", "yes")];
    let file = Some("public_sample_detail = true\n");
    assert_eq!(get(&[], &[], None), (false, Origin::Default));
    let (on, origin) = get(&[], &[], file);
    assert!(on && matches!(origin, Origin::File(_)), "{origin:?}");
    assert_eq!(
        get(&[], &env_off, file),
        (false, Origin::Env("POOLWATCH_PUBLIC_SAMPLE_DETAIL".into()))
    );
    assert_eq!(
        get(&[], &env_on, None),
        (true, Origin::Env("POOLWATCH_PUBLIC_SAMPLE_DETAIL".into()))
    );
    assert_eq!(
        get(&["--public-sample-detail"], &env_off, file),
        (true, Origin::Flag("--public-sample-detail".into()))
    );
    let e = load_with::<ServeSettings>(
        &serve_cmd(),
        &[],
        &[],
        Some("public_sample_detail = \"sometimes\"\n"),
    )
    .unwrap_err();
    assert!(e.contains("public_sample_detail"), "{e}");
}

#[test]
fn serve_refuses_bad_values_from_every_source() {
    check_refusals::<ServeSettings>(
        &serve_cmd(),
        SERVE,
        &[
            Bad {
                key: "instance_name",
                flag: "--instance-name",
                env: "POOLWATCH_INSTANCE_NAME",
                text: "web 1",
                toml: "\"web 1\"",
                why: "' ' is not allowed",
            },
            Bad {
                key: "http.drain_delay",
                flag: "--drain-delay",
                env: "POOLWATCH_DRAIN_DELAY",
                text: "10s",
                toml: "\"10s\"",
                why: "must be shorter than http.shutdown_grace (10s)",
            },
            Bad {
                key: "interval_active",
                flag: "--interval-active",
                env: "POOLWATCH_INTERVAL_ACTIVE",
                text: "soon",
                toml: "\"soon\"",
                why: "'soon' is not a duration",
            },
            Bad {
                key: "interval_active",
                flag: "--interval-active",
                env: "POOLWATCH_INTERVAL_ACTIVE",
                text: "500ms",
                toml: "\"500ms\"",
                why: "too short: at least 1s",
            },
            Bad {
                key: "samples",
                flag: "--samples",
                env: "POOLWATCH_SAMPLES",
                text: "17",
                toml: "17",
                why: "between 1 and 16",
            },
            Bad {
                key: "samples",
                flag: "--samples",
                env: "POOLWATCH_SAMPLES",
                text: "four",
                toml: "\"four\"",
                why: "expected u32",
            },
            LOG_FORMAT_BAD,
            Bad {
                key: "selector.active",
                flag: "--selector-active",
                env: "POOLWATCH_SELECTOR_ACTIVE",
                text: "0",
                toml: "0",
                why: "at least 1",
            },
            Bad {
                key: "dns_rrl.ipv4_prefix",
                flag: "--dns-rrl-ipv4-prefix",
                env: "POOLWATCH_DNS_RRL_IPV4_PREFIX",
                text: "40",
                toml: "40",
                why: "ipv4_prefix (--dns-rrl-ipv4-prefix) 40",
            },
            Bad {
                key: "log_retention",
                flag: "--log-retention",
                env: "POOLWATCH_LOG_RETENTION",
                text: "1d",
                toml: "\"1d\"",
                why: "too short: at least 2d",
            },
            Bad {
                key: "dns_count_retention",
                flag: "--dns-count-retention",
                env: "POOLWATCH_DNS_COUNT_RETENTION",
                text: "2d",
                toml: "\"2d\"",
                why: "too short: at least 3d",
            },
            Bad {
                key: "manage.signup",
                flag: "--signup",
                env: "POOLWATCH_SIGNUP",
                text: "maybe",
                toml: "\"maybe\"",
                why: "`maybe`",
            },
            Bad {
                key: "manage.session_idle",
                flag: "--session-idle",
                env: "POOLWATCH_SESSION_IDLE",
                text: "10s",
                toml: "\"10s\"",
                why: "too short: at least 1m",
            },
            Bad {
                key: "manage.max_servers_per_account",
                flag: "--max-servers-per-account",
                env: "POOLWATCH_MAX_SERVERS_PER_ACCOUNT",
                text: "0",
                toml: "0",
                why: "at least 1",
            },
            Bad {
                key: "manage.max_monitors_per_account",
                flag: "--max-monitors-per-account",
                env: "POOLWATCH_MAX_MONITORS_PER_ACCOUNT",
                text: "0",
                toml: "0",
                why: "at least 1",
            },
            Bad {
                key: "rate_limit.trusted_proxies",
                flag: "--trusted-proxy",
                env: "POOLWATCH_TRUSTED_PROXIES",
                text: "10.0.0.0/40",
                toml: "[\"10.0.0.0/40\"]",
                why: "not an address or CIDR",
            },
        ],
    );
    check_unknown_key::<ServeSettings>(&serve_cmd(), SERVE);
    let e = load_with::<ServeSettings>(&serve_cmd(), SERVE, &[], Some("[selector]\nactiv = 3\n"))
        .unwrap_err();
    assert!(
        e.contains("settings.toml: config selector.activ: unknown field"),
        "{e}"
    );
}

#[test]
fn agent_sources_win_in_order() {
    check_layering::<AgentSettings>(
        &agent_cmd(),
        AGENT,
        &[
            Layered {
                key: "backoff_min",
                flag: "--backoff-min",
                env: "POOLWATCH_BACKOFF_MIN",
                file: "\"1s\"",
                env_text: "2s",
                flag_text: "200ms",
                want: ["1s", "2s", "200ms"],
            },
            Layered {
                key: "concurrency",
                flag: "--concurrency",
                env: "POOLWATCH_CONCURRENCY",
                file: "5",
                env_text: "6",
                flag_text: "7",
                want: ["5", "6", "7"],
            },
            Layered {
                key: "traceroute",
                flag: "--traceroute",
                env: "POOLWATCH_TRACEROUTE",
                file: "\"mtr\"",
                env_text: "off",
                flag_text: "traceroute",
                want: ["mtr", "off", "traceroute"],
            },
            Layered {
                key: "config_refresh",
                flag: "--config-refresh",
                env: "POOLWATCH_CONFIG_REFRESH",
                file: "\"10m\"",
                env_text: "1m",
                flag_text: "30s",
                want: ["10m", "1m", "30s"],
            },
            Layered {
                key: "state_dir",
                flag: "--state-dir",
                env: "POOLWATCH_STATE_DIR",
                file: "\"/a\"",
                env_text: "/b",
                flag_text: "/c",
                want: ["/a", "/b", "/c"],
            },
        ],
    );
}

#[test]
fn agent_refuses_bad_values_from_every_source() {
    check_refusals::<AgentSettings>(
        &agent_cmd(),
        AGENT,
        &[
            Bad {
                key: "backoff_min",
                flag: "--backoff-min",
                env: "POOLWATCH_BACKOFF_MIN",
                text: "soon",
                toml: "\"soon\"",
                why: "'soon' is not a duration",
            },
            Bad {
                key: "concurrency",
                flag: "--concurrency",
                env: "POOLWATCH_CONCURRENCY",
                text: "0",
                toml: "0",
                why: "between 1 and 100000",
            },
            Bad {
                key: "pipeline",
                flag: "--pipeline",
                env: "POOLWATCH_PIPELINE",
                text: "65",
                toml: "65",
                why: "between 1 and 64",
            },
            Bad {
                key: "config_refresh",
                flag: "--config-refresh",
                env: "POOLWATCH_CONFIG_REFRESH",
                text: "10ms",
                toml: "\"10ms\"",
                why: "at least 100ms",
            },
            // The agent used to ignore a typo here in its file.
            LOG_FORMAT_BAD,
            Bad {
                key: "traceroute",
                flag: "--traceroute",
                env: "POOLWATCH_TRACEROUTE",
                text: "tracert",
                toml: "\"tracert\"",
                why: "`tracert`",
            },
        ],
    );
    check_unknown_key::<AgentSettings>(&agent_cmd(), AGENT);
}

#[test]
fn dns_sources_win_in_order() {
    check_layering::<DnsSettings>(
        &dns_cmd(),
        DNS,
        &[
            Layered {
                key: "refresh",
                flag: "--refresh",
                env: "POOLWATCH_DNS_REFRESH",
                file: "\"1m\"",
                env_text: "2m",
                flag_text: "5s",
                want: ["1m", "2m", "5s"],
            },
            Layered {
                key: "count_interval",
                flag: "--count-interval",
                env: "POOLWATCH_DNS_COUNT_INTERVAL",
                file: "\"off\"",
                env_text: "30s",
                flag_text: "0",
                want: ["0s", "30s", "0s"],
            },
            Layered {
                key: "dns_rrl.rate",
                flag: "--dns-rrl-rate",
                env: "POOLWATCH_DNS_RRL_RATE",
                file: "10",
                env_text: "0",
                flag_text: "30",
                want: ["10", "0", "30"],
            },
            LOG_FORMAT_LAYERED,
            Layered {
                key: "geoip",
                flag: "--geoip",
                env: "POOLWATCH_GEOIP",
                file: "\"/a.mmdb\"",
                env_text: "/b.mmdb",
                flag_text: "/c.mmdb",
                want: ["/a.mmdb", "/b.mmdb", "/c.mmdb"],
            },
        ],
    );
}

#[test]
fn dns_refuses_bad_values_from_every_source() {
    check_refusals::<DnsSettings>(
        &dns_cmd(),
        DNS,
        &[
            Bad {
                key: "refresh",
                flag: "--refresh",
                env: "POOLWATCH_DNS_REFRESH",
                text: "soon",
                toml: "\"soon\"",
                why: "'soon' is not a duration",
            },
            Bad {
                key: "count_interval",
                flag: "--count-interval",
                env: "POOLWATCH_DNS_COUNT_INTERVAL",
                text: "2h",
                toml: "\"2h\"",
                why: "at most 1h (or off)",
            },
            Bad {
                key: "count_interval",
                flag: "--count-interval",
                env: "POOLWATCH_DNS_COUNT_INTERVAL",
                text: "500ms",
                toml: "\"500ms\"",
                why: "at least 1s",
            },
            Bad {
                key: "dns_rrl.size",
                flag: "--dns-rrl-size",
                env: "POOLWATCH_DNS_RRL_SIZE",
                text: "10",
                toml: "10",
                why: "size (--dns-rrl-size) 10",
            },
            Bad {
                key: "dns_rrl.ipv6_prefix",
                flag: "--dns-rrl-ipv6-prefix",
                env: "POOLWATCH_DNS_RRL_IPV6_PREFIX",
                text: "300",
                toml: "300",
                why: "u8",
            },
            LOG_FORMAT_BAD,
        ],
    );
    check_unknown_key::<DnsSettings>(&dns_cmd(), DNS);
}

#[test]
fn dns_zones_are_a_list_from_every_source() {
    let cmd = dns_cmd();
    let file_only = ["--zone-file", "/nonexistent/zone.json"];
    let zones = |flags: &[&str], env: &[(&str, &str)], file: Option<&str>| {
        let mut all = file_only.to_vec();
        all.extend(flags);
        load_with::<DnsSettings>(&cmd, &all, env, file).map(|l| l.settings.zone)
    };
    let two = ["a.test", "b.test"];
    assert_eq!(
        zones(&["--zone", "a.test", "--zone", "b.test"], &[], None).unwrap(),
        two
    );
    assert_eq!(zones(&["--zone", "a.test,b.test"], &[], None).unwrap(), two);
    assert_eq!(
        zones(&[], &[("POOLWATCH_ZONE", "a.test, b.test")], None).unwrap(),
        two
    );
    assert_eq!(
        zones(&[], &[], Some("zone = [\"a.test\", \"b.test\"]")).unwrap(),
        two
    );
    // One name alone, as the key was before it took a list.
    assert_eq!(
        zones(&[], &[], Some("zone = \"a.test\"")).unwrap(),
        ["a.test"]
    );
    // The flag replaces the file's list, it does not add to it.
    assert_eq!(
        zones(
            &["--zone", "c.test"],
            &[],
            Some("zone = [\"a.test\", \"b.test\"]")
        )
        .unwrap(),
        ["c.test"]
    );
    for (flags, file) in [(&[][..], None), (&[][..], Some("zone = []"))] {
        let e = zones(flags, &[], file).unwrap_err();
        assert!(
            e.contains("zone") && e.contains("--zone pool.example.org"),
            "{e}"
        );
    }
    let e = zones(&[], &[], Some("zone = 5")).unwrap_err();
    assert!(
        e.contains("config zone") && e.contains("a name or a list of names"),
        "{e}"
    );
}

#[test]
fn demo_sources_win_in_order() {
    check_layering::<DemoSettings>(
        &demo_cmd(),
        DEMO,
        &[
            Layered {
                key: "status_every",
                flag: "--status-every",
                env: "POOLWATCH_DEMO_STATUS_EVERY",
                file: "\"2s\"",
                env_text: "3",
                flag_text: "1m",
                want: ["2s", "3s", "1m"],
            },
            Layered {
                key: "ntp_port",
                flag: "--ntp-port",
                env: "POOLWATCH_DEMO_NTP_PORT",
                file: "1000",
                env_text: "2000",
                flag_text: "3000",
                want: ["1000", "2000", "3000"],
            },
            Layered {
                key: "data_dir",
                flag: "--data-dir",
                env: "POOLWATCH_DEMO_DATA_DIR",
                file: "\"/a\"",
                env_text: "/b",
                flag_text: "/c",
                want: ["/a", "/b", "/c"],
            },
        ],
    );
}

#[test]
fn demo_refuses_bad_values_from_every_source() {
    check_refusals::<DemoSettings>(
        &demo_cmd(),
        DEMO,
        &[
            Bad {
                key: "status_every",
                flag: "--status-every",
                env: "POOLWATCH_DEMO_STATUS_EVERY",
                text: "soon",
                toml: "\"soon\"",
                why: "'soon' is not a duration",
            },
            Bad {
                key: "status_every",
                flag: "--status-every",
                env: "POOLWATCH_DEMO_STATUS_EVERY",
                text: "500ms",
                toml: "\"500ms\"",
                why: "too short: at least 1s",
            },
            Bad {
                key: "ntp_port",
                flag: "--ntp-port",
                env: "POOLWATCH_DEMO_NTP_PORT",
                text: "70000",
                toml: "70000",
                why: "u16",
            },
        ],
    );
    check_unknown_key::<DemoSettings>(&demo_cmd(), DEMO);
}
