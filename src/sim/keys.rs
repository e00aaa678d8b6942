//! The cluster's ServiceAccount signing keys, as the simulated STS trusts them: RSA public keys
//! from a PEM file (`PUBLIC KEY`, what `openssl rsa -pubout` writes for kube-apiserver's
//! `--service-account-key-file`, or `RSA PUBLIC KEY`) or from a JWKS document
//! (`{"keys":[{"kty":"RSA","kid","n","e"}]}`, what an issuer's `jwks_uri` serves).
//!
//! The DER reader is deliberately tiny: definite lengths only, every length checked against what
//! is left, so a hostile file is an error and never a panic.

use std::fmt;
use std::path::Path;

use base64::Engine;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use ring::signature::{RSA_PKCS1_2048_8192_SHA256, RsaPublicKeyComponents};
use serde::Deserialize;

/// A key file bigger than this is refused: a JWKS with a few keys is a few KiB.
pub(crate) const MAX_KEY_FILE: u64 = 1 << 20;
/// At most this many keys are kept from one file.
const MAX_KEYS: usize = 64;
/// `rsaEncryption`, 1.2.840.113549.1.1.1.
const RSA_ENCRYPTION_OID: [u8; 9] = [0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x01];

/// One RSA public key; `n` and `e` big-endian without leading zeros, as ring wants them.
#[derive(Clone, PartialEq, Eq)]
pub(crate) struct RsaKey {
    pub(crate) kid: Option<String>,
    n: Vec<u8>,
    e: Vec<u8>,
}

impl fmt::Debug for RsaKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RsaKey")
            .field("kid", &self.kid)
            .field("bits", &self.bits())
            .finish()
    }
}

impl RsaKey {
    /// Checks the sizes ring accepts for RS256 (2048 to 8192 bits, a small odd exponent), so that
    /// an unusable key is refused when the file is loaded rather than on every token.
    fn new(kid: Option<String>, n: &[u8], e: &[u8]) -> Result<Self, String> {
        let n = strip_leading_zeros(n);
        let e = strip_leading_zeros(e);
        let key = RsaKey {
            kid,
            n: n.to_vec(),
            e: e.to_vec(),
        };
        if !(2048..=8192).contains(&key.bits()) {
            return Err(format!(
                "an RSA modulus of {} bits (RS256 needs 2048 to 8192)",
                key.bits()
            ));
        }
        let odd = e.last().is_some_and(|b| b & 1 == 1);
        if e.is_empty() || e.len() > 4 || !odd || (e.len() == 1 && e[0] < 3) {
            return Err("an RSA public exponent that is not a small odd number".to_owned());
        }
        Ok(key)
    }

    fn bits(&self) -> usize {
        match self.n.first() {
            Some(top) => self.n.len() * 8 - top.leading_zeros() as usize,
            None => 0,
        }
    }

    /// RSASSA-PKCS1-v1_5 with SHA-256, the JWS `RS256`.
    pub(crate) fn verify_rs256(&self, message: &[u8], signature: &[u8]) -> bool {
        RsaPublicKeyComponents {
            n: &self.n,
            e: &self.e,
        }
        .verify(&RSA_PKCS1_2048_8192_SHA256, message, signature)
        .is_ok()
    }
}

/// Reads a PEM or JWKS key file; the error names the file.
pub(crate) fn load(path: &Path) -> Result<Vec<RsaKey>, String> {
    let fail = |message: String| format!("public key file {}: {message}", path.display());
    let size = std::fs::metadata(path)
        .map_err(|e| fail(e.to_string()))?
        .len();
    if size > MAX_KEY_FILE {
        return Err(fail(format!("larger than {MAX_KEY_FILE} bytes")));
    }
    let text = std::fs::read_to_string(path).map_err(|e| fail(e.to_string()))?;
    parse(&text).map_err(fail)
}

/// A JSON object is read as a JWKS, anything else as PEM.
pub(crate) fn parse(text: &str) -> Result<Vec<RsaKey>, String> {
    let keys = if text.trim_start().starts_with('{') {
        parse_jwks(text)?
    } else {
        parse_pem(text)?
    };
    if keys.is_empty() {
        return Err("no RSA public key found".to_owned());
    }
    if keys.len() > MAX_KEYS {
        return Err(format!("more than {MAX_KEYS} keys"));
    }
    Ok(keys)
}

#[derive(Deserialize)]
struct Jwks {
    keys: Vec<Jwk>,
}

/// Only the members used here; others (`use`, `alg`, `x5c` …) are ignored as RFC 7517 asks.
#[derive(Deserialize)]
struct Jwk {
    kty: String,
    #[serde(default)]
    kid: Option<String>,
    #[serde(default)]
    n: Option<String>,
    #[serde(default)]
    e: Option<String>,
}

/// Keys of other types (`EC`, `oct`) are skipped: the simulated STS verifies RS256 only.
fn parse_jwks(text: &str) -> Result<Vec<RsaKey>, String> {
    let jwks: Jwks = serde_json::from_str(text).map_err(|e| format!("invalid JWKS: {e}"))?;
    let mut keys = Vec::new();
    for (i, jwk) in jwks.keys.iter().enumerate() {
        if jwk.kty != "RSA" {
            continue;
        }
        let member = |value: &Option<String>, name: &str| {
            let text = value
                .as_deref()
                .ok_or_else(|| format!("JWKS key #{i}: no \"{name}\""))?;
            URL_SAFE_NO_PAD
                .decode(text)
                .map_err(|_| format!("JWKS key #{i}: \"{name}\" is not unpadded base64url"))
        };
        let n = member(&jwk.n, "n")?;
        let e = member(&jwk.e, "e")?;
        keys.push(RsaKey::new(jwk.kid.clone(), &n, &e).map_err(|m| format!("JWKS key #{i}: {m}"))?);
    }
    Ok(keys)
}

/// Every `PUBLIC KEY` and `RSA PUBLIC KEY` block; other blocks (certificates, comments) are
/// skipped, but a private key is refused so that it is not mistaken for the public one.
fn parse_pem(text: &str) -> Result<Vec<RsaKey>, String> {
    let mut keys = Vec::new();
    let mut lines = text.lines().map(str::trim);
    while let Some(line) = lines.next() {
        let Some(label) = line
            .strip_prefix("-----BEGIN ")
            .and_then(|rest| rest.strip_suffix("-----"))
        else {
            continue;
        };
        let end = format!("-----END {label}-----");
        let mut body = String::new();
        let mut closed = false;
        for line in lines.by_ref() {
            if line == end {
                closed = true;
                break;
            }
            body.push_str(line);
        }
        if !closed {
            return Err(format!("PEM block {label:?} has no END line"));
        }
        let der = || {
            STANDARD
                .decode(body.as_bytes())
                .map_err(|_| format!("PEM block {label:?} is not base64"))
        };
        match label {
            "PUBLIC KEY" => keys.push(from_spki(&der()?)?),
            "RSA PUBLIC KEY" => keys.push(from_rsa_public_key(&der()?)?),
            _ if label.contains("PRIVATE KEY") => {
                return Err(format!(
                    "a {label:?} block: give the public key (openssl rsa -pubout)"
                ));
            }
            _ => {}
        }
    }
    Ok(keys)
}

/// `SubjectPublicKeyInfo ::= SEQUENCE { SEQUENCE { OID rsaEncryption, NULL? }, BIT STRING }`.
fn from_spki(der: &[u8]) -> Result<RsaKey, String> {
    let mut outer = Der::new(der);
    let mut spki = Der::new(outer.take(TAG_SEQUENCE)?);
    outer.finish()?;
    let mut algorithm = Der::new(spki.take(TAG_SEQUENCE)?);
    let bits = spki.take(TAG_BIT_STRING)?;
    spki.finish()?;
    if algorithm.take(TAG_OID)? != RSA_ENCRYPTION_OID {
        return Err("the public key is not an RSA key".to_owned());
    }
    // The parameters are NULL for rsaEncryption; tolerate them being left out.
    if !algorithm.is_empty() {
        algorithm.take(TAG_NULL)?;
        algorithm.finish()?;
    }
    match bits.split_first() {
        Some((0, key)) => from_rsa_public_key(key),
        _ => Err("the key's BIT STRING has unused bits".to_owned()),
    }
}

/// `RSAPublicKey ::= SEQUENCE { modulus INTEGER, publicExponent INTEGER }` (PKCS #1).
fn from_rsa_public_key(der: &[u8]) -> Result<RsaKey, String> {
    let mut outer = Der::new(der);
    let mut key = Der::new(outer.take(TAG_SEQUENCE)?);
    outer.finish()?;
    let n = key.take_unsigned()?;
    let e = key.take_unsigned()?;
    key.finish()?;
    RsaKey::new(None, n, e)
}

const TAG_INTEGER: u8 = 0x02;
const TAG_BIT_STRING: u8 = 0x03;
const TAG_NULL: u8 = 0x05;
const TAG_OID: u8 = 0x06;
const TAG_SEQUENCE: u8 = 0x30;

/// A cursor over DER: each `take` reads one element of the expected tag and returns its contents.
struct Der<'a> {
    rest: &'a [u8],
}

impl<'a> Der<'a> {
    fn new(bytes: &'a [u8]) -> Self {
        Der { rest: bytes }
    }

    fn is_empty(&self) -> bool {
        self.rest.is_empty()
    }

    fn finish(&self) -> Result<(), String> {
        if self.rest.is_empty() {
            Ok(())
        } else {
            Err("trailing bytes after a DER element".to_owned())
        }
    }

    fn take(&mut self, tag: u8) -> Result<&'a [u8], String> {
        let truncated = || "truncated DER".to_owned();
        let (&found, rest) = self.rest.split_first().ok_or_else(truncated)?;
        if found != tag {
            return Err(format!(
                "DER tag 0x{found:02x} where 0x{tag:02x} was expected"
            ));
        }
        let (&first, rest) = rest.split_first().ok_or_else(truncated)?;
        let (len, rest) = if first < 0x80 {
            (usize::from(first), rest)
        } else {
            // Long form: 1 to 4 length bytes, minimal (DER), never the indefinite 0x80.
            let count = usize::from(first & 0x7f);
            if count == 0 || count > 4 || rest.len() < count {
                return Err("a DER length that is indefinite, huge or truncated".to_owned());
            }
            let (bytes, rest) = rest.split_at(count);
            let len = bytes
                .iter()
                .fold(0usize, |acc, &b| (acc << 8) | usize::from(b));
            if bytes[0] == 0 || len < 0x80 {
                return Err("a DER length that is not minimally encoded".to_owned());
            }
            (len, rest)
        };
        if rest.len() < len {
            return Err(truncated());
        }
        let (contents, rest) = rest.split_at(len);
        self.rest = rest;
        Ok(contents)
    }

    /// A non-negative INTEGER's magnitude (the sign byte, if any, still in front).
    fn take_unsigned(&mut self) -> Result<&'a [u8], String> {
        let value = self.take(TAG_INTEGER)?;
        match value.first() {
            None => Err("an empty DER INTEGER".to_owned()),
            Some(b) if b & 0x80 != 0 => Err("a negative DER INTEGER".to_owned()),
            Some(_) => Ok(value),
        }
    }
}

fn strip_leading_zeros(bytes: &[u8]) -> &[u8] {
    let start = bytes.iter().position(|&b| b != 0).unwrap_or(bytes.len());
    &bytes[start..]
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A throwaway 2048-bit key (public half only), written by `openssl rsa -pubout`.
    const SPKI_PEM: &str = "-----BEGIN PUBLIC KEY-----
MIIBIjANBgkqhkiG9w0BAQEFAAOCAQ8AMIIBCgKCAQEAuDjgdQOLlELDhaeJEPCP
c96DkD/KgqMgOICouIpIXcXZsQoEsESRVDIkLobApi5CXB9BZpBTvxq+THkeyRoT
/DO0HER9p8syOCkjnKteOmwkatEdAJdz43qyoTFLJXb6lzNAsInKeFzt8En+ZXV2
4B5M4DE2TlO2fgEmNiC40I04a4q013FgLZv8sUnmHo8p924Pq2n/xg5o8/I879CO
/JmOEEoigqsMAMJg17u9beTyOlFnXSM+pLVr7olCdskbHphL7mKrVORQNQWtYLRP
7UHSaAlC+I3KKlhaZZFswu/bby7zgdvhW7uFwAK2akM+ripKKpT3NP9QWqtrTNPZ
ZwIDAQAB
-----END PUBLIC KEY-----
";
    /// The same key as `openssl rsa -RSAPublicKey_out` writes it.
    const PKCS1_PEM: &str = "-----BEGIN RSA PUBLIC KEY-----
MIIBCgKCAQEAuDjgdQOLlELDhaeJEPCPc96DkD/KgqMgOICouIpIXcXZsQoEsESR
VDIkLobApi5CXB9BZpBTvxq+THkeyRoT/DO0HER9p8syOCkjnKteOmwkatEdAJdz
43qyoTFLJXb6lzNAsInKeFzt8En+ZXV24B5M4DE2TlO2fgEmNiC40I04a4q013Fg
LZv8sUnmHo8p924Pq2n/xg5o8/I879CO/JmOEEoigqsMAMJg17u9beTyOlFnXSM+
pLVr7olCdskbHphL7mKrVORQNQWtYLRP7UHSaAlC+I3KKlhaZZFswu/bby7zgdvh
W7uFwAK2akM+ripKKpT3NP9QWqtrTNPZZwIDAQAB
-----END RSA PUBLIC KEY-----
";
    /// Its modulus as a JWK `n`.
    const N_B64URL: &str = "uDjgdQOLlELDhaeJEPCPc96DkD_KgqMgOICouIpIXcXZsQoEsESRVDIkLobApi5CXB9BZpBTvxq-THkeyRoT_DO0HER9p8syOCkjnKteOmwkatEdAJdz43qyoTFLJXb6lzNAsInKeFzt8En-ZXV24B5M4DE2TlO2fgEmNiC40I04a4q013FgLZv8sUnmHo8p924Pq2n_xg5o8_I879CO_JmOEEoigqsMAMJg17u9beTyOlFnXSM-pLVr7olCdskbHphL7mKrVORQNQWtYLRP7UHSaAlC-I3KKlhaZZFswu_bby7zgdvhW7uFwAK2akM-ripKKpT3NP9QWqtrTNPZZw";

    fn spki_der() -> Vec<u8> {
        let body: String = SPKI_PEM
            .lines()
            .filter(|l| !l.starts_with("-----"))
            .collect();
        STANDARD.decode(body).unwrap()
    }

    #[test]
    fn pem_pkcs1_and_jwks_forms_of_one_key_agree() {
        let spki = parse(SPKI_PEM).unwrap();
        let pkcs1 = parse(PKCS1_PEM).unwrap();
        let jwks = parse(&format!(
            r#"{{"keys":[{{"kty":"EC","crv":"P-256"}},{{"kty":"RSA","kid":"k1","use":"sig","n":"{N_B64URL}","e":"AQAB"}}]}}"#
        ))
        .unwrap();
        assert_eq!(spki.len(), 1);
        assert_eq!(spki[0].bits(), 2048);
        assert_eq!(spki[0].e, [1, 0, 1]);
        assert_eq!(spki, pkcs1);
        assert_eq!(jwks.len(), 1, "the EC key is skipped");
        assert_eq!(jwks[0].kid.as_deref(), Some("k1"));
        assert_eq!(jwks[0].n, spki[0].n);
        assert_eq!(jwks[0].n.len(), 256, "the DER sign byte is gone");
    }

    #[test]
    fn several_pem_blocks_give_several_keys_and_other_blocks_are_skipped() {
        let text = format!(
            "# comment\n-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n{SPKI_PEM}\n{PKCS1_PEM}"
        );
        assert_eq!(parse(&text).unwrap().len(), 2);
    }

    #[test]
    fn private_keys_unclosed_blocks_and_empty_files_are_refused() {
        for (text, needle) in [
            (
                "-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n",
                "public key",
            ),
            ("-----BEGIN PUBLIC KEY-----\nAAAA\n", "no END"),
            (
                "-----BEGIN PUBLIC KEY-----\n!!!!\n-----END PUBLIC KEY-----\n",
                "base64",
            ),
            ("", "no RSA public key"),
            (r#"{"keys":[]}"#, "no RSA public key"),
            (r#"{"keys":[{"kty":"RSA","e":"AQAB"}]}"#, "no \"n\""),
            (
                r#"{"keys":[{"kty":"RSA","n":"a+b/","e":"AQAB"}]}"#,
                "base64url",
            ),
            (r#"{"keys": 3}"#, "invalid JWKS"),
        ] {
            let err = parse(text).unwrap_err();
            assert!(err.contains(needle), "{text:?}: {err}");
        }
    }

    #[test]
    fn every_truncation_of_the_der_is_an_error_not_a_panic() {
        let der = spki_der();
        for len in 0..der.len() {
            assert!(from_spki(&der[..len]).is_err(), "prefix of {len} bytes");
        }
        let mut trailing = der.clone();
        trailing.push(0);
        assert!(from_spki(&trailing).unwrap_err().contains("trailing"));
        assert!(from_spki(&der).is_ok());
    }

    #[test]
    fn every_single_byte_corruption_is_handled() {
        let der = spki_der();
        for i in 0..der.len() {
            for flip in [0x01u8, 0x80, 0xff] {
                let mut bad = der.clone();
                bad[i] ^= flip;
                // Either an error or (inside the modulus) a different but well-formed key.
                let _ = from_spki(&bad);
            }
        }
    }

    #[test]
    fn der_lengths_must_be_definite_minimal_and_in_bounds() {
        let mut indefinite = Der::new(&[0x30, 0x80, 0x00, 0x00]);
        assert!(indefinite.take(TAG_SEQUENCE).is_err());
        let mut not_minimal = Der::new(&[0x30, 0x81, 0x05, 1, 2, 3, 4, 5]);
        assert!(
            not_minimal
                .take(TAG_SEQUENCE)
                .unwrap_err()
                .contains("minimal")
        );
        let mut huge = Der::new(&[0x30, 0x85, 1, 0, 0, 0, 0]);
        assert!(huge.take(TAG_SEQUENCE).is_err());
        let mut beyond = Der::new(&[0x30, 0x82, 0x01, 0x00, 0x00]);
        assert!(beyond.take(TAG_SEQUENCE).unwrap_err().contains("truncated"));
        let mut wrong_tag = Der::new(&[0x31, 0x00]);
        assert!(wrong_tag.take(TAG_SEQUENCE).unwrap_err().contains("0x31"));
        let mut negative = Der::new(&[0x02, 0x01, 0x80]);
        assert!(negative.take_unsigned().unwrap_err().contains("negative"));
        let mut empty = Der::new(&[0x02, 0x00]);
        assert!(empty.take_unsigned().is_err());
    }

    #[test]
    fn non_rsa_and_weak_keys_are_refused() {
        // An EC P-256 SubjectPublicKeyInfo header with a dummy point.
        let mut ec = vec![
            0x30, 0x19, 0x30, 0x13, 0x06, 0x07, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x02, 0x01, 0x06,
            0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07, 0x03, 0x02, 0x00,
        ];
        ec.push(0x04);
        assert!(from_spki(&ec).unwrap_err().contains("not an RSA key"));

        let n_1024 = [0xc1u8; 128];
        assert!(
            RsaKey::new(None, &n_1024, &[1, 0, 1])
                .unwrap_err()
                .contains("1024 bits")
        );
        let n_2048 = [0xc1u8; 256];
        assert!(RsaKey::new(None, &n_2048, &[1, 0, 1]).is_ok());
        for e in [&[][..], &[1], &[2], &[1, 0, 0], &[1, 0, 0, 0, 1]] {
            assert!(RsaKey::new(None, &n_2048, e).is_err(), "e = {e:?}");
        }
    }

    #[test]
    fn debug_shows_size_not_material() {
        let key = &parse(SPKI_PEM).unwrap()[0];
        assert_eq!(format!("{key:?}"), "RsaKey { kid: None, bits: 2048 }");
    }
}
