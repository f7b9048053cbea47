//! Settings, read once at cold start from the environment.
//!
//! `Config::from_lookup` takes any `name -> value` function so tests feed it a map instead of
//! mutating the process environment.

use std::time::Duration;

use thiserror::Error;

/// DRS's documented default quota is 100 source servers per job; the API itself accepts 200.
pub const DRS_API_MAX_INSTANCES_PER_CALL: usize = 200;

/// The answer is a Step Functions task output (256 KB state limit); its size bound is proven in a
/// test at this many instances, so no configuration may accept more.
pub const REQUEST_INSTANCES_CEILING: usize = 5000;

/// DRS runs at most 20 jobs at once (default quota), so one invocation can never launch more than
/// a few dozen chunks; capping the plan at 50 chunks also keeps the answer under 256 KB.
pub const MAX_CHUNKS_PER_REQUEST: usize = 50;

#[derive(Debug, Clone, PartialEq)]
pub struct Config {
    pub event_bus_name: String,
    pub event_source: String,
    pub max_request_instances: usize,
    pub max_instances_per_job: usize,
    pub max_concurrent_launches: usize,
    pub throttle_max_retries: u32,
    pub retry_base_delay: Duration,
    pub retry_max_delay: Duration,
    pub launch_call_timeout: Duration,
    pub deadline_margin: Duration,
    pub publish_max_attempts: u32,
    /// DRS quota: source servers across all active jobs.
    pub max_servers_in_flight: usize,
    /// DRS quota: jobs active at once.
    pub max_active_jobs: usize,
    /// When the quota is full, wait (while time is left) for jobs to finish instead of deferring.
    pub wait_for_capacity: bool,
    pub capacity_poll_interval: Duration,
    /// Learn DRS's tolerated send rate from its throttling and pace launches to it.
    pub adaptive_pacing: bool,
    /// How long DRS may take to show a job a call created (nothing promises read-after-write):
    /// after an ambiguous failure or a refusal, the function keeps looking this long before it
    /// resends or rejects.
    pub settle_window: Duration,
    /// Active jobs are read among those created this recently: longer than any failback job
    /// lives, short of an old account's whole history.
    pub active_job_window: Duration,
    /// The finishing actions this deployment allows (`FINISHING_ACTIONS`): the function's role
    /// holds the permissions of these only, and a plan asking for another is refused.
    pub finishing: FinishingAllowed,
    /// The function's own account and region (`HOME_ACCOUNT_ID`, `AWS_REGION`): where a call
    /// that names no target acts, with the function's own role (`drs::target::home`).
    pub home: Option<(String, String)>,
    /// The role each target account grants the function (`TARGET_ROLE_NAME`), assumed as
    /// `arn:<partition>:iam::<account>:role/<name>`.
    pub target_role_name: String,
    /// `TARGET_EXTERNAL_ID`: sent with every AssumeRole; the target role's trust asks for it.
    pub target_external_id: Option<String>,
}

/// `FINISHING_ACTIONS`: `none` (the default), `disconnect`, `terminate` or
/// `disconnect-and-terminate` — the stack's `FinishingActions` parameter.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct FinishingAllowed {
    pub disconnect: bool,
    pub terminate: bool,
}

impl FinishingAllowed {
    fn parse(value: &str) -> Option<Self> {
        let (disconnect, terminate) = match value.trim() {
            "none" => (false, false),
            "disconnect" => (true, false),
            "terminate" => (false, true),
            "disconnect-and-terminate" => (true, true),
            _ => return None,
        };
        Some(FinishingAllowed {
            disconnect,
            terminate,
        })
    }
}

#[derive(Debug, Error, PartialEq)]
pub enum ConfigError {
    #[error("{name}={value:?} is not a whole number")]
    NotANumber { name: &'static str, value: String },
    #[error(
        "FINISHING_ACTIONS={0:?} is not one of none, disconnect, terminate, disconnect-and-terminate"
    )]
    BadFinishing(String),
    #[error("{name}={value} is outside the allowed range {min}..={max}")]
    OutOfRange {
        name: &'static str,
        value: u64,
        min: u64,
        max: u64,
    },
    #[error("{name} must not be empty")]
    Empty { name: &'static str },
    #[error("EVENT_SOURCE={0:?} starts with \"aws.\", which EventBridge reserves for AWS services")]
    ReservedEventSource(String),
    #[error(
        "MAX_REQUEST_INSTANCES={max_request} needs {chunks} chunks of MAX_INSTANCES_PER_JOB={per_job}; \
         at most {MAX_CHUNKS_PER_REQUEST} are allowed (raise MAX_INSTANCES_PER_JOB or lower MAX_REQUEST_INSTANCES)"
    )]
    TooManyChunks {
        max_request: usize,
        per_job: usize,
        chunks: usize,
    },
    #[error("{name}={value:?} must be true or false")]
    NotABoolean { name: &'static str, value: String },
    #[error("RETRY_BASE_DELAY_MS must not exceed RETRY_MAX_DELAY_MS")]
    BaseDelayAboveCap,
    #[error("{name}={value:?}: {problem}")]
    Bad {
        name: &'static str,
        value: String,
        problem: &'static str,
    },
}

impl Config {
    pub fn from_env() -> Result<Self, ConfigError> {
        Self::from_lookup(|name| std::env::var(name).ok())
    }

    /// Settings given as name/value pairs (tests, the benchmark); unnamed settings take their
    /// defaults, as unset environment variables do.
    pub fn from_pairs(pairs: &[(&str, &str)]) -> Result<Self, ConfigError> {
        Self::from_lookup(|name| {
            pairs
                .iter()
                .find(|(key, _)| *key == name)
                .map(|(_, value)| (*value).to_owned())
        })
    }

    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        let number =
            |name: &'static str, default: u64, min: u64, max: u64| -> Result<u64, ConfigError> {
                let Some(raw) = lookup(name) else {
                    return Ok(default);
                };
                let value: u64 = raw.trim().parse().map_err(|_| ConfigError::NotANumber {
                    name,
                    value: raw.clone(),
                })?;
                if !(min..=max).contains(&value) {
                    return Err(ConfigError::OutOfRange {
                        name,
                        value,
                        min,
                        max,
                    });
                }
                Ok(value)
            };
        let text = |name: &'static str, default: &str| -> Result<String, ConfigError> {
            let value = lookup(name).unwrap_or_else(|| default.to_owned());
            if value.trim().is_empty() {
                return Err(ConfigError::Empty { name });
            }
            Ok(value)
        };

        let flag = |name: &'static str, default: bool| -> Result<bool, ConfigError> {
            match lookup(name).map(|v| v.trim().to_ascii_lowercase()) {
                None => Ok(default),
                Some(v) if v == "true" || v == "1" => Ok(true),
                Some(v) if v == "false" || v == "0" => Ok(false),
                Some(v) => Err(ConfigError::NotABoolean { name, value: v }),
            }
        };

        let event_source = text("EVENT_SOURCE", "drs-failback")?;
        if event_source.starts_with("aws.") {
            return Err(ConfigError::ReservedEventSource(event_source));
        }
        let max_instances_per_job = number(
            "MAX_INSTANCES_PER_JOB",
            100,
            1,
            DRS_API_MAX_INSTANCES_PER_CALL as u64,
        )? as usize;
        // Unset, the request limit follows the job size, so no pair of settings is refused.
        let max_request_instances = number(
            "MAX_REQUEST_INSTANCES",
            REQUEST_INSTANCES_CEILING.min(MAX_CHUNKS_PER_REQUEST * max_instances_per_job) as u64,
            1,
            REQUEST_INSTANCES_CEILING as u64,
        )? as usize;
        let chunks = max_request_instances.div_ceil(max_instances_per_job);
        if chunks > MAX_CHUNKS_PER_REQUEST {
            return Err(ConfigError::TooManyChunks {
                max_request: max_request_instances,
                per_job: max_instances_per_job,
                chunks,
            });
        }
        let retry_base_delay =
            Duration::from_millis(number("RETRY_BASE_DELAY_MS", 1_000, 1, 60_000)?);
        let retry_max_delay =
            Duration::from_millis(number("RETRY_MAX_DELAY_MS", 20_000, 1, 300_000)?);
        if retry_base_delay > retry_max_delay {
            return Err(ConfigError::BaseDelayAboveCap);
        }

        let home = match lookup("HOME_ACCOUNT_ID") {
            None => None,
            Some(account) if !is_account_id(account.trim()) => {
                return Err(ConfigError::Bad {
                    name: "HOME_ACCOUNT_ID",
                    value: account,
                    problem: "not an AWS account id (12 digits)",
                });
            }
            Some(account) => {
                let region = lookup("AWS_REGION").unwrap_or_default();
                if !is_region(region.trim()) {
                    return Err(ConfigError::Bad {
                        name: "AWS_REGION",
                        value: region,
                        problem: "HOME_ACCOUNT_ID needs the function's region (like eu-west-1)",
                    });
                }
                Some((account.trim().to_owned(), region.trim().to_owned()))
            }
        };
        let target_role_name = text("TARGET_ROLE_NAME", "drs-failback-target")?;
        let role_name_ok = target_role_name.len() <= 64
            && target_role_name
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"+=,.@_-".contains(&b));
        if !role_name_ok {
            return Err(ConfigError::Bad {
                name: "TARGET_ROLE_NAME",
                value: target_role_name,
                problem: "an IAM role name is 1-64 letters, digits and + = , . @ _ -",
            });
        }
        let target_external_id = lookup("TARGET_EXTERNAL_ID").filter(|v| !v.is_empty());
        if let Some(id) = &target_external_id {
            let ok = (2..=1224).contains(&id.len())
                && id
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"+=,.@:/_-".contains(&b));
            if !ok {
                return Err(ConfigError::Bad {
                    name: "TARGET_EXTERNAL_ID",
                    value: id.clone(),
                    problem: "an external id is 2-1224 letters, digits and + = , . @ : / _ -",
                });
            }
        }

        Ok(Config {
            home,
            target_role_name,
            target_external_id,
            event_bus_name: text("EVENT_BUS_NAME", "default")?,
            event_source,
            max_request_instances,
            max_instances_per_job,
            max_concurrent_launches: number("MAX_CONCURRENT_LAUNCHES", 4, 1, 20)? as usize,
            throttle_max_retries: number("THROTTLE_MAX_RETRIES", 8, 0, 50)? as u32,
            retry_base_delay,
            retry_max_delay,
            launch_call_timeout: Duration::from_millis(number(
                "LAUNCH_CALL_TIMEOUT_MS",
                10_000,
                100,
                120_000,
            )?),
            deadline_margin: Duration::from_millis(number(
                "DEADLINE_MARGIN_MS",
                3_000,
                500,
                60_000,
            )?),
            publish_max_attempts: number("PUBLISH_MAX_ATTEMPTS", 3, 1, 10)? as u32,
            max_servers_in_flight: number("MAX_SERVERS_IN_FLIGHT", 500, 1, 10_000)? as usize,
            max_active_jobs: number("MAX_ACTIVE_JOBS", 20, 1, 1_000)? as usize,
            wait_for_capacity: flag("WAIT_FOR_CAPACITY", false)?,
            adaptive_pacing: flag("ADAPTIVE_PACING", true)?,
            capacity_poll_interval: Duration::from_secs(number(
                "CAPACITY_POLL_SECONDS",
                30,
                1,
                600,
            )?),
            settle_window: Duration::from_secs(number("SETTLE_WINDOW_SECONDS", 10, 0, 120)?),
            active_job_window: Duration::from_secs(
                number("ACTIVE_JOB_WINDOW_HOURS", 48, 1, 720)? * 3600,
            ),
            finishing: match lookup("FINISHING_ACTIONS") {
                None => FinishingAllowed::default(),
                Some(value) => {
                    FinishingAllowed::parse(&value).ok_or(ConfigError::BadFinishing(value))?
                }
            },
        })
    }
}

/// An AWS account id: 12 digits.
pub fn is_account_id(s: &str) -> bool {
    s.len() == 12 && s.bytes().all(|b| b.is_ascii_digit())
}

/// An AWS region: `us-east-1`, `ap-southeast-4`, `us-gov-west-1`, `eu-isoe-west-1` — lowercase
/// words, a number last.
pub fn is_region(s: &str) -> bool {
    let parts: Vec<&str> = s.split('-').collect();
    let Some((number, words)) = parts.split_last() else {
        return false;
    };
    parts.len() >= 3
        && s.len() <= 32
        && words
            .iter()
            .all(|p| !p.is_empty() && p.bytes().all(|b| b.is_ascii_lowercase()))
        && !number.starts_with('0')
        && number.parse::<u8>().is_ok_and(|n| n > 0)
}

impl Default for Config {
    fn default() -> Self {
        Self::from_lookup(|_| None).expect("the defaults are valid")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn with(pairs: &[(&str, &str)]) -> Result<Config, ConfigError> {
        Config::from_pairs(pairs)
    }

    #[test]
    fn home_and_target_role_settings() {
        let config = with(&[
            ("HOME_ACCOUNT_ID", "111122223333"),
            ("AWS_REGION", "eu-west-1"),
        ])
        .unwrap();
        assert_eq!(
            config.home,
            Some(("111122223333".to_owned(), "eu-west-1".to_owned()))
        );
        assert_eq!(config.target_role_name, "drs-failback-target");
        assert_eq!(config.target_external_id, None);
        assert_eq!(Config::default().home, None);
        for (pairs, says) in [
            (vec![("HOME_ACCOUNT_ID", "1111")], "12 digits"),
            (vec![("HOME_ACCOUNT_ID", "111122223333")], "region"),
            (vec![("TARGET_ROLE_NAME", "a/b")], "IAM role name"),
            (vec![("TARGET_EXTERNAL_ID", "x")], "2-1224"),
        ] {
            let err = with(&pairs).unwrap_err().to_string();
            assert!(err.contains(says), "{pairs:?}: {err}");
        }
    }

    #[test]
    fn defaults_follow_the_drs_quotas() {
        let config = Config::default();
        assert_eq!(config.max_instances_per_job, 100);
        assert_eq!(config.max_request_instances, 5000);
        assert_eq!(config.max_concurrent_launches, 4);
        assert_eq!(config.event_source, "drs-failback");
        assert_eq!(config.event_bus_name, "default");
        assert_eq!(
            (config.max_servers_in_flight, config.max_active_jobs),
            (500, 20)
        );
        assert!(!config.wait_for_capacity);
        assert!(config.adaptive_pacing);
    }

    #[test]
    fn finishing_is_off_unless_the_stack_allows_it() {
        assert_eq!(Config::default().finishing, FinishingAllowed::default());
        let both = with(&[("FINISHING_ACTIONS", "disconnect-and-terminate")]).unwrap();
        assert!(both.finishing.disconnect && both.finishing.terminate);
        let one = with(&[("FINISHING_ACTIONS", "terminate")]).unwrap();
        assert!(!one.finishing.disconnect && one.finishing.terminate);
        let err = with(&[("FINISHING_ACTIONS", "delete")]).unwrap_err();
        assert!(
            err.to_string().contains("FINISHING_ACTIONS=\"delete\""),
            "{err}"
        );
    }

    #[test]
    fn flags_take_true_or_false_only() {
        assert!(
            with(&[("WAIT_FOR_CAPACITY", "TRUE")])
                .unwrap()
                .wait_for_capacity
        );
        assert!(
            !with(&[("WAIT_FOR_CAPACITY", "0")])
                .unwrap()
                .wait_for_capacity
        );
        let err = with(&[("WAIT_FOR_CAPACITY", "yes")]).unwrap_err();
        assert!(err.to_string().contains("WAIT_FOR_CAPACITY"), "{err}");
    }

    #[test]
    fn per_job_limit_is_bounded_by_the_api() {
        assert_eq!(
            with(&[("MAX_INSTANCES_PER_JOB", "201")]),
            Err(ConfigError::OutOfRange {
                name: "MAX_INSTANCES_PER_JOB",
                value: 201,
                min: 1,
                max: 200
            })
        );
        assert!(with(&[("MAX_INSTANCES_PER_JOB", "0")]).is_err());
        assert_eq!(
            with(&[("MAX_INSTANCES_PER_JOB", "200")])
                .unwrap()
                .max_instances_per_job,
            200
        );
    }

    #[test]
    fn bad_values_name_the_variable() {
        let err = with(&[("MAX_CONCURRENT_LAUNCHES", "four")]).unwrap_err();
        assert!(err.to_string().contains("MAX_CONCURRENT_LAUNCHES"), "{err}");
        let err = with(&[("EVENT_SOURCE", "aws.drs")]).unwrap_err();
        assert!(err.to_string().contains("aws."), "{err}");
        let err = with(&[("EVENT_BUS_NAME", " ")]).unwrap_err();
        assert_eq!(
            err,
            ConfigError::Empty {
                name: "EVENT_BUS_NAME"
            }
        );
    }

    #[test]
    fn chunk_count_is_capped_so_the_answer_stays_small() {
        let err = with(&[
            ("MAX_INSTANCES_PER_JOB", "10"),
            ("MAX_REQUEST_INSTANCES", "5000"),
        ])
        .unwrap_err();
        assert!(
            matches!(err, ConfigError::TooManyChunks { chunks: 500, .. }),
            "{err}"
        );
        // unset, the request limit follows the job size
        let small_jobs = with(&[("MAX_INSTANCES_PER_JOB", "10")]).unwrap();
        assert_eq!(small_jobs.max_request_instances, 500);
        assert_eq!(Config::default().max_request_instances, 5000);
        let ok = with(&[
            ("MAX_INSTANCES_PER_JOB", "10"),
            ("MAX_REQUEST_INSTANCES", "500"),
        ]);
        assert!(ok.is_ok());
    }
}
