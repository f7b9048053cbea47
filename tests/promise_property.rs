//! Nothing lost, nothing twice: random DRS behaviour, random sizes and settings; after every run
//! each requested id has exactly one outcome and no instance is in two jobs.

mod common;

use std::time::Duration;

use common::*;
use drs_failback::drs::LaunchError;
use proptest::prelude::*;

fn step() -> impl Strategy<Value = Step> {
    prop_oneof![
        4 => Just(Step::Launch),
        2 => (0u64..30).prop_map(|s| Step::Fail(LaunchError::Throttled {
            retry_after: Some(Duration::from_secs(s)),
            message: "Rate exceeded".into(),
        })),
        1 => Just(Step::Fail(LaunchError::Throttled { retry_after: None, message: "slow".into() })),
        1 => Just(Step::Fail(LaunchError::Ambiguous { error: "InternalServerException".into() })),
        1 => Just(Step::Fail(LaunchError::NotSent { error: "connection refused".into() })),
        1 => Just(Step::Fail(LaunchError::QuotaExceeded { message: "full".into(), quota_code: None })),
        1 => (1u64..40).prop_map(|s| Step::Hang(Duration::from_secs(s))),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]
    #[test]
    fn every_id_gets_exactly_one_outcome(
        count in 1usize..700,
        duplicates in 0usize..20,
        malformed in 0usize..5,
        poisoned in proptest::collection::vec(0usize..700, 0..3),
        steps in proptest::collection::vec(step(), 0..30),
        per_job in 20usize..=200,
        concurrency in 1usize..6,
        deadline_s in 1u64..400,
    ) {
        let mut requested = ids(count);
        requested.extend(requested.iter().take(duplicates).cloned().collect::<Vec<_>>());
        requested.extend((0..malformed).map(|n| format!("bad-{n}")));
        let drs = FakeDrs::scripted(steps);
        for index in poisoned {
            if index < count {
                drs.poison(&requested[index]);
            }
        }
        let per_job = per_job.to_string();
        let concurrency = concurrency.to_string();
        let settings = [
            ("MAX_INSTANCES_PER_JOB", per_job.as_str()),
            ("MAX_CONCURRENT_LAUNCHES", concurrency.as_str()),
            ("MAX_REQUEST_INSTANCES", "1000"),
            ("LAUNCH_CALL_TIMEOUT_MS", "20000"),
        ];
        let runtime = paused_runtime();
        runtime.block_on(async {
            let fb = failback(config(&settings), drs, 0.5);
            let deadline = tokio::time::Instant::now() + Duration::from_secs(deadline_s);
            let answer = fb.handle(request(&requested), deadline).await.unwrap();
            assert!(tokio::time::Instant::now() <= deadline, "answered after the deadline");
            assert_promise(&requested, &answer, &fb.drs);
            // every created job is announced in an event, or the answer says events were lost
            let announced = fb.publisher.delivered_of("Failback Launch Job Started").len();
            if answer.events.undelivered == 0 {
                assert_eq!(announced, answer.jobs.len());
            }
        });
    }
}
