//! `EventPublisher` over the AWS SDK's EventBridge client.

use aws_config::SdkConfig;
use aws_sdk_eventbridge::Client;
use aws_sdk_eventbridge::types::PutEventsRequestEntry;

use crate::events::publish::{EntryStatus, EventEntry, EventPublisher, PublishError};

#[derive(Clone, Debug)]
pub struct SdkEventBridge {
    client: Client,
    bus_name: String,
}

impl SdkEventBridge {
    pub fn new(sdk: &SdkConfig, bus_name: String) -> Self {
        SdkEventBridge {
            client: Client::new(&super::without_sdk_retries(sdk)),
            bus_name,
        }
    }
}

impl EventPublisher for SdkEventBridge {
    fn bus_name(&self) -> &str {
        &self.bus_name
    }

    async fn put_events(&self, entries: &[EventEntry]) -> Result<Vec<EntryStatus>, PublishError> {
        let request_entries = entries
            .iter()
            .map(|entry| {
                PutEventsRequestEntry::builder()
                    .event_bus_name(&self.bus_name)
                    .source(&entry.source)
                    .detail_type(&entry.detail_type)
                    .detail(&entry.detail)
                    .set_resources((!entry.resources.is_empty()).then(|| entry.resources.clone()))
                    .build()
            })
            .collect();
        let output = self
            .client
            .put_events()
            .set_entries(Some(request_entries))
            .send()
            .await
            .map_err(|error| PublishError(super::errors::chain(&error)))?;
        Ok(output
            .entries()
            .iter()
            .map(|result| match result.error_code() {
                None => EntryStatus::Delivered,
                Some(code) => EntryStatus::Failed {
                    code: code.to_owned(),
                    message: result.error_message().unwrap_or_default().to_owned(),
                },
            })
            .collect())
    }
}
