//! A parsed webhook destination. Parsing checks shape only; whether the destination is allowed
//! (SSRF rules) needs DNS and is decided by the delivery crate.

use crate::Sensitive;

pub const MAX_URL_LEN: usize = 2048;

#[derive(Clone, Debug)]
pub struct WebhookUrl(Sensitive<url::Url>);

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum WebhookUrlError {
    #[error("url is not a valid absolute URL")]
    Malformed,
    #[error("url must use https (plain http is accepted only in development mode)")]
    Scheme,
    #[error("url must have a host")]
    NoHost,
    #[error("url must not contain user credentials")]
    Credentials,
    #[error("url is longer than {MAX_URL_LEN} characters")]
    TooLong,
}

impl WebhookUrl {
    pub fn parse(text: &str, allow_http: bool) -> Result<Self, WebhookUrlError> {
        if text.len() > MAX_URL_LEN {
            return Err(WebhookUrlError::TooLong);
        }
        let url = url::Url::parse(text).map_err(|_| WebhookUrlError::Malformed)?;
        match url.scheme() {
            "https" => {}
            "http" if allow_http => {}
            _ => return Err(WebhookUrlError::Scheme),
        }
        if url.host().is_none() {
            return Err(WebhookUrlError::NoHost);
        }
        if !url.username().is_empty() || url.password().is_some() {
            return Err(WebhookUrlError::Credentials);
        }
        Ok(Self(Sensitive::new(url)))
    }

    pub fn expose(&self) -> &url::Url {
        self.0.expose()
    }

    /// Scheme and the first three characters of the host, the rest elided: `https://hoo…`.
    pub fn masked(&self) -> String {
        let url = self.0.expose();
        let host = url.host_str().unwrap_or_default();
        let prefix: String = host.chars().take(3).collect();
        format!("{}://{prefix}…", url.scheme())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_https_and_masks_all_but_a_host_prefix() {
        let u = WebhookUrl::parse("https://hooks.example.com/path/secret-canary?x=1", false).unwrap();
        assert_eq!(u.masked(), "https://hoo…");
        assert!(!format!("{u:?}").contains("canary"));
    }

    #[test]
    fn rejects_bad_urls_with_specific_errors() {
        assert_eq!(WebhookUrl::parse("not a url", false).unwrap_err(), WebhookUrlError::Malformed);
        assert_eq!(WebhookUrl::parse("http://example.com/", false).unwrap_err(), WebhookUrlError::Scheme);
        assert!(WebhookUrl::parse("http://example.com/", true).is_ok());
        assert_eq!(WebhookUrl::parse("ftp://example.com/", true).unwrap_err(), WebhookUrlError::Scheme);
        assert_eq!(WebhookUrl::parse("https://user:pw@example.com/", false).unwrap_err(), WebhookUrlError::Credentials);
        let long = format!("https://example.com/{}", "a".repeat(MAX_URL_LEN));
        assert_eq!(WebhookUrl::parse(&long, false).unwrap_err(), WebhookUrlError::TooLong);
    }
}
