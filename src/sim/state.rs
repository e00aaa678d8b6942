//! Everything the simulator remembers between requests, in one place: the fixed tables (accounts,
//! regions, limits, the loaded keyless side) and, behind one std `Mutex` never held across an
//! `.await`, what changes (instance statuses, nonces, reconnect windows, the account quota,
//! statistics, queued faults, issued credentials, metadata tokens). Data only: the modules that
//! answer requests read and change it; it knows none of them.

use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::{Mutex, MutexGuard, PoisonError};

use super::config::{InstanceStatus, SimAccount, SimConfig, SimInstance};
use super::faults::{Fault, FaultKind};
use super::grants::Grants;
use super::metadata_state::MetadataState;
use super::quota::AccountQuota;
use super::roles::Keyless;
use super::stats::SimStats;
use super::windows::{NONCE_WINDOW, NonceCache, RateWindow};

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
    use std::time::Instant;

    use super::*;

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
