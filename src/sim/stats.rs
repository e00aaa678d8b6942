//! The simulator's statistics: answers counted by action and code, by instance, and by account and
//! region as the account quota saw them; what `GET /_sim/stats` and [`SimHandle::stats`] return.
//!
//! [`SimHandle::stats`]: super::SimHandle::stats

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// Answers counted by action and `Code` (`Success` for 200), and by instance and action.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SimStats {
    /// action -> code -> answers
    pub calls: BTreeMap<String, BTreeMap<String, u64>>,
    /// instance id -> action -> answers (all codes)
    pub by_instance: BTreeMap<String, BTreeMap<String, u64>>,
    /// instance id -> when its latest VncUrl was issued (Unix milliseconds): a URL's 15 s window
    /// runs on ECS's clock, so this is where a benchmark measures how much of it was left.
    #[serde(default)]
    pub last_vnc_url_ms: BTreeMap<String, i64>,
    /// AccessKeyId -> RegionId -> requests that reached the account quota (well-signed, known
    /// action) and how many of them it refused. Left out of the JSON while empty.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub by_account: BTreeMap<String, BTreeMap<String, AccountCount>>,
}

/// One AccessKeyId's requests in one region, as the account quota saw them.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AccountCount {
    pub calls: u64,
    /// Answered `Throttling.User` by the quota (the per-instance reconnect limit not included).
    pub throttled: u64,
}

/// A request that reached the account quota, for [`SimStats::record_account`].
#[derive(Debug)]
pub(crate) struct AccountCall {
    pub(crate) access_key_id: String,
    pub(crate) region_id: String,
    pub(crate) over_quota: bool,
}

impl SimStats {
    pub fn count(&self, action: &str, code: &str) -> u64 {
        self.calls
            .get(action)
            .and_then(|codes| codes.get(code))
            .copied()
            .unwrap_or(0)
    }

    pub fn total(&self, action: &str) -> u64 {
        self.calls
            .get(action)
            .map(|codes| codes.values().sum())
            .unwrap_or(0)
    }

    /// What the account quota did, summed over every key and region: (calls, throttled).
    pub fn account_totals(&self) -> (u64, u64) {
        self.by_account
            .values()
            .flat_map(BTreeMap::values)
            .fold((0, 0), |(calls, throttled), n| {
                (calls + n.calls, throttled + n.throttled)
            })
    }

    pub fn account(&self, access_key_id: &str, region_id: &str) -> AccountCount {
        self.by_account
            .get(access_key_id)
            .and_then(|regions| regions.get(region_id))
            .copied()
            .unwrap_or_default()
    }

    pub(crate) fn record_account(&mut self, call: &AccountCall) {
        let count = self
            .by_account
            .entry(call.access_key_id.clone())
            .or_default()
            .entry(call.region_id.clone())
            .or_default();
        count.calls += 1;
        if call.over_quota {
            count.throttled += 1;
        }
    }

    pub(crate) fn record(&mut self, action: &str, code: &str, instances: &[String]) {
        bump(bump_map(&mut self.calls, action), code);
        for instance in instances {
            bump(bump_map(&mut self.by_instance, instance), action);
        }
    }
}

/// Looks up before inserting so that a known key costs no allocation.
fn bump_map<'m>(
    map: &'m mut BTreeMap<String, BTreeMap<String, u64>>,
    key: &str,
) -> &'m mut BTreeMap<String, u64> {
    if !map.contains_key(key) {
        map.insert(key.to_owned(), BTreeMap::new());
    }
    map.get_mut(key).expect("inserted above")
}

fn bump(map: &mut BTreeMap<String, u64>, key: &str) {
    match map.get_mut(key) {
        Some(n) => *n += 1,
        None => {
            map.insert(key.to_owned(), 1);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stats_count_by_action_code_and_instance() {
        let mut stats = SimStats::default();
        stats.record("DescribeInstanceVncUrl", "Success", &["i-a".to_owned()]);
        stats.record("DescribeInstanceVncUrl", "Success", &["i-a".to_owned()]);
        stats.record(
            "DescribeInstanceVncUrl",
            "Throttling.User",
            &["i-a".to_owned()],
        );
        stats.record("DescribeInstances", "Success", &[]);
        assert_eq!(stats.count("DescribeInstanceVncUrl", "Success"), 2);
        assert_eq!(stats.total("DescribeInstanceVncUrl"), 3);
        assert_eq!(stats.total("Nope"), 0);
        assert_eq!(stats.by_instance["i-a"]["DescribeInstanceVncUrl"], 3);
    }

    #[test]
    fn stats_count_quota_answers_by_key_and_region() {
        let mut stats = SimStats::default();
        let call = |key: &str, region: &str, over_quota| AccountCall {
            access_key_id: key.to_owned(),
            region_id: region.to_owned(),
            over_quota,
        };
        stats.record_account(&call("ak1", "cn-hangzhou", false));
        stats.record_account(&call("ak1", "cn-hangzhou", true));
        stats.record_account(&call("ak1", "cn-shanghai", false));
        stats.record_account(&call("ak2", "cn-hangzhou", false));
        assert_eq!(
            stats.account("ak1", "cn-hangzhou"),
            AccountCount {
                calls: 2,
                throttled: 1
            }
        );
        assert_eq!(stats.account("ak1", "cn-shanghai").throttled, 0);
        assert_eq!(stats.account("nope", "cn-hangzhou").calls, 0);
        assert_eq!(stats.account_totals(), (4, 1));
        let json = serde_json::to_value(&stats).unwrap();
        assert_eq!(
            json["byAccount"]["ak1"]["cn-hangzhou"],
            serde_json::json!({"calls": 2, "throttled": 1})
        );
    }
}
