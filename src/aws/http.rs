//! The one HTTPS client every SDK client of the function shares (DRS, EventBridge, STS and each
//! target's DRS), and the roots it trusts.
//!
//! Why not the SDK's default: it reads the system's whole root store (file by file, a few hundred
//! certificates) when the clients are built — two thirds of the function's cold start — and
//! builds a TLS connector for each client at construction and again at its first request. AWS
//! endpoints are signed by the five roots of Amazon Trust Services, compiled in here
//! (`amazon-trust-services.pem`, 7 KB); connectors are built at the first request only, once per
//! timeout setting, and shared.
//!
//! A different trust store — a private CA (a TLS-inspecting proxy), the aws-cn partition (whose
//! endpoints' CA is not verified here) — is the image's or the operator's: with `SSL_CERT_FILE`
//! or `SSL_CERT_DIR` set, exactly those are read (as rustls-native-certs reads them; a private
//! CA's bundle must hold the AWS roots too, e.g. the image's `/etc/pki/tls/certs/ca-bundle.crt`
//! with the CA added).

use std::borrow::Cow;
use std::sync::{Mutex, PoisonError};
use std::time::Duration;

use aws_smithy_http_client::proxy::ProxyConfig;
use aws_smithy_http_client::tls::{self, TlsContext, TrustStore, rustls_provider::CryptoMode};
use aws_smithy_http_client::{Connector, HttpClientError};
use aws_smithy_runtime_api::client::connector_metadata::ConnectorMetadata;
use aws_smithy_runtime_api::client::http::{
    HttpClient, HttpConnectorSettings, SharedHttpClient, SharedHttpConnector,
};
use aws_smithy_runtime_api::client::runtime_components::RuntimeComponents;

/// Amazon Root CA 1–4 and Starfield Services Root CA G2, as PEM.
pub const AWS_ROOTS: &str = include_str!("amazon-trust-services.pem");

/// Which roots the function trusts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Trust {
    /// The compiled-in roots of Amazon Trust Services.
    AwsRoots,
    /// The files `SSL_CERT_FILE` / `SSL_CERT_DIR` name, read at the first request.
    CertFiles,
}

impl Trust {
    /// From the environment: the operator's files when named, else the compiled-in roots.
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Self {
        let named = |name| lookup(name).is_some_and(|v| !v.is_empty());
        if named("SSL_CERT_FILE") || named("SSL_CERT_DIR") {
            Trust::CertFiles
        } else {
            Trust::AwsRoots
        }
    }

    fn store(self) -> TrustStore {
        match self {
            Trust::AwsRoots => TrustStore::empty().with_pem_certificate(AWS_ROOTS.as_bytes()),
            // rustls-native-certs reads exactly these when they are set.
            Trust::CertFiles => TrustStore::default().with_native_roots(true),
        }
    }
}

/// The shared client: a connector per connect / read timeout, built at its first use.
#[derive(Debug)]
struct HttpsClient {
    tls: TlsContext,
    connectors: Mutex<Vec<(TimeoutKey, SharedHttpConnector)>>,
}

type TimeoutKey = (Option<Duration>, Option<Duration>);

impl HttpClient for HttpsClient {
    fn http_connector(
        &self,
        settings: &HttpConnectorSettings,
        components: &RuntimeComponents,
    ) -> SharedHttpConnector {
        let key = (settings.connect_timeout(), settings.read_timeout());
        // A poisoned lock only means another request panicked while building: the list is whole.
        let mut connectors = self
            .connectors
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        if let Some((_, connector)) = connectors.iter().find(|(k, _)| *k == key) {
            return connector.clone();
        }
        let mut builder = Connector::builder()
            .connector_settings(settings.clone())
            // As the SDK's default client does (behaviour version 2025-08-07 on): HTTPS_PROXY,
            // NO_PROXY and friends are honoured.
            .proxy_config(ProxyConfig::from_env());
        builder.set_sleep_impl(components.sleep_impl());
        let connector = SharedHttpConnector::new(
            builder
                .tls_provider(tls::Provider::Rustls(CryptoMode::AwsLc))
                .tls_context(self.tls.clone())
                .build(),
        );
        connectors.push((key, connector.clone()));
        connector
    }

    fn connector_metadata(&self) -> Option<ConnectorMetadata> {
        Some(ConnectorMetadata::new("hyper", Some(Cow::Borrowed("1.x"))))
    }
}

/// The function's HTTPS client, trusting `trust`.
pub fn client(trust: Trust) -> Result<SharedHttpClient, HttpClientError> {
    let tls = TlsContext::builder()
        .with_trust_store(trust.store())
        .build()?;
    Ok(SharedHttpClient::new(HttpsClient {
        tls,
        connectors: Mutex::new(Vec::new()),
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_compiled_in_roots_are_the_five_of_amazon_trust_services() {
        let names: Vec<&str> = AWS_ROOTS
            .lines()
            .filter_map(|l| l.strip_prefix("# C = US, "))
            .collect();
        assert_eq!(names.len(), 5, "{names:?}");
        assert_eq!(AWS_ROOTS.matches("-----BEGIN CERTIFICATE-----").count(), 5);
        for n in 1..=4 {
            assert!(
                names
                    .iter()
                    .any(|s| s.ends_with(&format!("CN = Amazon Root CA {n}")))
            );
        }
        assert!(names.iter().any(|s| s.contains("Starfield Services Root")));
    }

    #[test]
    fn the_operators_files_replace_the_compiled_in_roots() {
        let env = |pairs: &'static [(&'static str, &'static str)]| {
            move |name: &str| {
                pairs
                    .iter()
                    .find(|(k, _)| *k == name)
                    .map(|(_, v)| (*v).to_owned())
            }
        };
        assert_eq!(Trust::from_lookup(env(&[])), Trust::AwsRoots);
        assert_eq!(
            Trust::from_lookup(env(&[("SSL_CERT_FILE", "")])),
            Trust::AwsRoots
        );
        assert_eq!(
            Trust::from_lookup(env(&[(
                "SSL_CERT_FILE",
                "/etc/pki/tls/certs/ca-bundle.crt"
            )])),
            Trust::CertFiles
        );
        assert_eq!(
            Trust::from_lookup(env(&[("SSL_CERT_DIR", "/etc/ssl/certs")])),
            Trust::CertFiles
        );
        assert!(client(Trust::AwsRoots).is_ok());
    }
}
