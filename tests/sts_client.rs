//! The STS client, the instance-metadata source and the operator's credential chain over real
//! HTTP, against a small scripted server on 127.0.0.1: the exact requests the contract asks for,
//! each class of answer, and renewal over short lifetimes.

mod support;

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use ecs_vnc_operator::aliyun::provider::{
    ENV_ECS_METADATA, ENV_IMDSV1_DISABLED, ENV_METADATA_ENDPOINT, ENV_OIDC_PROVIDER_ARN,
    ENV_OIDC_TOKEN_FILE, ENV_ROLE_ARN, ENV_ROLE_SESSION_NAME,
};
use ecs_vnc_operator::aliyun::{
    AssumeRoleWithOidc, ENV_ACCESS_KEY_ID, ENV_ACCESS_KEY_SECRET, Endpoint, OperatorCredentials,
    ProviderOptions, RenewBackoff, RetryPolicy, StsClient, StsError, StsOptions,
};
use jiff::{SignedDuration, Timestamp};
use support::ports::{assert_connection_refused, closed_endpoint};
use support::scripted_server::{Reply, Server, reply};
use support::sim_requests::timestamp_at;

const ROLE: &str = "acs:ram::1234567890123456:role/vnc-opener";
const PROVIDER: &str = "acs:ram::1234567890123456:oidc-provider/ack-rrsa-c0ffee";
const TOKEN: &str = "eyJhbGciOiJSUzI1NiIsImtpZCI6InRlc3QifQ.eyJzdWIiOiJzeXN0ZW06c2VydmljZWFjY291bnQ6b3BzOm9wZXJhdG9yIn0.c2lnbmF0dXJlLW9mLXRoZS10b2tlbg";
const SIGNATURE_PART: &str = "c2lnbmF0dXJlLW9mLXRoZS10b2tlbg";
const METADATA_TOKEN: &str = "imds-session-token-AQAEAB";
const INSTANCE_ROLE: &str = "EcsVncOperatorRole";

fn expiration_in(secs: i64) -> String {
    let at = Timestamp::now()
        .checked_add(SignedDuration::from_secs(secs))
        .unwrap();
    timestamp_at(at)
}

fn sts_success(n: usize, expiration: &str) -> Vec<u8> {
    serde_json::json!({
        "RequestId": format!("3D57EAD2-8723-1F26-B69C-F8707D8B565{n}"),
        "AssumedRoleUser": {
            "Arn": "acs:ram::1234567890123456:role/vnc-opener/ecs-vnc-operator",
            "AssumedRoleId": "33157794895460****:ecs-vnc-operator"
        },
        "OIDCTokenInfo": {
            "Subject": "system:serviceaccount:ops:operator",
            "Issuer": "https://oidc-ack-cn-hangzhou.oss-cn-hangzhou.aliyuncs.com/c0ffee",
            "ClientIds": "sts.aliyuncs.com"
        },
        "Credentials": {
            "AccessKeyId": format!("STS.id-{n}"),
            "AccessKeySecret": format!("sts-secret-{n}"),
            "SecurityToken": format!("CAIS-sts-token-{n}"),
            "Expiration": expiration,
        }
    })
    .to_string()
    .into_bytes()
}

fn sts_error(code: &str, message: &str) -> Vec<u8> {
    serde_json::json!({
        "RequestId": "ERR-REQUEST-ID-1",
        "HostId": "sts.aliyuncs.com",
        "Code": code,
        "Message": message,
        "Recommend": "https://api.aliyun.com/troubleshoot?q=x&product=Sts",
    })
    .to_string()
    .into_bytes()
}

fn fast_sts() -> StsClient {
    StsClient::new(fast_sts_options()).unwrap()
}

fn fast_sts_options() -> StsOptions {
    StsOptions {
        connect_timeout: Duration::from_millis(500),
        request_timeout: Duration::from_millis(800),
        retry: RetryPolicy {
            max_attempts: 3,
            base_delay: Duration::from_millis(5),
            max_delay: Duration::from_millis(20),
            deadline: Duration::from_secs(5),
        },
        ..StsOptions::default()
    }
}

fn request() -> AssumeRoleWithOidc {
    AssumeRoleWithOidc::new(ROLE, PROVIDER, TOKEN, "ecs-vnc-operator-test").unwrap()
}

/// Nothing shown to a person carries the OIDC token or any part of it.
fn assert_no_token(err: &StsError) {
    for shown in [err.to_string(), format!("{err:?}"), err.message()] {
        assert!(!shown.contains(SIGNATURE_PART), "{shown}");
        assert!(!shown.contains("eyJ"), "{shown}");
    }
}

#[tokio::test]
async fn the_exchange_is_one_unsigned_form_post_with_exactly_the_contract_parameters() {
    let expiration = expiration_in(3600);
    let server_ok = Server::start(move |_, n| reply(200, sts_success(n, &expiration))).await;

    let before = Timestamp::now();
    let got = fast_sts()
        .assume_role_with_oidc(&server_ok.endpoint(), &request())
        .await
        .unwrap();
    assert_eq!(got.credentials.access_key_id(), "STS.id-0");
    assert_eq!(got.credentials.access_key_secret(), "sts-secret-0");
    assert_eq!(got.credentials.security_token(), Some("CAIS-sts-token-0"));
    let lifetime = got.expiration.duration_since(before);
    assert!(
        lifetime > SignedDuration::from_secs(3590) && lifetime <= SignedDuration::from_secs(3600),
        "{lifetime:?}"
    );
    assert!(!format!("{got:?}").contains("sts-secret-0"));

    let seen = server_ok.seen();
    assert_eq!(seen.len(), 1);
    let req = &seen[0];
    assert_eq!(req.method, "POST");
    assert_eq!(req.path, "/");
    assert_eq!(req.query, None, "nothing in the query string");
    assert_eq!(
        req.headers.get("content-type").map(String::as_str),
        Some("application/x-www-form-urlencoded")
    );
    let form = req.form();
    let keys: Vec<&str> = form.keys().map(String::as_str).collect();
    assert_eq!(
        keys,
        [
            "Action",
            "Format",
            "OIDCProviderArn",
            "OIDCToken",
            "RoleArn",
            "RoleSessionName",
            "Timestamp",
            "Version"
        ]
    );
    assert_eq!(form["Action"], "AssumeRoleWithOIDC");
    assert_eq!(form["Version"], "2015-04-01");
    assert_eq!(form["Format"], "JSON");
    assert_eq!(form["RoleArn"], ROLE);
    assert_eq!(form["OIDCProviderArn"], PROVIDER);
    assert_eq!(form["OIDCToken"], TOKEN);
    assert_eq!(form["RoleSessionName"], "ecs-vnc-operator-test");
    let ts = &form["Timestamp"];
    assert_eq!(ts.len(), 20, "{ts}");
    assert!(ts.ends_with('Z') && ts.as_bytes()[10] == b'T', "{ts}");
    let sent: Timestamp = ts.parse().unwrap();
    assert!(sent.duration_since(before).abs() < SignedDuration::from_secs(5));
    for (name, value) in &req.headers {
        assert!(!value.contains(SIGNATURE_PART), "token in header {name}");
    }
    assert!(!req.path.contains("eyJ"));
}

#[tokio::test]
async fn duration_seconds_is_sent_only_when_asked_for() {
    let expiration = expiration_in(900);
    let server = Server::start(move |_, n| reply(200, sts_success(n, &expiration))).await;
    let req = request().with_duration_seconds(900).unwrap();
    fast_sts()
        .assume_role_with_oidc(&server.endpoint(), &req)
        .await
        .unwrap();
    assert_eq!(server.seen()[0].form()["DurationSeconds"], "900");
}

#[tokio::test]
async fn refusals_are_terminal_sent_once_and_never_echo_the_token() {
    for (status, code) in [
        (401, "AuthenticationFail.OIDCToken.Expired"),
        (401, "AuthenticationFail.OIDCToken.InvalidSignature"),
        (401, "AuthenticationFail.NoPermission"),
        (404, "EntityNotExist.Role"),
        (403, "AuthenticationFail.OIDCToken.IssuerNotMatch"),
        (400, "MissingParameter"),
        (400, "InvalidParameter.RoleArn"),
    ] {
        let message = format!("The token {TOKEN} was refused; part {SIGNATURE_PART}.");
        let server = Server::start(move |_, _| reply(status, sts_error(code, &message))).await;
        let err = fast_sts()
            .assume_role_with_oidc(&server.endpoint(), &request())
            .await
            .unwrap_err();
        assert_eq!(err.code(), code);
        // An expired token is worth another exchange with a fresh token (the caller's next
        // attempt reads or requests one), but never a resend of the same one.
        let expired = code == "AuthenticationFail.OIDCToken.Expired";
        assert_eq!(err.is_retryable(), expired, "{code}");
        assert_eq!(err.http_status(), Some(status));
        assert_eq!(err.request_id(), Some("ERR-REQUEST-ID-1"));
        assert!(!err.message().contains("ERR-REQUEST-ID-1"), "{err}");
        assert!(
            err.to_string()
                .starts_with(&format!("STS answered {code}: ")),
            "{err}"
        );
        assert_no_token(&err);
        assert_eq!(server.seen().len(), 1, "{code}: not retried");
    }
}

#[tokio::test]
async fn server_trouble_and_throttling_are_retried() {
    for (status, code) in [
        (500, "InternalError"),
        (503, "ServiceUnavailable"),
        (400, "Throttling.User"),
        (502, "Whatever"),
    ] {
        let expiration = expiration_in(3600);
        let server = Server::start(move |_, n| {
            if n == 0 {
                reply(status, sts_error(code, "try later"))
            } else {
                reply(200, sts_success(n, &expiration))
            }
        })
        .await;
        let got = fast_sts()
            .assume_role_with_oidc(&server.endpoint(), &request())
            .await
            .unwrap();
        assert_eq!(got.credentials.access_key_id(), "STS.id-1", "{code}");
        assert_eq!(server.seen().len(), 2);
    }

    let server = Server::start(|_, _| reply(503, sts_error("ServiceUnavailable", "down"))).await;
    let err = fast_sts()
        .assume_role_with_oidc(&server.endpoint(), &request())
        .await
        .unwrap_err();
    assert!(err.is_retryable());
    assert_eq!(server.seen().len(), 3, "attempts are bounded");
}

#[tokio::test]
async fn timeouts_and_refused_connections_are_retryable_errors() {
    let server = Server::start(|_, _| Reply {
        delay: Duration::from_secs(5),
        ..reply(200, "{}")
    })
    .await;
    let client = StsClient::new(StsOptions {
        retry: RetryPolicy::none(Duration::from_secs(5)),
        request_timeout: Duration::from_millis(200),
        ..fast_sts_options()
    })
    .unwrap();
    let err = client
        .assume_role_with_oidc(&server.endpoint(), &request())
        .await
        .unwrap_err();
    assert_eq!(err.code(), "Timeout");
    assert!(err.is_retryable());
    assert_no_token(&err);

    let closed = closed_endpoint();
    let endpoint = Endpoint::parse(&closed).unwrap();
    let err = client
        .assume_role_with_oidc(&endpoint, &request())
        .await
        .unwrap_err();
    let shown = err.to_string();
    assert_connection_refused(err.code(), err.is_retryable(), &shown, &closed);
}

#[tokio::test]
async fn oversized_malformed_and_incomplete_answers_are_refused() {
    let huge = format!(r#"{{"RequestId":"r","Pad":"{}"}}"#, "x".repeat(2 << 20));
    let no_token = serde_json::json!({
        "RequestId": "r",
        "Credentials": {"AccessKeyId": "STS.a", "AccessKeySecret": "s", "Expiration": expiration_in(3600)}
    })
    .to_string();
    let bad_expiration = serde_json::json!({
        "RequestId": "r",
        "Credentials": {"AccessKeyId": "STS.a", "AccessKeySecret": "s", "SecurityToken": "t", "Expiration": "soon"}
    })
    .to_string();
    let cases: Vec<(u16, String, &str, &str)> = vec![
        (200, huge, "ResponseTooLarge", "larger than 1048576 bytes"),
        (
            200,
            "<html>oops</html>".into(),
            "MalformedResponse",
            "not the expected JSON",
        ),
        (
            200,
            format!(r#"{{"Credentials":"{TOKEN}"}}"#),
            "MalformedResponse",
            "wrong type",
        ),
        (
            200,
            r#"{"RequestId":"r"}"#.into(),
            "MalformedResponse",
            "no Credentials",
        ),
        (
            200,
            no_token,
            "MalformedResponse",
            "no Credentials.SecurityToken",
        ),
        (
            200,
            bad_expiration,
            "MalformedResponse",
            "Credentials.Expiration is not an RFC 3339 time",
        ),
        (
            502,
            format!("<html>{TOKEN}</html>"),
            "MalformedResponse",
            "HTTP 502",
        ),
    ];
    let client = StsClient::new(StsOptions {
        retry: RetryPolicy::none(Duration::from_secs(5)),
        ..fast_sts_options()
    })
    .unwrap();
    for (status, body, code, needle) in cases {
        let server = Server::start(move |_, _| reply(status, body.clone())).await;
        let err = client
            .assume_role_with_oidc(&server.endpoint(), &request())
            .await
            .unwrap_err();
        assert_eq!(err.code(), code, "{err}");
        assert!(err.to_string().contains(needle), "{err}");
        assert!(err.to_string().contains("STS"), "{err}");
        assert!(err.to_string().len() < 600, "{}", err.to_string().len());
        assert_no_token(&err);
    }
}

/// A token file of its own for each test.
struct TokenFile(PathBuf);

impl TokenFile {
    fn new(content: &str) -> Self {
        let path = std::env::temp_dir().join(format!("ecs-vnc-sts-test-{}", uuid::Uuid::new_v4()));
        std::fs::write(&path, content).unwrap();
        Self(path)
    }

    fn path(&self) -> String {
        self.0.display().to_string()
    }

    fn write(&self, content: &str) {
        std::fs::write(&self.0, content).unwrap();
    }
}

impl Drop for TokenFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

fn lookup(
    pairs: Vec<(&'static str, String)>,
) -> impl Fn(&str) -> Option<Result<String, std::ffi::OsString>> {
    move |var| {
        pairs
            .iter()
            .find(|(k, _)| *k == var)
            .map(|(_, v)| Ok(v.clone()))
    }
}

fn options(sts: &Server) -> ProviderOptions {
    ProviderOptions {
        sts: fast_sts_options(),
        renew_backoff: RenewBackoff {
            base: Duration::from_millis(100),
            cap: Duration::from_millis(400),
        },
        ..ProviderOptions::new(sts.endpoint())
    }
}

/// One server that plays STS on `/` and the metadata service on `/latest/...` (as ecs-sim does),
/// issuing credentials that live `lifetime` seconds.
async fn sts_and_metadata(lifetime: i64) -> Server {
    Server::start(
        move |seen, n| match (seen.method.as_str(), seen.path.as_str()) {
            ("POST", "/") => reply(200, sts_success(n, &expiration_in(lifetime))),
            ("PUT", "/latest/api/token") => {
                let ttl = seen
                    .headers
                    .get("x-aliyun-ecs-metadata-token-ttl-seconds")
                    .and_then(|v| v.parse::<u32>().ok());
                match ttl {
                    Some(1..=21600) => reply(200, METADATA_TOKEN),
                    _ => reply(400, ""),
                }
            }
            ("GET", path) if path.starts_with("/latest/meta-data/ram/security-credentials/") => {
                if seen
                    .headers
                    .get("x-aliyun-ecs-metadata-token")
                    .map(String::as_str)
                    != Some(METADATA_TOKEN)
                {
                    return reply(401, "");
                }
                if !path.ends_with(&format!("/{INSTANCE_ROLE}")) {
                    return reply(404, "<html>404 Not Found</html>");
                }
                let body = serde_json::json!({
                    "AccessKeyId": format!("STS.imds-{n}"),
                    "AccessKeySecret": "imds-secret",
                    "SecurityToken": "imds-token",
                    "Expiration": expiration_in(lifetime),
                    "LastUpdated": expiration_in(0),
                    "Code": "Success",
                });
                reply(200, body.to_string())
            }
            _ => reply(404, ""),
        },
    )
    .await
}

fn rrsa_env(token: &TokenFile) -> Vec<(&'static str, String)> {
    vec![
        (ENV_OIDC_TOKEN_FILE, token.path()),
        (ENV_ROLE_ARN, ROLE.to_owned()),
        (ENV_OIDC_PROVIDER_ARN, PROVIDER.to_owned()),
    ]
}

#[tokio::test]
async fn the_chain_prefers_an_access_key_then_rrsa_then_the_instance_role() {
    let server = sts_and_metadata(3600).await;
    let token = TokenFile::new(&format!("{TOKEN}\n"));
    let metadata = vec![
        (ENV_ECS_METADATA, INSTANCE_ROLE.to_owned()),
        (ENV_METADATA_ENDPOINT, server.url()),
    ];

    let mut everything = rrsa_env(&token);
    everything.extend(metadata.clone());
    everything.extend([
        (ENV_ACCESS_KEY_ID, "LTAI5tOperatorKey".to_owned()),
        (ENV_ACCESS_KEY_SECRET, "operator-secret".to_owned()),
    ]);
    let chain = OperatorCredentials::from_lookup(lookup(everything), options(&server))
        .unwrap()
        .unwrap();
    assert_eq!(chain.describe(), "AccessKey LTAI**** from the environment");
    let c = chain.credentials().await.unwrap();
    assert_eq!(c.access_key_id(), "LTAI5tOperatorKey");
    assert!(server.seen().is_empty(), "an AccessKey needs no call");

    let mut rrsa_and_metadata = rrsa_env(&token);
    rrsa_and_metadata.extend(metadata.clone());
    rrsa_and_metadata.push((ENV_ROLE_SESSION_NAME, "vnc-operator@test".to_owned()));
    let chain = OperatorCredentials::from_lookup(lookup(rrsa_and_metadata), options(&server))
        .unwrap()
        .unwrap();
    assert_eq!(
        chain.describe(),
        format!("RRSA role {ROLE} (session vnc-operator@test)")
    );
    let c = chain.credentials().await.unwrap();
    assert_eq!(c.access_key_id(), "STS.id-0");
    assert_eq!(c.security_token(), Some("CAIS-sts-token-0"));
    let seen = server.seen();
    assert_eq!(seen.len(), 1);
    assert_eq!(
        (seen[0].method.as_str(), seen[0].path.as_str()),
        ("POST", "/")
    );
    assert_eq!(seen[0].form()["OIDCToken"], TOKEN, "trimmed");
    assert_eq!(seen[0].form()["RoleSessionName"], "vnc-operator@test");
    assert!(chain.expires_at().is_some());

    let chain = OperatorCredentials::from_lookup(lookup(metadata), options(&server))
        .unwrap()
        .unwrap();
    assert_eq!(
        chain.describe(),
        format!("ECS instance RAM role {INSTANCE_ROLE}")
    );
    let c = chain.credentials().await.unwrap();
    assert!(c.access_key_id().starts_with("STS.imds-"), "{c:?}");
    assert_eq!(c.security_token(), Some("imds-token"));
    let seen: Vec<(String, String)> = server
        .seen()
        .into_iter()
        .skip(1)
        .map(|s| (s.method, s.path))
        .collect();
    assert_eq!(
        seen,
        [
            ("PUT".to_owned(), "/latest/api/token".to_owned()),
            (
                "GET".to_owned(),
                format!("/latest/meta-data/ram/security-credentials/{INSTANCE_ROLE}")
            ),
        ]
    );

    assert!(
        OperatorCredentials::from_lookup(
            lookup(vec![(ENV_OIDC_PROVIDER_ARN, PROVIDER.to_owned())]),
            options(&server)
        )
        .unwrap()
        .is_none(),
        "the provider ARN alone serves keyless sessions, not the operator"
    );
}

#[tokio::test]
async fn rrsa_credentials_are_renewed_before_each_short_lifetime_ends_with_the_token_reread() {
    // Four-second credentials: renewed a second before they expire, so about every three
    // seconds; the token file changes in between, as the kubelet rotates it.
    let server = sts_and_metadata(4).await;
    let token = TokenFile::new(&format!("{TOKEN}0"));
    let chain = OperatorCredentials::from_lookup(lookup(rrsa_env(&token)), options(&server))
        .unwrap()
        .unwrap();
    let started = tokio::time::Instant::now();
    let mut ids = Vec::new();
    let mut round = 0;
    while started.elapsed() < Duration::from_millis(9500) {
        let c = chain.credentials().await.unwrap();
        let expires = chain.expires_at().unwrap();
        assert!(
            Timestamp::now() < expires,
            "never served expired credentials"
        );
        if ids.last() != Some(&c.access_key_id().to_owned()) {
            ids.push(c.access_key_id().to_owned());
            round += 1;
            token.write(&format!("{TOKEN}{round}"));
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let seen = server.seen();
    // 0 s, ~3 s, ~6 s, ~9 s (whole-second expirations make each lifetime 3 to 4 s).
    assert!(
        (3..=5).contains(&seen.len()),
        "{} exchanges: {ids:?}",
        seen.len()
    );
    assert_eq!(ids.len(), seen.len(), "each exchange served, none wasted");
    for (n, req) in seen.iter().enumerate() {
        assert_eq!(req.form()["OIDCToken"], format!("{TOKEN}{n}"), "re-read");
    }
}

#[tokio::test]
async fn concurrent_callers_share_one_exchange() {
    let expiration = expiration_in(3600);
    let server = Server::start(move |_, n| Reply {
        delay: Duration::from_millis(200),
        ..reply(200, sts_success(n, &expiration))
    })
    .await;
    let token = TokenFile::new(TOKEN);
    let chain = Arc::new(
        OperatorCredentials::from_lookup(lookup(rrsa_env(&token)), options(&server))
            .unwrap()
            .unwrap(),
    );
    let tasks: Vec<_> = (0..10)
        .map(|_| {
            let chain = chain.clone();
            tokio::spawn(async move { chain.credentials().await })
        })
        .collect();
    for task in tasks {
        assert_eq!(task.await.unwrap().unwrap().access_key_id(), "STS.id-0");
    }
    assert_eq!(server.seen().len(), 1);
}

#[tokio::test]
async fn a_failing_sts_is_not_asked_again_on_every_call() {
    let server =
        Server::start(|_, _| reply(404, sts_error("EntityNotExist.Role", "no role"))).await;
    let token = TokenFile::new(TOKEN);
    let chain = OperatorCredentials::from_lookup(lookup(rrsa_env(&token)), options(&server))
        .unwrap()
        .unwrap();
    for _ in 0..20 {
        let err = chain.credentials().await.unwrap_err();
        assert_eq!(err.code(), "EntityNotExist.Role");
    }
    assert_eq!(
        server.seen().len(),
        1,
        "the backoff holds further exchanges"
    );
}

#[tokio::test]
async fn a_token_file_that_vanishes_after_start_up_is_a_retryable_error() {
    let server = sts_and_metadata(3600).await;
    let token = TokenFile::new(TOKEN);
    let chain = OperatorCredentials::from_lookup(lookup(rrsa_env(&token)), options(&server))
        .unwrap()
        .unwrap();
    let path = token.path();
    drop(token);
    let err = chain.credentials().await.unwrap_err();
    assert_eq!(err.code(), "OIDCTokenFileUnreadable");
    assert!(err.is_retryable());
    assert!(err.message().contains(&path), "{err}");
    assert!(server.seen().is_empty());
}

#[tokio::test]
async fn start_up_errors_name_the_variable() {
    let server = sts_and_metadata(3600).await;
    let err = OperatorCredentials::from_lookup(
        lookup(vec![(ENV_ROLE_ARN, ROLE.to_owned())]),
        options(&server),
    )
    .unwrap_err();
    assert!(
        err.to_string().starts_with(
            "RRSA is on because ALIBABA_CLOUD_ROLE_ARN is set, but ALIBABA_CLOUD_OIDC_TOKEN_FILE is not set"
        ),
        "{err}"
    );
    let token = TokenFile::new(TOKEN);
    let mut env = rrsa_env(&token);
    env.retain(|(k, _)| *k != ENV_OIDC_PROVIDER_ARN);
    let err = OperatorCredentials::from_lookup(lookup(env), options(&server)).unwrap_err();
    assert!(
        err.to_string()
            .contains("ALIBABA_CLOUD_OIDC_PROVIDER_ARN is not set"),
        "{err}"
    );
    let empty = TokenFile::new("\n");
    let err =
        OperatorCredentials::from_lookup(lookup(rrsa_env(&empty)), options(&server)).unwrap_err();
    assert_eq!(
        err.to_string(),
        format!(
            "ALIBABA_CLOUD_OIDC_TOKEN_FILE names {}, which cannot be read: empty",
            empty.path()
        )
    );
}

#[tokio::test]
async fn the_instance_role_uses_imdsv2_and_names_an_unknown_role() {
    let server = sts_and_metadata(3600).await;
    let env = |role: &str| {
        lookup(vec![
            (ENV_ECS_METADATA, role.to_owned()),
            (ENV_METADATA_ENDPOINT, server.url()),
        ])
    };
    let chain = OperatorCredentials::from_lookup(env(INSTANCE_ROLE), options(&server))
        .unwrap()
        .unwrap();
    chain.credentials().await.unwrap();
    let seen = server.seen();
    let ttl: u32 = seen[0].headers["x-aliyun-ecs-metadata-token-ttl-seconds"]
        .parse()
        .unwrap();
    assert!((1..=21600).contains(&ttl));
    assert_eq!(
        seen[1].headers["x-aliyun-ecs-metadata-token"],
        METADATA_TOKEN
    );

    let chain = OperatorCredentials::from_lookup(env("NoSuchRole"), options(&server))
        .unwrap()
        .unwrap();
    let err = chain.credentials().await.unwrap_err();
    assert_eq!(err.code(), "InstanceRoleNotFound");
    assert!(!err.is_retryable());
    assert!(err.message().contains("NoSuchRole"), "{err}");
    assert!(
        err.to_string()
            .starts_with("the instance metadata service answered InstanceRoleNotFound"),
        "{err}"
    );
    assert!(!err.to_string().contains(METADATA_TOKEN));
}

#[tokio::test]
async fn without_an_imdsv2_token_imdsv1_is_tried_unless_disabled() {
    let server = Server::start(|seen, _| match seen.method.as_str() {
        "PUT" => reply(403, ""),
        _ => reply(
            200,
            serde_json::json!({
                "AccessKeyId": "STS.v1", "AccessKeySecret": "s", "SecurityToken": "t",
                "Expiration": expiration_in(3600), "LastUpdated": expiration_in(0), "Code": "Success",
            })
            .to_string(),
        ),
    })
    .await;
    let env = vec![
        (ENV_ECS_METADATA, INSTANCE_ROLE.to_owned()),
        (ENV_METADATA_ENDPOINT, server.url()),
    ];
    let chain = OperatorCredentials::from_lookup(lookup(env.clone()), options(&server))
        .unwrap()
        .unwrap();
    assert_eq!(chain.credentials().await.unwrap().access_key_id(), "STS.v1");
    let seen = server.seen();
    assert_eq!(seen.len(), 2);
    assert!(!seen[1].headers.contains_key("x-aliyun-ecs-metadata-token"));

    let mut strict = env;
    strict.push((ENV_IMDSV1_DISABLED, "true".to_owned()));
    let chain = OperatorCredentials::from_lookup(lookup(strict), options(&server))
        .unwrap()
        .unwrap();
    let err = chain.credentials().await.unwrap_err();
    assert_eq!(err.code(), "MetadataTokenRejected");
    assert_eq!(server.seen().len(), 3, "no GET without a token");
}
