//! Many accounts and regions behind one port: a call reaches the (account, region) its
//! credentials and signing region name; STS AssumeRole gives keys of a target account only for a
//! role it holds, with its external id, to the home account; the keys expire.

mod common;

use aws_config::retry::RetryConfig;
use aws_config::{Region, SdkConfig};
use aws_credential_types::Credentials;
use aws_credential_types::provider::SharedCredentialsProvider;
use aws_sdk_drs::error::ProvideErrorMetadata;
use common::{drs, start};
use drs_sim::{Fleet, Role, SimConfig, SimHandle};

const HOME_ID: &str = "i-0a0000000000000a1";
const EAST_ID: &str = "i-0b0000000000000b1";
const WEST_ID: &str = "i-0c0000000000000c1";
const TARGET: &str = "222233334444";
const ROLE: &str = "arn:aws:iam::222233334444:role/drs-failback-target";

fn config() -> SimConfig {
    let home = SimConfig {
        fleet: Fleet::matching([HOME_ID]),
        ..SimConfig::default()
    };
    let east = SimConfig {
        account_id: TARGET.into(),
        fleet: Fleet::matching([EAST_ID]),
        ..home.target_base()
    };
    let west = SimConfig {
        account_id: TARGET.into(),
        region: "us-west-2".into(),
        fleet: Fleet::matching([WEST_ID]),
        ..home.target_base()
    };
    SimConfig {
        targets: vec![east, west],
        roles: vec![Role {
            account_id: TARGET.into(),
            name: "drs-failback-target".into(),
            external_id: Some("run-book-7".into()),
        }],
        ..home
    }
}

async fn sts(sim: &SimHandle) -> aws_sdk_sts::Client {
    let sdk = sim
        .sdk_config()
        .await
        .to_builder()
        .retry_config(RetryConfig::disabled())
        .build();
    aws_sdk_sts::Client::new(&sdk)
}

/// A DRS client in `region` signing with the keys STS gave.
async fn drs_as(
    sim: &SimHandle,
    keys: &aws_sdk_sts::types::Credentials,
    region: &str,
) -> aws_sdk_drs::Client {
    let credentials = Credentials::new(
        keys.access_key_id(),
        keys.secret_access_key(),
        Some(keys.session_token().to_owned()),
        None,
        "sts",
    );
    let sdk: SdkConfig = sim
        .sdk_config()
        .await
        .to_builder()
        .credentials_provider(SharedCredentialsProvider::new(credentials))
        .region(Region::new(region.to_owned()))
        .retry_config(RetryConfig::disabled())
        .build();
    aws_sdk_drs::Client::new(&sdk)
}

async fn ids(client: &aws_sdk_drs::Client) -> Result<Vec<String>, String> {
    client
        .describe_recovery_instances()
        .send()
        .await
        .map(|out| {
            out.items()
                .iter()
                .filter_map(|i| i.recovery_instance_id().map(str::to_owned))
                .collect()
        })
        .map_err(|e| e.into_service_error().code().unwrap_or("?").to_owned())
}

#[tokio::test]
async fn each_call_reaches_the_account_and_region_it_is_signed_for() {
    let sim = start(config()).await;
    assert_eq!(sim.targets().len(), 3);
    assert_eq!(ids(&drs(&sim).await).await.unwrap(), [HOME_ID]);
    let out = sts(&sim)
        .await
        .assume_role()
        .role_arn(ROLE)
        .role_session_name("run-7f9c2b1e")
        .external_id("run-book-7")
        .send()
        .await
        .expect("the role is held and the external id matches");
    let keys = out.credentials().expect("keys");
    assert!(keys.access_key_id().starts_with("ASIA"));
    assert_eq!(
        out.assumed_role_user().unwrap().arn(),
        "arn:aws:sts::222233334444:assumed-role/drs-failback-target/run-7f9c2b1e"
    );
    assert_eq!(
        ids(&drs_as(&sim, keys, "us-east-1").await).await.unwrap(),
        [EAST_ID]
    );
    assert_eq!(
        ids(&drs_as(&sim, keys, "us-west-2").await).await.unwrap(),
        [WEST_ID]
    );
    // A region the target does not use answers as an opt-in region not enabled does.
    assert_eq!(
        ids(&drs_as(&sim, keys, "eu-west-1").await)
            .await
            .unwrap_err(),
        "UnrecognizedClientException"
    );
    // Each target keeps its own calls.
    let west = sim.at(TARGET, "us-west-2").expect("held");
    assert_eq!(west.calls().len(), 1);
    assert_eq!(sim.calls().len(), 1);
}

#[tokio::test]
async fn a_role_not_held_or_a_wrong_external_id_is_refused() {
    let sim = start(config()).await;
    let client = sts(&sim).await;
    for (role, external_id) in [
        (
            "arn:aws:iam::999988887777:role/drs-failback-target",
            Some("run-book-7"),
        ),
        ("arn:aws:iam::222233334444:role/other", Some("run-book-7")),
        (ROLE, Some("wrong")),
        (ROLE, None),
    ] {
        let err = client
            .assume_role()
            .role_arn(role)
            .role_session_name("s1")
            .set_external_id(external_id.map(str::to_owned))
            .send()
            .await
            .expect_err("refused")
            .into_service_error();
        assert_eq!(err.code(), Some("AccessDenied"), "{role} {external_id:?}");
        assert!(err.message().unwrap().contains(role), "{err:?}");
    }
}

#[tokio::test(start_paused = true)]
async fn session_keys_expire() {
    let sim = start(config()).await;
    let out = sts(&sim)
        .await
        .assume_role()
        .role_arn(ROLE)
        .role_session_name("s1")
        .external_id("run-book-7")
        .duration_seconds(900)
        .send()
        .await
        .unwrap();
    let client = drs_as(&sim, out.credentials().unwrap(), "us-west-2").await;
    assert!(ids(&client).await.is_ok());
    tokio::time::advance(std::time::Duration::from_secs(901)).await;
    assert_eq!(ids(&client).await.unwrap_err(), "ExpiredTokenException");
}

#[tokio::test]
async fn targets_are_read_from_a_config_file() {
    let mut config = SimConfig::default();
    config
        .merge_json(
            r#"{"quotas": {"serversInActiveJobs": 4},
                "roles": [{"accountId": "222233334444", "name": "drs-failback-target"}],
                "targets": [{"accountId": "222233334444", "region": "eu-west-1",
                             "fleet": {"instances": [{"recoveryInstanceID": "i-0c0000000000000c1"}]}}]}"#,
        )
        .expect("a valid config");
    assert_eq!(config.targets.len(), 1);
    assert_eq!(
        config.targets[0].quotas.servers_in_active_jobs, 4,
        "inherited"
    );
    assert_eq!(config.targets[0].fleet.instances().len(), 1);
    let twice = SimConfig::default()
        .merge_json(r#"{"targets": [{"accountId": "111122223333", "region": "us-east-1"}]}"#);
    assert!(twice.unwrap_err().to_string().contains("home account"));
}
