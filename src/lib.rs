//! drs-failback: fail back many AWS DRS recovery instances at once, safely and observably.
//!
//! # Layout
//!
//! The folders are the stages a request flows through, in this order: a payload is parsed
//! ([`request`]); a plan is checked against DRS before its first step ([`plan`]); each launch
//! request is launched ([`launch`]); its jobs are followed to their results ([`track`]); once an
//! operator approved it, what the run brought back is disconnected or terminated ([`finish`]). The
//! [`handler`] dispatches each payload to its stage. Each stage builds its own events and
//! publishes them through [`events`]. The stages depend only on the [`drs::Drs`] and
//! [`events::EventPublisher`] ports; the AWS SDK adapters live in [`aws`].
//!
//! | stage | folder | files: what |
//! | --- | --- | --- |
//! | entry | [`handler`] | `mod`: the function, built once per cold start · `dispatch`: a payload to its stage, the metrics record · `lambda`: the Lambda entry, deadline and log span |
//! | request | [`request`] | `mod`: both envelopes, the actions, the errors · `launch`, `track`, `plan`: each action's request · `rules`: a step's name and `critical`, a refusal's words · `selector`: tag selectors · `step_loop`: where a step's loop stands · `tags`: the job tags asked for · `not_launched`: a final call's not-launched groups · `ended`: Step Functions' event for an execution that ended without its summary · `step_execution`: the plan's question about a step execution that did not answer it · `finish`: the finishing call's request · `groups`: a step's instances by account and region · `step_sum`: the plan's question about a step across accounts and regions · `rehearsal`: a stored plan to rehearse, and a dry run's steps read for judging |
//! | plan | [`plan`] | `mod`: the plan action, its answer, its dry run · `resolve`: the steps resolved against DRS · `duration`: how long a plan may take, against its execution's timeout · `follow`: what comes of a step execution that did not answer the plan · `sum`: a step across accounts and regions summed up, its verdict across them · `rehearsal`: a rehearsal's dry run judged (ready, or what a failback now would stumble on) |
//! | launch | [`launch`] | `mod`: a launch request to its answer · `preflight`: every instance read first · `readiness`: instances on their way waited for, the rest skipped · `capacity`: chunks within the quotas · `send`: chunks sent, each failure's decision carried out · `pacing`: the send rate DRS tolerates · `isolate`: refused pieces taken apart · `next`: what a step does after each call · `unreachable`: a launch whose account and region cannot be reached · `reconcile`: this run's jobs looked for · `confirm`: launches and refusals confirmed · `report`: what launching came to · `outcome`: one outcome per instance · `answer`: the launch's answer · `events`: its events |
//! | track | [`track`] | `mod`: a tracking call · `read`: the jobs' instances and logs · `results`: each instance's result · `verdict`: a plan step's verdict · `end`: how a step ended · `expect`: when the running jobs should end, learnt from those that did · `answer`: announcing, and the answer · `finish`: fitted under 256 KB · `ended`: the run of an execution that ended without its summary, found by its run id · `events`: Job Completed, Run / Step Finished |
//! | finish | [`finish`] | `mod`: a finishing call, the disconnects and terminate jobs it makes · `decide`: what becomes of each instance · `answer`: its results grouped, and whether to ask again · `events`: Failback Instances Finished |
//! | events | [`events`] | `mod`: the event catalogue and detail bounds · `publish`: PutEvents within its limits |
//!
//! What the stages stand on:
//!
//! | folder or file | files: what |
//! | --- | --- |
//! | [`drs`] | `mod`: the DRS port and its records · `target`: an account and region, and the ARNs that name one · `reach`: DRS in another account and region · `state`: DRS's states as types · `replication`: an instance's failback replication · `ids`: DRS's id patterns · `tags`: job and instance tags · `reads`: every read with its retries and time limits · `stats`: the calls an invocation made (and its events never published) |
//! | [`retry`] | `mod`: backoff and the retry policy · `failure`: what a failed call means · `launch`: the decision after a failed launch · `read`: the decision after a failed read · `deadline`: the time budget: when to stop starting work, how long a call may take |
//! | [`aws`] | `mod`: the function wired to the SDK clients · `http`: the one HTTPS client they share, and the roots it trusts · `drs`, `eventbridge`: the adapters · `targets`: other accounts and regions through the role each grants (STS) · `errors`: SDK failures classified |
//! | [`telemetry`] | `mod`: what the function tells its operators · `logging`: JSON logs with the Powertools keys · `metrics`: EMF records · `measure`: what each invocation measures |
//! | [`config`], [`error`] | settings; the errors a caller sees, by `errorType` |

pub mod aws;
pub mod config;
pub mod drs;
pub mod error;
pub mod events;
pub mod finish;
pub mod handler;
pub mod launch;
pub mod plan;
pub mod request;
pub mod retry;
pub mod telemetry;
pub mod track;
