//! Many accounts and regions behind one port, as AWS routes them: each call reaches the DRS of
//! the (account, region) its SigV4 credential scope names — the account its access key belongs
//! to (the home account's keys, or a session STS gave out for a role of another account), the
//! region it signed for. Each (account, region) is a whole simulator of its own: fleet, jobs,
//! quotas, faults and calls ([`crate::state::State`]).
//!
//! STS `AssumeRole` is answered here too (awsQuery: a form body, an XML answer): only the home
//! account may assume, only a role a target account holds, with the external id it asks for. A
//! session's keys expire as STS says (`DurationSeconds`, 3 600 s by default): a call signed with
//! them after that is refused `ExpiredTokenException`, as AWS does.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use hyper::header::{AUTHORIZATION, HeaderMap};
use tokio::time::Instant;

use crate::clock::Clock;
use crate::config::{Role, SimConfig};
use crate::error::ApiError;
use crate::reply::Reply;
use crate::state::{Shared, State};

/// An account and a region: where DRS keeps one set of recovery instances, jobs and quotas.
pub type TargetKey = (String, String);

/// Who signed a call: the account its keys belong to, unless they are unknown or expired.
enum Caller {
    Account(String),
    Expired,
}

struct Session {
    account: String,
    expires: Instant,
}

/// Every (account, region) the simulator holds, the roles target accounts hold, and the sessions
/// STS gave out.
pub(crate) struct World {
    home: TargetKey,
    home_state: Arc<Shared>,
    targets: BTreeMap<TargetKey, Arc<Shared>>,
    roles: Vec<Role>,
    clock: Clock,
    sessions: Mutex<HashMap<String, Session>>,
    /// The next AssumeRole calls answered `Throttling` (STS busy, for now).
    throttled: Mutex<u32>,
}

impl std::fmt::Debug for World {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("drs-sim world")
    }
}

impl World {
    pub(crate) fn new(mut config: SimConfig) -> Self {
        let home = (config.account_id.clone(), config.region.clone());
        let targets = std::mem::take(&mut config.targets)
            .into_iter()
            .map(|t| {
                let key = (t.account_id.clone(), t.region.clone());
                (key, Arc::new(Shared::new(State::new(t))))
            })
            .collect();
        let roles = std::mem::take(&mut config.roles);
        World {
            home,
            home_state: Arc::new(Shared::new(State::new(config))),
            targets,
            roles,
            clock: Clock::new(),
            sessions: Mutex::new(HashMap::new()),
            throttled: Mutex::new(0),
        }
    }

    /// The home account and region: the hub's own, where its credentials and events go.
    pub(crate) fn home(&self) -> &Arc<Shared> {
        &self.home_state
    }

    /// The simulator of one (account, region), the home one included.
    pub(crate) fn at(&self, account: &str, region: &str) -> Option<&Arc<Shared>> {
        if self.home.0 == account && self.home.1 == region {
            return Some(&self.home_state);
        }
        self.targets.get(&(account.to_owned(), region.to_owned()))
    }

    /// Every (account, region) held, the home one first.
    pub(crate) fn keys(&self) -> Vec<TargetKey> {
        std::iter::once(self.home.clone())
            .chain(self.targets.keys().cloned())
            .collect()
    }

    /// The simulator a signed API call reaches. A call without a credential scope goes home: the
    /// SigV4 check of that simulator refuses it as AWS would.
    pub(crate) fn route(
        &self,
        headers: &HeaderMap,
        now: Instant,
    ) -> Result<&Arc<Shared>, ApiError> {
        let Some((key, region)) = scope(headers) else {
            return Ok(&self.home_state);
        };
        let account = match self.caller(&key, now) {
            Caller::Account(account) => account,
            Caller::Expired => return Err(ApiError::expired_token()),
        };
        self.at(&account, &region)
            .ok_or_else(ApiError::unrecognized_client)
    }

    /// The next `calls` AssumeRole calls are throttled.
    pub(crate) fn throttle_assume_role(&self, calls: u32) {
        *self
            .throttled
            .lock()
            .unwrap_or_else(PoisonError::into_inner) = calls;
    }

    /// How many sessions STS gave out.
    pub(crate) fn sessions_given(&self) -> usize {
        self.sessions
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .len()
    }

    fn caller(&self, access_key: &str, now: Instant) -> Caller {
        let sessions = self.sessions.lock().unwrap_or_else(PoisonError::into_inner);
        match sessions.get(access_key) {
            Some(s) if s.expires <= now => Caller::Expired,
            Some(s) => Caller::Account(s.account.clone()),
            None => Caller::Account(self.home.0.clone()),
        }
    }

    /// STS AssumeRole: keys for a role a target account holds, for the home account only.
    pub(crate) fn assume_role(&self, headers: &HeaderMap, body: &[u8], now: Instant) -> Reply {
        let form: HashMap<String, String> = form_urlencoded::parse(body).into_owned().collect();
        let request_id = uuid::Uuid::new_v4().to_string();
        let caller = scope(headers).map(|(key, _)| self.caller(&key, now));
        let refuse = |status: u16, code: &str, message: String| {
            sts_error(status, code, &message, &request_id)
        };
        match caller {
            None => {
                return refuse(
                    403,
                    "MissingAuthenticationToken",
                    "Request is missing Authentication Token".into(),
                );
            }
            Some(Caller::Expired) => {
                return refuse(
                    403,
                    "ExpiredToken",
                    "The security token included in the request is expired".into(),
                );
            }
            Some(Caller::Account(a)) if a != self.home.0 => {
                return refuse(
                    403,
                    "AccessDenied",
                    format!(
                        "User: arn:aws:sts::{a}:assumed-role is not authorized to perform: sts:AssumeRole"
                    ),
                );
            }
            Some(Caller::Account(_)) => {}
        }
        {
            let mut throttled = self
                .throttled
                .lock()
                .unwrap_or_else(PoisonError::into_inner);
            if *throttled > 0 {
                *throttled -= 1;
                return refuse(400, "Throttling", "Rate exceeded".into());
            }
        }
        if form.get("Action").map(String::as_str) != Some("AssumeRole") {
            let action = form.get("Action").cloned().unwrap_or_default();
            return refuse(
                400,
                "InvalidAction",
                format!("Could not find operation {action} for version 2011-06-15"),
            );
        }
        let (Some(role_arn), Some(session_name)) =
            (form.get("RoleArn"), form.get("RoleSessionName"))
        else {
            return refuse(
                400,
                "ValidationError",
                "1 validation error detected: RoleArn and RoleSessionName are required".into(),
            );
        };
        let valid_session = (2..=64).contains(&session_name.len())
            && session_name
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"_+=,.@-".contains(&b));
        if !valid_session {
            return refuse(
                400,
                "ValidationError",
                format!(
                    "1 validation error detected: Value '{session_name}' at 'roleSessionName' failed to satisfy constraint: Member must satisfy regular expression pattern: [\\w+=,.@-]*"
                ),
            );
        }
        let seconds = match form.get("DurationSeconds").map(|s| s.parse::<u64>()) {
            None => 3600,
            Some(Ok(s)) if (900..=43_200).contains(&s) => s,
            Some(_) => {
                return refuse(400, "ValidationError", "1 validation error detected: Value at 'durationSeconds' failed to satisfy constraint: Member must have value between 900 and 43200".into());
            }
        };
        let external_id = form.get("ExternalId");
        let held = self.roles.iter().find(|r| r.arn() == *role_arn);
        let allowed = held.is_some_and(|r| {
            r.external_id.as_ref() == external_id
                || r.external_id.is_none() && external_id.is_none()
        });
        let Some(role) = held.filter(|_| allowed) else {
            return refuse(
                403,
                "AccessDenied",
                format!(
                    "User: arn:aws:sts::{}:assumed-role/drs-failback-function is not authorized to perform: sts:AssumeRole on resource: {role_arn}",
                    self.home.0
                ),
            );
        };
        let access_key = format!(
            "ASIASIM{}",
            &uuid::Uuid::new_v4().simple().to_string()[..13].to_uppercase()
        );
        let expires = now + Duration::from_secs(seconds);
        self.sessions
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(
                access_key.clone(),
                Session {
                    account: role.account_id.clone(),
                    expires,
                },
            );
        let body = format!(
            "<AssumeRoleResponse xmlns=\"https://sts.amazonaws.com/doc/2011-06-15/\">\
             <AssumeRoleResult>\
             <AssumedRoleUser><AssumedRoleId>AROASIMULATED:{session}</AssumedRoleId>\
             <Arn>arn:aws:sts::{account}:assumed-role/{name}/{session}</Arn></AssumedRoleUser>\
             <Credentials><AccessKeyId>{access_key}</AccessKeyId>\
             <SecretAccessKey>drs-sim-session-secret</SecretAccessKey>\
             <SessionToken>drs-sim-session-token-{access_key}</SessionToken>\
             <Expiration>{expiration}</Expiration></Credentials>\
             </AssumeRoleResult>\
             <ResponseMetadata><RequestId>{request_id}</RequestId></ResponseMetadata>\
             </AssumeRoleResponse>",
            session = xml_escape(session_name),
            account = role.account_id,
            name = xml_escape(&role.name),
            expiration = self.clock.iso(expires),
        );
        Reply::xml(200, body, request_id)
    }
}

/// The access key and region of a SigV4 `Authorization` header's credential scope.
fn scope(headers: &HeaderMap) -> Option<(String, String)> {
    let auth = headers.get(AUTHORIZATION)?.to_str().ok()?;
    let credential = auth
        .strip_prefix("AWS4-HMAC-SHA256 ")?
        .split(',')
        .map(str::trim)
        .find_map(|p| p.strip_prefix("Credential="))?;
    let mut parts = credential.split('/');
    let key = parts.next()?.to_owned();
    let _date = parts.next()?;
    let region = parts.next()?.to_owned();
    Some((key, region))
}

fn sts_error(status: u16, code: &str, message: &str, request_id: &str) -> Reply {
    let kind = if status >= 500 { "Receiver" } else { "Sender" };
    let body = format!(
        "<ErrorResponse xmlns=\"https://sts.amazonaws.com/doc/2011-06-15/\">\
         <Error><Type>{kind}</Type><Code>{code}</Code><Message>{}</Message></Error>\
         <RequestId>{request_id}</RequestId></ErrorResponse>",
        xml_escape(message)
    );
    Reply::xml(status, body, request_id.to_owned())
}

fn xml_escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}
