//! Nothing lost, nothing twice: random DRS behaviour (throttling with and without Retry-After,
//! 500s, refused connections, a quota refusal, hangs, instances DRS refuses with or without naming
//! them, by `resourceId` or in its message only), random sizes and settings. After every run each
//! requested id has exactly one outcome, no id was sent to StartFailbackLaunch once a job held it
//! (at the wire, whatever the simulator would answer) and no instance is in two jobs, checked from
//! the simulator's records. The simulator runs in-process on the paused clock, so hundreds of
//! cases cost seconds.

mod support;

use std::time::Duration;

use drs_sim::{Fault, Operation, Quotas, SimConfig};
use proptest::prelude::*;
use support::*;

const LAUNCH: Operation = Operation::StartFailbackLaunch;

fn fault() -> impl Strategy<Value = Fault> {
    let fail = |status: u16, error_type: &str, message: &str| Fault::Fail {
        operation: LAUNCH,
        calls: 1,
        after: 0,
        status,
        error_type: error_type.into(),
        message: message.into(),
        members: serde_json::Map::new(),
        retry_after: None,
    };
    prop_oneof![
        2 => (1u32..3, 0u32..30).prop_map(|(calls, retry_after_seconds)| Fault::Throttle {
            operation: LAUNCH,
            calls,
            retry_after_seconds,
        }),
        1 => Just(fail(429, "ThrottlingException", "slow")),
        1 => Just(Fault::InternalErrorBeforeCreate { calls: 1 }),
        1 => Just(Fault::ConnectionRefused { operation: LAUNCH, calls: 1 }),
        1 => Just(fail(402, "ServiceQuotaExceededException", "full")),
        // A hang past the 20 s call timeout is a request DRS lost: nothing is created. (A job
        // created after the caller gave up is drawn by the wire property test.)
        1 => (1u32..40).prop_map(|seconds| Fault::Hang {
            operation: LAUNCH,
            calls: 1,
            seconds: f64::from(seconds),
            lost: seconds >= 20,
        }),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]
    #[test]
    fn every_id_gets_exactly_one_outcome(
        count in 1usize..700,
        duplicates in 0usize..20,
        malformed in 0usize..5,
        refused in proptest::collection::vec(0usize..700, 0..3),
        named in any::<bool>(),
        in_message_only in any::<bool>(),
        faults in proptest::collection::vec(fault(), 0..30),
        per_job in 20usize..=200,
        concurrency in 1usize..6,
        deadline_s in 1u64..400,
    ) {
        let mut fleet = ready(count);
        let mut requested = fleet.ids();
        for index in refused {
            if index < count {
                fleet.set_refuse_launch(&requested[index]);
            }
        }
        requested.extend(requested.iter().take(duplicates).cloned().collect::<Vec<_>>());
        requested.extend((0..malformed).map(|n| format!("bad-{n}")));
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
            let sim = start(SimConfig {
                fleet,
                faults,
                error_details: named,
                culprit_in_message_only: in_message_only,
                quotas: Quotas { servers_per_job: 200, ..Quotas::default() },
                ..SimConfig::default()
            })
            .await;
            let fb = failback_in_process(&sim, &settings, 0.5).await;
            let deadline = tokio::time::Instant::now() + Duration::from_secs(deadline_s);
            let answer = fb.handle(request(&requested), deadline).await.unwrap();
            assert!(tokio::time::Instant::now() <= deadline, "answered after the deadline");
            // every created job is in the answer and announced in an event, or the answer says
            // events were lost
            assert_promise(&sim, 0, &requested, &answer);
        });
    }
}
