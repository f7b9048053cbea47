//! The account's old jobs: finished drills spread evenly over the days before the simulator
//! started, of source servers outside the fleet. Jobs persist until deleted, so an old account
//! pages through thousands of them when it reads its jobs without a date window.

use std::collections::{HashMap, HashSet};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde_json::{Value, json};

use crate::clock::iso8601;
use crate::config::History;
use crate::fleet::splitmix64;

/// How long each old drill ran.
const DRILL_DURATION: Duration = Duration::from_secs(600);

pub(crate) struct ArchivedJob {
    pub id: String,
    /// Epoch milliseconds.
    pub created_ms: i64,
    source_servers: Vec<String>,
}

/// The history, oldest first, and its index by job id.
pub(crate) fn generate(
    history: History,
    start: SystemTime,
) -> (Vec<ArchivedJob>, HashMap<String, usize>) {
    let start_ms = start
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64);
    let span_ms = (history.days * 86_400_000.0) as i64;
    let mut seen = HashSet::new();
    let mut jobs = Vec::with_capacity(history.jobs);
    for k in 0..history.jobs as u64 {
        let mut seed = splitmix64(k ^ 0x4157_0000_0000_0000);
        let id = loop {
            let id = job_id(seed);
            if seen.insert(id.clone()) {
                break id;
            }
            seed = splitmix64(seed);
        };
        let servers = 1 + (seed % 3) as usize;
        jobs.push(ArchivedJob {
            id,
            // evenly spread, the newest one span / jobs before the start
            created_ms: start_ms - span_ms + span_ms * k as i64 / history.jobs.max(1) as i64,
            source_servers: (0..servers as u64)
                .map(|s| format!("s-2{:016x}", splitmix64(seed ^ s)))
                .collect(),
        });
    }
    let index = jobs
        .iter()
        .enumerate()
        .map(|(i, job)| (job.id.clone(), i))
        .collect();
    (jobs, index)
}

fn job_id(seed: u64) -> String {
    const ALPHABET: &[u8] = b"0123456789abcdefghijklmnopqrstuvwxyz";
    let mut x = seed;
    let suffix: String = (0..17)
        .map(|i| {
            if i == 12 {
                x = splitmix64(seed);
            }
            let c = ALPHABET[(x % 36) as usize] as char;
            x /= 36;
            c
        })
        .collect();
    format!("drsjob-{suffix}")
}

fn iso_ms(ms: i64) -> String {
    iso8601(UNIX_EPOCH + Duration::from_millis(ms.max(0) as u64))
}

impl ArchivedJob {
    fn ended_ms(&self) -> i64 {
        self.created_ms + DRILL_DURATION.as_millis() as i64
    }

    pub(crate) fn json(&self, region: &str, account_id: &str) -> Value {
        let servers: Vec<Value> = self
            .source_servers
            .iter()
            .map(|s| json!({ "sourceServerID": s, "launchStatus": "LAUNCHED" }))
            .collect();
        json!({
            "jobID": self.id,
            "arn": format!("arn:aws:drs:{region}:{account_id}:job/{}", self.id),
            "type": "LAUNCH",
            "initiatedBy": "START_DRILL",
            "creationDateTime": iso_ms(self.created_ms),
            "endDateTime": iso_ms(self.ended_ms()),
            "status": "COMPLETED",
            "participatingServers": servers,
            "participatingResources": [],
            "tags": {},
        })
    }

    pub(crate) fn log(&self) -> Vec<Value> {
        vec![
            json!({ "logDateTime": iso_ms(self.created_ms), "event": "JOB_START" }),
            json!({ "logDateTime": iso_ms(self.ended_ms()), "event": "JOB_END" }),
        ]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn history_is_spread_before_the_start_with_distinct_ids() {
        let start = UNIX_EPOCH + Duration::from_secs(1_800_000_000);
        let (jobs, index) = generate(
            History {
                jobs: 10_000,
                days: 100.0,
            },
            start,
        );
        assert_eq!(jobs.len(), 10_000);
        assert_eq!(index.len(), 10_000, "ids are distinct");
        let start_ms = 1_800_000_000_000;
        assert_eq!(jobs[0].created_ms, start_ms - 100 * 86_400_000);
        assert!(jobs.windows(2).all(|w| w[0].created_ms <= w[1].created_ms));
        assert!(jobs.last().unwrap().created_ms < start_ms);
        assert!(jobs.iter().all(|j| j.id.len() == 24));
    }
}
