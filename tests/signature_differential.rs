//! An independent check of our RPC signature (`src/aliyun/signature.rs`, version 1.0, HMAC-SHA1):
//! thousands of seeded random requests are signed by our signer and by Alibaba's official Python
//! SDK (PyPI `aliyun-python-sdk-core`, driven by `tests/support/official_signer.py` in the venv that
//! `scripts/venv.sh` installs), and both must agree byte for byte on the string to sign, the
//! signature and, for requests built by the SDK's own request path, the query string it sends.
//!
//! Two kinds of cases:
//! - compose: the SDK's RPC composer (`rpc_signature_composer.__compose_string_to_sign` and
//!   `__get_signature`, which signs with `sha_hmac1`) on exactly our parameters;
//! - request: the SDK's whole `RpcRequest.get_url` path (query and, for POST, body parameters), with
//!   its Timestamp and SignatureNonce generators pinned to the case's values. That path adds its own
//!   common parameters; one is a known quirk of the SDK: it always sends and signs an empty
//!   `SignatureType=`. Our client does not send it; the comparison signs exactly what the SDK
//!   sends, so it changes nothing for the algorithm.
//!
//! Byte classes in parameter names, values and secrets: ASCII letters and digits, the unreserved
//! `-_.~`, every other printable ASCII character (space `+ * / % & = ? #` ...), literal escapes such
//! as `%20` `%2A` `%7E`, control characters (NUL to 0x1F, DEL), two-, three- (CJK and others) and
//! four-byte (emoji and others) UTF-8, empty values, empty secrets, and STS tokens with `+/= ~*&`.
//! GET and POST. The coverage of each class is checked, so another seed cannot silently drop one.
//!
//! `SIGNATURE_DIFF_SEED` (decimal or 0x-hex) replays another seed; the seed is printed on failure.

mod support;

use std::collections::{BTreeMap, HashSet};
use std::fmt::Write as _;
use std::io::{BufRead, BufReader, Read, Write};
use std::process::Stdio;
use std::time::Instant;

use ecs_vnc_operator::aliyun::signature::{percent_decode, percent_encode, sign, string_to_sign};
use serde::Deserialize;
use serde_json::json;
use support::venv;

const DEFAULT_SEED: u64 = 0x00ec_5a1b_ab0c_0de1;
const RANDOM_COMPOSE_CASES: usize = 4000;
const RANDOM_REQUEST_CASES: usize = 1000;
/// Mismatching cases printed in full; the rest are counted.
const SHOWN_MISMATCHES: usize = 5;
const API_VERSION: &str = "2014-05-26";
/// Alibaba's documented example: <https://www.alibabacloud.com/help/doc-detail/28139.htm>.
const DOCUMENTED_SIGNATURE: &str = "OLeaidS1JvxuMvnyHOwuJ+uX5qY=";
/// Parameters the SDK's request path sets itself (over any of the same name), or drops (`Signature`).
const SDK_COMMON: [&str; 11] = [
    "Version",
    "Action",
    "Format",
    "RegionId",
    "Timestamp",
    "SignatureMethod",
    "SignatureType",
    "SignatureVersion",
    "SignatureNonce",
    "AccessKeyId",
    "Signature",
];

type Params = Vec<(String, String)>;

fn as_strs(params: &Params) -> impl Iterator<Item = (&str, &str)> {
    params.iter().map(|(n, v)| (n.as_str(), v.as_str()))
}

// ---------------------------------------------------------------------------------------------
// Cases

enum Kind {
    /// The SDK's composer on exactly these parameters (never a name twice: the SDK keeps a dict).
    Compose { params: Params },
    /// `RpcRequest.get_url`: the SDK adds its common parameters itself.
    Request(Request),
}

struct Request {
    access_key_id: String,
    region_id: String,
    action: String,
    format: &'static str,
    timestamp: String,
    nonce: String,
    /// May hold a stale `Signature`, which both signers must leave out.
    query: Params,
    body: Params,
}

struct Case {
    id: usize,
    label: &'static str,
    method: &'static str,
    secret: String,
    kind: Kind,
}

impl Case {
    fn compose(label: &'static str, method: &'static str, secret: &str, params: Params) -> Case {
        Case {
            id: 0,
            label,
            method,
            secret: secret.to_string(),
            kind: Kind::Compose { params },
        }
    }

    fn to_json(&self) -> serde_json::Value {
        match &self.kind {
            Kind::Compose { params } => json!({
                "id": self.id, "kind": "compose", "method": self.method, "secret": self.secret,
                "params": params,
            }),
            Kind::Request(r) => json!({
                "id": self.id, "kind": "request", "method": self.method, "secret": self.secret,
                "access_key_id": r.access_key_id, "region_id": r.region_id, "product": "Ecs",
                "version": API_VERSION, "action": r.action, "format": r.format,
                "timestamp": r.timestamp, "nonce": r.nonce, "query": r.query, "body": r.body,
            }),
        }
    }

    /// What the SDK puts in the URL (request cases), `Signature` aside: the query parameters and the
    /// common ones `RpcRequest.get_url` and `rpc_signature_composer` add.
    fn url_params(r: &Request) -> Params {
        let mut params: Params = r
            .query
            .iter()
            .filter(|(n, _)| n != "Signature")
            .cloned()
            .collect();
        for (name, value) in [
            ("Version", API_VERSION),
            ("Action", &r.action),
            ("Format", r.format),
            ("RegionId", &r.region_id),
            ("Timestamp", &r.timestamp),
            ("SignatureMethod", "HMAC-SHA1"),
            ("SignatureType", ""),
            ("SignatureVersion", "1.0"),
            ("SignatureNonce", &r.nonce),
            ("AccessKeyId", &r.access_key_id),
        ] {
            params.push((name.to_string(), value.to_string()));
        }
        params
    }

    /// Every parameter handed to our signer: for requests the URL's, the body's, and the stale
    /// `Signature` when there is one (our signer must ignore it, as the SDK drops it).
    fn our_params(&self) -> Params {
        match &self.kind {
            Kind::Compose { params } => params.clone(),
            Kind::Request(r) => {
                let mut params = Case::url_params(r);
                params.extend(r.query.iter().filter(|(n, _)| n == "Signature").cloned());
                params.extend(r.body.iter().cloned());
                params
            }
        }
    }

    /// Every parameter of the case as given (for a request, its query's and its body's).
    fn given(&self) -> Vec<(&str, &str)> {
        let given: Vec<&(String, String)> = match &self.kind {
            Kind::Compose { params } => params.iter().collect(),
            Kind::Request(r) => r.query.iter().chain(&r.body).collect(),
        };
        given
            .into_iter()
            .map(|(n, v)| (n.as_str(), v.as_str()))
            .collect()
    }

    fn names(&self) -> Vec<&str> {
        self.given().into_iter().map(|(n, _)| n).collect()
    }

    fn values(&self) -> Vec<&str> {
        self.given().into_iter().map(|(_, v)| v).collect()
    }
}

// ---------------------------------------------------------------------------------------------
// Byte classes and the random generator

#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Debug)]
enum Class {
    Letter,
    Digit,
    /// `-_.~`
    Unreserved,
    /// Every other printable ASCII character, space included.
    Reserved,
    /// 0x00-0x1F and 0x7F.
    Control,
    /// U+0080-U+07FF.
    TwoByte,
    /// U+4E00-U+9FFF.
    Cjk,
    /// The rest of U+0800-U+FFFF.
    ThreeByte,
    /// U+1F000-U+1FAFF.
    Emoji,
    /// The rest of U+10000-U+10FFFF.
    FourByte,
}

const CLASSES: [Class; 10] = [
    Class::Letter,
    Class::Digit,
    Class::Unreserved,
    Class::Reserved,
    Class::Control,
    Class::TwoByte,
    Class::Cjk,
    Class::ThreeByte,
    Class::Emoji,
    Class::FourByte,
];

const LETTERS: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";
const DIGITS: &[u8] = b"0123456789";
const UNRESERVED: &[u8] = b"-_.~";
const RESERVED: &[u8] = b" !\"#$%&'()*+,/:;<=>?@[\\]^`{|}";
/// Text that looks already escaped (or half escaped): must be encoded again, `%` as `%25`.
const ESCAPE_LOOKALIKES: [&str; 12] = [
    "%20",
    "%2A",
    "%2a",
    "%7E",
    "%25",
    "%",
    "%%",
    "%2",
    "+",
    "%2B",
    "%E4%B8%AD",
    "%zz",
];
const ALNUM: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
const BASE64: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

fn classify(c: char) -> Class {
    let u = u32::from(c);
    match c {
        'A'..='Z' | 'a'..='z' => Class::Letter,
        '0'..='9' => Class::Digit,
        '-' | '_' | '.' | '~' => Class::Unreserved,
        '\0'..='\x1f' | '\x7f' => Class::Control,
        ' '..='~' => Class::Reserved,
        _ if u < 0x800 => Class::TwoByte,
        _ if (0x4e00..=0x9fff).contains(&u) => Class::Cjk,
        _ if u < 0x1_0000 => Class::ThreeByte,
        _ if (0x1_f000..=0x1_faff).contains(&u) => Class::Emoji,
        _ => Class::FourByte,
    }
}

struct Gen {
    rng: fastrand::Rng,
}

impl Gen {
    fn pick(&mut self, set: &[u8]) -> char {
        char::from(set[self.rng.usize(..set.len())])
    }

    fn char_in(&mut self, class: Class) -> char {
        let range = |g: &mut Gen, lo: u32, hi: u32| loop {
            // Surrogates are not chars; retry.
            if let Some(c) = char::from_u32(g.rng.u32(lo..=hi)) {
                break c;
            }
        };
        match class {
            Class::Letter => self.pick(LETTERS),
            Class::Digit => self.pick(DIGITS),
            Class::Unreserved => self.pick(UNRESERVED),
            Class::Reserved => self.pick(RESERVED),
            Class::Control => {
                let b = self.rng.u8(0..=0x20);
                char::from(if b == 0x20 { 0x7f } else { b })
            }
            Class::TwoByte => range(self, 0x80, 0x7ff),
            Class::Cjk => range(self, 0x4e00, 0x9fff),
            Class::ThreeByte => loop {
                let c = range(self, 0x800, 0xffff);
                if classify(c) == Class::ThreeByte {
                    break c;
                }
            },
            Class::Emoji => range(self, 0x1_f000, 0x1_faff),
            Class::FourByte => loop {
                let c = range(self, 0x1_0000, 0x10_ffff);
                if classify(c) == Class::FourByte {
                    break c;
                }
            },
        }
    }

    fn class(&mut self) -> Class {
        CLASSES[self.rng.usize(..CLASSES.len())]
    }

    /// `min..=max` characters: one class, all classes, mostly alphanumeric with a few others, or
    /// with escape look-alikes mixed in.
    fn text(&mut self, min: usize, max: usize) -> String {
        let len = self.rng.usize(min..=max);
        let mut out = String::new();
        match self.rng.u8(..4) {
            0 => {
                let class = self.class();
                (0..len).for_each(|_| out.push(self.char_in(class)));
            }
            1 => (0..len).for_each(|_| {
                let class = self.class();
                out.push(self.char_in(class));
            }),
            2 => (0..len).for_each(|_| {
                let class = if self.rng.u8(..5) == 0 {
                    self.class()
                } else {
                    Class::Letter
                };
                out.push(self.char_in(class));
            }),
            _ => (0..len).for_each(|_| {
                if self.rng.u8(..3) == 0 {
                    out.push_str(ESCAPE_LOOKALIKES[self.rng.usize(..ESCAPE_LOOKALIKES.len())]);
                } else {
                    let class = self.class();
                    out.push(self.char_in(class));
                }
            }),
        }
        out
    }

    fn alnum(&mut self, len: usize) -> String {
        (0..len).map(|_| self.pick(ALNUM)).collect()
    }

    /// A name as ECS uses them (letters, digits, dots), or anything non-empty.
    fn name(&mut self) -> String {
        match self.rng.u8(..10) {
            0..=1 => {
                const NAMES: [&str; 8] = [
                    "InstanceId",
                    "InstanceIds",
                    "ZoneId",
                    "PageSize",
                    "PageNumber",
                    "ResourceGroupId",
                    "DryRun",
                    "SecurityToken",
                ];
                NAMES[self.rng.usize(..NAMES.len())].to_string()
            }
            2..=3 => {
                let n = self.rng.u8(1..=20);
                let part = ["Key", "Value"][self.rng.usize(..2)];
                format!("Tag.{n}.{part}")
            }
            _ => self.text(1, 10),
        }
    }

    fn value(&mut self) -> String {
        match self.rng.u8(..20) {
            0..=2 => String::new(),
            3 => self.sts_token(),
            4 => self.text(50, 200),
            _ => self.text(0, 24),
        }
    }

    /// Base64 like a real STS token, with `+/= ~*&` forced in (the last four are not base64, but a
    /// token is opaque and must survive whatever it holds).
    fn sts_token(&mut self) -> String {
        let mut token = String::from("CAIS");
        let len = self.rng.usize(100..=1000);
        (0..len).for_each(|_| token.push(self.pick(BASE64)));
        for c in "+/= ~*&".chars() {
            for _ in 0..self.rng.usize(1..=3) {
                // All ASCII so far: every index is a char boundary.
                token.insert(self.rng.usize(4..=token.len()), c);
            }
        }
        token.push_str(["", "=", "=="][self.rng.usize(..3)]);
        token
    }

    fn secret(&mut self) -> String {
        match self.rng.u8(..10) {
            0 => String::new(),
            1..=2 => self.text(1, 20),
            _ => self.alnum(30),
        }
    }

    fn method(&mut self) -> &'static str {
        if self.rng.bool() { "GET" } else { "POST" }
    }

    /// Up to `max` parameters with distinct names, none of `reserved`.
    fn params(&mut self, max: usize, taken: &mut HashSet<String>, reserved: &[&str]) -> Params {
        let count = self.rng.usize(0..=max);
        let mut params = Params::new();
        while params.len() < count {
            let name = self.name();
            if reserved.contains(&name.as_str()) || !taken.insert(name.clone()) {
                continue;
            }
            let value = if name == "SecurityToken" {
                self.sts_token()
            } else {
                self.value()
            };
            params.push((name, value));
        }
        params
    }

    fn uuid(&mut self) -> String {
        let hex = format!("{:032x}", self.rng.u128(..));
        format!(
            "{}-{}-4{}-a{}-{}",
            &hex[..8],
            &hex[8..12],
            &hex[13..16],
            &hex[17..20],
            &hex[20..]
        )
    }

    fn timestamp(&mut self) -> String {
        format!(
            "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}Z",
            self.rng.u16(2015..=2035),
            self.rng.u8(1..=12),
            self.rng.u8(1..=28),
            self.rng.u8(0..24),
            self.rng.u8(0..60),
            self.rng.u8(0..60)
        )
    }

    fn random_compose(&mut self) -> Case {
        let mut taken = HashSet::new();
        let params = self.params(8, &mut taken, &["Signature"]);
        let method = self.method();
        let secret = self.secret();
        Case::compose("random compose", method, &secret, params)
    }

    fn random_request(&mut self) -> Case {
        const REGIONS: [&str; 5] = [
            "cn-hangzhou",
            "cn-shanghai",
            "ap-southeast-1",
            "eu-central-1",
            "us-west-1",
        ];
        const ACTIONS: [&str; 3] = [
            "DescribeInstanceVncUrl",
            "DescribeInstances",
            "DescribeRegions",
        ];
        let method = self.method();
        let mut taken = HashSet::new();
        let mut query = Params::new();
        if self.rng.u8(..10) < 6 {
            taken.insert("SecurityToken".to_string());
            query.push(("SecurityToken".to_string(), self.sts_token()));
        }
        query.extend(self.params(6, &mut taken, &SDK_COMMON));
        if self.rng.u8(..10) == 0 {
            query.push(("Signature".to_string(), self.text(0, 30)));
        }
        let body = if method == "POST" && self.rng.bool() {
            self.params(4, &mut taken, &SDK_COMMON)
        } else {
            Params::new()
        };
        let access_key_id = if self.rng.bool() {
            format!("LTAI{}", self.alnum(20))
        } else {
            format!("STS.{}", self.alnum(28))
        };
        let nonce = if self.rng.u8(..10) == 0 {
            self.text(1, 40)
        } else {
            self.uuid()
        };
        Case {
            id: 0,
            label: "random request",
            method,
            secret: self.secret(),
            kind: Kind::Request(Request {
                access_key_id,
                region_id: REGIONS[self.rng.usize(..REGIONS.len())].to_string(),
                action: ACTIONS[self.rng.usize(..ACTIONS.len())].to_string(),
                format: if self.rng.u8(..4) == 0 { "XML" } else { "JSON" },
                timestamp: self.timestamp(),
                nonce,
                query,
                body,
            }),
        }
    }
}

fn pairs(list: &[(&str, &str)]) -> Params {
    list.iter()
        .map(|(n, v)| (n.to_string(), v.to_string()))
        .collect()
}

/// Hand-picked cases: the documented example, what our client sends, and name orders where
/// encoding changes how names compare.
fn fixed_cases() -> Vec<Case> {
    let documented = pairs(&ecs_vnc_operator::aliyun::signature::DOCUMENTED_EXAMPLE);
    let sts = "CAIS+/= ~*&8wF1q6Ft5B2yfSjIr5bYBt/Yh+1uhIRvUmyzj0U=";
    let client = |token: &str| {
        let mut params = pairs(&[
            ("Action", "DescribeInstanceVncUrl"),
            ("Version", API_VERSION),
            ("Format", "JSON"),
            ("AccessKeyId", "STS.NUgYrLnoC37mZZCNnAbez2AqZ"),
            ("SignatureMethod", "HMAC-SHA1"),
            ("SignatureVersion", "1.0"),
            ("SignatureNonce", "7c1e3f9a-2b4d-4e8f-9a6b-1c2d3e4f5a6b"),
            ("Timestamp", "2026-01-02T03:04:05Z"),
            ("RegionId", "cn-hangzhou"),
            ("InstanceId", "i-bp1hzoinajzkh91h1234"),
        ]);
        if !token.is_empty() {
            params.push(("SecurityToken".to_string(), token.to_string()));
        }
        params
    };
    let mut cases = vec![
        Case::compose("documented example", "GET", "testsecret", documented),
        Case::compose("client-shaped", "POST", "sim-access-key-secret", client("")),
        Case::compose(
            "client-shaped",
            "POST",
            "sim-access-key-secret",
            client(sts),
        ),
        Case::compose("empty", "GET", "", Params::new()),
        Case::compose("empty", "POST", "s", pairs(&[("", "")])),
    ];
    // Where raw and encoded names compare differently, and where they do not. Alibaba's documented
    // algorithm sorts by the names, then encodes (help.aliyun.com/document_detail/172849.html:
    // "参数排序" then "对排序之后的请求参数的名称和值分别 ... 编码", joined "按步骤(a)排好的顺序"), and
    // so does the SDK. Different: '.' < '/' but "%2F" < "."; 'z' < 'é' but "%C3%A9" < "z". The
    // same either way: ' ' < '.' and "%20" < "."; '%' < '~' and "%25" < "~"; '*' < '-' and
    // "%2A" < "-"; a prefix first; code-point order equals UTF-8 byte order (U+FFFF before
    // U+10000, unlike Java's UTF-16 order, which no ECS parameter name can notice).
    for names in [
        ["a.b", "a/b"],
        ["z", "é"],
        ["Tag.1.Key", "Tag 1 Key"],
        ["x~", "x%"],
        ["a-", "a*"],
        ["k", "k\u{0}"],
        ["中", "😀"],
        ["\u{ffff}", "\u{10000}"],
    ] {
        let params = pairs(&[(names[0], "1"), (names[1], "2")]);
        cases.push(Case::compose("name order", "GET", "s", params));
    }
    cases
}

// ---------------------------------------------------------------------------------------------
// The official signer

#[derive(Deserialize)]
struct Header {
    sdk: String,
    python: String,
}

#[derive(Deserialize)]
struct Official {
    id: usize,
    string_to_sign: String,
    signature: String,
    url: Option<String>,
}

const FIX: &str = "run scripts/venv.sh (it installs tests/requirements.txt, aliyun-python-sdk-core \
                   included, into the venv)";

/// Runs every case through one Python process; the answers in case order.
fn official(cases: &[Case]) -> (Header, Vec<Official>) {
    let mut script = venv::script("official_signer.py", FIX);
    let mut child = script
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot start {script:?}: {e}; {FIX}"));
    let mut input = String::new();
    for case in cases {
        input.push_str(&case.to_json().to_string());
        input.push('\n');
    }
    // Written on another thread: the answers come back while the cases are still being written.
    let mut stdin = child.stdin.take().unwrap();
    let writer = std::thread::spawn(move || stdin.write_all(input.as_bytes()));
    let mut stderr = child.stderr.take().unwrap();
    let errors = std::thread::spawn(move || {
        let mut text = String::new();
        let _ = stderr.read_to_string(&mut text);
        text
    });
    let lines: Vec<String> = BufReader::new(child.stdout.take().unwrap())
        .lines()
        .collect::<Result<_, _>>()
        .expect("reading the official signer's output");
    let status = child.wait().unwrap();
    let stderr = errors.join().unwrap();
    let written = writer.join().unwrap();
    assert!(
        status.success(),
        "tests/support/official_signer.py failed ({status}): {FIX}\n{stderr}"
    );
    written.expect("writing the cases to the official signer");
    let (header, answers) = lines
        .split_first()
        .expect("the official signer said nothing");
    let header: Header = serde_json::from_str(header).expect("the official signer's header");
    let answers: Vec<Official> = answers
        .iter()
        .map(|line| serde_json::from_str(line).expect("an answer of the official signer"))
        .collect();
    assert_eq!(answers.len(), cases.len(), "one answer per case");
    for (case, answer) in cases.iter().zip(&answers) {
        assert_eq!(case.id, answer.id, "answers come back in case order");
    }
    (header, answers)
}

// ---------------------------------------------------------------------------------------------
// Comparison and reporting

struct Ours {
    string_to_sign: String,
    signature: String,
    /// Request cases: the encoded `name=value` pairs of the URL but `Signature` (compared on its
    /// own), sorted: the SDK's order is its dict's, and only the signature covers an order.
    url_pairs: Option<Vec<String>>,
}

struct Mismatch<'a> {
    case: &'a Case,
    ours: Ours,
    sdk: &'a Official,
    url_differs: bool,
}

fn ours(case: &Case) -> Ours {
    let params = case.our_params();
    let to_sign = string_to_sign(case.method, as_strs(&params));
    let signature = sign(&case.secret, &to_sign);
    let url_pairs = match &case.kind {
        Kind::Compose { .. } => None,
        Kind::Request(r) => {
            let mut url: Vec<String> = Case::url_params(r)
                .iter()
                .map(|(n, v)| format!("{}={}", percent_encode(n), percent_encode(v)))
                .collect();
            url.sort();
            Some(url)
        }
    };
    Ours {
        string_to_sign: to_sign,
        signature,
        url_pairs,
    }
}

fn sdk_url_pairs(url: &str) -> Vec<String> {
    let query = url
        .strip_prefix("/?")
        .expect("the SDK's URL starts with /?");
    let mut pairs: Vec<String> = query
        .split('&')
        .filter(|pair| !pair.starts_with("Signature="))
        .map(str::to_string)
        .collect();
    pairs.sort();
    pairs
}

/// A string for a report: Rust escapes (control characters and the like), long ones cut.
fn show(s: &str) -> String {
    const MAX: usize = 80;
    let count = s.chars().count();
    if count <= MAX {
        format!("{s:?}")
    } else {
        let head: String = s.chars().take(MAX).collect();
        format!("{head:?}... ({count} chars)")
    }
}

/// The parameter names in the order a string to sign lists them, decoded.
fn name_order(to_sign: &str) -> Vec<String> {
    let mut parts = to_sign.splitn(3, '&');
    let query = parts.nth(2).and_then(percent_decode).unwrap_or_default();
    if query.is_empty() {
        return Vec::new();
    }
    query
        .split('&')
        .map(|pair| {
            let name = pair.split('=').next().unwrap_or_default();
            percent_decode(name).unwrap_or_else(|| name.to_string())
        })
        .collect()
}

fn sorted(mut v: Vec<String>) -> Vec<String> {
    v.sort();
    v
}

const ORDER_ONLY: &str = "same name=value pairs, different order";

/// Why two strings to sign differ, in a word.
fn diagnose(ours: &str, sdk: &str) -> &'static str {
    let (a, b) = (name_order(ours), name_order(sdk));
    if a != b && sorted(a) == sorted(b) {
        let pairs = |s: &str| {
            let q = s.splitn(3, '&').nth(2).and_then(percent_decode);
            sorted(
                q.unwrap_or_default()
                    .split('&')
                    .map(str::to_string)
                    .collect(),
            )
        };
        if pairs(ours) == pairs(sdk) {
            return ORDER_ONLY;
        }
    }
    "different content"
}

fn first_difference(a: &str, b: &str) -> String {
    let at = a
        .bytes()
        .zip(b.bytes())
        .position(|(x, y)| x != y)
        .unwrap_or(a.len().min(b.len()));
    // Strings to sign are ASCII (everything in them is percent-encoded), so byte slicing is safe;
    // fall back to the whole string otherwise.
    let window = |s: &str| {
        let lo = at.saturating_sub(40);
        let hi = (at + 60).min(s.len());
        s.get(lo..hi)
            .map_or_else(|| show(s), |w| format!("...{w}..."))
    };
    format!(
        "first difference at byte {at}\n      ours: {}\n      sdk:  {}",
        window(a),
        window(b)
    )
}

fn report(case: &Case, ours: &Ours, sdk: &Official) -> String {
    let mut out = String::new();
    let kind = match case.kind {
        Kind::Compose { .. } => "composer",
        Kind::Request(_) => "RpcRequest.get_url",
    };
    let _ = writeln!(
        out,
        "case #{} ({}, {}, SDK {kind}), secret {}",
        case.id,
        case.label,
        case.method,
        show(&case.secret)
    );
    let list = |out: &mut String, title: &str, params: &Params| {
        let _ = writeln!(out, "  {title}:");
        for (n, v) in params {
            let _ = writeln!(out, "    {} = {}", show(n), show(v));
        }
    };
    match &case.kind {
        Kind::Compose { params } => list(&mut out, "parameters", params),
        Kind::Request(r) => {
            let _ = writeln!(
                out,
                "  action {}, region {}, access key id {}, format {}, timestamp {}, nonce {}",
                r.action,
                r.region_id,
                r.access_key_id,
                r.format,
                r.timestamp,
                show(&r.nonce)
            );
            list(&mut out, "query parameters", &r.query);
            list(&mut out, "body parameters", &r.body);
        }
    }
    if ours.string_to_sign != sdk.string_to_sign {
        let _ = writeln!(
            out,
            "  string to sign differs ({}): {}",
            diagnose(&ours.string_to_sign, &sdk.string_to_sign),
            first_difference(&ours.string_to_sign, &sdk.string_to_sign)
        );
        let (a, b) = (
            name_order(&ours.string_to_sign),
            name_order(&sdk.string_to_sign),
        );
        if a != b {
            let _ = writeln!(
                out,
                "    name order, ours: {a:?}\n    name order, sdk:  {b:?}"
            );
        }
    }
    if ours.signature != sdk.signature {
        let _ = writeln!(
            out,
            "  signature: ours {} sdk {}",
            ours.signature, sdk.signature
        );
    }
    if let (Some(ours_url), Some(url)) = (&ours.url_pairs, &sdk.url) {
        let theirs = sdk_url_pairs(url);
        if ours_url != &theirs {
            let only = |a: &[String], b: &[String]| -> Vec<String> {
                a.iter()
                    .filter(|p| !b.contains(p))
                    .map(|p| show(p))
                    .collect()
            };
            let _ = writeln!(
                out,
                "  URL pairs only in ours: {:?}\n  URL pairs only in the SDK's: {:?}",
                only(ours_url, &theirs),
                only(&theirs, ours_url)
            );
        }
    }
    out
}

fn seed() -> u64 {
    let Ok(text) = std::env::var("SIGNATURE_DIFF_SEED") else {
        return DEFAULT_SEED;
    };
    let text = text.trim();
    let parsed = match text.strip_prefix("0x") {
        Some(hex) => u64::from_str_radix(hex, 16),
        None => text.parse(),
    };
    parsed.unwrap_or_else(|e| panic!("SIGNATURE_DIFF_SEED={text:?}: {e}"))
}

/// The fixed cases and the seeded random ones, numbered.
fn cases(seed: u64) -> Vec<Case> {
    let mut generator = Gen {
        rng: fastrand::Rng::with_seed(seed),
    };
    let mut cases = fixed_cases();
    cases.extend((0..RANDOM_COMPOSE_CASES).map(|_| generator.random_compose()));
    cases.extend((0..RANDOM_REQUEST_CASES).map(|_| generator.random_request()));
    for (id, case) in cases.iter_mut().enumerate() {
        case.id = id;
    }
    cases
}

/// Every byte class shows up in names and in values (secrets aside), whatever the seed; and
/// plenty of cases have an empty value.
fn assert_every_class_is_covered(cases: &[Case], seed: u64) {
    let mut coverage: BTreeMap<(Class, &str), usize> = BTreeMap::new();
    for case in cases {
        for (place, texts) in [("names", case.names()), ("values", case.values())] {
            for c in texts.iter().flat_map(|t| t.chars()) {
                *coverage.entry((classify(c), place)).or_default() += 1;
            }
        }
    }
    for class in CLASSES {
        for place in ["names", "values"] {
            let n = coverage.get(&(class, place)).copied().unwrap_or(0);
            assert!(
                n >= 20,
                "seed {seed:#x}: only {n} {class:?} characters in {place}"
            );
        }
    }
    let empty_values = cases
        .iter()
        .filter(|c| c.values().iter().any(|v| v.is_empty()))
        .count();
    assert!(
        empty_values > 100,
        "cases with an empty value: {empty_values}"
    );
}

/// The cases where our signer and the SDK differ.
fn mismatches<'a>(cases: &'a [Case], answers: &'a [Official]) -> Vec<Mismatch<'a>> {
    let mut mismatches = Vec::new();
    for (case, sdk) in cases.iter().zip(answers) {
        let ours = ours(case);
        let url_differs = match (&ours.url_pairs, &sdk.url) {
            (Some(a), Some(url)) => a != &sdk_url_pairs(url),
            (None, None) => false,
            _ => panic!("case #{}: a URL on one side only", case.id),
        };
        if ours.string_to_sign != sdk.string_to_sign
            || ours.signature != sdk.signature
            || url_differs
        {
            mismatches.push(Mismatch {
                case,
                ours,
                sdk,
                url_differs,
            });
        }
    }
    mismatches
}

#[test]
fn our_signer_matches_alibabas_official_python_sdk() {
    let started = Instant::now();
    let seed = seed();
    let cases = cases(seed);
    assert_every_class_is_covered(&cases, seed);

    let (header, answers) = official(&cases);

    // The reference itself reproduces Alibaba's documented example.
    assert_eq!(
        answers[0].signature, DOCUMENTED_SIGNATURE,
        "{} does not reproduce the documented example",
        header.sdk
    );

    let mismatches = mismatches(&cases, &answers);
    let elapsed = started.elapsed();
    eprintln!(
        "{} cases (seed {seed:#x}) against {} on Python {}: {} differ, {elapsed:.2?}",
        cases.len(),
        header.sdk,
        header.python,
        mismatches.len()
    );
    if !mismatches.is_empty() {
        panic!("{}", summary(&mismatches, cases.len(), &header, seed));
    }
}

/// What the failure says: how many differ and how, by label and by diagnosis, and the first
/// few in full.
fn summary(mismatches: &[Mismatch], cases: usize, header: &Header, seed: u64) -> String {
    let mut summary = String::new();
    let count = |f: &dyn Fn(&Mismatch) -> bool| mismatches.iter().filter(|m| f(m)).count();
    let _ = writeln!(
        summary,
        "{} of {} cases differ from {} (seed {seed:#x}; SIGNATURE_DIFF_SEED replays one): \
         string to sign {}, signature {}, URL {}",
        mismatches.len(),
        cases,
        header.sdk,
        count(&|m| m.ours.string_to_sign != m.sdk.string_to_sign),
        count(&|m| m.ours.signature != m.sdk.signature),
        count(&|m| m.url_differs),
    );
    let mut by: BTreeMap<String, usize> = BTreeMap::new();
    for Mismatch {
        case, ours, sdk, ..
    } in mismatches
    {
        *by.entry(format!("label {:?}", case.label)).or_default() += 1;
        if ours.string_to_sign != sdk.string_to_sign {
            let why = diagnose(&ours.string_to_sign, &sdk.string_to_sign);
            *by.entry(format!("string to sign: {why}")).or_default() += 1;
        }
    }
    for (what, n) in by {
        let _ = writeln!(summary, "  {what}: {n}");
    }
    let unreserved_names = |case: &Case| {
        case.names().iter().all(|n| {
            n.bytes()
                .all(|b| b.is_ascii_alphanumeric() || UNRESERVED.contains(&b))
        })
    };
    let _ = writeln!(
        summary,
        "  among them, cases whose parameter names are all A-Z a-z 0-9 - _ . ~: {}",
        count(&|m| unreserved_names(m.case)),
    );
    if count(&|m| {
        m.ours.string_to_sign != m.sdk.string_to_sign
            && diagnose(&m.ours.string_to_sign, &m.sdk.string_to_sign) == ORDER_ONLY
    }) == mismatches.len()
    {
        let _ = writeln!(
            summary,
            "  hint: every difference is the order of the parameters alone; the SDK, like \
             Alibaba's documented algorithm, sorts by the raw names and then encodes"
        );
    }
    let _ = writeln!(summary, "first {SHOWN_MISMATCHES}:");
    for Mismatch {
        case, ours, sdk, ..
    } in mismatches.iter().take(SHOWN_MISMATCHES)
    {
        summary.push_str(&report(case, ours, sdk));
    }
    summary
}
