//! Start-to-exit against the boto3 peer: the release binary and a minimal boto3 Lambda
//! (`bench/peer/boto3_lambda.py`) started side by side with the same Lambda environment, the
//! Runtime API unreachable, each timed from just before `spawn` to its exit, in pairs.
//!
//! Why "Runtime API unreachable": both processes then do exactly a cold start's init (load
//! themselves and their SDK, build the DRS and EventBridge clients), make their first
//! `invocation/next` poll, find nothing listening and exit. No stand-in is needed, the figure
//! includes leaving, and nothing of the peer's speed depends on a server written in Rust.
//!
//! Why pairs: the machine is shared. Each pair runs both back to back (which goes first
//! alternates), so a moment of load hits both of a pair; the median of the per-pair ratios is
//! less moved by it than a ratio of medians taken minutes apart.

use std::ffi::OsStr;
use std::fs::File;
use std::net::{SocketAddr, TcpListener};
use std::path::{Path, PathBuf};
use std::process::{Command, ExitStatus, Stdio};
use std::sync::mpsc::{self, RecvTimeoutError};
use std::thread;
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

use crate::binary;

/// boto3 pinned exactly (the newest on PyPI when this was written): a new boto3 brings new
/// botocore models and import paths, which move the peer's start-up, so the peer's figure changes
/// only in a commit that raises this, not between two runs of the same commit.
pub const BOTO3_VERSION: &str = "1.44.8";
/// The target: the peer's start-to-exit over the Rust binary's, median of the paired ratios.
pub const TARGET_RATIO: f64 = 60.0;
/// The peer, committed beside the bench.
const PEER: &str = "bench/peer/boto3_lambda.py";
/// What the peer prints before it exits for want of a Runtime API (bench/peer/boto3_lambda.py).
const PEER_MARKER: &str = "runtime API unreachable at";
/// Either process exits in well under a second; past this it is killed and the run reported.
const EXIT_TIMEOUT: Duration = Duration::from_secs(10);
/// Creating the venv, and installing boto3 from PyPI (a few MB) on first use.
const VENV_TIMEOUT: Duration = Duration::from_secs(120);
const PIP_TIMEOUT: Duration = Duration::from_secs(600);
/// Each setup command is polled this often: it is not what is timed.
const SETUP_POLL: Duration = Duration::from_millis(50);

/// Pairs per comparison: as many as the cold starts of the start-up figure.
pub fn pairs(quick: bool) -> usize {
    if quick { 7 } else { 21 }
}

/// One pair: both processes' start-to-exit, back to back.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct Pair {
    pub rust: Duration,
    pub boto3: Duration,
    /// Which process of the pair ran first (alternates).
    pub rust_first: bool,
}

impl Pair {
    /// The peer's start-to-exit over the Rust binary's.
    pub fn ratio(&self) -> f64 {
        self.boto3.as_secs_f64() / self.rust.as_secs_f64().max(1e-9)
    }
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Comparison {
    /// boto3 as the peer imports it, and the interpreter running it.
    pub boto3: String,
    pub python: String,
    /// The pairs in which both processes exited as expected, in order.
    pub pairs: Vec<Pair>,
    /// Runs that did not (their pair is left out), each with what happened.
    pub failures: Vec<String>,
    /// How the Rust binary ended with the Runtime API unreachable: exit code and its error line.
    pub rust_exit: String,
}

impl Comparison {
    pub fn rust_median(&self) -> Option<Duration> {
        median_duration(self.pairs.iter().map(|p| p.rust).collect())
    }

    pub fn boto3_median(&self) -> Option<Duration> {
        median_duration(self.pairs.iter().map(|p| p.boto3).collect())
    }

    /// The median of the per-pair ratios: what the target is judged on.
    pub fn ratio(&self) -> Option<f64> {
        median(self.pairs.iter().map(Pair::ratio).collect())
    }

    /// The smallest and the largest per-pair ratio.
    pub fn ratio_range(&self) -> Option<(f64, f64)> {
        let ratios = self.pairs.iter().map(Pair::ratio);
        let min = ratios.clone().reduce(f64::min)?;
        Some((min, ratios.reduce(f64::max)?))
    }
}

/// The middle value; the mean of the two middle ones for an even count (pairs left out can make
/// it even).
pub fn median(mut values: Vec<f64>) -> Option<f64> {
    values.sort_by(f64::total_cmp);
    let n = values.len();
    match n {
        0 => None,
        _ if n % 2 == 1 => Some(values[n / 2]),
        _ => Some((values[n / 2 - 1] + values[n / 2]) / 2.0),
    }
}

fn median_duration(mut values: Vec<Duration>) -> Option<Duration> {
    values.sort();
    let n = values.len();
    match n {
        0 => None,
        _ if n % 2 == 1 => Some(values[n / 2]),
        _ => Some((values[n / 2 - 1] + values[n / 2]) / 2),
    }
}

/// The venv's interpreter with the pinned boto3, and the versions it reports.
struct Peer {
    python: PathBuf,
    boto3: String,
    python_version: String,
}

/// `${XDG_CACHE_HOME:-$HOME/.cache}/drs-failback/venv-boto3`, beside the venvs of .ci/lint-infra.
fn venv_dir() -> Result<PathBuf, String> {
    let cache = std::env::var_os("XDG_CACHE_HOME")
        .filter(|dir| !dir.is_empty())
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|home| Path::new(&home).join(".cache")))
        .ok_or("neither XDG_CACHE_HOME nor HOME is set: no cache directory for the boto3 venv")?;
    Ok(cache.join("drs-failback").join("venv-boto3"))
}

/// The venv with boto3 == BOTO3_VERSION, made on first use: `python3 -m venv`, then pip from
/// PyPI. Every failure is a cause for the report, never a panic; nothing is installed outside
/// the venv (no apt-get: on Debian, python3-venv is the operator's to install).
fn ensure_peer(scratch: &Path) -> Result<Peer, String> {
    let dir = venv_dir()?;
    let python = dir.join("bin").join("python");
    let pip = dir.join("bin").join("pip");
    if !pip.is_file() {
        if dir.exists() {
            std::fs::remove_dir_all(&dir).map_err(|e| format!("{}: {e}", dir.display()))?;
        }
        if let Some(parent) = dir.parent() {
            std::fs::create_dir_all(parent).map_err(|e| format!("{}: {e}", parent.display()))?;
        }
        // On the progress line the bench has started.
        eprint!("(python3 -m venv {}) ", dir.display());
        let made = run_bounded(
            Command::new("python3").arg("-m").arg("venv").arg(&dir),
            "python3 -m venv",
            VENV_TIMEOUT,
            scratch,
        );
        if let Err(e) = made {
            let _ = std::fs::remove_dir_all(&dir);
            // Not started at all, or started and failed (Debian's python3 without python3-venv).
            let hint = if e.starts_with("cannot run") {
                "is python3 installed and on PATH?"
            } else {
                "on Debian the venv module is the python3-venv package"
            };
            return Err(format!("{e} ({hint})"));
        }
    }
    if let Ok(peer) = versions(&python, scratch)
        && peer.boto3 == BOTO3_VERSION
    {
        return Ok(peer);
    }
    eprint!("(pip install boto3=={BOTO3_VERSION}) ");
    run_bounded(
        Command::new(&pip)
            .args(["install", "--quiet", "--disable-pip-version-check"])
            .arg(format!("boto3=={BOTO3_VERSION}")),
        &format!("pip install boto3=={BOTO3_VERSION}"),
        PIP_TIMEOUT,
        scratch,
    )?;
    let peer = versions(&python, scratch)?;
    if peer.boto3 != BOTO3_VERSION {
        return Err(format!(
            "the venv has boto3 {} after installing {BOTO3_VERSION}",
            peer.boto3
        ));
    }
    Ok(peer)
}

/// boto3's and Python's versions, as the venv's interpreter reports them.
fn versions(python: &Path, scratch: &Path) -> Result<Peer, String> {
    let out = run_bounded(
        Command::new(python).env_clear().args([
            "-c",
            "import platform, boto3; print(boto3.__version__, platform.python_version())",
        ]),
        "import boto3",
        EXIT_TIMEOUT,
        scratch,
    )?;
    let mut words = out.split_whitespace();
    match (words.next(), words.next()) {
        (Some(boto3), Some(version)) => Ok(Peer {
            python: python.to_path_buf(),
            boto3: boto3.to_owned(),
            python_version: version.to_owned(),
        }),
        _ => Err(format!(
            "the venv's python printed {out:?} for its versions"
        )),
    }
}

/// Runs a setup command to its end or `timeout` (then kills it); its stdout, or why it failed.
/// Output goes to files, so a chatty command cannot fill a pipe and stall.
fn run_bounded(
    command: &mut Command,
    what: &str,
    timeout: Duration,
    scratch: &Path,
) -> Result<String, String> {
    let out_path = scratch.join("setup.out");
    let err_path = scratch.join("setup.err");
    let out = File::create(&out_path).map_err(|e| format!("{}: {e}", out_path.display()))?;
    let err = File::create(&err_path).map_err(|e| format!("{}: {e}", err_path.display()))?;
    let mut child = command
        .stdin(Stdio::null())
        .stdout(out)
        .stderr(err)
        .spawn()
        .map_err(|e| format!("cannot run {what}: {e}"))?;
    let until = Instant::now() + timeout;
    let status = loop {
        match child.try_wait() {
            Ok(Some(status)) => break status,
            Ok(None) if Instant::now() < until => thread::sleep(SETUP_POLL),
            Ok(None) => {
                let _ = child.kill();
                let _ = child.wait();
                return Err(format!("{what} did not finish within {timeout:?} (killed)"));
            }
            Err(e) => {
                let _ = child.kill();
                let _ = child.wait();
                return Err(format!("{what}: {e}"));
            }
        }
    };
    let stdout = std::fs::read_to_string(&out_path).unwrap_or_default();
    if status.success() {
        return Ok(stdout);
    }
    let stderr = std::fs::read_to_string(&err_path).unwrap_or_default();
    Err(format!("{what} failed ({status}): {}", tail(&stderr)))
}

/// The last lines of an error output, on one line, short enough for a table cell.
fn tail(text: &str) -> String {
    let lines: Vec<&str> = text
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .collect();
    let joined = lines[lines.len().saturating_sub(2)..].join(" / ");
    let mut short: String = joined.chars().take(300).collect();
    if short.len() < joined.len() {
        short.push('…');
    }
    // A table cell: no column breaks.
    short.replace('|', "/")
}

/// Two loopback addresses with nothing listening: bound together (so they differ), then
/// released. One stands for the Runtime API, the other for the service endpoints, so an error
/// naming the first is the Runtime API's.
fn dead_addresses() -> Result<(SocketAddr, SocketAddr), String> {
    let bind = || {
        TcpListener::bind(SocketAddr::from(([127, 0, 0, 1], 0)))
            .and_then(|l| Ok((l.local_addr()?, l)))
            .map_err(|e| format!("cannot bind a loopback port: {e}"))
    };
    let (runtime_api, first) = bind()?;
    let (endpoints, second) = bind()?;
    drop((first, second));
    Ok((runtime_api, endpoints))
}

/// How one timed process ended.
struct Exit {
    took: Duration,
    status: ExitStatus,
    killed: bool,
    stderr: String,
}

/// Starts `program` with exactly `env`, and times it from just before `spawn` to its exit;
/// killed past `timeout`.
///
/// This thread blocks in `waitid(WNOWAIT)`, so the exit is seen the moment it happens (no
/// polling); a watchdog thread kills the process past `timeout`. WNOWAIT leaves the process
/// unreaped until the watchdog is done, so its pid cannot be reused by anything else while the
/// watchdog may still signal it.
fn start_to_exit(
    program: &Path,
    args: &[&OsStr],
    env: &[(String, String)],
    stderr_path: &Path,
    timeout: Duration,
) -> Result<Exit, String> {
    let stderr =
        File::create(stderr_path).map_err(|e| format!("{}: {e}", stderr_path.display()))?;
    let started = Instant::now();
    let mut child = Command::new(program)
        .args(args)
        .env_clear()
        .envs(env.iter().map(|(k, v)| (k, v)))
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(stderr)
        .spawn()
        .map_err(|e| format!("cannot start {}: {e}", program.display()))?;
    let pid = child.id();
    let (done, watching) = mpsc::channel::<()>();
    let watchdog = thread::spawn(move || {
        if watching.recv_timeout(timeout) == Err(RecvTimeoutError::Timeout) {
            // SAFETY: kill(2) with a pid this process started and has not reaped (see above).
            unsafe { libc::kill(pid as libc::pid_t, libc::SIGKILL) };
            return true;
        }
        false
    });
    let exited = wait_exited(pid);
    let took = started.elapsed();
    let _ = done.send(());
    let killed = watchdog.join().unwrap_or(false);
    let status = child
        .wait()
        .map_err(|e| format!("cannot reap {}: {e}", program.display()))?;
    exited.map_err(|e| format!("cannot wait for {}: {e}", program.display()))?;
    Ok(Exit {
        took,
        status,
        killed,
        stderr: std::fs::read_to_string(stderr_path).unwrap_or_default(),
    })
}

/// Blocks until the process `pid` has exited, without reaping it.
fn wait_exited(pid: u32) -> std::io::Result<()> {
    loop {
        // SAFETY: `info` is a valid, writable siginfo_t; waitid only writes into it.
        let mut info: libc::siginfo_t = unsafe { std::mem::zeroed() };
        // SAFETY: as above; P_PID with a child of this process.
        let rc = unsafe {
            libc::waitid(
                libc::P_PID,
                pid as libc::id_t,
                &mut info,
                libc::WEXITED | libc::WNOWAIT,
            )
        };
        if rc == 0 {
            return Ok(());
        }
        // Interrupted by a signal: wait again. Any other error (none expected for a child of
        // this process): the run has no time.
        let error = std::io::Error::last_os_error();
        if error.kind() != std::io::ErrorKind::Interrupted {
            return Err(error);
        }
    }
}

/// What a run must show to count: exit code 1 and, on stderr, the Runtime API's address in a
/// connection error — not a crash, a missing import or a configuration error, which exit fast
/// too. None when it did; else what happened.
fn unexpected(who: &str, exit: &Exit, runtime_api: SocketAddr, marker: &str) -> Option<String> {
    if exit.killed {
        return Some(format!(
            "{who} did not exit within {EXIT_TIMEOUT:?} with the Runtime API unreachable (killed)"
        ));
    }
    let address = runtime_api.to_string();
    let named = exit
        .stderr
        .lines()
        .any(|line| line.contains(&address) && line.contains(marker));
    if exit.status.code() == Some(1) && named {
        return None;
    }
    Some(format!(
        "{who} ended with {} after {:.1} ms, not on the unreachable Runtime API: {}",
        exit.status,
        exit.took.as_secs_f64() * 1e3,
        tail(&exit.stderr)
    ))
}

/// The comparison: the venv, one unmeasured run of each (the page cache, and a check that both
/// end as expected), then `count` pairs.
pub fn compare(root: &Path, rust_binary: &Path, count: usize) -> Result<Comparison, String> {
    let peer_file = root.join(PEER);
    if !peer_file.is_file() {
        return Err(format!("{} is missing", peer_file.display()));
    }
    let scratch = binary::target_dir(root).join("bench-scratch").join("boto3");
    std::fs::create_dir_all(&scratch).map_err(|e| format!("{}: {e}", scratch.display()))?;
    let peer = ensure_peer(&scratch)?;

    // The Lambda environment of the start-up figure, the Runtime API and the endpoints pointed
    // at nothing. Both processes get exactly this and nothing else.
    let (runtime_api, endpoints) = dead_addresses()?;
    let env = binary::lambda_env(runtime_api, &format!("http://{endpoints}"), &[]);
    let rust_err = scratch.join("rust.err");
    let peer_err = scratch.join("boto3.err");
    // The Rust binary's error names the address it could not connect to (lambda_runtime's
    // hyper client: "tcp connect error", the address, "Connection refused").
    let rust = || {
        let exit = start_to_exit(rust_binary, &[], &env, &rust_err, EXIT_TIMEOUT)?;
        let failure = unexpected("the Rust binary", &exit, runtime_api, "connect");
        Ok::<_, String>((exit, failure))
    };
    let boto3 = || {
        let exit = start_to_exit(
            &peer.python,
            &[peer_file.as_os_str()],
            &env,
            &peer_err,
            EXIT_TIMEOUT,
        )?;
        let failure = unexpected("the boto3 Lambda", &exit, runtime_api, PEER_MARKER);
        Ok::<_, String>((exit, failure))
    };

    let (warm_rust, failure) = rust()?;
    if let Some(failure) = failure {
        return Err(failure);
    }
    if let (_, Some(failure)) = boto3()? {
        return Err(failure);
    }
    let rust_exit = format!(
        "{}: {}",
        warm_rust.status,
        warm_rust
            .stderr
            .lines()
            .find(|l| l.contains(&runtime_api.to_string()))
            .map(tail)
            .unwrap_or_default()
    );

    let mut comparison = Comparison {
        boto3: peer.boto3.clone(),
        python: peer.python_version.clone(),
        pairs: Vec::with_capacity(count),
        failures: Vec::new(),
        rust_exit,
    };
    for i in 0..count {
        let rust_first = i % 2 == 0;
        let (rust_run, boto3_run) = if rust_first {
            let r = rust()?;
            (r, boto3()?)
        } else {
            let b = boto3()?;
            (rust()?, b)
        };
        let failures: Vec<String> = [&rust_run.1, &boto3_run.1]
            .into_iter()
            .flatten()
            .map(|f| format!("pair {}: {f}", i + 1))
            .collect();
        if failures.is_empty() {
            comparison.pairs.push(Pair {
                rust: rust_run.0.took,
                boto3: boto3_run.0.took,
                rust_first,
            });
        } else {
            comparison.failures.extend(failures);
        }
    }
    if comparison.pairs.is_empty() {
        return Err(format!(
            "no pair completed: {}",
            comparison.failures.join("; ")
        ));
    }
    Ok(comparison)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(ms: f64) -> Duration {
        Duration::from_secs_f64(ms / 1e3)
    }

    fn pair(rust: f64, boto3: f64) -> Pair {
        Pair {
            rust: ms(rust),
            boto3: ms(boto3),
            rust_first: true,
        }
    }

    fn comparison(pairs: Vec<Pair>) -> Comparison {
        Comparison {
            boto3: BOTO3_VERSION.into(),
            python: "3.11.7".into(),
            pairs,
            failures: Vec::new(),
            rust_exit: "exit status: 1".into(),
        }
    }

    #[test]
    fn median_of_odd_even_and_none() {
        assert_eq!(median(vec![3.0, 1.0, 2.0]), Some(2.0));
        assert_eq!(median(vec![4.0, 1.0, 3.0, 2.0]), Some(2.5));
        assert_eq!(median(Vec::new()), None);
        assert_eq!(
            median_duration(vec![ms(4.0), ms(1.0), ms(3.0), ms(2.0)]),
            Some(ms(2.5))
        );
    }

    /// The median of the per-pair ratios, not the ratio of the medians: a pair slowed together
    /// by load keeps its ratio.
    #[test]
    fn the_ratio_is_the_median_of_the_paired_ratios() {
        let c = comparison(vec![
            pair(5.0, 250.0),  // 50×
            pair(10.0, 700.0), // 70×, both slowed
            pair(4.0, 320.0),  // 80×
        ]);
        assert_eq!(c.rust_median(), Some(ms(5.0)));
        assert_eq!(c.boto3_median(), Some(ms(320.0)));
        // The ratio of the medians would be 64×.
        let ratio = c.ratio().unwrap();
        assert!((ratio - 70.0).abs() < 1e-9, "{ratio}");
        let (min, max) = c.ratio_range().unwrap();
        assert!((min - 50.0).abs() < 1e-9 && (max - 80.0).abs() < 1e-9);
        assert_eq!(comparison(Vec::new()).ratio(), None);
    }

    #[test]
    fn pairs_per_comparison() {
        assert_eq!((pairs(false), pairs(true)), (21, 7));
    }

    #[test]
    fn the_tail_of_an_error_fits_a_cell() {
        assert_eq!(tail("a\n\n b | c \n d\n"), "b / c / d");
        assert_eq!(tail(&"x".repeat(400)).chars().count(), 301);
        assert_eq!(tail(""), "");
    }

    fn exit(code: i32, stderr: &str) -> Exit {
        use std::os::unix::process::ExitStatusExt;
        Exit {
            took: ms(5.0),
            status: ExitStatus::from_raw(code << 8),
            killed: false,
            stderr: stderr.into(),
        }
    }

    /// A real process: timed to its exit with its stderr; one that does not exit is killed at
    /// the timeout.
    #[test]
    fn start_to_exit_times_and_bounds_a_process() {
        let dir =
            std::env::temp_dir().join(format!("drs-failback-bench-boto3-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let err = dir.join("err");
        let sh = Path::new("/bin/sh");
        let env = [("PATH".to_owned(), "/usr/bin:/bin".to_owned())];
        let script = OsStr::new("echo gone >&2; exit 1");
        let exit = start_to_exit(
            sh,
            &[OsStr::new("-c"), script],
            &env,
            &err,
            Duration::from_secs(10),
        )
        .unwrap();
        assert_eq!(exit.status.code(), Some(1));
        assert_eq!(exit.stderr, "gone\n");
        assert!(!exit.killed && exit.took < Duration::from_secs(5));

        let stuck = OsStr::new("exec sleep 30");
        let timeout = Duration::from_millis(200);
        let exit = start_to_exit(sh, &[OsStr::new("-c"), stuck], &env, &err, timeout).unwrap();
        assert!(exit.killed && exit.status.code().is_none());
        assert!(
            exit.took >= timeout && exit.took < Duration::from_secs(10),
            "{:?}",
            exit.took
        );
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn a_run_counts_only_when_it_ended_on_the_runtime_api() {
        let api = SocketAddr::from(([127, 0, 0, 1], 4321));
        let refused = "Error: hyper_util::client::legacy::Error(Connect, ConnectError(\"tcp connect error\", 127.0.0.1:4321, Os { code: 111 }))";
        assert_eq!(unexpected("rust", &exit(1, refused), api, "connect"), None);
        // A panic (code 101), the endpoint's port, a configuration error: not the Runtime API.
        assert!(unexpected("rust", &exit(101, refused), api, "connect").is_some());
        let other_port = refused.replace("4321", "4322");
        assert!(unexpected("rust", &exit(1, &other_port), api, "connect").is_some());
        let import = "ModuleNotFoundError: No module named 'boto3'";
        let failure = unexpected("the boto3 Lambda", &exit(1, import), api, PEER_MARKER).unwrap();
        assert!(
            failure.contains("exit status: 1") && failure.contains("boto3'"),
            "{failure}"
        );
        let peer = "runtime API unreachable at http://127.0.0.1:4321/2018-06-01/runtime: <urlopen error [Errno 111] Connection refused>";
        assert_eq!(unexpected("boto3", &exit(1, peer), api, PEER_MARKER), None);
        let mut killed = exit(1, peer);
        killed.killed = true;
        assert!(
            unexpected("boto3", &killed, api, PEER_MARKER)
                .unwrap()
                .contains("killed")
        );
    }
}
