//! The `ecs-sim` binary as a child process: started on a free loopback port, its address read
//! from the line it prints first, killed on every path out of the test.

use std::io::BufRead;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::Duration;

pub struct SimProcess {
    child: Child,
    /// `http://127.0.0.1:PORT`, as the binary printed it.
    pub endpoint: String,
}

impl SimProcess {
    /// `ecs-sim --listen 127.0.0.1:0 ARGS`; waits (at most 30 s) for its first line.
    pub async fn start(args: &[&str]) -> SimProcess {
        let mut child = Command::new(env!("CARGO_BIN_EXE_ecs-sim"))
            .args(["--listen", "127.0.0.1:0"])
            .args(args)
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let stdout = child.stdout.take().unwrap();
        // Owned from here on: a panic below still kills the child.
        let mut process = SimProcess {
            child,
            endpoint: String::new(),
        };
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
        process.endpoint = line
            .trim_end()
            .strip_prefix("ecs-sim listening on ")
            .unwrap_or_else(|| panic!("unexpected first line {line:?}"))
            .to_owned();
        process
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// The exit status, if it has exited.
    pub fn try_wait(&mut self) -> Option<ExitStatus> {
        self.child.try_wait().unwrap()
    }
}

impl Drop for SimProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
