//! `ecs-sim` over real HTTP on 127.0.0.1: requests are signed by hand with the shared signature
//! module, so these tests pin the protocol, not a client.

mod support;

use std::time::{Duration, Instant};

use ecs_vnc_operator::aliyun::signature::percent_decode;
use ecs_vnc_operator::sim::{
    self, Fault, FaultKind, InstanceStatus, SimAccount, SimConfig, SimHandle, SimInstance,
};
use serde_json::{Value, json};
use support::ecs_sim::{
    self, LINUX, SIM_KEY_ID, SIM_KEY_SECRET, STARTING, STOPPED, VNC, WINDOWS, demo, loopback,
};
use support::http::{self, json as json_body};
use support::processes::signal;
use support::sim_process::SimProcess;
use support::sim_requests::{Answer, Call, assert_refusals, assert_request_id, timestamp_at};
use support::waiting::{poll, until};

#[tokio::test]
async fn vnc_url_for_linux_and_windows_instances_has_the_documented_shape() {
    let sim = demo().await;
    for instance in [LINUX, WINDOWS] {
        let answer = Call::vnc("cn-hangzhou", instance).send(&sim).await;
        assert_eq!(answer.status, 200, "{}", answer.json);
        assert_request_id(answer.json["RequestId"].as_str().unwrap());
        let vnc_url = answer.json["VncUrl"].as_str().unwrap();
        assert!(
            vnc_url.starts_with("wss%3A%2F%2Fhz01-vncproxy.aliyun.com%2Fwebsockify%2F%3Fs%3D"),
            "{vnc_url}"
        );
        let decoded = percent_decode(vnc_url).unwrap();
        let token = decoded
            .strip_prefix("wss://hz01-vncproxy.aliyun.com/websockify/?s=")
            .unwrap();
        let token = percent_decode(token).unwrap();
        assert!((50..=70).contains(&token.len()), "{token}");
    }
    let first = Call::vnc("cn-hangzhou", LINUX).send(&sim).await;
    let second = Call::vnc("cn-hangzhou", LINUX).send(&sim).await;
    assert_ne!(
        first.json["VncUrl"], second.json["VncUrl"],
        "fresh URL each call"
    );
    sim.shutdown().await;
}

#[tokio::test]
async fn describe_instances_lists_matching_instances_with_os_type() {
    let sim = demo().await;
    let ids = json!([WINDOWS, LINUX, "i-doesnotexist"]).to_string();
    let describe = |region: &str| Call::new("DescribeInstances").set("RegionId", region);
    let answer = describe("cn-hangzhou")
        .set("InstanceIds", &ids)
        .send(&sim)
        .await;
    assert_eq!(answer.status, 200, "{}", answer.json);
    assert_eq!(answer.json["TotalCount"], 2);
    assert_eq!(answer.json["PageNumber"], 1);
    assert_eq!(answer.json["PageSize"], 10);
    let listed = answer.json["Instances"]["Instance"].as_array().unwrap();
    let os: Vec<(&str, &str)> = listed
        .iter()
        .map(|i| {
            (
                i["InstanceId"].as_str().unwrap(),
                i["OSType"].as_str().unwrap(),
            )
        })
        .collect();
    assert_eq!(os, [(LINUX, "linux"), (WINDOWS, "windows")]);
    assert_eq!(listed[0]["Status"], "Running");
    assert_eq!(listed[0]["RegionId"], "cn-hangzhou");
    assert!(listed[0]["InstanceName"].is_string());

    let elsewhere = describe("cn-shanghai")
        .set("InstanceIds", &ids)
        .send(&sim)
        .await;
    assert_eq!(elsewhere.status, 200);
    assert_eq!(elsewhere.json["TotalCount"], 0);

    let all = describe("cn-hangzhou").send(&sim).await;
    assert_eq!(all.json["TotalCount"], 4);

    let refusals = [
        (
            describe("cn-hangzhou").set("InstanceIds", LINUX),
            400,
            "InvalidInstanceIds.Malformed",
        ),
        (describe("mars-north-1"), 404, "InvalidRegionId.NotFound"),
    ];
    assert_refusals(&sim, refusals).await;
    sim.shutdown().await;
}

#[tokio::test]
async fn sts_account_needs_exactly_its_token() {
    let mut config = SimConfig::demo();
    config.accounts.push(SimAccount {
        access_key_id: "STS.sim".into(),
        access_key_secret: "sts-secret".into(),
        security_token: Some("token-abc".into()),
    });
    let sim = ecs_sim::start(config).await;
    let sts = || Call::vnc("cn-hangzhou", LINUX).key("STS.sim", "sts-secret");

    let ok = sts().set("SecurityToken", "token-abc").send(&sim).await;
    assert_eq!(ok.status, 200, "{}", ok.json);
    let mismatch = "InvalidSecurityToken.Mismatch";
    // The token of an STS account, sent for an AccessKey that has none.
    let stray = Call::vnc("cn-hangzhou", LINUX).set("SecurityToken", "token-abc");
    let refusals = [
        (sts(), 400, mismatch),
        (sts().set("SecurityToken", "token-xyz"), 400, mismatch),
        (stray, 400, "InvalidSecurityToken.Malformed"),
    ];
    assert_refusals(&sim, refusals).await;
    sim.shutdown().await;
}

#[tokio::test]
async fn every_error_of_the_seed_table_has_its_status_and_message() {
    let sim = demo().await;
    let cases = [
        (
            "cn-shanghai",
            LINUX,
            400,
            "InvalidRegionInstance",
            "The specified InstanceId does not exist in given region.",
        ),
        (
            "cn-hangzhou",
            STOPPED,
            403,
            "IncorrectInstanceStatus",
            "The current status of the resource does not support this operation.",
        ),
        (
            "cn-hangzhou",
            STARTING,
            403,
            "InstanceNotReady",
            "The specified instance is not ready for use",
        ),
        (
            "mars-north-1",
            LINUX,
            404,
            "InvalidRegionId.NotFound",
            "The specified RegionId does not exist.",
        ),
        (
            "cn-hangzhou",
            "i-bp1nosuchinstance01",
            404,
            "InvalidInstanceId.NotFound",
            "The specified InstanceId does not exist.",
        ),
    ];
    for (region, instance, status, code, message) in cases {
        let answer = Call::vnc(region, instance).send(&sim).await;
        answer.assert_error(status, code);
        assert_eq!(answer.message(), message);
        assert_eq!(answer.json["HostId"], "ecs.aliyuncs.com");
        assert_request_id(answer.json["RequestId"].as_str().unwrap());
    }

    sim.inject(Fault::next(FaultKind::InternalError));
    let answer = Call::vnc("cn-hangzhou", LINUX).send(&sim).await;
    answer.assert_error(500, "InternalError");
    assert_eq!(
        answer.message(),
        "The request processing has failed due to some unknown error."
    );

    // A status change shows up immediately.
    sim.set_instance_status(STOPPED, InstanceStatus::Running);
    assert_eq!(
        Call::vnc("cn-hangzhou", STOPPED).send(&sim).await.status,
        200
    );
    sim.shutdown().await;
}

#[tokio::test]
async fn signature_mismatch_shows_the_servers_string_to_sign() {
    let sim = demo().await;
    let call = Call::vnc("cn-hangzhou", LINUX).key(SIM_KEY_ID, "wrong-secret");
    let answer = call.send(&sim).await;
    answer.assert_error(400, "SignatureDoesNotMatch");
    let expected = format!(
        "Specified signature is not matched with our calculation. server string to sign is:{}",
        call.server_string_to_sign("POST")
    );
    assert_eq!(answer.message(), expected);

    // Signed for GET, sent as POST: the server computes with the method actually used.
    let mut call = Call::vnc("cn-hangzhou", LINUX);
    call.sign_as = Some("GET");
    let answer = call.send(&sim).await;
    answer.assert_error(400, "SignatureDoesNotMatch");
    assert!(
        answer.message().contains("is:POST&%2F&"),
        "{}",
        answer.message()
    );

    // A parameter changed after signing.
    let call = Call::vnc("cn-hangzhou", LINUX);
    let tampered = call.query().replace(LINUX, WINDOWS);
    call.send_raw(&sim, &tampered)
        .await
        .assert_error(400, "SignatureDoesNotMatch");
    sim.shutdown().await;
}

#[tokio::test]
async fn unknown_access_key_is_not_found() {
    let sim = demo().await;
    Call::vnc("cn-hangzhou", LINUX)
        .key("no-such-key", SIM_KEY_SECRET)
        .refused(&sim, 404, "InvalidAccessKeyId.NotFound")
        .await;
    sim.shutdown().await;
}

#[tokio::test]
async fn timestamps_must_be_well_formed_and_within_fifteen_minutes() {
    let sim = demo().await;
    let now = jiff::Timestamp::now();
    let minutes = |m: i64| timestamp_at(now + jiff::SignedDuration::from_mins(m));
    for (ts, status, code) in [
        (minutes(-16), 400, "InvalidTimeStamp.Expired"),
        (minutes(16), 400, "InvalidTimeStamp.Expired"),
        (
            "2024-04-11T08:30:00.000Z".to_owned(),
            400,
            "InvalidTimeStamp.Format",
        ),
        (
            "2024-04-11 08:30:00".to_owned(),
            400,
            "InvalidTimeStamp.Format",
        ),
        (now.as_second().to_string(), 400, "InvalidTimeStamp.Format"),
    ] {
        Call::vnc("cn-hangzhou", LINUX)
            .set("Timestamp", &ts)
            .refused(&sim, status, code)
            .await;
    }
    for m in [-14, 14] {
        let answer = Call::vnc("cn-hangzhou", LINUX)
            .set("Timestamp", &minutes(m))
            .send(&sim)
            .await;
        assert_eq!(answer.status, 200, "{m} min: {}", answer.json);
    }
    sim.shutdown().await;
}

/// A URL call with `nonce`, answered once and refused when sent again; returned for more.
async fn used_once(sim: &SimHandle, nonce: &str) -> Call {
    let call = Call::vnc("cn-hangzhou", LINUX).set("SignatureNonce", nonce);
    assert_eq!(call.send(sim).await.status, 200);
    call.refused(sim, 400, "SignatureNonceUsed").await;
    call
}

#[tokio::test]
async fn a_nonce_is_single_use() {
    let sim = demo().await;
    used_once(&sim, "nonce-1").await;
    // Even for another action, and freshly signed.
    Call::new("DescribeInstances")
        .set("RegionId", "cn-hangzhou")
        .set("SignatureNonce", "nonce-1")
        .refused(&sim, 400, "SignatureNonceUsed")
        .await;
    sim.shutdown().await;
}

#[tokio::test]
async fn missing_parameters_are_named() {
    let sim = demo().await;
    let answer = Call::vnc("cn-hangzhou", LINUX)
        .without("InstanceId")
        .send(&sim)
        .await;
    answer.assert_error(400, "MissingParameter");
    assert_eq!(
        answer.message(),
        "The input parameter \"InstanceId\" that is mandatory for processing this request is not supplied."
    );
    for name in [
        "SignatureNonce",
        "Timestamp",
        "AccessKeyId",
        "Version",
        "Format",
        "Action",
    ] {
        let answer = Call::vnc("cn-hangzhou", LINUX)
            .without(name)
            .send(&sim)
            .await;
        answer.assert_error(400, "MissingParameter");
        assert!(
            answer.message().contains(&format!("\"{name}\"")),
            "{}",
            answer.message()
        );
    }
    let answer = Call::vnc("", LINUX).send(&sim).await;
    answer.assert_error(400, "MissingParameter");
    assert!(answer.message().contains("\"RegionId\""));
    // Signature itself.
    let call = Call::vnc("cn-hangzhou", LINUX);
    let unsigned: String = call.query().split("&Signature=").next().unwrap().to_owned();
    let answer = call.send_raw(&sim, &unsigned).await;
    answer.assert_error(400, "MissingParameter");
    assert!(answer.message().contains("\"Signature\""));
    sim.shutdown().await;
}

#[tokio::test]
async fn wrong_version_format_method_or_action_are_refused() {
    let sim = demo().await;
    let vnc = || Call::vnc("cn-hangzhou", LINUX);
    let unknown = "InvalidAction.NotFound";
    let refusals = [
        (vnc().set("Version", "2016-03-14"), 400, "InvalidVersion"),
        (vnc().set("Format", "XML"), 400, "InvalidParameter"),
        (
            vnc().set("SignatureMethod", "HMAC-SHA256"),
            400,
            "IncompleteSignature",
        ),
        (Call::new("RunInstances"), 404, unknown),
        // Action names are case-sensitive.
        (Call::new("describeinstancevncurl"), 404, unknown),
    ];
    assert_refusals(&sim, refusals).await;
    sim.shutdown().await;
}

#[tokio::test]
async fn get_form_bodies_and_literal_plus_in_the_query_are_understood() {
    let sim = demo().await;
    let answer = Call::vnc("cn-hangzhou", LINUX).get().send(&sim).await;
    assert_eq!(answer.status, 200, "{}", answer.json);

    // A raw '+' in the query is a plus sign (RFC 3986), signed as %2B.
    let call = Call::vnc("cn-hangzhou", LINUX).set("SignatureNonce", "a+b c");
    let raw_plus = call.query().replace("a%2Bb", "a+b");
    assert!(raw_plus.contains("a+b%20c"));
    let answer = call.send_raw(&sim, &raw_plus).await;
    assert_eq!(answer.status, 200, "{}", answer.json);

    // Parameters in a form body, where '+' is a space.
    let mut call = Call::vnc("cn-hangzhou", WINDOWS).set("SignatureNonce", "with space");
    call.form = Some("RegionId,InstanceId,SignatureNonce".into());
    assert!(call.body().unwrap().contains("with+space"));
    let answer = call.send(&sim).await;
    assert_eq!(answer.status, 200, "{}", answer.json);
    assert_eq!(sim.stats().by_instance[WINDOWS][VNC], 1);
    sim.shutdown().await;
}

#[tokio::test]
async fn the_thirty_first_url_in_a_minute_is_throttled_for_that_instance_only() {
    let config = SimConfig {
        reconnect_limit_per_minute: 30,
        ..SimConfig::demo()
    };
    let sim = ecs_sim::start(config).await;
    for n in 1..=30 {
        let answer = Call::vnc("cn-hangzhou", LINUX).send(&sim).await;
        assert_eq!(answer.status, 200, "call {n}: {}", answer.json);
    }
    let answer = Call::vnc("cn-hangzhou", LINUX).send(&sim).await;
    answer.assert_error(400, "Throttling.User");
    assert_eq!(
        answer.message(),
        "Request was denied due to user flow control."
    );
    assert_eq!(
        Call::vnc("cn-hangzhou", WINDOWS).send(&sim).await.status,
        200
    );

    let stats = sim.stats();
    assert_eq!(stats.count(VNC, "Success"), 31);
    assert_eq!(stats.count(VNC, "Throttling.User"), 1);
    assert_eq!(stats.by_instance[LINUX][VNC], 31);
    assert_eq!(stats.by_instance[WINDOWS][VNC], 1);

    sim.reset();
    assert_eq!(
        Call::vnc("cn-hangzhou", LINUX).send(&sim).await.status,
        200,
        "window cleared"
    );
    sim.shutdown().await;
}

#[tokio::test]
async fn error_faults_take_over_the_next_matching_answers() {
    let sim = demo().await;
    let vnc = |instance| Call::vnc("cn-hangzhou", instance);

    sim.inject(Fault::next(FaultKind::ServiceUnavailable).times(2));
    vnc(LINUX).refused(&sim, 503, "ServiceUnavailable").await;
    vnc(LINUX).refused(&sim, 503, "ServiceUnavailable").await;
    assert_eq!(vnc(LINUX).send(&sim).await.status, 200, "used up");

    sim.inject(Fault::next(FaultKind::Throttling));
    let answer = vnc(LINUX).send(&sim).await;
    answer.assert_error(400, "Throttling");
    assert_eq!(
        answer.message(),
        "Request was denied due to request throttling."
    );

    sim.inject(
        Fault::next(FaultKind::Error {
            status: 403,
            code: "Forbidden.RAM".into(),
            message: "User not authorized to operate on the specified resource.".into(),
        })
        .for_instance(WINDOWS),
    );
    assert_eq!(
        vnc(LINUX).send(&sim).await.status,
        200,
        "other instance untouched"
    );
    assert_eq!(
        Call::new("DescribeInstances")
            .set("RegionId", "cn-hangzhou")
            .send(&sim)
            .await
            .status,
        200,
        "a request not naming the instance is untouched"
    );
    vnc(WINDOWS).refused(&sim, 403, "Forbidden.RAM").await;

    sim.inject(Fault::next(FaultKind::InternalError).for_action("DescribeInstances"));
    assert_eq!(
        vnc(LINUX).send(&sim).await.status,
        200,
        "other action untouched"
    );
    Call::new("DescribeInstances")
        .set("RegionId", "cn-hangzhou")
        .refused(&sim, 500, "InternalError")
        .await;

    // A badly signed request never reaches a fault.
    sim.inject(Fault::next(FaultKind::InternalError));
    vnc(LINUX)
        .key(SIM_KEY_ID, "wrong")
        .refused(&sim, 400, "SignatureDoesNotMatch")
        .await;
    vnc(LINUX).refused(&sim, 500, "InternalError").await;

    let stats = sim.stats();
    assert_eq!(stats.count(VNC, "ServiceUnavailable"), 2);
    assert_eq!(stats.count(VNC, "Throttling"), 1);
    assert_eq!(stats.count(VNC, "Forbidden.RAM"), 1);
    assert_eq!(stats.count("DescribeInstances", "InternalError"), 1);
    assert_eq!(stats.count(VNC, "SignatureDoesNotMatch"), 1);
    sim.shutdown().await;
}

#[tokio::test]
async fn delay_malformed_oversized_and_drop_faults() {
    let sim = demo().await;
    let vnc = || Call::vnc("cn-hangzhou", LINUX);

    sim.inject(Fault::next(FaultKind::Delay(Duration::from_millis(400))));
    let started = Instant::now();
    let answer = vnc().send(&sim).await;
    assert!(started.elapsed() >= Duration::from_millis(400));
    assert_eq!(answer.status, 200, "a delayed answer is a normal one");

    sim.inject(Fault::next(FaultKind::Malformed));
    let answer = vnc().send(&sim).await;
    assert_eq!(answer.status, 200);
    assert!(serde_json::from_slice::<Value>(&answer.raw).is_err());

    sim.inject(Fault::next(FaultKind::Oversized));
    let answer = vnc().send(&sim).await;
    assert_eq!(answer.status, 200);
    assert!(answer.raw.len() >= 4 << 20, "{}", answer.raw.len());

    sim.inject(Fault::next(FaultKind::Drop));
    let call = vnc();
    let dropped = http::client()
        .post(format!("{}/?{}", sim.endpoint(), call.query()))
        .send()
        .await;
    assert!(dropped.is_err(), "the connection closes without an answer");
    assert_eq!(
        vnc().send(&sim).await.status,
        200,
        "the server keeps serving"
    );

    let stats = sim.stats();
    assert_eq!(stats.count(VNC, "Success"), 2);
    assert_eq!(stats.count(VNC, "Fault.Malformed"), 1);
    assert_eq!(stats.count(VNC, "Fault.Oversized"), 1);
    assert_eq!(stats.count(VNC, "Fault.Drop"), 1);
    assert_eq!(stats.total(VNC), 5);
    sim.shutdown().await;
}

#[tokio::test]
async fn stats_count_every_answer_and_reset_clears_state() {
    let sim = demo().await;
    let nonce_call = used_once(&sim, "reused").await;
    Call::vnc("cn-hangzhou", STOPPED).send(&sim).await;
    Call::new("DescribeInstances")
        .set("RegionId", "cn-hangzhou")
        .set("InstanceIds", &json!([LINUX]).to_string())
        .send(&sim)
        .await;
    sim.inject(Fault::next(FaultKind::Drop).times(5));

    let stats = sim.stats();
    assert_eq!(stats.count(VNC, "Success"), 1);
    assert_eq!(stats.count(VNC, "SignatureNonceUsed"), 1);
    assert_eq!(stats.count(VNC, "IncorrectInstanceStatus"), 1);
    assert_eq!(stats.count("DescribeInstances", "Success"), 1);
    assert_eq!(stats.total(VNC), 3);
    assert_eq!(stats.by_instance[LINUX][VNC], 2);
    assert_eq!(stats.by_instance[LINUX]["DescribeInstances"], 1);
    assert_eq!(stats.by_instance[STOPPED][VNC], 1);

    sim.reset();
    assert_eq!(sim.stats(), Default::default());
    let again = nonce_call.send(&sim).await;
    assert_eq!(
        again.status, 200,
        "nonces and faults forgotten: {}",
        again.json
    );
    sim.shutdown().await;
}

/// ecs-sim's admin API (`/_sim/...`): POSTs a body to a path, GETs a path.
struct Admin {
    base: String,
    client: reqwest::Client,
}

impl Admin {
    fn of(sim: &SimHandle) -> Admin {
        let base = format!("{}/_sim", sim.endpoint());
        Admin {
            base,
            client: http::client(),
        }
    }

    async fn post(&self, path: &str, body: &'static str) -> reqwest::Response {
        let url = format!("{}/{path}", self.base);
        self.client.post(url).body(body).send().await.unwrap()
    }

    async fn get(&self, path: &str) -> reqwest::Response {
        let url = format!("{}/{path}", self.base);
        self.client.get(url).send().await.unwrap()
    }

    async fn stats(&self) -> Value {
        json_body(self.get("stats").await).await
    }
}

#[tokio::test]
async fn admin_api_over_http() {
    let sim = demo().await;
    let admin = Admin::of(&sim);
    let vnc = || Call::vnc("cn-hangzhou", LINUX);

    let injected = admin
        .post(
            "faults",
            r#"{"kind":"error","status":400,"code":"X.Y","message":"made up","action":"DescribeInstanceVncUrl","count":2}"#,
        )
        .await;
    assert_eq!(injected.status(), 200);
    for _ in 0..2 {
        vnc().refused(&sim, 400, "X.Y").await;
    }
    for bad in [
        r#"{"kind":"explode"}"#,
        r#"{"kind":"error","status":42,"code":"X","message":"Y"}"#,
    ] {
        assert_eq!(admin.post("faults", bad).await.status(), 400, "{bad}");
    }

    let delayed = admin.post("faults", r#"{"kind":"delay","ms":300}"#).await;
    let echo = json_body(delayed).await;
    assert_eq!(echo, json!({"kind": "delay", "ms": 300, "count": 1}));
    let started = Instant::now();
    assert_eq!(vnc().send(&sim).await.status, 200);
    assert!(started.elapsed() >= Duration::from_millis(300));

    let status_of = |instance: &str| format!("instances/{instance}/status");
    let stopped = admin
        .post(&status_of(LINUX), r#"{"status":"Stopped"}"#)
        .await;
    assert_eq!(stopped.status(), 200);
    vnc().refused(&sim, 403, "IncorrectInstanceStatus").await;
    for (instance, body, status) in [
        ("i-nope", r#"{"status":"Running"}"#, 404),
        (LINUX, r#"{"status":"Exploded"}"#, 400),
    ] {
        let answer = admin.post(&status_of(instance), body).await;
        assert_eq!(answer.status(), status, "{instance} {body}");
    }

    let stats = admin.stats().await;
    assert_eq!(stats["calls"][VNC]["X.Y"], 2);
    assert_eq!(stats["calls"][VNC]["Success"], 1);
    assert_eq!(stats["calls"][VNC]["IncorrectInstanceStatus"], 1);
    assert_eq!(stats["byInstance"][LINUX][VNC], 4);
    // The one success stamped its instance with the time of issue (the window runs from there).
    let issued = stats["lastVncUrlMs"][LINUX].as_i64().unwrap();
    let now = jiff::Timestamp::now().as_millisecond();
    assert!(issued <= now && issued > now - 60_000, "{issued} vs {now}");

    assert_eq!(admin.post("reset", "").await.status(), 200);
    assert_eq!(
        admin.stats().await,
        json!({"calls": {}, "byInstance": {}, "lastVncUrlMs": {}})
    );
    assert_eq!(admin.get("reset").await.status(), 405);
    assert_eq!(admin.get("nothing").await.status(), 404);
    sim.shutdown().await;
}

#[tokio::test]
async fn hostile_input_gets_error_json_and_the_server_survives() {
    let sim = demo().await;
    let client = http::client();
    let endpoint = sim.endpoint();

    let huge = client
        .post(format!("{endpoint}/"))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(vec![b'a'; 2 << 20])
        .send()
        .await
        .unwrap();
    let huge = Answer::read(huge).await;
    huge.assert_error(413, "RequestEntityTooLarge");

    for query in ["Action=%zz", "Action=%FF%FE", "=x", "Action=A&Action=B"] {
        let answer = Answer::read(
            client
                .post(format!("{endpoint}/?{query}"))
                .send()
                .await
                .unwrap(),
        )
        .await;
        answer.assert_error(400, "InvalidParameter");
    }
    let form_not_utf8 = client
        .post(format!("{endpoint}/"))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(vec![0xff, 0xfe, b'=', 0x80])
        .send()
        .await
        .unwrap();
    Answer::read(form_not_utf8)
        .await
        .assert_error(400, "InvalidParameter");

    let put = Answer::read(client.put(format!("{endpoint}/")).send().await.unwrap()).await;
    put.assert_error(405, "UnsupportedHTTPMethod");
    let elsewhere =
        Answer::read(client.post(format!("{endpoint}/ecs")).send().await.unwrap()).await;
    elsewhere.assert_error(404, "InvalidPath.NotFound");
    let empty = Answer::read(client.post(format!("{endpoint}/")).send().await.unwrap()).await;
    empty.assert_error(400, "MissingParameter");

    assert_eq!(sim.stats().count(sim::NO_ACTION, "InvalidParameter"), 4 + 1);
    assert_eq!(Call::vnc("cn-hangzhou", LINUX).send(&sim).await.status, 200);
    sim.shutdown().await;
}

#[tokio::test]
async fn custom_config_and_shutdown_releases_the_port() {
    let config = SimConfig {
        accounts: vec!["ak:sk".parse().unwrap()],
        instances: vec![SimInstance {
            instance_id: "i-custom".into(),
            region_id: "eu-central-1".into(),
            status: InstanceStatus::Running,
            os_type: "windows".into(),
        }],
        regions: vec![],
        reconnect_limit_per_minute: 1,
        vnc_proxy_host: "vnc.example.test".into(),
    };
    let sim = ecs_sim::start(config).await;
    let call = || Call::vnc("eu-central-1", "i-custom").key("ak", "sk");
    let answer = call().send(&sim).await;
    assert_eq!(answer.status, 200, "{}", answer.json);
    assert!(
        percent_decode(answer.json["VncUrl"].as_str().unwrap())
            .unwrap()
            .starts_with("wss://vnc.example.test/websockify/?s=")
    );
    call().refused(&sim, 400, "Throttling.User").await;

    let addr = sim.addr;
    sim.shutdown().await;
    assert!(tokio::net::TcpStream::connect(addr).await.is_err());

    let duplicate = SimConfig {
        accounts: vec!["ak:sk".parse().unwrap(), "ak:other".parse().unwrap()],
        ..SimConfig::default()
    };
    let err = sim::start(duplicate, loopback()).await.unwrap_err();
    assert_eq!(err.kind(), std::io::ErrorKind::InvalidInput);
}

#[tokio::test]
async fn dropping_the_handle_stops_the_server() {
    let sim = demo().await;
    let addr = sim.addr;
    drop(sim);
    let failure = || "still accepting after drop".to_owned();
    let refused = || async move { tokio::net::TcpStream::connect(addr).await.is_err() };
    let (cap, every) = (Duration::from_secs(5), Duration::from_millis(20));
    until(cap, every, failure, refused).await;
}

#[tokio::test]
async fn binary_prints_its_address_serves_and_exits_on_sigterm() {
    let mut child = SimProcess::start(&["--reconnect-limit-per-minute", "5"]).await;
    let endpoint = child.endpoint.clone();
    assert!(endpoint.starts_with("http://127.0.0.1:"), "{endpoint}");

    let answer = Call::vnc("cn-hangzhou", LINUX).send_to(&endpoint).await;
    assert_eq!(answer.status, 200, "{}", answer.json);
    assert!(answer.json["VncUrl"].is_string());

    assert!(signal(child.pid(), "TERM"));
    let failure = || "ecs-sim ignored SIGTERM".to_owned();
    let exited = || std::future::ready(child.try_wait());
    let (cap, every) = (Duration::from_secs(10), Duration::from_millis(20));
    let status = poll(cap, every, failure, exited).await;
    assert!(status.success(), "{status:?}");
}
