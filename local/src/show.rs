//! What a person sees: a live progress line on a terminal (plain lines otherwise), and at the end
//! one row per requested instance — its result and why, or why it was never launched.

use std::io::{IsTerminal, Write};

use drs_failback::launch::answer::NotLaunchedGroup;
use drs_failback::launch::readiness::WaitingSummary;
use drs_failback::track::answer::TrackAnswer;
use drs_failback::track::results::{InstanceResult, ResultGroup};
use serde::Serialize;

use crate::arc::Progress;

/// Progress as one line: rewritten in place on a terminal, printed once per change otherwise.
pub struct ProgressLine {
    terminal: bool,
    last: Option<String>,
    /// Where, when several lines run at once (then each prints plain lines, prefixed).
    label: Option<String>,
}

impl ProgressLine {
    pub fn new() -> Self {
        ProgressLine {
            terminal: std::io::stdout().is_terminal(),
            last: None,
            label: None,
        }
    }

    /// One of several at once (an account and region of a step): plain lines, `label` first.
    pub fn labeled(label: &str) -> Self {
        ProgressLine {
            terminal: false,
            last: None,
            label: Some(label.to_owned()),
        }
    }

    pub fn show(&mut self, progress: &Progress) {
        let line = match &self.label {
            Some(label) => format!("{label} {}", progress_text(progress)),
            None => progress_text(progress),
        };
        // Plain output only when a count changes; the clock alone is not news.
        let counts = line.split_once(']').map_or("", |(_, rest)| rest).to_owned();
        if !self.terminal && self.last.as_deref() == Some(counts.as_str()) {
            return;
        }
        let mut out = std::io::stdout().lock();
        // A terminal gets the line redrawn in place (carriage return, clear line).
        let _ = if self.terminal {
            write!(out, "\r\x1b[2K{line}")
        } else {
            writeln!(out, "{line}")
        };
        let _ = out.flush();
        self.last = Some(counts);
    }

    /// Ends the live line, so what follows starts on its own.
    pub fn done(&mut self) {
        if self.terminal && self.last.is_some() {
            println!();
        }
    }
}

impl Default for ProgressLine {
    fn default() -> Self {
        Self::new()
    }
}

/// ` (3 waiting for readiness: INITIAL_SYNC 2, INITIATING 1 · 12.5 GiB left · ETA …)`.
fn readiness_text(w: &WaitingSummary) -> String {
    let states: Vec<String> = w
        .by_state
        .iter()
        .map(|(state, n)| format!("{state} {n}"))
        .collect();
    let eta = w
        .latest_eta
        .as_ref()
        .map_or(String::new(), |eta| format!(" · ETA {eta}"));
    format!(
        " ({} waiting for readiness: {} · {:.1} GiB left{eta})",
        w.instances,
        states.join(", "),
        w.bytes_left as f64 / f64::from(1u32 << 30)
    )
}

pub fn progress_text(p: &Progress) -> String {
    let crashes = match p.crashes {
        0 => String::new(),
        n => format!(" · {n} crashed launch(es) sent again"),
    };
    let parts = match p.parts {
        0 | 1 => String::new(),
        n => format!(" · step execution part {n} (handed over)"),
    };
    let readiness = p.readiness.as_ref().map_or(String::new(), readiness_text);
    format!(
        "[{:>4}s] round {} · {} launched · {} succeeded · {} failed · {} running · {} deferred{readiness} · {} not launched{crashes}{parts}",
        p.elapsed_seconds,
        p.rounds,
        p.launched,
        p.succeeded,
        p.failed,
        p.running,
        p.waiting,
        p.not_launched
    )
}

/// One row of the final table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Row {
    pub id: String,
    pub result: String,
    pub reason: String,
    pub job: String,
}

/// A row per requested instance: launched ones with their result, the others with their outcome.
pub fn rows(answer: &TrackAnswer) -> Vec<Row> {
    let mut rows = Vec::new();
    for job in &answer.jobs {
        for result in job.instances.iter().flatten() {
            rows.push(instance_row(result, &job.job_id, name(&result.result)));
        }
        for group in job.groups.iter().flatten() {
            rows.extend(group_rows(group, &job.job_id, name(&group.result)));
        }
    }
    for group in answer.groups.iter().flatten() {
        rows.extend(group_rows(group, "", name(&group.result)));
    }
    for group in &answer.not_launched {
        rows.extend(not_launched_rows(group, name(&group.outcome)));
    }
    rows
}

fn instance_row(result: &InstanceResult, job: &str, kind: String) -> Row {
    let reason = match (&result.reason, &result.message) {
        (Some(reason), Some(message)) => format!("{reason}: {message}"),
        (Some(reason), None) => reason.clone(),
        _ => result
            .failback_state
            .as_ref()
            .map(ToString::to_string)
            .unwrap_or_default(),
    };
    Row {
        id: result.id().to_owned(),
        result: kind,
        reason,
        job: job.to_owned(),
    }
}

fn group_rows<'a>(
    group: &'a ResultGroup,
    job: &'a str,
    kind: String,
) -> impl Iterator<Item = Row> + 'a {
    let reason = group
        .reason
        .clone()
        .or_else(|| group.failback_state.as_ref().map(ToString::to_string))
        .unwrap_or_default();
    group.recovery_instance_ids.iter().map(move |id| Row {
        id: id.clone(),
        result: kind.clone(),
        reason: reason.clone(),
        job: job.to_owned(),
    })
}

fn not_launched_rows(group: &NotLaunchedGroup, kind: String) -> impl Iterator<Item = Row> + '_ {
    let detail = [group.code.as_deref(), group.message.as_deref()]
        .into_iter()
        .flatten()
        .collect::<Vec<_>>()
        .join(": ");
    let reason = if detail.is_empty() {
        group.reason.clone()
    } else {
        format!("{} ({detail})", group.reason)
    };
    group.recovery_instance_ids.iter().map(move |id| Row {
        id: id.clone(),
        result: kind.clone(),
        reason: reason.clone(),
        job: group.job_id.clone().unwrap_or_default(),
    })
}

pub fn print_table(rows: &[Row]) {
    println!("{:<20} {:<10} {:<24} reason", "instance", "result", "job");
    for row in rows {
        println!(
            "{:<20} {:<10} {:<24} {}",
            row.id, row.result, row.job, row.reason
        );
    }
}

/// A serialisable enum's name as its JSON says it (`succeeded`, `deferred`, ...).
fn name<T: Serialize>(value: &T) -> String {
    serde_json::to_value(value)
        .ok()
        .and_then(|v| v.as_str().map(str::to_owned))
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_progress_line_says_every_count() {
        let line = progress_text(&Progress {
            elapsed_seconds: 12,
            rounds: 2,
            launched: 8,
            succeeded: 5,
            failed: 1,
            running: 2,
            waiting: 3,
            not_launched: 1,
            tracking_calls: 4,
            crashes: 0,
            parts: 1,
            readiness: None,
        });
        assert_eq!(
            line,
            "[  12s] round 2 · 8 launched · 5 succeeded · 1 failed · 2 running · 3 deferred · 1 not launched"
        );
    }

    #[test]
    fn the_progress_line_says_what_waits_for_readiness() {
        let readiness = WaitingSummary {
            instances: 3,
            by_state: [
                ("FAILBACK_NOT_STARTED".to_owned(), 1),
                ("INITIAL_SYNC".to_owned(), 2),
            ]
            .into(),
            bytes_left: 3 << 29,
            latest_eta: Some("2026-12-03T21:40:00.000Z".into()),
        };
        let line = progress_text(&Progress {
            waiting: 3,
            readiness: Some(readiness),
            ..Progress::default()
        });
        assert_eq!(
            line,
            "[   0s] round 0 · 0 launched · 0 succeeded · 0 failed · 0 running · 3 deferred (3 waiting for readiness: FAILBACK_NOT_STARTED 1, INITIAL_SYNC 2 · 1.5 GiB left · ETA 2026-12-03T21:40:00.000Z) · 0 not launched"
        );
    }
}
