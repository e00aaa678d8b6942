//! Bad input never panics, and what is accepted keeps its invariants: the spec validator, the
//! duration parsers, the ECS answer decoders and the Lease timing, each over arbitrary input.

use std::time::Duration;

use ecs_vnc_operator::aliyun::{
    EcsError, MAX_REASON_CHARS, MAX_REQUEST_ID_CHARS, decode_error, decode_os_type, decode_vnc_url,
};
use ecs_vnc_operator::controller::leader::{
    MAX_LEASE_DURATION, lease_duration, may_hold, unchanged_for,
};
use ecs_vnc_operator::plugin;
use ecs_vnc_operator::session::VncSessionSpec;
use ecs_vnc_operator::session::validate;
use jiff::Timestamp;
use k8s_openapi::api::coordination::v1::LeaseSpec;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::MicroTime;
use proptest::prelude::*;
use serde_json::json;

/// Ten years of seconds: the longest ttl (and operator duration flag) accepted.
const TTL_MAX_SECS: u64 = 10 * 366 * 86_400;
/// `EcsError::Api`'s message bound (512 characters) plus the ellipsis of a cut.
const MAX_MESSAGE_CHARS: usize = 513;

/// Arbitrary text, weighted towards the characters the parsers care about so that accepted values
/// turn up as often as refused ones.
fn text() -> impl Strategy<Value = String> {
    prop_oneof![
        3 => "[a-z0-9]{0,6}(-[a-z0-9]{0,6}){0,3}",
        2 => "i-[a-z0-9A-Z_]{0,70}",
        2 => "([0-9]{1,4}(ms|s|m|h|d|x|)){0,4}",
        1 => "https?://[a-z0-9.:/?# ]{0,20}",
        2 => any::<String>(),
    ]
}

/// Any timestamp this client can hold, the extremes included.
fn timestamp() -> impl Strategy<Value = Timestamp> {
    prop_oneof![
        Just(Timestamp::MIN),
        Just(Timestamp::MAX),
        (
            Timestamp::MIN.as_second()..=Timestamp::MAX.as_second(),
            0..1_000_000_000i32
        )
            .prop_filter_map("in range", |(s, ns)| Timestamp::new(s, ns).ok()),
    ]
}

fn lease_spec() -> impl Strategy<Value = LeaseSpec> {
    (
        prop::option::of(prop_oneof!["me", "other", "", any::<String>()]),
        prop::option::of(timestamp()),
        prop::option::of(any::<i32>()),
        prop::option::of(any::<i32>()),
    )
        .prop_map(|(holder, renewed, secs, transitions)| LeaseSpec {
            holder_identity: holder,
            renew_time: renewed.map(MicroTime),
            lease_duration_seconds: secs,
            lease_transitions: transitions,
            ..Default::default()
        })
}

/// Secrets as AccessKeys and STS tokens are written: letters, digits and base64's `+/=`.
fn secret() -> impl Strategy<Value = String> {
    "[A-Za-z0-9+/=]{4,24}"
}

fn is_region_id(s: &str) -> bool {
    let parts: Vec<&str> = s.split('-').collect();
    parts.len() >= 2
        && parts[0].len() >= 2
        && parts[0].chars().all(|c| c.is_ascii_lowercase())
        && parts[1..].iter().all(|p| {
            !p.is_empty()
                && p.chars()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit())
        })
}

fn is_instance_id(s: &str) -> bool {
    s.len() <= 64
        && s.strip_prefix("i-").is_some_and(|rest| {
            !rest.is_empty()
                && rest
                    .chars()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit())
        })
}

/// The invariants of any error decoded from an answer: bounded, printable texts.
fn assert_bounded(err: &EcsError) -> Result<(), TestCaseError> {
    if let Some(id) = err.request_id() {
        prop_assert!(
            id.chars().count() <= MAX_REQUEST_ID_CHARS + 1,
            "{}",
            id.len()
        );
        prop_assert!(!id.chars().any(char::is_control), "{id:?}");
    }
    match err {
        EcsError::Api { code, message, .. } => {
            prop_assert!(!code.is_empty());
            prop_assert!(code.chars().count() <= 129, "{code:?}");
            prop_assert!(message.chars().count() <= MAX_MESSAGE_CHARS);
            for text in [code, message] {
                prop_assert!(!text.chars().any(char::is_control), "{text:?}");
            }
        }
        EcsError::MalformedResponse { reason, .. } => {
            prop_assert!(reason.chars().count() <= MAX_REASON_CHARS + 1, "{reason:?}");
            prop_assert!(!reason.chars().any(char::is_control), "{reason:?}");
            prop_assert!(err.is_retryable());
        }
        other => prop_assert!(false, "a decoder made {other:?}"),
    }
    Ok(())
}

/// JSON bodies of the shapes ECS answers with, fields arbitrary; and arbitrary bytes.
fn body() -> impl Strategy<Value = Vec<u8>> {
    let field = prop_oneof![
        text().prop_map(serde_json::Value::from),
        any::<i64>().prop_map(serde_json::Value::from),
        Just(serde_json::Value::Null),
        Just(json!({})),
        Just(json!([])),
    ];
    prop_oneof![
        (
            field.clone(),
            field.clone(),
            field.clone(),
            field.clone(),
            field
        )
            .prop_map(|(code, message, request_id, vnc_url, os)| {
                serde_json::to_vec(&json!({
                    "Code": code, "Message": message, "RequestId": request_id, "VncUrl": vnc_url,
                    "Instances": {"Instance": [{"InstanceId": "i-a", "OSType": os}]},
                }))
                .unwrap()
            }),
        prop::collection::vec(any::<u8>(), 0..256),
        "[\\[\\]{}\":,a-zA-Z0-9 \\\\]{0,64}".prop_map(String::into_bytes),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn an_accepted_spec_has_a_region_and_instance_of_the_documented_shape(
        // Mostly the documented shapes and near misses, so that accepted specs are common.
        region in prop_oneof![
            3 => "[a-z]{2,3}(-[a-z0-9]{1,3}){1,2}",
            1 => "[a-z]{1,3}(-[a-z0-9]{0,3}){0,2}-?",
            1 => text(),
        ],
        instance in prop_oneof![3 => "i-[a-z0-9]{1,62}", 1 => "i-[a-z0-9]{60,66}", 1 => text()],
        reason in prop::option::of(prop_oneof![".{1000,1030}", text()]),
        ttl in prop::option::of(prop_oneof![3 => "([0-9]{1,3}[smhd]){1,2}", 1 => text()]),
        endpoint in prop::option::of(prop_oneof![3 => "https?://[a-z.]{1,10}", 1 => text()]),
        secret_name in prop::option::of(prop_oneof![3 => "[a-z0-9.-]{1,8}", 1 => text()]),
    ) {
        let mut spec = json!({"regionId": region, "instanceId": instance});
        for (key, value) in [("reason", &reason), ("ttl", &ttl), ("endpoint", &endpoint)] {
            if let Some(v) = value {
                spec[key] = json!(v);
            }
        }
        if let Some(name) = &secret_name {
            spec["credentialsRef"] = json!({"name": name});
        }
        let spec: VncSessionSpec = serde_json::from_value(spec).unwrap();
        if validate::spec(&spec).is_ok() {
            prop_assert!(is_region_id(&region), "{region:?}");
            prop_assert!(is_instance_id(&instance), "{instance:?}");
            if let Some(r) = &reason {
                prop_assert!(r.chars().count() <= validate::REASON_MAX_LEN);
            }
            if let Some(t) = &ttl {
                prop_assert!(validate::ttl(t).is_ok());
            }
            if let Some(name) = &secret_name {
                prop_assert!(!name.is_empty() && !name.contains('/'), "{name:?}");
            }
        }
    }

    #[test]
    fn well_formed_ids_are_accepted(
        region in "[a-z]{2,8}(-[a-z0-9]{1,8}){1,3}",
        instance in "i-[a-z0-9]{1,62}",
    ) {
        prop_assert_eq!(validate::region_id(&region), Ok(()));
        prop_assert_eq!(validate::instance_id(&instance), Ok(()));
    }

    #[test]
    fn a_ttl_is_refused_or_positive_and_at_most_ten_years(value in text()) {
        if let Ok(d) = validate::ttl(&value) {
            prop_assert!(d > Duration::ZERO);
            prop_assert!(d.as_secs() <= TTL_MAX_SECS);
            prop_assert_eq!(d.subsec_nanos(), 0);
        }
    }

    #[test]
    fn a_ttl_is_the_sum_of_its_parts(parts in prop::collection::vec((0u64..100_000, 0usize..4), 1..4)) {
        const UNITS: [(char, u64); 4] = [('s', 1), ('m', 60), ('h', 3_600), ('d', 86_400)];
        let text: String = parts
            .iter()
            .map(|(n, u)| format!("{n}{}", UNITS[*u].0))
            .collect();
        let total: u64 = parts.iter().map(|(n, u)| n * UNITS[*u].1).sum();
        match validate::ttl(&text) {
            Ok(d) => prop_assert_eq!(d, Duration::from_secs(total)),
            Err(_) => prop_assert!(total == 0 || total > TTL_MAX_SECS, "{text} = {total}s refused"),
        }
    }

    #[test]
    fn a_timeout_is_refused_or_positive_and_at_most_an_hour(value in text()) {
        if let Ok(d) = plugin::duration::parse(&value) {
            prop_assert!(d > Duration::ZERO);
            prop_assert!(d <= plugin::duration::MAX);
        }
    }

    #[test]
    fn a_timeout_round_trips_through_how_it_is_written(ms in 1u64..=3_600_000) {
        let d = Duration::from_millis(ms);
        let written = plugin::error::human(d);
        prop_assert_eq!(plugin::duration::parse(&written), Ok(d), "{}", written);
    }

    #[test]
    fn a_timeout_beyond_the_bound_is_refused_never_a_panic(n in any::<u64>(), unit in "(ms|s|m|h|)") {
        let text = format!("{n}{unit}");
        let millis = match unit.as_str() {
            "ms" => Some(n),
            "m" => n.checked_mul(60_000),
            "h" => n.checked_mul(3_600_000),
            _ => n.checked_mul(1_000),
        };
        match millis {
            Some(0) => prop_assert!(plugin::duration::parse(&text).is_err()),
            Some(ms) if ms <= 3_600_000 => {
                prop_assert_eq!(plugin::duration::parse(&text), Ok(Duration::from_millis(ms)));
            }
            _ => prop_assert_eq!(
                plugin::duration::parse(&text),
                Err(format!("duration {text:?} is too long: at most 1h"))
            ),
        }
    }

    #[test]
    fn an_error_answer_decodes_to_bounded_printable_text(status in any::<u16>(), body in body()) {
        assert_bounded(&decode_error(status, &body, &[]))?;
    }

    #[test]
    fn an_error_answer_never_gives_a_secret_back(
        key_id in secret(),
        key_secret in secret(),
        prefix in text(),
        suffix in text(),
        status in 400u16..600,
    ) {
        let echoed = format!("{prefix}{key_id} {}{suffix}", ecs_vnc_operator::aliyun::signature::percent_encode(&key_secret));
        let body = serde_json::to_vec(&json!({
            "Code": format!("X{key_id}"), "Message": echoed, "RequestId": "r",
        })).unwrap();
        let err = decode_error(status, &body, &[&key_id, &key_secret]);
        assert_bounded(&err)?;
        let shown = format!("{} {}", err.code(), err.message());
        prop_assert!(!shown.contains(&key_id), "{shown}");
        prop_assert!(!shown.contains(&key_secret), "{shown}");
    }

    #[test]
    fn a_vnc_url_answer_is_complete_or_a_bounded_malformed_error(
        status in 200u16..300,
        body in body(),
        sent_at in timestamp(),
    ) {
        match decode_vnc_url(&body, status, sent_at) {
            Ok(issued) => {
                prop_assert!(!issued.vnc_url.is_empty());
                prop_assert!(!issued.request_id.is_empty());
                prop_assert!(issued.request_id.chars().count() <= MAX_REQUEST_ID_CHARS + 1);
                prop_assert_eq!(issued.sent_at, sent_at);
            }
            Err(err) => {
                prop_assert_eq!(err.code(), "MalformedResponse");
                assert_bounded(&err)?;
            }
        }
    }

    #[test]
    fn an_instances_answer_gives_an_os_type_or_a_bounded_error(
        status in 200u16..300,
        body in body(),
        instance in prop_oneof![Just("i-a".to_owned()), text()],
    ) {
        match decode_os_type(&body, status, "cn-hangzhou", &instance) {
            Ok(os) => prop_assert!(!os.trim().is_empty()),
            Err(err) => {
                prop_assert!(
                    ["MalformedResponse", "InvalidInstanceId.NotFound"].contains(&err.code()),
                    "{err:?}"
                );
                assert_bounded(&err)?;
            }
        }
    }

    #[test]
    fn a_lease_is_free_ours_or_taken_only_after_a_full_unchanged_duration(
        spec in lease_spec(),
        unchanged in prop_oneof![
            Just(Duration::ZERO),
            Just(Duration::MAX),
            any::<u64>().prop_map(Duration::from_millis),
            any::<u64>().prop_map(Duration::from_secs),
        ],
    ) {
        let duration = lease_duration(&spec);
        prop_assert!(duration >= Duration::from_secs(1) && duration <= MAX_LEASE_DURATION);
        let holder = spec.holder_identity.clone().unwrap_or_default();
        let verdict = may_hold(&spec, "me", unchanged);
        if holder.is_empty() || holder == "me" {
            prop_assert!(verdict);
        } else {
            prop_assert_eq!(verdict, unchanged >= duration);
        }
    }

    #[test]
    fn a_lease_counts_from_the_last_change_seen(
        readings in prop::collection::vec((lease_spec(), 0u64..10_000_000), 1..12),
        far in prop_oneof![Just(0u64), Just(86_400 * 365 * 100)],
    ) {
        let base = tokio::time::Instant::now();
        let mut observed = None;
        let mut now = base;
        let mut last: Option<(LeaseSpec, tokio::time::Instant)> = None;
        for (spec, step_ms) in readings {
            now += Duration::from_millis(step_ms) + Duration::from_secs(far);
            let got = unchanged_for(&mut observed, &spec, now);
            match &last {
                Some((seen, since)) if *seen == spec => prop_assert_eq!(got, now - *since),
                _ => {
                    prop_assert_eq!(got, Duration::ZERO);
                    last = Some((spec, now));
                }
            }
        }
    }
}
