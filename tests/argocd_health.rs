//! The Argo CD health check for `VncSession`
//! (`deploy/argocd/resource_customizations/ecsvnc.dev/VncSession/`), run the way Argo CD runs it:
//! Lua 5.1 (Argo CD embeds gopher-lua, a Lua 5.1), the object as the global `obj`, the script's
//! returned table read for `status` and `message`.
//!
//! The script runs in a sandbox close to Argo CD's for scripts configured in `argocd-cm`: only the
//! base and table libraries and a few `os` functions, no `string` library and no string methods,
//! and an instruction budget standing in for Argo CD's one-second timeout.
//!
//! Needs the `lua5.1` interpreter (Debian package `lua5.1`, installed by `scripts/install-deps.sh`);
//! without it every test here fails, none is skipped.

mod support;

use std::fmt::Write as _;
use std::io::{ErrorKind, Write as _};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use serde::Deserialize;
use serde_json::{Value, json};
use support::paths::root;
use support::processes::output_ok;

const INSTALL_HINT: &str = "run scripts/install-deps.sh (Debian package lua5.1)";

/// The statuses Argo CD accepts from a health script; anything else it turns into `Unknown`.
const ARGO_STATUSES: [&str; 6] = [
    "Healthy",
    "Progressing",
    "Degraded",
    "Suspended",
    "Missing",
    "Unknown",
];

fn check_dir() -> PathBuf {
    root().join("deploy/argocd/resource_customizations/ecsvnc.dev/VncSession")
}

/// The cases of `health_test.yaml` (Argo CD's own format for a health check's tests).
fn health_tests() -> HealthTests {
    let text = std::fs::read_to_string(check_dir().join("health_test.yaml"))
        .expect("read health_test.yaml");
    serde_yaml::from_str(&text).expect("parse health_test.yaml")
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct HealthTests {
    tests: Vec<HealthTest>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct HealthTest {
    health_status: Expected,
    input_path: String,
}

#[derive(Deserialize, Debug, PartialEq)]
struct Expected {
    status: String,
    #[serde(default)]
    message: String,
}

/// A Lua string literal holding exactly `s`: quotes, backslashes and control bytes as `\ddd`.
fn lua_string(s: &str, out: &mut String) {
    out.push('"');
    for c in s.chars() {
        match c {
            '"' | '\\' | '\0'..='\x1f' | '\x7f' => {
                let _ = write!(out, "\\{:03}", u32::from(c));
            }
            // Lua strings are bytes: UTF-8 passes through unchanged.
            _ => out.push(c),
        }
    }
    out.push('"');
}

/// The Lua value Argo CD builds from a JSON value: objects and arrays become tables (arrays with
/// keys 1..n), `null` becomes `nil`, numbers become Lua numbers.
fn lua_literal(value: &Value, out: &mut String) {
    match value {
        Value::Null => out.push_str("nil"),
        Value::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
        Value::Number(n) => {
            if n.is_f64() {
                let f = n.as_f64().unwrap_or(0.0);
                let _ = write!(out, "{f:?}");
            } else {
                let _ = write!(out, "{n}");
            }
        }
        Value::String(s) => lua_string(s, out),
        Value::Array(items) => {
            out.push('{');
            for (i, item) in items.iter().enumerate() {
                let _ = write!(out, "[{}]=", i + 1);
                lua_literal(item, out);
                out.push(',');
            }
            out.push('}');
        }
        Value::Object(map) => {
            out.push('{');
            for (key, item) in map {
                out.push('[');
                lua_string(key, out);
                out.push_str("]=");
                lua_literal(item, out);
                out.push(',');
            }
            out.push('}');
        }
    }
}

/// The chunk fed to `lua5.1 -`: sets up the sandbox, runs health.lua with `obj`, and prints the
/// status on the first line and the message after it. Exit 2 means the script failed.
fn wrapper(script: &Path, obj: &Value) -> String {
    let mut path = String::new();
    lua_string(&script.to_string_lossy(), &mut path);
    let mut object = String::new();
    lua_literal(obj, &mut object);
    format!(
        r#"local write, exit = io.write, os.exit
local chunk, load_error = loadfile({path})
if not chunk then
  write("ERROR\n", tostring(load_error))
  exit(2)
end
local env = {{
  obj = {object},
  assert = assert, error = error, ipairs = ipairs, next = next, pairs = pairs, pcall = pcall,
  print = print, rawequal = rawequal, rawget = rawget, rawset = rawset, select = select,
  setmetatable = setmetatable, getmetatable = getmetatable, tonumber = tonumber,
  tostring = tostring, type = type, unpack = unpack, xpcall = xpcall,
  table = table, os = {{ time = os.time, date = os.date, clock = os.clock }},
}}
env._G = env
setfenv(chunk, env)
local string_methods = getmetatable("")
local string_index = string_methods.__index
string_methods.__index = nil
debug.sethook(function() error("health.lua ran too long") end, "", 10000000)
local ok, hs = pcall(chunk)
debug.sethook()
string_methods.__index = string_index
if not ok then
  write("ERROR\n", tostring(hs))
  exit(2)
end
if type(hs) ~= "table" then
  write("ERROR\nhealth.lua returned a ", type(hs), ", not a table")
  exit(2)
end
if type(hs.status) ~= "string" or (hs.message ~= nil and type(hs.message) ~= "string") then
  write("ERROR\nstatus/message of types ", type(hs.status), "/", type(hs.message))
  exit(2)
end
write(hs.status, "\n", hs.message or "")
"#
    )
}

/// Runs health.lua on `obj`: Ok((status, message)), or Err with what went wrong in Lua.
fn run_health(obj: &Value) -> Result<(String, String), String> {
    let script = check_dir().join("health.lua");
    let mut child = match Command::new("lua5.1")
        .arg("-")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
    {
        Ok(child) => child,
        Err(e) if e.kind() == ErrorKind::NotFound => {
            panic!("lua5.1 not found: {INSTALL_HINT}")
        }
        Err(e) => panic!("cannot start lua5.1 ({e}): {INSTALL_HINT}"),
    };
    child
        .stdin
        .take()
        .expect("stdin is piped")
        .write_all(wrapper(&script, obj).as_bytes())
        .expect("write the wrapper to lua5.1");
    let out = child.wait_with_output().expect("wait for lua5.1");
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    if !out.status.success() {
        return Err(format!(
            "lua5.1 exited with {}: {stdout}{}",
            out.status,
            String::from_utf8_lossy(&out.stderr)
        ));
    }
    let (status, message) = stdout
        .split_once('\n')
        .ok_or_else(|| format!("no status line in {stdout:?}"))?;
    Ok((status.to_owned(), message.to_owned()))
}

fn load_yaml(path: &Path) -> Value {
    let text =
        std::fs::read_to_string(path).unwrap_or_else(|e| panic!("read {}: {e}", path.display()));
    serde_yaml::from_str(&text).unwrap_or_else(|e| panic!("parse {}: {e}", path.display()))
}

#[test]
fn lua51_is_installed() {
    match Command::new("lua5.1").arg("-v").output() {
        Ok(out) => assert!(out.status.success(), "lua5.1 -v failed: {INSTALL_HINT}"),
        Err(e) => panic!("lua5.1 cannot run ({e}): {INSTALL_HINT}"),
    }
}

#[test]
fn every_case_in_health_test_yaml_gives_the_expected_health() {
    let dir = check_dir();
    let cases = health_tests();
    assert!(!cases.tests.is_empty(), "health_test.yaml lists no tests");

    let mut failures = Vec::new();
    for case in &cases.tests {
        let obj = load_yaml(&dir.join(&case.input_path));
        match run_health(&obj) {
            Ok((status, message)) => {
                let got = Expected { status, message };
                if got != case.health_status {
                    failures.push(format!(
                        "{}:\n  expected {:?}\n  got      {:?}",
                        case.input_path, case.health_status, got
                    ));
                }
            }
            Err(e) => failures.push(format!("{}: {e}", case.input_path)),
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn every_testdata_file_is_a_case_and_every_status_is_covered() {
    let dir = check_dir();
    let cases = health_tests();
    let listed: Vec<&str> = cases.tests.iter().map(|t| t.input_path.as_str()).collect();
    for entry in std::fs::read_dir(dir.join("testdata")).expect("read testdata/") {
        let name = entry.expect("testdata entry").file_name();
        let path = format!("testdata/{}", name.to_string_lossy());
        assert!(
            listed.contains(&path.as_str()),
            "{path} is not used by health_test.yaml"
        );
    }
    for wanted in ["Healthy", "Progressing", "Degraded", "Suspended"] {
        assert!(
            cases.tests.iter().any(|t| t.health_status.status == wanted),
            "no case in health_test.yaml expects {wanted}"
        );
    }
}

/// Every phase with every refreshable/Stalled combination maps to the status the contract gives
/// it, with a message that is never empty.
#[test]
fn each_phase_maps_to_its_health() {
    let phases = [
        ("Pending", "Progressing"),
        ("Ready", "Healthy"),
        ("UrlExpired", "Healthy"),
        ("Expired", "Healthy"),
        ("Failed", "Degraded"),
        ("Closed", "Suspended"),
    ];
    for (phase, health) in phases {
        for refreshable in [json!(true), json!(false), Value::Null] {
            for stalled in ["True", "False"] {
                let obj = json!({
                    "metadata": {"name": "s", "generation": 3},
                    "status": {
                        "phase": phase,
                        "observedGeneration": 3,
                        "refreshable": refreshable,
                        "conditions": [{"type": "Stalled", "status": stalled}],
                    },
                });
                let (status, message) = run_health(&obj).unwrap_or_else(|e| panic!("{obj}: {e}"));
                assert_eq!(status, health, "{obj}: {message}");
                assert!(!message.is_empty(), "{obj}: empty message");
            }
        }
    }
}

#[test]
fn failed_says_whether_it_retries_or_needs_a_change() {
    let failed = |refreshable: bool, stalled: &str| {
        json!({
            "metadata": {"name": "web", "namespace": "ops", "generation": 1},
            "status": {
                "phase": "Failed",
                "observedGeneration": 1,
                "refreshable": refreshable,
                "lastError": {"code": "SignatureDoesNotMatch", "message": "The signature does not match."},
                "conditions": [{"type": "Stalled", "status": stalled}],
            },
        })
    };
    let (_, retrying) = run_health(&failed(true, "False")).expect("runs");
    assert!(
        retrying.starts_with("SignatureDoesNotMatch: The signature does not match.")
            && retrying.contains("retries automatically"),
        "{retrying}"
    );
    let (_, gave_up) = run_health(&failed(true, "True")).expect("runs");
    assert!(
        gave_up.contains("kubectl vnc refresh web -n ops"),
        "{gave_up}"
    );
    let (_, terminal) = run_health(&failed(false, "True")).expect("runs");
    assert!(
        terminal.contains("needs a change") && !terminal.contains("retries automatically"),
        "{terminal}"
    );
}

/// Whatever shape the object has, the script returns a valid status and a message; a Lua error
/// would make Argo CD report the whole resource's health as an error.
#[test]
fn garbage_shapes_never_raise_a_lua_error() {
    let shapes = [
        Value::Null,
        json!("VncSession"),
        json!(42),
        json!([]),
        json!([{"status": {"phase": "Ready"}}]),
        json!({}),
        json!({"status": null}),
        json!({"status": "Ready"}),
        json!({"status": 7}),
        json!({"status": []}),
        json!({"status": {}}),
        json!({"status": {"phase": 7, "conditions": "Ready"}}),
        json!({"status": {"phase": ["Ready"]}}),
        json!({"status": {"phase": {"name": "Ready"}}}),
        json!({"status": {"phase": ""}}),
        json!({"status": {"phase": "__index"}}),
        json!({"status": {"phase": "Failed", "conditions": {"type": "Stalled", "status": "True"}}}),
        json!({"status": {"phase": "Failed", "conditions": [null, 1, "Stalled", [], {"type": 5}, {"type": "Ready", "message": {}}]}}),
        json!({"status": {"phase": "Failed", "lastError": "boom", "refreshable": "yes"}}),
        json!({"status": {"phase": "Failed", "lastError": {"code": 5, "message": {}}}}),
        json!({"status": {"phase": "Failed", "lastError": {"code": [], "message": null}, "retryAt": 3.5}}),
        json!({"status": {"phase": "Failed", "lastError": {}, "refreshable": true, "retryAt": {}}}),
        json!({"status": {"phase": "Pending", "lastError": [1, 2]}}),
        json!({"metadata": "x", "status": {"phase": "Ready", "observedGeneration": "abc", "urlExpiresAt": {}}}),
        json!({"metadata": [], "status": {"phase": "UrlExpired", "sessionExpiresAt": 12, "refreshable": 1}}),
        json!({"metadata": {"generation": "2", "name": 5, "namespace": []}, "status": {"phase": "Closed", "observedGeneration": 1}}),
        json!({"metadata": {"generation": {}}, "status": {"phase": "Expired", "observedGeneration": []}}),
        json!({"metadata": {"generation": 1e308}, "status": {"phase": "Ready", "observedGeneration": -1e308}}),
        json!({"spec": "x", "status": {"phase": "Closed"}}),
        json!({"spec": {"ttl": 30}, "status": {"phase": "Closed"}}),
        json!({"metadata": {"name": "quote\" back\\slash\nnewline \u{1F600}"}, "status": {"phase": "Expired", "refreshable": true}}),
    ];
    for obj in shapes {
        let (status, message) = run_health(&obj).unwrap_or_else(|e| panic!("{obj}: {e}"));
        assert!(
            ARGO_STATUSES.contains(&status.as_str()),
            "{obj}: status {status:?} is not one Argo CD accepts"
        );
        assert!(!message.is_empty(), "{obj}: empty message");
    }
}

/// The converter itself: a value round-trips through Lua unchanged (checked by Lua printing a
/// few fields back), so the cases above test the script and not a lossy conversion.
#[test]
fn json_to_lua_literal_keeps_values() {
    let value = json!({
        "s": "a\"b\\c\nd\u{7f}é",
        "n": 3,
        "f": 0.5,
        "neg": -12,
        "t": true,
        "list": ["x", null, "z"],
        "nested": {"k": {"deep": "v"}},
    });
    let mut literal = String::new();
    lua_literal(&value, &mut literal);
    let chunk = format!(
        "local v = {literal}\nio.write(v.s, '|', v.n, '|', v.f, '|', v.neg, '|', tostring(v.t), '|', \
         v.list[1], tostring(v.list[2]), v.list[3], '|', v.nested.k.deep)"
    );
    let out = output_ok(Command::new("lua5.1").args(["-e", &chunk]), INSTALL_HINT);
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        "a\"b\\c\nd\u{7f}é|3|0.5|-12|true|xnilz|v"
    );
}
