//! `drs-sim`: the simulator as a process, for local runs and CI (`cargo lambda watch` against
//! it). Prints `drs-sim listening on http://127.0.0.1:PORT` on stdout once it accepts
//! connections, logs calls on stderr, stops on SIGTERM or Ctrl-C.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::process::ExitCode;

use clap::Parser;
use clap::builder::{PossibleValuesParser, TypedValueParser};
use drs_sim::{FailbackState, Fleet, SimConfig, Simulator};
use serde_json::Value;

/// The DRS + EventBridge simulator, listening on loopback.
#[derive(Debug, Parser)]
#[command(name = "drs-sim")]
struct Args {
    /// Port to listen on (0 = any free port)
    #[arg(long, value_name = "PORT", default_value_t = 4566)]
    port: u16,
    /// Loopback address to listen on (others are refused)
    #[arg(long, value_name = "ADDR", default_value = "127.0.0.1", value_parser = loopback)]
    host: IpAddr,
    /// Recovery instances: a JSON list of {"recoveryInstanceID", "state"?, "launchResult"?, ...}
    /// or {"instances": [...]}
    #[arg(long, value_name = "FILE", group = "fleet_source")]
    fleet: Option<String>,
    /// N generated instances (deterministic ids)
    #[arg(long, value_name = "N", group = "fleet_source", group = "generated")]
    generate: Option<usize>,
    /// One instance per id in a request sample's recoveryInstanceIDs (a direct payload or an
    /// EventBridge event whose detail holds them)
    #[arg(long, value_name = "FILE", group = "fleet_source", group = "generated")]
    ids_from: Option<String>,
    /// Failback state for --generate / --ids-from [default: FAILBACK_READY_FOR_LAUNCH]
    #[arg(long, value_name = "STATE", requires = "generated", value_parser = failback_state())]
    state: Option<FailbackState>,
    /// JSON: quotas, lifecycle, pageSize, maxPageSize, faults, latencyMs, region, accountId,
    /// accountInitialized, fleet
    #[arg(long, value_name = "FILE")]
    config: Option<String>,
}

impl Args {
    fn addr(&self) -> SocketAddr {
        SocketAddr::new(self.host, self.port)
    }
}

/// Listening anywhere but loopback would expose an unauthenticated fake AWS to the network.
fn loopback(value: &str) -> Result<IpAddr, String> {
    let ip = if value == "localhost" {
        IpAddr::V4(Ipv4Addr::LOCALHOST)
    } else {
        value
            .parse()
            .map_err(|_| format!("not an IP address: {value:?}"))?
    };
    if ip.is_loopback() {
        Ok(ip)
    } else {
        Err("refusing a non-loopback address".to_owned())
    }
}

fn failback_state() -> impl TypedValueParser<Value = FailbackState> {
    PossibleValuesParser::new(FailbackState::ALL.map(FailbackState::as_str))
        .try_map(|name| FailbackState::parse(&name).ok_or("unknown failback state"))
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
    if let Some(path) = &args.fleet {
        config.fleet = Fleet::from_json(&read(path)?).map_err(|e| format!("{path}: {e}"))?;
    } else if let Some(n) = args.generate {
        config.fleet = Fleet::generated(n, state);
    } else if let Some(path) = &args.ids_from {
        let ids = ids_from_sample(&read(path)?).map_err(|e| format!("{path}: {e}"))?;
        let mut fleet = Fleet::matching(&ids);
        for id in fleet.ids() {
            fleet.set_state(&id, state);
        }
        config.fleet = fleet;
    }
    Ok(config)
}

fn main() -> ExitCode {
    // Help goes to stdout with code 0, a bad argument to stderr with code 2.
    let args = Args::parse();
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
    runtime.block_on(run(config, args.addr()))
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
    use clap::error::ErrorKind;

    fn parse(args: &[&str]) -> Result<Args, clap::Error> {
        Args::try_parse_from(std::iter::once("drs-sim").chain(args.iter().copied()))
    }

    #[test]
    fn defaults_and_flags() {
        let a = parse(&[]).unwrap();
        assert_eq!(a.addr(), "127.0.0.1:4566".parse().unwrap());
        assert_eq!((a.fleet, a.generate, a.ids_from), (None, None, None));
        let a = parse(&[
            "--port",
            "0",
            "--generate=25",
            "--state",
            "FAILBACK_NOT_STARTED",
        ])
        .unwrap();
        assert_eq!(a.addr().port(), 0);
        assert_eq!(a.generate, Some(25));
        assert_eq!(a.state, Some(FailbackState::FailbackNotStarted));
        assert_eq!(
            parse(&["--help"]).unwrap_err().kind(),
            ErrorKind::DisplayHelp
        );
        assert!(parse(&["--host", "::1"]).unwrap().addr().ip().is_loopback());
        assert!(parse(&["--host", "localhost"]).unwrap().host.is_loopback());
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
            &["--state", "FAILBACK_ERROR"],
            &["--frobnicate"],
            &["positional"],
        ] {
            let error = parse(bad).unwrap_err();
            assert_eq!(error.exit_code(), 2, "{bad:?}");
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
