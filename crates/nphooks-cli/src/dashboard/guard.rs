//! Who may ask what: a request whose `Host` is not the server's own loopback address is
//! refused before anything else (DNS rebinding); a POST (a state change, or a reveal of
//! caller data) needs the server's own origin — its `Origin` when there is one, and no
//! `Sec-Fetch-Site` saying another site sent it — and the session's CSRF token; a state
//! change also needs the dashboard not to be read-only.

use hyper::HeaderMap;
use hyper::header::{HOST, ORIGIN};
use subtle::ConstantTimeEq;

/// Why a request was refused (the answer is 403 with this text).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum Refusal {
    #[error("the Host header is not this dashboard's loopback address")]
    ForeignHost,
    #[error("the Origin header is not this dashboard's own origin")]
    ForeignOrigin,
    #[error("the browser says another site sent this request (Sec-Fetch-Site)")]
    CrossSite,
    #[error("the form's CSRF token is missing or wrong: reload the page")]
    BadToken,
    #[error("the dashboard runs read-only")]
    ReadOnly,
}

/// The operating system gave no randomness for the session's CSRF token.
#[derive(Debug, thiserror::Error)]
#[error("no randomness from the operating system for the dashboard's CSRF token: {0}")]
pub struct NoRandomness(getrandom::Error);

/// The checks of one dashboard session (one server run).
#[derive(Debug, Clone)]
pub struct Guard {
    port: u16,
    csrf: String,
    read_only: bool,
}

impl Guard {
    pub fn new(port: u16, read_only: bool) -> Result<Self, NoRandomness> {
        Ok(Guard {
            port,
            csrf: token()?,
            read_only,
        })
    }

    /// The token every form carries.
    pub fn csrf(&self) -> &str {
        &self.csrf
    }

    pub fn read_only(&self) -> bool {
        self.read_only
    }

    fn own_authorities(&self) -> [String; 2] {
        [
            format!("127.0.0.1:{}", self.port),
            format!("localhost:{}", self.port),
        ]
    }

    /// Any request: its `Host` must be `127.0.0.1:PORT` or `localhost:PORT`.
    pub fn check_host(&self, headers: &HeaderMap) -> Result<(), Refusal> {
        let host = headers.get(HOST).and_then(|h| h.to_str().ok());
        match host {
            Some(host) if self.own_authorities().iter().any(|a| a == host) => Ok(()),
            _ => Err(Refusal::ForeignHost),
        }
    }

    /// A POST that reads caller data (`/api/reveal`): own origin and the session's
    /// token. Allowed read-only: it changes nothing.
    pub fn check_reveal(&self, headers: &HeaderMap, token: Option<&str>) -> Result<(), Refusal> {
        self.check_origin(headers)?;
        let expected = self.csrf.as_bytes();
        if !token.is_some_and(|t| bool::from(t.as_bytes().ct_eq(expected))) {
            return Err(Refusal::BadToken);
        }
        Ok(())
    }

    /// A state change: as [`Guard::check_reveal`], and not read-only.
    pub fn check_change(&self, headers: &HeaderMap, token: Option<&str>) -> Result<(), Refusal> {
        self.check_reveal(headers, token)?;
        if self.read_only {
            return Err(Refusal::ReadOnly);
        }
        Ok(())
    }

    /// The `Origin`, when sent, is this server's own; a `Sec-Fetch-Site` (sent by every
    /// current browser, also when it leaves out `Origin`) says the same origin or none
    /// (the user's own navigation).
    fn check_origin(&self, headers: &HeaderMap) -> Result<(), Refusal> {
        if let Some(origin) = headers.get(ORIGIN) {
            let origin = origin.to_str().ok();
            let own = self
                .own_authorities()
                .iter()
                .any(|a| origin == Some(&format!("http://{a}")));
            if !own {
                return Err(Refusal::ForeignOrigin);
            }
        }
        match headers.get("sec-fetch-site").map(|v| v.as_bytes()) {
            None | Some(b"same-origin" | b"none") => Ok(()),
            Some(_) => Err(Refusal::CrossSite),
        }
    }
}

/// 128 bits from the operating system's randomness, as hex.
fn token() -> Result<String, NoRandomness> {
    let mut bytes = [0u8; 16];
    getrandom::getrandom(&mut bytes).map_err(NoRandomness)?;
    Ok(bytes.iter().map(|b| format!("{b:02x}")).collect())
}

#[cfg(test)]
mod tests {
    use super::*;
    use hyper::header::HeaderValue;

    fn headers(pairs: &[(&str, &str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (name, value) in pairs {
            let name = hyper::header::HeaderName::from_bytes(name.as_bytes()).expect("a name");
            map.insert(name, HeaderValue::from_str(value).expect("ascii"));
        }
        map
    }

    fn guard(read_only: bool) -> Guard {
        Guard::new(8080, read_only).expect("OS randomness")
    }

    #[test]
    fn given_hosts_then_only_the_own_loopback_ones_pass() {
        let guard = guard(false);
        for host in ["127.0.0.1:8080", "localhost:8080"] {
            assert_eq!(
                guard.check_host(&headers(&[("host", host)])),
                Ok(()),
                "{host}"
            );
        }
        for host in [
            "evil.example:8080",
            "127.0.0.1:9090",
            "localhost",
            "127.0.0.1",
        ] {
            let refused = guard.check_host(&headers(&[("host", host)]));
            assert_eq!(refused, Err(Refusal::ForeignHost), "{host}");
        }
        assert_eq!(
            guard.check_host(&HeaderMap::new()),
            Err(Refusal::ForeignHost)
        );
    }

    #[test]
    fn given_a_change_then_origin_token_and_mode_are_checked() {
        let guard = guard(false);
        let token = guard.csrf().to_owned();
        let own = headers(&[("origin", "http://127.0.0.1:8080")]);
        assert_eq!(guard.check_change(&own, Some(&token)), Ok(()));
        assert_eq!(guard.check_change(&HeaderMap::new(), Some(&token)), Ok(()));
        for origin in ["http://evil.example", "null", "http://127.0.0.1:9090"] {
            let foreign = headers(&[("origin", origin)]);
            let refused = guard.check_change(&foreign, Some(&token));
            assert_eq!(refused, Err(Refusal::ForeignOrigin), "{origin}");
        }
        assert_eq!(
            guard.check_change(&own, Some("nope")),
            Err(Refusal::BadToken)
        );
        assert_eq!(guard.check_change(&own, None), Err(Refusal::BadToken));
        let read_only = self::guard(true);
        let token = read_only.csrf().to_owned();
        assert_eq!(
            read_only.check_change(&own, Some(&token)),
            Err(Refusal::ReadOnly)
        );
    }

    #[test]
    fn given_no_origin_but_fetch_metadata_then_only_same_origin_passes() {
        let guard = guard(false);
        let token = guard.csrf().to_owned();
        for site in ["same-origin", "none"] {
            let own = headers(&[("sec-fetch-site", site)]);
            assert_eq!(guard.check_change(&own, Some(&token)), Ok(()), "{site}");
        }
        for site in ["cross-site", "same-site"] {
            let foreign = headers(&[("sec-fetch-site", site)]);
            let refused = guard.check_change(&foreign, Some(&token));
            assert_eq!(refused, Err(Refusal::CrossSite), "{site}");
            let refused = guard.check_reveal(&foreign, Some(&token));
            assert_eq!(refused, Err(Refusal::CrossSite), "{site}");
        }
    }

    #[test]
    fn given_a_reveal_then_the_token_is_needed_even_read_only() {
        let read_only = guard(true);
        let token = read_only.csrf().to_owned();
        assert_eq!(
            read_only.check_reveal(&HeaderMap::new(), Some(&token)),
            Ok(())
        );
        let refused = read_only.check_reveal(&HeaderMap::new(), None);
        assert_eq!(refused, Err(Refusal::BadToken));
    }

    #[test]
    fn given_sessions_then_each_token_is_128_fresh_bits() {
        let tokens: std::collections::BTreeSet<String> =
            (0..64).map(|_| guard(false).csrf().to_owned()).collect();
        assert_eq!(tokens.len(), 64);
        assert!(
            tokens
                .iter()
                .all(|t| t.len() == 32 && t.bytes().all(|b| b.is_ascii_hexdigit()))
        );
    }
}
