//! Verifying a ServiceAccount token the way STS verifies an OIDC token: a compact JWS signed
//! `RS256` by one of the cluster's keys, from the configured issuer, for the audience
//! `sts.aliyuncs.com`, not expired. Everything else (another `alg`, `none`, a JWE, a broken
//! segment) is refused; the claims are read only after the signature checked out.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde_json::Value;

use super::keys::RsaKey;

/// The audience STS accepts, and the one the operator asks TokenRequest for.
pub const STS_AUDIENCE: &str = "sts.aliyuncs.com";
/// Longer tokens are refused before any decoding (a projected token is about 1 KiB).
pub(crate) const MAX_TOKEN_LEN: usize = 16 * 1024;
/// Clock skew tolerated on `exp`, `nbf` and `iat`.
pub(crate) const LEEWAY_SECONDS: i64 = 60;

/// Why a token was refused; [`super::sts`] turns each into STS's code.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum TokenError {
    Empty,
    /// Not a compact JWS with JSON header and claims of the expected types.
    Malformed(&'static str),
    /// An `alg` other than `RS256` (the name as sent, truncated).
    Algorithm(String),
    Signature,
    Issuer,
    Expired,
    /// `nbf` or `iat` in the future, beyond the leeway.
    NotYetValid,
    Audience,
}

/// The claims STS reports back in `OIDCTokenInfo` and checks against the role.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Claims {
    pub(crate) issuer: String,
    pub(crate) subject: String,
    pub(crate) audiences: Vec<String>,
    pub(crate) expires_at: i64,
}

/// The registered OIDC provider: its issuer URL and signing keys.
#[derive(Debug)]
pub(crate) struct Verifier {
    pub(crate) issuer: String,
    pub(crate) keys: Vec<RsaKey>,
}

/// A token's three segments, base64url as sent.
struct Segments<'t> {
    header: &'t str,
    claims: &'t str,
    signature: &'t str,
}

impl<'t> Segments<'t> {
    /// Not empty, not too long, exactly three parts.
    fn split(token: &'t str) -> Result<Self, TokenError> {
        if token.is_empty() {
            return Err(TokenError::Empty);
        }
        if token.len() > MAX_TOKEN_LEN {
            return Err(TokenError::Malformed("The OIDCToken is too long."));
        }
        let mut parts = token.split('.');
        let (Some(header), Some(claims), Some(signature), None) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return Err(TokenError::Malformed(
                "The number of Jwt field should be divided into 3 parts with '.' .",
            ));
        };
        Ok(Segments {
            header,
            claims,
            signature,
        })
    }
}

impl Verifier {
    /// `now` in Unix seconds.
    pub(crate) fn verify(&self, token: &str, now: i64) -> Result<Claims, TokenError> {
        let segments = Segments::split(token)?;
        let kid = read_header(segments.header)?;
        self.check_signature(token, &segments, kid.as_deref())?;
        let claims = decode_json(segments.claims)?;
        let read = read_claims(&claims)?;
        self.check_claims(&claims, &read, now)?;
        Ok(read)
    }

    /// A key with the token's `kid`, or one without a `kid` (a PEM file carries none), verifies
    /// the signature over `header.claims`.
    fn check_signature(
        &self,
        token: &str,
        segments: &Segments<'_>,
        kid: Option<&str>,
    ) -> Result<(), TokenError> {
        let signature = decode(segments.signature)?;
        let signed = &token.as_bytes()[..segments.header.len() + 1 + segments.claims.len()];
        let verified = self
            .keys
            .iter()
            .filter(|key| key.kid.is_none() || kid.is_none() || key.kid.as_deref() == kid)
            .any(|key| key.verify_rs256(signed, &signature));
        if verified {
            Ok(())
        } else {
            Err(TokenError::Signature)
        }
    }

    /// Issuer, expiry, `nbf`/`iat` and audience, in STS's order.
    fn check_claims(&self, claims: &JsonObject, read: &Claims, now: i64) -> Result<(), TokenError> {
        if read.issuer != self.issuer {
            return Err(TokenError::Issuer);
        }
        if now > read.expires_at.saturating_add(LEEWAY_SECONDS) {
            return Err(TokenError::Expired);
        }
        for name in ["nbf", "iat"] {
            if numeric_date(claims.get(name))?
                .is_some_and(|t| t > now.saturating_add(LEEWAY_SECONDS))
            {
                return Err(TokenError::NotYetValid);
            }
        }
        if !read.audiences.iter().any(|aud| aud == STS_AUDIENCE) {
            return Err(TokenError::Audience);
        }
        Ok(())
    }
}

type JsonObject = serde_json::Map<String, Value>;

/// `alg` must be `RS256` and `crit` absent; returns the `kid`, if any.
fn read_header(segment: &str) -> Result<Option<String>, TokenError> {
    let header = decode_json(segment)?;
    let alg = header.get("alg").and_then(Value::as_str).unwrap_or("");
    if alg != "RS256" {
        return Err(TokenError::Algorithm(alg.chars().take(32).collect()));
    }
    if header.get("crit").is_some() {
        return Err(TokenError::Malformed(
            "The Jwt header names critical extensions that are not supported.",
        ));
    }
    match header.get("kid") {
        None => Ok(None),
        Some(Value::String(kid)) => Ok(Some(kid.clone())),
        Some(_) => Err(TokenError::Malformed(CONTENT_INVALID)),
    }
}

/// `iss`, `sub` and `exp` present, `aud` a string or a list of strings (or absent).
fn read_claims(claims: &JsonObject) -> Result<Claims, TokenError> {
    let text = |name: &str| match claims.get(name) {
        Some(Value::String(s)) if !s.is_empty() => Ok(s.clone()),
        _ => Err(TokenError::Malformed(CONTENT_INVALID)),
    };
    let issuer = text("iss")?;
    let subject = text("sub")?;
    let expires_at = numeric_date(claims.get("exp"))?.ok_or(TokenError::Malformed(
        "The Jwt has no expiration time (exp).",
    ))?;
    let audiences = match claims.get("aud") {
        Some(Value::String(aud)) => vec![aud.clone()],
        Some(Value::Array(list)) => list
            .iter()
            .map(|v| v.as_str().map(str::to_owned))
            .collect::<Option<Vec<_>>>()
            .ok_or(TokenError::Malformed(CONTENT_INVALID))?,
        None => Vec::new(),
        Some(_) => return Err(TokenError::Malformed(CONTENT_INVALID)),
    };
    Ok(Claims {
        issuer,
        subject,
        audiences,
        expires_at,
    })
}

const CONTENT_INVALID: &str = "The Jwt content is invalid that cannot be recognized.";

fn decode(segment: &str) -> Result<Vec<u8>, TokenError> {
    URL_SAFE_NO_PAD.decode(segment).map_err(|_| {
        TokenError::Malformed("Cannot decode base64 encoded response(format invalided).")
    })
}

/// A JSON object, or the token is malformed.
fn decode_json(segment: &str) -> Result<JsonObject, TokenError> {
    match serde_json::from_slice(&decode(segment)?) {
        Ok(Value::Object(map)) => Ok(map),
        _ => Err(TokenError::Malformed(CONTENT_INVALID)),
    }
}

/// RFC 7519 NumericDate: seconds, possibly fractional; absent is `None`.
fn numeric_date(value: Option<&Value>) -> Result<Option<i64>, TokenError> {
    match value {
        None => Ok(None),
        Some(Value::Number(n)) => n
            .as_i64()
            .or_else(|| {
                n.as_f64()
                    .filter(|f| f.is_finite() && f.abs() < 1e15)
                    .map(|f| f.floor() as i64)
            })
            .map(Some)
            .ok_or(TokenError::Malformed(CONTENT_INVALID)),
        Some(_) => Err(TokenError::Malformed(CONTENT_INVALID)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn b64(json: &str) -> String {
        URL_SAFE_NO_PAD.encode(json)
    }

    /// A verifier without keys: enough for everything that is refused before the signature.
    fn verifier() -> Verifier {
        Verifier {
            issuer: "https://kubernetes.default.svc".to_owned(),
            keys: Vec::new(),
        }
    }

    fn token(header: &str) -> String {
        format!("{}.{}.{}", b64(header), b64(r#"{"sub":"x"}"#), b64("sig"))
    }

    #[test]
    fn structure_is_checked_first() {
        let v = verifier();
        assert_eq!(v.verify("", 0), Err(TokenError::Empty));
        for bad in ["a", "a.b", "a.b.c.d", "a.b.c.d.e"] {
            assert!(
                matches!(v.verify(bad, 0), Err(TokenError::Malformed(m)) if m.contains("3 parts")),
                "{bad}"
            );
        }
        let long = "a".repeat(MAX_TOKEN_LEN + 1);
        assert!(matches!(v.verify(&long, 0), Err(TokenError::Malformed(_))));
        for bad in [
            "!!.e30.e30",
            "e30=.e30.e30",
            &format!("{}.e30.e30", b64("[1]")),
        ] {
            assert!(
                matches!(v.verify(bad, 0), Err(TokenError::Malformed(_))),
                "{bad}"
            );
        }
    }

    #[test]
    fn only_rs256_is_accepted() {
        let v = verifier();
        for (header, alg) in [
            (r#"{"alg":"none"}"#, "none"),
            (r#"{"alg":"HS256","typ":"JWT"}"#, "HS256"),
            (r#"{"alg":"RS512"}"#, "RS512"),
            (r#"{"alg":"rs256"}"#, "rs256"),
            (r#"{"typ":"JWT"}"#, ""),
            (r#"{"alg":7}"#, ""),
        ] {
            assert_eq!(
                v.verify(&token(header), 0),
                Err(TokenError::Algorithm(alg.to_owned())),
                "{header}"
            );
        }
        // `none` with an empty signature segment is no way around it either.
        let unsigned = format!("{}.{}.", b64(r#"{"alg":"none"}"#), b64(r#"{"sub":"x"}"#));
        assert_eq!(
            v.verify(&unsigned, 0),
            Err(TokenError::Algorithm("none".to_owned()))
        );
    }

    #[test]
    fn a_well_formed_rs256_token_without_a_matching_key_is_a_bad_signature() {
        let v = verifier();
        assert_eq!(
            v.verify(&token(r#"{"alg":"RS256","kid":"k"}"#), 0),
            Err(TokenError::Signature)
        );
        assert!(matches!(
            v.verify(&token(r#"{"alg":"RS256","kid":5}"#), 0),
            Err(TokenError::Malformed(_))
        ));
        assert!(matches!(
            v.verify(&token(r#"{"alg":"RS256","crit":["exp"]}"#), 0),
            Err(TokenError::Malformed(_))
        ));
    }

    #[test]
    fn numeric_dates_accept_integers_and_fractions_only() {
        assert_eq!(numeric_date(None), Ok(None));
        assert_eq!(numeric_date(Some(&Value::from(17))), Ok(Some(17)));
        assert_eq!(numeric_date(Some(&Value::from(17.9))), Ok(Some(17)));
        assert!(numeric_date(Some(&Value::from("17"))).is_err());
        assert!(numeric_date(Some(&Value::from(1e300))).is_err());
    }
}
