//! A scripted HTTP/1 server on 127.0.0.1: a script picks each answer from the request and how
//! many came before it, and every request is kept for the test to read. Stops (closing its
//! connections) on drop.

use std::collections::BTreeMap;
use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use ecs_vnc_operator::aliyun::Endpoint;
use ecs_vnc_operator::aliyun::signature::percent_decode;
use http_body_util::{BodyExt, Full};
use hyper::body::{Bytes, Incoming};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Request, Response};
use hyper_util::rt::TokioIo;
use tokio::net::TcpListener;
use tokio::task::{JoinHandle, JoinSet};

/// One request as the server saw it.
#[derive(Debug, Clone)]
pub struct Seen {
    pub method: String,
    pub path: String,
    pub query: Option<String>,
    pub headers: BTreeMap<String, String>,
    pub body: String,
}

impl Seen {
    async fn read(req: Request<Incoming>) -> Seen {
        let (parts, body) = req.into_parts();
        let body = body.collect().await.unwrap().to_bytes();
        let header = |v: &hyper::header::HeaderValue| String::from_utf8_lossy(v.as_bytes()).into();
        Seen {
            method: parts.method.to_string(),
            path: parts.uri.path().to_owned(),
            query: parts.uri.query().map(str::to_owned),
            headers: (parts.headers.iter())
                .map(|(k, v)| (k.as_str().to_owned(), header(v)))
                .collect(),
            body: String::from_utf8_lossy(&body).into_owned(),
        }
    }

    /// The body as an `application/x-www-form-urlencoded` form.
    pub fn form(&self) -> BTreeMap<String, String> {
        self.body
            .split('&')
            .filter(|p| !p.is_empty())
            .map(|pair| {
                let (k, v) = pair.split_once('=').unwrap();
                (percent_decode(k).unwrap(), percent_decode(v).unwrap())
            })
            .collect()
    }
}

/// What the server answers: status, a JSON body, and how long it waits first.
pub struct Reply {
    pub status: u16,
    pub body: Vec<u8>,
    pub delay: Duration,
}

/// `status` with `body`, at once.
pub fn reply(status: u16, body: impl Into<Vec<u8>>) -> Reply {
    Reply {
        status,
        body: body.into(),
        delay: Duration::ZERO,
    }
}

type Script = dyn Fn(&Seen, usize) -> Reply + Send + Sync;

pub struct Server {
    addr: SocketAddr,
    seen: Arc<Mutex<Vec<Seen>>>,
    task: JoinHandle<()>,
}

impl Server {
    pub async fn start(script: impl Fn(&Seen, usize) -> Reply + Send + Sync + 'static) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let seen: Arc<Mutex<Vec<Seen>>> = Arc::default();
        let script: Arc<Script> = Arc::new(script);
        let log = seen.clone();
        let task = tokio::spawn(async move {
            // Owned by this task: aborting it drops the set, which aborts every connection.
            let mut connections = JoinSet::new();
            loop {
                tokio::select! {
                    accepted = listener.accept() => {
                        let Ok((stream, _)) = accepted else {
                            tokio::time::sleep(Duration::from_millis(50)).await;
                            continue;
                        };
                        connections.spawn(serve(stream, log.clone(), script.clone()));
                    }
                    Some(_) = connections.join_next(), if !connections.is_empty() => {}
                }
            }
        });
        Self { addr, seen, task }
    }

    /// `http://127.0.0.1:PORT`.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    pub fn endpoint(&self) -> Endpoint {
        Endpoint::parse(&self.url()).unwrap()
    }

    /// Every request so far, in order.
    pub fn seen(&self) -> Vec<Seen> {
        self.seen.lock().unwrap().clone()
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// One connection: each request logged, then answered as the script says.
async fn serve(stream: tokio::net::TcpStream, log: Arc<Mutex<Vec<Seen>>>, script: Arc<Script>) {
    let service = service_fn(move |req: Request<Incoming>| {
        let (log, script) = (log.clone(), script.clone());
        async move {
            let seen = Seen::read(req).await;
            let n = {
                let mut log = log.lock().unwrap();
                log.push(seen.clone());
                log.len() - 1
            };
            let reply = script(&seen, n);
            tokio::time::sleep(reply.delay).await;
            let response = Response::builder()
                .status(reply.status)
                .header("content-type", "application/json")
                .body(Full::new(Bytes::from(reply.body)))
                .unwrap();
            Ok::<_, Infallible>(response)
        }
    });
    let _ = http1::Builder::new()
        .serve_connection(TokioIo::new(stream), service)
        .await;
}
