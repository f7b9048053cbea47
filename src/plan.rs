//! Splitting the instances into the chunks that become DRS jobs.

/// One `StartFailbackLaunch` call's worth of instances.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Chunk {
    pub index: usize,
    pub recovery_instance_ids: Vec<String>,
}

/// Consecutive chunks of at most `max_per_job` ids, in request order, so a wave launches in the
/// order the runbook listed it. `max_per_job` is validated by `Config` to be 1..=200.
pub fn plan_chunks(ids: &[String], max_per_job: usize) -> Vec<Chunk> {
    ids.chunks(max_per_job.max(1))
        .enumerate()
        .map(|(index, ids)| Chunk {
            index,
            recovery_instance_ids: ids.to_vec(),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use std::collections::HashSet;

    #[test]
    fn two_hundred_fifty_make_three_jobs_at_the_default_quota() {
        let ids: Vec<String> = (0..250).map(|n| format!("i-{n:08x}")).collect();
        let sizes: Vec<usize> = plan_chunks(&ids, 100)
            .iter()
            .map(|c| c.recovery_instance_ids.len())
            .collect();
        assert_eq!(sizes, [100, 100, 50]);
    }

    proptest! {
        #[test]
        fn chunks_cover_every_id_once_within_the_limit(count in 0usize..700, per_job in 1usize..=200) {
            let ids: Vec<String> = (0..count).map(|n| format!("i-{n:08x}")).collect();
            let chunks = plan_chunks(&ids, per_job);
            prop_assert_eq!(chunks.len(), count.div_ceil(per_job));
            let mut seen = HashSet::new();
            for (position, chunk) in chunks.iter().enumerate() {
                prop_assert_eq!(chunk.index, position);
                prop_assert!(!chunk.recovery_instance_ids.is_empty());
                prop_assert!(chunk.recovery_instance_ids.len() <= per_job);
                for id in &chunk.recovery_instance_ids {
                    prop_assert!(seen.insert(id.clone()), "{} in two chunks", id);
                }
            }
            let flattened: Vec<String> = chunks.into_iter().flat_map(|c| c.recovery_instance_ids).collect();
            prop_assert_eq!(flattened, ids);
        }
    }
}
