//! Every file in `events/` is a fixture: each parses to the expected request or refusal, and each
//! valid one runs through the real handler. A new file without an expectation fails the test.
// The invocation future nests the launch, read and retry futures deeply enough to pass the default.
#![recursion_limit = "256"]

mod support;

use std::fs;

use drs_failback::handler::Reply;
use drs_failback::request::{Action, parse_action, parse_request};
use drs_sim::Fleet;
use serde_json::Value;
use support::*;

enum Expect {
    /// run id, well-formed ids, malformed ids, dry run
    Request(&'static str, usize, usize, bool),
    /// words the error message must contain
    Refused(&'static str),
    /// A plan: run id, step names, dry run. Run end to end by local/tests/plan_run.rs (over a
    /// fleet with its source servers and tagged instances) and by .ci/local-lambda.
    Plan(&'static str, &'static [&'static str], bool),
}

fn expectation(file: &str) -> Expect {
    match file {
        "eventbridge-failback-request.json" => {
            Expect::Request("7f9c2b1e-3d4a-4c8e-9b6f-1a2b3c4d5e6f", 6, 0, false)
        }
        "stepfunctions-task.json" => Expect::Request("wave-2-2026-11-27", 3, 0, false),
        "dry-run.json" => Expect::Request("wave-3-plan", 2, 0, true),
        "malformed-and-duplicate-ids.json" => Expect::Request("wave-4-typos", 2, 2, false),
        // Run end to end, instances turning ready over simulated hours, by the local runner with
        // local/replication-demo.json (docs/readiness.md) and local/tests/readiness.rs.
        "wait-for-ready.json" => Expect::Request("wave-5-ready", 5, 0, false),
        "plan-three-steps.json" => Expect::Plan(
            "failback-2026-11-30",
            &["databases", "app-servers", "web"],
            false,
        ),
        "plan-finish.json" => Expect::Plan(
            "failback-2026-12-03-cleanup",
            &["databases", "app-servers"],
            false,
        ),
        "plan-across-accounts.json" => Expect::Plan(
            "failback-across-accounts-2026-12-04",
            &["databases", "app-servers", "web"],
            false,
        ),
        "plan-dry-run.json" => Expect::Plan(
            "failback-2026-11-30-plan",
            &["databases", "app-servers"],
            true,
        ),
        "invalid-missing-ids.json" => Expect::Refused("recoveryInstanceIDs is missing"),
        "invalid-empty-ids.json" => Expect::Refused("recoveryInstanceIDs is empty"),
        "invalid-ids-not-a-list.json" => Expect::Refused("recoveryInstanceIDs must be an array"),
        "invalid-misspelt-field.json" => Expect::Refused("did you mean recoveryInstanceIDs"),
        "invalid-reserved-tag-key.json" => Expect::Refused("aws:"),
        "invalid-wait-too-long.json" => {
            Expect::Refused("waitForReadySeconds must be a whole number of seconds from 0 to 43200")
        }
        "invalid-dry-run-not-boolean.json" => Expect::Refused("dryRun must be true or false"),
        "invalid-eventbridge-detail-not-object.json" => {
            Expect::Refused("detail must be a JSON object")
        }
        other => panic!("events/{other} has no expectation in tests/sample_events.rs"),
    }
}

fn samples() -> Vec<(String, Value)> {
    let mut files: Vec<(String, Value)> = fs::read_dir(events_dir())
        .expect("events/ exists")
        .map(|entry| entry.unwrap().path())
        .filter(|path| path.extension().is_some_and(|ext| ext == "json"))
        .map(|path| {
            let name = path.file_name().unwrap().to_string_lossy().into_owned();
            let text = fs::read_to_string(&path).unwrap();
            let value = serde_json::from_str(&text).unwrap_or_else(|e| panic!("{name}: {e}"));
            (name, value)
        })
        .collect();
    files.sort_by(|a, b| a.0.cmp(&b.0));
    assert!(files.len() >= 11, "the samples are all there");
    files
}

#[test]
fn every_sample_parses_to_its_expectation() {
    for (name, value) in samples() {
        if let Expect::Plan(run_id, steps, dry_run) = expectation(&name) {
            let mut request = value.clone();
            request["action"] = "plan".into();
            let Ok(Action::Plan(plan)) = parse_action(request, 5000, || "generated".into()) else {
                panic!("{name} should parse as a plan");
            };
            assert_eq!(plan.run_id, run_id, "{name}");
            let names: Vec<&str> = plan.steps.iter().map(|s| s.name.as_str()).collect();
            assert_eq!(names, steps, "{name}");
            assert_eq!(plan.dry_run, dry_run, "{name}");
            assert!(
                parse_request(value, 5000, || "generated".into()).is_err(),
                "{name}: a plan is not a launch request"
            );
            continue;
        }
        let parsed = parse_request(value, 5000, || "generated".into());
        match (expectation(&name), parsed) {
            (Expect::Request(run_id, valid, malformed, dry_run), Ok(request)) => {
                assert_eq!(request.run_id, run_id, "{name}");
                assert_eq!(request.recovery_instance_ids.len(), valid, "{name}");
                assert_eq!(request.malformed_ids.len(), malformed, "{name}");
                assert_eq!(request.dry_run, dry_run, "{name}");
            }
            (Expect::Refused(words), Err(error)) => {
                assert!(error.to_string().contains(words), "{name}: {error}");
            }
            (Expect::Request(..), Err(error)) => panic!("{name} should parse: {error}"),
            (Expect::Refused(words), Ok(_)) => panic!("{name} should be refused ({words})"),
            (Expect::Plan(..), _) => unreachable!("checked above"),
        }
        assert_eq!(
            name.starts_with("invalid-"),
            matches!(expectation(&name), Expect::Refused(_))
        );
    }
}

/// Through `invoke`, as the Lambda runtime calls it: valid samples answer, invalid ones give a
/// diagnostic named `InvalidFailbackRequest`, and the same handler keeps serving.
#[tokio::test(start_paused = true)]
async fn every_sample_through_the_handler() {
    // A fleet holding every instance any sample names, ready.
    let named = samples().into_iter().flat_map(|(_, value)| {
        parse_request(value, 5000, String::new)
            .map(|request| request.recovery_instance_ids)
            .unwrap_or_default()
    });
    let sim = start_with(Fleet::matching(named)).await;
    let fb = failback_in_process(&sim, &[], 1.0).await;
    for (name, value) in samples() {
        let result = fb.invoke(lambda_event(value, &name, 300)).await;
        match expectation(&name) {
            Expect::Request(run_id, valid, malformed, dry_run) => {
                let Reply::Launch(answer) = result.unwrap_or_else(|e| panic!("{name}: {e}")) else {
                    panic!("{name}: a launch answer expected");
                };
                assert_eq!(answer.run_id, run_id);
                assert_eq!(answer.requested, valid + malformed, "{name}");
                assert_eq!(answer.counts.rejected, malformed, "{name}");
                assert_eq!(
                    answer.counts.launched,
                    if dry_run { 0 } else { valid },
                    "{name}"
                );
                assert!(answer.events.undelivered == 0);
            }
            Expect::Refused(_) => {
                let diagnostic: lambda_runtime::Diagnostic = result.unwrap_err().into();
                assert_eq!(diagnostic.error_type, "InvalidFailbackRequest", "{name}");
            }
            // Without "action": "plan" a plan is not a launch request: refused, naming the field.
            Expect::Plan(..) => {
                let diagnostic: lambda_runtime::Diagnostic = result.unwrap_err().into();
                assert_eq!(diagnostic.error_type, "InvalidFailbackRequest", "{name}");
                assert!(diagnostic.error_message.contains("steps"), "{name}");
            }
        }
    }
}
