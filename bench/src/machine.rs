//! The machine and the tree measured, described for the report: the figures are only comparable
//! with the machine, its load and the build profile beside them.

use std::path::Path;
use std::process::Command;
use std::time::SystemTime;

use crate::report::Machine;

/// Output of a command that succeeded, trimmed.
pub fn command_line(program: &str, args: &[&str], dir: &Path) -> Option<String> {
    let output = Command::new(program)
        .args(args)
        .current_dir(dir)
        .output()
        .ok()?;
    output
        .status
        .success()
        .then(|| String::from_utf8_lossy(&output.stdout).trim().to_owned())
}

/// The tree measured. Taken when the run starts: others may commit while it runs.
pub fn commit(root: &Path) -> String {
    command_line("git", &["describe", "--always", "--dirty"], root)
        .unwrap_or_else(|| "unknown".into())
}

/// Everything but the load at the start and the commit, which the run takes when it starts.
pub fn machine(root: &Path) -> Machine {
    let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    let cpu = cpuinfo
        .lines()
        .find_map(|line| line.strip_prefix("model name"))
        .and_then(|rest| rest.split_once(':'))
        .map_or_else(|| "unknown CPU".to_owned(), |(_, v)| v.trim().to_owned());
    let memory = std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|m| {
            m.lines()
                .find_map(|l| l.strip_prefix("MemTotal:"))
                .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<f64>().ok())
        })
        .map_or_else(
            || "unknown memory".to_owned(),
            |kb| format!("{:.0} GiB memory", kb / 1024.0 / 1024.0),
        );
    let kernel = std::fs::read_to_string("/proc/sys/kernel/osrelease")
        .map(|k| format!("Linux {}", k.trim()))
        .unwrap_or_else(|_| "unknown kernel".to_owned());
    let rustc = std::env::var("RUSTC").unwrap_or_else(|_| "rustc".to_owned());
    let rustc = command_line(&rustc, &["--version"], root).unwrap_or_else(|| "unknown".into());
    Machine {
        cpu,
        cores: std::thread::available_parallelism().map_or(0, |n| n.get()),
        memory,
        kernel,
        rustc,
        commit: String::new(),
        date: utc_now(),
        load_before: String::new(),
        load_after: load_average(),
    }
}

pub fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .ok()
        .map(|l| l.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_else(|| "unknown".to_owned())
}

/// The `[profile.release]` section of the root Cargo.toml, as written.
pub fn profile_release(root: &Path) -> String {
    let manifest = std::fs::read_to_string(root.join("Cargo.toml")).unwrap_or_default();
    let mut lines = Vec::new();
    let mut inside = false;
    for line in manifest.lines() {
        let trimmed = line.trim();
        if trimmed.starts_with('[') {
            inside = trimmed == "[profile.release]";
            continue;
        }
        if inside && !trimmed.is_empty() && !trimmed.starts_with('#') {
            lines.push(trimmed.to_owned());
        }
    }
    lines.join("; ")
}

/// Entries in /etc/ssl/certs: what the binary's HTTPS client reads when it starts.
pub fn certificate_entries() -> usize {
    std::fs::read_dir("/etc/ssl/certs").map_or(0, |d| d.count())
}

fn utc_now() -> String {
    // "2026-11-27 12:55" from the simulator's "2026-11-27T12:55:07.123Z"
    drs_sim::iso8601(SystemTime::now())
        .get(..16)
        .unwrap_or_default()
        .replace('T', " ")
}
