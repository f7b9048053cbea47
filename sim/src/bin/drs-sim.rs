//! `drs-sim`: the simulator as a process, for local runs and CI (`cargo lambda watch` against
//! it). Prints `drs-sim listening on http://127.0.0.1:PORT` on stdout once it accepts
//! connections, logs calls on stderr, stops on SIGTERM or Ctrl-C.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::process::ExitCode;

use drs_sim::{FailbackState, Fleet, SimConfig, Simulator};
use serde_json::Value;

const USAGE: &str = "\
usage: drs-sim [--port PORT] [--host ADDR]
               [--fleet FILE | --generate N | --ids-from FILE] [--state STATE]
               [--config FILE]

  --port PORT      port to listen on (default 4566; 0 = any free port)
  --host ADDR      loopback address to listen on (default 127.0.0.1; others are refused)
  --fleet FILE     recovery instances: a JSON list of {\"recoveryInstanceID\", \"state\"?,
                   \"launchResult\"?, ...} or {\"instances\": [...]}
  --generate N     N generated instances (deterministic ids)
  --ids-from FILE  one instance per id in a request sample's recoveryInstanceIDs (a direct
                   payload or an EventBridge event whose detail holds them)
  --state STATE    failback state for --generate / --ids-from (default FAILBACK_READY_FOR_LAUNCH)
  --config FILE    JSON: quotas, lifecycle, pageSize, maxPageSize, faults, latencyMs, region,
                   accountId, accountInitialized, fleet
  -h, --help       this text";

#[derive(Debug, PartialEq)]
enum FleetSource {
    None,
    File(String),
    Generate(usize),
    IdsFrom(String),
}

#[derive(Debug, PartialEq)]
struct Args {
    addr: SocketAddr,
    fleet: FleetSource,
    state: Option<FailbackState>,
    config: Option<String>,
}

#[derive(Debug, PartialEq)]
enum Command {
    Run(Args),
    Help,
}

fn parse_args<I: IntoIterator<Item = String>>(args: I) -> Result<Command, String> {
    let mut host = IpAddr::V4(Ipv4Addr::LOCALHOST);
    let mut port: u16 = 4566;
    let mut fleet = FleetSource::None;
    let mut state = None;
    let mut config = None;
    let mut args = args.into_iter();
    while let Some(arg) = args.next() {
        let (flag, inline) = match arg.split_once('=') {
            Some((f, v)) if f.starts_with("--") => (f.to_owned(), Some(v.to_owned())),
            _ => (arg.clone(), None),
        };
        let mut value = |name: &str| {
            inline
                .clone()
                .or_else(|| args.next())
                .ok_or_else(|| format!("{name} needs a value"))
        };
        let mut set_fleet = |source: FleetSource| {
            if fleet != FleetSource::None {
                return Err("choose one of --fleet, --generate, --ids-from".to_owned());
            }
            fleet = source;
            Ok(())
        };
        match flag.as_str() {
            "-h" | "--help" => return Ok(Command::Help),
            "--port" => {
                let v = value("--port")?;
                port = v
                    .parse()
                    .map_err(|_| format!("--port: not a port number: {v:?}"))?;
            }
            "--host" => {
                let v = value("--host")?;
                let ip: IpAddr = if v == "localhost" {
                    IpAddr::V4(Ipv4Addr::LOCALHOST)
                } else {
                    v.parse()
                        .map_err(|_| format!("--host: not an IP address: {v:?}"))?
                };
                if !ip.is_loopback() {
                    return Err(format!("--host {ip}: refusing a non-loopback address"));
                }
                host = ip;
            }
            "--fleet" => set_fleet(FleetSource::File(value("--fleet")?))?,
            "--ids-from" => set_fleet(FleetSource::IdsFrom(value("--ids-from")?))?,
            "--generate" => {
                let v = value("--generate")?;
                let n = v
                    .parse()
                    .map_err(|_| format!("--generate: not a count: {v:?}"))?;
                set_fleet(FleetSource::Generate(n))?;
            }
            "--state" => {
                let v = value("--state")?;
                let names: Vec<&str> = FailbackState::ALL.iter().map(|s| s.as_str()).collect();
                state =
                    Some(FailbackState::parse(&v).ok_or_else(|| {
                        format!("--state: {v:?} is not one of {}", names.join(", "))
                    })?);
            }
            "--config" => config = Some(value("--config")?),
            other => return Err(format!("unknown argument {other:?}")),
        }
    }
    if state.is_some() && matches!(fleet, FleetSource::None | FleetSource::File(_)) {
        return Err("--state applies to --generate or --ids-from".into());
    }
    Ok(Command::Run(Args {
        addr: SocketAddr::new(host, port),
        fleet,
        state,
        config,
    }))
}

fn read(path: &str) -> Result<String, String> {
    std::fs::read_to_string(path).map_err(|e| format!("cannot read {path}: {e}"))
}

/// `recoveryInstanceIDs` of a direct payload, or of an EventBridge event's `detail`.
fn ids_from_sample(json: &str) -> Result<Vec<String>, String> {
    let v: Value = serde_json::from_str(json).map_err(|e| format!("not JSON: {e}"))?;
    let ids = [
        &v["recoveryInstanceIDs"],
        &v["detail"]["recoveryInstanceIDs"],
    ]
    .into_iter()
    .find_map(Value::as_array)
    .ok_or("no recoveryInstanceIDs (top level or in detail)")?;
    Ok(ids
        .iter()
        .filter_map(|id| id.as_str().map(str::to_owned))
        .collect())
}

fn build_config(args: &Args) -> Result<SimConfig, String> {
    let mut config = SimConfig::default();
    if let Some(path) = &args.config {
        config
            .merge_json(&read(path)?)
            .map_err(|e| format!("{path}: {e}"))?;
    }
    let state = args.state.unwrap_or(FailbackState::FailbackReadyForLaunch);
    match &args.fleet {
        FleetSource::None => {}
        FleetSource::File(path) => {
            config.fleet = Fleet::from_json(&read(path)?).map_err(|e| format!("{path}: {e}"))?
        }
        FleetSource::Generate(n) => config.fleet = Fleet::generated(*n, state),
        FleetSource::IdsFrom(path) => {
            let ids = ids_from_sample(&read(path)?).map_err(|e| format!("{path}: {e}"))?;
            let mut fleet = Fleet::matching(&ids);
            for id in fleet.ids() {
                fleet.set_state(&id, state);
            }
            config.fleet = fleet;
        }
    }
    Ok(config)
}

fn main() -> ExitCode {
    let args = match parse_args(std::env::args().skip(1)) {
        Ok(Command::Help) => {
            println!("{USAGE}");
            return ExitCode::SUCCESS;
        }
        Ok(Command::Run(args)) => args,
        Err(e) => {
            eprintln!("drs-sim: {e}\n\n{USAGE}");
            return ExitCode::from(2);
        }
    };
    let config = match build_config(&args) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("drs-sim: {e}");
            return ExitCode::from(2);
        }
    };
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .init();
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("drs-sim: cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    runtime.block_on(run(config, args.addr))
}

async fn run(config: SimConfig, addr: SocketAddr) -> ExitCode {
    let instances = config.fleet.len();
    let handle = match Simulator::start_on(config, addr).await {
        Ok(h) => h,
        Err(e) => {
            eprintln!("drs-sim: cannot listen on {addr}: {e}");
            return ExitCode::FAILURE;
        }
    };
    tracing::info!(instances, "fleet loaded");
    println!("drs-sim listening on {}", handle.endpoint());
    use std::io::Write;
    let _ = std::io::stdout().flush();
    if let Err(e) = stopped().await {
        eprintln!("drs-sim: cannot wait for signals: {e}");
        return ExitCode::FAILURE;
    }
    tracing::info!("stopping");
    handle.stop().await;
    ExitCode::SUCCESS
}

#[cfg(unix)]
async fn stopped() -> std::io::Result<()> {
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
    tokio::select! {
        r = tokio::signal::ctrl_c() => r,
        _ = term.recv() => Ok(()),
    }
}

#[cfg(not(unix))]
async fn stopped() -> std::io::Result<()> {
    tokio::signal::ctrl_c().await
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(args: &[&str]) -> Result<Command, String> {
        parse_args(args.iter().map(|s| s.to_string()))
    }

    #[test]
    fn defaults_and_flags() {
        let Command::Run(a) = parse(&[]).unwrap() else {
            panic!()
        };
        assert_eq!(a.addr, "127.0.0.1:4566".parse().unwrap());
        assert_eq!(a.fleet, FleetSource::None);
        let Command::Run(a) = parse(&[
            "--port",
            "0",
            "--generate=25",
            "--state",
            "FAILBACK_NOT_STARTED",
        ])
        .unwrap() else {
            panic!()
        };
        assert_eq!(a.addr.port(), 0);
        assert_eq!(a.fleet, FleetSource::Generate(25));
        assert_eq!(a.state, Some(FailbackState::FailbackNotStarted));
        assert_eq!(parse(&["--help"]).unwrap(), Command::Help);
        let Command::Run(a) = parse(&["--host", "::1"]).unwrap() else {
            panic!()
        };
        assert!(a.addr.ip().is_loopback());
    }

    #[test]
    fn bad_arguments_are_errors_not_panics() {
        for bad in [
            &["--port"][..],
            &["--port", "99999"],
            &["--host", "0.0.0.0"],
            &["--host", "192.168.1.1"],
            &["--generate", "x"],
            &["--generate", "1", "--fleet", "f.json"],
            &["--state", "READY"],
            &["--fleet", "f.json", "--state", "FAILBACK_ERROR"],
            &["--frobnicate"],
        ] {
            assert!(parse(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn ids_from_direct_and_eventbridge_samples() {
        assert_eq!(
            ids_from_sample(r#"{"recoveryInstanceIDs":["i-01234567"]}"#).unwrap(),
            ["i-01234567"]
        );
        assert_eq!(
            ids_from_sample(r#"{"detail-type":"x","detail":{"recoveryInstanceIDs":["i-01234567","i-89abcdef"]}}"#).unwrap(),
            ["i-01234567", "i-89abcdef"]
        );
        assert!(ids_from_sample(r#"{"detail":{}}"#).is_err());
        assert!(ids_from_sample("nope").is_err());
    }
}
