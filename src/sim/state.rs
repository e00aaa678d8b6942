//! Everything the simulator remembers between requests: instance statuses, used nonces, reconnect
//! windows, the account quota, statistics and queued faults. One std `Mutex`, never held across an
//! `.await`.

use std::collections::{BTreeMap, HashMap, HashSet, VecDeque};
use std::sync::{Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

use super::config::{InstanceStatus, SimAccount, SimConfig, SimInstance};
use super::faults::{Fault, FaultKind};
use super::grants::Grants;
use super::metadata::MetadataState;
use super::quota::AccountQuota;
use super::sts::Keyless;

/// How long a nonce stays used, and how far a `Timestamp` may be from the server clock.
pub const NONCE_WINDOW: Duration = Duration::from_secs(15 * 60);
/// The reconnect limit counts successful calls in a sliding window of this length.
pub const RATE_WINDOW: Duration = Duration::from_secs(60);

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

/// Nonces seen per AccessKeyId within the window. Entries leave in arrival order, which is also
/// expiry order because the window is fixed.
#[derive(Debug)]
pub(crate) struct NonceCache {
    window: Duration,
    seen: HashSet<(String, String)>,
    order: VecDeque<(Instant, (String, String))>,
}

impl NonceCache {
    pub(crate) fn new(window: Duration) -> Self {
        NonceCache {
            window,
            seen: HashSet::new(),
            order: VecDeque::new(),
        }
    }

    /// Records the nonce and says whether it was fresh.
    pub(crate) fn check_and_insert(
        &mut self,
        access_key_id: &str,
        nonce: &str,
        now: Instant,
    ) -> bool {
        self.expire(now);
        let key = (access_key_id.to_owned(), nonce.to_owned());
        if self.seen.contains(&key) {
            return false;
        }
        self.seen.insert(key.clone());
        self.order.push_back((now, key));
        true
    }

    fn expire(&mut self, now: Instant) {
        while let Some((at, _)) = self.order.front() {
            if now.saturating_duration_since(*at) < self.window {
                break;
            }
            if let Some((_, key)) = self.order.pop_front() {
                self.seen.remove(&key);
            }
        }
    }

    #[cfg(test)]
    fn len(&self) -> usize {
        self.seen.len()
    }

    fn clear(&mut self) {
        self.seen.clear();
        self.order.clear();
    }
}

/// Successful calls for one instance within the last [`RATE_WINDOW`].
#[derive(Debug, Default)]
pub(crate) struct RateWindow {
    hits: VecDeque<Instant>,
}

impl RateWindow {
    /// Takes a slot if fewer than `limit` calls happened in the last `window`.
    pub(crate) fn try_acquire(&mut self, now: Instant, limit: u32, window: Duration) -> bool {
        while let Some(at) = self.hits.front() {
            if now.saturating_duration_since(*at) < window {
                break;
            }
            self.hits.pop_front();
        }
        if self.hits.len() >= limit as usize {
            return false;
        }
        self.hits.push_back(now);
        true
    }
}

#[derive(Debug, Clone)]
pub(crate) struct InstanceRecord {
    pub(crate) instance_id: String,
    pub(crate) region_id: String,
    pub(crate) status: InstanceStatus,
    pub(crate) os_type: String,
}

/// What changes while the simulator runs.
#[derive(Debug)]
pub(crate) struct State {
    /// In configuration order, which is also `DescribeInstances`' order.
    pub(crate) instances: Vec<InstanceRecord>,
    index: HashMap<String, usize>,
    pub(crate) nonces: NonceCache,
    pub(crate) windows: HashMap<String, RateWindow>,
    pub(crate) quota: AccountQuota,
    pub(crate) stats: SimStats,
    faults: VecDeque<Fault>,
    /// Credentials issued by STS and the metadata service.
    pub(crate) grants: Grants,
    pub(crate) metadata: MetadataState,
}

impl State {
    pub(crate) fn instance(&self, id: &str) -> Option<&InstanceRecord> {
        self.index.get(id).map(|&i| &self.instances[i])
    }

    /// Takes one use of the first queued fault that matches, dropping it when used up.
    pub(crate) fn take_fault(&mut self, action: &str, instances: &[String]) -> Option<FaultKind> {
        let position = self
            .faults
            .iter()
            .position(|f| f.matches(action, instances))?;
        Some(self.use_fault(position))
    }

    /// Like [`State::take_fault`], but only a fault whose `action` filter names `action`: the STS
    /// and metadata answers are faulted only on purpose, never by a catch-all ECS fault.
    pub(crate) fn take_named_fault(&mut self, action: &str) -> Option<FaultKind> {
        let position = self
            .faults
            .iter()
            .position(|f| f.action.as_deref() == Some(action))?;
        Some(self.use_fault(position))
    }

    fn use_fault(&mut self, position: usize) -> FaultKind {
        let fault = &mut self.faults[position];
        fault.count -= 1;
        let kind = fault.kind.clone();
        if fault.count == 0 {
            self.faults.remove(position);
        }
        kind
    }
}

/// Shared by the server task and the [`SimHandle`](super::SimHandle).
#[derive(Debug)]
pub(crate) struct Shared {
    pub(crate) accounts: HashMap<String, SimAccount>,
    /// Configured regions plus every instance's region.
    pub(crate) regions: HashSet<String>,
    pub(crate) reconnect_limit_per_minute: u32,
    pub(crate) vnc_proxy_host: String,
    /// The STS provider, roles and metadata roles (fixed while running).
    pub(crate) keyless: Keyless,
    state: Mutex<State>,
}

impl Shared {
    #[cfg(test)]
    pub(crate) fn new(config: SimConfig) -> Self {
        Self::with_keyless(config, Keyless::default())
    }

    pub(crate) fn with_keyless(config: SimConfig, keyless: Keyless) -> Self {
        let mut regions: HashSet<String> = config.regions.into_iter().collect();
        let mut instances = Vec::with_capacity(config.instances.len());
        let mut index = HashMap::with_capacity(config.instances.len());
        for SimInstance {
            instance_id,
            region_id,
            status,
            os_type,
        } in config.instances
        {
            regions.insert(region_id.clone());
            index.insert(instance_id.clone(), instances.len());
            instances.push(InstanceRecord {
                instance_id,
                region_id,
                status,
                os_type,
            });
        }
        Shared {
            accounts: config
                .accounts
                .into_iter()
                .map(|a| (a.access_key_id.clone(), a))
                .collect(),
            regions,
            reconnect_limit_per_minute: config.reconnect_limit_per_minute,
            vnc_proxy_host: config.vnc_proxy_host,
            keyless,
            state: Mutex::new(State {
                instances,
                index,
                nonces: NonceCache::new(NONCE_WINDOW),
                windows: HashMap::new(),
                quota: AccountQuota::default(),
                stats: SimStats::default(),
                faults: VecDeque::new(),
                grants: Grants::default(),
                metadata: MetadataState::default(),
            }),
        }
    }

    /// A panic elsewhere while holding the lock leaves consistent-enough data for a simulator.
    pub(crate) fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    pub(crate) fn inject(&self, fault: Fault) {
        if fault.count > 0 {
            self.lock().faults.push_back(fault);
        }
    }

    /// Faults queued and not yet used up: a test knows a faulted request has arrived.
    pub(crate) fn queued_faults(&self) -> usize {
        self.lock().faults.len()
    }

    pub(crate) fn reset(&self) {
        let mut state = self.lock();
        state.stats = SimStats::default();
        state.faults.clear();
        state.nonces.clear();
        state.windows.clear();
        state.quota.clear();
    }

    /// Requests per second per AccessKeyId and region; `None` or 0 is no quota.
    pub(crate) fn set_account_quota(&self, per_second: Option<u32>) {
        self.lock().quota.set(per_second);
    }

    pub(crate) fn account_quota(&self) -> Option<u32> {
        self.lock().quota.per_second()
    }

    /// Returns false for an unknown instance.
    pub(crate) fn set_instance_status(&self, instance_id: &str, status: InstanceStatus) -> bool {
        let mut state = self.lock();
        match state.index.get(instance_id).copied() {
            Some(i) => {
                state.instances[i].status = status;
                true
            }
            None => false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rate_window_allows_limit_then_frees_slots_as_they_age() {
        let start = Instant::now();
        let mut window = RateWindow::default();
        for i in 0..30 {
            assert!(window.try_acquire(start + Duration::from_millis(i * 100), 30, RATE_WINDOW));
        }
        assert!(!window.try_acquire(start + Duration::from_secs(10), 30, RATE_WINDOW));
        // The first call was at +0 s; at exactly +60 s it has left the window.
        assert!(!window.try_acquire(start + Duration::from_millis(59_999), 30, RATE_WINDOW));
        assert!(window.try_acquire(start + RATE_WINDOW, 30, RATE_WINDOW));
        assert!(!window.try_acquire(start + RATE_WINDOW, 30, RATE_WINDOW));
    }

    #[test]
    fn rate_window_with_zero_limit_refuses_everything() {
        let mut window = RateWindow::default();
        assert!(!window.try_acquire(Instant::now(), 0, RATE_WINDOW));
    }

    #[test]
    fn nonce_is_single_use_per_key_until_it_expires() {
        let start = Instant::now();
        let mut cache = NonceCache::new(NONCE_WINDOW);
        assert!(cache.check_and_insert("ak1", "n1", start));
        assert!(!cache.check_and_insert("ak1", "n1", start + Duration::from_secs(1)));
        assert!(
            cache.check_and_insert("ak2", "n1", start),
            "per AccessKeyId"
        );
        assert!(!cache.check_and_insert(
            "ak1",
            "n1",
            start + NONCE_WINDOW - Duration::from_millis(1)
        ));
        assert!(cache.check_and_insert("ak1", "n1", start + NONCE_WINDOW));
    }

    #[test]
    fn nonce_cache_forgets_expired_entries() {
        let start = Instant::now();
        let mut cache = NonceCache::new(Duration::from_secs(10));
        for i in 0..100 {
            cache.check_and_insert("ak", &i.to_string(), start);
        }
        assert_eq!(cache.len(), 100);
        cache.check_and_insert("ak", "late", start + Duration::from_secs(10));
        assert_eq!(cache.len(), 1);
    }

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

    #[test]
    fn reset_refills_the_quota_but_keeps_its_setting() {
        let shared = Shared::new(SimConfig::demo());
        shared.set_account_quota(Some(1));
        let now = Instant::now();
        assert!(shared.lock().quota.try_take("ak", "r", now));
        assert!(!shared.lock().quota.try_take("ak", "r", now));
        shared.reset();
        assert_eq!(shared.account_quota(), Some(1));
        assert!(shared.lock().quota.try_take("ak", "r", now));
    }

    #[test]
    fn faults_are_used_up_in_order() {
        let shared = Shared::new(SimConfig::demo());
        shared.inject(Fault::next(FaultKind::Drop).times(0));
        shared.inject(
            Fault::next(FaultKind::Throttling)
                .for_instance("i-a")
                .times(2),
        );
        shared.inject(Fault::next(FaultKind::Malformed));
        let mut state = shared.lock();
        let a = ["i-a".to_owned()];
        assert_eq!(state.take_fault("X", &[]), Some(FaultKind::Malformed));
        assert_eq!(state.take_fault("X", &a), Some(FaultKind::Throttling));
        assert_eq!(state.take_fault("X", &a), Some(FaultKind::Throttling));
        assert_eq!(state.take_fault("X", &a), None);
    }
}
