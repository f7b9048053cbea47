//! `drs-failback-bench`: drives the real drs-failback handler through the real AWS SDK against the
//! drs-sim simulator (no faults, throttling, quota pressure; N = 100, 1 000, 5 000), side by side
//! with the SDK's standard retry mode as the peer baseline; then starts the Lambda's release
//! binary against a minimal Runtime API stand-in for its start-up time and peak memory. Writes
//! `BENCHMARKS.md`, its plots in `bench/` and the results they are written from
//! (`bench/results.json`), and prints the verdicts.
//!
//! Talks to 127.0.0.1 only; every loop and wait is bounded; everything it starts, it stops.
//!
//! ```sh
//! cargo run --release -p drs-failback-bench            # the full run, a few minutes
//! cargo run --release -p drs-failback-bench -- --quick # N = 100 and 1 000, into target/bench-quick/
//! cargo run -p drs-failback-bench -- --render          # BENCHMARKS.md again from bench/results.json
//! ```

mod binary;
mod boto3;
mod cpu;
mod machine;
mod markdown;
mod pipeline;
mod plot;
mod probe;
mod readiness;
mod report;
mod targets;
mod verdicts;
mod workload;

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::{Duration, Instant};

use clap::{ArgAction, Parser};

use crate::report::{BinaryFigures, Report};
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
    /// Run the scenario with readiness arriving over time only and print its figures (writes
    /// nothing)
    #[arg(long = "readiness")]
    readiness_only: bool,
    /// Run the scenario across 4 accounts and regions only and print its figures (writes nothing)
    #[arg(long = "targets")]
    targets_only: bool,
    /// Run the start-to-exit comparison with a boto3 Lambda only (the release binary built, or
    /// --lambda-binary) and print its figures (writes nothing)
    #[arg(long = "boto3")]
    boto3_only: bool,
    /// Measure this Lambda binary instead of building target/release/drs-failback (to compare
    /// build profiles)
    #[arg(long, value_name = "PATH")]
    lambda_binary: Option<PathBuf>,
    /// Measure nothing: write the report and plots again from the results the last run recorded
    /// (bench/results.json; with --quick, target/bench-quick/results.json)
    #[arg(long, conflicts_with_all = ["pipeline_only", "readiness_only", "lambda_binary"])]
    render: bool,
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

/// Where a run writes: the report, its plots and the results they are written from; and the
/// plots' paths as the report links them.
struct Outputs {
    markdown: PathBuf,
    results: PathBuf,
    svg: PathBuf,
    timeline: PathBuf,
    svg_link: &'static str,
    timeline_link: &'static str,
}

impl Outputs {
    fn of(root: &Path, quick: bool) -> Result<Outputs, String> {
        if !quick {
            let bench = root.join("bench");
            return Ok(Outputs {
                markdown: root.join("BENCHMARKS.md"),
                results: bench.join("results.json"),
                svg: bench.join("wall-time.svg"),
                timeline: bench.join("launch-timeline.svg"),
                svg_link: "bench/wall-time.svg",
                timeline_link: "bench/launch-timeline.svg",
            });
        }
        let dir = binary::target_dir(root).join("bench-quick");
        std::fs::create_dir_all(&dir).map_err(|e| format!("{}: {e}", dir.display()))?;
        Ok(Outputs {
            markdown: dir.join("BENCHMARKS.md"),
            results: dir.join("results.json"),
            svg: dir.join("wall-time.svg"),
            timeline: dir.join("launch-timeline.svg"),
            svg_link: "wall-time.svg",
            timeline_link: "launch-timeline.svg",
        })
    }
}

fn bench(args: &Args) -> Result<(), String> {
    let root = root();
    if args.pipeline_only {
        return print_pipeline();
    }
    if args.targets_only {
        return measure_targets().map(|_| ());
    }
    if args.readiness_only {
        return measure_readiness().map(|_| ());
    }
    if args.boto3_only {
        let path = match &args.lambda_binary {
            Some(path) => path.clone(),
            None => binary::build(&root)?,
        };
        let comparison = measure_boto3(&root, &path, args.quick)?;
        for (i, pair) in comparison.pairs.iter().enumerate() {
            println!(
                "pair {:>2} ({} first): Rust {} ms, boto3 {} ms, {:.1}×",
                i + 1,
                if pair.rust_first { "Rust" } else { "boto3" },
                report::ms(pair.rust),
                report::ms(pair.boto3),
                pair.ratio()
            );
        }
        return Ok(());
    }
    let outputs = Outputs::of(&root, args.quick)?;
    let report = if args.render {
        let json = std::fs::read_to_string(&outputs.results)
            .map_err(|e| format!("{}: {e}", outputs.results.display()))?;
        serde_json::from_str(&json).map_err(|e| format!("{}: {e}", outputs.results.display()))?
    } else {
        let report = measure(&root, args, &outputs)?;
        let json = serde_json::to_string_pretty(&report).map_err(|e| e.to_string())?;
        write(&outputs.results, &json)?;
        report
    };
    write(
        &outputs.svg,
        &plot::wall_time_svg(&report.runs, &report.ns)?,
    )?;
    let largest = report.ns.iter().copied().max().unwrap_or(0);
    if let Some(svg) = plot::launch_timeline_svg(&report.runs, largest)? {
        write(&outputs.timeline, &svg)?;
    }
    write(&outputs.markdown, &markdown::markdown(&report)?)?;
    println!("{}", verdicts::summary(&report));
    println!(
        "wrote {} and {}",
        outputs.markdown.display(),
        outputs.svg.display()
    );
    if args.render || report.failures.is_empty() {
        Ok(())
    } else {
        Err(format!("{} runs failed", report.failures.len()))
    }
}

fn write(path: &Path, contents: &str) -> Result<(), String> {
    std::fs::write(path, contents).map_err(|e| format!("{}: {e}", path.display()))
}

/// `--pipeline`: the quota-bound whole failback alone, on the terminal.
fn print_pipeline() -> Result<(), String> {
    for (what, p) in [
        ("fixed-length jobs", pipeline::run()?),
        ("jobs of varying length", pipeline::run_varying()?),
    ] {
        println!(
            "pipeline N = {}, {what}: {:.1} min simulated, ideal {:.1} min, {:.1}% of its throughput, {} rounds, {} tracking calls ({:.2}/min), {} succeeded, {} failed, complete {}; reads {:?}",
            pipeline::N,
            p.wall.as_secs_f64() / 60.0,
            p.ideal.as_secs_f64() / 60.0,
            p.throughput() * 100.0,
            p.rounds,
            p.tracking_calls,
            p.per_minute(p.tracking_calls),
            p.succeeded,
            p.failed,
            p.complete,
            p.reads
        );
    }
    Ok(())
}

/// Every measurement, in the order that keeps them apart: the pacer and the pipeline (paused
/// clocks), the binary (before the workloads warm anything), then the workloads in real time.
fn measure(root: &Path, args: &Args, outputs: &Outputs) -> Result<Report, String> {
    let started = Instant::now();
    let load_before = machine::load_average();
    let commit = machine::commit(root);
    let pacer = probe::probe();
    let pipeline = measure_pipeline();
    let pipeline_varying = measure_pipeline_varying();
    let readiness = measure_readiness();
    let targets = measure_targets();
    let ns: Vec<usize> = if args.quick {
        vec![100, 1000]
    } else {
        vec![100, 1000, 5000]
    };
    let starts = if args.quick { 7 } else { 21 };

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
    let binary = if args.binary {
        binary_figures(root, &infra, starts, args, &mut build_time)
    } else {
        Err("skipped (--no-binary)".to_owned())
    };
    // After the start-up figures, with the binary they measured; before the workloads.
    let boto3 = Some(match &binary {
        Ok(b) => measure_boto3(root, &root.join(&b.path), args.quick),
        Err(e) => Err(format!("no release binary: {e}")),
    });
    let (runs, failures) = run_workloads(&infra, &handler_rt, &ns);
    drop(handler_rt);
    infra.shutdown_timeout(Duration::from_secs(2));

    let mut machine = machine::machine(root);
    machine.load_before = load_before;
    machine.commit = commit;
    Ok(Report {
        quick: args.quick,
        command: if args.quick {
            format!("{COMMAND} -- --quick")
        } else {
            COMMAND.to_owned()
        },
        machine,
        ns,
        runs,
        failures,
        binary,
        profile_release: machine::profile_release(root),
        svg_path: outputs.svg_link.to_owned(),
        timeline_path: outputs.timeline_link.to_owned(),
        pacer,
        pipeline,
        pipeline_varying: Some(pipeline_varying),
        readiness,
        targets,
        boto3,
        bench_time: started.elapsed(),
        measure_time: started.elapsed().saturating_sub(build_time),
    })
}

fn measure_pipeline() -> Result<pipeline::Pipeline, String> {
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
    pipeline
}

fn measure_pipeline_varying() -> Result<pipeline::Pipeline, String> {
    let (shortest, longest) = pipeline::varying_range();
    eprint!(
        "pipeline        N = {:<5} jobs of {:.0}–{:.0} min ",
        pipeline::N,
        shortest.as_secs_f64() / 60.0,
        longest.as_secs_f64() / 60.0
    );
    let pipeline = pipeline::run_varying();
    match &pipeline {
        Ok(p) => eprintln!(
            "{:.0} min simulated, ideal {:.0} min, {:.1}% of its throughput, {} tracking calls ({:.2}/min)",
            p.wall.as_secs_f64() / 60.0,
            p.ideal.as_secs_f64() / 60.0,
            p.throughput() * 100.0,
            p.tracking_calls,
            p.per_minute(p.tracking_calls)
        ),
        Err(e) => eprintln!("failed: {e}"),
    }
    pipeline
}

fn measure_targets() -> Result<targets::Targets, String> {
    eprint!(
        "targets         {} × {} instances, one step across them … ",
        targets::TARGETS,
        targets::PER_TARGET
    );
    let measured = targets::run();
    match &measured {
        Ok(t) => eprintln!(
            "alone {:.1} min, all {:.1} min ({:.2}×); launches per target {:?} (minimum {}); {} AssumeRole; {} succeeded; peak RSS {:.1} MB",
            t.alone.as_secs_f64() / 60.0,
            t.all.as_secs_f64() / 60.0,
            t.ratio(),
            t.calls.iter().map(|c| c.launches).collect::<Vec<_>>(),
            targets::Targets::minimum_launches(),
            t.assume_roles,
            t.succeeded,
            t.peak_rss_mb
        ),
        Err(e) => eprintln!("failed: {e}"),
    }
    measured
}

fn measure_readiness() -> Result<readiness::Readiness, String> {
    eprint!(
        "readiness       N = {:<5} ready over {:.0} h, waited for ",
        readiness::N,
        readiness::SPREAD.as_secs_f64() / 3600.0
    );
    let measured = readiness::run();
    match &measured {
        Ok(r) => eprintln!(
            "{} launched, after readiness: median {} s, p95 {} s, max {} s; quota permitting ({} held): median {} s, max {} s",
            r.launched,
            r.quantile(0.5),
            r.quantile(0.95),
            r.max(),
            r.held_by_quota,
            r.permitted_quantile(0.5),
            r.permitted_max()
        ),
        Err(e) => eprintln!("failed: {e}"),
    }
    measured
}

/// Start-to-exit of the release binary against a boto3 Lambda, the Runtime API unreachable.
fn measure_boto3(root: &Path, path: &Path, quick: bool) -> Result<boto3::Comparison, String> {
    let pairs = boto3::pairs(quick);
    eprint!("boto3 peer      start-to-exit, Runtime API unreachable, {pairs} pairs ");
    let measured = boto3::compare(root, path, pairs);
    match &measured {
        Ok(c) => {
            let ms = |d: Option<Duration>| d.map_or("—".into(), report::ms);
            let (min, max) = c.ratio_range().unwrap_or_default();
            eprintln!(
                "Rust median {} ms, boto3 median {} ms, ratio {:.1}× (paired median; pairs {min:.1}×–{max:.1}×, target ≥ {}×); boto3 {}, Python {}; the Rust binary ended with {}{}",
                ms(c.rust_median()),
                ms(c.boto3_median()),
                c.ratio().unwrap_or_default(),
                boto3::TARGET_RATIO,
                c.boto3,
                c.python,
                c.rust_exit,
                if c.failures.is_empty() {
                    String::new()
                } else {
                    format!("; failed: {}", c.failures.join("; "))
                }
            );
        }
        Err(e) => eprintln!("not measured: {e}"),
    }
    measured
}

/// Every profile, N and variant, repeated as the profile needs: the median runs, and what failed.
fn run_workloads(
    infra: &tokio::runtime::Runtime,
    handler_rt: &tokio::runtime::Runtime,
    ns: &[usize],
) -> (Vec<Run>, Vec<String>) {
    let mut runs: Vec<Run> = Vec::new();
    let mut failures = Vec::new();
    for profile in Profile::ALL {
        for &n in ns {
            for &variant in profile.variants() {
                let mut repeated = Vec::new();
                for repetition in 1..=workload::repetitions(profile) {
                    eprint!(
                        "{:<15} N = {n:<5} {:<29} #{repetition} ",
                        profile.name(),
                        variant.name()
                    );
                    match workload::run(infra, handler_rt, profile, variant, n) {
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
    (runs, failures)
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
        certificate_entries: machine::certificate_entries(),
    })
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
