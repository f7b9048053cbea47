//! Metrics in CloudWatch Embedded Metric Format: one JSON line per invocation in the log stream,
//! which CloudWatch turns into metrics — no extra API call, nothing to wait for. Namespace and
//! service as Powertools names them (`POWERTOOLS_METRICS_NAMESPACE`, `POWERTOOLS_SERVICE_NAME`);
//! dimension sets `[service]` and, for a plan step, `[service, step]` too; for a call in another
//! account and region, `[service, target]` as well.
//!
//! Written here rather than with a crate: `metrique` and `metrics_cloudwatch_embedded` each pull
//! in a metrics framework (registries, macros, background flushing) for what is one JSON object
//! per invocation, built from counts the function already has (docs/testing.md, "Why home-made parts").

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde_json::{Map, Value, json};

/// EMF allows at most 100 metrics per directive and 100 values per metric.
pub const MAX_VALUES: usize = 100;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Unit {
    Count,
    Milliseconds,
    Seconds,
    Bytes,
}

impl Unit {
    fn name(self) -> &'static str {
        match self {
            Unit::Count => "Count",
            Unit::Milliseconds => "Milliseconds",
            Unit::Seconds => "Seconds",
            Unit::Bytes => "Bytes",
        }
    }
}

/// Where the function's metrics go, and under which names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MetricsTarget {
    pub namespace: String,
    pub service: String,
}

impl MetricsTarget {
    /// From `POWERTOOLS_METRICS_NAMESPACE` (default `DrsFailback`) and `POWERTOOLS_SERVICE_NAME`
    /// (default `drs-failback`), as Powertools for AWS Lambda reads them.
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Self {
        let named = |name: &str, default: &str| {
            lookup(name)
                .map(|v| v.trim().to_owned())
                .filter(|v| !v.is_empty())
                .unwrap_or_else(|| default.to_owned())
        };
        MetricsTarget {
            namespace: named("POWERTOOLS_METRICS_NAMESPACE", "DrsFailback"),
            service: named("POWERTOOLS_SERVICE_NAME", "drs-failback"),
        }
    }
}

/// One invocation's metrics: values by name, and the properties that say which run they are.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct MetricSet {
    /// The plan step, when the invocation was one: an extra dimension set `[service, step]`.
    pub step: Option<String>,
    /// The account and region it acted in (`account/region`), when not the function's own: an
    /// extra dimension set `[service, target]`.
    pub target: Option<String>,
    values: Vec<(&'static str, Unit, Vec<f64>)>,
    properties: Map<String, Value>,
}

impl MetricSet {
    pub fn new(step: Option<String>) -> Self {
        MetricSet {
            step,
            ..MetricSet::default()
        }
    }

    /// Adds a value (counts add up under one name).
    pub fn add(&mut self, name: &'static str, unit: Unit, value: f64) {
        match self.values.iter_mut().find(|(n, _, _)| *n == name) {
            Some((_, _, values)) if unit == Unit::Count => values[0] += value,
            Some((_, _, values)) if values.len() < MAX_VALUES => values.push(value),
            Some(_) => {}
            None => self.values.push((name, unit, vec![value])),
        }
    }

    pub fn count(&mut self, name: &'static str, value: usize) {
        self.add(name, Unit::Count, value as f64);
    }

    /// A property: searchable in CloudWatch Logs Insights, not a metric or a dimension.
    pub fn property(&mut self, key: &str, value: Value) {
        self.properties.insert(key.to_owned(), value);
    }

    /// The EMF record: one JSON object, to be written as one line.
    pub fn record(&self, target: &MetricsTarget, at: SystemTime) -> Value {
        let mut dimensions = vec![json!(["service"])];
        if self.step.is_some() {
            dimensions.push(json!(["service", "step"]));
        }
        if self.target.is_some() {
            dimensions.push(json!(["service", "target"]));
        }
        let metrics: Vec<Value> = self
            .values
            .iter()
            .map(|(name, unit, _)| json!({"Name": name, "Unit": unit.name()}))
            .collect();
        let timestamp = at
            .duration_since(UNIX_EPOCH)
            .unwrap_or(Duration::ZERO)
            .as_millis() as u64;
        let mut record = Map::new();
        record.insert(
            "_aws".into(),
            json!({
                "Timestamp": timestamp,
                "CloudWatchMetrics": [{
                    "Namespace": target.namespace,
                    "Dimensions": dimensions,
                    "Metrics": metrics,
                }],
            }),
        );
        record.insert("service".into(), json!(target.service));
        if let Some(step) = &self.step {
            record.insert("step".into(), json!(step));
        }
        if let Some(place) = &self.target {
            record.insert("target".into(), json!(place));
        }
        for (key, value) in &self.properties {
            record.entry(key.clone()).or_insert_with(|| value.clone());
        }
        for (name, _, values) in &self.values {
            let value = match values.as_slice() {
                [one] => json!(one),
                many => json!(many),
            };
            record.insert((*name).to_owned(), value);
        }
        Value::Object(record)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn target() -> MetricsTarget {
        MetricsTarget::from_lookup(|_| None)
    }

    #[test]
    fn a_record_names_every_metric_once_with_its_value_at_the_top() {
        let mut set = MetricSet::new(Some("databases".into()));
        set.count("InstancesLaunched", 3);
        set.count("InstancesLaunched", 2);
        set.add("LaunchLatency", Unit::Milliseconds, 120.0);
        set.add("LaunchLatency", Unit::Milliseconds, 80.5);
        set.property("correlation_id", json!("run-1"));
        let at = UNIX_EPOCH + Duration::from_millis(1_764_500_000_123);
        let record = set.record(&target(), at);
        assert_eq!(
            record,
            json!({
                "_aws": {
                    "Timestamp": 1_764_500_000_123u64,
                    "CloudWatchMetrics": [{
                        "Namespace": "DrsFailback",
                        "Dimensions": [["service"], ["service", "step"]],
                        "Metrics": [
                            {"Name": "InstancesLaunched", "Unit": "Count"},
                            {"Name": "LaunchLatency", "Unit": "Milliseconds"}
                        ]
                    }]
                },
                "service": "drs-failback",
                "step": "databases",
                "correlation_id": "run-1",
                "InstancesLaunched": 5.0,
                "LaunchLatency": [120.0, 80.5]
            })
        );
    }

    #[test]
    fn namespace_and_service_follow_powertools() {
        let target = MetricsTarget::from_lookup(|name| match name {
            "POWERTOOLS_METRICS_NAMESPACE" => Some("Ops".into()),
            "POWERTOOLS_SERVICE_NAME" => Some(" ".into()),
            _ => None,
        });
        assert_eq!(target.namespace, "Ops");
        assert_eq!(target.service, "drs-failback", "blank means unset");
        let record = MetricSet::new(None).record(&target, UNIX_EPOCH);
        assert_eq!(
            record["_aws"]["CloudWatchMetrics"][0]["Dimensions"],
            json!([["service"]])
        );
    }
}
