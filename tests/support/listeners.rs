//! Listeners on 127.0.0.1 standing for endpoints a tenant controls (issue 23): a tarpit that
//! accepts connections and never answers, and an ECS look-alike that answers every request with
//! one fixed error. Each counts what it received and stops (closing its connections) on drop.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use tokio::io::AsyncReadExt;
use tokio::net::TcpListener;
use tokio::task::{JoinHandle, JoinSet};

use super::scripted_server::{Server, reply};

/// ECS's answer to a request signed with an expired STS token.
pub const EXPIRED_TOKEN_ANSWER: &str = r#"{"RequestId":"x","HostId":"h","Code":"InvalidSecurityToken.Expired","Message":"The security token you provided has expired."}"#;

/// Decrements a gauge when the connection it stands for ends, however it ends (an abort too).
struct Open(Arc<AtomicUsize>);

impl Drop for Open {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}

/// Accepts every connection and reads (and drops) what arrives, never writing a byte, until the
/// client gives up or `hold` passes.
pub struct Tarpit {
    /// `http://127.0.0.1:PORT`.
    pub url: String,
    accepted: Arc<AtomicUsize>,
    open: Arc<AtomicUsize>,
    task: JoinHandle<()>,
}

impl Tarpit {
    pub async fn start(hold: Duration) -> Tarpit {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let accepted = Arc::new(AtomicUsize::new(0));
        let open = Arc::new(AtomicUsize::new(0));
        let (seen, gauge) = (accepted.clone(), open.clone());
        let task = tokio::spawn(async move {
            // Owned by this task: aborting it drops the set, which aborts every connection.
            let mut connections = JoinSet::new();
            loop {
                tokio::select! {
                    accepted = listener.accept() => {
                        let Ok((mut conn, _)) = accepted else {
                            tokio::time::sleep(Duration::from_millis(50)).await;
                            continue;
                        };
                        seen.fetch_add(1, Ordering::SeqCst);
                        gauge.fetch_add(1, Ordering::SeqCst);
                        let open = Open(gauge.clone());
                        connections.spawn(async move {
                            let _open = open;
                            let mut buf = [0u8; 4096];
                            let drain = async {
                                while matches!(conn.read(&mut buf).await, Ok(n) if n > 0) {}
                            };
                            let _ = tokio::time::timeout(hold, drain).await;
                        });
                    }
                    Some(_) = connections.join_next(), if !connections.is_empty() => {}
                }
            }
        });
        Tarpit {
            url,
            accepted,
            open,
            task,
        }
    }

    /// Connections accepted so far.
    pub fn accepted(&self) -> usize {
        self.accepted.load(Ordering::SeqCst)
    }

    /// Connections held open now.
    pub fn open(&self) -> usize {
        self.open.load(Ordering::SeqCst)
    }
}

impl Drop for Tarpit {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// An HTTP/1 server that answers every request (any method, any path) with `status` and the
/// JSON `body`, and counts the requests.
pub struct FixedAnswer {
    /// `http://127.0.0.1:PORT`.
    pub url: String,
    server: Server,
}

impl FixedAnswer {
    pub async fn start(status: u16, body: &'static str) -> FixedAnswer {
        let server = Server::start(move |_, _| reply(status, body)).await;
        FixedAnswer {
            url: server.url(),
            server,
        }
    }

    /// Requests answered so far.
    pub fn requests(&self) -> usize {
        self.server.seen().len()
    }
}
