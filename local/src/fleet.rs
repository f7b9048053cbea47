//! The demo fleet: a recovery instance for everything the request (or each step of a plan) names
//! — and three carrying each tag selector's tags — ready (or in the state asked for), some set to
//! fail as asked.

use drs_failback::config::REQUEST_INSTANCES_CEILING;
use drs_failback::request::{Action, parse_action};
use drs_sim::{FailbackState, Fleet, FleetInstance};
use serde_json::{Value, json};

use crate::arc::first_request;

/// Instances the demo fleet holds for each tag selector.
pub const PER_SELECTOR: usize = 3;

/// A demo fleet holding every instance the request names, in either envelope, plain or a plan:
/// its recovery instances, one for each source server it names, and [`PER_SELECTOR`] for each
/// selector. Parsed by the function's own parser, so the fleet matches what the function will
/// look for.
pub fn demo_fleet(payload: &Value, state: FailbackState) -> Fleet {
    let (mut request, _) = first_request(payload.clone());
    if let Value::Object(map) = &mut request {
        map.insert("action".into(), json!("plan"));
    }
    let Ok(Action::Plan(plan)) = parse_action(request, REQUEST_INSTANCES_CEILING, String::new)
    else {
        // The function will refuse it; nothing to hold.
        return Fleet::new();
    };
    let mut fleet = Fleet::new();
    for step in &plan.steps {
        for id in &step.ids.recovery_instance_ids {
            let _ = fleet.try_push(FleetInstance::new(id.clone()));
        }
        for source in &step.ids.source_server_ids {
            let mut instance = FleetInstance::new(stable_instance_id(source));
            instance.source_server_id = source.clone();
            // A source server named twice, or whose instance is also named, is already there.
            let _ = fleet.try_push(instance);
        }
        if let Some(selector) = &step.selector {
            for n in 0..PER_SELECTOR {
                let mut instance =
                    FleetInstance::new(stable_instance_id(&format!("{}#{n}", step.name)));
                instance.tags = selector
                    .tags
                    .iter()
                    .map(|(k, v)| (k.clone(), v.clone()))
                    .collect();
                let _ = fleet.try_push(instance);
            }
        }
    }
    for id in fleet.ids() {
        fleet.set_state(&id, state);
    }
    fleet
}

/// A stable recovery instance id for a name (FNV-1a of it).
pub fn stable_instance_id(name: &str) -> String {
    let hash = name.bytes().fold(0xcbf2_9ce4_8422_2325_u64, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    });
    format!("i-0{hash:016x}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_demo_fleet_holds_what_either_envelope_names() {
        let ready = FailbackState::FailbackReadyForLaunch;
        let direct = serde_json::json!({"recoveryInstanceIDs": ["i-11111111", "bad"]});
        let event = serde_json::json!({"detail-type": "x", "source": "y",
            "detail": {"recoveryInstanceIDs": ["i-22222222"], "sourceServerIDs": ["s-0123456789abcdefA"]}});
        assert_eq!(demo_fleet(&direct, ready).ids(), ["i-11111111"]);
        let fleet = demo_fleet(&event, ready);
        assert_eq!(fleet.len(), 2);
        assert_eq!(fleet.instances()[1].source_server_id, "s-0123456789abcdefA");
        assert!(demo_fleet(&serde_json::json!({"recoveryInstanceIDs": 5}), ready).is_empty());
        let not_started = demo_fleet(&direct, FailbackState::FailbackNotStarted);
        assert_eq!(
            not_started.instances()[0].state,
            FailbackState::FailbackNotStarted
        );
    }
}
