//! A scripted API server for the plugin's unit tests: each step names the request expected next
//! (method and path) and the answer; the test gets back what was sent. Its request matching
//! (`next_request`, `respond`) also serves the reconcile fixture in `src/controller/tests/`.

use std::time::Duration;

use http::{Request, Response};
use kube::client::Body;
use serde_json::{Value, json};

use super::connect::Target;

pub type Handle = tower_test::mock::Handle<Request<Body>, Response<Body>>;
pub type Responder = tower_test::mock::SendResponse<Response<Body>>;

pub fn target(namespace: &str) -> (Target, Handle) {
    let (service, handle) = tower_test::mock::pair::<Request<Body>, Response<Body>>();
    let target = Target {
        client: kube::Client::new(service, namespace.to_owned()),
        namespace: namespace.to_owned(),
    };
    (target, handle)
}

pub fn sessions_path(namespace: &str) -> String {
    format!("/apis/ecsvnc.dev/v1alpha1/namespaces/{namespace}/vncsessions")
}

pub fn session_path(namespace: &str, name: &str) -> String {
    format!("{}/{name}", sessions_path(namespace))
}

/// A stored session in `team-a` with `resourceVersion` `rv` and the given status (`null`: none).
pub fn session_json(name: &str, rv: &str, status: Value) -> Value {
    let mut obj = json!({
        "apiVersion": "ecsvnc.dev/v1alpha1", "kind": "VncSession",
        "metadata": {"name": name, "namespace": "team-a", "uid": format!("uid-{name}"),
                     "resourceVersion": rv, "generation": 1,
                     "creationTimestamp": "2026-11-26T07:00:00Z"},
        "spec": {"regionId": "cn-hangzhou", "instanceId": "i-bp1hzoinajzkh91h1234"}
    });
    if !status.is_null() {
        obj["status"] = status;
    }
    obj
}

pub fn not_found(name: &str) -> Value {
    json!({"kind": "Status", "apiVersion": "v1", "status": "Failure", "reason": "NotFound",
           "code": 404, "message": format!("vncsessions.ecsvnc.dev \"{name}\" not found"),
           "details": {"name": name, "group": "ecsvnc.dev", "kind": "vncsessions"}})
}

enum Reply {
    Json(u16, Value),
    Text(u16, String),
    /// A watch answer: one JSON event per line, then the stream ends.
    Lines(Vec<Value>),
    /// Never answer (the client's own timeout must end the wait).
    Hang,
}

pub struct Step {
    method: &'static str,
    path: String,
    reply: Reply,
}

impl Step {
    pub fn new(method: &'static str, path: &str) -> Self {
        Self {
            method,
            path: path.to_owned(),
            reply: Reply::Json(200, Value::Null),
        }
    }

    pub fn json(mut self, code: u16, body: Value) -> Self {
        self.reply = Reply::Json(code, body);
        self
    }

    pub fn text(mut self, code: u16, body: &str) -> Self {
        self.reply = Reply::Text(code, body.to_owned());
        self
    }

    pub fn events(mut self, events: Vec<Value>) -> Self {
        self.reply = Reply::Lines(events);
        self
    }

    pub fn hang(mut self) -> Self {
        self.reply = Reply::Hang;
        self
    }
}

/// A request as the server saw it.
pub struct Seen {
    pub query: String,
    pub body: Value,
    pub content_type: String,
    /// Keeps an unanswered request open until the test is done with it.
    _held: Option<Responder>,
}

impl Seen {
    /// The decoded value of query parameter `key`.
    pub fn param(&self, key: &str) -> Option<String> {
        self.query.split('&').find_map(|pair| {
            let (k, v) = pair.split_once('=')?;
            (k == key).then(|| decode(v))
        })
    }
}

fn decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'%' if i + 2 < bytes.len() => {
                let hex = std::str::from_utf8(&bytes[i + 1..i + 3]).unwrap();
                out.push(u8::from_str_radix(hex, 16).unwrap());
                i += 3;
            }
            b'+' => {
                out.push(b' ');
                i += 1;
            }
            b => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8(out).unwrap()
}

/// A request as it came, not answered yet.
pub struct Arrived {
    pub query: String,
    pub content_type: String,
    /// The JSON body; `null` when there is none.
    pub body: Value,
    pub send: Responder,
}

/// Waits (5 s at most) for the next request, which must be `method` on `path`.
pub async fn next_request(handle: &mut Handle, method: &str, path: &str) -> Arrived {
    let (request, send) = tokio::time::timeout(Duration::from_secs(5), handle.next_request())
        .await
        .unwrap_or_else(|_| panic!("no request came for {method} {path}"))
        .expect("the client is gone");
    assert_eq!(request.method().as_str(), method, "method for {path}");
    assert_eq!(request.uri().path(), path);
    let query = request.uri().query().unwrap_or_default().to_owned();
    let content_type = request
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    let bytes = request.into_body().collect_bytes().await.unwrap();
    let body = if bytes.is_empty() {
        Value::Null
    } else {
        serde_json::from_slice(&bytes).unwrap()
    };
    Arrived {
        query,
        content_type,
        body,
        send,
    }
}

/// Answers a request with status `code` and `payload`.
pub fn respond(send: Responder, code: u16, payload: Vec<u8>) {
    send.send_response(
        Response::builder()
            .status(code)
            .body(Body::from(payload))
            .unwrap(),
    );
}

/// Serves `steps` in order; panics on a request that does not match, or one that never comes.
pub async fn serve(handle: &mut Handle, steps: Vec<Step>) -> Vec<Seen> {
    let mut seen = Vec::new();
    for step in steps {
        let Arrived {
            query,
            content_type,
            body,
            send,
        } = next_request(handle, step.method, &step.path).await;
        let (code, payload) = match step.reply {
            Reply::Json(code, value) => (code, serde_json::to_vec(&value).unwrap()),
            Reply::Text(code, text) => (code, text.into_bytes()),
            Reply::Lines(events) => {
                let mut lines = Vec::new();
                for event in events {
                    lines.extend(serde_json::to_vec(&event).unwrap());
                    lines.push(b'\n');
                }
                (200, lines)
            }
            Reply::Hang => {
                seen.push(Seen {
                    query,
                    body,
                    content_type,
                    _held: Some(send),
                });
                continue;
            }
        };
        respond(send, code, payload);
        seen.push(Seen {
            query,
            body,
            content_type,
            _held: None,
        });
    }
    seen
}
