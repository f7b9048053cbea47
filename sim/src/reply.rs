//! An answer as the simulator decides it, before a transport (the loopback listener or the
//! in-process client) turns it into HTTP.

use hyper::body::Bytes;
use serde_json::Value;

/// An answer, before a transport turns it into HTTP.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Reply {
    pub status: u16,
    pub headers: Vec<(&'static str, String)>,
    pub body: Bytes,
}

impl Reply {
    /// A JSON answer with no protocol headers (admin calls, unknown routes).
    pub(crate) fn json(status: u16, body: Value) -> Reply {
        Reply {
            status,
            headers: vec![("content-type", "application/json".to_owned())],
            body: Bytes::from(body.to_string()),
        }
    }

    /// An XML answer (STS's awsQuery protocol), with its request id.
    pub(crate) fn xml(status: u16, body: String, request_id: String) -> Reply {
        Reply {
            status,
            headers: vec![
                ("content-type", "text/xml".to_owned()),
                ("x-amzn-requestid", request_id),
            ],
            body: Bytes::from(body),
        }
    }
}
