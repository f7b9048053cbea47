//! BENCHMARKS.md: every figure, how it was measured, and the targets met or not, with the reason.

use std::fmt::Write;
use std::time::Duration;

use drs_sim::Operation;

use crate::binary::Arm64;
use crate::report::*;
use crate::verdicts::{causes, targets};
use crate::workload::{
    self, BURST, CONCURRENCY, DEADLINE, IDS_PER_READ, JOB_PENDING, JOB_STARTED, LATENCY, PER_JOB,
    POLL_SECONDS, Profile, QUOTA_JOBS, QUOTA_SERVERS, RAISED_QUOTAS, RATE_PER_SECOND, Variant,
};

pub fn markdown(report: &Report) -> String {
    let mut md = String::new();
    let m = &report.machine;
    let _ = writeln!(md, "# Benchmarks\n");
    if report.quick {
        let _ = writeln!(
            md,
            "> Quick run (`--quick`: N = {:?}, fewer cold starts). The full figures come from the command below.\n",
            report.ns
        );
    }
    let _ = writeln!(
        md,
        "Every figure below comes from one command, run at the repository root:\n\n```sh\n{}\n```\n\n\
         It builds the Lambda's release binary (`cargo build --release -p drs-failback --bin drs-failback`), runs every \
         workload, rewrites this file and the plot [`{}`]({}), and prints the tables. It needs no AWS account or network: \
         everything talks to `127.0.0.1` only, and it stops every simulator, stand-in and process it started. \
         This run took {:.0} s, of which {:.0} s measuring and the rest building (the builds are cached after the first run). \
         `-- --quick` runs N = 100 and 1 000 only and writes to `target/bench-quick/` instead.\n",
        report.command,
        report.svg_path,
        report.svg_path,
        report.bench_time.as_secs_f64(),
        report.measure_time.as_secs_f64()
    );
    let _ = writeln!(md, "| | |\n| --- | --- |");
    let _ = writeln!(md, "| date (UTC) | {} |", m.date);
    let _ = writeln!(
        md,
        "| machine | {} cores ({}), {}, {} |",
        m.cores, m.cpu, m.memory, m.kernel
    );
    let _ = writeln!(
        md,
        "| load average (1, 5, 15 min) | {} at the start, {} at the end ({} cores, shared with other work: start-up times move with it) |",
        m.load_before, m.load_after, m.cores
    );
    let _ = writeln!(md, "| toolchain | {} |", m.rustc);
    let _ = writeln!(md, "| commit | {} |", m.commit);
    let _ = writeln!(
        md,
        "| release profile | {} |\n",
        if report.profile_release.is_empty() {
            "Cargo's defaults (no `[profile.release]` in Cargo.toml)".to_owned()
        } else {
            format!("`{}`", report.profile_release.replace('\n', " "))
        }
    );
    if !report.failures.is_empty() {
        let _ = writeln!(md, "**Runs that failed:**\n");
        for failure in &report.failures {
            let _ = writeln!(md, "- {failure}");
        }
        let _ = writeln!(md);
    }

    // Targets.
    let _ = writeln!(md, "## Targets\n");
    let _ = writeln!(
        md,
        "| target | measured | peer / baseline | verdict | reason |\n| --- | --- | --- | --- | --- |"
    );
    for t in targets(report) {
        let _ = writeln!(
            md,
            "| {} | {} | {} | {} | {} |",
            t.name, t.measured, t.peer, t.verdict, t.reason
        );
    }
    let _ = writeln!(md);

    let causes = causes(report);
    if !causes.is_empty() {
        let _ = writeln!(md, "### Causes of the misses\n");
        for cause in causes {
            let _ = writeln!(md, "- {cause}");
        }
        let _ = writeln!(md);
    }

    // Method.
    let _ = writeln!(md, "## How it is measured\n");
    let _ = writeln!(
        md,
        "**The handler, for real.** Each run starts a fresh `drs-sim` simulator (DRS + EventBridge over real HTTP on \
         loopback) and calls `Failback::handle` of the real function with the real AWS SDK clients (`SdkDrs`, \
         `SdkEventBridge`) built from `drs_sim::sdk_config` (dummy credentials, the simulator's endpoint), with a \
         Lambda-like deadline of {} s. The handler runs on a current-thread tokio runtime, as in the Lambda binary; the \
         simulator runs on its own one-thread runtime in the same process. Every count comes from the simulator's own \
         call records, not from what the function says.\n",
        DEADLINE.as_secs()
    );
    let _ = writeln!(
        md,
        "**Real time, not a paused clock.** Wall time is measured on the real clock: latency, `Retry-After` waits, \
         pacing and job lifecycles all take real seconds. A paused tokio clock would run the 5 000-instance throttled \
         case in about a second, but then the \"wall time\" would be model time and CPU contention would not show; \
         in real time the whole benchmark still fits in a few minutes on {} cores, because the waits (not the CPU) \
         dominate. CPU time per run is reported beside it (the handler's thread, and the whole process including \
         the simulator).\n",
        m.cores
    );
    let _ = writeln!(
        md,
        "**Profiles** (simulator latency {} ms on every API call in all of them):\n",
        LATENCY.as_millis()
    );
    let _ = writeln!(
        md,
        "| profile | simulator | function settings (the rest default) |\n| --- | --- | --- |"
    );
    for profile in Profile::ALL {
        let sim = match profile {
            Profile::NoFaults => format!(
                "no faults; quotas raised ({} servers in active jobs, {} active jobs) so all N launch at once",
                RAISED_QUOTAS.servers_in_active_jobs, RAISED_QUOTAS.active_jobs
            ),
            Profile::Throttling => format!(
                "as no faults, plus a token bucket on StartFailbackLaunch: {RATE_PER_SECOND} per second, burst {BURST}; the excess gets 429 ThrottlingException with `Retry-After` = seconds to the next token, rounded up, at least 1"
            ),
            Profile::QuotaPressure => format!(
                "DRS default quotas: {QUOTA_SERVERS} servers in active jobs, {QUOTA_JOBS} active jobs; each job PENDING {} s then STARTED {} s, then COMPLETED (frees its servers)",
                JOB_PENDING.as_secs(),
                JOB_STARTED.as_secs()
            ),
        };
        let settings: Vec<String> = workload::settings(profile, Variant::Project)
            .iter()
            .map(|(k, v)| format!("`{k}={v}`"))
            .collect();
        let _ = writeln!(
            md,
            "| {} | {sim} | {} |",
            profile.name(),
            settings.join(" ")
        );
    }
    let _ = writeln!(md);
    let _ = writeln!(
        md,
        "**Variants.** *project*: the function as shipped (its own retry policy: `Retry-After`-honouring backoff, \
         `THROTTLE_MAX_RETRIES=8`; adaptive pacing on; the SDK's retries off). *project, pacing off*: the same with \
         `ADAPTIVE_PACING=false` (throttling profile only: pacing does nothing until DRS throttles). \
         *baseline: SDK standard retry*: the peer — the same handler and profile, but the DRS client is \
         `SdkDrs::with_sdk_retries` on an `SdkConfig` with `RetryConfig::standard()` (3 attempts, exponential backoff \
         with jitter, the SDK's retry quota), and the function's own retrying is off (`THROTTLE_MAX_RETRIES=0`, \
         `ADAPTIVE_PACING=false`). The function's planning (pre-flight, quota-aware chunks, waiting for capacity) is \
         the same in every variant: only the retrying differs.\n"
    );
    let _ = writeln!(
        md,
        "**Minimum calls** (every instance launched): StartFailbackLaunch ⌈N/{PER_JOB}⌉; DescribeRecoveryInstances \
         ⌈N/{IDS_PER_READ}⌉; DescribeJobs 1 (the active jobs, for the quotas), and under quota pressure one more per \
         later wave (⌈N/{QUOTA_SERVERS}⌉ in all); PutEvents ⌈events/10⌉ with events = jobs + 1 (one per job and the \
         run summary). **Wasted calls**: throttled (429) or refused (402, 409, 400) calls over all calls of the run.\n"
    );
    let _ = writeln!(
        md,
        "**Ideal wall time** — the fewest calls, at most {CONCURRENCY} in flight (the function's \
         `MAX_CONCURRENT_LAUNCHES`), each taking the latency L = {} ms, in three dependent phases:\n\n\
         - reads: DescribeJobs and the ⌈N/200⌉ DescribeRecoveryInstances are independent: ⌈(1 + ⌈N/200⌉)/{CONCURRENCY}⌉ × L;\n\
         - launches — no faults: ⌈J/{CONCURRENCY}⌉ × L with J = ⌈N/100⌉; throttling: the burst of {BURST} at once, then one \
         call per token: (J − {BURST})/{RATE_PER_SECOND} s + L (⌈J/{CONCURRENCY}⌉ × L when J ≤ {BURST}); quota pressure: \
         W = ⌈N/{QUOTA_SERVERS}⌉ waves, each ⌈J_w/{CONCURRENCY}⌉ × L, and between waves the {} s a job holds its servers: \
         Σ⌈J_w/{CONCURRENCY}⌉ × L + (W − 1) × {} s (a lower bound: it knows when jobs finish without polling);\n\
         - PutEvents: ⌈P/{CONCURRENCY}⌉ × L.\n",
        LATENCY.as_millis(),
        (JOB_PENDING + JOB_STARTED).as_secs(),
        (JOB_PENDING + JOB_STARTED).as_secs()
    );
    let _ = writeln!(
        md,
        "**Start-up**: the release binary started {} times as Lambda starts it (a fresh process, only the Lambda \
         environment: `AWS_LAMBDA_RUNTIME_API` pointing at a minimal Runtime API stand-in in the bench, function name, \
         memory, version, log names, dummy credentials, `AWS_REGION`, `AWS_EC2_METADATA_DISABLED=true`, \
         `AWS_ENDPOINT_URL_DRS`/`_EVENTBRIDGE` at a simulator); start-up = from just before `spawn` to the arrival of \
         its first `GET /2018-06-01/runtime/invocation/next` at the stand-in, which then holds the poll while the bench \
         reads `VmRSS` and kills the process. **Peak RSS**: a fresh process serving one real invocation handed out by \
         the stand-in (headers `Lambda-Runtime-Aws-Request-Id`, `-Deadline-Ms`, `-Invoked-Function-Arn`) of N ready \
         instances with quotas raised so all launch, against a simulator with {} ms latency; after its `POST \
         .../response` the bench reads `VmHWM` from `/proc/<pid>/status`. **arm64 size**: the stripped `bootstrap` \
         that `cargo lambda build --release --arm64` makes (it needs `rustup target add aarch64-unknown-linux-gnu` and \
         `pip install cargo-lambda`, which brings Zig; without them the figure is reported NOT MEASURED with the \
         cause). MB = 10^6 bytes.\n",
        report
            .binary
            .as_ref()
            .ok()
            .and_then(|b| b.startup.as_ref().ok())
            .map_or(0, |s| s.times.len() + s.failures),
        LATENCY.as_millis()
    );

    // Wall time.
    let _ = writeln!(md, "## Wall time\n");
    let _ = writeln!(
        md,
        "![wall time against N per profile, project vs baseline]({})\n",
        report.svg_path
    );
    let _ = writeln!(
        md,
        "| profile | N | variant | wall (s) | ideal (s) | ratio | outcome | CPU handler thread (s) | CPU process (s) | repetitions |\n\
         | --- | ---: | --- | ---: | ---: | ---: | --- | ---: | ---: | --- |"
    );
    for run in &report.runs {
        let _ = writeln!(
            md,
            "| {} | {} | {} | {} | {} | {:.2} | {} | {} | {} | {} |",
            run.profile.name(),
            run.n,
            run.variant.name(),
            secs(run.wall),
            secs(run.ideal),
            run.ratio(),
            outcome(run),
            secs(run.handler_cpu),
            secs(run.process_cpu),
            spread(run)
        );
    }
    let _ = writeln!(md);

    // Calls.
    let _ = writeln!(md, "## Calls\n");
    let _ = writeln!(
        md,
        "Each cell: calls made / minimum (and how many were throttled or refused).\n\n\
         | profile | N | variant | StartFailbackLaunch | DescribeRecoveryInstances | DescribeJobs | PutEvents | all calls | wasted |\n\
         | --- | ---: | --- | --- | --- | --- | --- | ---: | ---: |"
    );
    for run in &report.runs {
        let _ = writeln!(
            md,
            "| {} | {} | {} | {} | {} | {} | {} | {} | {} |",
            run.profile.name(),
            run.n,
            run.variant.name(),
            calls_cell(run, Operation::StartFailbackLaunch),
            calls_cell(run, Operation::DescribeRecoveryInstances),
            calls_cell(run, Operation::DescribeJobs),
            calls_cell(run, Operation::PutEvents),
            run.total_calls(),
            pct(run.wasted_share())
        );
    }
    let _ = writeln!(md);

    // Pacing.
    let _ = writeln!(md, "## Adaptive pacing under throttling\n");
    let largest = report.ns.iter().copied().max().unwrap_or(0);
    let _ = writeln!(
        md,
        "![StartFailbackLaunch over time under throttling at N = {largest}]({})\n",
        report.timeline_path
    );
    let _ = writeln!(
        md,
        "The service admits {RATE_PER_SECOND} StartFailbackLaunch per second (burst {BURST}). Admitted rate: admitted \
         launches per second from the first admitted call to the last. A rate that converges shows as few throttles in \
         the second half of the launch window.\n\n\
         | N | variant | launch calls | throttled | throttled in the 1st second | admitted rate (/s) | throttled 1st half / 2nd half (calls in 2nd half) | before first launch (s) | launch window (s) | wall (s) | outcome |\n\
         | ---: | --- | ---: | ---: | ---: | ---: | --- | ---: | ---: | ---: | --- |"
    );
    for run in report
        .runs
        .iter()
        .filter(|r| r.profile == Profile::Throttling)
    {
        let launches = run.op(Operation::StartFailbackLaunch);
        let t = &run.timeline;
        let _ = writeln!(
            md,
            "| {} | {} | {} | {} | {} | {} | {} / {} ({}) | {} | {} | {} | {} |",
            run.n,
            run.variant.name(),
            launches.total,
            launches.throttled,
            t.throttled_first_second,
            t.admitted_rate.map_or("—".into(), |r| format!("{r:.2}")),
            t.throttled_first_half,
            t.throttled_second_half,
            t.calls_second_half,
            secs(Duration::from_millis(t.before_first_launch_ms)),
            secs(Duration::from_millis(t.launch_window_ms)),
            secs(run.wall),
            outcome(run)
        );
    }
    let _ = writeln!(md);

    let probe = &report.pacer;
    let rate = |r: Option<f64>| r.map_or("none".to_owned(), |r| format!("{r:.2}/s"));
    let _ = writeln!(
        md,
        "The pacer itself (`drs_failback::launch::pacing::Pacer` driven directly by the bench on a synthetic clock, no I/O):\n\n\
         | situation | pacer's rate |\n| --- | --- |\n\
         | after the first round: {BURST} admitted, {} throttled together | {} |\n\
         | admitted launches (at its own pace) to climb back to {RATE_PER_SECOND}/s | {} |\n\
         | then {} throttles arriving together | {} |\n",
        CONCURRENCY.saturating_sub(BURST as usize),
        rate(probe.after_first_round),
        match (probe.climb_calls, probe.climb_seconds) {
            (Some(calls), Some(seconds)) => format!("{calls} ({seconds:.1} s)"),
            _ => "does not get there".to_owned(),
        },
        probe.burst.len().saturating_sub(1),
        probe
            .burst
            .iter()
            .map(|r| rate(*r))
            .collect::<Vec<_>>()
            .join(" → ")
    );

    // Quota pressure detail.
    let _ = writeln!(md, "## Quota pressure\n");
    let _ = writeln!(
        md,
        "The function plans within the quotas it read, waits for capacity by polling DescribeJobs every \
         {POLL_SECONDS} s (`CAPACITY_POLL_SECONDS`, the smallest allowed), and launches the next wave when jobs \
         complete. The ideal knows exactly when a job completes; the poll adds up to {POLL_SECONDS} s (+ one call) per \
         wave.\n\n\
         | N | variant | waves | DescribeJobs (min) | 402 refused | wall (s) | ideal (s) | ratio | outcome |\n\
         | ---: | --- | ---: | ---: | ---: | ---: | ---: | ---: | --- |"
    );
    for run in report
        .runs
        .iter()
        .filter(|r| r.profile == Profile::QuotaPressure)
    {
        let _ = writeln!(
            md,
            "| {} | {} | {} | {} ({}) | {} | {} | {} | {:.2} | {} |",
            run.n,
            run.variant.name(),
            workload::waves(run.n),
            run.op(Operation::DescribeJobs).total,
            run.minimum.describe_jobs,
            run.op(Operation::StartFailbackLaunch).refused,
            secs(run.wall),
            secs(run.ideal),
            run.ratio(),
            outcome(run)
        );
    }
    let _ = writeln!(md);

    // The whole failback.
    let _ = writeln!(
        md,
        "## A whole failback: the quota-bound pipeline, tracked to the end\n"
    );
    match &report.pipeline {
        Ok(p) => {
            let job = crate::pipeline::JOB.pending + crate::pipeline::JOB.started;
            let _ = writeln!(
                md,
                "{} instances through DRS's default quotas ({} servers in active jobs, {} per job), jobs of {:.1} minutes \
                 (one instance in 50 fails converting), run as the state machine runs it (`drs_failback_local::arc`: \
                 launch, track every {} s, launch the deferred as jobs finish, a final call) through the function's \
                 dispatch and the real SDK clients, against the simulator in-process with {} ms per DRS call, on a \
                 paused clock: hours of DRS time in seconds. The ideal pipeline keeps the quota full, starting each \
                 wave the moment the one before finishes.\n\n\
                 | | |\n| --- | --- |\n\
                 | simulated time | {:.1} min |\n\
                 | ideal pipeline | {:.1} min ({} waves × {:.1} min) |\n\
                 | throughput against the ideal | {} |\n\
                 | launch rounds | {} |\n\
                 | tracking calls | {} ({:.2} per minute) |\n\
                 | results | {} succeeded, {} failed{} |",
                crate::pipeline::N,
                crate::pipeline::SERVERS_IN_FLIGHT,
                crate::pipeline::PER_JOB,
                job.as_secs_f64() / 60.0,
                crate::pipeline::TRACK_INTERVAL.as_secs(),
                crate::pipeline::CALL_LATENCY.as_millis(),
                p.wall.as_secs_f64() / 60.0,
                p.ideal.as_secs_f64() / 60.0,
                crate::pipeline::N.div_ceil(crate::pipeline::SERVERS_IN_FLIGHT),
                job.as_secs_f64() / 60.0,
                pct(p.throughput()),
                p.rounds,
                p.tracking_calls,
                p.per_minute(p.tracking_calls),
                p.succeeded,
                p.failed,
                if p.complete { "" } else { " (incomplete)" }
            );
            for (operation, calls) in &p.reads {
                let _ = writeln!(
                    md,
                    "| {} calls | {calls} ({:.2} per minute) |",
                    operation.as_str(),
                    p.per_minute(*calls)
                );
            }
            let _ = writeln!(md);
        }
        Err(e) => {
            let _ = writeln!(md, "Not measured: {e}\n");
        }
    }

    // Binary.
    let _ = writeln!(md, "## Start-up, memory and size of the release binary\n");
    match &report.binary {
        Err(e) => {
            let _ = writeln!(md, "Not measured: {e}\n");
        }
        Ok(b) => {
            let _ = writeln!(md, "Binary: `{}`.\n", b.path);
            let _ = writeln!(md, "| figure | value |\n| --- | --- |");
            let _ = writeln!(md, "| size as built | {} |", mb_text(b.size.bytes));
            if let Some(stripped) = b.size.stripped {
                let _ = writeln!(
                    md,
                    "| size after `strip --strip-all` | {} |",
                    mb_text(stripped)
                );
            }
            match &b.startup {
                Ok(s) if !s.times.is_empty() => {
                    let mut sorted = s.times.clone();
                    sorted.sort();
                    let p = |q| percentile(&sorted, q).map_or("—".into(), ms);
                    let _ = writeln!(
                        md,
                        "| start-up to first poll, {} cold starts | median {} ms, p90 {} ms, min {} ms, max {} ms{} |",
                        sorted.len(),
                        p(50.0),
                        p(90.0),
                        ms(sorted[0]),
                        ms(sorted[sorted.len() - 1]),
                        if s.failures > 0 {
                            format!(", {} starts never polled", s.failures)
                        } else {
                            String::new()
                        }
                    );
                    if !s.idle_rss_kb.is_empty() {
                        let mut idle = s.idle_rss_kb.clone();
                        idle.sort_unstable();
                        let _ = writeln!(
                            md,
                            "| resident at the first poll (median) | {} |",
                            mb_text(idle[idle.len() / 2] * 1024)
                        );
                    }
                    let all: Vec<String> = s.times.iter().map(|t| ms(*t)).collect();
                    let _ = writeln!(md, "| every start (ms, in order) | {} |", all.join(", "));
                    if let Ok(bare) = &b.startup_without_certificates
                        && !bare.times.is_empty()
                    {
                        let mut bare_sorted = bare.times.clone();
                        bare_sorted.sort();
                        let median = percentile(&sorted, 50.0).unwrap_or_default();
                        let bare_median = percentile(&bare_sorted, 50.0).unwrap_or_default();
                        let _ = writeln!(
                            md,
                            "| start-up with `SSL_CERT_FILE`/`SSL_CERT_DIR` pointed at nothing, {} cold starts | median {} ms, p90 {} ms: {} ms of the median ({:.0}%) is the SDK's HTTPS client reading and parsing the system's root certificates when the clients are built ({} entries in /etc/ssl/certs here, plus the bundle; Lambda's provided.al2023 image has its own bundle) |",
                            bare_sorted.len(),
                            ms(bare_median),
                            percentile(&bare_sorted, 90.0).map_or("—".into(), ms),
                            ms(median.saturating_sub(bare_median)),
                            100.0 * median.saturating_sub(bare_median).as_secs_f64()
                                / median.as_secs_f64().max(1e-9),
                            b.certificate_entries
                        );
                    }
                }
                Ok(_) => {
                    let _ = writeln!(md, "| start-up | no start completed |");
                }
                Err(e) => {
                    let _ = writeln!(md, "| start-up | not measured: {e} |");
                }
            }
            for rss in &b.rss {
                match rss {
                    Ok(r) => {
                        let _ = writeln!(
                            md,
                            "| peak RSS, one invocation of N = {} | {} ({} launched in {} StartFailbackLaunch calls; invocation {} s) |",
                            r.n,
                            mb_text(r.peak_kb * 1024),
                            r.launched,
                            r.launches,
                            secs(r.invocation)
                        );
                    }
                    Err(e) => {
                        let _ = writeln!(md, "| peak RSS | not measured: {e} |");
                    }
                }
            }
            match &b.arm64 {
                Arm64::Measured { bytes } => {
                    let _ = writeln!(
                        md,
                        "| arm64 `bootstrap` (`cargo lambda build --release --arm64`) | {} |",
                        mb_text(*bytes)
                    );
                }
                Arm64::NotMeasured { cause } => {
                    let _ = writeln!(md, "| arm64 `bootstrap` | not measured: {cause} |");
                }
            }
            let _ = writeln!(md);
        }
    }
    md
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
        expect("BENCHMARKS.md", &markdown(&recorded()));
    }

    #[test]
    fn a_troubled_run_says_what_went_wrong() {
        expect("troubled.md", &markdown(&troubled()));
    }

    #[test]
    fn figures_not_measured_are_said_so() {
        expect("unmeasured.md", &markdown(&unmeasured()));
    }

    #[test]
    fn results_read_back_render_the_same() {
        let report = troubled();
        let json = serde_json::to_string(&report).unwrap();
        let back: Report = serde_json::from_str(&json).unwrap();
        assert_eq!(markdown(&back), markdown(&report));
    }
}
