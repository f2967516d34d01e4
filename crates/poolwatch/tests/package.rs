//! The .deb: `scripts/package --no-build` packs the binary under test with
//! cargo-deb (dev profile); the package is unpacked with `dpkg-deb -x/-e`
//! and checked: the binary runs, both systemd units are there and their
//! command lines parse, the example settings are conffiles, the postinst
//! makes the `poolwatch` system user, and `systemd-analyze verify` accepts
//! the units where it exists. Needs cargo-deb and dpkg-deb; without them
//! the test says so and passes, except under CI (scripts/test installs
//! cargo-deb), where it fails.

use std::path::{Path, PathBuf};
use std::process::Command;

const BIN: &str = env!("CARGO_BIN_EXE_poolwatch");
const UNITS: [&str; 2] = ["poolwatch-agent.service", "poolwatch-serve.service"];

fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn have(cmd: &str, arg: &str) -> bool {
    Command::new(cmd)
        .arg(arg)
        .output()
        .is_ok_and(|o| o.status.success())
}

/// Runs `cmd`, failing the test with its output unless it succeeds.
fn run(cmd: &mut Command) -> String {
    let out = cmd.output().unwrap_or_else(|e| panic!("{cmd:?}: {e}"));
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "{cmd:?} failed: {text}");
    text
}

/// The `ExecStart=` command line of a unit, split on spaces.
fn exec_start(unit: &str) -> Vec<String> {
    let line = unit
        .lines()
        .find_map(|l| l.strip_prefix("ExecStart="))
        .expect("an ExecStart line");
    line.split_whitespace().map(str::to_string).collect()
}

#[test]
fn deb_holds_binary_units_settings_and_user() {
    if !have("cargo-deb", "--version") || !have("dpkg-deb", "--version") {
        assert!(
            std::env::var_os("CI").is_none(),
            "cargo-deb and dpkg-deb are needed under CI (scripts/test installs cargo-deb)"
        );
        eprintln!("skipped: cargo-deb or dpkg-deb missing (cargo install cargo-deb --locked)");
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    // The binary under test is target/<profile>/poolwatch: pack that one.
    let target = Path::new(BIN).parent().unwrap().parent().unwrap();
    let out = tmp.path().join("out");
    run(Command::new(workspace().join("scripts/package"))
        .arg("--no-build")
        .arg("-o")
        .arg(&out)
        .env("CARGO_TARGET_DIR", target));
    let debs: Vec<PathBuf> = std::fs::read_dir(&out)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "deb"))
        .collect();
    assert_eq!(debs.len(), 1, "{debs:?}");
    let root = tmp.path().join("root");
    let ctl = tmp.path().join("control");
    run(Command::new("dpkg-deb").arg("-x").arg(&debs[0]).arg(&root));
    run(Command::new("dpkg-deb").arg("-e").arg(&debs[0]).arg(&ctl));

    // The binary runs.
    let bin = root.join("usr/bin/poolwatch");
    let version = run(Command::new(&bin).arg("--version"));
    assert_eq!(
        version.trim(),
        format!("poolwatch {}", env!("CARGO_PKG_VERSION"))
    );

    // The metadata.
    let control = std::fs::read_to_string(ctl.join("control")).unwrap();
    assert!(control.contains("Package: poolwatch\n"), "{control}");
    let depends = control.lines().find(|l| l.starts_with("Depends:")).unwrap();
    assert!(depends.contains("adduser"), "{depends}");

    // Both units, their command lines accepted by the real binary's flags
    // (`--help` last: clap refuses an unknown flag before it).
    let units = root.join("usr/lib/systemd/system");
    for (name, sub) in UNITS.iter().zip(["agent", "serve"]) {
        let unit = std::fs::read_to_string(units.join(name)).unwrap();
        assert!(unit.contains("\nUser=poolwatch\n"), "{name}");
        let argv = exec_start(&unit);
        assert_eq!(
            argv[..2],
            ["/usr/bin/poolwatch".to_string(), sub.to_string()]
        );
        let args: Vec<String> = argv[1..]
            .iter()
            .map(|a| a.replace("${STATE_DIRECTORY}", "/var/lib/poolwatch"))
            .collect();
        run(Command::new(&bin).args(&args).arg("--help"));
    }
    let agent = std::fs::read_to_string(units.join(UNITS[0])).unwrap();
    assert!(agent.contains("\nStateDirectory=poolwatch-agent\n"));
    assert!(
        exec_start(&agent)
            .windows(2)
            .any(|w| w == ["--state-dir", "/var/lib/poolwatch-agent"])
    );

    // The example settings, as conffiles, not world-readable.
    let conffiles = std::fs::read_to_string(ctl.join("conffiles")).unwrap();
    for f in ["/etc/poolwatch/agent.toml", "/etc/poolwatch/serve.toml"] {
        assert!(conffiles.lines().any(|l| l == f), "{f} not in {conffiles}");
        let meta = std::fs::metadata(root.join(&f[1..])).unwrap();
        use std::os::unix::fs::PermissionsExt as _;
        assert_eq!(meta.permissions().mode() & 0o777, 0o640, "{f}");
    }
    assert!(
        root.join("usr/share/doc/poolwatch/monitor-operators.md")
            .is_file()
    );

    // The postinst makes the system user, and is valid shell with the
    // unit snippets cargo-deb adds.
    let postinst = std::fs::read_to_string(ctl.join("postinst")).unwrap();
    assert!(
        postinst
            .lines()
            .any(|l| l.trim_start().starts_with("adduser --system")
                && l.trim_end().ends_with(" poolwatch")),
        "{postinst}"
    );
    assert!(!postinst.contains("#DEBHELPER#"));
    assert!(postinst.contains("deb-systemd-helper update-state poolwatch-agent.service"));
    run(Command::new("sh").arg("-n").arg(ctl.join("postinst")));

    verify_units(&units, &bin, tmp.path());
}

/// `systemd-analyze verify` on copies of the units whose ExecStart names
/// the unpacked binary (it checks the command is executable). It only
/// warns about unknown keys, so any output fails too.
fn verify_units(units: &Path, bin: &Path, tmp: &Path) {
    if !have("systemd-analyze", "--version") {
        eprintln!("systemd-analyze verify skipped: systemd-analyze is not installed here");
        return;
    }
    let dir = tmp.join("verify");
    std::fs::create_dir(&dir).unwrap();
    let mut files = Vec::new();
    for name in UNITS {
        let unit = std::fs::read_to_string(units.join(name)).unwrap();
        let unit = unit.replace("/usr/bin/poolwatch", &bin.display().to_string());
        std::fs::write(dir.join(name), unit).unwrap();
        files.push(dir.join(name));
    }
    let out = Command::new("systemd-analyze")
        .arg("verify")
        .args(&files)
        .output()
        .unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        out.status.success() && text.trim().is_empty(),
        "systemd-analyze verify: {text}"
    );
}
