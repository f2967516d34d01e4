//! `poolwatch demo` gives two of its simulated servers to a demo operator
//! account and prints a link into it (there is no SMTP in the demo): the
//! link, followed as a browser would (its page, then its button's POST),
//! starts a session whose manage page lists exactly those two servers.

mod common;

use common::BIN;
use common::e2e::free_udp_port_on;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::process::{Command, Stdio};
use std::time::Duration;

/// One HTTP/1.1 request to `addr` ("127.0.0.1:port"); (status, head, body).
fn http(addr: &str, method: &str, path: &str, cookie: Option<&str>) -> (u16, String, String) {
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let cookie = cookie
        .map(|c| format!("Cookie: {c}\r\n"))
        .unwrap_or_default();
    write!(
        s,
        "{method} {path} HTTP/1.1\r\nHost: {addr}\r\n{cookie}Content-Length: 0\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut raw = String::new();
    s.read_to_string(&mut raw).unwrap();
    let (head, body) = raw.split_once("\r\n\r\n").unwrap();
    let status = head.split_whitespace().nth(1).unwrap().parse().unwrap();
    (status, head.to_string(), body.to_string())
}

#[test]
fn the_demo_prints_a_link_into_its_operator_account() {
    let ntp = free_udp_port_on(&["127.0.1.1", "127.0.1.21", "127.0.1.33"]);
    let data = tempfile::tempdir().unwrap();
    let mut demo = Command::new(BIN)
        .args(["demo", "--duration", "10s", "--listen", "127.0.0.1:0"])
        .args([
            "--dns-listen",
            "127.0.0.1:0",
            "--ntp-port",
            &ntp.to_string(),
        ])
        .arg("--data-dir")
        .arg(data.path())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(demo.stdout.take().unwrap()).lines();
    let link = lines
        .by_ref()
        .map_while(Result::ok)
        .find_map(|l| {
            l.trim()
                .strip_prefix("manage as an operator")
                .map(|u| u.trim().to_string())
        })
        .expect("the demo prints the operator's link");
    let rest = link.strip_prefix("http://").unwrap();
    let (addr, path) = rest.split_at(rest.find('/').unwrap());

    // The link's page signs nobody in by itself; its button does.
    let (st, head, body) = http(addr, "GET", path, None);
    assert_eq!(st, 200, "{body}");
    assert!(!head.to_ascii_lowercase().contains("set-cookie"), "{head}");
    assert!(body.contains("demo-operator"), "{body}");
    let (st, head, _) = http(addr, "POST", path, None);
    assert_eq!(st, 303, "{head}");
    let cookie = head
        .lines()
        .find_map(|l| {
            l.strip_prefix("set-cookie: ")
                .or(l.strip_prefix("Set-Cookie: "))
        })
        .and_then(|c| c.split(';').next())
        .expect("a session cookie")
        .to_string();
    let (st, _, page) = http(addr, "GET", "/manage", Some(&cookie));
    assert_eq!(st, 200, "{page}");
    for ip in ["127.0.1.1", "127.0.1.21"] {
        assert!(page.contains(&format!(">{ip}<")), "{ip} missing: {page}");
    }
    assert!(
        !page.contains(">127.0.1.2<"),
        "not another account's server"
    );
    // Used once: the same link does not sign in again.
    let (st, _, _) = http(addr, "POST", path, None);
    assert_eq!(st, 410);

    let rest: Vec<String> = lines.map_while(Result::ok).collect();
    assert!(demo.wait().unwrap().success(), "{rest:?}");

    // It ends with a policy replay of its own samples; the command runs
    // as printed (continuation lines joined).
    let at = rest
        .iter()
        .position(|l| l.trim().starts_with("poolwatch policy replay"))
        .unwrap_or_else(|| panic!("no replay command in {rest:?}"));
    let command = format!("{} {}", rest[at], rest[at + 1]).replace('\\', " ");
    let args: Vec<&str> = command.split_whitespace().skip(1).collect();
    assert!(args.contains(&"all-must-answer"), "{command}");
    let out = Command::new(BIN).args(&args).output().unwrap();
    let report = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{command}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        report.contains("policy replay") && report.contains("all-must-answer"),
        "{report}"
    );
}
