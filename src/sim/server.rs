//! HTTP: the accept loop and the routing of one request by path: `/_sim/` to the admin API,
//! `/latest/` to the instance metadata, everything else to the RPC pipeline, whose answer is
//! counted in the stats and written here.

use std::sync::Arc;
use std::time::Duration;

use hyper::Request;
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::net::TcpListener;
use tokio::task::JoinSet;

use super::admin;
use super::answer::{DropConnection, new_request_id};
use super::http::Reply;
use super::metadata;
use super::rpc::rpc_answer;
use super::state::Shared;

/// Serves until the future is dropped; dropping it also aborts every open connection.
pub(crate) async fn serve(listener: TcpListener, shared: Arc<Shared>) {
    let mut connections = JoinSet::new();
    loop {
        tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((stream, _peer)) => {
                    let _ = stream.set_nodelay(true);
                    let shared = Arc::clone(&shared);
                    connections.spawn(async move {
                        let service = service_fn(move |req| handle(Arc::clone(&shared), req));
                        let connection = http1::Builder::new()
                            .timer(TokioTimer::new())
                            .serve_connection(TokioIo::new(stream), service);
                        if let Err(error) = connection.await {
                            tracing::debug!(%error, "connection ended");
                        }
                    });
                }
                Err(error) => {
                    // Typically out of file descriptors: back off instead of spinning.
                    tracing::warn!(%error, "accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
            },
            Some(_) = connections.join_next(), if !connections.is_empty() => {}
        }
    }
}

async fn handle(shared: Arc<Shared>, req: Request<Incoming>) -> Result<Reply, DropConnection> {
    if req.uri().path().starts_with("/_sim/") {
        return Ok(admin::handle(&shared, req).await);
    }
    if req.uri().path().starts_with("/latest/") {
        return Ok(metadata::handle(&shared, &req));
    }
    let request_id = new_request_id();
    let (keys, answer) = rpc_answer(&shared, req, &request_id).await;
    let code = answer.code();
    {
        let stats = &mut shared.lock().stats;
        stats.record(&keys.action, code, &keys.instances);
        if let Some(account) = &keys.account {
            stats.record_account(account);
        }
    }
    tracing::debug!(action = %keys.action, code, "answered");
    answer.reply(&request_id)
}
