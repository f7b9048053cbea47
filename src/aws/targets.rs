//! Other accounts and regions, through the role each target account grants the function: STS
//! `AssumeRole` of `arn:<partition>:iam::<account>:role/<TARGET_ROLE_NAME>` with the stack's
//! external id, and a DRS client per account and region built on the keys it gives.
//!
//! The clients are kept for the invocation and, in a warm container, for the next ones while
//! their keys last: keys are asked for an hour and renewed when less than 20 minutes are left,
//! longer than any invocation (15 minutes at most) can still use them. Time is tokio's, as for
//! every other wait of the function.

use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::{Mutex, PoisonError};
use std::time::Duration;

use aws_config::{Region, SdkConfig};
use aws_credential_types::Credentials;
use aws_credential_types::provider::SharedCredentialsProvider;
use aws_sdk_sts::error::{DisplayErrorContext, ProvideErrorMetadata};
use tokio::time::Instant;

use super::drs::SdkDrs;
use crate::config::Config;
use crate::drs::Target;
use crate::drs::reach::{Reach, Unreachable};

/// How long the keys STS gives are asked to last: a role's default maximum session.
const SESSION_SECONDS: u64 = 3600;
/// Keys with less than this left are renewed first.
const RENEW_BEFORE: Duration = Duration::from_secs(20 * 60);
/// STS's answers that say asking again cannot help.
const PERMANENT: [&str; 6] = [
    "AccessDenied",
    "RegionDisabledException",
    "ValidationError",
    "MalformedPolicyDocument",
    "PackedPolicyTooLarge",
    "InvalidClientTokenId",
];
/// What CloudTrail shows the function's sessions in a target account as.
const SESSION_NAME: &str = "drs-failback";

struct Kept {
    drs: SdkDrs,
    renew_at: Instant,
}

/// DRS in target accounts and regions, reached through STS.
pub struct StsTargets {
    sts: aws_sdk_sts::Client,
    base: SdkConfig,
    role_name: String,
    external_id: Option<String>,
    kept: Mutex<HashMap<Target, Kept>>,
}

impl StsTargets {
    /// `sdk` is the function's own configuration (its keys assume the roles; its endpoint,
    /// HTTP client and timeouts serve the target clients too).
    pub fn new(sdk: &SdkConfig, config: &Config) -> Self {
        StsTargets {
            sts: aws_sdk_sts::Client::new(sdk),
            base: sdk.clone(),
            role_name: config.target_role_name.clone(),
            external_id: config.target_external_id.clone(),
            kept: Mutex::new(HashMap::new()),
        }
    }

    fn kept(&self, target: &Target) -> Option<SdkDrs> {
        let kept = self.kept.lock().unwrap_or_else(PoisonError::into_inner);
        kept.get(target)
            .filter(|k| k.renew_at > Instant::now())
            .map(|k| k.drs.clone())
    }

    async fn assume(&self, target: &Target) -> Result<SdkDrs, Unreachable> {
        let role_arn = format!(
            "arn:{}:iam::{}:role/{}",
            partition(&target.region),
            target.account,
            self.role_name
        );
        let asked = Instant::now();
        let out = self
            .sts
            .assume_role()
            .role_arn(&role_arn)
            .role_session_name(SESSION_NAME)
            .set_external_id(self.external_id.clone())
            .duration_seconds(SESSION_SECONDS as i32)
            .send()
            .await
            .map_err(|e| {
                let code = e.code().unwrap_or("StsUnavailable").to_owned();
                let message = match e.message() {
                    Some(m) => format!("AssumeRole {role_arn}: {m}"),
                    None => format!("AssumeRole {role_arn}: {}", DisplayErrorContext(&e)),
                };
                // A refusal stands (the role missing or refusing the hub, STS off in the
                // region); anything else — throttled, a 5xx, no answer — is for now.
                let transient = !PERMANENT.contains(&code.as_str());
                Unreachable {
                    code,
                    message,
                    transient,
                }
            })?;
        let keys = out.credentials().ok_or_else(|| Unreachable {
            code: "StsUnavailable".into(),
            message: format!("AssumeRole {role_arn} answered without keys"),
            transient: true,
        })?;
        // The keys' expiry is the cache's business (on tokio's clock), not the SDK's.
        let credentials = Credentials::new(
            keys.access_key_id(),
            keys.secret_access_key(),
            Some(keys.session_token().to_owned()),
            None,
            "drs-failback-target",
        );
        let sdk = self
            .base
            .to_builder()
            .region(Region::new(target.region.clone()))
            .credentials_provider(SharedCredentialsProvider::new(credentials))
            .build();
        let drs = SdkDrs::new(&sdk);
        // Renewed 20 minutes before the hour asked for ends — or before the expiry STS gave, when
        // that comes sooner (a role with a shorter session, a clock that stood still).
        let by_sts = std::time::SystemTime::try_from(*keys.expiration())
            .ok()
            .and_then(|expires| expires.duration_since(std::time::SystemTime::now()).ok())
            .map_or(Duration::ZERO, |left| left);
        let lasts = Duration::from_secs(SESSION_SECONDS).min(by_sts.max(RENEW_BEFORE));
        let renew_at = asked + lasts - RENEW_BEFORE;
        self.kept
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(
                target.clone(),
                Kept {
                    drs: drs.clone(),
                    renew_at,
                },
            );
        tracing::info!(
            target_account = %target.account,
            target_region = %target.region,
            "assumed the target role"
        );
        Ok(drs)
    }
}

impl Reach<SdkDrs> for StsTargets {
    fn reach<'a>(
        &'a self,
        target: &'a Target,
    ) -> Pin<Box<dyn Future<Output = Result<SdkDrs, Unreachable>> + Send + 'a>> {
        Box::pin(async move {
            match self.kept(target) {
                Some(drs) => Ok(drs),
                None => self.assume(target).await,
            }
        })
    }
}

/// The partition of a region: an IAM role's ARN names it.
fn partition(region: &str) -> &'static str {
    if region.starts_with("cn-") {
        "aws-cn"
    } else if region.starts_with("us-gov-") {
        "aws-us-gov"
    } else {
        "aws"
    }
}

#[cfg(test)]
mod tests {
    use super::partition;

    #[test]
    fn partitions() {
        assert_eq!(partition("eu-west-1"), "aws");
        assert_eq!(partition("cn-north-1"), "aws-cn");
        assert_eq!(partition("us-gov-west-1"), "aws-us-gov");
    }
}
