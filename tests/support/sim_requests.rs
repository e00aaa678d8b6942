//! RPC requests to ecs-sim built and signed by hand with the shared signature module (so the
//! tests pin the protocol, not a client), and the answers as the tests read them.

use ecs_vnc_operator::aliyun::signature::{percent_encode, sign, string_to_sign};
use ecs_vnc_operator::sim::SimHandle;
use serde_json::Value;

use super::ecs_sim::{SIM_KEY_ID, SIM_KEY_SECRET, VNC};
use super::http;

/// `yyyy-MM-ddTHH:mm:ssZ`, ECS's `Timestamp`.
pub fn timestamp_at(t: jiff::Timestamp) -> String {
    t.strftime("%Y-%m-%dT%H:%M:%SZ").to_string()
}

pub fn now_timestamp() -> String {
    timestamp_at(jiff::Timestamp::now())
}

/// One hand-built RPC request: common parameters filled in (the demo AccessKey, a fresh nonce,
/// now), everything overridable.
#[derive(Clone)]
pub struct Call {
    pub method: reqwest::Method,
    params: Vec<(String, String)>,
    secret: String,
    /// Sign as if this method were used (to provoke a mismatch); defaults to `method`.
    pub sign_as: Option<&'static str>,
    /// Parameters moved into an `application/x-www-form-urlencoded` body (names, comma-separated).
    pub form: Option<String>,
}

impl Call {
    pub fn new(action: &str) -> Self {
        let params = [
            ("Action", action.to_owned()),
            ("Version", "2014-05-26".to_owned()),
            ("Format", "JSON".to_owned()),
            ("AccessKeyId", SIM_KEY_ID.to_owned()),
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
            secret: SIM_KEY_SECRET.to_owned(),
            sign_as: None,
            form: None,
        }
    }

    /// `DescribeInstanceVncUrl` for `instance` in `region`.
    pub fn vnc(region: &str, instance: &str) -> Self {
        Call::new(VNC)
            .set("RegionId", region)
            .set("InstanceId", instance)
    }

    pub fn set(mut self, name: &str, value: &str) -> Self {
        self.params.retain(|(n, _)| n != name);
        self.params.push((name.to_owned(), value.to_owned()));
        self
    }

    pub fn without(mut self, name: &str) -> Self {
        self.params.retain(|(n, _)| n != name);
        self
    }

    /// Signed with another AccessKey.
    pub fn key(self, id: &str, secret: &str) -> Self {
        let mut call = self.set("AccessKeyId", id);
        call.secret = secret.to_owned();
        call
    }

    pub fn get(mut self) -> Self {
        self.method = reqwest::Method::GET;
        self
    }

    pub fn server_string_to_sign(&self, method: &str) -> String {
        string_to_sign(
            method,
            self.params.iter().map(|(n, v)| (n.as_str(), v.as_str())),
        )
    }

    fn signature(&self) -> String {
        let method = self.sign_as.unwrap_or(self.method.as_str());
        sign(&self.secret, &self.server_string_to_sign(method))
    }

    fn form_names(&self) -> Vec<&str> {
        let form = self.form.as_deref();
        form.map(|f| f.split(',').collect()).unwrap_or_default()
    }

    /// The query string: every parameter not in the form body, and the signature.
    pub fn query(&self) -> String {
        let signature = self.signature();
        let form_names = self.form_names();
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
    pub fn body(&self) -> Option<String> {
        self.form.as_ref()?;
        let names = self.form_names();
        let pairs: Vec<String> = self
            .params
            .iter()
            .filter(|(n, _)| names.contains(&n.as_str()))
            .map(|(n, v)| {
                let value = percent_encode(v).replace("%20", "+");
                format!("{}={value}", percent_encode(n))
            })
            .collect();
        Some(pairs.join("&"))
    }

    pub async fn send(&self, sim: &SimHandle) -> Answer {
        self.send_to(&sim.endpoint()).await
    }

    /// Sends it and asserts ECS's error answer: this status and `Code` (see
    /// [`Answer::assert_error`]).
    #[track_caller]
    pub fn refused<'a>(
        &'a self,
        sim: &'a SimHandle,
        status: u16,
        code: &'a str,
    ) -> impl std::future::Future<Output = Answer> + 'a {
        let caller = std::panic::Location::caller();
        async move {
            let answer = self.send(sim).await;
            let got = (answer.status, answer.code());
            assert_eq!(
                got,
                (status, code),
                "{} (asserted at {caller})",
                answer.json
            );
            answer.assert_error(status, code);
            answer
        }
    }

    /// To an ecs-sim at `endpoint` (`http://HOST:PORT`).
    pub async fn send_to(&self, endpoint: &str) -> Answer {
        self.send_raw_to(endpoint, &self.query()).await
    }

    /// With `query` instead of the one [`Call::query`] builds (to tamper with it).
    pub async fn send_raw(&self, sim: &SimHandle, query: &str) -> Answer {
        self.send_raw_to(&sim.endpoint(), query).await
    }

    async fn send_raw_to(&self, endpoint: &str, query: &str) -> Answer {
        let url = format!("{endpoint}/?{query}");
        let mut request = http::client().request(self.method.clone(), url);
        if let Some(body) = self.body() {
            request = request
                .header("content-type", "application/x-www-form-urlencoded")
                .body(body);
        }
        let response = request.send().await.expect("request");
        Answer::read(response).await
    }
}

/// An answer of ecs-sim: its status, its body as sent, and the body as JSON (`Null` if not).
#[derive(Debug)]
pub struct Answer {
    pub status: u16,
    pub raw: Vec<u8>,
    pub json: Value,
}

impl Answer {
    pub async fn read(response: reqwest::Response) -> Self {
        let status = response.status().as_u16();
        let raw = response.bytes().await.expect("body").to_vec();
        let json = serde_json::from_slice(&raw).unwrap_or(Value::Null);
        Answer { status, raw, json }
    }

    pub fn code(&self) -> &str {
        self.json["Code"].as_str().unwrap_or("<no Code>")
    }

    pub fn message(&self) -> &str {
        self.json["Message"].as_str().unwrap_or("<no Message>")
    }

    /// This status and `Code`, and every field of ECS's error shape.
    #[track_caller]
    pub fn assert_error(&self, status: u16, code: &str) {
        assert_eq!((self.status, self.code()), (status, code), "{}", self.json);
        for field in ["RequestId", "HostId", "Code", "Message", "Recommend"] {
            assert!(self.json[field].is_string(), "{field} in {}", self.json);
        }
    }
}

/// Sends each call and asserts ECS's error answer for it: (call, status, `Code`).
pub async fn assert_refusals(
    sim: &SimHandle,
    refusals: impl IntoIterator<Item = (Call, u16, &'static str)>,
) {
    for (call, status, code) in refusals {
        call.refused(sim, status, code).await;
    }
}

/// A RequestId as ECS writes it: an uppercase UUID.
pub fn assert_request_id(id: &str) {
    assert_eq!(id.len(), 36, "{id}");
    assert_eq!(id, id.to_ascii_uppercase(), "{id}");
    uuid::Uuid::parse_str(id).unwrap();
}
