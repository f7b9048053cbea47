//! `drs-failback-local`: runs the real handler, with the real AWS SDK clients, against the
//! in-process simulator, and shows a person what happened. No AWS account, credentials or
//! configuration needed: it sets its own dummy ones and talks only to 127.0.0.1.

use std::process::ExitCode;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use drs_failback::config::{Config, REQUEST_INSTANCES_CEILING};
use drs_failback::events::{DETAIL_TYPE_JOB_STARTED, DETAIL_TYPE_NOT_LAUNCHED};
use drs_failback::handler::Reply;
use drs_failback::outcome::Answer;
use drs_failback::request::parse_request;
use drs_sim::{FailbackState, Fleet, FleetInstance, SimConfig, Simulator};
use lambda_runtime::{Context, Diagnostic, LambdaEvent};
use serde_json::Value;

/// The function's timeout in `template.yaml`: the local run gets the same deadline.
const LAMBDA_TIMEOUT: Duration = Duration::from_secs(300);

const USAGE: &str =
    "usage: drs-failback-local [--json] [--state FAILBACK_STATE] [--sim-config FILE] REQUEST.json

Runs the drs-failback handler against an in-process DRS + EventBridge simulator whose fleet holds
every recovery instance the request names, and prints the jobs, each instance's outcome and the
events delivered.

  --json              print the function's raw answer (JSON) instead of the summary
  --state STATE       the demo fleet's failback state (default FAILBACK_READY_FOR_LAUNCH)
  --sim-config FILE   simulator settings and faults (see sim/README.md), e.g. throttling
Function settings come from the environment as in Lambda (MAX_INSTANCES_PER_JOB, ...);
RUST_LOG=info also prints the function's JSON log lines on stderr.";

#[derive(Debug)]
struct Args {
    json: bool,
    state: FailbackState,
    sim_config: Option<String>,
    request: String,
}

fn parse_args(args: impl IntoIterator<Item = String>) -> Result<Args, String> {
    let mut json = false;
    let mut state = FailbackState::FailbackReadyForLaunch;
    let mut sim_config = None;
    let mut request = None;
    let mut args = args.into_iter();
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--json" => json = true,
            "--state" => {
                let value = args.next().ok_or("--state needs a failback state")?;
                state = FailbackState::parse(&value)
                    .ok_or_else(|| format!("--state: unknown failback state {value:?}"))?;
            }
            "--sim-config" => sim_config = Some(args.next().ok_or("--sim-config needs a file")?),
            "-h" | "--help" => return Err(USAGE.to_owned()),
            flag if flag.starts_with('-') => {
                return Err(format!("unknown option {flag}\n\n{USAGE}"));
            }
            _ if request.is_some() => return Err(format!("one request file only\n\n{USAGE}")),
            _ => request = Some(arg),
        }
    }
    Ok(Args {
        json,
        state,
        sim_config,
        request: request.ok_or_else(|| USAGE.to_owned())?,
    })
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

/// A demo fleet holding every instance the request names, in either envelope: its recovery
/// instances, and one for each source server it names. Parsed by the function's own parser, so
/// the fleet matches what the function will look for.
fn demo_fleet(payload: &Value, state: FailbackState) -> Fleet {
    let Ok(request) = parse_request(payload.clone(), REQUEST_INSTANCES_CEILING, String::new) else {
        // The function will refuse it; nothing to hold.
        return Fleet::new();
    };
    let mut fleet = Fleet::matching(&request.recovery_instance_ids);
    for source in &request.source_server_ids {
        let mut instance = FleetInstance::new(recovery_instance_for(source));
        instance.source_server_id = source.clone();
        // A source server named twice, or whose instance is also named, is already there.
        let _ = fleet.try_push(instance);
    }
    for id in fleet.ids() {
        fleet.set_state(&id, state);
    }
    fleet
}

/// A stable recovery instance id for a source server (FNV-1a of its id).
fn recovery_instance_for(source_server_id: &str) -> String {
    let hash = source_server_id
        .bytes()
        .fold(0xcbf2_9ce4_8422_2325_u64, |h, b| {
            (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
        });
    format!("i-0{hash:016x}")
}

async fn run(args: Args) -> Result<ExitCode, String> {
    let text = std::fs::read_to_string(&args.request)
        .map_err(|e| format!("cannot read {}: {e}", args.request))?;
    let payload: Value =
        serde_json::from_str(&text).map_err(|e| format!("{} is not JSON: {e}", args.request))?;

    let mut sim_config = SimConfig {
        fleet: demo_fleet(&payload, args.state),
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

    let mut context = Context::default();
    context.request_id = format!("local-{}", uuid::Uuid::new_v4());
    let now_ms = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_err(|e| e.to_string())?
        .as_millis() as u64;
    context.deadline = now_ms + LAMBDA_TIMEOUT.as_millis() as u64;

    let result = match failback.invoke(LambdaEvent::new(payload, context)).await {
        Ok(Reply::Launch(answer)) => Ok(answer),
        Ok(Reply::Track(_)) => return Err("a launch request got a tracking answer".into()),
        Err(error) => Err(error),
    };
    let events = sim.delivered_events();
    match result {
        Ok(answer) if args.json => {
            println!(
                "{}",
                serde_json::to_string_pretty(&answer).map_err(|e| e.to_string())?
            );
            Ok(ExitCode::SUCCESS)
        }
        Ok(answer) => {
            print_summary(&args, &sim.endpoint(), fleet_size, &answer, &bus, &events);
            Ok(ExitCode::SUCCESS)
        }
        Err(error) => {
            let diagnostic: Diagnostic = error.into();
            if args.json {
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
    }
}

fn print_summary(
    args: &Args,
    endpoint: &str,
    fleet_size: usize,
    answer: &Answer,
    bus: &str,
    events: &[drs_sim::DeliveredEvent],
) {
    println!("drs-failback, local run of {}", args.request);
    println!(
        "  simulator {endpoint}: {fleet_size} recovery instances, {}",
        args.state.as_str()
    );
    println!(
        "  run id {}{}",
        answer.run_id,
        if answer.dry_run { " (dry run)" } else { "" }
    );
    println!();

    println!("Jobs ({}):", answer.jobs.len());
    for job in &answer.jobs {
        println!(
            "  {}  {:<9} {:>3} instances",
            job.job_id,
            job.status,
            job.recovery_instance_ids.len()
        );
    }
    if let Some(sizes) = &answer.planned_job_sizes {
        println!(
            "  planned (dry run): {} jobs of {:?} instances",
            sizes.len(),
            sizes
        );
    }
    println!();

    let c = answer.counts;
    println!(
        "Instances ({}): {} launched, {} skipped, {} rejected, {} deferred{}",
        answer.requested,
        c.launched,
        c.skipped,
        c.rejected,
        c.deferred,
        if answer.dry_run {
            "  (dry run: nothing launched)"
        } else if answer.complete {
            "  (complete)"
        } else {
            "  (incomplete: send deferredRecoveryInstanceIDs again)"
        }
    );
    for job in &answer.jobs {
        for id in &job.recovery_instance_ids {
            println!("  {id:<20} launched   {}", job.job_id);
        }
    }
    for group in &answer.not_launched {
        let outcome = serde_json::to_value(group.outcome)
            .ok()
            .and_then(|v| v.as_str().map(str::to_owned))
            .unwrap_or_default();
        let detail = [
            group.code.as_deref(),
            group.message.as_deref(),
            group.job_id.as_deref(),
        ]
        .into_iter()
        .flatten()
        .collect::<Vec<_>>()
        .join(": ");
        for id in &group.recovery_instance_ids {
            println!(
                "  {id:<20} {outcome:<10} {}{}",
                group.reason,
                if detail.is_empty() {
                    String::new()
                } else {
                    format!("  ({detail})")
                }
            );
        }
    }
    println!();

    println!(
        "Events delivered to bus {bus:?} ({} published, {} undelivered):",
        answer.events.published, answer.events.undelivered
    );
    for event in events {
        let about = match event.detail_type.as_str() {
            DETAIL_TYPE_JOB_STARTED => format!(
                "{} with {} instances",
                event.detail["jobID"].as_str().unwrap_or("?"),
                event.detail["recoveryInstanceIDs"]
                    .as_array()
                    .map_or(0, Vec::len)
            ),
            DETAIL_TYPE_NOT_LAUNCHED => {
                format!("part {} of {}", event.detail["part"], event.detail["parts"])
            }
            _ => format!("counts {}", event.detail["counts"]),
        };
        println!("  {:<40} {about}", event.detail_type);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(list: &[&str]) -> Result<Args, String> {
        parse_args(list.iter().map(|s| s.to_string()))
    }

    #[test]
    fn arguments_are_checked() {
        let parsed = args(&["--json", "--state", "FAILBACK_NOT_STARTED", "events/x.json"]).unwrap();
        assert!(parsed.json);
        assert_eq!(parsed.state, FailbackState::FailbackNotStarted);
        assert_eq!(parsed.request, "events/x.json");
        assert!(args(&[]).unwrap_err().starts_with("usage"));
        assert!(
            args(&["--state", "SOON", "x.json"])
                .unwrap_err()
                .contains("SOON")
        );
        assert!(
            args(&["--bogus", "x.json"])
                .unwrap_err()
                .contains("--bogus")
        );
        assert!(
            args(&["a.json", "b.json"])
                .unwrap_err()
                .contains("one request")
        );
    }

    #[test]
    fn the_demo_fleet_holds_what_either_envelope_names() {
        let ready = FailbackState::FailbackReadyForLaunch;
        let direct = serde_json::json!({"recoveryInstanceIDs": ["i-11111111", "bad"]});
        let event = serde_json::json!({"detail-type": "x", "source": "y",
            "detail": {"recoveryInstanceIDs": ["i-22222222"], "sourceServerIDs": ["s-0123456789abcdefA"]}});
        assert_eq!(demo_fleet(&direct, ready).ids(), ["i-11111111"]);
        let fleet = demo_fleet(&event, ready);
        assert_eq!(fleet.len(), 2);
        assert_eq!(fleet.instances()[1].source_server_id, "s-0123456789abcdefA");
        assert!(demo_fleet(&serde_json::json!({"recoveryInstanceIDs": 5}), ready).is_empty());
        let not_started = demo_fleet(&direct, FailbackState::FailbackNotStarted);
        assert_eq!(
            not_started.instances()[0].state,
            FailbackState::FailbackNotStarted
        );
    }
}
