//! The demo fleet: a recovery instance for everything the request (or each step of a plan) names
//! — and three carrying each tag selector's tags — ready (or in the state asked for), some set to
//! fail as asked.

use drs_failback::config::REQUEST_INSTANCES_CEILING;
use drs_failback::drs::Target;
use drs_failback::request::{Action, Selector, parse_action};
use drs_sim::{FailbackState, Fleet, FleetInstance, SimConfig};
use serde_json::{Value, json};

use crate::arc::first_request;

/// Instances the demo fleet holds for each tag selector.
pub const PER_SELECTOR: usize = 3;

/// A demo fleet holding every instance the request names, in either envelope, plain or a plan:
/// its recovery instances, one for each source server it names, and [`PER_SELECTOR`] for each
/// selector. Parsed by the function's own parser, so the fleet matches what the function will
/// look for. Instances of other accounts and regions (ARNs, a selector's `targets`) are left to
/// [`demo_targets`].
pub fn demo_fleet(payload: &Value, state: FailbackState) -> Fleet {
    demo_world(payload, state).0
}

/// The fleets of the other accounts and regions the request reaches, `home` being the
/// simulator's own (its account and region).
pub fn demo_targets(payload: &Value, state: FailbackState) -> Vec<(Target, Fleet)> {
    demo_world(payload, state).1
}

fn demo_world(payload: &Value, state: FailbackState) -> (Fleet, Vec<(Target, Fleet)>) {
    let (mut request, _) = first_request(payload.clone());
    if let Value::Object(map) = &mut request {
        map.insert("action".into(), json!("plan"));
    }
    let Ok(Action::Plan(mut plan)) = parse_action(request, REQUEST_INSTANCES_CEILING, String::new)
    else {
        // The function will refuse it; nothing to hold.
        return (Fleet::new(), Vec::new());
    };
    let sim = SimConfig::default();
    let home = Target::new(sim.account_id, sim.region);
    if plan.bind(Some(&home)).is_err() {
        return (Fleet::new(), Vec::new());
    }
    let mut fleet = Fleet::new();
    let mut targets: Vec<(Target, Fleet)> = Vec::new();
    for step in &plan.steps {
        hold(
            &mut fleet,
            &step.name,
            &step.ids.recovery_instance_ids,
            &step.ids.source_server_ids,
            step.selector.as_ref(),
        );
        for group in &step.elsewhere {
            let at = match targets.iter().position(|(t, _)| *t == group.target) {
                Some(at) => at,
                None => {
                    targets.push((group.target.clone(), Fleet::new()));
                    targets.len() - 1
                }
            };
            let name = format!("{}@{}", step.name, group.target);
            let ids = &group.ids;
            hold(
                &mut targets[at].1,
                &name,
                &ids.recovery_instance_ids,
                &ids.source_server_ids,
                group.selector.as_ref(),
            );
        }
    }
    for fleet in std::iter::once(&mut fleet).chain(targets.iter_mut().map(|(_, f)| f)) {
        for id in fleet.ids() {
            fleet.set_state(&id, state);
        }
    }
    (fleet, targets)
}

/// Puts in `fleet` a step's instances: those named, one per source server, and [`PER_SELECTOR`]
/// carrying its selector's tags (named after `name`).
fn hold(
    fleet: &mut Fleet,
    name: &str,
    ids: &[String],
    sources: &[String],
    selector: Option<&Selector>,
) {
    for id in ids {
        let _ = fleet.try_push(FleetInstance::new(id.clone()));
    }
    for source in sources {
        let mut instance = FleetInstance::new(stable_instance_id(source));
        instance.source_server_id = source.clone();
        // A source server named twice, or whose instance is also named, is already there.
        let _ = fleet.try_push(instance);
    }
    if let Some(selector) = selector {
        for n in 0..PER_SELECTOR {
            let mut instance = FleetInstance::new(stable_instance_id(&format!("{name}#{n}")));
            instance.tags = selector
                .tags
                .iter()
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect();
            let _ = fleet.try_push(instance);
        }
    }
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
