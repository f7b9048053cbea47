//! `drs-failback-bench`: drives the real drs-failback handler through the real AWS SDK against the
//! drs-sim simulator (no faults, throttling, quota pressure; N = 100, 1 000, 5 000), side by side
//! with the SDK's standard retry mode as the peer baseline; then starts the Lambda's release
//! binary against a minimal Runtime API stand-in for its start-up time and peak memory. Writes
//! `BENCHMARKS.md` and `bench/wall-time.svg` at the repository root and prints the tables.
//!
//! Talks to 127.0.0.1 only; every loop and wait is bounded; everything it starts, it stops.
//!
//! ```sh
//! cargo run --release -p drs-failback-bench            # the full run, a few minutes
//! cargo run --release -p drs-failback-bench -- --quick # N = 100 and 1 000, into target/bench-quick/
//! ```

mod binary;
mod cpu;
mod markdown;
mod pipeline;
mod plot;
mod probe;
mod report;
mod verdicts;
mod workload;

use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode};
use std::time::{Duration, Instant, SystemTime};

use clap::{ArgAction, Parser};

use crate::report::{BinaryFigures, Machine, Report};
use crate::workload::{Profile, Run};

const COMMAND: &str = "cargo run --release -p drs-failback-bench";

/// Benchmark of drs-failback against drs-sim: writes BENCHMARKS.md and the plots in bench/.
#[derive(Debug, Parser)]
#[command(name = "drs-failback-bench")]
struct Args {
    /// N = 100 and 1 000 only, 7 cold starts; writes target/bench-quick/ instead of BENCHMARKS.md
    /// and bench/wall-time.svg
    #[arg(long)]
    quick: bool,
    /// Skip building and starting the release binary (start-up, memory, size)
    #[arg(long = "no-binary", action = ArgAction::SetFalse)]
    binary: bool,
    /// Skip the arm64 cross build (`cargo lambda build --release --arm64`)
    #[arg(long = "no-arm64", action = ArgAction::SetFalse)]
    arm64: bool,
    /// Run the quota-bound whole-failback scenario only and print its figures (writes nothing)
    #[arg(long = "pipeline")]
    pipeline_only: bool,
    /// Measure this Lambda binary instead of building target/release/drs-failback (to compare
    /// build profiles)
    #[arg(long, value_name = "PATH")]
    lambda_binary: Option<PathBuf>,
}

fn main() -> ExitCode {
    // Before any thread starts (set_var is not thread-safe): no SDK client built here may ever
    // probe the instance-metadata address.
    // SAFETY: single-threaded at this point; nothing reads the environment concurrently.
    unsafe { std::env::set_var("AWS_EC2_METADATA_DISABLED", "true") };
    // Help goes to stdout with code 0, a bad argument to stderr with code 2.
    let args = Args::parse();
    match bench(&args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("error: {message}");
            ExitCode::FAILURE
        }
    }
}

fn root() -> PathBuf {
    let manifest = Path::new(env!("CARGO_MANIFEST_DIR"));
    manifest.parent().unwrap_or(manifest).to_path_buf()
}

fn bench(args: &Args) -> Result<(), String> {
    let root = root();
    let started = Instant::now();
    let load_before = load_average();
    // The tree measured: taken now, as others may commit while the benchmark runs.
    let commit = command_line("git", &["describe", "--always", "--dirty"], &root)
        .unwrap_or_else(|| "unknown".into());
    if args.pipeline_only {
        let p = pipeline::run()?;
        println!(
            "pipeline N = {}: {:.1} min simulated, ideal {:.1} min, {:.1}% of its throughput, {} rounds, {} tracking calls, {} succeeded, {} failed, complete {}; reads {:?}",
            pipeline::N,
            p.wall.as_secs_f64() / 60.0,
            p.ideal.as_secs_f64() / 60.0,
            p.throughput() * 100.0,
            p.rounds,
            p.tracking_calls,
            p.succeeded,
            p.failed,
            p.complete,
            p.reads
        );
        return Ok(());
    }
    let pacer = probe::probe();
    eprint!(
        "pipeline        N = {:<5} quota-bound, tracked to the end ",
        pipeline::N
    );
    let pipeline = pipeline::run();
    match &pipeline {
        Ok(p) => eprintln!(
            "{:.0} min simulated, ideal {:.0} min, {:.1}% of its throughput, {} tracking calls",
            p.wall.as_secs_f64() / 60.0,
            p.ideal.as_secs_f64() / 60.0,
            p.throughput() * 100.0,
            p.tracking_calls
        ),
        Err(e) => eprintln!("failed: {e}"),
    }
    let ns: Vec<usize> = if args.quick {
        vec![100, 1000]
    } else {
        vec![100, 1000, 5000]
    };
    let starts = if args.quick { 7 } else { 21 };
    let largest = ns.iter().copied().max().unwrap_or(0);
    let (markdown_path, svg_path, svg_link, timeline_path, timeline_link) = if args.quick {
        let dir = binary::target_dir(&root).join("bench-quick");
        std::fs::create_dir_all(&dir).map_err(|e| format!("{}: {e}", dir.display()))?;
        (
            dir.join("BENCHMARKS.md"),
            dir.join("wall-time.svg"),
            "wall-time.svg",
            dir.join("launch-timeline.svg"),
            "launch-timeline.svg",
        )
    } else {
        (
            root.join("BENCHMARKS.md"),
            root.join("bench").join("wall-time.svg"),
            "bench/wall-time.svg",
            root.join("bench").join("launch-timeline.svg"),
            "bench/launch-timeline.svg",
        )
    };

    // The simulator and the Runtime API stand-in get their own thread, so the handler's thread
    // (current-thread runtime, as in the Lambda binary) runs nothing else.
    let infra = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .thread_name("bench-sim")
        .enable_all()
        .build()
        .map_err(|e| format!("cannot start a runtime: {e}"))?;
    let handler_rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| format!("cannot start a runtime: {e}"))?;

    // The binary first: its build is the slow part, and start-up is best timed before the
    // workloads have warmed anything.
    let mut build_time = Duration::ZERO;
    let figures = if args.binary {
        binary_figures(&root, &infra, starts, args, &mut build_time)
    } else {
        Err("skipped (--no-binary)".to_owned())
    };

    let mut runs: Vec<Run> = Vec::new();
    let mut failures = Vec::new();
    for profile in Profile::ALL {
        for &n in &ns {
            for &variant in profile.variants() {
                let mut repeated = Vec::new();
                for repetition in 1..=workload::repetitions(profile) {
                    eprint!(
                        "{:<15} N = {n:<5} {:<29} #{repetition} ",
                        profile.name(),
                        variant.name()
                    );
                    match workload::run(&infra, &handler_rt, profile, variant, n) {
                        Ok(run) => {
                            eprintln!(
                                "{:>7.2} s  ideal {:>6.2} s  {} calls, {:.1}% wasted, {} launched",
                                run.wall.as_secs_f64(),
                                run.ideal.as_secs_f64(),
                                run.total_calls(),
                                run.wasted_share() * 100.0,
                                run.launched
                            );
                            repeated.push(run);
                        }
                        Err(e) => {
                            eprintln!("failed: {e}");
                            failures.push(format!(
                                "{} N = {n} {} #{repetition}: {e}",
                                profile.name(),
                                variant.name()
                            ));
                        }
                    }
                }
                runs.extend(workload::median(repeated));
            }
        }
    }
    drop(handler_rt);
    infra.shutdown_timeout(Duration::from_secs(2));

    let mut machine = machine(&root);
    machine.load_before = load_before;
    machine.commit = commit;
    let profile_release = profile_release(&root);
    let report = Report {
        quick: args.quick,
        command: if args.quick {
            "cargo run --release -p drs-failback-bench -- --quick"
        } else {
            COMMAND
        },
        machine: &machine,
        ns: &ns,
        runs: &runs,
        failures: &failures,
        binary: figures.as_ref().map_err(Clone::clone),
        profile_release: &profile_release,
        svg_path: svg_link,
        timeline_path: timeline_link,
        pacer: &pacer,
        pipeline: pipeline.as_ref().map_err(Clone::clone),
        bench_time: started.elapsed(),
        measure_time: started.elapsed().saturating_sub(build_time),
    };
    std::fs::write(&svg_path, plot::wall_time_svg(&runs, &ns))
        .map_err(|e| format!("{}: {e}", svg_path.display()))?;
    if let Some(svg) = plot::launch_timeline_svg(&runs, largest) {
        std::fs::write(&timeline_path, svg)
            .map_err(|e| format!("{}: {e}", timeline_path.display()))?;
    }
    std::fs::write(&markdown_path, markdown::markdown(&report))
        .map_err(|e| format!("{}: {e}", markdown_path.display()))?;
    println!("{}", verdicts::summary(&report));
    println!(
        "wrote {} and {}",
        markdown_path.display(),
        svg_path.display()
    );
    if failures.is_empty() {
        Ok(())
    } else {
        Err(format!("{} runs failed", failures.len()))
    }
}

fn binary_figures(
    root: &Path,
    infra: &tokio::runtime::Runtime,
    starts: usize,
    args: &Args,
    build_time: &mut Duration,
) -> Result<BinaryFigures, String> {
    let building = Instant::now();
    let path = match &args.lambda_binary {
        Some(path) => path.clone(),
        None => binary::build(root)?,
    };
    *build_time += building.elapsed();
    let size = binary::size(&path, &binary::target_dir(root).join("bench-scratch"));
    eprintln!("start-up: {starts} cold starts of {}", path.display());
    let startup = binary::startups(infra, &path, starts, &[]);
    eprintln!("start-up without the system's root certificates: {starts} cold starts");
    let startup_without_certificates =
        binary::startups(infra, &path, starts, &binary::without_system_certificates());
    let rss = [250, 5000]
        .into_iter()
        .map(|n| {
            eprintln!("peak RSS: one invocation of N = {n}");
            binary::peak_rss(infra, &path, n)
        })
        .collect();
    let arm64 = if args.arm64 {
        let building = Instant::now();
        let arm64 = binary::arm64(root);
        *build_time += building.elapsed();
        arm64
    } else {
        binary::Arm64::NotMeasured {
            cause: "skipped in this run (--no-arm64)".into(),
        }
    };
    Ok(BinaryFigures {
        path: path
            .strip_prefix(root)
            .unwrap_or(&path)
            .display()
            .to_string(),
        size,
        startup,
        startup_without_certificates,
        rss,
        arm64,
    })
}

fn command_line(program: &str, args: &[&str], dir: &Path) -> Option<String> {
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

fn machine(root: &Path) -> Machine {
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
    let commit = command_line("git", &["describe", "--always", "--dirty"], root)
        .unwrap_or_else(|| "unknown".into());
    Machine {
        cpu,
        cores: std::thread::available_parallelism().map_or(0, |n| n.get()),
        memory,
        kernel,
        rustc,
        commit,
        date: utc_now(),
        load_before: String::new(),
        load_after: load_average(),
    }
}

fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .ok()
        .map(|l| l.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_else(|| "unknown".to_owned())
}

/// The `[profile.release]` section of the root Cargo.toml, as written.
fn profile_release(root: &Path) -> String {
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

fn utc_now() -> String {
    // "2026-11-27 12:55" from the simulator's "2026-11-27T12:55:07.123Z"
    drs_sim::iso8601(SystemTime::now())
        .get(..16)
        .unwrap_or_default()
        .replace('T', " ")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(args: &[&str]) -> Result<Args, clap::Error> {
        Args::try_parse_from(std::iter::once("drs-failback-bench").chain(args.iter().copied()))
    }

    #[test]
    fn arguments() {
        let full = parse(&[]).unwrap();
        assert!(!full.quick && full.binary && full.arm64 && !full.pipeline_only);
        assert_eq!(full.lambda_binary, None);
        let quick = parse(&["--quick", "--no-binary", "--no-arm64", "--pipeline"]).unwrap();
        assert!(quick.quick && !quick.binary && !quick.arm64 && quick.pipeline_only);
        let other = parse(&["--lambda-binary", "/tmp/bootstrap"]).unwrap();
        assert_eq!(other.lambda_binary, Some(PathBuf::from("/tmp/bootstrap")));
        for bad in [&["--lambda-binary"][..], &["--bogus"], &["extra"]] {
            assert_eq!(parse(bad).unwrap_err().exit_code(), 2, "{bad:?}");
        }
    }
}
