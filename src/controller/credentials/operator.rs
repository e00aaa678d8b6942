//! The operator's own credentials (an AccessKey, RRSA or the instance's RAM role) for sessions
//! that name neither a Secret nor a ServiceAccount, and `--operator-credentials-namespaces`, the
//! namespaces they are offered to. Offered, never assumed: a session author in any other namespace
//! would otherwise open every instance the operator's key reaches.

use std::collections::BTreeSet;
use std::sync::Arc;

use super::found::{Failure, Found, Renewer};
use crate::aliyun::OperatorCredentials;

/// The operator's own credentials, if it has any, and where they are offered.
#[derive(Clone, Copy)]
pub struct Operator<'a> {
    pub own: Option<&'a Arc<OperatorCredentials>>,
    pub scope: &'a OperatorCredentialsScope,
}

impl Operator<'_> {
    /// Credentials for a session in `namespace` that references none of its own.
    pub async fn credentials(&self, namespace: &str) -> Found {
        if !self.scope.offers(namespace) {
            return Found::Missing(format!(
                "spec.credentialsRef is not set and the operator does not offer its own credentials to \
                 namespace {namespace} (--operator-credentials-namespaces, \
                 ECS_VNC_OPERATOR_CREDENTIALS_NAMESPACES); reference a Secret in this namespace"
            ));
        }
        let Some(source) = self.own else {
            return Found::Missing(
                "spec.credentialsRef is not set and the operator has no credentials of its own \
                 (ALIBABA_CLOUD_ACCESS_KEY_ID and ALIBABA_CLOUD_ACCESS_KEY_SECRET, RRSA, or \
                 ALIBABA_CLOUD_ECS_METADATA)"
                    .to_owned(),
            );
        };
        match source.credentials().await {
            Ok(c) if source.renew_at().is_some() => {
                Found::Renewed(c, Renewer::Operator(source.clone()))
            }
            Ok(c) => Found::Credentials(c),
            Err(e) => Found::Failed(Failure {
                code: e.code().to_owned(),
                message: format!(
                    "the operator's own credentials ({}): {}",
                    source.describe(),
                    e.message()
                ),
                retryable: e.is_retryable(),
            }),
        }
    }

    /// Whether `role` is the operator's own RRSA role while `namespace` is not offered the
    /// operator's credentials: that role serves only the offered namespaces, whatever its trust
    /// policy says.
    pub fn withholds_role(&self, role: &str, namespace: &str) -> bool {
        let own_role = self.own.and_then(|c| c.rrsa_role_arn());
        // RAM compares ARNs without regard to case; so does this check.
        own_role.is_some_and(|own| own.eq_ignore_ascii_case(role)) && !self.scope.offers(namespace)
    }
}

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub enum OperatorCredentialsScope {
    /// The default: sessions must bring their own credentials.
    #[default]
    Nowhere,
    /// `*`: every namespace.
    Everywhere,
    Namespaces(BTreeSet<String>),
}

impl OperatorCredentialsScope {
    /// Parses `ns1,ns2` or `*`; empty means no namespace.
    pub fn parse(list: &str) -> Result<Self, String> {
        let names: BTreeSet<&str> = list
            .split(',')
            .map(str::trim)
            .filter(|n| !n.is_empty())
            .collect();
        if names.contains("*") {
            return if names.len() == 1 {
                Ok(Self::Everywhere)
            } else {
                Err("--operator-credentials-namespaces: `*` stands alone (it means every namespace)".to_owned())
            };
        }
        if let Some(bad) = names.iter().find(|n| !is_namespace_name(n)) {
            return Err(format!(
                "--operator-credentials-namespaces: {bad:?} is not a namespace name (DNS-1123 label)"
            ));
        }
        Ok(if names.is_empty() {
            Self::Nowhere
        } else {
            Self::Namespaces(names.into_iter().map(str::to_owned).collect())
        })
    }

    pub fn offers(&self, namespace: &str) -> bool {
        match self {
            Self::Nowhere => false,
            Self::Everywhere => true,
            Self::Namespaces(names) => names.contains(namespace),
        }
    }
}

fn is_namespace_name(name: &str) -> bool {
    let b = name.as_bytes();
    !b.is_empty()
        && b.len() <= 63
        && b.iter()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || *c == b'-')
        && b[0] != b'-'
        && b[b.len() - 1] != b'-'
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn offered_only_where_listed() {
        assert!(!OperatorCredentialsScope::default().offers("default"));
        assert_eq!(
            OperatorCredentialsScope::parse(""),
            Ok(OperatorCredentialsScope::Nowhere)
        );
        let some = OperatorCredentialsScope::parse("ops, break-glass").unwrap();
        assert!(some.offers("ops") && some.offers("break-glass"));
        assert!(!some.offers("dev") && !some.offers("op") && !some.offers(""));
        let all = OperatorCredentialsScope::parse("*").unwrap();
        assert!(all.offers("anything"));
    }

    #[test]
    fn bad_lists_are_refused_with_the_flag_named() {
        for bad in ["*,ops", "Ops", "a/b", "-a", &"a".repeat(64)] {
            let err = OperatorCredentialsScope::parse(bad).unwrap_err();
            assert!(
                err.contains("--operator-credentials-namespaces"),
                "{bad}: {err}"
            );
        }
    }
}
