//! openidconnect's HTTP client trait over Chimatic's reqwest: redirects are never followed (a
//! provider's endpoint that redirects could point the server anywhere), bodies are bounded.

use std::future::Future;
use std::pin::Pin;
use std::time::Duration;

use openidconnect::{AsyncHttpClient, HttpRequest, HttpResponse, http};

/// A provider's answer larger than this is refused: discovery documents and JWKS are small.
const MAX_BODY: usize = 1 << 20;

#[derive(Clone)]
pub struct HttpClient(reqwest::Client);

#[derive(Debug, thiserror::Error)]
pub enum HttpError {
    #[error("request failed: {0}")]
    Request(#[from] reqwest::Error),
    #[error("the response is larger than 1 MiB")]
    TooLarge,
    #[error("the response could not be read: {0}")]
    Shape(#[from] http::Error),
}

impl HttpClient {
    /// For the calls that are not OAuth's own (revocation, provider APIs): same policies.
    pub(crate) fn reqwest(&self) -> &reqwest::Client {
        &self.0
    }

    pub fn new(timeout: Duration) -> Result<Self, reqwest::Error> {
        let client = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .timeout(timeout)
            .user_agent("chimatic")
            .build()?;
        Ok(Self(client))
    }
}

impl<'c> AsyncHttpClient<'c> for HttpClient {
    type Error = HttpError;
    type Future = Pin<Box<dyn Future<Output = Result<HttpResponse, HttpError>> + Send + 'c>>;

    fn call(&'c self, request: HttpRequest) -> Self::Future {
        Box::pin(async move {
            let (parts, body) = request.into_parts();
            let mut sent = self.0.request(parts.method, parts.uri.to_string()).headers(parts.headers).body(body);
            sent = sent.header(http::header::ACCEPT, "application/json");
            let mut response = sent.send().await?;
            let mut out = http::Response::builder().status(response.status());
            for (name, value) in response.headers() {
                out = out.header(name, value);
            }
            let mut body = Vec::new();
            while let Some(chunk) = response.chunk().await? {
                if body.len() + chunk.len() > MAX_BODY {
                    return Err(HttpError::TooLarge);
                }
                body.extend_from_slice(&chunk);
            }
            Ok(out.body(body)?)
        })
    }
}
