//! An SDK HTTP client that hands each request to a simulator in the same process: the bytes the
//! SDK would send go through the simulator's own routing, validation, faults and state, and its
//! answer comes back as the bytes the SDK would read — without a socket. On a paused tokio clock a
//! socket lets time jump while a packet is in flight; without one, every wait the function makes
//! is measured exactly.

use std::sync::Arc;

use aws_config::SdkConfig;
use aws_smithy_runtime_api::client::http::{
    HttpConnector, HttpConnectorFuture, SharedHttpConnector, http_client_fn,
};
use aws_smithy_runtime_api::client::orchestrator::{HttpRequest, HttpResponse};
use aws_smithy_runtime_api::client::result::ConnectorError;
use aws_smithy_runtime_api::http::StatusCode;
use aws_smithy_types::body::SdkBody;
use hyper::body::Bytes;
use hyper::{Method, Request, Uri};

use crate::routing::{Incoming, answer, operation_of};
use crate::world::World;

/// Requests go nowhere near this host: the client below answers them.
const IN_PROCESS_ENDPOINT: &str = "http://drs-sim.in-process";

#[derive(Debug, Clone)]
struct InProcess(Arc<World>);

impl HttpConnector for InProcess {
    fn call(&self, request: HttpRequest) -> HttpConnectorFuture {
        let world = Arc::clone(&self.0);
        HttpConnectorFuture::new(async move {
            let incoming = incoming(&request).map_err(ConnectorError::user)?;
            let refused = operation_of(&incoming).is_some_and(|op| {
                world
                    .route(incoming.headers(), tokio::time::Instant::now())
                    .is_ok_and(|shared| shared.lock().refuse_connection(op))
            });
            if refused {
                // What hyper reports when nothing listens: an I/O error of kind ConnectionRefused.
                return Err(ConnectorError::io(Box::new(std::io::Error::new(
                    std::io::ErrorKind::ConnectionRefused,
                    "connection refused (simulated)",
                ))));
            }
            let reply = answer(world, incoming).await;
            let status = StatusCode::try_from(reply.status)
                .map_err(|e| ConnectorError::other(Box::new(e), None))?;
            let mut response = HttpResponse::new(status, SdkBody::from(reply.body));
            for (name, value) in reply.headers {
                response.headers_mut().insert(name, value);
            }
            Ok(response)
        })
    }
}

/// The request as the listener would have read it off the wire.
fn incoming(request: &HttpRequest) -> Result<Incoming, Box<dyn std::error::Error + Send + Sync>> {
    let uri: Uri = request.uri().parse()?;
    let method = Method::from_bytes(request.method().as_bytes())?;
    let body = match request.body().bytes() {
        Some(bytes) => Ok(Bytes::copy_from_slice(bytes)),
        None => Err("a streaming body cannot be handed over in-process".to_owned()),
    };
    let mut builder = Request::builder().method(method).uri(uri);
    for (name, value) in request.headers() {
        builder = builder.header(name, value);
    }
    Ok(builder.body(body)?)
}

pub(crate) async fn sdk_config(world: Arc<World>) -> SdkConfig {
    let connector = SharedHttpConnector::new(InProcess(world));
    crate::sdk_config(IN_PROCESS_ENDPOINT)
        .await
        .to_builder()
        .http_client(http_client_fn(move |_, _| connector.clone()))
        .build()
}
