//! The load-balancer examples of docs/deploying.md (`dist/lb/`) are valid
//! configuration for the tools they are written for: `nginx -t` and
//! `haproxy -c`, where the tool is installed (scripts/test installs both).
//! Both send traffic to /readyz-checked instances and keep /metrics inside.

use std::path::{Path, PathBuf};
use std::process::Command;

fn example(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../dist/lb")
        .join(name)
        .canonicalize()
        .unwrap_or_else(|e| panic!("dist/lb/{name}: {e}"))
}

/// The tool's path, or `None` (with a note) when it is not installed.
fn tool(path: &str) -> Option<&str> {
    if Path::new(path).exists() {
        Some(path)
    } else {
        eprintln!("{path} is not installed; skipping (scripts/test installs it)");
        None
    }
}

#[test]
fn the_nginx_example_passes_nginx_t() {
    let conf = example("nginx-poolwatch.conf");
    let text = std::fs::read_to_string(&conf).unwrap();
    assert!(text.contains("location = /metrics"), "metrics stay inside");
    let Some(nginx) = tool("/usr/sbin/nginx") else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let out = nginx_t(nginx, dir.path(), &conf);
    let said = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "nginx -t: {said}");
    assert!(said.contains("syntax is ok"), "{said}");

    // The check is real: a broken copy fails.
    let broken = dir.path().join("broken.conf");
    std::fs::write(&broken, text.replace("proxy_pass", "proxy_pas")).unwrap();
    assert!(!nginx_t(nginx, dir.path(), &broken).status.success());
}

/// `nginx -t` of `conf`, an `http { }` include as in conf.d, wrapped in a
/// minimal main file that writes nothing outside `dir`.
fn nginx_t(nginx: &str, dir: &Path, conf: &Path) -> std::process::Output {
    let main = dir.join("nginx.conf");
    std::fs::write(
        &main,
        format!(
            "error_log stderr;\npid {}/nginx.pid;\nevents {{}}\nhttp {{\n  access_log off;\n  include {};\n}}\n",
            dir.display(),
            conf.display()
        ),
    )
    .unwrap();
    Command::new(nginx)
        .args(["-t", "-e", "stderr", "-p"])
        .arg(dir)
        .arg("-c")
        .arg(&main)
        .output()
        .unwrap()
}

#[test]
fn the_haproxy_example_passes_haproxy_c() {
    let conf = example("haproxy-poolwatch.cfg");
    let text = std::fs::read_to_string(&conf).unwrap();
    assert!(text.contains("uri /readyz"), "health checks ask /readyz");
    let Some(haproxy) = tool("/usr/sbin/haproxy") else {
        return;
    };
    let out = Command::new(haproxy)
        .arg("-c")
        .arg("-f")
        .arg(&conf)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "haproxy -c: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    let dir = tempfile::tempdir().unwrap();
    let broken = dir.path().join("broken.cfg");
    std::fs::write(
        &broken,
        text.replace("balance roundrobin", "balance nosuch"),
    )
    .unwrap();
    let out = Command::new(haproxy)
        .arg("-c")
        .arg("-f")
        .arg(&broken)
        .output()
        .unwrap();
    assert!(!out.status.success());
}
