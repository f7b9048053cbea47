//! The four DRS operations over [`State`]. Inputs arrive already validated against the model.
//!
//! Behaviour where AWS does not say (documented so tests and callers can rely on it):
//! - StartFailbackLaunch checks, in order: servers per job (402 L-B827C881), unknown ids (400
//!   ValidationException naming every unknown id), each instance's readiness in request order
//!   (409 ConflictException for the first one that is in an active job, not
//!   FAILBACK_READY_FOR_LAUNCH, or marked `refuseLaunch`), active jobs (402 L-D88FAC3A), servers
//!   in active jobs, drills' included (402 L-05AFA8C6). Any refusal creates nothing. Duplicate ids
//!   in one call count once.
//! - A created job is LAUNCH / FAILBACK; its instances' `failback.failbackJobID` is set and their
//!   state is FAILBACK_IN_PROGRESS until it completes, then FAILBACK_COMPLETED or FAILBACK_ERROR
//!   per the instance's configured launch result.
//! - DisconnectRecoveryInstance and TerminateRecoveryInstances: see each; a TERMINATE job counts
//!   against the job quotas like any, and its instances are gone once it completes.
//! - An instance configured with a `replication` shows its failback state and
//!   `dataReplicationInfo` as that replication stands (see the `replication` module) until it is
//!   launched; it is FAILBACK_READY_FOR_LAUNCH only once replication is CONTINUOUS.
//! - DescribeJobs lists the live jobs newest first, then the history; `fromDate` / `toDate`
//!   bound the creation time, both ends included. With a visibility lag, a job (and its
//!   instances' failback fields) is left out until the lag has passed. DescribeJobLogItems for an
//!   unknown job, or one not visible yet, answers an empty page.
//! - Page tokens are opaque; one from another operation, or garbage, is a ValidationException on
//!   `nextToken`.

use std::collections::{BTreeMap, HashSet};

use aws_smithy_types::DateTime;
use aws_smithy_types::date_time::Format;
use serde_json::{Value, json};
use tokio::time::Instant;

use crate::config::Quotas;
use crate::error::ApiError;
use crate::fleet::{DEFAULT_FAILURE_EVENT, FailbackState, LaunchResult, splitmix64};
use crate::replication::ReplicationInfo;
use crate::state::{Inst, Job, Phase, PreLaunchView, Server, State};

impl State {
    /// A launch by someone else (a test's other tool): no call record, no faults.
    pub(crate) fn start_job(
        &mut self,
        recovery_instance_ids: &[String],
        tags: &[(&str, &str)],
    ) -> Result<String, String> {
        let tags: serde_json::Map<String, Value> = tags
            .iter()
            .map(|(k, v)| ((*k).to_owned(), Value::String((*v).to_owned())))
            .collect();
        let input = json!({ "recoveryInstanceIDs": recovery_instance_ids, "tags": tags });
        self.start_failback_launch(&input, Instant::now())
            .map(|(_, job_id)| job_id)
            .map_err(|e| format!("{}: {}", e.kind, e.body["message"]))
    }

    /// Another tool's drill: an active job of source servers that have no recovery instance,
    /// counted against the same quotas.
    pub(crate) fn start_drill(&mut self, source_server_ids: &[String]) -> Result<String, String> {
        let now = Instant::now();
        self.check_quotas(source_server_ids.len(), now)
            .map_err(|e| format!("{}: {}", e.kind, e.body["message"]))?;
        let servers = source_server_ids
            .iter()
            .map(|source| Server {
                recovery_instance_id: None,
                source_server_id: source.clone(),
                result: LaunchResult::Launched,
                failure_event: None,
            })
            .collect();
        let (_, job_id) = self.push_job(servers, BTreeMap::new(), "START_DRILL", "LAUNCH", now);
        Ok(job_id)
    }

    /// A ConflictException for `id`, as unkind as the simulator is set to be: naming the
    /// instance as DRS's model allows, only in its message, or not at all (`vague`).
    fn conflict(&self, why: String, id: &str, vague: &str) -> ApiError {
        if self.error_details && self.culprit_in_message_only {
            ApiError::conflict_without_details(why)
        } else if self.error_details {
            ApiError::conflict(why, id)
        } else {
            ApiError::conflict_without_details(vague)
        }
    }

    /// A new job, created `now`: its index and id.
    fn push_job(
        &mut self,
        servers: Vec<Server>,
        tags: BTreeMap<String, String>,
        initiated_by: &'static str,
        job_type: &'static str,
        now: Instant,
    ) -> (usize, String) {
        let job_id = self.new_job_id();
        let index = self.jobs.len();
        self.jobs.push(Job {
            index,
            arn: format!(
                "arn:aws:drs:{}:{}:job/{job_id}",
                self.region, self.account_id
            ),
            id: job_id.clone(),
            created: now,
            servers,
            tags,
            initiated_by,
            job_type,
        });
        self.job_by_id.insert(job_id.clone(), index);
        (index, job_id)
    }

    /// DRS's quotas for a new job of `servers` servers: jobs and servers in PENDING or STARTED
    /// jobs, whoever started them.
    fn check_quotas(&self, servers: usize, now: Instant) -> Result<(), ApiError> {
        let (active_jobs, active_servers) = self
            .jobs
            .iter()
            .filter(|j| self.phase(j, now) != Phase::Completed)
            .fold((0, 0), |(n, s), j| (n + 1, s + j.servers.len()));
        if active_jobs + 1 > self.quotas.active_jobs {
            return Err(ApiError::quota(
                format!(
                    "Too many active jobs: {active_jobs} of at most {}",
                    self.quotas.active_jobs
                ),
                Quotas::ACTIVE_JOBS_CODE,
            ));
        }
        if active_servers + servers > self.quotas.servers_in_active_jobs {
            return Err(ApiError::quota(
                format!(
                    "Too many source servers in active jobs: {active_servers} active + {servers} requested exceeds {}",
                    self.quotas.servers_in_active_jobs
                ),
                Quotas::SERVERS_IN_ACTIVE_JOBS_CODE,
            ));
        }
        Ok(())
    }

    pub(crate) fn start_failback_launch(
        &mut self,
        input: &Value,
        now: Instant,
    ) -> Result<(Value, String), ApiError> {
        let mut seen = HashSet::new();
        let ids: Vec<String> = strings(&input["recoveryInstanceIDs"])
            .into_iter()
            .filter(|id| seen.insert(id.clone()))
            .collect();
        let tags: BTreeMap<String, String> = input["tags"]
            .as_object()
            .map(|m| {
                m.iter()
                    .map(|(k, v)| (k.clone(), v.as_str().unwrap_or_default().to_owned()))
                    .collect()
            })
            .unwrap_or_default();

        if ids.len() > self.quotas.servers_per_job {
            return Err(ApiError::quota(
                format!(
                    "A failback launch job may include at most {} source servers; {} were requested",
                    self.quotas.servers_per_job,
                    ids.len()
                ),
                Quotas::SERVERS_PER_JOB_CODE,
            ));
        }
        let unknown: Vec<&String> = ids
            .iter()
            .filter(|id| {
                self.by_id
                    .get(*id)
                    .is_none_or(|&i| self.gone(&self.instances[i], now))
            })
            .collect();
        if !unknown.is_empty() {
            let list: Vec<&str> = unknown.iter().map(|s| s.as_str()).collect();
            let fields: Vec<(String, String)> = unknown
                .iter()
                .map(|id| {
                    (
                        "recoveryInstanceIDs".to_owned(),
                        format!("Recovery instance {id} does not exist"),
                    )
                })
                .collect();
            if !self.error_details {
                return Err(ApiError::validation(
                    "fieldValidationFailed",
                    "One or more recovery instances do not exist",
                    &[],
                ));
            }
            return Err(ApiError::validation(
                "fieldValidationFailed",
                format!("Recovery instances not found: {}", list.join(", ")),
                &fields,
            ));
        }
        for id in &ids {
            let inst = &self.instances[self.by_id[id]];
            let why = if let Some(job) = self.active_job(inst, now) {
                format!(
                    "Recovery instance {id} is already part of active job {}",
                    job.id
                )
            } else {
                let state = self.effective_state(inst, now);
                if state != FailbackState::FailbackReadyForLaunch {
                    format!(
                        "Recovery instance {id} is not ready for failback launch (failback state {})",
                        state.as_str()
                    )
                } else if inst.spec.refuse_launch {
                    format!(
                        "Recovery instance {id} cannot be launched: its failback replication is not healthy"
                    )
                } else {
                    continue;
                }
            };
            return Err(self.conflict(
                why,
                id,
                "One or more recovery instances cannot be launched now",
            ));
        }
        self.check_quotas(ids.len(), now)?;

        let servers = ids
            .iter()
            .map(|id| {
                let inst = &self.instances[self.by_id[id]];
                Server {
                    recovery_instance_id: Some(id.clone()),
                    source_server_id: inst.spec.source_server_id.clone(),
                    result: inst.spec.launch_result,
                    failure_event: inst.spec.failure_event.clone(),
                }
            })
            .collect();
        let (index, job_id) = self.push_job(servers, tags, "FAILBACK", "LAUNCH", now);
        let lag = self.visibility_lag;
        for id in &ids {
            let i = self.by_id[id];
            let shown = (!lag.is_zero()).then(|| {
                let (state, failback_job_id, initiated) = self.shown(&self.instances[i], now);
                PreLaunchView {
                    state,
                    failback_job_id,
                    initiated,
                    until: now + lag,
                }
            });
            let inst = &mut self.instances[i];
            inst.before_launch = shown;
            inst.spec.failback_job_id = Some(job_id.clone());
            inst.follows_job = true;
            inst.last_job = Some(index);
            inst.initiated = Some(now);
        }
        Ok((
            json!({ "job": self.job_json(&self.jobs[index], now) }),
            job_id,
        ))
    }

    /// Replication stops and the instance stays listed, DISCONNECTED with no bytes. Unknown (or
    /// terminated): ResourceNotFoundException; in a running job: ConflictException. Again on a
    /// disconnected instance: nothing more happens.
    pub(crate) fn disconnect_recovery_instance(
        &mut self,
        input: &Value,
        now: Instant,
    ) -> Result<Value, ApiError> {
        let id = input["recoveryInstanceID"].as_str().unwrap_or_default();
        let Some(&i) = self
            .by_id
            .get(id)
            .filter(|&&i| !self.gone(&self.instances[i], now))
        else {
            return Err(ApiError::not_found(
                format!("Recovery instance {id} not found"),
                id,
            ));
        };
        if let Some(job) = self.active_job(&self.instances[i], now) {
            let why = format!("Recovery instance {id} is part of active job {}", job.id);
            return Err(self.conflict(why, id, "The recovery instance cannot be disconnected now"));
        }
        self.instances[i].disconnected = true;
        Ok(json!({}))
    }

    /// A TERMINATE job (initiated by TERMINATE_RECOVERY_INSTANCES) over 1 to 200 instances, on the
    /// same lifecycle and quotas as launch jobs; once it completes, each instance is gone from
    /// DescribeRecoveryInstances. Unknown (or terminated) ids: ValidationException naming them;
    /// an instance in a running job: ConflictException; nothing is created then.
    pub(crate) fn terminate_recovery_instances(
        &mut self,
        input: &Value,
        now: Instant,
    ) -> Result<(Value, String), ApiError> {
        let mut seen = HashSet::new();
        let ids: Vec<String> = strings(&input["recoveryInstanceIDs"])
            .into_iter()
            .filter(|id| seen.insert(id.clone()))
            .collect();
        let unknown: Vec<&str> = ids
            .iter()
            .filter(|id| {
                self.by_id
                    .get(id.as_str())
                    .is_none_or(|&i| self.gone(&self.instances[i], now))
            })
            .map(String::as_str)
            .collect();
        if !unknown.is_empty() {
            return Err(ApiError::validation(
                "fieldValidationFailed",
                format!("Recovery instances not found: {}", unknown.join(", ")),
                &[],
            ));
        }
        for id in &ids {
            if let Some(job) = self.active_job(&self.instances[self.by_id[id]], now) {
                let why = format!("Recovery instance {id} is part of active job {}", job.id);
                return Err(self.conflict(
                    why,
                    id,
                    "One or more recovery instances cannot be terminated now",
                ));
            }
        }
        self.check_quotas(ids.len(), now)?;
        let servers = ids
            .iter()
            .map(|id| Server {
                recovery_instance_id: Some(id.clone()),
                source_server_id: self.instances[self.by_id[id]].spec.source_server_id.clone(),
                result: LaunchResult::Terminated,
                failure_event: None,
            })
            .collect();
        let (index, job_id) = self.push_job(
            servers,
            BTreeMap::new(),
            "TERMINATE_RECOVERY_INSTANCES",
            "TERMINATE",
            now,
        );
        for id in &ids {
            let i = self.by_id[id];
            self.instances[i].terminate_job = Some(index);
        }
        Ok((
            json!({ "job": self.job_json(&self.jobs[index], now) }),
            job_id,
        ))
    }

    pub(crate) fn describe_recovery_instances(
        &self,
        input: &Value,
        now: Instant,
    ) -> Result<Value, ApiError> {
        let wanted: HashSet<String> = strings(&input["filters"]["recoveryInstanceIDs"])
            .into_iter()
            .collect();
        let sources: HashSet<String> = strings(&input["filters"]["sourceServerIDs"])
            .into_iter()
            .collect();
        let matching: Vec<&Inst> = self
            .instances
            .iter()
            .filter(|i| !self.gone(i, now))
            .filter(|i| wanted.is_empty() || wanted.contains(&i.spec.recovery_instance_id))
            .filter(|i| sources.is_empty() || sources.contains(&i.spec.source_server_id))
            .collect();
        let start = match input["nextToken"].as_str() {
            Some(t) => decode_token("ri", t)?,
            None => 0,
        };
        let size = self.page_len(&input["maxResults"]);
        let items: Vec<Value> = matching
            .iter()
            .skip(start)
            .take(size)
            .map(|i| self.instance_json(i, now))
            .collect();
        let mut out = json!({ "items": items });
        if start + size < matching.len() {
            out["nextToken"] = Value::String(encode_token("ri", start + size));
        }
        Ok(out)
    }

    /// Newest first: the jobs this simulator made (those visible yet), then the account's
    /// history. `fromDate` / `toDate` bound the creation time, both ends included.
    pub(crate) fn describe_jobs(&self, input: &Value, now: Instant) -> Result<Value, ApiError> {
        let filters = &input["filters"];
        let wanted: HashSet<String> = strings(&filters["jobIDs"]).into_iter().collect();
        let from = date_filter(&filters["fromDate"], "filters.fromDate")?;
        let to = date_filter(&filters["toDate"], "filters.toDate")?;
        let in_range = |ms: i64| from.is_none_or(|f| ms >= f) && to.is_none_or(|t| ms <= t);
        // The cursor is a job index, not an offset, so jobs created between two pages neither
        // repeat nor shift the newest-first listing: `jobs` below a live index, then `jobh`
        // below an index of the history.
        let (live_below, history_below) = match input["nextToken"].as_str() {
            None => (self.jobs.len(), self.history.len()),
            Some(t) => match decode_token("jobs", t) {
                Ok(below) => (below, self.history.len()),
                Err(_) => (0, decode_token("jobh", t)?),
            },
        };
        let size = self.page_len(&input["maxResults"]);
        let live = (0..live_below.min(self.jobs.len()))
            .rev()
            .filter(|&i| {
                let job = &self.jobs[i];
                (wanted.is_empty() || wanted.contains(&job.id))
                    && self.visible(job, now)
                    && in_range(self.clock.epoch_ms(job.created))
            })
            .map(|i| (false, i));
        let archived = (0..history_below.min(self.history.len()))
            .rev()
            .filter(|&i| {
                let job = &self.history[i];
                (wanted.is_empty() || wanted.contains(&job.id)) && in_range(job.created_ms)
            })
            .map(|i| (true, i));
        let mut candidates = live.chain(archived).peekable();
        let mut items = Vec::new();
        let mut last = None;
        while items.len() < size {
            let Some((old, i)) = candidates.next() else {
                break;
            };
            items.push(if old {
                self.history[i].json(&self.region, &self.account_id)
            } else {
                self.job_json(&self.jobs[i], now)
            });
            last = Some((old, i));
        }
        let mut out = json!({ "items": items });
        if let (Some((old, i)), Some(_)) = (last, candidates.peek()) {
            let kind = if old { "jobh" } else { "jobs" };
            out["nextToken"] = Value::String(encode_token(kind, i));
        }
        Ok(out)
    }

    /// Whether Describe calls see a job yet (the visibility lag).
    pub(crate) fn visible(&self, job: &Job, now: Instant) -> bool {
        now >= job.created + self.visibility_lag
    }

    pub(crate) fn describe_job_log_items(
        &self,
        input: &Value,
        now: Instant,
    ) -> Result<Value, ApiError> {
        let start = match input["nextToken"].as_str() {
            Some(t) => decode_token("log", t)?,
            None => 0,
        };
        let job_id = input["jobID"].as_str().unwrap_or_default();
        let logs = match self.job_by_id.get(job_id) {
            Some(&j) if self.visible(&self.jobs[j], now) => self.job_log(&self.jobs[j], now),
            Some(_) => Vec::new(),
            None => self
                .history_by_id
                .get(job_id)
                .map(|&h| self.history[h].log())
                .unwrap_or_default(),
        };
        let size = self.page_len(&input["maxResults"]);
        let items: Vec<Value> = logs.iter().skip(start).take(size).cloned().collect();
        let mut out = json!({ "items": items });
        if start + size < logs.len() {
            out["nextToken"] = Value::String(encode_token("log", start + size));
        }
        Ok(out)
    }

    fn page_len(&self, max_results: &Value) -> usize {
        let asked = max_results
            .as_u64()
            .map_or(self.page_size, |m| usize::try_from(m).unwrap_or(usize::MAX));
        asked.min(self.max_page_size).max(1)
    }

    fn new_job_id(&self) -> String {
        const ALPHABET: &[u8] = b"0123456789abcdefghijklmnopqrstuvwxyz";
        let mut n = self.jobs.len() as u64;
        loop {
            let mut x = 0;
            let suffix: String = (0..17u64)
                .map(|i| {
                    if i % 12 == 0 {
                        x = splitmix64(n.wrapping_mul(31).wrapping_add(i) ^ 0x00d5_0b00);
                    }
                    let c = ALPHABET[(x % 36) as usize] as char;
                    x /= 36;
                    c
                })
                .collect();
            let id = format!("drsjob-{suffix}");
            if !self.job_by_id.contains_key(&id) && !self.history_by_id.contains_key(&id) {
                return id;
            }
            n = n.wrapping_add(1 << 32);
        }
    }

    pub(crate) fn job_json(&self, job: &Job, now: Instant) -> Value {
        let phase = self.phase(job, now);
        let without_ids = phase == Phase::Completed && self.completed_jobs_without_instance_ids;
        let servers: Vec<Value> = job
            .servers
            .iter()
            .map(|s| {
                let mut server = json!({
                    "sourceServerID": s.source_server_id,
                    "launchStatus": self.launch_status(job, s, now),
                });
                if let (Some(id), false) = (&s.recovery_instance_id, without_ids) {
                    server["recoveryInstanceID"] = Value::String(id.clone());
                }
                server
            })
            .collect();
        let mut v = json!({
            "jobID": job.id,
            "arn": job.arn,
            "type": job.job_type,
            "initiatedBy": job.initiated_by,
            "creationDateTime": self.clock.iso(job.created),
            "status": State::status_str(phase),
            "participatingServers": servers,
            "participatingResources": [],
            "tags": job.tags,
        });
        if phase == Phase::Completed {
            v["endDateTime"] = Value::String(self.clock.iso(self.job_end(job)));
        }
        v
    }

    fn instance_json(&self, inst: &Inst, now: Instant) -> Value {
        let spec = &inst.spec;
        let (state, failback_job_id, initiated) = self.shown(inst, now);
        let mut failback = json!({
            "state": state.as_str(),
            "failbackToOriginalServer": true,
            "failbackLaunchType": "RECOVERY",
        });
        if let Some(job) = failback_job_id {
            failback["failbackJobID"] = Value::String(job);
        }
        if let Some(at) = initiated {
            failback["failbackInitiationTime"] = Value::String(self.clock.iso(at));
        }
        let mut instance = json!({
            "recoveryInstanceID": spec.recovery_instance_id,
            "ec2InstanceID": spec.ec2_instance_id,
            "ec2InstanceState": "RUNNING",
            "sourceServerID": spec.source_server_id,
            "arn": format!("arn:aws:drs:{}:{}:recovery-instance/{}", self.region, self.account_id, spec.recovery_instance_id),
            "tags": spec.tags,
            "isDrill": false,
            "originEnvironment": "ON_PREMISES",
            "failback": failback,
        });
        if inst.disconnected {
            // As DisconnectRecoveryInstance's reference says: DISCONNECTED, each disk's
            // totalStorageBytes zero, the lag gone.
            instance["dataReplicationInfo"] = json!({
                "dataReplicationState": "DISCONNECTED",
                "replicatedDisks": [{"deviceName": "/dev/sda", "totalStorageBytes": 0}],
            });
        } else if let Some(info) = self.replication(inst, now).and_then(|view| view.info) {
            instance["dataReplicationInfo"] = self.replication_json(&info, now);
        }
        instance
    }

    /// `dataReplicationInfo` as the API model shapes it: one disk, its bytes, the ETA while the
    /// initial sync runs, the error DRS names (if any).
    fn replication_json(&self, info: &ReplicationInfo, now: Instant) -> Value {
        let mut json = json!({
            "dataReplicationState": info.state,
            "replicatedDisks": [{
                "deviceName": "/dev/sda",
                "totalStorageBytes": info.total_bytes,
                "replicatedStorageBytes": info.replicated_bytes,
                "rescannedStorageBytes": 0,
                "backloggedStorageBytes": 0,
            }],
        });
        if let Some(eta) = info.eta_seconds {
            json["etaDateTime"] = Value::String(self.clock.iso(now + self.sim_duration(eta)));
        }
        if let Some(error) = info.error {
            json["dataReplicationError"] = json!({"error": error});
        }
        json
    }

    /// JOB_START when created, LAUNCH_START per server once STARTED, then each failed server's
    /// failure event (LAUNCH_FAILED unless the fleet names another) and JOB_END once COMPLETED.
    fn job_log(&self, job: &Job, now: Instant) -> Vec<Value> {
        let phase = self.phase(job, now);
        let log = |at: Instant, event: &str, data: Value| {
            let mut v = json!({ "logDateTime": self.clock.iso(at), "event": event });
            if !data.is_null() {
                v["eventData"] = data;
            }
            v
        };
        let mut items = vec![log(job.created, "JOB_START", Value::Null)];
        if phase >= Phase::Started {
            let at = job.created + self.lifecycle.pending;
            items.extend(job.servers.iter().map(|s| {
                log(
                    at,
                    "LAUNCH_START",
                    json!({ "sourceServerID": s.source_server_id }),
                )
            }));
        }
        if phase == Phase::Completed {
            let end = self.job_end(job);
            items.extend(job.servers.iter().filter(|s| s.result.failed()).map(|s| {
                let event = s.failure_event.as_deref().unwrap_or(DEFAULT_FAILURE_EVENT);
                let raw = match s.result {
                    LaunchResult::Terminated => "The launched instance was terminated (simulated)",
                    _ => "Simulated launch failure",
                };
                log(
                    end,
                    event,
                    json!({ "sourceServerID": s.source_server_id, "rawError": raw }),
                )
            }));
            items.push(log(end, "JOB_END", Value::Null));
        }
        items
    }
}

/// A `fromDate` / `toDate` filter as epoch milliseconds (the model has checked its pattern).
fn date_filter(value: &Value, field: &str) -> Result<Option<i64>, ApiError> {
    let Some(text) = value.as_str() else {
        return Ok(None);
    };
    DateTime::from_str(text, Format::DateTime)
        .ok()
        .and_then(|t| t.to_millis().ok())
        .map(Some)
        .ok_or_else(|| {
            ApiError::validation(
                "fieldValidationFailed",
                format!("Invalid date {text:?}"),
                &[(field.to_owned(), "not an ISO-8601 date and time".to_owned())],
            )
        })
}

fn strings(v: &Value) -> Vec<String> {
    v.as_array()
        .map(|a| {
            a.iter()
                .filter_map(|s| s.as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default()
}

fn encode_token(kind: &str, n: usize) -> String {
    format!("{kind}:{n}")
        .bytes()
        .map(|b| format!("{b:02x}"))
        .collect()
}

fn decode_token(kind: &str, token: &str) -> Result<usize, ApiError> {
    let bad = || {
        ApiError::validation(
            "fieldValidationFailed",
            "Invalid pagination token",
            &[(
                "nextToken".to_owned(),
                "The token was not issued by this operation".to_owned(),
            )],
        )
    };
    if !token.len().is_multiple_of(2) || !token.is_ascii() {
        return Err(bad());
    }
    let bytes: Vec<u8> = (0..token.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&token[i..i + 2], 16))
        .collect::<Result<_, _>>()
        .map_err(|_| bad())?;
    let text = String::from_utf8(bytes).map_err(|_| bad())?;
    text.strip_prefix(kind)
        .and_then(|rest| rest.strip_prefix(':'))
        .and_then(|n| n.parse().ok())
        .ok_or_else(bad)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_round_trip_and_are_kind_bound() {
        let t = encode_token("ri", 40);
        assert_eq!(decode_token("ri", &t).unwrap(), 40);
        assert!(decode_token("jobs", &t).is_err());
        assert!(decode_token("ri", "zz").is_err());
        assert!(decode_token("ri", "é").is_err());
    }
}
