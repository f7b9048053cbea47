//! `Drs` over the AWS SDK's DRS client.

use aws_config::SdkConfig;
use aws_sdk_drs::Client;
use aws_sdk_drs::types::{
    DescribeJobsRequestFilters, DescribeRecoveryInstancesRequestFilters, Job,
};
use aws_smithy_types::DateTime;
use aws_smithy_types::date_time::Format;

use super::errors::{classify_call_error, classify_describe_error, classify_start_error};
use crate::drs::replication::Disk;
use crate::drs::tags::{RUN_ID_TAG_KEY, STEP_TAG_KEY};
use crate::drs::{
    DESCRIBE_INSTANCES_MAX_IDS, DESCRIBE_JOBS_MAX_IDS, Drs, FailbackState, InstanceQuery,
    JobLogEvent, JobLogItem, JobQuery, JobRecord, JobStatus, JobType, LaunchStatus, Page,
    Participant, RecoveryInstance, Replication, ReplicationState, Tags,
};
use crate::retry::{DescribeError, LaunchError};

#[derive(Clone, Debug)]
pub struct SdkDrs {
    client: Client,
}

impl SdkDrs {
    pub fn new(sdk: &SdkConfig) -> Self {
        SdkDrs {
            client: Client::new(&super::without_sdk_retries(sdk)),
        }
    }

    /// Keeps whatever retry mode `sdk` has: the benchmark's peer baseline, which measures the
    /// SDK's standard retries against the function's own policy. Behind a feature the function
    /// never enables: a resend after a 5xx can start a second job.
    #[cfg(feature = "bench-sdk-retries")]
    pub fn with_sdk_retries(sdk: &SdkConfig) -> Self {
        SdkDrs {
            client: Client::new(sdk),
        }
    }
}

impl Drs for SdkDrs {
    async fn start_failback_launch(
        &self,
        recovery_instance_ids: &[String],
        tags: &Tags,
    ) -> Result<JobRecord, LaunchError> {
        let mut call = self
            .client
            .start_failback_launch()
            .set_recovery_instance_ids(Some(recovery_instance_ids.to_vec()));
        for (key, value) in tags.iter() {
            call = call.tags(key, value);
        }
        match call.send().await {
            Ok(output) => match output.job {
                Some(job) => Ok(job_record(job)),
                // A 200 without a job: DRS accepted something we cannot see. Treat it like a
                // lost answer rather than guess.
                None => Err(LaunchError::Ambiguous {
                    error: "DRS answered without a job".into(),
                }),
            },
            Err(error) => Err(classify_start_error(error)),
        }
    }

    async fn disconnect_recovery_instance(
        &self,
        recovery_instance_id: &str,
    ) -> Result<(), LaunchError> {
        self.client
            .disconnect_recovery_instance()
            .recovery_instance_id(recovery_instance_id)
            .send()
            .await
            .map(|_| ())
            .map_err(classify_call_error)
    }

    async fn terminate_recovery_instances(
        &self,
        recovery_instance_ids: &[String],
    ) -> Result<JobRecord, LaunchError> {
        let output = self
            .client
            .terminate_recovery_instances()
            .set_recovery_instance_ids(Some(recovery_instance_ids.to_vec()))
            .send()
            .await
            .map_err(classify_call_error)?;
        match output.job {
            Some(job) => Ok(job_record(job)),
            None => Err(LaunchError::Ambiguous {
                error: "DRS answered without a job".into(),
            }),
        }
    }

    async fn describe_recovery_instances(
        &self,
        query: InstanceQuery<'_>,
        next_token: Option<&str>,
    ) -> Result<Page<RecoveryInstance>, DescribeError> {
        let filters = DescribeRecoveryInstancesRequestFilters::builder();
        let filters = match query {
            // An empty filter means "every instance in the account": never what is meant here.
            InstanceQuery::RecoveryInstances([]) | InstanceQuery::SourceServers([]) => {
                return Ok(Page {
                    items: Vec::new(),
                    next_token: None,
                });
            }
            InstanceQuery::RecoveryInstances(ids) => {
                filters.set_recovery_instance_ids(Some(ids.to_vec()))
            }
            InstanceQuery::SourceServers(ids) => filters.set_source_server_ids(Some(ids.to_vec())),
            // DRS reads an empty filter as every instance.
            InstanceQuery::All => filters,
        };
        let page = self
            .client
            .describe_recovery_instances()
            .filters(filters.build())
            .max_results(DESCRIBE_INSTANCES_MAX_IDS as i32)
            .set_next_token(next_token.map(str::to_owned))
            .send()
            .await
            .map_err(classify_describe_error)?;
        Ok(Page {
            items: page.items().iter().map(recovery_instance).collect(),
            next_token: page.next_token.filter(|token| !token.is_empty()),
        })
    }

    async fn describe_jobs(
        &self,
        query: JobQuery<'_>,
        next_token: Option<&str>,
    ) -> Result<Page<JobRecord>, DescribeError> {
        let from_date = query
            .created_since
            .map(|since| {
                DateTime::from(since)
                    .fmt(Format::DateTime)
                    .map_err(|e| DescribeError::Failed {
                        error: format!("fromDate cannot be written: {e}"),
                    })
            })
            .transpose()?;
        let filters = DescribeJobsRequestFilters::builder()
            .set_job_ids((!query.job_ids.is_empty()).then(|| query.job_ids.to_vec()))
            .set_from_date(from_date)
            .build();
        let page = self
            .client
            .describe_jobs()
            .filters(filters)
            .max_results(DESCRIBE_JOBS_MAX_IDS as i32)
            .set_next_token(next_token.map(str::to_owned))
            .send()
            .await
            .map_err(classify_describe_error)?;
        Ok(Page {
            items: page.items().iter().cloned().map(job_record).collect(),
            next_token: page.next_token.filter(|token| !token.is_empty()),
        })
    }

    async fn describe_job_log_items(
        &self,
        job_id: &str,
        next_token: Option<&str>,
    ) -> Result<Page<JobLogItem>, DescribeError> {
        self.job_log_page(job_id, next_token).await
    }
}

impl SdkDrs {
    async fn job_log_page(
        &self,
        job_id: &str,
        next_token: Option<&str>,
    ) -> Result<Page<JobLogItem>, DescribeError> {
        let page = self
            .client
            .describe_job_log_items()
            .job_id(job_id)
            .max_results(1000)
            .set_next_token(next_token.map(str::to_owned))
            .send()
            .await
            .map_err(classify_describe_error)?;
        Ok(Page {
            items: page
                .items()
                .iter()
                .map(|item| JobLogItem {
                    event: JobLogEvent::from_name(
                        item.event().map(|event| event.as_str()).unwrap_or_default(),
                    ),
                    source_server_id: item
                        .event_data()
                        .and_then(|data| data.source_server_id())
                        .map(str::to_owned),
                    raw_error: item
                        .event_data()
                        .and_then(|data| data.raw_error())
                        .map(str::to_owned),
                })
                .collect(),
            next_token: page.next_token.filter(|token| !token.is_empty()),
        })
    }
}

fn recovery_instance(item: &aws_sdk_drs::types::RecoveryInstance) -> RecoveryInstance {
    RecoveryInstance {
        recovery_instance_id: item.recovery_instance_id().unwrap_or_default().to_owned(),
        source_server_id: item.source_server_id().map(str::to_owned),
        failback_state: FailbackState::from_name(
            item.failback()
                .and_then(|failback| failback.state())
                .map_or("FAILBACK_STATE_UNKNOWN", |state| state.as_str()),
        ),
        failback_job_id: item
            .failback()
            .and_then(|failback| failback.failback_job_id())
            .map(str::to_owned),
        tags: Tags::from_map(
            item.tags()
                .cloned()
                .unwrap_or_default()
                .into_iter()
                .collect(),
        ),
        // An info without a state (nothing replicates yet) is no replication, not a stuck one.
        replication: item
            .data_replication_info()
            .filter(|info| info.data_replication_state().is_some())
            .map(replication),
    }
}

fn replication(info: &aws_sdk_drs::types::RecoveryInstanceDataReplicationInfo) -> Replication {
    // DRS sends 0 for a figure it has not got; a negative one is taken for 0 too.
    let bytes = |n: i64| u64::try_from(n).unwrap_or(0);
    let disks = info.replicated_disks().iter().map(|disk| Disk {
        total_bytes: bytes(disk.total_storage_bytes()),
        replicated_bytes: bytes(disk.replicated_storage_bytes()),
        backlogged_bytes: bytes(disk.backlogged_storage_bytes()),
    });
    let state = ReplicationState::from_name(
        info.data_replication_state()
            .map_or("REPLICATION_STATE_UNKNOWN", |state| state.as_str()),
    );
    Replication {
        eta: info.eta_date_time().map(str::to_owned),
        lag: info.lag_duration().map(str::to_owned),
        error: info
            .data_replication_error()
            .and_then(|error| error.error())
            .map(|error| error.as_str().to_owned()),
        ..Replication::new(state, disks)
    }
}

fn job_record(job: Job) -> JobRecord {
    let run_id = job
        .tags()
        .and_then(|tags| tags.get(RUN_ID_TAG_KEY))
        .cloned();
    let step = job.tags().and_then(|tags| tags.get(STEP_TAG_KEY)).cloned();
    // With an offset allowed: the model leaves room for `+00:00` as well as `Z` (32 characters),
    // and a date that does not parse would leave the job's age unknown.
    let date = |text: Option<&str>| {
        text.and_then(|text| DateTime::from_str(text, Format::DateTimeWithOffset).ok())
            .and_then(|at| std::time::SystemTime::try_from(at).ok())
    };
    let created = date(job.creation_date_time());
    let ended = date(job.end_date_time());
    let participants = job
        .participating_servers()
        .iter()
        .map(|server| Participant {
            recovery_instance_id: server.recovery_instance_id().map(str::to_owned),
            source_server_id: server.source_server_id().map(str::to_owned),
            launch_status: server
                .launch_status()
                .map(|status| LaunchStatus::from_name(status.as_str())),
        })
        .collect();
    JobRecord {
        // A job DRS lists without a status has not finished: it still counts against the quotas.
        status: job.status().map_or(JobStatus::Pending, |status| {
            JobStatus::from_name(status.as_str())
        }),
        kind: job
            .r#type()
            .map_or(JobType::Launch, |kind| JobType::from_name(kind.as_str())),
        arn: job.arn,
        job_id: job.job_id,
        run_id,
        step,
        created,
        ended,
        participants,
    }
}
