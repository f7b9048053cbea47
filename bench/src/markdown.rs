//! BENCHMARKS.md: the text is the template `templates/BENCHMARKS.md.j2`; this hands it the
//! figures, each formatted here as the report shows it (a template would print floats its own
//! way), and the verdicts.

use std::time::Duration;

use drs_sim::Operation;
use minijinja::syntax::SyntaxConfig;
use minijinja::value::{Serde, Value};
use minijinja::{Environment, UndefinedBehavior, context};

use crate::binary::{Arm64, Rss, Startup};
use crate::pipeline::{self, Pipeline};
use crate::probe::PacerProbe;
use crate::readiness::{self, Readiness};
use crate::report::*;
use crate::targets::{self as across, Targets};
use crate::verdicts::{causes, targets};
use crate::workload::{
    self, BURST, CONCURRENCY, DEADLINE, IDS_PER_READ, JOB_PENDING, JOB_STARTED, LATENCY, PER_JOB,
    POLL_SECONDS, Profile, QUOTA_JOBS, QUOTA_SERVERS, RAISED_QUOTAS, RATE_PER_SECOND, Run, Variant,
};

const TEMPLATE: &str = include_str!("../templates/BENCHMARKS.md.j2");

/// The report as BENCHMARKS.md. Errs only if the template is broken, which the tests would show.
pub fn markdown(report: &Report) -> Result<String, String> {
    let mut env = Environment::new();
    // A misspelt name in the template is an error, not an empty cell.
    env.set_undefined_behavior(UndefinedBehavior::Strict);
    let syntax = SyntaxConfig::builder()
        .trim_blocks(true)
        .lstrip_blocks(true)
        .keep_trailing_newline(true)
        .build();
    syntax
        .and_then(|syntax| {
            env.set_syntax(syntax);
            env.template_from_named_str("BENCHMARKS.md.j2", TEMPLATE)?
                .render(view(report))
        })
        .map_err(|e| format!("templates/BENCHMARKS.md.j2: {e:#}"))
}

/// What the template is given.
fn view(report: &Report) -> Value {
    let of = |profile: Profile| report.runs.iter().filter(move |r| r.profile == profile);
    context! {
        quick => report.quick,
        ns => format!("{:?}", report.ns),
        command => &report.command,
        svg_path => &report.svg_path,
        timeline_path => &report.timeline_path,
        bench_seconds => format!("{:.0}", report.bench_time.as_secs_f64()),
        measure_seconds => format!("{:.0}", report.measure_time.as_secs_f64()),
        machine => Serde(&report.machine),
        profile_release => report.profile_release.replace('\n', " "),
        failures => Serde(&report.failures),
        targets => Serde(targets(report)),
        causes => Serde(causes(report)),
        c => constants(),
        profiles => Profile::ALL.into_iter().map(profile_row).collect::<Value>(),
        starts => report
            .binary
            .as_ref()
            .ok()
            .and_then(|b| b.startup.as_ref().ok())
            .map_or(0, |s| s.times.len() + s.failures),
        runs => report.runs.iter().map(run_row).collect::<Value>(),
        largest => report.ns.iter().copied().max().unwrap_or(0),
        throttling => of(Profile::Throttling).map(pacing_row).collect::<Value>(),
        pacer => pacer(&report.pacer),
        quota => of(Profile::QuotaPressure).map(quota_row).collect::<Value>(),
        pipeline => report.pipeline.as_ref().ok().map(pipeline),
        pipeline_error => report.pipeline.as_ref().err(),
        readiness => report.readiness.as_ref().ok().map(readiness),
        readiness_error => report.readiness.as_ref().err(),
        places => report.targets.as_ref().ok().map(places),
        places_error => report.targets.as_ref().err(),
        binary => report.binary.as_ref().ok().map(binary),
        binary_error => report.binary.as_ref().err(),
    }
}

/// The workloads' settings the method describes.
fn constants() -> Value {
    context! {
        deadline_s => DEADLINE.as_secs(),
        latency_ms => LATENCY.as_millis(),
        raised_servers => RAISED_QUOTAS.servers_in_active_jobs,
        raised_jobs => RAISED_QUOTAS.active_jobs,
        // As Rust prints it: 2, not 2.0.
        rate => RATE_PER_SECOND.to_string(),
        burst => BURST,
        quota_servers => QUOTA_SERVERS,
        quota_jobs => QUOTA_JOBS,
        job_pending_s => JOB_PENDING.as_secs(),
        job_started_s => JOB_STARTED.as_secs(),
        job_s => (JOB_PENDING + JOB_STARTED).as_secs(),
        per_job => PER_JOB,
        ids_per_read => IDS_PER_READ,
        concurrency => CONCURRENCY,
        poll_s => POLL_SECONDS,
    }
}

fn profile_row(profile: Profile) -> Value {
    let settings: Vec<String> = workload::settings(profile, Variant::Project)
        .iter()
        .map(|(k, v)| format!("`{k}={v}`"))
        .collect();
    context! {
        key => Serde(profile),
        name => profile.name(),
        settings => settings.join(" "),
    }
}

/// A run's line in the wall-time and the calls tables.
fn run_row(run: &Run) -> Value {
    context! {
        profile => run.profile.name(),
        n => run.n,
        variant => run.variant.name(),
        wall => secs(run.wall),
        ideal => secs(run.ideal),
        ratio => format!("{:.2}", run.ratio()),
        outcome => outcome(run),
        handler_cpu => secs(run.handler_cpu),
        process_cpu => secs(run.process_cpu),
        spread => spread(run),
        launches => calls_cell(run, Operation::StartFailbackLaunch),
        instance_reads => calls_cell(run, Operation::DescribeRecoveryInstances),
        job_reads => calls_cell(run, Operation::DescribeJobs),
        puts => calls_cell(run, Operation::PutEvents),
        calls => run.total_calls(),
        wasted => pct(run.wasted_share()),
    }
}

/// A throttled run's launches over time.
fn pacing_row(run: &Run) -> Value {
    let launches = run.op(Operation::StartFailbackLaunch);
    let t = &run.timeline;
    context! {
        n => run.n,
        variant => run.variant.name(),
        calls => launches.total,
        throttled => launches.throttled,
        first_second => t.throttled_first_second,
        admitted_rate => t.admitted_rate.map_or("—".into(), |r| format!("{r:.2}")),
        first_half => t.throttled_first_half,
        second_half => t.throttled_second_half,
        second_half_calls => t.calls_second_half,
        before_first_launch => secs(Duration::from_millis(t.before_first_launch_ms)),
        launch_window => secs(Duration::from_millis(t.launch_window_ms)),
        wall => secs(run.wall),
        outcome => outcome(run),
    }
}

/// The pacer driven alone.
fn pacer(probe: &PacerProbe) -> Value {
    let rate = |r: Option<f64>| r.map_or("none".to_owned(), |r| format!("{r:.2}/s"));
    let burst: Vec<String> = probe.burst.iter().map(|r| rate(*r)).collect();
    context! {
        throttled_together => CONCURRENCY.saturating_sub(BURST as usize),
        after_first_round => rate(probe.after_first_round),
        climb => match (probe.climb_calls, probe.climb_seconds) {
            (Some(calls), Some(seconds)) => Some(format!("{calls} ({seconds:.1} s)")),
            _ => None,
        },
        burst_throttles => probe.burst.len().saturating_sub(1),
        burst => burst.join(" → "),
    }
}

/// A run under quota pressure, wave by wave.
fn quota_row(run: &Run) -> Value {
    context! {
        n => run.n,
        variant => run.variant.name(),
        waves => workload::waves(run.n),
        job_reads => run.op(Operation::DescribeJobs).total,
        job_reads_minimum => run.minimum.describe_jobs,
        refused => run.op(Operation::StartFailbackLaunch).refused,
        wall => secs(run.wall),
        ideal => secs(run.ideal),
        ratio => format!("{:.2}", run.ratio()),
        outcome => outcome(run),
    }
}

/// Across accounts and regions.
fn places(t: &Targets) -> Value {
    context! {
        targets => across::TARGETS,
        per_target => across::PER_TARGET,
        alone => format!("{:.1}", t.alone.as_secs_f64() / 60.0),
        all => format!("{:.1}", t.all.as_secs_f64() / 60.0),
        ratio => format!("{:.2}", t.ratio()),
        minimum => Targets::minimum_launches(),
        alone_launches => t.alone_launches,
        calls => t.calls.iter().map(|c| context! {
            target => c.target.clone(),
            launches => c.launches,
            instance_reads => c.instance_reads,
            job_reads => c.job_reads,
        }).collect::<Vec<_>>(),
        assume_roles => t.assume_roles,
        succeeded => t.succeeded,
        complete => t.complete,
        peak_rss_mb => format!("{:.1}", t.peak_rss_mb),
    }
}

/// The pipeline with readiness arriving over time.
fn readiness(r: &Readiness) -> Value {
    context! {
        n => readiness::N,
        spread_hours => format!("{:.0}", readiness::SPREAD.as_secs_f64() / 3600.0),
        wait_hours => format!("{:.0}", readiness::WAIT.as_secs_f64() / 3600.0),
        track_s => pipeline::TRACK_INTERVAL.as_secs(),
        launched => r.launched,
        succeeded => r.succeeded,
        complete => r.complete,
        median => r.quantile(0.5),
        p95 => r.quantile(0.95),
        max => r.max(),
        held => r.held_by_quota,
        permitted_median => r.permitted_quantile(0.5),
        permitted_p95 => r.permitted_quantile(0.95),
        permitted_max => r.permitted_max(),
        minutes => format!("{:.1}", r.wall.as_secs_f64() / 60.0),
        rounds => r.rounds,
        tracking_calls => r.tracking_calls,
        instance_reads => r.instance_reads,
    }
}

/// The quota-bound whole failback.
fn pipeline(p: &Pipeline) -> Value {
    let job = pipeline::JOB.pending + pipeline::JOB.started;
    let reads = p.reads.iter().map(|(operation, calls)| {
        context! {
            operation => operation.as_str(),
            calls => *calls,
            per_minute => format!("{:.2}", p.per_minute(*calls)),
        }
    });
    context! {
        n => pipeline::N,
        servers_in_flight => pipeline::SERVERS_IN_FLIGHT,
        per_job => pipeline::PER_JOB,
        job_minutes => format!("{:.1}", job.as_secs_f64() / 60.0),
        track_s => pipeline::TRACK_INTERVAL.as_secs(),
        call_ms => pipeline::CALL_LATENCY.as_millis(),
        minutes => format!("{:.1}", p.wall.as_secs_f64() / 60.0),
        ideal_minutes => format!("{:.1}", p.ideal.as_secs_f64() / 60.0),
        waves => pipeline::N.div_ceil(pipeline::SERVERS_IN_FLIGHT),
        throughput => pct(p.throughput()),
        rounds => p.rounds,
        tracking_calls => p.tracking_calls,
        tracking_per_minute => format!("{:.2}", p.per_minute(p.tracking_calls)),
        succeeded => p.succeeded,
        failed => p.failed,
        complete => p.complete,
        reads => reads.collect::<Value>(),
    }
}

/// The release binary's size, start-up and memory.
fn binary(b: &BinaryFigures) -> Value {
    let (arm64, arm64_cause) = match &b.arm64 {
        Arm64::Measured { bytes } => (Some(mb_text(*bytes)), None),
        Arm64::NotMeasured { cause } => (None, Some(cause.as_str())),
    };
    let startup = b.startup.as_ref().ok();
    context! {
        path => &b.path,
        size => mb_text(b.size.bytes),
        stripped => b.size.stripped.map(mb_text),
        startup => startup.and_then(|s| cold_starts(s, b.startup_without_certificates.as_ref().ok())),
        startup_error => b.startup.as_ref().err(),
        certificate_entries => b.certificate_entries,
        rss => b.rss.iter().map(rss_row).collect::<Value>(),
        arm64 => arm64,
        arm64_cause => arm64_cause,
    }
}

/// Cold starts, when any completed; and without the system's root certificates, against them.
fn cold_starts(s: &Startup, without_certificates: Option<&Startup>) -> Option<Value> {
    let mut sorted = s.times.clone();
    sorted.sort();
    let (first, last) = (*sorted.first()?, *sorted.last()?);
    let p = |q| percentile(&sorted, q).map_or("—".into(), ms);
    let median = percentile(&sorted, 50.0).unwrap_or_default();
    let mut idle = s.idle_rss_kb.clone();
    idle.sort_unstable();
    let every: Vec<String> = s.times.iter().map(|t| ms(*t)).collect();
    Some(context! {
        count => sorted.len(),
        median => p(50.0),
        p90 => p(90.0),
        min => ms(first),
        max => ms(last),
        failures => s.failures,
        idle => idle.get(idle.len() / 2).map(|kb| mb_text(kb * 1024)),
        every => every.join(", "),
        bare => without_certificates.and_then(|bare| bare_starts(bare, median)),
    })
}

fn bare_starts(bare: &Startup, median: Duration) -> Option<Value> {
    let mut sorted = bare.times.clone();
    sorted.sort();
    let bare_median = percentile(&sorted, 50.0)?;
    let saved = median.saturating_sub(bare_median);
    Some(context! {
        count => sorted.len(),
        median => ms(bare_median),
        p90 => percentile(&sorted, 90.0).map_or("—".into(), ms),
        saved => ms(saved),
        share => format!("{:.0}", 100.0 * saved.as_secs_f64() / median.as_secs_f64().max(1e-9)),
    })
}

/// A peak-memory measurement, or why there is none.
fn rss_row(rss: &Result<Rss, String>) -> Value {
    match rss {
        Ok(r) => context! {
            error => Value::from(()),
            n => r.n,
            peak => mb_text(r.peak_kb * 1024),
            launched => r.launched,
            launches => r.launches,
            invocation => secs(r.invocation),
        },
        Err(e) => context! { error => e },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

    /// What BENCHMARKS.md was written from, reconstructed from it (the file's `_note` says how).
    fn recorded() -> Report {
        serde_json::from_str(include_str!("../testdata/results.json")).unwrap()
    }

    /// `BENCH_UPDATE_EXPECTED=1` writes what the code renders as the expected text instead.
    fn expect(name: &str, rendered: &str) {
        let path = Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("testdata")
            .join(name);
        if std::env::var_os("BENCH_UPDATE_EXPECTED").is_some() {
            std::fs::write(&path, rendered).unwrap();
        }
        let expected = std::fs::read_to_string(&path).unwrap();
        assert!(
            rendered == expected,
            "{name} differs: BENCH_UPDATE_EXPECTED=1 and diff"
        );
    }

    /// The recorded run gone wrong wherever the report has words for it: a quick run with a
    /// failed run, targets missed and their causes, outcomes of every kind, figures not measured.
    fn troubled() -> Report {
        let mut report = recorded();
        report.quick = true;
        report.command = "cargo run --release -p drs-failback-bench -- --quick".into();
        report.ns = vec![100, 1000, 5000];
        report.failures =
            vec!["throttling N = 1000 baseline: SDK standard retry #2: timed out".into()];
        report.profile_release = String::new();
        report.pipeline = Err("the simulator did not start".into());
        report.pacer.climb_calls = None;
        if let Ok(binary) = &mut report.binary {
            binary.size.stripped = None;
            binary.startup = Err("the Runtime API stand-in did not start".into());
            binary.rss[0].as_mut().unwrap().launched = 200;
            binary.rss[1] = Err("no answer within 60 s".into());
            binary.arm64 = Arm64::Measured { bytes: 8_400_000 };
        }
        for run in &mut report.runs {
            match (run.profile, run.variant, run.n) {
                (Profile::Throttling, Variant::Project, _) => slow_and_wasteful(run),
                (Profile::NoFaults, Variant::Project, 100) => {
                    run.rejected = 1;
                    run.skipped = 2;
                    run.in_two_jobs = 1;
                    run.deferred = 3;
                    run.deferred_reasons = [("QUOTA".to_owned(), 3)].into();
                }
                (Profile::NoFaults, Variant::Project, 1000) => {
                    run.calls[2].1.total += 1;
                    run.calls[1].1.failed = 1;
                    run.calls[0].1.refused = 2;
                }
                (Profile::QuotaPressure, Variant::Baseline, 100) => {
                    run.error = Some("the deadline passed".into())
                }
                _ => {}
            }
        }
        report
    }

    /// Reads one after another, a launch window a third over the ideal, a quarter of the calls
    /// throttled.
    fn slow_and_wasteful(run: &mut crate::workload::Run) {
        let reads = 1 + run.minimum.describe_instances as u64;
        run.wall = run.ideal.mul_f64(1.4);
        run.timeline.before_first_launch_ms = 50 * reads;
        let ideal_window = run.minimum.launches.saturating_sub(2) as u64 * 500;
        run.timeline.launch_window_ms = ideal_window * 4 / 3;
        run.timeline.to_last_launch_ms = 50 * reads + ideal_window * 4 / 3;
        run.timeline.throttle_bursts = 3;
        run.timeline.admitted_rate = Some(1.5);
        let throttled = run.total_calls() / 3;
        run.calls[0].1.total += throttled;
        run.calls[0].1.throttled += throttled;
        let (wall, wasted) = (run.wall, run.wasted_share());
        for repeat in &mut run.repeats {
            repeat.wall = wall;
            repeat.wasted = wasted;
        }
    }

    /// Without the binary (`--no-binary`), a pipeline that did not finish, nothing throttled.
    fn unmeasured() -> Report {
        let mut report = recorded();
        report.binary = Err("skipped (--no-binary)".into());
        if let Ok(pipeline) = &mut report.pipeline {
            pipeline.complete = false;
        }
        report.pacer = Default::default();
        report.runs.retain(|run| run.profile != Profile::Throttling);
        report
    }

    #[test]
    fn the_report_of_the_recorded_run() {
        expect("BENCHMARKS.md", &markdown(&recorded()).unwrap());
    }

    #[test]
    fn a_troubled_run_says_what_went_wrong() {
        expect("troubled.md", &markdown(&troubled()).unwrap());
    }

    #[test]
    fn figures_not_measured_are_said_so() {
        expect("unmeasured.md", &markdown(&unmeasured()).unwrap());
    }

    #[test]
    fn results_read_back_render_the_same() {
        let report = troubled();
        let json = serde_json::to_string(&report).unwrap();
        let back: Report = serde_json::from_str(&json).unwrap();
        assert_eq!(markdown(&back), markdown(&report));
    }
}
