//! Injected faults: "the next N answers (for this action / instance) go wrong this way".

use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::errors::EcsError;

/// One queued fault. JSON: the kind's fields flattened next to the filters, e.g.
/// `{"action":"DescribeInstanceVncUrl","instanceId":"i-x","count":2,"kind":"delay","ms":1500}`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Fault {
    /// Only requests for this `Action`; `None` matches every action.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub action: Option<String>,
    /// Only requests naming this instance (`InstanceId`, or inside `InstanceIds`); `None` matches all.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub instance_id: Option<String>,
    #[serde(flatten)]
    pub kind: FaultKind,
    /// How many matching answers this fault takes over; 0 injects nothing.
    #[serde(default = "one")]
    pub count: u32,
}

fn one() -> u32 {
    1
}

/// What a faulted answer looks like. JSON tag `kind`: `internalError`, `serviceUnavailable`,
/// `throttling`, `error` (+ `status`, `code`, `message`), `delay` (+ `ms`), `malformed`, `oversized`,
/// `drop`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "camelCase")]
pub enum FaultKind {
    /// 500 `InternalError`.
    InternalError,
    /// 503 `ServiceUnavailable`.
    ServiceUnavailable,
    /// 400 `Throttling`.
    Throttling,
    /// Any error answer.
    Error {
        status: u16,
        code: String,
        message: String,
    },
    /// Sleep, then answer normally.
    Delay(#[serde(with = "delay_ms")] Duration),
    /// 200 with a body that is not JSON.
    Malformed,
    /// 200 with 4 MiB of JSON.
    Oversized,
    /// Close the connection without answering.
    Drop,
}

/// A delay on the wire: `"ms": <whole milliseconds>` beside the tag, not serde's `{secs, nanos}`.
mod delay_ms {
    use std::time::Duration;

    use serde::{Deserialize, Deserializer, Serialize, Serializer};

    #[derive(Serialize, Deserialize)]
    struct Millis {
        ms: u64,
    }

    pub(super) fn serialize<S: Serializer>(
        delay: &Duration,
        serializer: S,
    ) -> Result<S::Ok, S::Error> {
        let ms = u64::try_from(delay.as_millis()).unwrap_or(u64::MAX);
        Millis { ms }.serialize(serializer)
    }

    pub(super) fn deserialize<'de, D: Deserializer<'de>>(
        deserializer: D,
    ) -> Result<Duration, D::Error> {
        Millis::deserialize(deserializer).map(|m| Duration::from_millis(m.ms))
    }
}

impl Fault {
    /// The next answer (any action, any instance) gets `kind`.
    pub fn next(kind: FaultKind) -> Self {
        Fault {
            action: None,
            instance_id: None,
            kind,
            count: 1,
        }
    }

    pub fn times(mut self, count: u32) -> Self {
        self.count = count;
        self
    }

    pub fn for_action(mut self, action: &str) -> Self {
        self.action = Some(action.to_owned());
        self
    }

    pub fn for_instance(mut self, instance_id: &str) -> Self {
        self.instance_id = Some(instance_id.to_owned());
        self
    }

    pub(crate) fn matches(&self, action: &str, instances: &[String]) -> bool {
        self.action.as_deref().is_none_or(|a| a == action)
            && self
                .instance_id
                .as_deref()
                .is_none_or(|id| instances.iter().any(|i| i == id))
    }

    /// A status hyper can send; checked by the admin API so that a typo is a 400, not a 500 later.
    pub(crate) fn validate(&self) -> Result<(), String> {
        if let FaultKind::Error { status, code, .. } = &self.kind {
            if !(200..=599).contains(status) {
                return Err(format!("status {status} is not in 200..=599"));
            }
            if code.is_empty() {
                return Err("an error fault needs a code".to_owned());
            }
        }
        Ok(())
    }
}

impl FaultKind {
    /// The error answer for the kinds that are one; `None` for delay, malformed, oversized, drop.
    pub(crate) fn as_error(&self) -> Option<EcsError> {
        match self {
            FaultKind::InternalError => Some(EcsError::internal_error()),
            FaultKind::ServiceUnavailable => Some(EcsError::service_unavailable()),
            FaultKind::Throttling => Some(EcsError::throttling()),
            FaultKind::Error {
                status,
                code,
                message,
            } => Some(EcsError::new(*status, code.clone(), message.clone())),
            FaultKind::Delay(_) | FaultKind::Malformed | FaultKind::Oversized | FaultKind::Drop => {
                None
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn json_shape_is_flat_and_tagged() {
        let fault = Fault::next(FaultKind::Delay(Duration::from_millis(1500)))
            .for_action("DescribeInstanceVncUrl")
            .times(2);
        assert_eq!(
            serde_json::to_value(&fault).unwrap(),
            json!({"action": "DescribeInstanceVncUrl", "kind": "delay", "ms": 1500, "count": 2})
        );
        let parsed: Fault = serde_json::from_value(json!({
            "instanceId": "i-x", "kind": "error", "status": 403, "code": "Forbidden.RAM", "message": "no"
        }))
        .unwrap();
        assert_eq!(parsed.count, 1);
        assert_eq!(parsed.instance_id.as_deref(), Some("i-x"));
        assert_eq!(
            parsed.kind,
            FaultKind::Error {
                status: 403,
                code: "Forbidden.RAM".into(),
                message: "no".into()
            }
        );
        for (tag, kind) in [
            ("internalError", FaultKind::InternalError),
            ("serviceUnavailable", FaultKind::ServiceUnavailable),
            ("throttling", FaultKind::Throttling),
            ("malformed", FaultKind::Malformed),
            ("oversized", FaultKind::Oversized),
            ("drop", FaultKind::Drop),
        ] {
            let parsed: Fault = serde_json::from_value(json!({ "kind": tag })).unwrap();
            assert_eq!(parsed.kind, kind);
        }
        assert!(serde_json::from_value::<Fault>(json!({"kind": "explode"})).is_err());
    }

    #[test]
    fn filters_match_action_and_instance() {
        let any = Fault::next(FaultKind::Drop);
        assert!(any.matches("DescribeInstances", &[]));
        let scoped = Fault::next(FaultKind::Drop)
            .for_action("DescribeInstanceVncUrl")
            .for_instance("i-a");
        assert!(scoped.matches("DescribeInstanceVncUrl", &["i-a".to_owned()]));
        assert!(!scoped.matches("DescribeInstanceVncUrl", &["i-b".to_owned()]));
        assert!(!scoped.matches("DescribeInstances", &["i-a".to_owned()]));
    }
}
