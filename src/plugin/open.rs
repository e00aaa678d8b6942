//! `kubectl vnc open NAME`: request a fresh URL, wait for the operator to serve it, print it and
//! hand it to the browser. The URL goes to stdout only; everything else to stderr. Only a URL on
//! the console page (`--console-base-url`) is printed or opened.

use std::io::Write;
use std::time::Duration;

use jiff::Timestamp;
use kube::Api;
use tokio::time::{Instant, timeout_at};

use super::args::OpenArgs;
use super::browser::Browser;
use super::connect::Target;
use super::error::Error;
use super::format::seconds_left;
use super::outcome::{Verdict, verdict};
use super::{refresh, wait};
use crate::session::crd::VncSession;
use crate::session::expiry::rfc3339;

pub async fn execute(
    target: &Target,
    args: &OpenArgs,
    out: &mut dyn Write,
    err: &mut dyn Write,
    browser: &impl Browser,
) -> Result<(), Error> {
    let (ns, name) = (target.namespace.as_str(), args.name.as_str());
    let api: Api<VncSession> = Api::namespaced(target.client.clone(), ns);
    // `--timeout` is bounded by its parser; the bound again here keeps a hand-built OpenArgs from
    // overflowing the Instant.
    let deadline = Instant::now() + args.timeout.min(super::duration::MAX);

    let value = refresh::new_value(Timestamp::now());
    let start = timeout_at(deadline, refresh::request(&api, ns, name, &value))
        .await
        .map_err(|_| unanswered_patch(args.timeout))??;
    let session = timeout_at(
        deadline,
        wait::until_answered(&api, ns, name, &value, start),
    )
    .await
    .map_err(|_| Error::Timeout {
        name: name.to_owned(),
        namespace: ns.to_owned(),
        waited: args.timeout,
    })??;

    let now = Timestamp::now();
    match verdict(&session, &value, now) {
        Verdict::Ready(ready) => {
            // Refused for --print too: a `file:` URL pasted by hand is the same hazard.
            args.console_base_url
                .check(&ready.console_url)
                .map_err(|off| Error::OffBase {
                    name: name.to_owned(),
                    namespace: ns.to_owned(),
                    off,
                })?;
            writeln!(out, "{}", ready.console_url)?;
            out.flush()?;
            writeln!(err, "{}", window_note(ready.url_expires_at, now, name, ns))?;
            if !args.print
                && let Err(why) = browser.open(&ready.console_url).await
            {
                writeln!(
                    err,
                    "could not open a browser ({why}); open the URL above yourself"
                )?;
            }
            Ok(())
        }
        Verdict::Refused(refusal) => Err(Error::Refused(refusal)),
        // until_answered only returns answered sessions.
        Verdict::Waiting => Err(Error::Timeout {
            name: name.to_owned(),
            namespace: ns.to_owned(),
            waited: args.timeout,
        }),
    }
}

fn unanswered_patch(waited: Duration) -> Error {
    Error::Unreachable {
        detail: format!(
            "no answer to the refresh request within {}",
            super::error::human(waited)
        ),
    }
}

/// How long the URL still opens a connection, by this machine's clock.
pub fn window_note(expires: Option<Timestamp>, now: Timestamp, name: &str, ns: &str) -> String {
    let Some(expires) = expires else {
        return "the operator did not record when this URL expires; open it right away".to_owned();
    };
    let left = seconds_left(expires, now);
    if left > 0.0 {
        format!(
            "{left:.1} s left to open a connection with this URL (until {})",
            rfc3339(expires)
        )
    } else {
        format!(
            "by this machine's clock the URL stopped opening connections {:.1} s ago; \
             if it does not open, run `kubectl vnc open {name} -n {ns}` again (and check the clock)",
            -left
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plugin::console_base::ConsoleBase;
    use crate::plugin::error::{EXIT_FAILED, EXIT_NOT_FOUND, EXIT_OFF_BASE, EXIT_TIMEOUT};
    use crate::plugin::mock::{self, Step};
    use crate::session::crd::REFRESH_ANNOTATION;
    use serde_json::{Value, json};
    use std::sync::Mutex;

    /// Records what it was asked to open; fails on demand.
    #[derive(Default)]
    struct FakeBrowser {
        opened: Mutex<Vec<String>>,
        fail: bool,
    }

    impl Browser for FakeBrowser {
        async fn open(&self, url: &str) -> Result<(), String> {
            self.opened.lock().unwrap().push(url.to_owned());
            if self.fail {
                Err("xdg-open is not installed".to_owned())
            } else {
                Ok(())
            }
        }
    }

    fn args(name: &str, print: bool, timeout: Duration) -> OpenArgs {
        OpenArgs {
            name: name.to_owned(),
            print,
            timeout,
            console_base_url: ConsoleBase::default(),
        }
    }

    const URL: &str = "https://g.alicdn.com/aliyun/ecs-console-vnc2/0.0.8/index.html?vncUrl=wss%3A%2F%2Fx&instanceId=i-bp1hzoinajzkh91h1234&isWindows=false";

    /// The watch event the operator's status write produces for request `value`.
    fn served(value: &str, status: Value) -> Value {
        let mut status = status;
        status["observedRefresh"] = json!(value);
        let mut obj = mock::session_json("db-1", "12", status);
        obj["metadata"]["annotations"] = json!({REFRESH_ANNOTATION: value});
        json!({"type": "MODIFIED", "object": obj})
    }

    struct Run {
        result: Result<(), Error>,
        out: String,
        err: String,
    }

    /// Runs `open`, answering the patch, then the watch with `answer(value)`.
    async fn run_open(
        args: OpenArgs,
        browser: &FakeBrowser,
        answer: impl FnOnce(&str) -> Option<Value>,
    ) -> Run {
        let (target, mut handle) = mock::target("team-a");
        let mut out = Vec::new();
        let mut err = Vec::new();
        let server = async {
            let patched = mock::serve(
                &mut handle,
                vec![
                    Step::new("PATCH", &mock::session_path("team-a", "db-1"))
                        .json(200, mock::session_json("db-1", "11", Value::Null)),
                ],
            )
            .await;
            let value = patched[0].body["metadata"]["annotations"][REFRESH_ANNOTATION]
                .as_str()
                .unwrap()
                .to_owned();
            let watch = Step::new("GET", &mock::sessions_path("team-a"));
            let watch = match answer(&value) {
                Some(event) => watch.events(vec![event]),
                None => watch.hang(),
            };
            let seen = mock::serve(&mut handle, vec![watch]).await;
            assert_eq!(seen[0].param("resourceVersion").as_deref(), Some("11"));
            seen
        };
        let (result, _seen) =
            tokio::join!(execute(&target, &args, &mut out, &mut err, browser), server);
        Run {
            result,
            out: String::from_utf8(out).unwrap(),
            err: String::from_utf8(err).unwrap(),
        }
    }

    fn ready_in(value: &str, secs: i64) -> Value {
        let expires = Timestamp::now() + jiff::SignedDuration::from_secs(secs);
        served(
            value,
            json!({"phase": "Ready", "consoleUrl": URL,
                   "urlExpiresAt": rfc3339(expires)}),
        )
    }

    /// Runs `open` (with `--print` if `print`) and serves the session Ready with 15 s left.
    async fn open_ready(print: bool, browser: &FakeBrowser) -> Run {
        run_open(args("db-1", print, Duration::from_secs(5)), browser, |v| {
            Some(ready_in(v, 15))
        })
        .await
    }

    #[tokio::test]
    async fn ready_prints_the_url_alone_on_stdout_and_opens_the_browser() {
        let browser = FakeBrowser::default();
        let run = open_ready(false, &browser).await;
        run.result.unwrap();
        assert_eq!(run.out, format!("{URL}\n"));
        assert!(
            run.err.contains("s left to open a connection"),
            "{}",
            run.err
        );
        assert!(!run.err.contains("vncUrl"), "the URL leaked to stderr");
        assert_eq!(*browser.opened.lock().unwrap(), vec![URL.to_owned()]);
    }

    #[tokio::test]
    async fn print_does_not_start_a_browser() {
        let browser = FakeBrowser::default();
        let run = open_ready(true, &browser).await;
        run.result.unwrap();
        assert_eq!(run.out, format!("{URL}\n"));
        assert!(browser.opened.lock().unwrap().is_empty());
    }

    #[tokio::test]
    async fn a_url_off_the_console_base_is_neither_opened_nor_printed() {
        for (url, why) in [
            ("file:///etc/passwd", "it is a file: URL, not https:"),
            ("javascript:alert(1)", "it is a javascript: URL, not https:"),
            (
                "https://g.alicdn.com.evil.example/aliyun/ecs-console-vnc2/0.0.8/index.html?vncUrl=x",
                "it is on host \"g.alicdn.com.evil.example\"",
            ),
            (
                "https://g.alicdn.com@evil/aliyun/ecs-console-vnc2/0.0.8/index.html",
                "it has user info",
            ),
        ] {
            for print in [false, true] {
                let browser = FakeBrowser::default();
                let run = run_open(args("db-1", print, Duration::from_secs(5)), &browser, |v| {
                    Some(served(v, json!({"phase": "Ready", "consoleUrl": url})))
                })
                .await;
                let err = run.result.unwrap_err();
                assert_eq!(err.exit_code(), EXIT_OFF_BASE, "{url}");
                let text = err.to_string();
                assert!(text.contains(why), "{url}: {text}");
                assert!(text.contains("--console-base-url"), "{text}");
                assert!(run.out.is_empty(), "{url} printed: {}", run.out);
                assert!(browser.opened.lock().unwrap().is_empty(), "{url} opened");
            }
        }
    }

    #[tokio::test]
    async fn another_console_base_is_taken_from_the_flag() {
        let browser = FakeBrowser::default();
        let mut open = args("db-1", false, Duration::from_secs(5));
        open.console_base_url = ConsoleBase::parse("https://console.example/vnc").unwrap();
        let run = run_open(open, &browser, |v| Some(ready_in(v, 15))).await;
        assert_eq!(run.result.unwrap_err().exit_code(), EXIT_OFF_BASE);
        let mine = "https://console.example/vnc?vncUrl=wss%3A%2F%2Fx&instanceId=i-a&isWindows=true";
        let mut open = args("db-1", false, Duration::from_secs(5));
        open.console_base_url = ConsoleBase::parse("https://console.example/vnc").unwrap();
        let run = run_open(open, &browser, |v| {
            Some(served(v, json!({"phase": "Ready", "consoleUrl": mine})))
        })
        .await;
        run.result.unwrap();
        assert_eq!(run.out, format!("{mine}\n"));
        assert_eq!(*browser.opened.lock().unwrap(), vec![mine.to_owned()]);
    }

    #[tokio::test]
    async fn a_browser_that_cannot_start_is_reported_but_not_fatal() {
        let browser = FakeBrowser {
            fail: true,
            ..FakeBrowser::default()
        };
        let run = open_ready(false, &browser).await;
        run.result.unwrap();
        assert!(
            run.err
                .contains("could not open a browser (xdg-open is not installed)"),
            "{}",
            run.err
        );
    }

    #[tokio::test]
    async fn a_failed_session_exits_with_the_reason_and_the_fix() {
        let browser = FakeBrowser::default();
        let run = run_open(args("db-1", false, Duration::from_secs(5)), &browser, |v| {
            Some(served(
                v,
                json!({"phase": "Failed", "refreshable": false,
                       "lastError": {"code": "InvalidInstanceId.NotFound",
                                     "message": "The specified InstanceId does not exist."},
                       "conditions": [{"type": "Ready", "status": "False", "reason": "IssueFailed",
                                       "message": "x", "lastTransitionTime": "2026-11-26T08:00:00Z"}]}),
            ))
        })
        .await;
        let err = run.result.unwrap_err();
        assert_eq!(err.exit_code(), EXIT_FAILED);
        let text = err.to_string();
        assert!(text.contains("is Failed"), "{text}");
        assert!(text.contains("reason:  IssueFailed"), "{text}");
        assert!(text.contains("check spec.instanceId"), "{text}");
        assert!(run.out.is_empty());
        assert!(browser.opened.lock().unwrap().is_empty());
    }

    #[tokio::test]
    async fn no_answer_within_the_timeout_names_the_likely_causes() {
        let browser = FakeBrowser::default();
        let run = run_open(
            args("db-1", false, Duration::from_millis(300)),
            &browser,
            |_| None,
        )
        .await;
        let err = run.result.unwrap_err();
        assert_eq!(err.exit_code(), EXIT_TIMEOUT);
        assert!(err.to_string().contains("within 300ms"), "{err}");
    }

    #[tokio::test]
    async fn a_timeout_beyond_any_instant_does_not_panic() {
        let browser = FakeBrowser::default();
        let run = run_open(args("db-1", true, Duration::MAX), &browser, |v| {
            Some(ready_in(v, 15))
        })
        .await;
        run.result.unwrap();
        assert_eq!(run.out, format!("{URL}\n"));
    }

    #[tokio::test]
    async fn open_of_a_missing_session_is_not_found() {
        let (target, mut handle) = mock::target("team-a");
        let args = args("ghost", false, Duration::from_secs(5));
        let browser = FakeBrowser::default();
        let (mut out, mut err) = (Vec::new(), Vec::new());
        let (result, _) = tokio::join!(
            execute(&target, &args, &mut out, &mut err, &browser),
            mock::serve(
                &mut handle,
                vec![
                    Step::new("PATCH", &mock::session_path("team-a", "ghost"))
                        .json(404, mock::not_found("ghost"))
                ]
            )
        );
        assert_eq!(result.unwrap_err().exit_code(), EXIT_NOT_FOUND);
    }

    #[test]
    fn the_window_note_counts_down_and_warns_when_past() {
        let now: Timestamp = "2026-11-26T08:00:00.700Z".parse().unwrap();
        let until: Timestamp = "2026-11-26T08:00:15Z".parse().unwrap();
        assert_eq!(
            window_note(Some(until), now, "db-1", "team-a"),
            "14.3 s left to open a connection with this URL (until 2026-11-26T08:00:15Z)"
        );
        let late: Timestamp = "2026-11-26T08:00:16.5Z".parse().unwrap();
        assert!(
            window_note(Some(until), late, "db-1", "team-a").starts_with(
                "by this machine's clock the URL stopped opening connections 1.5 s ago"
            )
        );
        assert!(window_note(None, now, "db-1", "team-a").contains("right away"));
    }
}
