//! Who may hold a Lease, judged as client-go does: by how long this process has seen its record
//! unchanged, on its own clock, never by comparing the holder's `renewTime` with local time.

use std::time::Duration;

use k8s_openapi::api::coordination::v1::LeaseSpec;
use tokio::time::Instant;

/// The longest Lease: what `leaseDurationSeconds`, an int32, can say. Longer settings are cut to
/// it, which keeps every deadline computed from the duration far from overflow.
pub const MAX_LEASE_DURATION: Duration = Duration::from_secs(i32::MAX as u64);

/// `leaseDurationSeconds` when a Lease does not say.
const DEFAULT_LEASE_SECONDS: i32 = 15;

/// A Lease record and the instant this process first saw it.
#[derive(Clone, Debug, PartialEq)]
pub struct Observed {
    record: LeaseSpec,
    since: Instant,
}

/// How long a holder's claim lasts after its last renewal: `leaseDurationSeconds` (15 when unset),
/// at least a second.
pub fn lease_duration(spec: &LeaseSpec) -> Duration {
    let secs = spec
        .lease_duration_seconds
        .unwrap_or(DEFAULT_LEASE_SECONDS)
        .max(1);
    Duration::from_secs(secs.unsigned_abs().into())
}

/// Notes the record read at `now`; returns how long it has been unchanged, as this process saw it.
pub fn unchanged_for(
    observed: &mut Option<Observed>,
    record: &LeaseSpec,
    now: Instant,
) -> Duration {
    match observed {
        Some(seen) if seen.record == *record => now.saturating_duration_since(seen.since),
        _ => {
            *observed = Some(Observed {
                record: record.clone(),
                since: now,
            });
            Duration::ZERO
        }
    }
}

/// Whether `me` may take or keep the Lease: it is free or ours, or its record has stayed the same
/// for a lease duration (`unchanged_for`, on this process's clock).
pub fn may_hold(spec: &LeaseSpec, me: &str, unchanged_for: Duration) -> bool {
    let holder = spec.holder_identity.as_deref().unwrap_or_default();
    holder.is_empty() || holder == me || unchanged_for >= lease_duration(spec)
}

#[cfg(test)]
mod tests {
    use super::*;
    use jiff::Timestamp;
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::MicroTime;

    fn held_by(holder: &str, renewed: Timestamp) -> LeaseSpec {
        LeaseSpec {
            holder_identity: Some(holder.into()),
            renew_time: Some(MicroTime(renewed)),
            lease_duration_seconds: Some(15),
            ..Default::default()
        }
    }

    #[test]
    fn a_free_or_own_lease_may_be_held_at_once() {
        let now = Timestamp::now();
        assert!(may_hold(&LeaseSpec::default(), "a", Duration::ZERO));
        assert!(may_hold(&held_by("a", now), "a", Duration::ZERO));
        assert!(may_hold(&held_by("", now), "a", Duration::ZERO));
    }

    #[test]
    fn another_holders_lease_is_taken_once_unchanged_for_a_lease_duration() {
        // Whatever its timestamps say: only how long it looked the same to us counts.
        for renewed in [Timestamp::MIN, Timestamp::UNIX_EPOCH, Timestamp::MAX] {
            let lease = held_by("b", renewed);
            assert!(!may_hold(&lease, "a", Duration::ZERO));
            assert!(!may_hold(&lease, "a", Duration::from_millis(14_999)));
            assert!(may_hold(&lease, "a", Duration::from_secs(15)));
        }
    }

    #[test]
    fn odd_lease_durations_mean_at_least_a_second() {
        let with = |secs| LeaseSpec {
            lease_duration_seconds: secs,
            ..Default::default()
        };
        assert_eq!(lease_duration(&with(None)), Duration::from_secs(15));
        assert_eq!(lease_duration(&with(Some(0))), Duration::from_secs(1));
        assert_eq!(
            lease_duration(&with(Some(i32::MIN))),
            Duration::from_secs(1)
        );
        assert_eq!(
            lease_duration(&with(Some(i32::MAX))),
            Duration::from_secs(i32::MAX as u64)
        );
    }

    #[test]
    fn a_change_of_record_restarts_the_count() {
        let t0 = Instant::now();
        let at = |s| t0 + Duration::from_secs(s);
        let a = held_by("b", Timestamp::UNIX_EPOCH);
        let b = held_by("b", Timestamp::MAX);
        let mut seen = None;
        assert_eq!(unchanged_for(&mut seen, &a, at(0)), Duration::ZERO);
        assert_eq!(
            unchanged_for(&mut seen, &a, at(10)),
            Duration::from_secs(10)
        );
        assert_eq!(unchanged_for(&mut seen, &b, at(11)), Duration::ZERO);
        assert_eq!(unchanged_for(&mut seen, &b, at(12)), Duration::from_secs(1));
        // An earlier instant than the observation (another task's reading) is not negative.
        assert_eq!(unchanged_for(&mut seen, &b, at(5)), Duration::ZERO);
    }
}
