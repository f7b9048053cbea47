//! A launch in an account and region that cannot be reached — the role it should grant is
//! missing or refuses the function, the region is not enabled, DRS is not usable there: it fails
//! alone. Every instance it names is skipped `TARGET_UNREACHABLE` with what STS or DRS said, its
//! events are published as any launch's, and the plan's other accounts and regions go on; the
//! step's verdict counts these instances as not back.

use super::answer::{LaunchAnswer, RunResult, Unreached};
use super::outcome::{MESSAGE_MAX_BYTES, Outcome};
use super::publish;
use crate::config::Config;
use crate::drs::Target;
use crate::events::EventPublisher;
use crate::events::publish::Bus;
use crate::request::{LaunchRequest, truncate_utf8};

/// The `reason` of an instance whose account and region could not be reached.
pub const SKIPPED_TARGET_UNREACHABLE: &str = "TARGET_UNREACHABLE";

/// The answer to a launch whose account and region (`here`) could not be reached.
pub fn answer(
    request: &LaunchRequest,
    here: Option<&Target>,
    code: &str,
    message: &str,
) -> LaunchAnswer {
    let message = truncate_utf8(message, MESSAGE_MAX_BYTES);
    let skipped = Outcome::Skipped {
        reason: SKIPPED_TARGET_UNREACHABLE.to_owned(),
        job_id: None,
        code: Some(code.to_owned()),
        message: Some(message.clone()),
    };
    let outcomes = request
        .recovery_instance_ids
        .iter()
        .chain(&request.source_server_ids)
        .map(|id| (id.clone(), skipped.clone()))
        .chain(
            request
                .malformed_ids
                .iter()
                .map(|id| (id.clone(), Outcome::malformed_id())),
        )
        .collect();
    let result = RunResult {
        outcomes,
        ..RunResult::default()
    };
    let mut answer = result.answer(request, Default::default());
    answer.target = here.cloned();
    answer.unreachable = Some(Unreached {
        code: code.to_owned(),
        message,
    });
    answer
}

/// The same, its events published.
pub async fn run<P: EventPublisher>(
    config: &Config,
    bus: &Bus<'_, P>,
    request: &LaunchRequest,
    here: Option<&Target>,
    code: &str,
    message: &str,
) -> LaunchAnswer {
    let mut answer = answer(request, here, code, message);
    tracing::warn!(
        target_account = here.map(|t| t.account.as_str()),
        target_region = here.map(|t| t.region.as_str()),
        code,
        "account and region not reached: the launch's instances are skipped"
    );
    publish(config, bus, &mut answer).await;
    answer
}
