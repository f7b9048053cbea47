//! `drs-failback-local`: a whole failback on this machine — the real function, with the real AWS
//! SDK clients, against the in-process simulator, driven as the state machine drives it — and
//! shown to a person. No AWS account, credentials or configuration needed: it sets its own dummy
//! ones and talks only to 127.0.0.1.

use std::io::{IsTerminal, Write};
use std::process::ExitCode;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use drs_failback::config::Config;
use drs_failback::handler::Reply;
use drs_failback::plan::StepPlan;
use drs_failback_local::arc::{ArcSettings, Progress};
use drs_failback_local::fleet::demo_fleet;
use drs_failback_local::plan::{Approval, PlanEnd, PlanHooks, StepReport, StepStatus, run_plan};
use drs_failback_local::show::{ProgressLine, print_table, rows};
use drs_failback_local::summary::{Header, print_summary};
use drs_sim::{FailbackState, Lifecycle, SimConfig, Simulator};
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

const USAGE: &str = "usage: drs-failback-local [options] REQUEST.json

Runs a whole failback of the request (a launch request, or a plan of ordered steps) against an
in-process DRS + EventBridge simulator whose fleet holds every recovery instance the request names
(and three for each tag selector): step by step, launches what fits, tracks the jobs until every
instance has its result, launches what was deferred as jobs finish, stops the plan when a step's
verdict says so, and prints one row per instance. Jobs take ten simulated minutes, run 60 times
faster (--sim-config changes both); a step's waitAfterSeconds runs as fast.

  --json                print the run's output (the state machine's, JSON) instead of the table
  --metrics             print each invocation's metrics record (CloudWatch Embedded Metric
                        Format, one JSON line) on stderr, as Lambda writes it to the log stream
  --launch-only         one launch invocation only, summed up (jobs, outcomes, events)
  --fail ID=EVENT       the launch of ID fails with this job log event (e.g. CONVERSION_FAIL);
                        repeatable
  --state STATE         the demo fleet's failback state (default FAILBACK_READY_FOR_LAUNCH)
  --track-interval S    seconds between tracking calls (default 1)
  --time-limit S        seconds before the run sums up with what it knows (default 600)
  --max-rounds N        most launch rounds per step (default 100)
  --approve ANSWER      how a step's approval is answered: yes, no or timeout (default: asked on
                        a terminal, yes otherwise)
  --sim-config FILE     simulator settings and faults (see sim/README.md), e.g. quotas
Function settings come from the environment as in Lambda (MAX_INSTANCES_PER_JOB, ...);
RUST_LOG=info also prints the function's JSON log lines on stderr.";

#[derive(Debug)]
struct Args {
    json: bool,
    launch_only: bool,
    failures: Vec<(String, String)>,
    state: FailbackState,
    track_interval: Duration,
    time_limit: Duration,
    max_rounds: usize,
    approve: Option<Approval>,
    metrics: bool,
    sim_config: Option<String>,
    request: String,
}

fn parse_args(args: impl IntoIterator<Item = String>) -> Result<Args, String> {
    let mut parsed = Args {
        json: false,
        launch_only: false,
        failures: Vec::new(),
        state: FailbackState::FailbackReadyForLaunch,
        track_interval: Duration::from_secs(1),
        time_limit: Duration::from_secs(600),
        max_rounds: 100,
        approve: None,
        metrics: false,
        sim_config: None,
        request: String::new(),
    };
    let mut request = None;
    let mut args = args.into_iter();
    let seconds = |flag: &str, value: Option<String>| -> Result<Duration, String> {
        let value = value.ok_or(format!("{flag} needs a number of seconds"))?;
        value
            .parse::<f64>()
            .ok()
            .and_then(|s| Duration::try_from_secs_f64(s).ok())
            .ok_or(format!("{flag}: {value:?} is not a number of seconds"))
    };
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--json" => parsed.json = true,
            "--metrics" => parsed.metrics = true,
            "--launch-only" => parsed.launch_only = true,
            "--fail" => {
                let value = args.next().ok_or("--fail needs ID=EVENT")?;
                let (id, event) = value
                    .split_once('=')
                    .ok_or(format!("--fail {value:?}: expected ID=EVENT"))?;
                parsed.failures.push((id.to_owned(), event.to_owned()));
            }
            "--state" => {
                let value = args.next().ok_or("--state needs a failback state")?;
                parsed.state = FailbackState::parse(&value)
                    .ok_or_else(|| format!("--state: unknown failback state {value:?}"))?;
            }
            "--track-interval" => parsed.track_interval = seconds(&arg, args.next())?,
            "--time-limit" => parsed.time_limit = seconds(&arg, args.next())?,
            "--max-rounds" => {
                let value = args.next().ok_or("--max-rounds needs a number")?;
                parsed.max_rounds = value
                    .parse()
                    .ok()
                    .filter(|n| *n > 0)
                    .ok_or(format!("--max-rounds: {value:?} is not a positive number"))?;
            }
            "--approve" => {
                let value = args.next().ok_or("--approve needs yes, no or timeout")?;
                parsed.approve = Some(match value.as_str() {
                    "yes" => Approval::Given,
                    "no" => Approval::Refused("refused with --approve no".into()),
                    "timeout" => Approval::TimedOut,
                    _ => return Err(format!("--approve: {value:?} is not yes, no or timeout")),
                });
            }
            "--sim-config" => {
                parsed.sim_config = Some(args.next().ok_or("--sim-config needs a file")?)
            }
            "-h" | "--help" => return Err(USAGE.to_owned()),
            flag if flag.starts_with('-') => {
                return Err(format!("unknown option {flag}\n\n{USAGE}"));
            }
            _ if request.is_some() => return Err(format!("one request file only\n\n{USAGE}")),
            _ => request = Some(arg),
        }
    }
    parsed.request = request.ok_or_else(|| USAGE.to_owned())?;
    Ok(parsed)
}

fn main() -> ExitCode {
    // Before any thread starts (set_var is not thread-safe): the SDK must never probe the
    // instance-metadata address from a developer's or CI machine.
    // SAFETY: single-threaded at this point; nothing else reads the environment concurrently.
    unsafe { std::env::set_var("AWS_EC2_METADATA_DISABLED", "true") };
    let args = match parse_args(std::env::args().skip(1)) {
        Ok(args) => args,
        Err(message) => {
            eprintln!("{message}");
            return ExitCode::from(2);
        }
    };
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
    for (id, event) in &args.failures {
        if !fleet.set_failure(id, event) {
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
    let fleet_size = sim_config.fleet.len();
    let sim = Simulator::start(sim_config)
        .await
        .map_err(|e| format!("cannot start the simulator: {e}"))?;
    let config = Config::from_env().map_err(|e| format!("invalid configuration: {e}"))?;
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
            Err(error) => refused(error.into(), args.json),
        };
    }

    let settings = ArcSettings {
        track_interval: args.track_interval,
        time_limit: args.time_limit,
        max_rounds: args.max_rounds,
        invocation_timeout: LAMBDA_TIMEOUT,
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
                    step.planned_job_sizes.as_ref().map_or(0, Vec::len),
                    step.planned_job_sizes.clone().unwrap_or_default(),
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
    approve: Option<Approval>,
}

impl PlanHooks for Shown {
    fn step_started(&mut self, index: usize, step: &StepPlan, steps: usize) {
        if !self.json {
            println!(
                "Step {}/{steps} {}: {} instances",
                index + 1,
                step.name,
                step.instances
            );
        }
    }

    fn progress(&mut self, _: usize, progress: &Progress) {
        if !self.json {
            self.line.show(progress);
        }
    }

    fn step_ended(&mut self, index: usize, report: &StepReport) {
        self.line.done();
        self.line = ProgressLine::new();
        if self.json {
            return;
        }
        if let Some(finished) = &report.finished {
            println!();
            print_table(&rows(&finished.answer));
            println!();
        }
        let counts = report.finished.as_ref().map(|f| f.answer.counts);
        println!(
            "Step {} {}: {}{}{}",
            index + 1,
            report.name,
            report.status.as_str(),
            counts
                .map(|c| format!(
                    " — {} succeeded, {} failed, {} running",
                    c.succeeded, c.failed, c.running
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

    fn args(list: &[&str]) -> Result<Args, String> {
        parse_args(list.iter().map(|s| s.to_string()))
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
        assert!(args(&[]).unwrap_err().starts_with("usage"));
        for (bad, says) in [
            (&["--state", "SOON", "x.json"][..], "SOON"),
            (&["--bogus", "x.json"], "--bogus"),
            (&["a.json", "b.json"], "one request"),
            (&["--fail", "i-1", "x.json"], "ID=EVENT"),
            (
                &["--time-limit", "soon", "x.json"],
                "not a number of seconds",
            ),
            (&["--max-rounds", "0", "x.json"], "not a positive number"),
        ] {
            assert!(args(bad).unwrap_err().contains(says), "{bad:?}");
        }
    }
}
