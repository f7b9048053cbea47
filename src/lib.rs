//! drs-failback: fail back many AWS DRS recovery instances at once, safely and observably.
//!
//! # Layout
//!
//! A launch request flows through the stages in this order, and a track request then follows
//! the jobs it made to their results; each module is one of them, or what they stand on. The
//! core depends only on the [`drs::Drs`] and [`publish::EventPublisher`] traits; the AWS SDK
//! adapters live in [`aws`].
//!
//! | stage | module | what |
//! | --- | --- | --- |
//! | entry | [`handler`] | the Lambda adapter: envelope, deadline, log span, errors |
//! | request | [`request`] | parsing and validating both envelopes and the three actions; the jobs' tags |
//! | plan of steps | [`steps`] | a failback plan checked against DRS (selectors, ids, overlaps); its dry run |
//! | run | [`run`] | one run end to end, apart from Lambda: the stages below in order |
//! | pre-flight | [`preflight`] | every instance and job read before launching; source servers resolved |
//! | plan | [`plan`] | chunks within the DRS quotas still free (dry runs plan the same way) |
//! | launch | [`launch`] | sending the chunks: concurrency, pacing, carrying out retry steps |
//! | | [`isolate`] | finding the instances DRS refuses, by the culprit it names or by bisection |
//! | outcome | [`outcome`] | one outcome per instance, and the answer built from them |
//! | track | [`track`], [`results`] | following a run's jobs to the end: each launched instance's result |
//! | | [`verdict`] | a plan step's verdict: whether the plan goes on, and why not |
//! | | [`finish`] | the answer fitted under 256 KB; the run's not-launched instances merged back |
//! | events | [`events`], [`publish`] | the result events, and PutEvents within its limits |
//!
//! What the stages stand on:
//!
//! | module | what |
//! | --- | --- |
//! | [`retry`] | every retry decision as a pure function, every retry limit in one policy |
//! | [`reads`] | DRS reads with their retries, per-call timeouts and deadline checks |
//! | [`reconcile`] | reading back what an ambiguous launch did |
//! | [`pacing`] | the send rate DRS tolerates, learnt from its throttling |
//! | [`deadline`] | the time budget: when to stop starting work, how long a call may take |
//! | [`drs`] | what the core needs from DRS, in its own words |
//! | [`aws`] | the AWS SDK adapters, and the one constructor wiring the function to them |
//! | [`config`], [`error`], [`logging`] | settings, error names, JSON logs (Powertools keys) |
//! | [`metrics`], [`measure`] | CloudWatch Embedded Metric Format records and the DRS calls they count; what each invocation measures |

pub mod aws;
pub mod config;
pub mod deadline;
pub mod drs;
pub mod error;
pub mod events;
pub mod finish;
pub mod handler;
pub mod isolate;
pub mod launch;
pub mod logging;
pub mod measure;
pub mod metrics;
pub mod outcome;
pub mod pacing;
pub mod plan;
pub mod preflight;
pub mod publish;
pub mod reads;
pub mod reconcile;
pub mod request;
pub mod results;
pub mod retry;
pub mod run;
pub mod steps;
pub mod track;
pub mod verdict;
