//! The demo fleet: a recovery instance for everything the request names, ready (or in the state
//! asked for), some set to fail as asked.

use drs_failback::config::REQUEST_INSTANCES_CEILING;
use drs_failback::request::parse_request;
use drs_sim::{FailbackState, Fleet, FleetInstance};
use serde_json::Value;

/// A demo fleet holding every instance the request names, in either envelope: its recovery
/// instances, and one for each source server it names. Parsed by the function's own parser, so
/// the fleet matches what the function will look for.
pub fn demo_fleet(payload: &Value, state: FailbackState) -> Fleet {
    let Ok(request) = parse_request(payload.clone(), REQUEST_INSTANCES_CEILING, String::new) else {
        // The function will refuse it; nothing to hold.
        return Fleet::new();
    };
    let mut fleet = Fleet::matching(&request.recovery_instance_ids);
    for source in &request.source_server_ids {
        let mut instance = FleetInstance::new(recovery_instance_for(source));
        instance.source_server_id = source.clone();
        // A source server named twice, or whose instance is also named, is already there.
        let _ = fleet.try_push(instance);
    }
    for id in fleet.ids() {
        fleet.set_state(&id, state);
    }
    fleet
}

/// A stable recovery instance id for a source server (FNV-1a of its id).
fn recovery_instance_for(source_server_id: &str) -> String {
    let hash = source_server_id
        .bytes()
        .fold(0xcbf2_9ce4_8422_2325_u64, |h, b| {
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
