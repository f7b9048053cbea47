//! What a benchmark run measured (the report), and the small formatting helpers the verdicts and
//! the Markdown share.

use std::fmt::Write;
use std::time::Duration;

use drs_sim::Operation;
use serde::{Deserialize, Serialize};

use crate::binary::{Arm64, Rss, Size, Startup};
use crate::boto3::Comparison as Boto3Comparison;
use crate::pipeline::Pipeline;
use crate::probe::PacerProbe;
use crate::readiness::Readiness;
use crate::targets::Targets;
use crate::workload::Run;

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Machine {
    pub cpu: String,
    pub cores: usize,
    pub memory: String,
    pub kernel: String,
    pub rustc: String,
    pub commit: String,
    pub date: String,
    /// /proc/loadavg when the run started and when it ended: the machine is shared.
    pub load_before: String,
    pub load_after: String,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct BinaryFigures {
    pub path: String,
    pub size: Size,
    pub startup: Result<Startup, String>,
    /// The same with the TLS trust store pointed at nothing.
    pub startup_without_certificates: Result<Startup, String>,
    pub rss: Vec<Result<Rss, String>>,
    pub arm64: Arm64,
    /// Entries in /etc/ssl/certs where the binary was measured: what its HTTPS client reads.
    pub certificate_entries: usize,
}

/// Everything a run measured: what BENCHMARKS.md and the plots are written from, and what
/// `--render` reads back (results.json beside them) to write them again without measuring.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Report {
    pub quick: bool,
    pub command: String,
    pub machine: Machine,
    pub ns: Vec<usize>,
    pub runs: Vec<Run>,
    pub failures: Vec<String>,
    pub binary: Result<BinaryFigures, String>,
    pub profile_release: String,
    pub svg_path: String,
    pub timeline_path: String,
    pub pacer: PacerProbe,
    pub pipeline: Result<Pipeline, String>,
    /// The same with jobs of varying length (absent from reports written before it).
    #[serde(default)]
    pub pipeline_varying: Option<Result<Pipeline, String>>,
    /// The pipeline with readiness arriving over time (absent from reports written before it).
    #[serde(default = "not_measured")]
    pub readiness: Result<Readiness, String>,
    /// Across 4 accounts and regions (absent from reports written before it).
    #[serde(default = "not_measured")]
    pub targets: Result<Targets, String>,
    /// Start-to-exit against a boto3 Lambda (None in reports written before it).
    #[serde(default)]
    pub boto3: Option<Result<Boto3Comparison, String>>,
    pub bench_time: Duration,
    /// The measurements alone, without the builds.
    pub measure_time: Duration,
}

fn not_measured<T>() -> Result<T, String> {
    Err("not measured by the run that wrote this report".into())
}

pub(crate) fn plural(count: usize, noun: &str) -> String {
    if count == 1 {
        format!("1 {noun}")
    } else {
        format!("{count} {noun}s")
    }
}

pub(crate) fn secs(d: Duration) -> String {
    let s = d.as_secs_f64();
    if s < 10.0 {
        format!("{s:.2}")
    } else {
        format!("{s:.1}")
    }
}

pub(crate) fn ms(d: Duration) -> String {
    format!("{:.2}", d.as_secs_f64() * 1e3)
}

/// Decimal megabytes (10^6 bytes): the stricter reading of "MB".
pub(crate) fn mb(bytes: u64) -> f64 {
    bytes as f64 / 1e6
}

pub(crate) fn mb_text(bytes: u64) -> String {
    format!(
        "{:.2} MB ({:.2} MiB)",
        mb(bytes),
        bytes as f64 / 1024.0 / 1024.0
    )
}

pub(crate) fn pct(x: f64) -> String {
    format!("{:.1}%", x * 100.0)
}

pub fn percentile(sorted: &[Duration], p: f64) -> Option<Duration> {
    if sorted.is_empty() {
        return None;
    }
    // Nearest rank.
    let rank = ((p / 100.0) * sorted.len() as f64).ceil().max(1.0) as usize;
    sorted.get(rank.min(sorted.len()) - 1).copied()
}

pub(crate) fn outcome(run: &Run) -> String {
    if let Some(error) = &run.error {
        return format!("error: {error}");
    }
    let mut text = format!("{} launched", run.launched);
    if run.deferred > 0 {
        let reasons: Vec<String> = run
            .deferred_reasons
            .iter()
            .map(|(reason, count)| format!("{count} {reason}"))
            .collect();
        let _ = write!(text, ", {} deferred ({})", run.deferred, reasons.join(", "));
    }
    if run.rejected > 0 {
        let _ = write!(text, ", {} rejected", run.rejected);
    }
    if run.skipped > 0 {
        let _ = write!(text, ", {} skipped", run.skipped);
    }
    if run.in_two_jobs > 0 {
        let _ = write!(text, ", **{} instances in two jobs**", run.in_two_jobs);
    }
    text
}

/// The spread over the repetitions, when there were several.
pub(crate) fn spread(run: &Run) -> String {
    if run.repeats.len() < 2 {
        return "1 run".into();
    }
    let walls: Vec<f64> = run.repeats.iter().map(|r| r.wall.as_secs_f64()).collect();
    let wasted: Vec<f64> = run.repeats.iter().map(|r| r.wasted).collect();
    let min = |v: &[f64]| v.iter().copied().fold(f64::INFINITY, f64::min);
    let max = |v: &[f64]| v.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    let launched: Vec<String> = run.repeats.iter().map(|r| r.launched.to_string()).collect();
    format!(
        "{} runs (median shown): wall {:.2}–{:.2} s, wasted {:.1}–{:.1}%, launched {}",
        run.repeats.len(),
        min(&walls),
        max(&walls),
        min(&wasted) * 100.0,
        max(&wasted) * 100.0,
        launched.join("/")
    )
}

pub(crate) fn calls_cell(run: &Run, operation: Operation) -> String {
    let calls = run.op(operation);
    let minimum = run.minimum.get(operation);
    let mut text = format!("{} / {}", calls.total, minimum);
    let mut extra = Vec::new();
    if calls.throttled > 0 {
        extra.push(format!("{} throttled", calls.throttled));
    }
    if calls.refused > 0 {
        extra.push(format!("{} refused", calls.refused));
    }
    if calls.failed > 0 {
        extra.push(format!("{} failed", calls.failed));
    }
    if !extra.is_empty() {
        let _ = write!(text, " ({})", extra.join(", "));
    }
    text
}
