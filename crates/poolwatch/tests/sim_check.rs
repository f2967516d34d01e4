//! `poolwatch check` against `poolwatch sim`, both the real binary, every
//! simulated behaviour; and the command line's answers to bad input. Every
//! packet these tests send goes to a loopback address.

mod common;

use common::{
    Sim, assert_offset_near, assert_result_offset, assert_usage_error, check_json, poolwatch,
    stderr, stdout,
};
use serde_json::Value;

fn f(v: &Value) -> f64 {
    v.as_f64().unwrap_or_else(|| panic!("not a number: {v}"))
}

fn errors(v: &Value) -> Vec<String> {
    v["samples"]
        .as_array()
        .expect("samples")
        .iter()
        .map(|s| s["error"].as_str().unwrap_or("").to_string())
        .collect()
}

/// A fleet file with one server per behaviour, all on 127.0.0.1, free ports.
fn fleet(behaviours: &[&str]) -> String {
    let mut s = String::from("seed = 1\n");
    for b in behaviours {
        s.push_str(&format!(
            "[[server]]\naddr = \"127.0.0.1:0\"\nbehaviour = {b}\n"
        ));
    }
    s
}

/// What `check` must report for a behaviour (best sample).
struct Want {
    behaviour: &'static str,
    /// Expected offset ± 10 ms, or `None` for an offset of null.
    offset: Option<f64>,
    /// Expected error: `None` = null; else the text must start with it.
    error: Option<&'static str>,
    stratum: Option<u64>,
    leap: Option<u64>,
    samples: usize,
}

#[test]
fn every_behaviour_through_check() {
    let w = |behaviour, offset, error, stratum, leap, samples| Want {
        behaviour,
        offset,
        error,
        stratum,
        leap,
        samples,
    };
    #[rustfmt::skip]
    let table = [
        //  behaviour                                     offset       error                                          stratum  leap     samples
        w("\"good\"",                                    Some(0.0),   None,                                          Some(2), Some(0), 3),
        w("{ offset = 0.25 }",                           Some(0.25),  None,                                          Some(2), Some(0), 3),
        w("{ offset = -2.5 }",                           Some(-2.5),  None,                                          Some(2), Some(0), 3),
        w("{ stratum = 3 }",                             Some(0.0),   None,                                          Some(3), Some(0), 3),
        w("{ leap = 1 }",                                Some(0.0),   None,                                          Some(2), Some(1), 3),
        w("{ leap = 2, stratum = 1, refid = \"GPS\" }",  Some(0.0),   None,                                          Some(1), Some(2), 3),
        w("{ leap = 3 }",                                None,        Some("bad reply: unsynchronized (leap 3)"),    Some(2), Some(3), 3),
        w("{ kod = \"RATE\" }",                          None,        Some("RATE"),                                  Some(0), Some(3), 3),
        w("{ kod = \"DENY\" }",                          None,        Some("DENY"),                                  Some(0), Some(3), 1),
        w("{ kod = \"RSTR\" }",                          None,        Some("RSTR"),                                  Some(0), Some(3), 1),
        w("{ kod = \"NTSN\" }",                          None,        Some("NTSN"),                                  Some(0), Some(3), 3),
        w("{ stratum = 0 }",                             None,        Some("bad reply: stratum 0 without kiss code"), Some(0), Some(0), 3),
        w("\"silent\"",                                  None,        Some("i/o timeout"),                           None,    None,    3),
        w("\"malformed\"",                               None,        Some("bad reply: short packet (20 bytes, need 48)"), None, None, 3),
        w("{ malformed = \"empty\" }",                   None,        Some("bad reply: short packet (0 bytes"),      None,    None,    3),
        w("{ malformed = \"garbage\" }",                 None,        Some("bad reply: "),                           None,    None,    3),
        w("\"wrong-origin\"",                            None,        Some("bad reply: origin"),                     None,    None,    3),
        // A spoofed KoD is not believed, so sampling goes on.
        w("{ wrong_origin = true, kod = \"DENY\" }",     None,        Some("bad reply: origin"),                     None,    None,    3),
        w("\"other-address\"",                           None,        Some("i/o timeout"),                           None,    None,    3),
        w("{ reply_from = \"127.0.0.3\", kod = \"DENY\" }", None,      Some("i/o timeout"),                           None,    None,    3),
        // check sends from 127.0.0.1 to loopback servers.
        w("{ drop_from = [\"127.0.0.1\"] }",             None,        Some("i/o timeout"),                           None,    None,    3),
        w("{ drop_from = [\"127.0.4.3\"] }",             Some(0.0),   None,                                          Some(2), Some(0), 3),
    ];
    let behaviours: Vec<&str> = table.iter().map(|w| w.behaviour).collect();
    let sim = Sim::start(&fleet(&behaviours));
    assert_eq!(sim.addrs.len(), table.len(), "banner: {:?}", sim.banner);
    let results = check_json(&sim.addrs, &["--samples", "3"]);
    for (want, r) in table.iter().zip(&results) {
        let name = want.behaviour;
        match want.offset {
            Some(o) => assert_result_offset(r, o, 0.0, 0.01),
            None => assert!(r["offset"].is_null(), "{name}: offset must be null: {r}"),
        }
        match want.error {
            None => assert!(r["error"].is_null(), "{name}: {r}"),
            Some(e) => {
                let got = r["error"]
                    .as_str()
                    .unwrap_or_else(|| panic!("{name}: no error: {r}"));
                assert!(got.starts_with(e), "{name}: error {got:?}, want {e:?}");
            }
        }
        assert_eq!(r["stratum"].as_u64(), want.stratum, "{name}: {r}");
        assert_eq!(r["leap"].as_u64(), want.leap, "{name}: {r}");
        let samples = r["samples"].as_array().expect("samples");
        assert_eq!(samples.len(), want.samples, "{name}: {r}");
        if want.offset.is_none() {
            assert!(samples.iter().all(|s| s["offset"].is_null()), "{name}: {r}");
        }
    }
    // Kiss codes and refids are shown as sent.
    let by = |b: &str| &results[table.iter().position(|w| w.behaviour == b).unwrap()];
    assert_eq!(by("{ kod = \"RATE\" }")["refid"], "RATE");
    assert_eq!(by("\"good\"")["refid"], "127.127.1.1");
    assert_eq!(
        by("{ leap = 2, stratum = 1, refid = \"GPS\" }")["refid"],
        "GPS"
    );
}

#[test]
fn loss_half_of_eight_samples_still_gives_a_good_best_sample() {
    // Seeded: the same requests are lost on every run. The second server
    // composes loss with an offset and a delay.
    let sim = Sim::start(&fleet(&[
        "{ loss = 0.5 }",
        "{ offset = 0.25, loss = 0.5, delay_ms = 50 }",
    ]));
    let results = check_json(&sim.addrs, &["--samples", "8"]);
    for (r, offset) in results.iter().zip([0.0, 0.25]) {
        let errs = errors(r);
        assert_eq!(errs.len(), 8);
        assert!(
            errs.iter().any(|e| e == "i/o timeout"),
            "no loss with seed 1: {errs:?}"
        );
        assert!(
            errs.iter().any(|e| e.is_empty()),
            "no answer with seed 1: {errs:?}"
        );
        assert!(r["error"].is_null(), "{r}");
        // The second server adds 50 ms on purpose; its lowest round trip is
        // the best sample's.
        assert_result_offset(r, offset, if offset > 0.0 { 0.05 } else { 0.0 }, 0.01);
        // Among the answers, the lowest round trip is the one reported.
        let min_rtt = r["samples"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|s| s["error"].is_null())
            .map(|s| f(&s["rtt"]))
            .fold(f64::INFINITY, f64::min);
        assert_eq!(f(&r["rtt"]), min_rtt, "{r}");
    }
    assert!(f(&results[1]["rtt"]) >= 0.05, "{}", results[1]);
}

#[test]
fn best_sample_is_the_answered_one() {
    // Three timeouts, then one answer: the answer is reported. Then a reply
    // with an error (RATE) beats silence.
    let sim = Sim::start(&fleet(&[
        "{ drop_first = 3, offset = 0.1 }",
        "{ drop_first = 1, kod = \"RATE\" }",
    ]));
    let r = check_json(&sim.addrs, &["--samples", "4"]);

    assert_eq!(
        errors(&r[0]),
        ["i/o timeout", "i/o timeout", "i/o timeout", ""]
    );
    assert!(r[0]["error"].is_null(), "{}", r[0]);
    assert_result_offset(&r[0], 0.1, 0.0, 0.01);
    assert_eq!(r[0]["rtt"], r[0]["samples"][3]["rtt"]);

    assert_eq!(errors(&r[1]), ["i/o timeout", "RATE", "RATE", "RATE"]);
    assert_eq!(r[1]["error"], "RATE");
    assert!(r[1]["offset"].is_null());
}

#[test]
fn delay_shows_in_rtt_not_in_offset() {
    let sim = Sim::start(&fleet(&["{ delay_ms = 100 }"]));
    let r = &check_json(&sim.addrs, &["--samples", "2"])[0];
    assert!(r["error"].is_null(), "{r}");
    assert!(f(&r["rtt"]) >= 0.1, "{r}");
    assert!(f(&r["rtt"]) < 0.4, "{r}");
    assert_result_offset(r, 0.0, 0.1, 0.01);
}

#[test]
fn drifting_offset_grows_between_samples() {
    // 5 % drift: 200 ms between samples moves the offset by about 10 ms.
    let sim = Sim::start(&fleet(&["{ offset = 1.0, drift_ppm = 50000 }"]));
    let r = &check_json(&sim.addrs, &["--samples", "2"])[0];
    let s = r["samples"].as_array().unwrap();
    let (a, b) = (f(&s[0]["offset"]), f(&s[1]["offset"]));
    // At least the configured 1 s (plus drift since the sim started), less
    // the first sample's error bound.
    let floor = 1.0 - f(&s[0]["rtt"]) / 2.0 - 0.001;
    assert!((floor..1.5).contains(&a), "{r}");
    // The offset grows by 5 % of the time between the two samples (at
    // least the 200 ms interval), within the two samples' error bounds.
    let gap = f(&s[1]["ts"]) - f(&s[0]["ts"]);
    assert!(gap >= 0.19, "samples {gap} s apart: {r}");
    let slack = 0.002 + (f(&s[0]["rtt"]) + f(&s[1]["rtt"])) / 2.0;
    let grew = b - a;
    assert!(
        (grew - 0.05 * gap).abs() <= slack,
        "grew {grew}, want {} ± {slack}: {r}",
        0.05 * gap
    );
}

#[test]
fn ipv6_loopback() {
    if std::net::UdpSocket::bind("[::1]:0").is_err() {
        eprintln!("skipped: ::1 is not available on this machine");
        return;
    }
    let sim = Sim::start(
        "[[server]]\naddr = \"[::1]:0\"\n\
         [[server]]\naddr = \"[::1]:0\"\nbehaviour = { offset = -0.25, stratum = 4 }\n\
         [[server]]\naddr = \"[::1]:0\"\nbehaviour = \"other-address\"\n",
    );
    assert!(sim.addrs.iter().all(|a| a.is_ipv6()), "{:?}", sim.banner);
    let r = check_json(&sim.addrs, &["--samples", "2"]);
    assert!(r[0]["error"].is_null(), "{}", r[0]);
    assert_result_offset(&r[0], 0.0, 0.0, 0.01);
    assert_result_offset(&r[1], -0.25, 0.0, 0.01);
    assert_eq!(r[1]["stratum"], 4);
    assert_eq!(r[2]["error"], "i/o timeout");
    assert!(r[0]["server"].as_str().unwrap().starts_with("[::1]:"));
}

#[test]
fn big_fleet_summary_write_list_and_check_file() {
    let sim = Sim::try_start(
        "[generate]\ncount = 60\nbase = \"127.0.200.1\"\nport = 0\nbehaviour = { offset = 0.05 }\n",
        &["--write-list", "servers.txt"],
    )
    .unwrap();
    assert!(
        sim.banner[0].starts_with("60 servers from 127.0.200.1:"),
        "{:?}",
        sim.banner
    );
    assert!(
        sim.banner.iter().any(|l| l.trim() == "60 offset +0.050 s"),
        "{:?}",
        sim.banner
    );
    let list = sim.dir.path().join("servers.txt");
    assert_eq!(std::fs::read_to_string(&list).unwrap().lines().count(), 60);
    let o = poolwatch(&[
        "check",
        "--lab",
        "--samples",
        "1",
        "--timeout",
        "1s",
        "--format",
        "csv",
        "--file",
        list.to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let out = stdout(&o);
    let rows: Vec<&str> = out.lines().skip(1).collect();
    assert_eq!(rows.len(), 60, "{out}");
    for row in rows {
        let cols: Vec<&str> = row.split(',').collect();
        let num = |i: usize| -> f64 { cols[i].parse().unwrap_or_else(|_| panic!("{row}")) };
        // 60 servers at once on a small machine: each offset within its
        // own round trip's bound.
        assert_offset_near(num(2), num(3), 0.05, 0.0, 0.01, row);
        assert_eq!(cols[7], "", "{row}");
    }
}

#[test]
fn sim_stops_cleanly_on_sigterm() {
    let sim = Sim::start(&fleet(&["\"good\""]));
    let pid = sim.pid().to_string();
    let status = std::process::Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .expect("run kill");
    assert!(status.success());
    let o = sim.wait();
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert!(stderr(&o).contains("stopping"), "{}", stderr(&o));
}

#[test]
fn sim_rejects_bad_fleet_files() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("missing.toml");
    let o = poolwatch(&["sim", "--fleet", missing.to_str().unwrap()]);
    assert_usage_error(&o, &["missing.toml", "cannot read"]);

    let cases = [
        (
            "[[server]]\naddr = \"127.0.0.1:0\"\nbehaviour = \"fast\"\n",
            "line 3, column 13: unknown behaviour 'fast'",
        ),
        (
            "[[server]]\naddr = \"127.0.0.1:0\"\nbehaviour = { loss = 2 }\n",
            "loss 2 is out of range",
        ),
        (
            "[[server]]\naddr = \"8.8.8.8:123\"\n",
            "8.8.8.8 is a public address",
        ),
        ("[[server\n", "line 1"),
        ("", "no servers"),
    ];
    for (text, want) in cases {
        let path = dir.path().join("bad.toml");
        std::fs::write(&path, text).unwrap();
        let o = poolwatch(&["sim", "--fleet", path.to_str().unwrap()]);
        assert_usage_error(&o, &["bad.toml", want]);
    }
}

#[test]
fn sim_reports_a_busy_address() {
    let busy = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    let addr = busy.local_addr().unwrap();
    let e = Sim::try_start(&format!("[[server]]\naddr = \"{addr}\"\n"), &[])
        .err()
        .expect("sim must fail");
    assert!(e.contains("exit status: 1"), "{e}");
    assert!(e.contains(&format!("cannot listen on {addr}")), "{e}");
}

#[test]
fn check_rejects_bad_input_before_sending() {
    // An unparseable host, named in a one-line error.
    assert_usage_error(
        &poolwatch(&["check", "--lab", "127.0.0.1:9", "under_score.example"]),
        &["under_score.example"],
    );
    assert_usage_error(
        &poolwatch(&["check", "--lab", "127.0.0.1:99999"]),
        &["127.0.0.1:99999"],
    );
    // An unknown flag (clap's own multi-line usage message).
    let o = poolwatch(&["check", "--frobnicate", "127.0.0.1"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).contains("--frobnicate"), "{}", stderr(&o));
    // An unreadable server list.
    assert_usage_error(
        &poolwatch(&["check", "--lab", "--file", "/nonexistent/servers.txt"]),
        &["/nonexistent/servers.txt"],
    );
    // Nothing to check.
    assert_usage_error(&poolwatch(&["check", "--lab"]), &["no servers"]);
    // --lab and --allow-private exclude each other.
    let o = poolwatch(&["check", "--lab", "--allow-private", "127.0.0.1:9"]);
    assert_eq!(o.status.code(), Some(2));
    // Loopback without --lab or --allow-private is refused.
    assert_usage_error(
        &poolwatch(&["check", "127.0.0.1:9"]),
        &["refusing to query 127.0.0.1", "--lab"],
    );
}

#[test]
fn lab_mode_refuses_public_addresses() {
    // The unparseable second host is a guard: were the refusal ever lost,
    // parsing it would still stop the run before any packet left.
    for ip in ["8.8.8.8", "2001:4860:4860::8888"] {
        let o = poolwatch(&["check", "--lab", ip, "not a host!"]);
        assert_usage_error(&o, &[&format!("refusing to query {ip}"), "lab mode"]);
    }
}

#[test]
fn ipv6_forms_embedding_a_refused_ipv4_are_refused() {
    // `check` and the agent share one rule (ntp::TargetPolicy); the guard
    // host after each keeps any packet from leaving were the refusal lost.
    for (ip, inside) in [
        (
            "2002:7f00:1::1",
            "6to4 address embedding the loopback address 127.0.0.1",
        ),
        (
            "2002:a00:1::1",
            "6to4 address embedding the private address 10.0.0.1",
        ),
        (
            "2002:a9fe:a9fe::1",
            "6to4 address embedding the link-local address 169.254.169.254",
        ),
        (
            "64:ff9b::a00:1",
            "NAT64 address embedding the private address 10.0.0.1",
        ),
        (
            "2001:0:4136:e378:8000:63bf:f5ff:fffe",
            "Teredo client address embedding the private address 10.0.0.1",
        ),
    ] {
        let o = poolwatch(&["check", ip, "not a host!"]);
        assert_usage_error(&o, &[&format!("refusing to query {ip}: {inside}")]);
        // Lab mode refuses every embedding form: it would be routed as IPv6.
        let o = poolwatch(&["check", "--lab", ip, "not a host!"]);
        assert_usage_error(&o, &[&format!("refusing to query {ip}"), "lab mode"]);
    }
}
