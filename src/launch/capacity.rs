//! Capacity: which launchable instances go into which `StartFailbackLaunch` call, within the DRS
//! quotas still free. A dry run and a real run plan through the same [`Capacity::admit`], so a
//! dry run's `plannedJobSizes` is what a real run would start now.

use std::collections::VecDeque;

use crate::config::Config;
use crate::drs::JobRecord;

/// One `StartFailbackLaunch` call's worth of instances.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Chunk {
    pub index: usize,
    pub recovery_instance_ids: Vec<String>,
}

/// What the DRS quotas leave for this run: servers in active jobs and active jobs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Capacity {
    pub servers_in_flight: usize,
    pub active_jobs: usize,
    servers_free: usize,
    jobs_free: usize,
}

impl Capacity {
    /// What is left of the quotas with `active` jobs running.
    pub fn left(active: &[JobRecord], config: &Config) -> Self {
        // Every participating server counts, with a recovery instance id or not (a drill's
        // servers have none).
        let servers_in_flight: usize = active.iter().map(|job| job.participants.len()).sum();
        Capacity {
            servers_in_flight,
            active_jobs: active.len(),
            servers_free: config
                .max_servers_in_flight
                .saturating_sub(servers_in_flight),
            jobs_free: config.max_active_jobs.saturating_sub(active.len()),
        }
    }

    /// Takes chunks of at most `per_job` off the front of the queue, in request order (so a wave
    /// launches in the order the runbook listed it), while the quotas allow; the last one may be
    /// smaller to fit. `next_index` numbers the chunks across calls.
    pub fn admit(
        &mut self,
        queue: &mut VecDeque<String>,
        per_job: usize,
        next_index: &mut usize,
    ) -> Vec<Chunk> {
        let mut chunks = Vec::new();
        while self.jobs_free > 0 && self.servers_free > 0 && !queue.is_empty() {
            let size = per_job.max(1).min(self.servers_free).min(queue.len());
            chunks.push(Chunk {
                index: *next_index,
                recovery_instance_ids: queue.drain(..size).collect(),
            });
            *next_index += 1;
            self.jobs_free -= 1;
            self.servers_free -= size;
        }
        chunks
    }

    /// DRS said a quota is full: believe it over our count until the active jobs are read again.
    pub fn exhaust(&mut self) {
        self.servers_free = 0;
        self.jobs_free = 0;
    }

    pub fn describe(&self, config: &Config) -> String {
        format!(
            "DRS capacity in use: {} servers in active jobs (MAX_SERVERS_IN_FLIGHT={}), {} active jobs (MAX_ACTIVE_JOBS={})",
            self.servers_in_flight,
            config.max_servers_in_flight,
            self.active_jobs,
            config.max_active_jobs
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::drs::{JobStatus, Participant};
    use proptest::prelude::*;
    use std::collections::HashSet;

    fn ids(count: usize) -> Vec<String> {
        (0..count).map(|n| format!("i-{n:08x}")).collect()
    }

    fn config(servers: usize, jobs: usize) -> Config {
        let (servers, jobs) = (servers.to_string(), jobs.to_string());
        Config::from_pairs(&[
            ("MAX_SERVERS_IN_FLIGHT", &servers),
            ("MAX_ACTIVE_JOBS", &jobs),
        ])
        .unwrap()
    }

    fn active(sizes: &[usize]) -> Vec<JobRecord> {
        sizes
            .iter()
            .enumerate()
            .map(|(n, size)| JobRecord {
                kind: crate::drs::JobType::Launch,
                job_id: format!("drsjob-{n}"),
                arn: None,
                status: JobStatus::Started,
                run_id: None,
                step: None,
                created: None,
                ended: None,
                participants: vec![Participant::default(); *size],
            })
            .collect()
    }

    fn sizes(chunks: &[Chunk]) -> Vec<usize> {
        chunks
            .iter()
            .map(|c| c.recovery_instance_ids.len())
            .collect()
    }

    #[test]
    fn two_hundred_fifty_make_three_jobs_at_the_default_quota() {
        let mut queue: VecDeque<String> = ids(250).into();
        let mut capacity = Capacity::left(&[], &Config::default());
        let chunks = capacity.admit(&mut queue, 100, &mut 0);
        assert_eq!(sizes(&chunks), [100, 100, 50]);
        assert!(queue.is_empty());
    }

    #[test]
    fn the_plan_fits_what_other_jobs_leave() {
        let config = config(500, 20);
        // 450 servers busy: one chunk of 50
        let mut queue: VecDeque<String> = ids(300).into();
        let mut capacity = Capacity::left(&active(&[450]), &config);
        assert_eq!(sizes(&capacity.admit(&mut queue, 100, &mut 0)), [50]);
        assert_eq!(queue.len(), 250);
        assert!(
            capacity
                .describe(&config)
                .contains("450 servers in active jobs")
        );
        // 19 jobs running: one slot
        let mut queue: VecDeque<String> = ids(300).into();
        let mut capacity = Capacity::left(&active(&[1; 19]), &config);
        assert_eq!(sizes(&capacity.admit(&mut queue, 100, &mut 0)), [100]);
        // once DRS says full, nothing more until the jobs are read again
        capacity.exhaust();
        assert!(capacity.admit(&mut queue, 100, &mut 0).is_empty());
    }

    proptest! {
        #[test]
        fn chunks_cover_the_queue_in_order_within_every_limit(
            count in 0usize..700,
            per_job in 1usize..=200,
            busy in proptest::collection::vec(1usize..100, 0..8),
            servers in 1usize..1000,
            jobs in 1usize..30,
        ) {
            let config = config(servers, jobs);
            let mut queue: VecDeque<String> = ids(count).into();
            let mut capacity = Capacity::left(&active(&busy), &config);
            let mut next = 3;
            let chunks = capacity.admit(&mut queue, per_job, &mut next);
            let in_flight: usize = busy.iter().sum();
            prop_assert!(chunks.len() + busy.len() <= jobs.max(busy.len()));
            let admitted: usize = chunks.iter().map(|c| c.recovery_instance_ids.len()).sum();
            prop_assert!(admitted + in_flight <= servers.max(in_flight));
            let mut seen = HashSet::new();
            for (position, chunk) in chunks.iter().enumerate() {
                prop_assert_eq!(chunk.index, 3 + position);
                prop_assert!(!chunk.recovery_instance_ids.is_empty());
                prop_assert!(chunk.recovery_instance_ids.len() <= per_job);
                for id in &chunk.recovery_instance_ids {
                    prop_assert!(seen.insert(id.clone()), "{} in two chunks", id);
                }
            }
            prop_assert_eq!(next, 3 + chunks.len());
            // what was taken is the front of the queue, in order; the rest stays
            let mut flattened: Vec<String> = chunks.into_iter().flat_map(|c| c.recovery_instance_ids).collect();
            flattened.extend(queue);
            prop_assert_eq!(flattened, ids(count));
        }
    }
}
