//! One payload, in either envelope and for any action, to its stage and its answer: a launch
//! ([`crate::launch`]), a tracking call ([`crate::track`]), a plan check ([`crate::plan`]) or a step
//! execution's course ([`crate::plan::follow`]);
//! and the invocation's one metrics record, whatever it came to.

use serde::Serialize;
use serde_json::Value;
use tokio::time::Instant;
use tracing::info;

use super::Failback;
use crate::drs::Drs;
use crate::drs::Target;
use crate::drs::reach::Unreachable;
use crate::drs::reads::DrsReads;
use crate::drs::stats::CallStats;
use crate::error::HandlerError;
use crate::events::EventPublisher;
use crate::events::publish::Bus;
use crate::finish::answer::FinishAnswer;
use crate::launch::answer::LaunchAnswer;
use crate::plan::PlanAnswer;
use crate::plan::follow::{FollowAnswer, follow};
use crate::plan::rehearsal::RehearsalAnswer;
use crate::plan::sum::StepSum;
use crate::request::{Action, parse_action};
use crate::telemetry::measure::{Measured, record};
use crate::track::answer::TrackAnswer;

/// What an invocation answers: a launch's answer, a tracking call's or a plan's.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(untagged)]
pub enum Reply {
    Launch(LaunchAnswer),
    Track(TrackAnswer),
    Plan(PlanAnswer),
    StepExecution(FollowAnswer),
    Finish(FinishAnswer),
    StepSum(StepSum),
    Rehearsal(RehearsalAnswer),
}

impl<D: Drs, P: EventPublisher> Failback<D, P> {
    /// One payload, in either envelope and for any action, to its answer before `deadline`; the
    /// invocation's metrics record is written whatever it came to.
    pub async fn dispatch(&self, payload: Value, deadline: Instant) -> Result<Reply, HandlerError> {
        let started = Instant::now();
        let stats = CallStats::default();
        let home = crate::drs::target::home(&self.config);
        let parsed = parse_action(payload, self.config.max_request_instances, self.new_run_id)
            .and_then(|mut action| {
                let home = home.as_ref();
                match &mut action {
                    Action::Launch(request) => request.bind(home)?,
                    Action::Plan(request) | Action::Rehearsal(request) => request.bind(home)?,
                    Action::Track(request) => {
                        let here = request.target.as_ref().or(home);
                        crate::request::bind_critical(&mut request.critical, here)?
                    }
                    _ => {}
                }
                Ok(action)
            });
        let action = match parsed {
            Ok(action) => action,
            Err(error) => {
                tracing::warn!(error = %error, "request refused");
                let error = HandlerError::from(error);
                self.measure(
                    Measured::Failed(error.error_type()),
                    None,
                    None,
                    &stats,
                    started,
                );
                return Err(error);
            }
        };
        // The run (and step) the invocation is for: a plan's own check is the run's, no step's.
        let (run_id, step) = match &action {
            Action::Launch(request) => (&request.run_id, request.step.as_deref()),
            Action::Track(request) => (&request.run_id, request.step.as_deref()),
            Action::Plan(request) => (&request.run_id, None),
            Action::StepExecution(request) => (&request.run_id, Some(request.step.as_str())),
            Action::Finish(request) => (&request.run_id, request.step.as_deref()),
            Action::StepSum(request) => (&request.run_id, Some(request.step.as_str())),
            Action::Rehearsal(request) => (&request.run_id, None),
        };
        tracing::Span::current().record("correlation_id", run_id);
        // Another account or region: DRS there, through the role it grants.
        let here = action.target().or(home.as_ref());
        let remote = action.target().filter(|t| home.as_ref() != Some(*t));
        let reached = match remote {
            None => None,
            Some(target) => Some(match &self.reach {
                Some(reach) => reach.reach(target).await,
                None => Err(no_reach()),
            }),
        };
        // STS throttled or not answering: the call fails as a read that failed for now, and is
        // made again (never taken for the place being unreachable).
        if let (Some(Err(why)), Some(target)) = (&reached, remote)
            && why.transient
        {
            let error = for_now(target, why);
            self.measure(
                Measured::Failed(error.error_type()),
                Some((run_id.as_str(), step)),
                remote,
                &stats,
                started,
            );
            return Err(error);
        }
        let drs = match &reached {
            Some(Ok(drs)) => drs,
            _ => &self.drs,
        };
        let unreachable = match &reached {
            Some(Err(why)) => Some(why.clone()),
            _ => None,
        };
        let wall = self.wall_now();
        let reads = DrsReads::new(drs, &self.config, &*self.jitter, deadline, &stats, wall);
        let not_reached = |why: &Unreachable| HandlerError::TargetUnreachable {
            target: remote.map(ToString::to_string).unwrap_or_default(),
            code: why.code.clone(),
            message: why.message.clone(),
        };
        let bus = Bus::new(
            &self.publisher,
            &self.config,
            &*self.jitter,
            deadline,
            &stats,
        );
        // Boxed: the stages' futures are deep enough to overflow the compiler's type-layout
        // recursion limit in crates that nest them further (the local run, the tests).
        let reply = match &action {
            Action::Launch(request) => {
                info!(
                    instances = request.recovery_instance_ids.len(),
                    source_servers = request.source_server_ids.len(),
                    malformed = request.malformed_ids.len(),
                    duplicates_collapsed = request.duplicates_collapsed,
                    tag_count = request.tags.len(),
                    dry_run = request.dry_run,
                    "request accepted"
                );
                // DRS there refuses the function's keys or is not set up: that place fails alone
                // — its named instances skipped; a selector there, whose instances nobody can
                // know, fails the call (the step then halts LAUNCH_ERROR, naming the place).
                let why = match unreachable {
                    Some(why) => Err(why),
                    None => match Box::pin(crate::launch::run(&self.config, &reads, &bus, request))
                        .await
                    {
                        Err(error @ HandlerError::DrsUnusable { .. }) if remote.is_some() => {
                            Err(Unreachable {
                                code: error.error_type().to_owned(),
                                message: error.to_string(),
                                transient: false,
                            })
                        }
                        other => Ok(other),
                    },
                };
                match why {
                    Ok(answered) => answered,
                    Err(why) if request.selector.is_some() => Err(not_reached(&why)),
                    Err(why) => Ok(crate::launch::unreachable::run(
                        &self.config,
                        &bus,
                        request,
                        here,
                        &why.code,
                        &why.message,
                    )
                    .await),
                }
                .map(Reply::Launch)
            }
            Action::Track(request) => {
                info!(
                    jobs = request.job_ids.len(),
                    reported = request.reported_job_ids.len(),
                    final_call = request.final_call,
                    "track request accepted"
                );
                // A place that was never reached has no job to read: its step's last call still
                // sums its instances up (a call without jobs reads nothing from DRS).
                let readless = request.job_ids.is_empty() && request.ended.is_none();
                match &unreachable {
                    Some(why) if !readless => Err(not_reached(why)),
                    _ => Box::pin(crate::track::track(&self.config, &reads, &bus, request)).await,
                }
                .map(Reply::Track)
            }
            Action::Plan(request) | Action::Rehearsal(request) => {
                let rehearsal = matches!(action, Action::Rehearsal(_));
                info!(
                    rehearsal,
                    steps = request.steps.len(),
                    plain = request.plain,
                    dry_run = request.dry_run,
                    tag_count = request.tags.len(),
                    "plan request accepted"
                );
                // Every other account and region the plan reaches, each read through its role.
                let mut places: Vec<(Target, Result<D, Unreachable>)> = Vec::new();
                for target in request.targets() {
                    if home.as_ref() == Some(target) {
                        continue;
                    }
                    let reached = match &self.reach {
                        Some(reach) => reach.reach(target).await,
                        None => Err(no_reach()),
                    };
                    places.push((target.clone(), reached));
                }
                let for_now_error = places.iter().find_map(|(target, reached)| match reached {
                    Err(why) if why.transient => Some(for_now(target, why)),
                    _ => None,
                });
                let place_reads: Vec<(Target, Result<DrsReads<'_, D>, Unreachable>)> = places
                    .iter()
                    .map(|(target, drs)| {
                        let reads = drs.as_ref().map(|drs| {
                            DrsReads::new(drs, &self.config, &*self.jitter, deadline, &stats, wall)
                        });
                        (target.clone(), reads.map_err(Clone::clone))
                    })
                    .collect();
                let remote: Vec<crate::plan::Remote<'_, '_, D>> = place_reads
                    .iter()
                    .map(|(target, reads)| (target.clone(), reads.as_ref().map_err(Clone::clone)))
                    .collect();
                match for_now_error {
                    Some(error) => Err(error),
                    None => Box::pin(crate::plan::check(&self.config, &reads, &remote, request))
                        .await
                        .and_then(|answer| match rehearsal {
                            true => {
                                Ok(Reply::Rehearsal(crate::plan::rehearsal::rehearse(&answer)?))
                            }
                            false => Ok(Reply::Plan(answer)),
                        }),
                }
            }
            Action::StepSum(request) => {
                info!(groups = request.groups.len(), "step sum request accepted");
                Ok(Reply::StepSum(crate::plan::sum::sum(request)))
            }
            Action::StepExecution(request) => {
                info!(
                    execution = %request.execution.name,
                    status = ?request.execution.status,
                    redriven = request.redriven,
                    polls = request.polls,
                    "step execution request accepted"
                );
                follow(request).map(Reply::StepExecution)
            }
            Action::Finish(request) => {
                info!(
                    finishing = request.finishing.name(),
                    dry_run = request.dry_run,
                    calls = request.calls,
                    "finish request accepted"
                );
                match &unreachable {
                    Some(why) => Err(not_reached(why)),
                    None => Box::pin(crate::finish::run(&self.config, &reads, &bus, request)).await,
                }
                .map(Reply::Finish)
            }
        };
        let measured = match (&reply, &action) {
            (Ok(Reply::Launch(answer)), _) => Measured::Launch(answer),
            (Ok(Reply::Track(answer)), Action::Track(request)) => Measured::Track(request, answer),
            (Ok(_), _) => Measured::Plan,
            (Err(error), _) => Measured::Failed(error.error_type()),
        };
        self.measure(
            measured,
            Some((run_id.as_str(), step)),
            remote,
            &stats,
            started,
        );
        reply
    }

    fn measure(
        &self,
        what: Measured<'_>,
        run: Option<(&str, Option<&str>)>,
        place: Option<&Target>,
        stats: &CallStats,
        started: Instant,
    ) {
        (self.emit)(&record(&self.metrics, what, run, place, stats, started));
    }

    /// A launch request's answer (a track request is refused).
    pub async fn handle(
        &self,
        payload: Value,
        deadline: Instant,
    ) -> Result<LaunchAnswer, HandlerError> {
        match self.dispatch(payload, deadline).await? {
            Reply::Launch(answer) => Ok(answer),
            _ => Err(HandlerError::WrongAction { expected: "launch" }),
        }
    }

    /// A track request's answer (a launch request is refused).
    pub async fn handle_track(
        &self,
        payload: Value,
        deadline: Instant,
    ) -> Result<TrackAnswer, HandlerError> {
        match self.dispatch(payload, deadline).await? {
            Reply::Track(answer) => Ok(answer),
            _ => Err(HandlerError::WrongAction { expected: "track" }),
        }
    }

    /// A plan request's answer (any other is refused).
    pub async fn handle_plan(
        &self,
        payload: Value,
        deadline: Instant,
    ) -> Result<PlanAnswer, HandlerError> {
        match self.dispatch(payload, deadline).await? {
            Reply::Plan(answer) => Ok(answer),
            _ => Err(HandlerError::WrongAction { expected: "plan" }),
        }
    }
}

/// Why another account or region cannot be reached by a function wired to none.
fn no_reach() -> Unreachable {
    Unreachable {
        code: "NoTargetRole".into(),
        message: "this deployment reaches no other account or region".into(),
        transient: false,
    }
}

/// A place whose keys could not be had for now: a read that failed, to be made again.
fn for_now(target: &Target, why: &Unreachable) -> HandlerError {
    HandlerError::ReadFailed {
        what: format!("keys for {target} ({})", why.code),
        message: why.message.clone(),
    }
}
