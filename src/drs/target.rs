//! Where DRS keeps an instance: an account and a region ([`Target`]). DRS's quotas, jobs and
//! recovery instances are per account and region, so every call is made in one of them: the
//! function's own (its home) or a target account's, reached through a role it grants.
//!
//! An instance may be named anywhere by its ARN instead of its id
//! (`arn:aws:drs:<region>:<account>:recovery-instance/<id>`, a source server's
//! `…:source-server/<id>`): [`parse_arn`] reads the target and the id out of it.

use std::fmt;

use serde::{Deserialize, Serialize};

use super::ids::{is_valid_instance_id, is_valid_source_server_id};
use crate::config::{Config, is_account_id, is_region};

/// An AWS account and region.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Target {
    pub account: String,
    pub region: String,
}

impl fmt::Display for Target {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.account, self.region)
    }
}

impl Target {
    pub fn new(account: impl Into<String>, region: impl Into<String>) -> Self {
        Target {
            account: account.into(),
            region: region.into(),
        }
    }

    /// What is wrong with it, if anything: an account is 12 digits, a region like `eu-west-1`.
    pub fn problem(&self) -> Option<String> {
        if !is_account_id(&self.account) {
            return Some(format!(
                "account {:?} is not an AWS account id (12 digits)",
                self.account
            ));
        }
        if !is_region(&self.region) {
            return Some(format!(
                "region {:?} is not an AWS region (like eu-west-1)",
                self.region
            ));
        }
        None
    }
}

/// The function's own account and region, when it knows its account (`HOME_ACCOUNT_ID`).
pub fn home(config: &Config) -> Option<Target> {
    config
        .home
        .as_ref()
        .map(|(account, region)| Target::new(account.clone(), region.clone()))
}

/// What an ARN names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ArnKind {
    RecoveryInstance,
    SourceServer,
}

/// An instance named by its ARN: where it is, and its id.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NamedByArn {
    pub target: Target,
    pub kind: ArnKind,
    pub id: String,
}

/// Whether `s` is written as an ARN at all (a malformed one is then refused as such, not taken
/// for a malformed id).
pub fn looks_like_arn(s: &str) -> bool {
    s.starts_with("arn:")
}

/// A DRS recovery instance or source server ARN, in any partition; why not, otherwise.
pub fn parse_arn(arn: &str) -> Result<NamedByArn, String> {
    let fields: Vec<&str> = arn.splitn(6, ':').collect();
    let [_, partition, service, region, account, resource] = fields[..] else {
        return Err("is not an ARN (arn:<partition>:drs:<region>:<account>:<resource>)".into());
    };
    if !matches!(partition, "aws" | "aws-cn" | "aws-us-gov") {
        return Err(format!(
            "names partition {partition:?}, not aws, aws-cn or aws-us-gov"
        ));
    }
    if service != "drs" {
        return Err(format!("names service {service:?}, not drs"));
    }
    let target = Target::new(account, region);
    if let Some(problem) = target.problem() {
        return Err(problem);
    }
    let (kind, id) = match resource.split_once('/') {
        Some(("recovery-instance", id)) if is_valid_instance_id(id) => {
            (ArnKind::RecoveryInstance, id)
        }
        Some(("source-server", id)) if is_valid_source_server_id(id) => (ArnKind::SourceServer, id),
        _ => {
            return Err(
                "names no recovery instance (recovery-instance/i-…) or source server (source-server/s-…)"
                    .into(),
            );
        }
    };
    Ok(NamedByArn {
        target,
        kind,
        id: id.to_owned(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn instance_and_source_server_arns_are_read() {
        let named =
            parse_arn("arn:aws:drs:eu-west-1:222233334444:recovery-instance/i-0123456789abcdef0")
                .unwrap();
        assert_eq!(named.target, Target::new("222233334444", "eu-west-1"));
        assert_eq!(named.kind, ArnKind::RecoveryInstance);
        assert_eq!(named.id, "i-0123456789abcdef0");
        let named = parse_arn(
            "arn:aws-us-gov:drs:us-gov-west-1:222233334444:source-server/s-0123456789abcdef0",
        )
        .unwrap();
        assert_eq!(named.kind, ArnKind::SourceServer);
        assert_eq!(named.target.region, "us-gov-west-1");
    }

    #[test]
    fn a_bad_arn_says_what_is_wrong() {
        for (arn, says) in [
            ("arn:aws:drs:eu-west-1:222233334444", "is not an ARN"),
            (
                "arn:aws:ec2:eu-west-1:222233334444:instance/i-0123456789abcdef0",
                "service \"ec2\"",
            ),
            (
                "arn:aws:drs:eu-west-1:2222:recovery-instance/i-0123456789abcdef0",
                "12 digits",
            ),
            (
                "arn:aws:drs:europe:222233334444:recovery-instance/i-0123456789abcdef0",
                "not an AWS region",
            ),
            (
                "arn:aws:drs:eu-west-1:222233334444:job/drsjob-0123456789abcdefg",
                "names no recovery instance",
            ),
            (
                "arn:aws:drs:eu-west-1:222233334444:recovery-instance/i-xyz",
                "names no recovery instance",
            ),
            (
                "arn:other:drs:eu-west-1:222233334444:recovery-instance/i-0123456789abcdef0",
                "partition",
            ),
        ] {
            let err = parse_arn(arn).unwrap_err();
            assert!(err.contains(says), "{arn}: {err}");
        }
    }

    #[test]
    fn regions_and_accounts() {
        for r in [
            "us-east-1",
            "ap-southeast-4",
            "us-gov-west-1",
            "eu-isoe-west-1",
            "il-central-1",
        ] {
            assert!(is_region(r), "{r}");
        }
        for r in [
            "us-east",
            "US-EAST-1",
            "us-east-01",
            "us--1",
            "us-east-0",
            "",
        ] {
            assert!(!is_region(r), "{r}");
        }
        assert!(is_account_id("111122223333"));
        assert!(!is_account_id("11112222333"));
        assert!(!is_account_id("11112222333x"));
    }
}
