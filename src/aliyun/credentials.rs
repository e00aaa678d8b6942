//! An AccessKey pair (optionally with an STS token) that never prints its secret parts.

use std::collections::BTreeMap;
use std::fmt;

/// The official SDK's environment variable names.
pub const ENV_ACCESS_KEY_ID: &str = "ALIBABA_CLOUD_ACCESS_KEY_ID";
pub const ENV_ACCESS_KEY_SECRET: &str = "ALIBABA_CLOUD_ACCESS_KEY_SECRET";
pub const ENV_SECURITY_TOKEN: &str = "ALIBABA_CLOUD_SECURITY_TOKEN";

/// Keys of a Kubernetes Secret referenced by `spec.credentialsRef`.
const KEY_ACCESS_KEY_ID: &str = "accessKeyId";
const KEY_ACCESS_KEY_SECRET: &str = "accessKeySecret";
const KEY_SECURITY_TOKEN: &str = "securityToken";

/// Credentials for signing ECS calls. `Debug` and `Display` show only the start of the AccessKeyId.
#[derive(Clone, PartialEq, Eq)]
pub struct Credentials {
    access_key_id: String,
    access_key_secret: String,
    security_token: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CredentialsError {
    #[error(
        "{present} is set but {missing} is not set; set both (and {ENV_SECURITY_TOKEN} for STS)"
    )]
    IncompleteEnv {
        present: &'static str,
        missing: &'static str,
    },
    #[error("{var} is set but empty")]
    EmptyEnv { var: &'static str },
    #[error("{var} is not valid UTF-8")]
    EnvNotUtf8 { var: &'static str },
    #[error(
        "credentials Secret has no key {key:?} (expected {KEY_ACCESS_KEY_ID}, {KEY_ACCESS_KEY_SECRET}, optional {KEY_SECURITY_TOKEN})"
    )]
    MissingKey { key: &'static str },
    #[error("credentials Secret key {key:?} is empty")]
    EmptyKey { key: &'static str },
    #[error("credentials Secret key {key:?} is not valid UTF-8")]
    KeyNotUtf8 { key: &'static str },
    /// Real AccessKeys are a few dozen bytes and STS tokens a few KiB; a Secret may hold 1 MiB,
    /// which the operator would otherwise keep (and send) for as long as the Secret is unchanged.
    #[error("credentials Secret key {key:?} is longer than {limit} bytes; it is not an AccessKey")]
    KeyTooLong { key: &'static str, limit: usize },
}

/// Bounds of what a Secret's keys may hold (bytes): far above real AccessKeys and STS tokens.
const KEY_ID_MAX_BYTES: usize = 128;
const KEY_SECRET_MAX_BYTES: usize = 128;
const TOKEN_MAX_BYTES: usize = 16 * 1024;

impl Credentials {
    /// Surrounding whitespace is trimmed; an empty token counts as none.
    pub fn new(
        access_key_id: impl Into<String>,
        access_key_secret: impl Into<String>,
        security_token: Option<String>,
    ) -> Self {
        Self {
            access_key_id: access_key_id.into().trim().to_owned(),
            access_key_secret: access_key_secret.into().trim().to_owned(),
            security_token: security_token
                .map(|t| t.trim().to_owned())
                .filter(|t| !t.is_empty()),
        }
    }

    /// Reads the official SDK's variables. `Ok(None)` when neither id nor secret is set.
    pub fn from_env() -> Result<Option<Self>, CredentialsError> {
        Self::from_lookup(|var| std::env::var_os(var).map(|v| v.into_string()))
    }

    /// Like [`Credentials::from_env`] over any lookup (tests cannot safely change the process
    /// environment). The lookup answers `Some(Err(_))` for a value that is not UTF-8.
    pub fn from_lookup(
        lookup: impl Fn(&str) -> Option<Result<String, std::ffi::OsString>>,
    ) -> Result<Option<Self>, CredentialsError> {
        let read = |var: &'static str| -> Result<Option<String>, CredentialsError> {
            match lookup(var) {
                None => Ok(None),
                Some(Err(_)) => Err(CredentialsError::EnvNotUtf8 { var }),
                Some(Ok(value)) => Ok(Some(value.trim().to_owned())),
            }
        };
        let id = read(ENV_ACCESS_KEY_ID)?;
        let secret = read(ENV_ACCESS_KEY_SECRET)?;
        let token = read(ENV_SECURITY_TOKEN)?;
        let (id, secret) = match (id, secret) {
            (None, None) => return Ok(None),
            (Some(_), None) => {
                return Err(CredentialsError::IncompleteEnv {
                    present: ENV_ACCESS_KEY_ID,
                    missing: ENV_ACCESS_KEY_SECRET,
                });
            }
            (None, Some(_)) => {
                return Err(CredentialsError::IncompleteEnv {
                    present: ENV_ACCESS_KEY_SECRET,
                    missing: ENV_ACCESS_KEY_ID,
                });
            }
            (Some(id), Some(secret)) => (id, secret),
        };
        if id.is_empty() {
            return Err(CredentialsError::EmptyEnv {
                var: ENV_ACCESS_KEY_ID,
            });
        }
        if secret.is_empty() {
            return Err(CredentialsError::EmptyEnv {
                var: ENV_ACCESS_KEY_SECRET,
            });
        }
        Ok(Some(Self::new(id, secret, token)))
    }

    /// Reads Kubernetes Secret data. Values are trimmed: `echo` in `kubectl create secret`
    /// often leaves a trailing newline.
    pub fn from_secret_data(data: &BTreeMap<String, Vec<u8>>) -> Result<Self, CredentialsError> {
        let read = |key: &'static str| -> Result<Option<String>, CredentialsError> {
            let Some(bytes) = data.get(key) else {
                return Ok(None);
            };
            let limit = match key {
                KEY_ACCESS_KEY_ID => KEY_ID_MAX_BYTES,
                KEY_ACCESS_KEY_SECRET => KEY_SECRET_MAX_BYTES,
                _ => TOKEN_MAX_BYTES,
            };
            // Checked before trimming: the bound is on what the Secret holds.
            if bytes.len() > limit {
                return Err(CredentialsError::KeyTooLong { key, limit });
            }
            let text =
                std::str::from_utf8(bytes).map_err(|_| CredentialsError::KeyNotUtf8 { key })?;
            Ok(Some(text.trim().to_owned()))
        };
        let required = |key: &'static str| -> Result<String, CredentialsError> {
            match read(key)? {
                None => Err(CredentialsError::MissingKey { key }),
                Some(v) if v.is_empty() => Err(CredentialsError::EmptyKey { key }),
                Some(v) => Ok(v),
            }
        };
        let id = required(KEY_ACCESS_KEY_ID)?;
        let secret = required(KEY_ACCESS_KEY_SECRET)?;
        let token = read(KEY_SECURITY_TOKEN)?;
        Ok(Self::new(id, secret, token))
    }

    pub fn access_key_id(&self) -> &str {
        &self.access_key_id
    }

    pub fn access_key_secret(&self) -> &str {
        &self.access_key_secret
    }

    pub fn security_token(&self) -> Option<&str> {
        self.security_token.as_deref()
    }

    /// The first four characters of the AccessKeyId and `****`: enough to tell keys apart.
    pub fn masked_access_key_id(&self) -> String {
        let count = self.access_key_id.chars().count();
        let shown: String = if count > 4 {
            self.access_key_id.chars().take(4).collect()
        } else {
            String::new()
        };
        format!("{shown}****")
    }
}

/// The secret parts are overwritten when the last copy goes, so a cached key does not linger in
/// freed memory (a core dump, a later allocation) after its Secret changed or went away.
impl Drop for Credentials {
    fn drop(&mut self) {
        wipe(&mut self.access_key_secret);
        if let Some(token) = &mut self.security_token {
            wipe(token);
        }
    }
}

fn wipe(text: &mut String) {
    // SAFETY: zero bytes are valid UTF-8, so the String stays valid while it is overwritten.
    let bytes = unsafe { text.as_mut_vec() };
    for b in bytes.iter_mut() {
        // Volatile, so the writes are not optimised away as dead stores before the free.
        unsafe { std::ptr::write_volatile(b, 0) };
    }
    std::sync::atomic::compiler_fence(std::sync::atomic::Ordering::SeqCst);
}

impl fmt::Debug for Credentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Credentials")
            .field("access_key_id", &self.masked_access_key_id())
            .field("access_key_secret", &"<redacted>")
            .field(
                "security_token",
                &self.security_token.as_ref().map(|_| "<redacted>"),
            )
            .finish()
    }
}

impl fmt::Display for Credentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let kind = if self.security_token.is_some() {
            "STS AccessKey"
        } else {
            "AccessKey"
        };
        write!(f, "{kind} {}", self.masked_access_key_id())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<Result<String, std::ffi::OsString>> {
        let pairs: Vec<(String, String)> = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        move |var| {
            pairs
                .iter()
                .find(|(k, _)| k == var)
                .map(|(_, v)| Ok(v.clone()))
        }
    }

    fn data(pairs: &[(&str, &[u8])]) -> BTreeMap<String, Vec<u8>> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_vec()))
            .collect()
    }

    #[test]
    fn debug_and_display_never_show_secret_or_token() {
        let c = Credentials::new(
            "LTAI5tExampleId",
            "topsecretvalue",
            Some("sts-token-xyz".into()),
        );
        for shown in [format!("{c:?}"), format!("{c:#?}"), c.to_string()] {
            assert!(!shown.contains("topsecretvalue"), "{shown}");
            assert!(!shown.contains("sts-token-xyz"), "{shown}");
            assert!(!shown.contains("LTAI5tExampleId"), "{shown}");
            assert!(shown.contains("LTAI****"), "{shown}");
        }
        assert_eq!(c.to_string(), "STS AccessKey LTAI****");
    }

    #[test]
    fn short_ids_are_masked_entirely() {
        let c = Credentials::new("abcd", "s", None);
        assert_eq!(c.masked_access_key_id(), "****");
        assert_eq!(c.to_string(), "AccessKey ****");
    }

    #[test]
    fn env_with_neither_var_is_none() {
        assert_eq!(Credentials::from_lookup(env(&[])), Ok(None));
        assert_eq!(
            Credentials::from_lookup(env(&[(ENV_SECURITY_TOKEN, "t")])),
            Ok(None)
        );
    }

    #[test]
    fn env_with_only_one_half_names_the_missing_var() {
        let err = Credentials::from_lookup(env(&[(ENV_ACCESS_KEY_ID, "id")])).unwrap_err();
        assert!(
            err.to_string()
                .contains("ALIBABA_CLOUD_ACCESS_KEY_SECRET is not"),
            "{err}"
        );
        let err = Credentials::from_lookup(env(&[(ENV_ACCESS_KEY_SECRET, "s")])).unwrap_err();
        assert!(
            err.to_string()
                .contains("ALIBABA_CLOUD_ACCESS_KEY_ID is not"),
            "{err}"
        );
        assert!(!err.to_string().contains("s\""));
    }

    #[test]
    fn env_values_are_trimmed_and_token_optional() {
        let c = Credentials::from_lookup(env(&[
            (ENV_ACCESS_KEY_ID, " id\n"),
            (ENV_ACCESS_KEY_SECRET, "secret\n"),
        ]))
        .unwrap()
        .unwrap();
        assert_eq!(c.access_key_id(), "id");
        assert_eq!(c.access_key_secret(), "secret");
        assert_eq!(c.security_token(), None);

        let c = Credentials::from_lookup(env(&[
            (ENV_ACCESS_KEY_ID, "id"),
            (ENV_ACCESS_KEY_SECRET, "secret"),
            (ENV_SECURITY_TOKEN, "tok\n"),
        ]))
        .unwrap()
        .unwrap();
        assert_eq!(c.security_token(), Some("tok"));
    }

    #[test]
    fn empty_env_values_are_errors() {
        let err = Credentials::from_lookup(env(&[
            (ENV_ACCESS_KEY_ID, "  "),
            (ENV_ACCESS_KEY_SECRET, "s"),
        ]))
        .unwrap_err();
        assert_eq!(
            err,
            CredentialsError::EmptyEnv {
                var: ENV_ACCESS_KEY_ID
            }
        );
    }

    #[test]
    fn non_utf8_env_is_an_error_naming_the_var() {
        let err = Credentials::from_lookup(|var| {
            (var == ENV_ACCESS_KEY_SECRET).then(|| Err(std::ffi::OsString::from("x")))
        })
        .unwrap_err();
        assert!(err.to_string().contains(ENV_ACCESS_KEY_SECRET));
    }

    #[test]
    fn secret_data_is_trimmed() {
        let c = Credentials::from_secret_data(&data(&[
            ("accessKeyId", b"LTAIid\n"),
            ("accessKeySecret", b"  sec \r\n"),
            ("securityToken", b"tok\n"),
        ]))
        .unwrap();
        assert_eq!(c.access_key_id(), "LTAIid");
        assert_eq!(c.access_key_secret(), "sec");
        assert_eq!(c.security_token(), Some("tok"));
    }

    #[test]
    fn secret_data_errors_name_the_key() {
        let err = Credentials::from_secret_data(&data(&[("accessKeyId", b"id")])).unwrap_err();
        assert_eq!(
            err,
            CredentialsError::MissingKey {
                key: "accessKeySecret"
            }
        );
        assert!(err.to_string().contains("\"accessKeySecret\""));

        let err = Credentials::from_secret_data(&data(&[
            ("accessKeyId", b"\n"),
            ("accessKeySecret", b"s"),
        ]))
        .unwrap_err();
        assert_eq!(err, CredentialsError::EmptyKey { key: "accessKeyId" });
        assert!(err.to_string().contains("empty"));

        let err = Credentials::from_secret_data(&data(&[
            ("accessKeyId", b"id"),
            ("accessKeySecret", &[0xff, 0xfe]),
        ]))
        .unwrap_err();
        assert!(err.to_string().contains("UTF-8"), "{err}");
        assert!(err.to_string().contains("accessKeySecret"), "{err}");
    }

    #[test]
    fn a_secret_too_large_to_be_an_access_key_is_refused_not_kept() {
        let huge = vec![b's'; 1_000_000];
        let err = Credentials::from_secret_data(&data(&[
            ("accessKeyId", b"id"),
            ("accessKeySecret", &huge),
        ]))
        .unwrap_err();
        assert_eq!(
            err,
            CredentialsError::KeyTooLong {
                key: "accessKeySecret",
                limit: 128
            }
        );
        let token = vec![b't'; 16 * 1024 + 1];
        let err = Credentials::from_secret_data(&data(&[
            ("accessKeyId", b"id"),
            ("accessKeySecret", b"s"),
            ("securityToken", &token),
        ]))
        .unwrap_err();
        assert!(err.to_string().contains("longer than 16384 bytes"), "{err}");
        // A real STS token (a few KiB) is fine.
        let real = vec![b't'; 4096];
        assert!(
            Credentials::from_secret_data(&data(&[
                ("accessKeyId", b"id"),
                ("accessKeySecret", b"s"),
                ("securityToken", &real),
            ]))
            .is_ok()
        );
    }

    #[test]
    fn empty_token_in_secret_counts_as_none() {
        let c = Credentials::from_secret_data(&data(&[
            ("accessKeyId", b"id"),
            ("accessKeySecret", b"s"),
            ("securityToken", b"\n"),
        ]))
        .unwrap();
        assert_eq!(c.security_token(), None);
    }
}
