//! `ecs-sim`'s STS side (`AssumeRoleWithOIDC`) and instance metadata over real HTTP. Keys are
//! made with `openssl` exactly as scripts/local-cluster.sh makes the cluster's `pki/sa.key` and
//! `pki/sa.pub`; tokens are signed here with ring, like kube-apiserver signs ServiceAccount tokens.

mod support;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;
use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use ecs_vnc_operator::aliyun::signature::percent_encode;
use ecs_vnc_operator::sim::{
    self, Fault, FaultKind, KeylessConfig, MetadataRole, OidcProvider, SimConfig, SimHandle,
    SimRole,
};
use ring::rand::SystemRandom;
use ring::signature::{RSA_PKCS1_SHA256, RsaKeyPair, RsaPublicKeyComponents};
use serde_json::{Value, json};
use support::ecs_sim::{self, LINUX, REGION, VNC, WINDOWS, loopback};
use support::http::{self, json};
use support::rrsa::ISSUER;
use support::scratch::ScratchDir;
use support::sim_process::SimProcess;
use support::sim_requests::{Answer, Call, now_timestamp};

const PROVIDER: &str = "acs:ram::1234567890:oidc-provider/ack-rrsa-test";
const ROLE: &str = "acs:ram::1234567890:role/team-a";
const LIMITED_ROLE: &str = "acs:ram::1234567890:role/linux-only";
const SUBJECT: &str = "system:serviceaccount:team-a:opener";

/// One RSA key pair on disk, in the forms the sim reads and the form ring signs with.
struct KeyPair {
    spki_pem: PathBuf,
    pkcs1_pem: PathBuf,
    signer: RsaKeyPair,
}

struct Keys {
    cluster: KeyPair,
    stranger: KeyPair,
}

fn keys() -> &'static Keys {
    static KEYS: OnceLock<Keys> = OnceLock::new();
    KEYS.get_or_init(|| {
        // Under cargo's own scratch directory for tests, not the shared /tmp: the private keys
        // are throwaway, but they need not outlive the target directory elsewhere.
        let dir = std::path::Path::new(env!("CARGO_TARGET_TMPDIR"))
            .join(format!("sim-sts-keys-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        Keys {
            cluster: KeyPair::generate(&dir, "sa"),
            stranger: KeyPair::generate(&dir, "other"),
        }
    })
}

fn openssl(args: &[&str]) {
    let status = Command::new("openssl")
        .args(args)
        .stderr(std::process::Stdio::null())
        .status()
        .unwrap_or_else(|e| {
            panic!("cannot run openssl ({e}); install it with: apt-get install -y openssl")
        });
    assert!(status.success(), "openssl {args:?} failed");
}

impl KeyPair {
    fn generate(dir: &Path, name: &str) -> Self {
        let path = |ext: &str| dir.join(format!("{name}.{ext}"));
        let s = |p: &PathBuf| p.to_str().unwrap().to_owned();
        let (key, public, pkcs1, pkcs8) = (path("key"), path("pub"), path("rsa.pub"), path("pk8"));
        // The same two commands as scripts/local-cluster.sh.
        openssl(&["genrsa", "-out", &s(&key), "2048"]);
        openssl(&["rsa", "-in", &s(&key), "-pubout", "-out", &s(&public)]);
        openssl(&[
            "rsa",
            "-in",
            &s(&key),
            "-RSAPublicKey_out",
            "-out",
            &s(&pkcs1),
        ]);
        openssl(&[
            "pkcs8",
            "-topk8",
            "-nocrypt",
            "-in",
            &s(&key),
            "-outform",
            "DER",
            "-out",
            &s(&pkcs8),
        ]);
        let pem = std::fs::read_to_string(&public).unwrap();
        assert!(pem.starts_with("-----BEGIN PUBLIC KEY-----"), "{pem}");
        let signer = RsaKeyPair::from_pkcs8(&std::fs::read(&pkcs8).unwrap()).unwrap();
        KeyPair {
            spki_pem: public,
            pkcs1_pem: pkcs1,
            signer,
        }
    }

    /// `{"keys":[{"kty":"RSA","kid","n","e"}]}` for this key, written next to the PEM files.
    fn jwks(&self, kid: &str) -> PathBuf {
        let public: RsaPublicKeyComponents<Vec<u8>> = self.signer.public().into();
        let jwks = json!({"keys": [
            {"kty": "EC", "crv": "P-256", "x": "AA", "y": "AA"},
            {"kty": "RSA", "use": "sig", "alg": "RS256", "kid": kid,
             "n": URL_SAFE_NO_PAD.encode(&public.n), "e": URL_SAFE_NO_PAD.encode(&public.e)},
        ]});
        let path = self.spki_pem.with_extension(format!("{kid}.jwks.json"));
        std::fs::write(&path, jwks.to_string()).unwrap();
        path
    }

    fn sign(&self, header: &Value, claims: &Value) -> String {
        let signing_input = format!(
            "{}.{}",
            URL_SAFE_NO_PAD.encode(header.to_string()),
            URL_SAFE_NO_PAD.encode(claims.to_string())
        );
        let mut signature = vec![0; self.signer.public().modulus_len()];
        self.signer
            .sign(
                &RSA_PKCS1_SHA256,
                &SystemRandom::new(),
                signing_input.as_bytes(),
                &mut signature,
            )
            .unwrap();
        format!("{signing_input}.{}", URL_SAFE_NO_PAD.encode(signature))
    }
}

fn now() -> i64 {
    jiff::Timestamp::now().as_second()
}

/// The claims of a projected ServiceAccount token for `sts.aliyuncs.com`.
fn claims() -> Value {
    json!({
        "aud": ["sts.aliyuncs.com"],
        "exp": now() + 3600,
        "iat": now(),
        "nbf": now(),
        "iss": ISSUER,
        "sub": SUBJECT,
        "kubernetes.io": {"namespace": "team-a", "serviceaccount": {"name": "opener", "uid": "u"}},
    })
}

fn header() -> Value {
    json!({"alg": "RS256", "kid": "c2lt"})
}

fn token_with(claims: Value) -> String {
    keys().cluster.sign(&header(), &claims)
}

fn token() -> String {
    token_with(claims())
}

fn keyless_with(public_key_file: &Path) -> KeylessConfig {
    KeylessConfig {
        oidc: Some(OidcProvider {
            issuer: ISSUER.to_owned(),
            provider_arn: PROVIDER.to_owned(),
            public_key_file: public_key_file.to_owned(),
        }),
        roles: vec![
            SimRole {
                arn: ROLE.to_owned(),
                subjects: vec![SUBJECT.to_owned()],
                instances: None,
            },
            SimRole {
                arn: LIMITED_ROLE.to_owned(),
                subjects: vec![SUBJECT.to_owned()],
                instances: Some(vec![LINUX.to_owned()]),
            },
        ],
        metadata_roles: vec![
            MetadataRole {
                name: "EcsVncRole".to_owned(),
                instances: None,
            },
            MetadataRole {
                name: "LinuxOnly".to_owned(),
                instances: Some(vec![LINUX.to_owned()]),
            },
        ],
        ..KeylessConfig::default()
    }
}

fn keyless() -> KeylessConfig {
    keyless_with(&keys().cluster.spki_pem)
}

/// [`keyless`] with credentials (STS's and the metadata service's) that live two seconds.
fn short_lived() -> KeylessConfig {
    KeylessConfig {
        sts_lifetime_seconds: 2,
        ..keyless()
    }
}

async fn start(keyless: KeylessConfig) -> SimHandle {
    ecs_sim::with_keyless(keyless).await
}

/// An `AssumeRoleWithOIDC` request, parameters overridable.
struct Exchange {
    params: Vec<(String, String)>,
}

impl Exchange {
    fn new(token: &str) -> Self {
        let params = [
            ("Action", "AssumeRoleWithOIDC"),
            ("Version", "2015-04-01"),
            ("Format", "JSON"),
            ("Timestamp", &now_timestamp()),
            ("RoleArn", ROLE),
            ("OIDCProviderArn", PROVIDER),
            ("OIDCToken", token),
            ("RoleSessionName", "ecs-vnc-operator"),
        ]
        .into_iter()
        .map(|(n, v)| (n.to_owned(), v.to_owned()))
        .collect();
        Exchange { params }
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

    fn encoded(&self) -> String {
        self.params
            .iter()
            .map(|(n, v)| format!("{}={}", percent_encode(n), percent_encode(v)))
            .collect::<Vec<_>>()
            .join("&")
    }

    /// The SDK's way: everything in a form body.
    async fn send(&self, sim: &SimHandle) -> Answer {
        self.send_to(&sim.endpoint()).await
    }

    async fn send_to(&self, endpoint: &str) -> Answer {
        let response = http::client()
            .post(format!("{endpoint}/"))
            .header("content-type", "application/x-www-form-urlencoded")
            .body(self.encoded())
            .send()
            .await
            .unwrap();
        Answer::read(response).await
    }

    /// Sends it and asserts STS's error answer: this status and `Code`.
    async fn refused(&self, sim: &SimHandle, status: u16, code: &str) -> Answer {
        let answer = self.send(sim).await;
        answer.assert_error(status, code);
        answer
    }

    async fn send_in_query(&self, sim: &SimHandle) -> Answer {
        let response = http::client()
            .post(format!("{}/?{}", sim.endpoint(), self.encoded()))
            .send()
            .await
            .unwrap();
        Answer::read(response).await
    }
}

/// An exchange of the usual token that asks for credentials lasting `seconds`.
fn asking_for(seconds: &str) -> Exchange {
    Exchange::new(&token()).set("DurationSeconds", seconds)
}

/// Temporary credentials as a client holds them.
#[derive(Clone)]
struct Creds {
    id: String,
    secret: String,
    token: Option<String>,
}

impl Creds {
    fn from_json(credentials: &Value) -> Self {
        Creds {
            id: credentials["AccessKeyId"].as_str().unwrap().to_owned(),
            secret: credentials["AccessKeySecret"].as_str().unwrap().to_owned(),
            token: credentials["SecurityToken"].as_str().map(str::to_owned),
        }
    }

    /// A signed ECS call (POST, parameters in the query) with these credentials.
    async fn ecs(&self, sim: &SimHandle, action: &str, extra: &[(&str, &str)]) -> Answer {
        let mut call = Call::new(action)
            .key(&self.id, &self.secret)
            .set("RegionId", REGION);
        if let Some(token) = &self.token {
            call = call.set("SecurityToken", token);
        }
        for (name, value) in extra {
            call = call.set(name, value);
        }
        call.send(sim).await
    }

    async fn vnc(&self, sim: &SimHandle, instance: &str) -> Answer {
        self.ecs(sim, VNC, &[("InstanceId", instance)]).await
    }
}

async fn exchange(sim: &SimHandle, role: &str) -> Creds {
    let answer = Exchange::new(&token()).set("RoleArn", role).send(sim).await;
    assert_eq!(answer.status, 200, "{}", answer.json);
    Creds::from_json(&answer.json["Credentials"])
}

fn parse_time(text: &str) -> jiff::Timestamp {
    text.parse().unwrap()
}

#[tokio::test]
async fn a_service_account_token_becomes_sts_credentials_that_open_consoles() {
    let sim = start(keyless()).await;
    let answer = asking_for("3600").send(&sim).await;
    assert_eq!(answer.status, 200, "{}", answer.json);
    let body = &answer.json;
    assert_eq!(body["RequestId"].as_str().unwrap().len(), 36);
    assert_eq!(
        body["AssumedRoleUser"]["Arn"],
        "acs:ram::1234567890:assumed-role/team-a/ecs-vnc-operator"
    );
    assert!(
        body["AssumedRoleUser"]["AssumedRoleId"]
            .as_str()
            .unwrap()
            .ends_with(":ecs-vnc-operator")
    );
    assert_eq!(
        body["OIDCTokenInfo"],
        json!({"Subject": SUBJECT, "Issuer": ISSUER, "ClientIds": "sts.aliyuncs.com"})
    );
    let credentials = &body["Credentials"];
    assert!(
        credentials["AccessKeyId"]
            .as_str()
            .unwrap()
            .starts_with("STS.")
    );
    let expiration = credentials["Expiration"].as_str().unwrap();
    assert_eq!(expiration.len(), 20, "yyyy-MM-ddTHH:mm:ssZ: {expiration}");
    let left = parse_time(expiration).as_second() - now();
    assert!((3590..=3600).contains(&left), "{left}");

    let creds = Creds::from_json(credentials);
    let vnc = creds.vnc(&sim, LINUX).await;
    assert_eq!(vnc.status, 200, "{}", vnc.json);
    assert!(vnc.json["VncUrl"].is_string());
    let listed = creds
        .ecs(
            &sim,
            "DescribeInstances",
            &[("InstanceIds", &json!([WINDOWS]).to_string())],
        )
        .await;
    assert_eq!(listed.json["TotalCount"], 1, "{}", listed.json);

    // The token belongs to the key: without it, or with another, the key is refused.
    let without = Creds {
        token: None,
        ..creds.clone()
    };
    without
        .vnc(&sim, LINUX)
        .await
        .assert_error(400, "InvalidSecurityToken.Mismatch");
    let other = Creds {
        token: Some("CAISother".to_owned()),
        ..creds.clone()
    };
    other
        .vnc(&sim, LINUX)
        .await
        .assert_error(400, "InvalidSecurityToken.Mismatch");

    let stats = sim.stats();
    assert_eq!(stats.count("AssumeRoleWithOIDC", "Success"), 1);
    assert_eq!(stats.count("DescribeInstanceVncUrl", "Success"), 1);
    let stats_url = format!("{}/_sim/stats", sim.endpoint());
    let admin = json(http::client().get(stats_url).send().await.unwrap()).await;
    assert_eq!(admin["calls"]["AssumeRoleWithOIDC"]["Success"], 1);
}

#[tokio::test]
async fn parameters_are_read_from_the_query_string_too() {
    let sim = start(keyless()).await;
    let answer = Exchange::new(&token()).send_in_query(&sim).await;
    assert_eq!(answer.status, 200, "{}", answer.json);
    let creds = Creds::from_json(&answer.json["Credentials"]);
    assert_eq!(creds.vnc(&sim, LINUX).await.status, 200);
}

#[tokio::test]
async fn issued_credentials_are_refused_once_expired() {
    let sim = start(short_lived()).await;
    // The configured lifetime caps a longer DurationSeconds.
    let answer = asking_for("3600").send(&sim).await;
    assert_eq!(answer.status, 200, "{}", answer.json);
    let expiration = parse_time(answer.json["Credentials"]["Expiration"].as_str().unwrap());
    assert!(expiration.as_second() - now() <= 2);
    let creds = Creds::from_json(&answer.json["Credentials"]);
    assert_eq!(creds.vnc(&sim, LINUX).await.status, 200);

    let wait = expiration.as_millisecond() - jiff::Timestamp::now().as_millisecond() + 100;
    tokio::time::sleep(Duration::from_millis(wait.max(0) as u64)).await;
    let expired = creds.vnc(&sim, LINUX).await;
    expired.assert_error(400, "InvalidSecurityToken.Expired");
    assert_eq!(expired.json["HostId"], "ecs.aliyuncs.com");
    assert_eq!(
        sim.stats()
            .count("DescribeInstanceVncUrl", "InvalidSecurityToken.Expired"),
        1
    );

    // A fresh exchange works again.
    let renewed = exchange(&sim, ROLE).await;
    assert_ne!(renewed.id, creds.id);
    assert_eq!(renewed.vnc(&sim, LINUX).await.status, 200);
}

#[tokio::test]
async fn a_shorter_duration_is_granted_as_asked() {
    let sim = start(keyless()).await;
    let answer = asking_for("900").send(&sim).await;
    let expiration = parse_time(answer.json["Credentials"]["Expiration"].as_str().unwrap());
    assert!((890..=900).contains(&(expiration.as_second() - now())));
    for bad in ["899", "43201", "ten", "-900"] {
        Exchange::new(&token())
            .set("DurationSeconds", bad)
            .refused(&sim, 400, "InvalidParameter.DurationSeconds")
            .await;
    }
}

/// [`claims`] with the fields of `patch` over them.
fn claims_with(patch: Value) -> Value {
    let mut c = claims();
    for (k, v) in patch.as_object().unwrap() {
        c[k] = v.clone();
    }
    c
}

/// [`claims`] without `field`.
fn claims_without(field: &str) -> Value {
    let mut c = claims();
    c.as_object_mut().unwrap().remove(field);
    c
}

/// A JWT with `header` and no signature.
fn unsigned(header: Value) -> String {
    format!(
        "{}.{}.",
        URL_SAFE_NO_PAD.encode(header.to_string()),
        URL_SAFE_NO_PAD.encode(claims().to_string())
    )
}

/// HS256 "signed" with the public key as the HMAC secret: the classic confusion attack.
fn hs256_with_the_public_key() -> String {
    let input = format!(
        "{}.{}",
        URL_SAFE_NO_PAD.encode(json!({"alg": "HS256"}).to_string()),
        URL_SAFE_NO_PAD.encode(claims().to_string())
    );
    let key = ring::hmac::Key::new(
        ring::hmac::HMAC_SHA256,
        &std::fs::read(&keys().cluster.spki_pem).unwrap(),
    );
    let tag = ring::hmac::sign(&key, input.as_bytes());
    format!("{input}.{}", URL_SAFE_NO_PAD.encode(tag.as_ref()))
}

/// `real` with its claims replaced after signing.
fn tampered(real: &str) -> String {
    let mut parts: Vec<String> = real.split('.').map(str::to_owned).collect();
    let mut c = claims();
    c["sub"] = json!("system:serviceaccount:kube-system:admin");
    parts[1] = URL_SAFE_NO_PAD.encode(c.to_string());
    parts.join(".")
}

const INVALID: &str = "AuthenticationFail.OIDCToken.Invalid";
const INVALID_SIGNATURE: &str = "AuthenticationFail.OIDCToken.InvalidSignature";

/// Tokens STS refuses, what is wrong with each, and the code it answers.
fn bad_tokens() -> Vec<(&'static str, String, &'static str)> {
    let real = token();
    let expired = json!({"exp": now() - 600, "iat": now() - 4200, "nbf": now() - 4200});
    let issuer = json!({"iss": "https://evil.example"});
    let audience = json!({"aud": ["https://kubernetes.default.svc"]});
    let untrusted = json!({"sub": "system:serviceaccount:team-b:opener"});
    vec![
        (
            "signed by another key",
            keys().stranger.sign(&header(), &claims()),
            INVALID_SIGNATURE,
        ),
        (
            "claims changed after signing",
            tampered(&real),
            INVALID_SIGNATURE,
        ),
        ("alg none", unsigned(json!({"alg": "none"})), INVALID),
        ("alg HS256", hs256_with_the_public_key(), INVALID),
        (
            "another issuer",
            token_with(claims_with(issuer)),
            "AuthenticationFail.OIDCToken.IssuerNotMatch",
        ),
        (
            "another audience",
            token_with(claims_with(audience)),
            "AuthenticationFail.OIDCToken.AudienceNotMatch",
        ),
        (
            "no audience",
            token_with(claims_without("aud")),
            "AuthenticationFail.OIDCToken.AudienceNotMatch",
        ),
        (
            "expired",
            token_with(claims_with(expired)),
            "AuthenticationFail.OIDCToken.Expired",
        ),
        (
            "not valid yet",
            token_with(claims_with(json!({"nbf": now() + 600}))),
            INVALID,
        ),
        ("no exp", token_with(claims_without("exp")), INVALID),
        (
            "two segments",
            real.rsplit_once('.').unwrap().0.to_owned(),
            INVALID,
        ),
        ("garbage", "not-a-jwt".to_owned(), INVALID),
        (
            "untrusted subject",
            token_with(claims_with(untrusted)),
            "AuthenticationFail.NoPermission",
        ),
    ]
}

#[tokio::test]
async fn bad_tokens_get_stss_authentication_codes() {
    let sim = start(keyless()).await;
    for (what, token, code) in &bad_tokens() {
        let answer = Exchange::new(token).send(&sim).await;
        assert_eq!(
            (answer.status, answer.json["Code"].as_str().unwrap_or("")),
            (401, *code),
            "{what}: {}",
            answer.json
        );
        answer.assert_error(401, code);
        assert_eq!(answer.json["HostId"], "sts.aliyuncs.com", "{what}");
    }
    // An audience string (not a list) is fine too.
    let single = token_with(claims_with(json!({"aud": "sts.aliyuncs.com"})));
    assert_eq!(Exchange::new(&single).send(&sim).await.status, 200);
    let stats = sim.stats();
    assert_eq!(stats.count("AssumeRoleWithOIDC", "Success"), 1);
    assert_eq!(stats.count("AssumeRoleWithOIDC", INVALID_SIGNATURE), 2);
}

#[tokio::test]
async fn unknown_providers_and_roles_and_malformed_requests_are_refused() {
    let sim = start(keyless()).await;
    let t = token();
    let unknown_role = Exchange::new(&t)
        .set("RoleArn", "acs:ram::1234567890:role/nope")
        .send(&sim)
        .await;
    unknown_role.assert_error(404, "EntityNotExist.Role");
    assert!(
        unknown_role.json["Message"]
            .as_str()
            .unwrap()
            .contains("role/nope")
    );
    for name in [
        "RoleArn",
        "OIDCProviderArn",
        "RoleSessionName",
        "Version",
        "Format",
        "Timestamp",
    ] {
        let answer = Exchange::new(&t).without(name).send(&sim).await;
        answer.assert_error(400, "MissingParameter");
        assert!(
            answer.json["Message"].as_str().unwrap().contains(name),
            "{}",
            answer.json
        );
    }
    let empty = Exchange::new(&t).set("OIDCToken", "").send(&sim).await;
    empty.assert_error(401, INVALID);
    assert_eq!(empty.json["Message"], "The OIDCToken can not empty.");
    let exchange = || Exchange::new(&t);
    let other_provider = "acs:ram::1234567890:oidc-provider/other";
    let refusals = [
        (
            exchange().set("OIDCProviderArn", other_provider),
            401,
            "AuthenticationFail.NoPermission",
        ),
        (
            exchange().set("RoleArn", "team-a"),
            400,
            "InvalidParameter.RoleArn",
        ),
        (exchange().without("OIDCToken"), 401, INVALID),
        (
            exchange().set("Version", "2014-05-26"),
            400,
            "InvalidVersion",
        ),
        (
            exchange().set("RoleSessionName", "has space"),
            400,
            "InvalidParameter.RoleSessionName",
        ),
        (
            exchange().set("Timestamp", "2020-01-01T00:00:00Z"),
            400,
            "InvalidTimeStamp.Expired",
        ),
        (Exchange::new(&"a".repeat(20_000)), 401, INVALID),
    ];
    for (exchange, status, code) in refusals {
        exchange.refused(&sim, status, code).await;
    }
    assert_eq!(sim.stats().count("AssumeRoleWithOIDC", "Success"), 0);
}

#[tokio::test]
async fn without_an_oidc_provider_every_exchange_is_refused() {
    let sim = start(KeylessConfig::default()).await;
    Exchange::new(&token())
        .refused(&sim, 401, "AuthenticationFail.NoPermission")
        .await;
}

#[tokio::test]
async fn a_role_limited_to_instances_is_forbidden_the_others() {
    let sim = start(keyless()).await;
    let creds = exchange(&sim, LIMITED_ROLE).await;
    assert_eq!(creds.vnc(&sim, LINUX).await.status, 200);
    creds
        .vnc(&sim, WINDOWS)
        .await
        .assert_error(403, "Forbidden.RAM");
    let ids = |list: &[&str]| json!(list).to_string();
    let own = creds
        .ecs(
            &sim,
            "DescribeInstances",
            &[("InstanceIds", &ids(&[LINUX]))],
        )
        .await;
    assert_eq!(own.status, 200, "{}", own.json);
    creds
        .ecs(
            &sim,
            "DescribeInstances",
            &[("InstanceIds", &ids(&[LINUX, WINDOWS]))],
        )
        .await
        .assert_error(403, "Forbidden.RAM");
    creds
        .ecs(&sim, "DescribeInstances", &[])
        .await
        .assert_error(403, "Forbidden.RAM");
    // The unlimited role opens both.
    let all = exchange(&sim, ROLE).await;
    assert_eq!(all.vnc(&sim, WINDOWS).await.status, 200);
    assert_eq!(
        sim.stats().count("DescribeInstanceVncUrl", "Forbidden.RAM"),
        1
    );
}

#[tokio::test]
async fn pkcs1_pem_and_jwks_key_files_verify_the_same_tokens() {
    let cluster = &keys().cluster;
    for file in [cluster.pkcs1_pem.clone(), cluster.jwks("c2lt")] {
        let sim = start(keyless_with(&file)).await;
        let answer = Exchange::new(&token()).send(&sim).await;
        assert_eq!(answer.status, 200, "{}: {}", file.display(), answer.json);
        sim.shutdown().await;
    }
    // A JWKS whose only RSA key has another kid does not verify a token naming "c2lt".
    let sim = start(keyless_with(&cluster.jwks("another"))).await;
    Exchange::new(&token())
        .refused(&sim, 401, "AuthenticationFail.OIDCToken.InvalidSignature")
        .await;
}

#[tokio::test]
async fn unusable_key_files_stop_the_start() {
    let dir = ScratchDir::new("sim-sts-bad");
    let private = dir.join("sa.key");
    openssl(&["genrsa", "-out", private.to_str().unwrap(), "2048"]);
    let garbage = dir.join("garbage.pem");
    std::fs::write(
        &garbage,
        "-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----\n",
    )
    .unwrap();
    for (file, needle) in [
        (dir.join("missing.pub"), "missing.pub"),
        (private, "public key"),
        (garbage, "garbage.pem"),
    ] {
        let err = sim::start_with_keyless(SimConfig::demo(), keyless_with(&file), loopback())
            .await
            .unwrap_err();
        assert_eq!(err.kind(), std::io::ErrorKind::InvalidInput);
        assert!(err.to_string().contains(needle), "{err}");
    }
}

#[tokio::test]
async fn an_sts_fault_is_injected_only_when_named() {
    let sim = start(keyless()).await;
    sim.inject(Fault::next(FaultKind::InternalError));
    assert_eq!(
        Exchange::new(&token()).send(&sim).await.status,
        200,
        "catch-all fault left alone"
    );
    sim.inject(Fault::next(FaultKind::ServiceUnavailable).for_action("AssumeRoleWithOIDC"));
    let faulted = Exchange::new(&token()).send(&sim).await;
    faulted.assert_error(503, "ServiceUnavailable");
    assert_eq!(faulted.json["HostId"], "sts.aliyuncs.com");
    assert_eq!(Exchange::new(&token()).send(&sim).await.status, 200);
}

/// IMDSv2 against a sim's metadata endpoints.
struct Metadata {
    endpoint: String,
}

impl Metadata {
    fn of(sim: &SimHandle) -> Metadata {
        let endpoint = sim.endpoint();
        Metadata { endpoint }
    }

    /// `PUT /latest/api/token`, no header yet.
    fn token_request(&self) -> reqwest::RequestBuilder {
        http::client().put(format!("{}/latest/api/token", self.endpoint))
    }

    async fn token(&self, ttl: &str) -> reqwest::Response {
        self.token_request()
            .header("X-aliyun-ecs-metadata-token-ttl-seconds", ttl)
            .send()
            .await
            .unwrap()
    }

    async fn get(&self, path: &str, token: Option<&str>) -> reqwest::Response {
        let mut request = http::client().get(format!(
            "{}/latest/meta-data/ram/security-credentials/{path}",
            self.endpoint
        ));
        if let Some(token) = token {
            request = request.header("X-aliyun-ecs-metadata-token", token);
        }
        request.send().await.unwrap()
    }
}

#[tokio::test]
async fn instance_metadata_serves_role_credentials_with_imdsv2() {
    let sim = start(keyless()).await;
    let md = Metadata::of(&sim);
    let response = md.token("60").await;
    assert_eq!(response.status(), 200);
    let token = response.text().await.unwrap();
    assert!(token.len() >= 32, "{token}");

    assert_eq!(
        md.get("EcsVncRole", None).await.status(),
        401,
        "IMDSv2 only"
    );
    assert_eq!(md.get("EcsVncRole", Some("wrong")).await.status(), 401);
    assert_eq!(md.get("NoSuchRole", Some(&token)).await.status(), 404);
    let names = md.get("", Some(&token)).await.text().await.unwrap();
    assert_eq!(names, "EcsVncRole\nLinuxOnly");

    let credentials: Value = json(md.get("EcsVncRole", Some(&token)).await).await;
    assert_eq!(credentials["Code"], "Success");
    for field in [
        "AccessKeyId",
        "AccessKeySecret",
        "SecurityToken",
        "Expiration",
        "LastUpdated",
    ] {
        assert!(credentials[field].is_string(), "{field}: {credentials}");
    }
    let left = parse_time(credentials["Expiration"].as_str().unwrap()).as_second() - now();
    assert!((3590..=3600).contains(&left), "{left}");
    let again: Value = json(md.get("EcsVncRole", Some(&token)).await).await;
    assert_eq!(
        again["AccessKeyId"], credentials["AccessKeyId"],
        "served until half used"
    );
    let creds = Creds::from_json(&credentials);
    assert_eq!(creds.vnc(&sim, WINDOWS).await.status, 200);

    let limited: Value = json(md.get("LinuxOnly", Some(&token)).await).await;
    Creds::from_json(&limited)
        .vnc(&sim, WINDOWS)
        .await
        .assert_error(403, "Forbidden.RAM");

    for ttl in ["0", "21601", "x"] {
        assert_eq!(md.token(ttl).await.status(), 400, "ttl {ttl}");
    }
    let no_ttl = md.token_request().send().await.unwrap();
    assert_eq!(no_ttl.status(), 400);
    let proxied = md
        .token_request()
        .header("X-aliyun-ecs-metadata-token-ttl-seconds", "60")
        .header("X-Forwarded-For", "10.0.0.1")
        .send()
        .await
        .unwrap();
    assert_eq!(proxied.status(), 403);
    let stats = sim.stats();
    assert_eq!(stats.count("Metadata.Token", "Success"), 1);
    assert_eq!(
        stats.count("Metadata.SecurityCredentials", "Unauthorized"),
        2
    );
    assert_eq!(stats.count("Metadata.SecurityCredentials", "NotFound"), 1);
    assert_eq!(stats.count("Metadata.SecurityCredentials", "Success"), 4);
}

#[tokio::test]
async fn metadata_tokens_and_credentials_expire() {
    let sim = start(short_lived()).await;
    let md = Metadata::of(&sim);
    let token = md.token("1").await.text().await.unwrap();
    let credentials: Value = json(md.get("EcsVncRole", Some(&token)).await).await;
    let creds = Creds::from_json(&credentials);
    assert_eq!(creds.vnc(&sim, LINUX).await.status, 200);
    tokio::time::sleep(Duration::from_millis(2_100)).await;
    assert_eq!(
        md.get("EcsVncRole", Some(&token)).await.status(),
        401,
        "token expired"
    );
    creds
        .vnc(&sim, LINUX)
        .await
        .assert_error(400, "InvalidSecurityToken.Expired");
    let token = md.token("60").await.text().await.unwrap();
    let renewed: Value = json(md.get("EcsVncRole", Some(&token)).await).await;
    assert_ne!(renewed["AccessKeyId"], credentials["AccessKeyId"]);
}

#[tokio::test]
async fn the_binary_takes_the_keyless_flags() {
    let cluster = &keys().cluster;
    let child = SimProcess::start(&[
        "--oidc-provider-arn",
        PROVIDER,
        "--oidc-public-key",
        cluster.spki_pem.to_str().unwrap(),
        "--role",
        &format!("{LIMITED_ROLE}={SUBJECT},system:serviceaccount:x:y"),
        "--role-instances",
        &format!("{LIMITED_ROLE}={LINUX}"),
        "--sts-lifetime",
        "30s",
        "--metadata-role",
        "EcsVncRole",
    ])
    .await;
    let exchanged = Exchange::new(&token())
        .set("RoleArn", LIMITED_ROLE)
        .send_to(&child.endpoint)
        .await;
    let answer = exchanged.json;
    let expiration = parse_time(answer["Credentials"]["Expiration"].as_str().unwrap());
    assert!(
        (25..=30).contains(&(expiration.as_second() - now())),
        "{answer}"
    );
    let md = Metadata {
        endpoint: child.endpoint.clone(),
    };
    let token = md.token("60").await.text().await.unwrap();
    let names = md.get("", Some(&token)).await.text().await.unwrap();
    assert_eq!(names, "EcsVncRole");
}

#[test]
fn a_config_file_holds_the_keyless_part_next_to_the_cloud() {
    let dir = ScratchDir::new("sim-sts-config");
    let file = dir.join("sim.yaml");
    std::fs::write(
        &file,
        format!(
            "reconnectLimitPerMinute: 5\n\
             oidc:\n  issuer: {ISSUER}\n  providerArn: {PROVIDER}\n  publicKeyFile: /x/sa.pub\n\
             roles:\n- arn: {ROLE}\n  subjects: [\"{SUBJECT}\"]\n  instances: [{LINUX}]\n\
             stsLifetimeSeconds: 5\n\
             metadataRoles:\n- name: EcsVncRole\n"
        ),
    )
    .unwrap();
    let (config, keyless) = sim::load_config_file(&file).unwrap();
    assert_eq!(config.reconnect_limit_per_minute, 5);
    assert_eq!(keyless.sts_lifetime_seconds, 5);
    assert_eq!(
        keyless.roles[0].instances.as_deref(),
        Some(&[LINUX.to_owned()][..])
    );
    assert_eq!(keyless.metadata_roles[0].name, "EcsVncRole");
    assert_eq!(SimConfig::from_file(&file).unwrap(), config);

    std::fs::write(
        &file,
        "oidc:\n  issuer: x\n  providerArn: y\n  publicKeyFile: z\n",
    )
    .unwrap();
    let err = sim::load_config_file(&file).unwrap_err().to_string();
    assert!(err.contains("providerArn"), "{err}");
    std::fs::write(&file, "stsLifetime: 5\n").unwrap();
    assert!(
        sim::load_config_file(&file).is_err(),
        "unknown keys are refused"
    );
}
