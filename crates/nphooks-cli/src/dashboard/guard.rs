//! Who may ask what: a request whose `Host` is not the server's own loopback address is
//! refused before anything else (DNS rebinding); a state change needs a POST from the
//! server's own origin with the session's CSRF token, and no read-only mode.

use std::hash::{BuildHasher, Hasher};

use hyper::HeaderMap;
use hyper::header::{HOST, ORIGIN};

/// Why a request was refused (the answer is 403 with this text).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum Refusal {
    #[error("the Host header is not this dashboard's loopback address")]
    ForeignHost,
    #[error("the Origin header is not this dashboard's own origin")]
    ForeignOrigin,
    #[error("the form's CSRF token is missing or wrong: reload the page")]
    BadToken,
    #[error("the dashboard runs read-only")]
    ReadOnly,
}

/// The checks of one dashboard session (one server run).
#[derive(Debug, Clone)]
pub struct Guard {
    port: u16,
    csrf: String,
    read_only: bool,
}

impl Guard {
    pub fn new(port: u16, read_only: bool) -> Self {
        Guard {
            port,
            csrf: token(),
            read_only,
        }
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

    /// A read of caller data: own `Origin` when there is one (a page of another site
    /// cannot read the answer anyway; this refuses it outright).
    pub fn check_reveal(&self, headers: &HeaderMap) -> Result<(), Refusal> {
        self.check_origin(headers)
    }

    fn check_origin(&self, headers: &HeaderMap) -> Result<(), Refusal> {
        if let Some(origin) = headers.get(ORIGIN) {
            let own = self
                .own_authorities()
                .iter()
                .any(|a| origin.to_str().ok() == Some(&format!("http://{a}")));
            if !own {
                return Err(Refusal::ForeignOrigin);
            }
        }
        Ok(())
    }

    /// A state change: own `Origin` when there is one, the session's token, not read-only.
    pub fn check_change(&self, headers: &HeaderMap, token: Option<&str>) -> Result<(), Refusal> {
        self.check_origin(headers)?;
        if !token.is_some_and(|t| same(t.as_bytes(), self.csrf.as_bytes())) {
            return Err(Refusal::BadToken);
        }
        if self.read_only {
            return Err(Refusal::ReadOnly);
        }
        Ok(())
    }
}

/// Equal bytes, compared in time independent of where they differ.
fn same(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |d, (x, y)| d | (x ^ y)) == 0
}

/// 128 random bits as hex: two hashers keyed at random by the standard library (from
/// the OS's randomness), fed the time.
fn token() -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default()
        .as_nanos();
    let half = || {
        let mut hasher = std::collections::hash_map::RandomState::new().build_hasher();
        hasher.write_u128(nanos);
        hasher.finish()
    };
    format!("{:016x}{:016x}", half(), half())
}

#[cfg(test)]
mod tests {
    use super::*;
    use hyper::header::HeaderValue;

    fn headers(pairs: &[(hyper::header::HeaderName, &str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (name, value) in pairs {
            map.insert(name.clone(), HeaderValue::from_str(value).expect("ascii"));
        }
        map
    }

    #[test]
    fn given_hosts_then_only_the_own_loopback_ones_pass() {
        let guard = Guard::new(8080, false);
        assert!(
            guard
                .check_host(&headers(&[(HOST, "127.0.0.1:8080")]))
                .is_ok()
        );
        assert!(
            guard
                .check_host(&headers(&[(HOST, "localhost:8080")]))
                .is_ok()
        );
        for host in ["evil.example:8080", "127.0.0.1:9090", "localhost"] {
            let refused = guard.check_host(&headers(&[(HOST, host)]));
            assert_eq!(refused, Err(Refusal::ForeignHost), "{host}");
        }
        assert_eq!(
            guard.check_host(&HeaderMap::new()),
            Err(Refusal::ForeignHost)
        );
    }

    #[test]
    fn given_a_change_then_origin_token_and_mode_are_checked() {
        let guard = Guard::new(8080, false);
        let token = guard.csrf().to_owned();
        let own = headers(&[(ORIGIN, "http://127.0.0.1:8080")]);
        let foreign = headers(&[(ORIGIN, "http://evil.example")]);
        assert!(guard.check_change(&own, Some(&token)).is_ok());
        assert!(guard.check_change(&HeaderMap::new(), Some(&token)).is_ok());
        assert_eq!(
            guard.check_change(&foreign, Some(&token)),
            Err(Refusal::ForeignOrigin)
        );
        assert_eq!(
            guard.check_change(&own, Some("nope")),
            Err(Refusal::BadToken)
        );
        assert_eq!(guard.check_change(&own, None), Err(Refusal::BadToken));
        let read_only = Guard::new(8080, true);
        let token = read_only.csrf().to_owned();
        assert_eq!(
            read_only.check_change(&own, Some(&token)),
            Err(Refusal::ReadOnly)
        );
        assert_ne!(Guard::new(1, false).csrf(), Guard::new(1, false).csrf());
    }
}
