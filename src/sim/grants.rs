//! Temporary credentials the simulator issued (through STS or the instance metadata): each is an
//! account of the ECS side until its `Expiration`, optionally limited to some instances.
//!
//! The table is bounded: entries are forgotten [`KEEP_EXPIRED`] after they expire (until then a
//! call with them answers `InvalidSecurityToken.Expired`, as ECS does), and when it is full the
//! entry that expires first makes room. A loop of exchanges therefore costs bounded memory.

use std::collections::{BTreeSet, HashMap};
use std::fmt;
use std::sync::Arc;

use base64::Engine;
use jiff::{SignedDuration, Timestamp};

/// Most issued credentials remembered at once (live or recently expired).
pub const MAX_GRANTS: usize = 10_000;
/// How long an expired credential is still recognised (and answered `Expired`).
pub const KEEP_EXPIRED: SignedDuration = SignedDuration::from_hours(1);

/// One set of temporary credentials. The secret and token never show in `Debug`.
#[derive(Clone)]
pub(crate) struct Grant {
    pub(crate) secret: String,
    pub(crate) token: String,
    pub(crate) expires_at: Timestamp,
    /// `None`: every instance; otherwise only these.
    pub(crate) instances: Option<Arc<[String]>>,
}

impl fmt::Debug for Grant {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Grant")
            .field("secret", &"<redacted>")
            .field("token", &"<redacted>")
            .field("expires_at", &self.expires_at)
            .field("instances", &self.instances)
            .finish()
    }
}

/// The credentials as a client receives them.
pub(crate) struct Issued {
    pub(crate) access_key_id: String,
    pub(crate) grant: Grant,
}

impl Issued {
    /// Fresh random credentials valid for `lifetime` seconds from `now`, to the whole second (the
    /// `Expiration` a client reads is exactly when the sim starts refusing them).
    pub(crate) fn new(now: Timestamp, lifetime: i64, instances: Option<Arc<[String]>>) -> Self {
        let whole_second = Timestamp::from_second(now.as_second()).unwrap_or(now);
        let expires_at = whole_second
            .checked_add(SignedDuration::from_secs(lifetime))
            .unwrap_or(whole_second);
        // Real STS tokens are base64 and contain `+` and `/`: a client must percent-encode them.
        let mut raw = [0u8; 180];
        fastrand::fill(&mut raw);
        let token = format!(
            "CAIS{}",
            base64::engine::general_purpose::STANDARD.encode(raw)
        );
        Issued {
            access_key_id: format!("STS.{}", alphanumeric(28)),
            grant: Grant {
                secret: alphanumeric(44),
                token,
                expires_at,
                instances,
            },
        }
    }

    /// `yyyy-MM-ddTHH:mm:ssZ`, STS's and the metadata service's format.
    pub(crate) fn expiration(&self) -> String {
        format_time(self.grant.expires_at)
    }
}

pub(crate) fn format_time(t: Timestamp) -> String {
    t.strftime("%Y-%m-%dT%H:%M:%SZ").to_string()
}

fn alphanumeric(len: usize) -> String {
    (0..len).map(|_| fastrand::alphanumeric()).collect()
}

/// The issued credentials, by AccessKeyId, with an index by expiry for pruning.
#[derive(Default)]
pub(crate) struct Grants {
    by_key: HashMap<String, Grant>,
    by_expiry: BTreeSet<(Timestamp, String)>,
}

impl fmt::Debug for Grants {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Grants")
            .field("count", &self.by_key.len())
            .finish()
    }
}

impl Grants {
    pub(crate) fn get(&self, access_key_id: &str) -> Option<&Grant> {
        self.by_key.get(access_key_id)
    }

    #[cfg(test)]
    fn len(&self) -> usize {
        self.by_key.len()
    }

    pub(crate) fn insert(&mut self, issued: &Issued, now: Timestamp) {
        self.prune(now);
        while self.by_key.len() >= MAX_GRANTS {
            let Some((_, key)) = self.by_expiry.pop_first() else {
                break;
            };
            self.by_key.remove(&key);
        }
        let key = issued.access_key_id.clone();
        self.by_expiry
            .insert((issued.grant.expires_at, key.clone()));
        self.by_key.insert(key, issued.grant.clone());
    }

    /// Forgets credentials that expired more than [`KEEP_EXPIRED`] ago.
    pub(crate) fn prune(&mut self, now: Timestamp) {
        let Ok(horizon) = now.checked_sub(KEEP_EXPIRED) else {
            return;
        };
        while let Some((expires_at, _)) = self.by_expiry.first() {
            if *expires_at > horizon {
                break;
            }
            if let Some((_, key)) = self.by_expiry.pop_first() {
                self.by_key.remove(&key);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(second: i64) -> Timestamp {
        Timestamp::from_second(second).unwrap()
    }

    #[test]
    fn issued_credentials_look_like_sts_ones_and_expire_on_a_whole_second() {
        let now = Timestamp::from_millisecond(1_700_000_000_700).unwrap();
        let issued = Issued::new(now, 30, None);
        assert!(issued.access_key_id.starts_with("STS."));
        assert_eq!(issued.access_key_id.len(), 32);
        assert_eq!(issued.grant.secret.len(), 44);
        assert!(issued.grant.token.starts_with("CAIS"));
        assert_eq!(issued.grant.expires_at, at(1_700_000_030));
        assert_eq!(issued.expiration(), "2023-11-14T22:13:50Z");
        let other = Issued::new(now, 30, None);
        assert_ne!(issued.access_key_id, other.access_key_id);
        assert_ne!(issued.grant.token, other.grant.token);
        let shown = format!("{:?}", issued.grant);
        assert!(!shown.contains(&issued.grant.secret) && !shown.contains(&issued.grant.token));
    }

    #[test]
    fn expired_grants_are_kept_for_a_while_then_forgotten() {
        let mut grants = Grants::default();
        let issued = Issued::new(at(1000), 10, None);
        grants.insert(&issued, at(1000));
        grants.prune(at(1010 + KEEP_EXPIRED.as_secs() - 1));
        assert!(grants.get(&issued.access_key_id).is_some());
        grants.prune(at(1010 + KEEP_EXPIRED.as_secs()));
        assert!(grants.get(&issued.access_key_id).is_none());
        assert_eq!(grants.by_expiry.len(), 0);
    }

    #[test]
    fn a_full_table_drops_the_grant_that_expires_first() {
        let mut grants = Grants::default();
        let early = Issued::new(at(0), 5, None);
        grants.insert(&early, at(0));
        for _ in 1..MAX_GRANTS {
            grants.insert(&Issued::new(at(0), 3600, None), at(0));
        }
        assert_eq!(grants.len(), MAX_GRANTS);
        let late = Issued::new(at(1), 3600, None);
        grants.insert(&late, at(1));
        assert_eq!(grants.len(), MAX_GRANTS);
        assert!(grants.get(&early.access_key_id).is_none());
        assert!(grants.get(&late.access_key_id).is_some());
    }
}
