//! The one way tend builds an HTTP(S) client for outside peers (webhooks here; the controller's
//! ops API and probes delegate to it): HTTP/1.1, TLS with the system's roots (rustls, ring),
//! plain HTTP allowed for in-cluster endpoints, and a bounded connect time.

use std::time::Duration;

use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;

/// The connector of every client.
pub type Https = hyper_rustls::HttpsConnector<HttpConnector>;

/// A client sending bodies of type `B`, giving up on a connection after `connect_timeout`.
pub fn http_client<B>(connect_timeout: Option<Duration>) -> Result<Client<Https, B>, String>
where
    B: hyper::body::Body + Send,
    B::Data: Send,
{
    let mut http = HttpConnector::new();
    http.enforce_http(false);
    http.set_connect_timeout(connect_timeout);
    let https = hyper_rustls::HttpsConnectorBuilder::new()
        .with_native_roots()
        .map_err(|e| format!("cannot load the system's TLS roots: {e}"))?
        .https_or_http()
        .enable_http1()
        .wrap_connector(http);
    Ok(Client::builder(TokioExecutor::new()).build(https))
}
