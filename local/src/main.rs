//! `drs-failback-local`: a whole failback on this machine — the real function, with the real AWS
//! SDK clients, against the in-process simulator, driven as the state machines drive it — and
//! shown to a person. No AWS account, credentials or configuration needed: it sets its own dummy
//! ones and talks only to 127.0.0.1.

use std::io::{IsTerminal, Write};
use std::num::NonZeroUsize;
use std::process::ExitCode;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use clap::Parser;
use clap::builder::{PossibleValuesParser, TypedValueParser};
use drs_failback::config::Config;
use drs_failback::drs::Target;
use drs_failback::finish::answer::FinishAnswer;
use drs_failback::handler::Reply;
use drs_failback::plan::StepPlan;
use drs_failback_local::arc::{ArcSettings, Progress};
use drs_failback_local::fleet::{demo_fleet, demo_targets};
use drs_failback_local::plan::{Approval, PlanEnd, PlanHooks, StepReport, StepStatus, run_plan};
use drs_failback_local::show::{ProgressLine, print_table, rows};
use drs_failback_local::summary::{Header, print_summary};
use drs_sim::{FailbackState, Lifecycle, Role, SimConfig, Simulator};
use lambda_runtime::{Context, Diagnostic, LambdaEvent};
use serde_json::Value;

/// The function's timeout in `template.yaml`: each invocation gets the same deadline.
const LAMBDA_TIMEOUT: Duration = Duration::from_secs(300);
/// Jobs as long as real failbacks (ten minutes), run this many times faster.
const DEMO_LIFECYCLE: Lifecycle = Lifecycle {
    pending: Duration::from_secs(60),
    started: Duration::from_secs(540),
};
const DEMO_TIME_SCALE: f64 = 60.0;

/// A whole failback on this machine: the real function against an in-process simulator.
///
/// Runs a whole failback of the request (a launch request, or a plan of ordered steps) against an
/// in-process DRS + EventBridge simulator whose fleet holds every recovery instance the request
/// names (and three for each tag selector): step by step, launches what fits, tracks the jobs
/// until every instance has its result, launches what was deferred as jobs finish, stops the plan
/// when a step's verdict says so, and prints one row per instance. Jobs take ten simulated
/// minutes, run 60 times faster (--sim-config changes both); a step's waitAfterSeconds runs as
/// fast.
#[derive(Debug, Parser)]
#[command(
    name = "drs-failback-local",
    after_help = "Function settings come from the environment as in Lambda \
                  (MAX_INSTANCES_PER_JOB, ...); RUST_LOG=info also prints the function's JSON log \
                  lines on stderr."
)]
struct Args {
    /// Print the run's output (the state machine's, JSON) instead of the table
    #[arg(long)]
    json: bool,
    /// Print each invocation's metrics record (CloudWatch Embedded Metric Format, one JSON line)
    /// on stderr, as Lambda writes it to the log stream
    #[arg(long)]
    metrics: bool,
    /// One launch invocation only, summed up (jobs, outcomes, events)
    #[arg(long)]
    launch_only: bool,
    /// The launch of ID fails with this job log event (e.g. CONVERSION_FAIL); repeatable
    #[arg(long = "fail", value_name = "ID=EVENT", value_parser = failure)]
    failures: Vec<(String, String)>,
    /// The demo fleet's failback state
    #[arg(
        long,
        value_name = "STATE",
        default_value = "FAILBACK_READY_FOR_LAUNCH",
        value_parser = failback_state()
    )]
    state: FailbackState,
    /// Seconds between tracking calls
    #[arg(long, value_name = "S", default_value = "1", value_parser = seconds)]
    track_interval: Duration,
    /// Seconds before the run sums up with what it knows
    #[arg(long, value_name = "S", default_value = "600", value_parser = seconds)]
    time_limit: Duration,
    /// Most launch rounds per step
    #[arg(long, value_name = "N", default_value = "100")]
    max_rounds: NonZeroUsize,
    /// How a step's approval is answered [default: asked on a terminal, yes otherwise]
    #[arg(long, value_name = "ANSWER", value_parser = approval())]
    approve: Option<Approval>,
    /// The first launch's answer is lost, as if the function died after DRS took the launch; it
    /// is sent again with the same run id, as the state machine retries a crash
    #[arg(long)]
    crash_after_launch: bool,

    /// Simulator settings and faults (see sim/README.md), e.g. quotas
    #[arg(long, value_name = "FILE")]
    sim_config: Option<String>,
    /// The request: a launch request or a plan, as a payload or an event (events/ has samples)
    #[arg(value_name = "REQUEST.json")]
    request: String,
}

fn failure(value: &str) -> Result<(String, String), String> {
    let (id, event) = value
        .split_once('=')
        .ok_or(format!("{value:?}: expected ID=EVENT"))?;
    Ok((id.to_owned(), event.to_owned()))
}

fn seconds(value: &str) -> Result<Duration, String> {
    value
        .parse::<f64>()
        .ok()
        .and_then(|s| Duration::try_from_secs_f64(s).ok())
        .ok_or(format!("{value:?} is not a number of seconds"))
}

fn failback_state() -> impl TypedValueParser<Value = FailbackState> {
    PossibleValuesParser::new(FailbackState::ALL.map(FailbackState::as_str))
        .try_map(|name| FailbackState::parse(&name).ok_or("unknown failback state"))
}

fn approval() -> impl TypedValueParser<Value = Approval> {
    PossibleValuesParser::new(["yes", "no", "timeout"]).map(|answer| match answer.as_str() {
        "yes" => Approval::Given,
        "no" => Approval::Refused("refused with --approve no".into()),
        _ => Approval::TimedOut,
    })
}

fn main() -> ExitCode {
    // Before any thread starts (set_var is not thread-safe): the SDK must never probe the
    // instance-metadata address from a developer's or CI machine.
    // SAFETY: single-threaded at this point; nothing else reads the environment concurrently.
    unsafe { std::env::set_var("AWS_EC2_METADATA_DISABLED", "true") };
    // Help goes to stdout with code 0, a bad argument to stderr with code 2.
    let args = Args::parse();
    if std::env::var_os("RUST_LOG").is_some() {
        // The function's own JSON log lines, on stderr so the summary stays readable.
        let subscriber = drs_failback::telemetry::logging::json_subscriber(
            drs_failback::telemetry::logging::filter_from_env(),
            std::io::stderr,
        );
        let _ = tracing::subscriber::set_global_default(subscriber);
    }
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("cannot start the async runtime: {error}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run(args)) {
        Ok(code) => code,
        Err(message) => {
            eprintln!("error: {message}");
            ExitCode::FAILURE
        }
    }
}

async fn run(args: Args) -> Result<ExitCode, String> {
    let text = std::fs::read_to_string(&args.request)
        .map_err(|e| format!("cannot read {}: {e}", args.request))?;
    let payload: Value =
        serde_json::from_str(&text).map_err(|e| format!("{} is not JSON: {e}", args.request))?;

    let mut fleet = demo_fleet(&payload, args.state);
    let mut places = demo_targets(&payload, args.state);
    for (id, event) in &args.failures {
        let set =
            fleet.set_failure(id, event) | places.iter_mut().any(|(_, f)| f.set_failure(id, event));
        if !set {
            return Err(format!("--fail: {id} is not an instance the request names"));
        }
    }
    let mut sim_config = SimConfig {
        fleet,
        lifecycle: DEMO_LIFECYCLE,
        time_scale: DEMO_TIME_SCALE,
        ..SimConfig::default()
    };
    if let Some(path) = &args.sim_config {
        let json = std::fs::read_to_string(path).map_err(|e| format!("cannot read {path}: {e}"))?;
        sim_config
            .merge_json(&json)
            .map_err(|e| format!("{path}: {e}"))?;
    }
    // Each other account and region the plan reaches: its own DRS, and the role its account
    // grants the function (as the target stack would).
    if sim_config.targets.is_empty() {
        sim_config.targets = places
            .into_iter()
            .map(|(target, fleet)| SimConfig {
                account_id: target.account,
                region: target.region,
                fleet,
                ..sim_config.target_base()
            })
            .collect();
    }
    let mut accounts: Vec<String> = sim_config
        .targets
        .iter()
        .map(|t| t.account_id.clone())
        .collect();
    accounts.sort();
    accounts.dedup();
    if sim_config.roles.is_empty() {
        sim_config.roles = accounts
            .into_iter()
            .filter(|a| *a != sim_config.account_id)
            .map(|account_id| Role {
                account_id,
                name: "drs-failback-target".into(),
                external_id: None,
            })
            .collect();
    }
    let fleet_size = sim_config.fleet.len()
        + sim_config
            .targets
            .iter()
            .map(|t| t.fleet.len())
            .sum::<usize>();
    // The function's own account and region are the simulator's.
    let (home_account, home_region) = (sim_config.account_id.clone(), sim_config.region.clone());
    let sim = Simulator::start(sim_config)
        .await
        .map_err(|e| format!("cannot start the simulator: {e}"))?;
    let config = Config::from_lookup(|name| match name {
        "HOME_ACCOUNT_ID" => Some(home_account.clone()),
        "AWS_REGION" => Some(home_region.clone()),
        _ => std::env::var(name).ok(),
    })
    .map_err(|e| format!("invalid configuration: {e}"))?;
    let bus = config.event_bus_name.clone();
    // Each invocation's metrics record (EMF), on stderr beside the function's log lines: stdout
    // holds the tables (or the JSON output).
    let metrics = args.metrics;
    let failback = drs_failback::aws::failback(config, &sim.sdk_config().await)
        .with_metrics_output(move |line| {
            if metrics {
                eprintln!("{line}")
            }
        });

    if args.launch_only {
        let mut context = Context::default();
        context.request_id = format!("local-{}", uuid::Uuid::new_v4());
        let now_ms = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_err(|e| e.to_string())?
            .as_millis() as u64;
        context.deadline = now_ms + LAMBDA_TIMEOUT.as_millis() as u64;
        return match failback.invoke(LambdaEvent::new(payload, context)).await {
            Ok(Reply::Launch(answer)) if args.json => print_json(&answer),
            Ok(Reply::Launch(answer)) => {
                let header = Header {
                    request: &args.request,
                    endpoint: &sim.endpoint(),
                    fleet_size,
                    state: args.state.as_str(),
                    bus: &bus,
                };
                print_summary(&header, &answer, &sim.delivered_events());
                Ok(ExitCode::SUCCESS)
            }
            Ok(Reply::Track(answer)) => print_json(&answer),
            Ok(Reply::Plan(answer)) => print_json(&answer),
            Ok(Reply::StepExecution(answer)) => print_json(&answer),
            Ok(Reply::Finish(answer)) => print_json(&answer),
            Ok(Reply::StepSum(answer)) => print_json(&answer),
            Ok(Reply::Rehearsal(answer)) => print_json(&answer),
            Err(error) => refused(error.into(), args.json),
        };
    }

    let settings = ArcSettings {
        track_interval: args.track_interval,
        time_limit: args.time_limit,
        max_rounds: args.max_rounds.get(),
        invocation_timeout: LAMBDA_TIMEOUT,
        crashes_after_launch: usize::from(args.crash_after_launch),
    };
    if !args.json {
        println!(
            "drs-failback, local run of {}: {fleet_size} recovery instances, {}, simulator {}",
            args.request,
            args.state.as_str(),
            sim.endpoint()
        );
    }
    let mut hooks = Shown {
        json: args.json,
        line: ProgressLine::new(),
        groups: 0,
        lines: Vec::new(),
        approve: args.approve.clone(),
    };
    let end = run_plan(&failback, payload, &settings, DEMO_TIME_SCALE, &mut hooks).await;
    hooks.line.done();
    match end {
        Ok(PlanEnd::DryRun(plan)) if args.json => print_json(&plan),
        Ok(PlanEnd::DryRun(plan)) => {
            println!("Dry run {}: nothing launched.", plan.run_id);
            for (index, step) in plan.steps.iter().enumerate() {
                let counts = step.counts.unwrap_or_default();
                println!(
                    "  step {} {}: {} instances; would start {} jobs of {:?}; {} skipped, {} rejected",
                    index + 1,
                    step.name,
                    step.instances,
                    step.groups
                        .iter()
                        .filter_map(|g| g.planned_job_sizes.as_ref())
                        .map(Vec::len)
                        .sum::<usize>(),
                    step.groups
                        .iter()
                        .filter_map(|g| g.planned_job_sizes.clone())
                        .flatten()
                        .collect::<Vec<_>>(),
                    counts.skipped,
                    counts.rejected,
                );
            }
            Ok(ExitCode::SUCCESS)
        }
        Ok(PlanEnd::Finished(plan)) if args.json => print_json(&plan.output()),
        Ok(PlanEnd::Finished(plan)) => {
            let output = plan.output();
            let counts = &output["counts"];
            println!(
                "Run {}: {}{} — {} succeeded, {} failed, {} running, {} not launched over {} steps; {} events delivered to bus {bus:?}.",
                plan.run_id,
                if plan.complete {
                    "complete"
                } else {
                    "incomplete"
                },
                plan.halted
                    .as_ref()
                    .map(|(step, reason)| format!(" (halted at step {step}: {reason})"))
                    .unwrap_or_default(),
                counts["succeeded"],
                counts["failed"],
                counts["running"],
                counts["notLaunched"],
                plan.steps.len(),
                sim.delivered_events().len(),
            );
            Ok(ExitCode::SUCCESS)
        }
        Err(error) => refused(error.into(), args.json),
    }
}

/// The plan as a person follows it: a header and a live line per step, the step's table and
/// verdict when it ends, and the approval question.
struct Shown {
    json: bool,
    line: ProgressLine,
    /// The current step's accounts and regions, and a line for each when there are several.
    groups: usize,
    lines: Vec<Option<ProgressLine>>,
    approve: Option<Approval>,
}

impl PlanHooks for Shown {
    fn step_started(&mut self, index: usize, step: &StepPlan, steps: usize) {
        self.groups = step.groups.len();
        if !self.json {
            if index == 0 {
                println!("Plan execution: {steps} step(s), each run as its own step execution");
            }
            println!(
                "Step {}/{steps} {}: {} instances — {}",
                index + 1,
                step.name,
                step.instances,
                match step.groups.len() {
                    1 => format!("step execution s{index}-p1"),
                    n => format!(
                        "{n} accounts and regions, each its own step execution: {}",
                        step.groups
                            .iter()
                            .map(|g| g
                                .target
                                .as_ref()
                                .map_or_else(|| "own account".to_owned(), ToString::to_string))
                            .collect::<Vec<_>>()
                            .join(", ")
                    ),
                }
            );
        }
    }

    fn progress(&mut self, _: usize, group: usize, target: Option<&Target>, progress: &Progress) {
        if self.json {
            return;
        }
        match (group, target, self.groups) {
            // One account and region: the live line.
            (_, _, 0 | 1) => self.line.show(progress),
            // Several at once: a line each, prefixed with where.
            (at, target, _) => {
                while self.lines.len() <= at {
                    self.lines.push(None);
                }
                let label = target.map_or_else(|| "own account".to_owned(), ToString::to_string);
                self.lines[at]
                    .get_or_insert_with(|| ProgressLine::labeled(&label))
                    .show(progress);
            }
        }
    }

    fn step_ended(&mut self, index: usize, report: &StepReport) {
        self.line.done();
        self.line = ProgressLine::new();
        if self.json {
            return;
        }
        self.lines.clear();
        for group in &report.groups {
            println!();
            if report.groups.len() > 1 {
                let place = group
                    .target
                    .as_ref()
                    .map_or_else(|| "own account".to_owned(), ToString::to_string);
                let counts = group.finished.answer.counts;
                println!(
                    "{place}: {} succeeded, {} failed, {} running",
                    counts.succeeded, counts.failed, counts.running
                );
            }
            print_table(&rows(&group.finished.answer));
            println!();
        }
        let counts = report.sum.as_ref().map(|s| {
            let n = |k: &str| s.counts.get(k).copied().unwrap_or(0);
            (n("succeeded"), n("failed"), n("running"))
        });
        let parts = match report
            .groups
            .iter()
            .map(|g| g.finished.progress.parts)
            .max()
            .unwrap_or(1)
        {
            0 | 1 => String::new(),
            n => format!(" (in {n} step executions, handed over {} times)", n - 1),
        };
        println!(
            "Step {} {}: {}{}{}{parts}",
            index + 1,
            report.name,
            report.status.as_str(),
            counts
                .map(|(succeeded, failed, running)| format!(
                    " — {succeeded} succeeded, {failed} failed, {running} running"
                ))
                .unwrap_or_default(),
            match (&report.reason, report.status) {
                (Some(reason), StepStatus::Halted) => format!("; the plan stops: {reason}"),
                _ => String::new(),
            }
        );
        if let Some(error) = &report.error {
            println!("  {error}");
        }
    }

    fn approve(&mut self, done: &StepReport, next: &StepPlan) -> Approval {
        if let Some(answer) = &self.approve {
            if !self.json {
                println!("Approval before step {}: {answer:?} (--approve)", next.name);
            }
            return answer.clone();
        }
        if !std::io::stdin().is_terminal() {
            return Approval::Given;
        }
        print!(
            "Step {} is over. Start step {} ({} instances)? [y/N] ",
            done.name, next.name, next.instances
        );
        let _ = std::io::stdout().flush();
        let mut answer = String::new();
        let _ = std::io::stdin().read_line(&mut answer);
        if answer.trim().eq_ignore_ascii_case("y") || answer.trim().eq_ignore_ascii_case("yes") {
            Approval::Given
        } else {
            Approval::Refused("refused at the terminal".into())
        }
    }

    fn approve_finishing(&mut self, listed: &FinishAnswer) -> Approval {
        let finishing = listed.finishing.name();
        if !self.json {
            println!(
                "Finishing the failback: {finishing} {} recovery instance(s); {} not eligible",
                listed.counts.planned, listed.counts.not_eligible
            );
            for group in &listed.groups {
                println!(
                    "  {:?} {}: {}",
                    group.result,
                    group.reason,
                    group.recovery_instance_ids.join(" ")
                );
            }
        }
        if let Some(answer) = &self.approve {
            if !self.json {
                println!("Approval to {finishing}: {answer:?} (--approve)");
            }
            return answer.clone();
        }
        // Irreversible: with nobody at a terminal to ask, it takes --approve yes.
        if !std::io::stdin().is_terminal() {
            return Approval::Refused("no terminal to ask, and no --approve yes".into());
        }
        print!("This cannot be undone. {finishing} them? [y/N] ");
        let _ = std::io::stdout().flush();
        let mut answer = String::new();
        let _ = std::io::stdin().read_line(&mut answer);
        if answer.trim().eq_ignore_ascii_case("y") || answer.trim().eq_ignore_ascii_case("yes") {
            Approval::Given
        } else {
            Approval::Refused("refused at the terminal".into())
        }
    }
}

fn print_json(value: &impl serde::Serialize) -> Result<ExitCode, String> {
    println!(
        "{}",
        serde_json::to_string_pretty(value).map_err(|e| e.to_string())?
    );
    Ok(ExitCode::SUCCESS)
}

fn refused(diagnostic: Diagnostic, json: bool) -> Result<ExitCode, String> {
    if json {
        let json = serde_json::json!({"errorType": diagnostic.error_type, "errorMessage": diagnostic.error_message});
        println!("{json}");
    } else {
        println!(
            "Refused: {}\n  {}",
            diagnostic.error_type, diagnostic.error_message
        );
    }
    Ok(ExitCode::from(1))
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::error::ErrorKind;

    fn args(list: &[&str]) -> Result<Args, clap::Error> {
        Args::try_parse_from(std::iter::once("drs-failback-local").chain(list.iter().copied()))
    }

    #[test]
    fn arguments_are_checked() {
        let parsed = args(&[
            "--json",
            "--state",
            "FAILBACK_NOT_STARTED",
            "--fail",
            "i-11111111=CONVERSION_FAIL",
            "--track-interval",
            "0.5",
            "events/x.json",
        ])
        .unwrap();
        assert!(parsed.json && !parsed.launch_only);
        assert_eq!(parsed.state, FailbackState::FailbackNotStarted);
        assert_eq!(
            parsed.failures,
            [("i-11111111".to_owned(), "CONVERSION_FAIL".to_owned())]
        );
        assert_eq!(parsed.track_interval, Duration::from_millis(500));
        assert_eq!(parsed.request, "events/x.json");
        let defaults = args(&["x.json"]).unwrap();
        assert_eq!(defaults.state, FailbackState::FailbackReadyForLaunch);
        assert_eq!(defaults.track_interval, Duration::from_secs(1));
        assert_eq!(defaults.time_limit, Duration::from_secs(600));
        assert_eq!(defaults.max_rounds.get(), 100);
        assert_eq!(defaults.approve, None);
        assert_eq!(
            args(&["--approve", "no", "x.json"]).unwrap().approve,
            Some(Approval::Refused("refused with --approve no".into()))
        );
        assert_eq!(
            args(&[]).unwrap_err().kind(),
            ErrorKind::MissingRequiredArgument
        );
        for (bad, says) in [
            (&["--state", "SOON", "x.json"][..], "SOON"),
            (&["--bogus", "x.json"], "--bogus"),
            (&["a.json", "b.json"], "b.json"),
            (&["--fail", "i-1", "x.json"], "ID=EVENT"),
            (
                &["--time-limit", "soon", "x.json"],
                "not a number of seconds",
            ),
            (&["--max-rounds", "0", "x.json"], "--max-rounds"),
            (&["--approve", "maybe", "x.json"], "maybe"),
        ] {
            let error = args(bad).unwrap_err();
            assert_eq!(error.exit_code(), 2, "{bad:?}");
            assert!(error.to_string().contains(says), "{bad:?}: {error}");
        }
    }
}
