//! What the function tells its operators: structured JSON logs with the Powertools keys
//! ([`logging`]), CloudWatch Embedded Metric Format records ([`metrics`]), and what each
//! invocation measures into its one record ([`measure`]).

pub mod logging;
pub mod measure;
pub mod metrics;
