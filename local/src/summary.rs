//! `--launch-only`: one launch invocation, summed up — the jobs, each instance's outcome, and the
//! events delivered.

use drs_failback::events::{DETAIL_TYPE_JOB_STARTED, DETAIL_TYPE_NOT_LAUNCHED};
use drs_failback::launch::answer::LaunchAnswer;

pub struct Header<'a> {
    pub request: &'a str,
    pub endpoint: &'a str,
    pub fleet_size: usize,
    pub state: &'a str,
    pub bus: &'a str,
}

pub fn print_summary(header: &Header, answer: &LaunchAnswer, events: &[drs_sim::DeliveredEvent]) {
    let Header {
        request,
        endpoint,
        fleet_size,
        state,
        bus,
    } = header;
    println!("drs-failback, local run of {request} (launch only)");
    println!("  simulator {endpoint}: {fleet_size} recovery instances, {state}");
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
