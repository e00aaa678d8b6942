//! `/metrics`, `/healthz` and `/readyz` on `--metrics-addr`; `/healthz` and `/readyz` alone on
//! `--health-addr`, with connection slots of its own, so that clients of the metrics port (any
//! pod the NetworkPolicy admits) cannot delay the kubelet's probes.
//!
//! `/readyz` turns ready once the process is either serving (its watch cache synced) or standing
//! by for the leader Lease: readiness never waits for leadership, or a rolling update would wait
//! for a new pod that can only lead after the old one is gone.

use std::convert::Infallible;
use std::io;
use std::net::SocketAddr;
use std::pin::pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use http_body_util::Full;
use hyper::body::{Bytes, Incoming};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::{TokioIo, TokioTimer};
use kube::runtime::reflector::Store;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Semaphore;

use super::accept::accept_loop;
use super::metrics::Metrics;
use crate::session::VncSession;

/// What the endpoints report on.
#[derive(Default)]
pub struct Probe {
    ready: AtomicBool,
    sessions: OnceLock<Store<VncSession>>,
}

impl Probe {
    pub fn set_ready(&self, ready: bool) {
        self.ready.store(ready, Ordering::SeqCst);
    }

    pub fn is_ready(&self) -> bool {
        self.ready.load(Ordering::SeqCst)
    }

    /// The controller's cache, counted by phase at every scrape.
    pub fn watch_sessions(&self, store: Store<VncSession>) {
        let _ = self.sessions.set(store);
    }
}

/// What one client can hold, so that any pod reaching the port cannot pin the server.
#[derive(Clone, Copy)]
struct Limits {
    /// To send a request head, from the connect or from the previous response: it is the
    /// keep-alive idle timeout too. Probes and scrapes send theirs in the first packet.
    header_read: Duration,
    /// A whole connection; it bounds a client that trickles a body or never reads its responses.
    lifetime: Duration,
    /// Connections served at once: each holds a descriptor and a read buffer. Kubelet's two
    /// probes and a Prometheus or two need a handful.
    connections: usize,
}

/// The metrics port: Prometheus, and probes for deployments made before `--health-addr`.
const METRICS_LIMITS: Limits = Limits {
    header_read: Duration::from_secs(5),
    lifetime: Duration::from_secs(30),
    connections: 32,
};

/// The probe port: the kubelet opens a connection per probe and closes it after the answer.
const HEALTH_LIMITS: Limits = Limits {
    header_read: Duration::from_secs(5),
    lifetime: Duration::from_secs(10),
    connections: 8,
};

/// What one listener answers; `metrics: None` serves the probes only.
#[derive(Clone)]
struct Endpoints {
    metrics: Option<Arc<Metrics>>,
    probe: Arc<Probe>,
}

/// `/metrics`, `/healthz` and `/readyz`. Binds now (so a busy port fails at start-up) and serves
/// in the background.
pub async fn start(
    addr: SocketAddr,
    metrics: Arc<Metrics>,
    probe: Arc<Probe>,
) -> std::io::Result<SocketAddr> {
    let endpoints = Endpoints {
        metrics: Some(metrics),
        probe,
    };
    bind_and_serve(addr, METRICS_LIMITS, endpoints).await
}

/// `/healthz` and `/readyz` only, like [`start`] but with slots of their own.
pub async fn start_health(addr: SocketAddr, probe: Arc<Probe>) -> std::io::Result<SocketAddr> {
    let endpoints = Endpoints {
        metrics: None,
        probe,
    };
    bind_and_serve(addr, HEALTH_LIMITS, endpoints).await
}

async fn bind_and_serve(
    addr: SocketAddr,
    limits: Limits,
    endpoints: Endpoints,
) -> std::io::Result<SocketAddr> {
    let listener = TcpListener::bind(addr).await?;
    let bound = listener.local_addr()?;
    tokio::spawn(serve(listener, limits, endpoints));
    Ok(bound)
}

async fn serve(listener: TcpListener, limits: Limits, endpoints: Endpoints) {
    // With every slot taken the loop stops accepting rather than accepting and closing: waiting
    // connections stay in the kernel's listen backlog, cost no descriptor and no CPU, and are
    // served as a slot frees (an idle client holds one for `header_read` at most). Closing them
    // at once would fail every probe of a burst instead of delaying it.
    let slots = Arc::new(Semaphore::new(limits.connections));
    let listener = Arc::new(listener);
    let accept = || {
        let (slots, listener) = (slots.clone(), listener.clone());
        async move {
            let slot = slots.acquire_owned().await.map_err(io::Error::other)?;
            let (stream, _) = listener.accept().await?;
            Ok::<_, io::Error>((stream, slot))
        }
    };
    accept_loop(accept, |(stream, slot)| {
        let endpoints = endpoints.clone();
        tokio::spawn(async move {
            connection(stream, limits, endpoints).await;
            drop(slot);
        });
    })
    .await;
}

async fn connection(stream: TcpStream, limits: Limits, endpoints: Endpoints) {
    let service = service_fn(move |req| {
        let endpoints = endpoints.clone();
        async move { Ok::<_, Infallible>(answer(&req, &endpoints)) }
    });
    let conn = http1::Builder::new()
        .timer(TokioTimer::new())
        .header_read_timeout(limits.header_read)
        .serve_connection(TokioIo::new(stream), service);
    let mut conn = pin!(conn);
    if tokio::time::timeout(limits.lifetime, conn.as_mut())
        .await
        .is_err()
    {
        // Let the response in flight finish if the client reads it, but not for long.
        conn.as_mut().graceful_shutdown();
        let _ = tokio::time::timeout(limits.header_read, conn).await;
    }
}

fn answer(req: &Request<Incoming>, endpoints: &Endpoints) -> Response<Full<Bytes>> {
    let probe = &endpoints.probe;
    let (status, content_type, body) = match (req.uri().path(), &endpoints.metrics) {
        ("/healthz", _) => (StatusCode::OK, "text/plain", "ok\n".to_owned()),
        ("/readyz", _) if probe.is_ready() => (StatusCode::OK, "text/plain", "ready\n".to_owned()),
        ("/readyz", _) => (
            StatusCode::SERVICE_UNAVAILABLE,
            "text/plain",
            "not ready\n".to_owned(),
        ),
        ("/metrics", Some(metrics)) => {
            if let Some(store) = probe.sessions.get() {
                metrics.set_sessions(
                    store
                        .state()
                        .iter()
                        .map(|s| s.status.as_ref().and_then(|st| st.phase)),
                );
            }
            (
                StatusCode::OK,
                "application/openmetrics-text; version=1.0.0; charset=utf-8",
                metrics.encode(),
            )
        }
        _ => (
            StatusCode::NOT_FOUND,
            "text/plain",
            "not found\n".to_owned(),
        ),
    };
    Response::builder()
        .status(status)
        .header("content-type", content_type)
        .body(Full::new(Bytes::from(body)))
        .unwrap_or_else(|_| Response::new(Full::new(Bytes::new())))
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio::time::Instant;

    const MINUTE: Duration = Duration::from_secs(60);

    async fn get(addr: SocketAddr, path: &str) -> (u16, String) {
        let resp = reqwest::get(format!("http://{addr}{path}")).await.unwrap();
        (resp.status().as_u16(), resp.text().await.unwrap())
    }

    #[tokio::test]
    async fn health_readiness_and_metrics() {
        let metrics = Arc::new(Metrics::new());
        let probe = Arc::new(Probe::default());
        let addr = start(
            "127.0.0.1:0".parse().unwrap(),
            metrics.clone(),
            probe.clone(),
        )
        .await
        .unwrap();
        assert_eq!(get(addr, "/healthz").await.0, 200);
        assert_eq!(get(addr, "/readyz").await.0, 503);
        probe.set_ready(true);
        assert_eq!(get(addr, "/readyz").await.0, 200);
        metrics.reconciled(false);
        let (code, text) = get(addr, "/metrics").await;
        assert_eq!(code, 200);
        assert!(
            text.contains(r#"ecsvnc_reconciles_total{result="error"} 1"#),
            "{text}"
        );
        assert_eq!(get(addr, "/nope").await.0, 404);
    }

    #[tokio::test]
    async fn the_health_listener_answers_probes_only() {
        let probe = Arc::new(Probe::default());
        let addr = start_health("127.0.0.1:0".parse().unwrap(), probe.clone())
            .await
            .unwrap();
        assert_eq!(get(addr, "/healthz").await.0, 200);
        assert_eq!(get(addr, "/readyz").await.0, 503);
        probe.set_ready(true);
        assert_eq!(get(addr, "/readyz").await, (200, "ready\n".to_owned()));
        assert_eq!(get(addr, "/metrics").await.0, 404);
    }

    #[tokio::test]
    async fn probes_are_answered_while_idle_clients_hold_every_metrics_slot() {
        let probe = Arc::new(Probe::default());
        let metrics = start(
            "127.0.0.1:0".parse().unwrap(),
            Arc::default(),
            probe.clone(),
        )
        .await
        .unwrap();
        let health = start_health("127.0.0.1:0".parse().unwrap(), probe)
            .await
            .unwrap();
        let mut idle = Vec::new();
        for _ in 0..METRICS_LIMITS.connections + 4 {
            idle.push(TcpStream::connect(metrics).await.unwrap());
        }
        let queued = tokio::spawn(async move {
            let mut stream = TcpStream::connect(metrics).await.unwrap();
            healthz(&mut stream).await
        });
        tokio::time::sleep(Duration::from_millis(300)).await;
        assert!(
            !queued.is_finished(),
            "the metrics slots were not all taken"
        );

        let mut stream = TcpStream::connect(health).await.unwrap();
        let answer = tokio::time::timeout(Duration::from_secs(1), healthz(&mut stream)).await;
        let answer = answer.expect("the health listener answered at once");
        assert!(answer.unwrap().starts_with("HTTP/1.1 200"));
        queued.abort();
    }

    #[tokio::test]
    async fn a_busy_port_fails_at_start() {
        let first = start(
            "127.0.0.1:0".parse().unwrap(),
            Arc::default(),
            Arc::default(),
        )
        .await
        .unwrap();
        assert!(start(first, Arc::default(), Arc::default()).await.is_err());
    }

    async fn serve_with(limits: Limits) -> SocketAddr {
        let endpoints = Endpoints {
            metrics: Some(Arc::default()),
            probe: Arc::default(),
        };
        bind_and_serve("127.0.0.1:0".parse().unwrap(), limits, endpoints)
            .await
            .unwrap()
    }

    /// `GET /healthz` on a kept-alive connection; `None` once the server has closed it.
    async fn healthz(stream: &mut TcpStream) -> Option<String> {
        let request = b"GET /healthz HTTP/1.1\r\nhost: t\r\n\r\n";
        stream.write_all(request).await.ok()?;
        let (mut response, mut buf) = (Vec::new(), [0; 1024]);
        while !response.ends_with(b"ok\n") {
            match stream.read(&mut buf).await {
                Ok(0) | Err(_) => return None,
                Ok(n) => response.extend_from_slice(&buf[..n]),
            }
        }
        Some(String::from_utf8_lossy(&response).into_owned())
    }

    /// How long the server takes to close `stream` (bounded by `limit`).
    async fn closed_within(stream: &mut TcpStream, limit: Duration) -> Duration {
        let start = Instant::now();
        let mut buf = [0; 1024];
        loop {
            match tokio::time::timeout_at(start + limit, stream.read(&mut buf)).await {
                Ok(Ok(0) | Err(_)) => return start.elapsed(),
                Ok(Ok(_)) => {}
                Err(_) => panic!("still open after {limit:?}"),
            }
        }
    }

    #[tokio::test]
    async fn silent_and_idle_connections_are_closed_after_the_header_timeout() {
        let header_read = Duration::from_millis(300);
        let limits = Limits {
            header_read,
            lifetime: MINUTE,
            connections: 4,
        };
        let addr = serve_with(limits).await;

        let mut silent = TcpStream::connect(addr).await.unwrap();
        let took = closed_within(&mut silent, Duration::from_secs(5)).await;
        assert!(took >= header_read, "closed after {took:?}");

        // Between requests too: the timeout is the keep-alive idle timeout.
        let mut kept = TcpStream::connect(addr).await.unwrap();
        assert!(
            healthz(&mut kept)
                .await
                .unwrap()
                .starts_with("HTTP/1.1 200")
        );
        let took = closed_within(&mut kept, Duration::from_secs(5)).await;
        assert!(took >= header_read, "closed after {took:?}");
    }

    #[tokio::test]
    async fn idle_connections_over_the_limit_hold_healthz_only_until_they_close() {
        let limits = Limits {
            header_read: MINUTE,
            lifetime: MINUTE,
            connections: 4,
        };
        let addr = serve_with(limits).await;
        let mut idle = Vec::new();
        for _ in 0..10 {
            idle.push(TcpStream::connect(addr).await.unwrap());
        }
        let probe = tokio::spawn(async move {
            let mut stream = TcpStream::connect(addr).await.unwrap();
            healthz(&mut stream).await
        });
        tokio::time::sleep(Duration::from_millis(300)).await;
        assert!(!probe.is_finished(), "served past the limit of 4");

        drop(idle);
        let answer = tokio::time::timeout(Duration::from_secs(5), probe).await;
        let answer = answer.expect("/healthz answered once they closed").unwrap();
        assert!(answer.unwrap().starts_with("HTTP/1.1 200"));
    }

    #[tokio::test]
    async fn a_busy_connection_is_closed_after_its_lifetime() {
        let lifetime = Duration::from_millis(500);
        let limits = Limits {
            header_read: MINUTE,
            lifetime,
            connections: 4,
        };
        let mut stream = TcpStream::connect(serve_with(limits).await).await.unwrap();
        let start = Instant::now();
        for _ in 0..100 {
            if healthz(&mut stream).await.is_none() {
                break;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        let took = start.elapsed();
        assert!(
            lifetime <= took && took < 3 * lifetime,
            "closed after {took:?}"
        );
    }
}
