//! `ecs-sim` over real HTTP on 127.0.0.1: requests are signed by hand with the shared signature
//! module, so these tests pin the protocol, not a client.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use ecs_vnc_operator::aliyun::signature::{percent_decode, percent_encode, sign, string_to_sign};
use ecs_vnc_operator::sim::{
    self, Fault, FaultKind, InstanceStatus, SimAccount, SimConfig, SimHandle, SimInstance,
};
use serde_json::{Value, json};

const LINUX: &str = "i-bp1hzoinajzkh91h1234";
const WINDOWS: &str = "i-bp1windows0000000001";
const STOPPED: &str = "i-bp1stopped000000001";
const STARTING: &str = "i-bp1starting00000001";
const KEY_ID: &str = "sim-access-key-id";
const SECRET: &str = "sim-access-key-secret";
const VNC: &str = "DescribeInstanceVncUrl";

fn loopback() -> SocketAddr {
    "127.0.0.1:0".parse().unwrap()
}

async fn demo() -> SimHandle {
    sim::start(SimConfig::demo(), loopback()).await.unwrap()
}

fn http() -> reqwest::Client {
    reqwest::Client::builder()
        .no_proxy()
        .timeout(Duration::from_secs(20))
        .build()
        .unwrap()
}

fn now_timestamp() -> String {
    timestamp_at(jiff::Timestamp::now())
}

fn timestamp_at(t: jiff::Timestamp) -> String {
    t.strftime("%Y-%m-%dT%H:%M:%SZ").to_string()
}

/// One hand-built RPC request: common parameters filled in, everything overridable.
#[derive(Clone)]
struct Call {
    method: reqwest::Method,
    params: Vec<(String, String)>,
    secret: String,
    /// Sign as if this method were used (to provoke a mismatch); defaults to `method`.
    sign_as: Option<&'static str>,
    /// Parameters moved into an `application/x-www-form-urlencoded` body.
    form: Option<String>,
}

impl Call {
    fn new(action: &str) -> Self {
        let params = [
            ("Action", action.to_owned()),
            ("Version", "2014-05-26".to_owned()),
            ("Format", "JSON".to_owned()),
            ("AccessKeyId", KEY_ID.to_owned()),
            ("SignatureMethod", "HMAC-SHA1".to_owned()),
            ("SignatureVersion", "1.0".to_owned()),
            ("SignatureNonce", uuid::Uuid::new_v4().to_string()),
            ("Timestamp", now_timestamp()),
        ]
        .into_iter()
        .map(|(n, v)| (n.to_owned(), v))
        .collect();
        Call {
            method: reqwest::Method::POST,
            params,
            secret: SECRET.to_owned(),
            sign_as: None,
            form: None,
        }
    }

    fn vnc(region: &str, instance: &str) -> Self {
        Call::new(VNC)
            .set("RegionId", region)
            .set("InstanceId", instance)
    }

    fn set(mut self, name: &str, value: &str) -> Self {
        self.params.retain(|(n, _)| n != name);
        self.params.push((name.to_owned(), value.to_owned()));
        self
    }

    fn without(mut self, name: &str) -> Self {
        self.params.retain(|(n, _)| n != name);
        self
    }

    fn key(self, id: &str, secret: &str) -> Self {
        let mut call = self.set("AccessKeyId", id);
        call.secret = secret.to_owned();
        call
    }

    fn get(mut self) -> Self {
        self.method = reqwest::Method::GET;
        self
    }

    fn server_string_to_sign(&self, method: &str) -> String {
        string_to_sign(
            method,
            self.params.iter().map(|(n, v)| (n.as_str(), v.as_str())),
        )
    }

    fn signature(&self) -> String {
        let method = self.sign_as.unwrap_or(self.method.as_str());
        sign(&self.secret, &self.server_string_to_sign(method))
    }

    fn query(&self) -> String {
        let signature = self.signature();
        let form_names: Vec<&str> = self
            .form
            .as_deref()
            .map(|f| f.split(',').collect())
            .unwrap_or_default();
        let mut pairs: Vec<String> = self
            .params
            .iter()
            .filter(|(n, _)| !form_names.contains(&n.as_str()))
            .map(|(n, v)| format!("{}={}", percent_encode(n), percent_encode(v)))
            .collect();
        pairs.push(format!("Signature={}", percent_encode(&signature)));
        pairs.join("&")
    }

    /// The form body: form encoding, so spaces become `+`.
    fn body(&self) -> Option<String> {
        let names: Vec<&str> = self.form.as_deref()?.split(',').collect();
        Some(
            self.params
                .iter()
                .filter(|(n, _)| names.contains(&n.as_str()))
                .map(|(n, v)| {
                    format!(
                        "{}={}",
                        percent_encode(n),
                        percent_encode(v).replace("%20", "+")
                    )
                })
                .collect::<Vec<_>>()
                .join("&"),
        )
    }

    async fn send(&self, sim: &SimHandle) -> Answer {
        self.send_raw(sim, &self.query()).await
    }

    async fn send_raw(&self, sim: &SimHandle, query: &str) -> Answer {
        let url = format!("{}/?{query}", sim.endpoint());
        let mut request = http().request(self.method.clone(), url);
        if let Some(body) = self.body() {
            request = request
                .header("content-type", "application/x-www-form-urlencoded")
                .body(body);
        }
        let response = request.send().await.expect("request");
        Answer::read(response).await
    }
}

#[derive(Debug)]
struct Answer {
    status: u16,
    raw: Vec<u8>,
    json: Value,
}

impl Answer {
    async fn read(response: reqwest::Response) -> Self {
        let status = response.status().as_u16();
        let raw = response.bytes().await.expect("body").to_vec();
        let json = serde_json::from_slice(&raw).unwrap_or(Value::Null);
        Answer { status, raw, json }
    }

    fn code(&self) -> &str {
        self.json["Code"].as_str().unwrap_or("<no Code>")
    }

    fn message(&self) -> &str {
        self.json["Message"].as_str().unwrap_or("<no Message>")
    }

    #[track_caller]
    fn assert_error(&self, status: u16, code: &str) {
        assert_eq!((self.status, self.code()), (status, code), "{}", self.json);
        for field in ["RequestId", "HostId", "Code", "Message", "Recommend"] {
            assert!(self.json[field].is_string(), "{field} in {}", self.json);
        }
    }
}

fn assert_request_id(id: &str) {
    assert_eq!(id.len(), 36, "{id}");
    assert_eq!(id, id.to_ascii_uppercase(), "{id}");
    uuid::Uuid::parse_str(id).unwrap();
}

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
    let answer = Call::new("DescribeInstances")
        .set("RegionId", "cn-hangzhou")
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

    let elsewhere = Call::new("DescribeInstances")
        .set("RegionId", "cn-shanghai")
        .set("InstanceIds", &ids)
        .send(&sim)
        .await;
    assert_eq!(elsewhere.status, 200);
    assert_eq!(elsewhere.json["TotalCount"], 0);

    let all = Call::new("DescribeInstances")
        .set("RegionId", "cn-hangzhou")
        .send(&sim)
        .await;
    assert_eq!(all.json["TotalCount"], 4);

    Call::new("DescribeInstances")
        .set("RegionId", "cn-hangzhou")
        .set("InstanceIds", LINUX)
        .send(&sim)
        .await
        .assert_error(400, "InvalidInstanceIds.Malformed");
    Call::new("DescribeInstances")
        .set("RegionId", "mars-north-1")
        .send(&sim)
        .await
        .assert_error(404, "InvalidRegionId.NotFound");
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
    let sim = sim::start(config, loopback()).await.unwrap();
    let sts = || Call::vnc("cn-hangzhou", LINUX).key("STS.sim", "sts-secret");

    let ok = sts().set("SecurityToken", "token-abc").send(&sim).await;
    assert_eq!(ok.status, 200, "{}", ok.json);
    sts()
        .send(&sim)
        .await
        .assert_error(400, "InvalidSecurityToken.Mismatch");
    sts()
        .set("SecurityToken", "token-xyz")
        .send(&sim)
        .await
        .assert_error(400, "InvalidSecurityToken.Mismatch");
    Call::vnc("cn-hangzhou", LINUX)
        .set("SecurityToken", "token-abc")
        .send(&sim)
        .await
        .assert_error(400, "InvalidSecurityToken.Malformed");
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
    let call = Call::vnc("cn-hangzhou", LINUX).key(KEY_ID, "wrong-secret");
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
        .key("no-such-key", SECRET)
        .send(&sim)
        .await
        .assert_error(404, "InvalidAccessKeyId.NotFound");
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
            .send(&sim)
            .await
            .assert_error(status, code);
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

#[tokio::test]
async fn a_nonce_is_single_use() {
    let sim = demo().await;
    let call = Call::vnc("cn-hangzhou", LINUX).set("SignatureNonce", "nonce-1");
    assert_eq!(call.send(&sim).await.status, 200);
    call.send(&sim)
        .await
        .assert_error(400, "SignatureNonceUsed");
    // Even for another action, and freshly signed.
    Call::new("DescribeInstances")
        .set("RegionId", "cn-hangzhou")
        .set("SignatureNonce", "nonce-1")
        .send(&sim)
        .await
        .assert_error(400, "SignatureNonceUsed");
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
    vnc()
        .set("Version", "2016-03-14")
        .send(&sim)
        .await
        .assert_error(400, "InvalidVersion");
    vnc()
        .set("Format", "XML")
        .send(&sim)
        .await
        .assert_error(400, "InvalidParameter");
    vnc()
        .set("SignatureMethod", "HMAC-SHA256")
        .send(&sim)
        .await
        .assert_error(400, "IncompleteSignature");
    Call::new("RunInstances")
        .send(&sim)
        .await
        .assert_error(404, "InvalidAction.NotFound");
    Call::new("describeinstancevncurl")
        .send(&sim)
        .await
        .assert_error(404, "InvalidAction.NotFound");
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
    let sim = sim::start(config, loopback()).await.unwrap();
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
    vnc(LINUX)
        .send(&sim)
        .await
        .assert_error(503, "ServiceUnavailable");
    vnc(LINUX)
        .send(&sim)
        .await
        .assert_error(503, "ServiceUnavailable");
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
    vnc(WINDOWS)
        .send(&sim)
        .await
        .assert_error(403, "Forbidden.RAM");

    sim.inject(Fault::next(FaultKind::InternalError).for_action("DescribeInstances"));
    assert_eq!(
        vnc(LINUX).send(&sim).await.status,
        200,
        "other action untouched"
    );
    Call::new("DescribeInstances")
        .set("RegionId", "cn-hangzhou")
        .send(&sim)
        .await
        .assert_error(500, "InternalError");

    // A badly signed request never reaches a fault.
    sim.inject(Fault::next(FaultKind::InternalError));
    vnc(LINUX)
        .key(KEY_ID, "wrong")
        .send(&sim)
        .await
        .assert_error(400, "SignatureDoesNotMatch");
    vnc(LINUX)
        .send(&sim)
        .await
        .assert_error(500, "InternalError");

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
    let dropped = http()
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
    let nonce_call = Call::vnc("cn-hangzhou", LINUX).set("SignatureNonce", "reused");
    assert_eq!(nonce_call.send(&sim).await.status, 200);
    nonce_call
        .send(&sim)
        .await
        .assert_error(400, "SignatureNonceUsed");
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

#[tokio::test]
async fn admin_api_over_http() {
    let sim = demo().await;
    let admin = |path: &str| format!("{}/_sim/{path}", sim.endpoint());
    let client = http();

    let injected = client
        .post(admin("faults"))
        .body(r#"{"kind":"error","status":400,"code":"X.Y","message":"made up","action":"DescribeInstanceVncUrl","count":2}"#)
        .send()
        .await
        .unwrap();
    assert_eq!(injected.status(), 200);
    Call::vnc("cn-hangzhou", LINUX)
        .send(&sim)
        .await
        .assert_error(400, "X.Y");
    Call::vnc("cn-hangzhou", LINUX)
        .send(&sim)
        .await
        .assert_error(400, "X.Y");

    let bad = client
        .post(admin("faults"))
        .body(r#"{"kind":"explode"}"#)
        .send()
        .await
        .unwrap();
    assert_eq!(bad.status(), 400);
    let bad_status = client
        .post(admin("faults"))
        .body(r#"{"kind":"error","status":42,"code":"X","message":"Y"}"#)
        .send()
        .await
        .unwrap();
    assert_eq!(bad_status.status(), 400);

    let delayed = client
        .post(admin("faults"))
        .body(r#"{"kind":"delay","ms":300}"#)
        .send()
        .await
        .unwrap();
    let echo: Value = serde_json::from_slice(&delayed.bytes().await.unwrap()).unwrap();
    assert_eq!(echo, json!({"kind": "delay", "ms": 300, "count": 1}));
    let started = Instant::now();
    assert_eq!(Call::vnc("cn-hangzhou", LINUX).send(&sim).await.status, 200);
    assert!(started.elapsed() >= Duration::from_millis(300));

    let stopped = client
        .post(admin(&format!("instances/{LINUX}/status")))
        .body(r#"{"status":"Stopped"}"#)
        .send()
        .await
        .unwrap();
    assert_eq!(stopped.status(), 200);
    Call::vnc("cn-hangzhou", LINUX)
        .send(&sim)
        .await
        .assert_error(403, "IncorrectInstanceStatus");
    let unknown = client
        .post(admin("instances/i-nope/status"))
        .body(r#"{"status":"Running"}"#)
        .send()
        .await
        .unwrap();
    assert_eq!(unknown.status(), 404);
    let bad_status = client
        .post(admin(&format!("instances/{LINUX}/status")))
        .body(r#"{"status":"Exploded"}"#)
        .send()
        .await
        .unwrap();
    assert_eq!(bad_status.status(), 400);

    let stats: Value = serde_json::from_slice(
        &client
            .get(admin("stats"))
            .send()
            .await
            .unwrap()
            .bytes()
            .await
            .unwrap(),
    )
    .unwrap();
    assert_eq!(stats["calls"][VNC]["X.Y"], 2);
    assert_eq!(stats["calls"][VNC]["Success"], 1);
    assert_eq!(stats["calls"][VNC]["IncorrectInstanceStatus"], 1);
    assert_eq!(stats["byInstance"][LINUX][VNC], 4);
    // The one success stamped its instance with the time of issue (the window runs from there).
    let issued = stats["lastVncUrlMs"][LINUX].as_i64().unwrap();
    let now = jiff::Timestamp::now().as_millisecond();
    assert!(issued <= now && issued > now - 60_000, "{issued} vs {now}");

    let reset = client.post(admin("reset")).send().await.unwrap();
    assert_eq!(reset.status(), 200);
    let stats: Value = serde_json::from_slice(
        &client
            .get(admin("stats"))
            .send()
            .await
            .unwrap()
            .bytes()
            .await
            .unwrap(),
    )
    .unwrap();
    assert_eq!(
        stats,
        json!({"calls": {}, "byInstance": {}, "lastVncUrlMs": {}})
    );

    assert_eq!(
        client.get(admin("reset")).send().await.unwrap().status(),
        405
    );
    assert_eq!(
        client.get(admin("nothing")).send().await.unwrap().status(),
        404
    );
    sim.shutdown().await;
}

#[tokio::test]
async fn hostile_input_gets_error_json_and_the_server_survives() {
    let sim = demo().await;
    let client = http();
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
    let sim = sim::start(config, loopback()).await.unwrap();
    let call = || Call::vnc("eu-central-1", "i-custom").key("ak", "sk");
    let answer = call().send(&sim).await;
    assert_eq!(answer.status, 200, "{}", answer.json);
    assert!(
        percent_decode(answer.json["VncUrl"].as_str().unwrap())
            .unwrap()
            .starts_with("wss://vnc.example.test/websockify/?s=")
    );
    call().send(&sim).await.assert_error(400, "Throttling.User");

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
    let deadline = Instant::now() + Duration::from_secs(5);
    while tokio::net::TcpStream::connect(addr).await.is_ok() {
        assert!(Instant::now() < deadline, "still accepting after drop");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Kills the child by PID on every path out of the test.
struct ChildGuard(std::process::Child);

impl Drop for ChildGuard {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[tokio::test]
async fn binary_prints_its_address_serves_and_exits_on_sigterm() {
    use std::io::BufRead;

    let child = std::process::Command::new(env!("CARGO_BIN_EXE_ecs-sim"))
        .args([
            "--listen",
            "127.0.0.1:0",
            "--reconnect-limit-per-minute",
            "5",
        ])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let mut child = ChildGuard(child);
    let stdout = child.0.stdout.take().unwrap();
    let line = tokio::task::spawn_blocking(move || {
        let mut line = String::new();
        std::io::BufReader::new(stdout)
            .read_line(&mut line)
            .map(|_| line)
    });
    let line = tokio::time::timeout(Duration::from_secs(30), line)
        .await
        .expect("first line in time")
        .unwrap()
        .unwrap();
    let endpoint = line
        .trim_end()
        .strip_prefix("ecs-sim listening on ")
        .unwrap_or_else(|| panic!("unexpected first line {line:?}"))
        .to_owned();
    assert!(endpoint.starts_with("http://127.0.0.1:"), "{endpoint}");

    let call = Call::vnc("cn-hangzhou", LINUX);
    let response = http()
        .post(format!("{endpoint}/?{}", call.query()))
        .send()
        .await
        .unwrap();
    let answer = Answer::read(response).await;
    assert_eq!(answer.status, 200, "{}", answer.json);
    assert!(answer.json["VncUrl"].is_string());

    let pid = child.0.id().to_string();
    let killed = std::process::Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .unwrap();
    assert!(killed.success());
    let deadline = Instant::now() + Duration::from_secs(10);
    let status = loop {
        if let Some(status) = child.0.try_wait().unwrap() {
            break status;
        }
        assert!(Instant::now() < deadline, "ecs-sim ignored SIGTERM");
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    assert!(status.success(), "{status:?}");
}
