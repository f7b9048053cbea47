//! `drs-failback-local`: a whole failback on this machine — the real function, with the real AWS
//! SDK clients, against the in-process simulator, driven as the state machine drives it — and
//! shown to a person. No AWS account, credentials or configuration needed: it sets its own dummy
//! ones and talks only to 127.0.0.1.

use std::process::ExitCode;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use drs_failback::config::Config;
use drs_failback::handler::Reply;
use drs_failback_local::arc::{ArcEnd, ArcSettings, run_whole};
use drs_failback_local::fleet::demo_fleet;
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

Runs a whole failback of the request against an in-process DRS + EventBridge simulator whose fleet
holds every recovery instance the request names: launches what fits, tracks the jobs until every
instance has its result, launches what was deferred as jobs finish, and prints one row per
instance. Jobs take ten simulated minutes, run 60 times faster (--sim-config changes both).

  --json                print the run's output (the state machine's, JSON) instead of the table
  --launch-only         one launch invocation only, summed up (jobs, outcomes, events)
  --fail ID=EVENT       the launch of ID fails with this job log event (e.g. CONVERSION_FAIL);
                        repeatable
  --state STATE         the demo fleet's failback state (default FAILBACK_READY_FOR_LAUNCH)
  --track-interval S    seconds between tracking calls (default 1)
  --time-limit S        seconds before the run sums up with what it knows (default 600)
  --max-rounds N        most launch rounds (default 100)
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
        let subscriber = drs_failback::logging::json_subscriber(
            drs_failback::logging::filter_from_env(),
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
    let failback = drs_failback::aws::failback(config, &sim.sdk_config().await);

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
    let mut line = ProgressLine::new();
    let end = run_whole(&failback, payload, &settings, |progress| {
        if !args.json {
            line.show(progress);
        }
    })
    .await;
    line.done();
    match end {
        Ok(ArcEnd::DryRun(answer)) if args.json => print_json(&answer),
        Ok(ArcEnd::DryRun(answer)) => {
            println!(
                "Dry run {}: would start {} jobs of {:?} instances; nothing launched.",
                answer.run_id,
                answer.planned_job_sizes.as_ref().map_or(0, Vec::len),
                answer.planned_job_sizes.clone().unwrap_or_default()
            );
            Ok(ExitCode::SUCCESS)
        }
        Ok(ArcEnd::Finished(finished)) if args.json => print_json(&finished.output()),
        Ok(ArcEnd::Finished(finished)) => {
            println!();
            print_table(&rows(&finished.answer));
            println!();
            let counts = finished.answer.counts;
            let events = sim.delivered_events();
            println!(
                "Run {}: {}{} — {} succeeded, {} failed, {} running, {} not launched; {} rounds, {} tracking calls; {} events delivered to bus {bus:?}.",
                finished.answer.run_id,
                if finished.complete {
                    "complete"
                } else {
                    "incomplete"
                },
                finished
                    .stopped_by
                    .map(|s| format!(" (stopped by {s:?})"))
                    .unwrap_or_default(),
                counts.succeeded,
                counts.failed,
                counts.running,
                finished
                    .answer
                    .not_launched
                    .iter()
                    .map(|g| g.recovery_instance_ids.len())
                    .sum::<usize>(),
                finished.progress.rounds,
                finished.progress.tracking_calls,
                events.len(),
            );
            Ok(ExitCode::SUCCESS)
        }
        Err(error) => refused(error.into(), args.json),
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
