//! `/metrics`, `/healthz` and `/readyz` on `--metrics-addr`.
//!
//! `/readyz` turns ready once the process is either serving (its watch cache synced) or standing
//! by for the leader Lease: readiness never waits for leadership, or a rolling update would wait
//! for a new pod that can only lead after the old one is gone.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, OnceLock};

use http_body_util::Full;
use hyper::body::{Bytes, Incoming};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use kube::runtime::reflector::Store;
use tokio::net::TcpListener;

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

/// Binds now (so a busy port fails at start-up) and serves in the background.
pub async fn start(
    addr: SocketAddr,
    metrics: Arc<Metrics>,
    probe: Arc<Probe>,
) -> std::io::Result<SocketAddr> {
    let listener = TcpListener::bind(addr).await?;
    let bound = listener.local_addr()?;
    tokio::spawn(async move {
        loop {
            let Ok((stream, _)) = listener.accept().await else {
                continue;
            };
            let (metrics, probe) = (metrics.clone(), probe.clone());
            tokio::spawn(async move {
                let service = service_fn(move |req| {
                    let (metrics, probe) = (metrics.clone(), probe.clone());
                    async move { Ok::<_, Infallible>(answer(&req, &metrics, &probe)) }
                });
                let _ = http1::Builder::new()
                    .serve_connection(TokioIo::new(stream), service)
                    .await;
            });
        }
    });
    Ok(bound)
}

fn answer(req: &Request<Incoming>, metrics: &Metrics, probe: &Probe) -> Response<Full<Bytes>> {
    let (status, content_type, body) = match req.uri().path() {
        "/healthz" => (StatusCode::OK, "text/plain", "ok\n".to_owned()),
        "/readyz" if probe.is_ready() => (StatusCode::OK, "text/plain", "ready\n".to_owned()),
        "/readyz" => (
            StatusCode::SERVICE_UNAVAILABLE,
            "text/plain",
            "not ready\n".to_owned(),
        ),
        "/metrics" => {
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
}
