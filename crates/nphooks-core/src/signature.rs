//! Webhook authentication: HMAC-SHA256 over the raw body bytes, and the Bearer API key.
//! A [`VerifiedBody`] can only be obtained from [`WebhookAuth::verify`].

use hmac::{Hmac, Mac};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use crate::ParseError;
use crate::secret::Secret;
use crate::webhook::Webhook;

type HmacSha256 = Hmac<Sha256>;

/// The header NextPhone signs with.
pub const SIGNATURE_HEADER: &str = "x-nextphone-signature";
const SIGNATURE_PREFIX: &str = "sha256=";

/// Why a request was not authenticated. Safe to show to the caller: it names the
/// check that failed, never a secret.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum AuthFailure {
    #[error("missing X-NextPhone-Signature header")]
    MissingSignature,
    #[error("X-NextPhone-Signature must be `sha256=` followed by 64 hex digits")]
    MalformedSignature,
    #[error("X-NextPhone-Signature does not match the body")]
    SignatureMismatch,
    #[error("missing `Authorization: Bearer` header")]
    MissingApiKey,
    #[error("the Bearer API key is not the configured one")]
    ApiKeyMismatch,
}

/// The secrets a webhook is checked against.
#[derive(Clone)]
pub struct WebhookAuth {
    secrets: Vec<Secret>,
    /// SHA-256 of the API key: comparing digests in constant time hides the key's length too.
    api_key_digest: Option<[u8; 32]>,
}

impl std::fmt::Debug for WebhookAuth {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WebhookAuth")
            .field("secrets", &self.secrets.len())
            .field("api_key", &self.api_key_digest.is_some())
            .finish()
    }
}

/// A request body whose signature (and API key, when configured) checked out.
#[derive(Debug, Clone, Copy)]
pub struct VerifiedBody<'a> {
    bytes: &'a [u8],
}

/// A webhook whose body was verified, then parsed and validated. Only this can be enqueued.
#[derive(Debug, Clone)]
pub struct VerifiedWebhook(Webhook);

impl WebhookAuth {
    /// `secrets` must not be empty (config guarantees it).
    pub fn new(secrets: Vec<Secret>, api_key: Option<&Secret>) -> Self {
        WebhookAuth {
            secrets,
            api_key_digest: api_key.map(|key| Sha256::digest(key.expose().as_bytes()).into()),
        }
    }

    /// Checks the signature header against every configured secret (rotation), then the
    /// `Authorization` header against the API key when one is configured.
    pub fn verify<'a>(
        &self,
        signature_header: Option<&[u8]>,
        authorization_header: Option<&[u8]>,
        body: &'a [u8],
    ) -> Result<VerifiedBody<'a>, AuthFailure> {
        let signature = parse_signature(signature_header.ok_or(AuthFailure::MissingSignature)?)?;
        let signed_by_any = self.secrets.iter().any(|secret| {
            let mut mac = HmacSha256::new_from_slice(secret.expose().as_bytes())
                .expect("HMAC accepts keys of any length");
            mac.update(body);
            mac.verify_slice(&signature).is_ok()
        });
        if !signed_by_any {
            return Err(AuthFailure::SignatureMismatch);
        }
        if let Some(expected) = &self.api_key_digest {
            let token = bearer_token(authorization_header.ok_or(AuthFailure::MissingApiKey)?)
                .ok_or(AuthFailure::MissingApiKey)?;
            let actual: [u8; 32] = Sha256::digest(token).into();
            if !bool::from(actual.ct_eq(expected)) {
                return Err(AuthFailure::ApiKeyMismatch);
            }
        }
        Ok(VerifiedBody { bytes: body })
    }
}

impl<'a> VerifiedBody<'a> {
    pub fn bytes(&self) -> &'a [u8] {
        self.bytes
    }

    /// Parses and validates the verified body.
    pub fn parse(self) -> Result<VerifiedWebhook, ParseError> {
        Webhook::parse(self.bytes).map(VerifiedWebhook)
    }
}

impl VerifiedWebhook {
    pub fn webhook(&self) -> &Webhook {
        &self.0
    }
}

impl std::ops::Deref for VerifiedWebhook {
    type Target = Webhook;
    fn deref(&self) -> &Webhook {
        &self.0
    }
}

/// `sha256=<64 hex digits>` → the 32 digest bytes. The prefix is case-sensitive.
fn parse_signature(header: &[u8]) -> Result<[u8; 32], AuthFailure> {
    let hex_digits = header
        .strip_prefix(SIGNATURE_PREFIX.as_bytes())
        .ok_or(AuthFailure::MalformedSignature)?;
    let mut digest = [0u8; 32];
    hex::decode_to_slice(hex_digits, &mut digest).map_err(|_| AuthFailure::MalformedSignature)?;
    Ok(digest)
}

/// The token of `Bearer <token>` (scheme case-insensitive, per RFC 9110).
fn bearer_token(header: &[u8]) -> Option<&[u8]> {
    let (scheme, token) = header.split_at_checked(7)?;
    (scheme.eq_ignore_ascii_case(b"bearer ") && !token.is_empty()).then_some(token)
}

/// The `X-NextPhone-Signature` value NextPhone would send for `body` signed with `secret`.
pub fn sign(secret: &str, body: &[u8]) -> String {
    let mut mac =
        HmacSha256::new_from_slice(secret.as_bytes()).expect("HMAC accepts keys of any length");
    mac.update(body);
    format!(
        "{SIGNATURE_PREFIX}{}",
        hex::encode(mac.finalize().into_bytes())
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    const GITHUB_SECRET: &str = "It's a Secret to Everybody";
    const GITHUB_BODY: &[u8] = b"Hello, World!";
    const GITHUB_SIGNATURE: &str =
        "sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17";

    fn auth(secrets: &[&str], api_key: Option<&str>) -> WebhookAuth {
        WebhookAuth::new(
            secrets.iter().map(|s| Secret::new(*s)).collect(),
            api_key.map(Secret::new).as_ref(),
        )
    }

    fn check(auth: &WebhookAuth, signature: &str) -> Result<(), AuthFailure> {
        auth.verify(Some(signature.as_bytes()), None, GITHUB_BODY)
            .map(|_| ())
    }

    #[test]
    fn given_the_github_test_vector_when_verified_then_it_passes() {
        assert_eq!(sign(GITHUB_SECRET, GITHUB_BODY), GITHUB_SIGNATURE);
        assert_eq!(
            check(&auth(&[GITHUB_SECRET], None), GITHUB_SIGNATURE),
            Ok(())
        );
    }

    #[test]
    fn given_malformed_signature_headers_when_verified_then_each_fails() {
        let auth = auth(&[GITHUB_SECRET], None);
        let hex = &GITHUB_SIGNATURE["sha256=".len()..];
        let cases = [
            (
                "prefix only",
                "sha256=".to_owned(),
                AuthFailure::MalformedSignature,
            ),
            (
                "63 hex digits",
                format!("sha256={}", &hex[..63]),
                AuthFailure::MalformedSignature,
            ),
            (
                "65 hex digits",
                format!("sha256={hex}0"),
                AuthFailure::MalformedSignature,
            ),
            (
                "non-hex",
                format!("sha256={}zz", &hex[..62]),
                AuthFailure::MalformedSignature,
            ),
            (
                "uppercase prefix",
                format!("SHA256={hex}"),
                AuthFailure::MalformedSignature,
            ),
            (
                "mixed-case prefix",
                format!("Sha256={hex}"),
                AuthFailure::MalformedSignature,
            ),
            (
                "missing prefix",
                hex.to_owned(),
                AuthFailure::MalformedSignature,
            ),
            (
                "sha1 prefix",
                format!("sha1={hex}"),
                AuthFailure::MalformedSignature,
            ),
            (
                "space after =",
                format!("sha256= {hex}"),
                AuthFailure::MalformedSignature,
            ),
            (
                "one digit off",
                format!("sha256={}f", &hex[..63]),
                AuthFailure::SignatureMismatch,
            ),
        ];
        for (name, header, expected) in cases {
            assert_eq!(check(&auth, &header), Err(expected), "case: {name}");
        }
        assert_eq!(
            auth.verify(None, None, GITHUB_BODY).map(|_| ()),
            Err(AuthFailure::MissingSignature)
        );
    }

    #[test]
    fn given_two_secrets_during_rotation_when_verified_then_both_pass_and_a_third_fails() {
        let rotating = auth(&["old-secret", "new-secret"], None);
        for secret in ["old-secret", "new-secret"] {
            assert_eq!(
                check(&rotating, &sign(secret, GITHUB_BODY)),
                Ok(()),
                "{secret}"
            );
        }
        assert_eq!(
            check(&rotating, &sign("other-secret", GITHUB_BODY)),
            Err(AuthFailure::SignatureMismatch)
        );
    }

    #[test]
    fn given_an_api_key_when_verified_then_the_bearer_token_must_match() {
        let auth = auth(&[GITHUB_SECRET], Some("np_live_key"));
        let sig = Some(GITHUB_SIGNATURE.as_bytes());
        let verify = |header: Option<&str>| {
            auth.verify(sig, header.map(str::as_bytes), GITHUB_BODY)
                .map(|_| ())
        };
        assert_eq!(verify(Some("Bearer np_live_key")), Ok(()));
        assert_eq!(verify(Some("bearer np_live_key")), Ok(()));
        assert_eq!(
            verify(Some("Bearer np_live_kez")),
            Err(AuthFailure::ApiKeyMismatch)
        );
        assert_eq!(
            verify(Some("Bearer np_live_key ")),
            Err(AuthFailure::ApiKeyMismatch)
        );
        assert_eq!(
            verify(Some("Basic np_live_key")),
            Err(AuthFailure::MissingApiKey)
        );
        assert_eq!(verify(Some("Bearer ")), Err(AuthFailure::MissingApiKey));
        assert_eq!(verify(None), Err(AuthFailure::MissingApiKey));
    }

    #[test]
    fn given_a_body_signed_over_its_raw_bytes_when_reformatted_then_it_fails() {
        let auth = auth(&["s"], None);
        let pretty = b"{\n  \"event\": \"call.ended\"\n}";
        let compact = br#"{"event":"call.ended"}"#;
        let header = sign("s", pretty);
        assert!(auth.verify(Some(header.as_bytes()), None, pretty).is_ok());
        assert_eq!(
            auth.verify(Some(header.as_bytes()), None, compact)
                .map(|_| ()),
            Err(AuthFailure::SignatureMismatch)
        );
    }
}
