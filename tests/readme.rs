//! The README as a tested contract (issue 16): a change that makes the docs wrong fails here.
//!
//! Without a cluster (plain `cargo test`):
//! - the README's markers for runnable blocks are well formed, and the "Try it on your machine"
//!   walk-through is there with its pieces;
//! - the flag table of `ecs-vnc-operator run` equals `run --help` in both directions (flags, env
//!   names, defaults, listed values), and the values the prose around it promises are the ones the
//!   command line accepts (durations, zero, ranges, the env spellings of `--leader-elect`);
//! - the exit codes listed for `kubectl vnc` equal its `--help`, the table in `src/plugin/mod.rs`
//!   and the constants in `src/plugin/error.rs`, meaning by meaning;
//! - the `url` command's block runs as written against an in-process `ecs-sim`, prints the JSON
//!   fields the README names, and each documented exit code is the one a matching failure gets;
//! - every `kubectl get vncsessions` header shown is the CRD's printer columns.
//!
//! End to end (`#[ignore]`d; `scripts/test.sh` runs them):
//! - the metrics table equals the families, and their label names, a fresh operator serves;
//! - the README's runnable blocks run, in one shell as a reader would type them, against the
//!   local control plane and `ecs-sim`; what the README shows next to them (output, exit codes,
//!   columns, the status a `Ready` session has) is compared with what they print; and the stop
//!   block leaves no process and no file behind.
//!
//! Markers (an HTML comment on the line right before a fenced block, invisible on GitHub):
//! - `<!-- readme-test: run -->`: a `sh` block the walk-through test runs; every command in it
//!   must succeed, as under `set -e -o pipefail`. The blocks of "Try it on your machine" run
//!   first, then those of other sections in document order, all in one bash session (variables,
//!   `export`s and the working directory carry over; the repository root is where it starts).
//! - `<!-- readme-test: output -->`: what the run block before it prints (stdout and stderr). Each
//!   line shown must match a line printed, in order (other printed lines may come between).
//!   Matching ignores the width of whitespace; any run of digits matches any run of digits
//!   (timestamps, counts, seconds left), except the number after the word `exit`; an age or
//!   duration such as `3s` or `2m` matches any other; `...` matches anything.
//! - `<!-- readme-test: transcript -->`: a block of `$ command` lines, each followed by what it
//!   prints. The commands run after the run blocks, without `set -e` (a transcript may show a
//!   failing command and its exit code), in a namespace holding the walk-through's
//!   `web-1-console` and `db-1`, a session whose Secret `missing-secret` does not exist. A
//!   transcript shows everything its command prints, line for line, matched as above; rows
//!   under an `Events:` table header are not compared (they depend on the session's history).
//! - `<!-- readme-test: cleanup -->`: stops what the run blocks started. It runs last, also when
//!   a block failed, and must leave nothing running and no file in `$TMPDIR` behind.
//!
//! In the walk-through, `cargo` is a shell function that stands in for cargo: `cargo test` has
//! built the binaries already (a nested cargo would wait on the lock it holds); `cargo build
//! --bin X` only checks that X is built.

mod support;

use std::collections::{BTreeMap, BTreeSet};
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use support::cluster::bin_dir;
use support::ecs_sim::{self, WINDOWS};
use support::env::Env;
use support::markdown::{code_spans, only_code, outside_parens, table};
use support::paths::{read as source, root};
use support::ports::closed_endpoint;

const OPERATOR: &str = env!("CARGO_BIN_EXE_ecs-vnc-operator");
const PLUGIN: &str = env!("CARGO_BIN_EXE_kubectl-vnc");
const WALKTHROUGH: &str = "## Try it on your machine";
const PASTE: &str = "paste it from the hand-over of issue 16 (tests/readme.rs checks it)";
const MARKER_KINDS: [&str; 4] = ["run", "output", "transcript", "cleanup"];

/// The end-to-end tests each start a control plane; on 2 shared cores one at a time is kinder
/// to the timing the walk-through shows (a URL's 15 s window).
static SERIAL: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// README.md (or, to try a README before it is pasted, the file `ECSVNC_README` names).
fn readme() -> Readme {
    let path = std::env::var_os("ECSVNC_README")
        .map(PathBuf::from)
        .unwrap_or_else(|| root().join("README.md"));
    let text = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()));
    Readme::parse(&text)
}

// ------------------------------------------------------------------------------------------------
// The README as data
// ------------------------------------------------------------------------------------------------

#[derive(Clone, Debug)]
struct Block {
    /// The `readme-test` marker's kind, if any.
    marker: Option<String>,
    lang: String,
    body: String,
    /// 1-based line of the opening fence.
    line: usize,
    /// The `## ` heading it is under.
    section: String,
}

struct Readme {
    lines: Vec<String>,
    blocks: Vec<Block>,
    /// Problems with the markers themselves (unknown kind, no block after it).
    marker_errors: Vec<String>,
}

fn marker_kind(line: &str) -> Option<String> {
    let inner = line
        .trim()
        .strip_prefix("<!--")?
        .strip_suffix("-->")?
        .trim();
    Some(inner.strip_prefix("readme-test:")?.trim().to_owned())
}

impl Readme {
    fn parse(text: &str) -> Readme {
        let lines: Vec<String> = text.lines().map(str::to_owned).collect();
        let mut blocks = Vec::new();
        let mut marker_errors = Vec::new();
        let mut section = String::new();
        let mut i = 0;
        while i < lines.len() {
            let line = &lines[i];
            let trimmed = line.trim_start();
            if let Some(kind) = marker_kind(line) {
                let next = lines.get(i + 1).map(|l| l.trim_start()).unwrap_or("");
                if !MARKER_KINDS.contains(&kind.as_str()) {
                    marker_errors.push(format!(
                        "README.md:{}: unknown marker `readme-test: {kind}` (known: {})",
                        i + 1,
                        MARKER_KINDS.join(", ")
                    ));
                } else if !next.starts_with("```") {
                    marker_errors.push(format!(
                        "README.md:{}: marker `readme-test: {kind}` is not on the line right before a fenced block",
                        i + 1
                    ));
                }
            } else if trimmed.starts_with("## ") && !line.starts_with(' ') {
                section = line.trim().to_owned();
            } else if let Some(lang) = trimmed.strip_prefix("```") {
                let indent = line.len() - trimmed.len();
                let marker = i.checked_sub(1).and_then(|p| marker_kind(&lines[p]));
                let start = i;
                let mut body = Vec::new();
                i += 1;
                while i < lines.len() && !lines[i].trim_start().starts_with("```") {
                    let l = &lines[i];
                    body.push(
                        l.get(indent.min(l.len() - l.trim_start().len())..)
                            .unwrap_or(""),
                    );
                    i += 1;
                }
                blocks.push(Block {
                    marker,
                    lang: lang.trim().to_owned(),
                    body: body.join("\n"),
                    line: start + 1,
                    section: section.clone(),
                });
            }
            i += 1;
        }
        Readme {
            lines,
            blocks,
            marker_errors,
        }
    }

    /// The text under the heading that starts with `heading` (its level included), up to the
    /// next heading of the same or a higher level. Fenced blocks are part of the text.
    fn section(&self, heading: &str) -> Option<String> {
        let level = heading.chars().take_while(|&c| c == '#').count();
        let start = self.lines.iter().position(|l| l.starts_with(heading))?;
        let mut out = Vec::new();
        let mut fenced = false;
        for line in &self.lines[start + 1..] {
            if line.trim_start().starts_with("```") {
                fenced = !fenced;
            }
            if !fenced {
                let hashes = line.chars().take_while(|&c| c == '#').count();
                if hashes > 0 && hashes <= level && line[hashes..].starts_with(' ') {
                    break;
                }
            }
            out.push(line.as_str());
        }
        Some(out.join("\n"))
    }

    fn section_or_paste(&self, heading: &str) -> String {
        self.section(heading)
            .unwrap_or_else(|| panic!("README.md has no section {heading:?} (yet): {PASTE}"))
    }

    fn marked(&self, kind: &str) -> Vec<&Block> {
        self.blocks
            .iter()
            .filter(|b| b.marker.as_deref() == Some(kind))
            .collect()
    }
}

/// "Exit codes: 0 ok, 1 unexpected, 2 usage (...), ..." from `text` (the paragraph or list item
/// that starts there): code → meaning. Items are cut at a `,` or `;` outside parentheses that is
/// followed by a number.
fn exit_code_list(text: &str) -> BTreeMap<u8, String> {
    let at = text
        .find("Exit codes:")
        .expect("no \"Exit codes:\" in the section");
    let mut para = String::new();
    for (i, line) in text[at + "Exit codes:".len()..].lines().enumerate() {
        let t = line.trim();
        if i > 0 && (t.is_empty() || t.starts_with("- ") || t.starts_with('#')) {
            break;
        }
        para.push(' ');
        para.push_str(t);
    }
    let chars: Vec<char> = para.chars().collect();
    let mut items = Vec::new();
    let mut current = String::new();
    let mut depth = 0usize;
    for (i, &c) in chars.iter().enumerate() {
        match c {
            '(' => depth += 1,
            ')' => depth = depth.saturating_sub(1),
            ',' | ';' if depth == 0 => {
                let rest: String = chars[i + 1..].iter().collect();
                let rest = rest.trim_start();
                let digits = rest.chars().take_while(char::is_ascii_digit).count();
                if digits > 0 && rest[digits..].starts_with(' ') {
                    items.push(std::mem::take(&mut current));
                    continue;
                }
            }
            _ => {}
        }
        current.push(c);
    }
    items.push(current);
    let mut codes = BTreeMap::new();
    for item in items {
        let item = item.trim().trim_end_matches('.');
        let (num, meaning) = item
            .split_once(' ')
            .unwrap_or_else(|| panic!("exit-code item {item:?} is not \"N meaning\""));
        let code: u8 = num
            .parse()
            .unwrap_or_else(|_| panic!("exit-code item {item:?} does not start with a number"));
        assert!(
            codes.insert(code, meaning.trim().to_owned()).is_none(),
            "exit code {code} listed twice"
        );
    }
    codes
}

/// Lowercase words of a meaning, without the small words.
fn keywords(text: &str) -> Vec<String> {
    const SMALL: [&str; 16] = [
        "a", "an", "the", "and", "or", "but", "of", "to", "in", "on", "for", "with", "by", "is",
        "are", "its",
    ];
    text.split(|c: char| !c.is_ascii_alphanumeric() && c != '-')
        .map(|w| w.trim_matches('-').to_ascii_lowercase())
        .filter(|w| !w.is_empty() && !SMALL.contains(&w.as_str()))
        .collect()
}

/// True if `word` (or its stem, or a synonym) occurs in `text` (lowercase).
fn mentions(text: &str, word: &str) -> bool {
    let synonyms: &[&str] = match word {
        "ok" => &["done", "success"],
        _ => &[],
    };
    let stem = word
        .strip_suffix("es")
        .filter(|s| s.len() > 3)
        .or_else(|| word.strip_suffix('s').filter(|s| s.len() > 3))
        .unwrap_or(word);
    text.contains(word) || text.contains(stem) || synonyms.iter().any(|s| text.contains(s))
}

// ------------------------------------------------------------------------------------------------
// Output shown vs output printed
// ------------------------------------------------------------------------------------------------

#[derive(Clone, Debug, PartialEq)]
enum Pat {
    Lit(char),
    /// One or more whitespace characters.
    Space,
    /// One or more digits.
    Digits,
    /// An age or duration: `3s`, `2m`, `1h30m`.
    Age,
    /// `...`: anything.
    Any,
}

fn pattern(line: &str) -> Vec<Pat> {
    let chars: Vec<char> = line.trim().chars().collect();
    let mut out = Vec::new();
    let mut i = 0;
    let unit = |c: Option<&char>| c.is_some_and(|c| "smhd".contains(*c));
    let boundary = |c: Option<&char>| c.is_none_or(|c| c.is_whitespace());
    while i < chars.len() {
        let c = chars[i];
        if chars[i..].starts_with(&['.', '.', '.']) {
            out.push(Pat::Any);
            i += 3;
        } else if c.is_whitespace() {
            while i < chars.len() && chars[i].is_whitespace() {
                i += 1;
            }
            out.push(Pat::Space);
        } else if c.is_ascii_digit() {
            // An age: digits+unit, optionally twice, then whitespace or the end.
            let mut j = i;
            let mut parts = 0;
            loop {
                let k = j + chars[j..].iter().take_while(|c| c.is_ascii_digit()).count();
                if k > j && unit(chars.get(k)) {
                    j = k + 1;
                    parts += 1;
                    if parts < 2 {
                        continue;
                    }
                }
                break;
            }
            let previous_is_word = i > 0 && chars[i - 1].is_alphanumeric();
            let text: String = chars[..i].iter().collect();
            if text.trim_end().ends_with("exit") {
                // An exit code is what it says.
                while i < chars.len() && chars[i].is_ascii_digit() {
                    out.push(Pat::Lit(chars[i]));
                    i += 1;
                }
            } else if parts > 0 && boundary(chars.get(j)) && !previous_is_word {
                out.push(Pat::Age);
                i = j;
            } else {
                while i < chars.len() && chars[i].is_ascii_digit() {
                    i += 1;
                }
                out.push(Pat::Digits);
            }
        } else {
            out.push(Pat::Lit(c));
            i += 1;
        }
    }
    out
}

fn ends_of_age(s: &[char]) -> Vec<usize> {
    let mut ends = Vec::new();
    let mut j = 0;
    for _ in 0..2 {
        let k = j + s[j..].iter().take_while(|c| c.is_ascii_digit()).count();
        if k > j && s.get(k).is_some_and(|c| "smhd".contains(*c)) {
            j = k + 1;
            ends.push(j);
        } else {
            break;
        }
    }
    ends
}

fn matches_from(p: &[Pat], s: &[char]) -> bool {
    let Some((first, rest)) = p.split_first() else {
        return s.is_empty();
    };
    match first {
        Pat::Lit(c) => s.first() == Some(c) && matches_from(rest, &s[1..]),
        Pat::Space => {
            let n = s.iter().take_while(|c| c.is_whitespace()).count();
            (1..=n).rev().any(|k| matches_from(rest, &s[k..]))
        }
        Pat::Digits => {
            let n = s.iter().take_while(|c| c.is_ascii_digit()).count();
            (1..=n).rev().any(|k| matches_from(rest, &s[k..]))
        }
        Pat::Age => ends_of_age(s)
            .into_iter()
            .rev()
            .any(|k| matches_from(rest, &s[k..])),
        Pat::Any => (0..=s.len()).any(|k| matches_from(rest, &s[k..])),
    }
}

fn line_matches(shown: &str, printed: &str) -> bool {
    let printed: Vec<char> = printed.trim().chars().collect();
    matches_from(&pattern(shown), &printed)
}

/// Each non-empty line of `shown` matches a line of `printed`, in order.
fn check_shown(what: &str, shown: &str, printed: &str) -> Result<(), String> {
    let printed_lines: Vec<&str> = printed.lines().collect();
    let mut at = 0;
    for line in shown.lines().filter(|l| !l.trim().is_empty()) {
        match printed_lines[at..]
            .iter()
            .position(|p| line_matches(line, p))
        {
            Some(k) => at += k + 1,
            None => {
                return Err(format!(
                    "{what}: the README shows\n    {line}\nbut no line printed (from line {} on) matches it. Printed:\n{}",
                    at + 1,
                    printed_lines
                        .iter()
                        .enumerate()
                        .map(|(i, l)| format!("  {:>3}| {l}", i + 1))
                        .collect::<Vec<_>>()
                        .join("\n")
                ));
            }
        }
    }
    Ok(())
}

/// The lines before an `Events:` table's rows (which depend on the session's history), without
/// empty ones.
fn up_to_event_rows(text: &str) -> Vec<&str> {
    let mut kept = Vec::new();
    let mut events = false;
    for line in text.lines().filter(|l| !l.trim().is_empty()) {
        kept.push(line);
        if events {
            break;
        }
        events = line.trim() == "Events:";
    }
    kept
}

/// A transcript shows all a command prints: line for line (up to the rows of an Events table).
fn check_transcript(what: &str, shown: &str, printed: &str) -> Result<(), String> {
    let (shown, printed) = (up_to_event_rows(shown), up_to_event_rows(printed));
    let first_difference =
        (0..shown.len().max(printed.len())).find(|&i| match (shown.get(i), printed.get(i)) {
            (Some(s), Some(p)) => !line_matches(s, p),
            _ => true,
        });
    match first_difference {
        None => Ok(()),
        Some(i) => Err(format!(
            "{what}: line {} differs: the README shows\n    {}\nthe command prints\n    {}\nAll it printed:\n{}",
            i + 1,
            shown.get(i).unwrap_or(&"(nothing)"),
            printed.get(i).unwrap_or(&"(nothing)"),
            printed
                .iter()
                .map(|l| format!("    {l}"))
                .collect::<Vec<_>>()
                .join("\n")
        )),
    }
}

#[test]
fn the_output_matcher_means_what_the_module_doc_says() {
    assert!(line_matches(
        "web-1-console   i-bp1hzoinajzkh91h1234   cn-hangzhou   Ready   2026-11-27T08:30:49Z   false         3s",
        "web-1-console   i-bp1hzoinajzkh91h1234   cn-hangzhou   Ready   2026-12-01T05:35:23Z   false    2m"
    ));
    assert!(!line_matches("Ready   false   3s", "Ready   true   3s"));
    assert!(line_matches(
        "14.8 s left to open a connection with this URL (until 2026-11-26T08:47:19Z)",
        "9.1 s left to open a connection with this URL (until 2026-12-01T05:35:24Z)"
    ));
    assert!(line_matches(
        "https://x/?vncUrl=wss%3A%2F%2Fhz01-vncproxy%2F%3Fs%3D...&instanceId=i-bp1&isWindows=false",
        "https://x/?vncUrl=wss%3A%2F%2Fhz01-vncproxy%2F%3Fs%3DAbC%252Fd&instanceId=i-bp1&isWindows=false"
    ));
    assert!(!line_matches("exit 10", "exit 1"));
    assert!(!line_matches("exit 10", "exit x"));
    assert!(line_matches("URLs issued:  3", "URLs issued: 12"));
    assert!(line_matches("TTL:          8h", "TTL: 8h"));
    assert!(check_shown("t", "a\nc 1\n", "a\nb\nc 22\n").is_ok());
    assert!(check_shown("t", "c 1\na\n", "a\nb\nc 22\n").is_err());
    // A transcript is exact, up to the rows of an Events table.
    let printed = "Name: x\nPhase: Ready\nEvents:\n  AGE  REASON\n  1s   UrlIssued\n";
    assert!(
        check_transcript(
            "t",
            "Name: x\nPhase: Ready\nEvents:\n  AGE REASON\n  3m Other\n",
            printed
        )
        .is_ok()
    );
    assert!(check_transcript("t", "Name: x\nEvents:\n  AGE  REASON\n", printed).is_err());
    assert!(check_transcript("t", "Name: x\nPhase: Ready\nURL: none\nEvents:\n", printed).is_err());
}

// ------------------------------------------------------------------------------------------------
// Markers and the walk-through's shape (no cluster)
// ------------------------------------------------------------------------------------------------

/// `target/debug/NAME` in a run block.
fn binaries_used(text: &str) -> BTreeSet<String> {
    text.split("target/debug/")
        .skip(1)
        .map(|rest| {
            rest.chars()
                .take_while(|c| c.is_ascii_alphanumeric() || *c == '-' || *c == '_')
                .collect()
        })
        .collect()
}

/// The `--bin NAME`s of the `cargo build` commands in `text`.
fn binaries_built(text: &str) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    for line in text.lines() {
        let words: Vec<&str> = line.split_whitespace().collect();
        if let Some(at) = words.windows(2).position(|w| w == ["cargo", "build"]) {
            for pair in words[at..].windows(2) {
                if pair[0] == "--bin" {
                    out.insert(pair[1].to_owned());
                }
            }
        }
    }
    out
}

#[test]
fn the_readme_marks_its_runnable_blocks_and_has_the_walkthrough() {
    let readme = readme();
    assert!(
        readme.marker_errors.is_empty(),
        "{}",
        readme.marker_errors.join("\n")
    );
    let walk = readme.section_or_paste(WALKTHROUGH);
    let in_walk = |kind: &str| -> Vec<&Block> {
        readme
            .marked(kind)
            .into_iter()
            .filter(|b| b.section == WALKTHROUGH)
            .collect()
    };
    assert!(
        in_walk("run").len() >= 3,
        "{WALKTHROUGH} has no `<!-- readme-test: run -->` blocks: {PASTE}"
    );
    assert!(
        !in_walk("output").is_empty(),
        "{WALKTHROUGH} shows no `<!-- readme-test: output -->`: {PASTE}"
    );
    assert_eq!(
        readme.marked("cleanup").len(),
        1,
        "the README needs exactly one `<!-- readme-test: cleanup -->` block (the walk-through's stop command): {PASTE}"
    );
    for block in readme
        .marked("run")
        .into_iter()
        .chain(readme.marked("cleanup"))
    {
        assert_eq!(
            block.lang, "sh",
            "README.md:{}: a runnable block must be ```sh",
            block.line
        );
    }
    // An output block belongs to the run block right before it.
    for (i, block) in readme.blocks.iter().enumerate() {
        if block.marker.as_deref() == Some("output") {
            let previous = i.checked_sub(1).map(|p| &readme.blocks[p]);
            assert!(
                previous.is_some_and(|p| p.marker.as_deref() == Some("run")),
                "README.md:{}: an output block must follow a run block",
                block.line
            );
        }
    }
    // What the walk-through promises a new user.
    for needle in [
        "scripts/local-cluster.sh up",
        "scripts/local-cluster.sh env",
        "kubectl apply --validate=false -f crds/vncsession.yaml",
        "examples/credentials-secret.yaml",
        "kubectl get vncsessions",
        "kubectl vnc open",
        "operator.log",
        "about 5 minutes",
    ] {
        assert!(
            walk.contains(needle),
            "{WALKTHROUGH} does not mention {needle:?}"
        );
    }
    // Every binary the blocks run is one they build (and cargo test builds the same ones).
    let runs: String = readme
        .marked("run")
        .iter()
        .map(|b| b.body.as_str())
        .collect::<Vec<_>>()
        .join("\n");
    let built = binaries_built(&runs);
    for used in binaries_used(&runs) {
        assert!(
            built.contains(&used),
            "the README runs target/debug/{used} but no run block builds it (`cargo build --bin {used}`)"
        );
    }
    // The sections around it that the walk-through test also runs.
    for (section, needle, kind) in [
        (
            "## The VncSession resource",
            "kubectl apply --validate=false -f crds/vncsession.yaml",
            "run",
        ),
        (
            "## The VncSession resource",
            "kubectl annotate --overwrite vncsession web-1-console",
            "run",
        ),
        (
            "## kubectl plugin: `kubectl vnc`",
            "$ kubectl vnc open db-1",
            "transcript",
        ),
    ] {
        let found = readme
            .blocks
            .iter()
            .find(|b| b.section.starts_with(section) && b.body.contains(needle))
            .unwrap_or_else(|| panic!("{section}: no block with {needle:?}"));
        assert_eq!(
            found.marker.as_deref(),
            Some(kind),
            "README.md:{}: the block with {needle:?} needs `<!-- readme-test: {kind} -->` on the line before it: {PASTE}",
            found.line
        );
    }
}

// ------------------------------------------------------------------------------------------------
// `ecs-vnc-operator run`: the flag table (no cluster)
// ------------------------------------------------------------------------------------------------

#[derive(Debug, Default)]
struct HelpFlag {
    env: Option<String>,
    default: Option<String>,
    values: Vec<String>,
}

/// `[key: value]` annotations clap appends to a flag's help.
fn bracket(text: &str, key: &str) -> Option<String> {
    let start = text.find(&format!("[{key}: "))? + key.len() + 3;
    let end = start + text[start..].find(']')?;
    Some(text[start..end].to_owned())
}

fn operator(args: &[&str], env: &[(&str, &str)]) -> std::process::Output {
    Command::new(OPERATOR)
        .args(args)
        .env_clear()
        .envs(env.iter().copied())
        .stdin(Stdio::null())
        .output()
        .expect("run ecs-vnc-operator")
}

/// `run --help`, without any environment (clap would show a set variable's value).
fn run_help() -> BTreeMap<String, HelpFlag> {
    let out = operator(&["run", "--help"], &[]);
    assert!(out.status.success(), "run --help: {out:?}");
    let text = String::from_utf8(out.stdout).unwrap();
    let mut flags: BTreeMap<String, HelpFlag> = BTreeMap::new();
    let mut current: Option<(String, String)> = None;
    let mut finish = |flag: Option<(String, String)>| {
        if let Some((name, help)) = flag {
            let values = bracket(&help, "possible values")
                .map(|v| v.split(", ").map(str::to_owned).collect())
                .unwrap_or_default();
            let env = bracket(&help, "env").map(|e| e.trim_end_matches('=').to_owned());
            flags.insert(
                name,
                HelpFlag {
                    env,
                    default: bracket(&help, "default"),
                    values,
                },
            );
        }
    };
    for line in text.lines() {
        let t = line.trim_start();
        // Flags are indented by 2 (`-h, --help`) or 6 spaces, their help by 10.
        let indent = line.len() - t.len();
        let flag = t.strip_prefix("--").or_else(|| {
            t.get(4..)
                .filter(|_| t.starts_with('-'))
                .and_then(|r| r.strip_prefix("--"))
        });
        if let Some(flag) = flag.filter(|_| (2..=6).contains(&indent)) {
            finish(current.take());
            let name: String = flag
                .chars()
                .take_while(|c| c.is_ascii_alphanumeric() || *c == '-')
                .collect();
            current = Some((format!("--{name}"), String::new()));
        } else if let Some((_, help)) = current.as_mut() {
            help.push(' ');
            help.push_str(t);
        }
    }
    finish(current);
    flags.remove("--help");
    flags
}

#[test]
fn the_flag_table_is_run_help_in_both_directions() {
    let readme = readme();
    let section = readme.section_or_paste("## Configuration: `ecs-vnc-operator run`");
    let rows = table(&section, "flag");
    let help = run_help();
    let mut documented = BTreeSet::new();
    let mut problems = Vec::new();
    for row in &rows {
        let [flag, env, default, meaning] = &row[..] else {
            panic!("flag table row {row:?} does not have 4 cells");
        };
        let flag = only_code(flag).unwrap_or_else(|| panic!("flag cell {flag:?} is not `--flag`"));
        documented.insert(flag.to_owned());
        let Some(actual) = help.get(flag) else {
            problems.push(format!(
                "the README documents {flag}, which `run --help` does not have"
            ));
            continue;
        };
        match (only_code(env), actual.env.as_deref()) {
            (Some(doc), Some(real)) if doc == real => {}
            (doc, real) => problems.push(format!(
                "{flag}: the README's env is {doc:?}, `run --help` says {real:?}"
            )),
        }
        match (&actual.default, only_code(default)) {
            (Some(real), Some(doc)) if real == doc => {}
            (Some(real), _) => problems.push(format!(
                "{flag}: the README's default is {default:?}, `run --help` says `{real}`"
            )),
            // No default on the command line: the README describes what absence means, in words.
            (None, None) => {}
            (None, Some(doc)) => problems.push(format!(
                "{flag}: the README gives the default `{doc}`, but `run --help` shows none (write what absence means in words)"
            )),
        }
        let is_bool = actual.values == ["true", "false"];
        for value in actual.values.iter().filter(|_| !is_bool) {
            if !code_spans(meaning).contains(value) {
                problems.push(format!(
                    "{flag}: `run --help` accepts `{value}`, the README's meaning does not name it"
                ));
            }
        }
    }
    for flag in help.keys() {
        if !documented.contains(flag) {
            problems.push(format!(
                "`run --help` has {flag}, the README's flag table does not"
            ));
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
    // "Every flag can also be set by its environment variable."
    assert!(section.contains("Every flag can also be set by its environment variable"));
    for (flag, h) in &help {
        assert!(h.env.is_some(), "{flag} has no environment variable");
    }
}

/// Whether `run` takes these arguments: a bad `--ecs-endpoint` makes a run that got past the
/// command line stop at once (exit 1, naming that flag), before anything else is touched.
fn run_accepts(args: &[&str], env: &[(&str, &str)]) -> Result<(), String> {
    let mut all = vec!["run", "--ecs-endpoint", "not-an-endpoint"];
    all.extend_from_slice(args);
    let out = operator(&all, env);
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    match out.status.code() {
        Some(1) if stderr.contains("--ecs-endpoint") => Ok(()),
        Some(2) => Err(stderr),
        _ => panic!("run {all:?} {env:?}: unexpected {out:?}"),
    }
}

#[test]
fn the_values_the_configuration_section_promises_are_accepted() {
    let readme = readme();
    let section = readme.section_or_paste("## Configuration: `ecs-vnc-operator run`");
    // "Durations are `15s`, `5m`, `1h30m` (units s, m, h, d); zero is refused ("must be greater
    // than zero")."
    let durations = section
        .lines()
        .find(|l| l.starts_with("Durations are"))
        .expect("the sentence on durations");
    for example in code_spans(durations) {
        run_accepts(&["--url-validity", &example], &[])
            .unwrap_or_else(|e| panic!("the README's duration {example:?} is refused: {e}"));
    }
    run_accepts(&["--session-keepalive", "1d"], &[]).expect("unit d");
    assert!(section.contains("must be greater than"));
    for zero in ["0s", "0m"] {
        let refused = run_accepts(&["--url-validity", zero], &[]).expect_err(zero);
        assert!(
            refused.contains("must be greater than zero"),
            "{zero}: {refused}"
        );
    }
    // Ranges written as (1–1000).
    let rows = table(&section, "flag");
    for row in &rows {
        if let Some(range) = row[3]
            .split('(')
            .nth(1)
            .and_then(|r| r.split(')').next())
            .filter(|r| r.contains('–'))
        {
            let (lo, hi) = range.split_once('–').unwrap();
            let (lo, hi): (u32, u32) = (lo.trim().parse().unwrap(), hi.trim().parse().unwrap());
            let flag = only_code(&row[0]).unwrap();
            assert!(lo > 0, "{flag}: a range from 0 cannot be probed below");
            for ok in [lo, hi] {
                run_accepts(&[flag, &ok.to_string()], &[])
                    .unwrap_or_else(|e| panic!("{flag} {ok} is inside ({range}) but refused: {e}"));
            }
            for bad in [lo - 1, hi + 1] {
                assert!(
                    run_accepts(&[flag, &bad.to_string()], &[]).is_err(),
                    "{flag} {bad} is outside ({range}) but accepted"
                );
            }
        }
    }
    // `--leader-elect`'s environment spellings.
    let leader = rows
        .iter()
        .find(|r| r[0] == "`--leader-elect`")
        .expect("--leader-elect row");
    let spellings: Vec<String> = code_spans(&leader[3])
        .iter()
        .flat_map(|s| s.split('/').map(str::to_owned).collect::<Vec<_>>())
        .collect();
    assert!(spellings.len() >= 4, "{spellings:?}");
    let env = only_code(&leader[1]).unwrap();
    for value in &spellings {
        run_accepts(&[], &[(env, value)])
            .unwrap_or_else(|e| panic!("{env}={value} is documented but refused: {e}"));
    }
    assert!(run_accepts(&[], &[(env, "maybe")]).is_err());
}

// ------------------------------------------------------------------------------------------------
// Exit codes (no cluster)
// ------------------------------------------------------------------------------------------------

/// `| N | meaning |` rows of the exit-code table in `src/plugin/mod.rs`'s doc comment.
fn plugin_doc_table() -> BTreeMap<u8, String> {
    source("src/plugin/mod.rs")
        .lines()
        .filter_map(|l| l.strip_prefix("//! |"))
        .filter_map(|row| {
            let (code, meaning) = row.split_once('|')?;
            Some((
                code.trim().parse().ok()?,
                meaning.trim_end_matches('|').trim().to_owned(),
            ))
        })
        .collect()
}

/// `const EXIT_NAME: u8 = N;` in a source file: N → NAME.
fn exit_constants(file: &str) -> BTreeMap<u8, String> {
    source(file)
        .lines()
        .filter_map(|l| {
            let rest = l
                .trim()
                .trim_start_matches("pub ")
                .strip_prefix("const EXIT_")?;
            let (name, value) = rest.split_once(": u8 = ")?;
            Some((value.trim_end_matches(';').parse().ok()?, name.to_owned()))
        })
        .collect()
}

fn plugin(args: &[&str], env: &[(&str, &str)]) -> std::process::Output {
    Command::new(PLUGIN)
        .args(args)
        .env_clear()
        .env("HOME", std::env::temp_dir().join("readme-test-no-home"))
        .envs(env.iter().copied())
        .stdin(Stdio::null())
        .output()
        .expect("run kubectl-vnc")
}

#[test]
fn the_plugins_exit_codes_are_the_codes() {
    let readme = readme();
    let documented = exit_code_list(&readme.section_or_paste("## kubectl plugin: `kubectl vnc`"));
    let help = String::from_utf8(plugin(&["--help"], &[]).stdout).unwrap();
    let help_codes: BTreeMap<u8, String> = help
        .split_once("Exit codes:")
        .expect("kubectl vnc --help lists exit codes")
        .1
        .lines()
        .filter_map(|l| {
            let (code, meaning) = l.trim().split_once(' ')?;
            Some((code.parse().ok()?, meaning.trim().to_owned()))
        })
        .collect();
    let doc_table = plugin_doc_table();
    let mut constants = exit_constants("src/plugin/error.rs");
    constants.insert(0, "SUCCESS".into());
    let numbers = |m: &BTreeMap<u8, String>| m.keys().copied().collect::<Vec<_>>();
    assert_eq!(
        numbers(&documented),
        numbers(&help_codes),
        "README vs `kubectl vnc --help`"
    );
    assert_eq!(
        numbers(&documented),
        numbers(&doc_table),
        "README vs src/plugin/mod.rs"
    );
    assert_eq!(
        numbers(&documented),
        numbers(&constants),
        "README vs the EXIT_ constants of src/plugin/error.rs"
    );
    let mut problems = Vec::new();
    for (code, meaning) in &documented {
        let code_text = format!("{} {}", help_codes[code], doc_table[code]).to_ascii_lowercase();
        for word in keywords(meaning) {
            if !mentions(&code_text, &word) {
                problems.push(format!(
                    "exit {code}: the README says {meaning:?}; neither --help ({:?}) nor src/plugin/mod.rs ({:?}) says {word:?}",
                    help_codes[code], doc_table[code]
                ));
            }
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
    // The two that need no cluster, done: the README's word for the code each one gets.
    let usage = plugin(&["open"], &[]);
    let no_kubeconfig = plugin(
        &["list"],
        &[("KUBECONFIG", "/nonexistent/readme-test/kubeconfig")],
    );
    for (what, out, word) in [
        ("a missing argument", usage, "usage"),
        ("no kubeconfig", no_kubeconfig, "kubeconfig"),
    ] {
        let code = out.status.code().expect("exit code") as u8;
        let meaning = documented.get(&code).map(String::as_str).unwrap_or("");
        assert!(
            meaning.contains(word),
            "{what}: kubectl vnc exits {code}, which the README calls {meaning:?}\n{out:?}"
        );
    }
}

/// The `url` command's block of "Without Kubernetes": (environment, arguments after `url`).
fn readme_url_command(readme: &Readme) -> (Vec<(String, String)>, Vec<String>, String) {
    let block = readme
        .blocks
        .iter()
        .find(|b| b.body.contains(" url ") && b.body.contains("--region-id"))
        .expect("the README's `url` block");
    let joined = block.body.replace("\\\n", " ");
    let sim_line = joined
        .lines()
        .find(|l| l.contains("ecs-sim"))
        .expect("the url block starts ecs-sim");
    let listen = sim_line
        .split_whitespace()
        .skip_while(|w| *w != "--listen")
        .nth(1)
        .unwrap_or("127.0.0.1:8787")
        .to_owned();
    let line = joined
        .lines()
        .find(|l| l.contains(" url "))
        .expect("the url command line");
    let words: Vec<&str> = line.split_whitespace().collect();
    let env = words
        .iter()
        .take_while(|w| w.contains('=') && !w.starts_with('-'))
        .map(|w| {
            let (k, v) = w.split_once('=').unwrap();
            (k.to_owned(), v.to_owned())
        })
        .collect();
    let args = words
        .iter()
        .skip_while(|w| **w != "url")
        .skip(1)
        .map(|w| w.to_string())
        .collect();
    (env, args, listen)
}

async fn url(args: &[String], env: &[(String, String)]) -> std::process::Output {
    tokio::process::Command::new(OPERATOR)
        .arg("url")
        .args(args)
        .env_clear()
        .envs(env.iter().map(|(k, v)| (k, v)))
        .stdin(Stdio::null())
        .output()
        .await
        .expect("run ecs-vnc-operator url")
}

fn with_value(args: &[String], flag: &str, value: &str) -> Vec<String> {
    let mut out = args.to_vec();
    match out.iter().position(|a| a == flag) {
        Some(at) => out[at + 1] = value.to_owned(),
        None => out.extend([flag.to_owned(), value.to_owned()]),
    }
    out
}

fn without(args: &[String], flag: &str) -> Vec<String> {
    let mut out = args.to_vec();
    if let Some(at) = out.iter().position(|a| a == flag) {
        out.drain(at..at + 2);
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_url_command_does_what_the_readme_says() {
    let readme = readme();
    let section = readme.section_or_paste("### Without Kubernetes: `ecs-vnc-operator url`");
    let sim = ecs_sim::demo().await;
    let (env, args, listen) = readme_url_command(&readme);
    let endpoint_arg = args
        .iter()
        .skip_while(|a| *a != "--endpoint")
        .nth(1)
        .cloned()
        .expect("the README's url command names --endpoint");
    assert_eq!(
        endpoint_arg,
        format!("http://{listen}"),
        "the url command must talk to the ecs-sim the block starts"
    );
    let args = with_value(&args, "--endpoint", &sim.endpoint());

    // As written (the endpoint aside): JSON with the fields the README names.
    let out = url(&args, &env).await;
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    let json: Value = serde_json::from_slice(&out.stdout).expect("--output json prints JSON");
    let printed: BTreeSet<String> = json.as_object().unwrap().keys().cloned().collect();
    let fields_sentence = section
        .split("`json` prints")
        .nth(1)
        .and_then(|s| s.split('.').next())
        .expect("the sentence \"`json` prints ...\"");
    let documented: BTreeSet<String> = code_spans(fields_sentence).into_iter().collect();
    assert_eq!(
        documented, printed,
        "the JSON fields the README names vs printed"
    );

    // "`--output text` (the default) prints only the console URL".
    let text = url(&without(&args, "--output"), &env).await;
    let stdout = String::from_utf8_lossy(&text.stdout);
    assert_eq!(text.status.code(), Some(0), "{text:?}");
    assert_eq!(stdout.lines().count(), 1, "{stdout}");
    assert!(
        stdout.starts_with("https://") && stdout.contains("?vncUrl="),
        "{stdout}"
    );
    // "`--windows auto|true|false` (default `auto` asks `DescribeInstances` for the `OSType`)".
    assert!(section.contains("--windows auto|true|false"));
    let windows = url(&with_value(&args, "--instance-id", WINDOWS), &env).await;
    let windows: Value = serde_json::from_slice(&windows.stdout).unwrap();
    assert_eq!(
        windows["isWindows"],
        json!(true),
        "auto asks for the OSType"
    );

    // Each failure gets the code the README lists it under.
    let documented = exit_code_list(&section);
    let mut constants = exit_constants("src/cli/url.rs");
    constants.insert(0, "SUCCESS".into());
    assert_eq!(
        documented.keys().collect::<Vec<_>>(),
        constants.keys().collect::<Vec<_>>(),
        "README vs the EXIT_ constants of src/cli/url.rs"
    );
    let closed = closed_endpoint();
    let no_env: Vec<(String, String)> = Vec::new();
    let cases = [
        ("success", args.clone(), env.clone(), "success"),
        (
            "an unknown instance (ECS answers an error)",
            with_value(&args, "--instance-id", "i-bp1nosuchinstance0001"),
            env.clone(),
            "ECS answered an error",
        ),
        (
            "a bad region id",
            with_value(&args, "--region-id", "Not_A_Region"),
            env.clone(),
            "bad input",
        ),
        ("no credentials", args.clone(), no_env, "no credentials"),
        (
            "an endpoint nobody listens on",
            with_value(&args, "--endpoint", &closed),
            env.clone(),
            "unreachable endpoint",
        ),
    ];
    for (what, args, env, phrase) in cases {
        let out = url(&args, &env).await;
        let code = out.status.code().expect("exit code") as u8;
        let meaning = documented.get(&code).map(String::as_str).unwrap_or("");
        assert!(
            meaning.contains(phrase),
            "{what}: `url` exits {code}, which the README calls {meaning:?} (expected it under {phrase:?})\n{out:?}"
        );
        if what.starts_with("an unknown instance") {
            // "its `Code`, `Message` and `RequestId` on stderr"
            let stderr = String::from_utf8_lossy(&out.stderr);
            assert!(
                stderr.contains("InvalidInstanceId.NotFound") && stderr.contains("RequestId"),
                "{stderr}"
            );
        }
    }
}

// ------------------------------------------------------------------------------------------------
// Printer columns (no cluster)
// ------------------------------------------------------------------------------------------------

#[test]
fn every_vncsessions_table_shown_has_the_crds_printer_columns() {
    let crd: Value = serde_yaml::from_str(&source("crds/vncsession.yaml")).unwrap();
    let mut columns = vec!["NAME".to_owned()];
    for column in crd["spec"]["versions"][0]["additionalPrinterColumns"]
        .as_array()
        .expect("printer columns")
    {
        let name = column["name"].as_str().unwrap().to_ascii_uppercase();
        columns.extend(name.split_whitespace().map(str::to_owned));
    }
    let readme = readme();
    let mut seen = 0;
    for (i, line) in readme.lines.iter().enumerate() {
        let words: Vec<&str> = line.split_whitespace().collect();
        if words.starts_with(&["NAME", "INSTANCE", "REGION"]) {
            seen += 1;
            assert_eq!(
                words,
                columns,
                "README.md:{}: a `kubectl get vncsessions` header that is not the CRD's printer columns",
                i + 1
            );
        }
    }
    assert!(seen > 0, "the README shows no `kubectl get vncsessions`");
}

// ------------------------------------------------------------------------------------------------
// Metrics (end to end)
// ------------------------------------------------------------------------------------------------

#[derive(Debug, Default)]
struct Family {
    kind: String,
    labels: BTreeSet<String>,
    samples: Vec<(String, BTreeMap<String, String>, String)>,
}

/// `{a="x",b="y"}` → names and values (values unescaped enough for our labels).
fn labels_of(text: &str) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    let mut rest = text;
    while let Some((name, after)) = rest.split_once("=\"") {
        let mut value = String::new();
        let mut chars = after.char_indices();
        let mut end = after.len();
        while let Some((i, c)) = chars.next() {
            match c {
                '\\' => {
                    if let Some((_, n)) = chars.next() {
                        value.push(n);
                    }
                }
                '"' => {
                    end = i + 1;
                    break;
                }
                c => value.push(c),
            }
        }
        out.insert(name.trim_start_matches([',', ' ']).to_owned(), value);
        rest = &after[end..];
    }
    out
}

fn families(text: &str) -> BTreeMap<String, Family> {
    let mut out: BTreeMap<String, Family> = BTreeMap::new();
    for line in text.lines() {
        if let Some(rest) = line.strip_prefix("# TYPE ") {
            let (name, kind) = rest.split_once(' ').unwrap();
            out.entry(name.to_owned()).or_default().kind = kind.to_owned();
        }
    }
    for line in text
        .lines()
        .filter(|l| !l.starts_with('#') && !l.is_empty())
    {
        let (series, value) = line.rsplit_once(' ').unwrap();
        let (name, labels) = match series.split_once('{') {
            Some((n, l)) => (n, labels_of(l.trim_end_matches('}'))),
            None => (series, BTreeMap::new()),
        };
        let family = out
            .keys()
            .filter(|f| {
                name.strip_prefix(f.as_str()).is_some_and(|s| {
                    ["", "_total", "_bucket", "_sum", "_count", "_created"].contains(&s)
                })
            })
            .max_by_key(|f| f.len())
            .unwrap_or_else(|| panic!("sample {line:?} of no family"))
            .clone();
        let f = out.get_mut(&family).unwrap();
        f.labels
            .extend(labels.keys().filter(|k| *k != "le").cloned());
        f.samples.push((name.to_owned(), labels, value.to_owned()));
    }
    out
}

/// The name the README uses for a family: counters carry their `_total`.
fn exposed_name(family: &str, f: &Family) -> String {
    if f.kind == "counter" {
        format!("{family}_total")
    } else {
        family.to_owned()
    }
}

async fn scrape(addr: &str) -> String {
    let response = reqwest::get(format!("http://{addr}/metrics"))
        .await
        .expect("GET /metrics");
    assert!(response.status().is_success());
    response.text().await.unwrap()
}

#[tokio::test]
#[ignore = "end-to-end: needs the local control plane; run scripts/test.sh"]
async fn the_metrics_table_is_what_a_fresh_operator_serves() {
    let _serial = SERIAL.lock().await;
    let readme = readme();
    let operating = readme.section_or_paste("## Operating it");
    let rows = table(&operating, "metric");
    let documented: BTreeMap<String, BTreeSet<String>> = rows
        .iter()
        .map(|r| {
            let name = only_code(&r[0])
                .unwrap_or_else(|| panic!("metric cell {:?}", r[0]))
                .to_owned();
            let labels = code_spans(&outside_parens(&r[1])).into_iter().collect();
            (name, labels)
        })
        .collect();
    let phases: BTreeSet<String> = table(
        &readme.section_or_paste("## The VncSession resource"),
        "phase",
    )
    .iter()
    .flat_map(|r| code_spans(&r[0]))
    .collect();

    let env = Env::new("readme-metrics").await;
    let op = env.operator(&[]);
    let addr = op.metrics_addr().await;

    // Fresh: nothing undocumented, and what the README says is "present from the start" is.
    // (prometheus-client leaves a labelled family out until its first series exists: the
    // reconcile and ECS-request counters appear with the first session.)
    let fresh = families(&scrape(&addr).await);
    let names: BTreeSet<String> = documented.keys().cloned().collect();
    let served_names = |families: &BTreeMap<String, Family>| -> BTreeSet<String> {
        families
            .iter()
            .map(|(name, f)| exposed_name(name, f))
            .collect()
    };
    let undocumented: Vec<String> = served_names(&fresh).difference(&names).cloned().collect();
    assert!(
        undocumented.is_empty(),
        "a fresh operator serves metrics the README's table lacks: {undocumented:?}"
    );
    for row in rows
        .iter()
        .filter(|r| r[2].contains("present from the start"))
    {
        let name = only_code(&row[0]).unwrap();
        let (family, f) = fresh
            .iter()
            .find(|(n, f)| exposed_name(n, f) == name)
            .unwrap_or_else(|| {
                panic!("the README says {name} is present from the start; a fresh operator does not serve it")
            });
        assert!(
            !f.samples.is_empty() && f.samples.iter().all(|s| s.2 == "0"),
            "{family}: \"present from the start at 0\": {f:?}"
        );
    }
    assert_eq!(
        fresh["ecsvnc_leader"].samples[0].2, "1",
        "ecsvnc_leader is 1 while a process without --leader-elect serves"
    );

    // With a session served, every family is there: the same names, and their label names.
    env.apply_ready("web-1", json!({})).await;
    // (The reconcile that wrote Ready is counted once it returns: a moment later.)
    let deadline = Instant::now() + Duration::from_secs(10);
    let served = loop {
        let served = families(&scrape(&addr).await);
        if served_names(&served).is_superset(&names) || Instant::now() >= deadline {
            break served;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    assert_eq!(
        names,
        served_names(&served),
        "the README's metrics (left) vs the families the operator serves once it has served a session (right)"
    );
    let mut problems = Vec::new();
    for (name, f) in &served {
        let exposed = exposed_name(name, f);
        let doc = &documented[&exposed];
        if &f.labels != doc {
            problems.push(format!(
                "{exposed}: the README's labels {doc:?}, served {:?}",
                f.labels
            ));
        }
    }
    for (_, labels, _) in &served["ecsvnc_sessions"].samples {
        let phase = &labels["phase"];
        if !phases.contains(phase) {
            problems.push(format!(
                "ecsvnc_sessions has phase={phase:?}, not a phase the README lists ({phases:?})"
            ));
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

// ------------------------------------------------------------------------------------------------
// The walk-through, run as written (end to end)
// ------------------------------------------------------------------------------------------------

/// What one block printed.
struct Ran {
    code: i32,
    output: String,
}

/// One bash session, fed the blocks on stdin; in its own process group, so whatever the blocks
/// start can be found (and, if all else fails, stopped) as a group.
struct Shell {
    child: Child,
    stdin: ChildStdin,
    lines: mpsc::Receiver<String>,
    dir: PathBuf,
    tmp: PathBuf,
    count: usize,
    /// The cleanup blocks, still to run (on drop, if the test did not get to them).
    cleanup: Vec<String>,
    busy: bool,
}

const STAND_INS: &str = r#"
# The README test's stand-in for cargo: `cargo test` has built the binaries (and holds the lock a
# nested cargo would wait on).
cargo() {
    if [[ ${1:-} == build ]]; then
        local a want=
        for a in "${@:2}"; do
            if [[ $want == bin ]]; then
                [[ -x "$READMETEST_BIN_DIR/$a" ]] || { echo "README test: cargo build: $a not built" >&2; return 1; }
                want=
            elif [[ $a == --bin ]]; then
                want=bin
            fi
        done
        echo "(README test: \`cargo $*\` stood in for; cargo test built the binaries)"
        return 0
    fi
    echo "README test: cannot run \`cargo $*\` inside cargo test" >&2
    return 1
}
"#;

impl Shell {
    fn start(bin_dir: &Path) -> Shell {
        let dir = std::env::temp_dir().join(format!(
            "ecsvnc-readme-{}-{}",
            std::process::id(),
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .as_nanos()
        ));
        let tmp = dir.join("tmp");
        std::fs::create_dir_all(&tmp).unwrap();
        let mut command = Command::new("bash");
        for (key, _) in std::env::vars_os() {
            let key = key.to_string_lossy().into_owned();
            // What would change the commands' behaviour; the control plane's cache stays.
            if ["ECS_VNC_", "ECS_SIM_", "ALIBABA_CLOUD_", "ECSVNC_"]
                .iter()
                .any(|p| key.starts_with(p))
                && key != "ECSVNC_CACHE"
            {
                command.env_remove(&key);
            }
        }
        use std::os::unix::process::CommandExt;
        let mut child = command
            .env_remove("KUBECONFIG")
            .env_remove("POD_NAMESPACE")
            .env_remove("BASH_ENV")
            .env_remove("ENV")
            .env_remove("RUST_LOG")
            .env_remove("CDPATH")
            .env("TMPDIR", &tmp)
            // The control plane's watchdog stops it if this test process dies first.
            .env("ECSVNC_OWNER_PID", std::process::id().to_string())
            .env("READMETEST_BIN_DIR", bin_dir)
            .current_dir(root())
            .process_group(0)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("start bash");
        let stdin = child.stdin.take().unwrap();
        let stdout = child.stdout.take().unwrap();
        let (tx, lines) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        let mut shell = Shell {
            child,
            stdin,
            lines,
            dir,
            tmp,
            count: 0,
            cleanup: Vec::new(),
            busy: false,
        };
        shell
            .run(STAND_INS, true, Duration::from_secs(10))
            .expect("define the stand-ins");
        shell
    }

    /// Runs `script` in the session; `strict`: stop at the first failing command (like `set -e
    /// -o pipefail`, but the session lives on).
    fn run(&mut self, script: &str, strict: bool, timeout: Duration) -> Result<Ran, String> {
        assert!(!self.busy, "the shell is still busy with an earlier block");
        self.count += 1;
        let n = self.count;
        let file = self.dir.join(format!("block-{n}.sh"));
        let out = self.dir.join(format!("block-{n}.out"));
        // Strict: the first failing command (where `set -e` would stop) returns from the block
        // with its status, and the session lives on for the next block and the cleanup.
        let script = if strict {
            format!(
                "trap '__readme_rc=$?; trap - ERR; return $__readme_rc' ERR\n{script}\n__readme_rc=$?; trap - ERR; return $__readme_rc\n"
            )
        } else {
            script.to_owned()
        };
        std::fs::write(&file, script).unwrap();
        let (file_s, out_s) = (file.display(), out.display());
        let line = if strict {
            format!(
                "set -o pipefail; source '{file_s}' </dev/null >'{out_s}' 2>&1; __readme_rc=$?; set +o pipefail; echo \"__readme_done__ {n} $__readme_rc\"\n"
            )
        } else {
            format!(
                "source '{file_s}' </dev/null >'{out_s}' 2>&1; echo \"__readme_done__ {n} $?\"\n"
            )
        };
        self.stdin
            .write_all(line.as_bytes())
            .and_then(|()| self.stdin.flush())
            .map_err(|e| format!("the shell is gone: {e}"))?;
        self.busy = true;
        let deadline = Instant::now() + timeout;
        let output = || std::fs::read_to_string(&out).unwrap_or_default();
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.lines.recv_timeout(left) {
                Ok(l) => {
                    if let Some(code) = l.strip_prefix(&format!("__readme_done__ {n} ")) {
                        self.busy = false;
                        return Ok(Ran {
                            code: code.trim().parse().unwrap_or(-1),
                            output: output(),
                        });
                    }
                }
                Err(mpsc::RecvTimeoutError::Timeout) => {
                    return Err(format!(
                        "did not finish within {timeout:?}; printed so far:\n{}",
                        output()
                    ));
                }
                Err(mpsc::RecvTimeoutError::Disconnected) => {
                    return Err(format!("the shell died; printed:\n{}", output()));
                }
            }
        }
    }

    /// The processes of the session's group other than bash itself.
    fn group(&self) -> Vec<String> {
        let out = Command::new("pgrep")
            .args(["-l", "-g", &self.child.id().to_string()])
            .output()
            .expect("pgrep");
        String::from_utf8_lossy(&out.stdout)
            .lines()
            .filter(|l| !l.starts_with(&format!("{} ", self.child.id())))
            .map(str::to_owned)
            .collect()
    }

    /// The last lines of every `*.log` the blocks wrote under `$TMPDIR` (not the audit log), for
    /// a failure message.
    fn log_tails(&self) -> String {
        fn walk(dir: &Path, out: &mut Vec<PathBuf>) {
            for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
                let path = entry.path();
                if path.is_dir() {
                    walk(&path, out);
                } else if path.extension().is_some_and(|e| e == "log")
                    && path.file_name().is_some_and(|n| n != "audit.log")
                {
                    out.push(path);
                }
            }
        }
        let mut logs = Vec::new();
        walk(&self.tmp, &mut logs);
        logs.sort();
        logs.iter()
            .map(|path| {
                let text = std::fs::read_to_string(path).unwrap_or_default();
                let lines: Vec<&str> = text.lines().collect();
                let tail = lines[lines.len().saturating_sub(15)..].join("\n");
                format!("--- {} (last lines) ---\n{tail}", path.display())
            })
            .collect::<Vec<_>>()
            .join("\n")
    }

    fn leftovers(&self) -> Vec<String> {
        std::fs::read_dir(&self.tmp)
            .map(|d| {
                d.filter_map(Result::ok)
                    .map(|e| e.path().display().to_string())
                    .collect()
            })
            .unwrap_or_default()
    }

    /// Runs the cleanup blocks (once) and says what they left behind.
    fn clean_up(&mut self) -> Result<(), String> {
        let blocks = std::mem::take(&mut self.cleanup);
        if blocks.is_empty() {
            return Ok(());
        }
        for block in blocks {
            let ran = self.run(&block, false, Duration::from_secs(60))?;
            if ran.code != 0 {
                return Err(format!(
                    "the stop block exited {}:\n{}",
                    ran.code, ran.output
                ));
            }
        }
        // Processes get a moment to exit after the signal.
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let (running, files) = (self.group(), self.leftovers());
            if running.is_empty() && files.is_empty() {
                return Ok(());
            }
            if Instant::now() >= deadline {
                return Err(format!(
                    "after the README's stop block, still running: {running:?}; left in $TMPDIR: {files:?}"
                ));
            }
            std::thread::sleep(Duration::from_millis(200));
        }
    }
}

impl Drop for Shell {
    fn drop(&mut self) {
        if !self.busy
            && !self.cleanup.is_empty()
            && let Err(e) = self.clean_up()
        {
            eprintln!("README test: cleaning up after a failure: {e}");
        }
        let _ = self.stdin.write_all(b"exit\n");
        let _ = self.stdin.flush();
        let deadline = Instant::now() + Duration::from_secs(2);
        while self.child.try_wait().ok().flatten().is_none() && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(50));
        }
        // Whatever is still running in the session's group (a block that hung, or what a failed
        // stop block left) is ours: the group was made for this session.
        let group = format!("-{}", self.child.id());
        for signal in ["-TERM", "-KILL"] {
            if self.group().is_empty() {
                break;
            }
            let _ = Command::new("kill")
                .args([signal, "--", &group])
                .stderr(Stdio::null())
                .status();
            std::thread::sleep(Duration::from_secs(2));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// Fails with a clear message if a loopback port the README's blocks use is taken.
fn ports_free(text: &str) {
    for rest in text.split("127.0.0.1:").skip(1) {
        let port: String = rest.chars().take_while(char::is_ascii_digit).collect();
        if port.is_empty() || port == "0" {
            continue;
        }
        if let Err(e) = std::net::TcpListener::bind(format!("127.0.0.1:{port}")) {
            panic!(
                "127.0.0.1:{port} is taken ({e}): the README's walk-through listens there; stop what holds it"
            );
        }
    }
}

/// The local control plane's binaries: a test never builds them (that takes minutes).
fn control_plane_built() {
    let bin = bin_dir();
    for name in ["etcd", "kube-apiserver", "kube-controller-manager"] {
        assert!(
            bin.join(name).is_file(),
            "{} is missing: run scripts/local-cluster.sh build 1.20 first (once, about 7 minutes)",
            bin.join(name).display()
        );
    }
}

/// Keys of the `status:` YAML block the README shows for a `Ready` session.
fn documented_ready_status(section: &str) -> BTreeSet<String> {
    let block = section
        .split("```yaml")
        .find(|b| b.trim_start().starts_with("status:"))
        .expect("the README's status block")
        .split("```")
        .next()
        .unwrap();
    block
        .lines()
        .filter_map(|l| l.strip_prefix("  "))
        .filter(|l| !l.starts_with(' ') && !l.starts_with('-'))
        .filter_map(|l| l.split_once(':').map(|(k, _)| k.trim().to_owned()))
        .collect()
}

fn header_of(output: &str) -> Vec<String> {
    output
        .lines()
        .find(|l| l.starts_with("NAME"))
        .map(|l| l.split_whitespace().map(str::to_owned).collect())
        .unwrap_or_default()
}

/// The transcript's premise besides the walk-through's session: `db-1`, whose Secret is missing.
const DB_1: &str = r#"kubectl apply -f - <<'EOF'
apiVersion: ecsvnc.dev/v1alpha1
kind: VncSession
metadata:
  name: db-1
spec:
  regionId: cn-hangzhou
  instanceId: i-bp1hzoinajzkh91h1234
  credentialsRef:
    name: missing-secret
EOF
# (A loop, not `kubectl wait --for=jsonpath`: Debian's kubectl 1.20 does not have it.)
for _ in $(seq 150); do
    [[ $(kubectl get vncsession db-1 -o 'jsonpath={.status.phase}') == Failed ]] && break
    sleep 0.2
done
[[ $(kubectl get vncsession db-1 -o 'jsonpath={.status.phase}') == Failed ]]
"#;

#[test]
#[ignore = "end-to-end: needs the local control plane; run scripts/test.sh"]
fn the_readme_runs_as_written_and_shows_what_it_prints() {
    let _serial = SERIAL.blocking_lock();
    let readme = readme();
    control_plane_built();
    let mut runs: Vec<&Block> = readme
        .marked("run")
        .into_iter()
        .filter(|b| b.section == WALKTHROUGH)
        .collect();
    assert!(!runs.is_empty(), "{WALKTHROUGH}: no run blocks: {PASTE}");
    runs.extend(
        readme
            .marked("run")
            .into_iter()
            .filter(|b| b.section != WALKTHROUGH),
    );
    let cleanup = readme.marked("cleanup");
    assert!(!cleanup.is_empty(), "no cleanup block: {PASTE}");
    let all: String = runs
        .iter()
        .map(|b| b.body.as_str())
        .collect::<Vec<_>>()
        .join("\n");
    ports_free(&all);

    // The blocks say target/debug/; cargo test may have put the binaries elsewhere.
    let bin_dir = Path::new(OPERATOR).parent().unwrap().to_path_buf();
    let adapt = |text: &str| {
        if bin_dir == root().join("target/debug") {
            text.to_owned()
        } else {
            text.replace("target/debug/", &format!("{}/", bin_dir.display()))
        }
    };
    let mut shell = Shell::start(&bin_dir);
    shell.cleanup = cleanup.iter().map(|b| adapt(&b.body)).collect();

    // The outputs shown, by the run block they follow.
    let shown: BTreeMap<usize, &Block> = readme
        .blocks
        .windows(2)
        .filter(|w| w[1].marker.as_deref() == Some("output"))
        .map(|w| (w[0].line, &w[1]))
        .collect();
    let mut problems = Vec::new();
    for block in &runs {
        let ran = shell
            .run(&adapt(&block.body), true, Duration::from_secs(180))
            .unwrap_or_else(|e| {
                panic!(
                    "README.md:{}: the block\n{}\n{e}\n{}",
                    block.line,
                    block.body,
                    shell.log_tails()
                )
            });
        assert_eq!(
            ran.code,
            0,
            "README.md:{}: the block\n{}\nfailed (exit {}); it printed:\n{}\n{}",
            block.line,
            block.body,
            ran.code,
            ran.output,
            shell.log_tails()
        );
        if let Some(output) = shown.get(&block.line)
            && let Err(e) = check_shown(
                &format!("README.md:{}", output.line),
                &output.body,
                &ran.output,
            )
        {
            problems.push(e);
        }
    }

    // The status of the Ready session is the one the README shows, field by field, no nulls.
    let status = shell
        .run(
            "kubectl get vncsession web-1-console -o json",
            true,
            Duration::from_secs(30),
        )
        .expect("read the session");
    let session: Value = serde_json::from_str(&status.output).expect("the session as JSON");
    let status = session["status"].as_object().expect("a status");
    if status.get("phase") == Some(&json!("Ready")) {
        let printed: BTreeSet<String> = status.keys().cloned().collect();
        let documented =
            documented_ready_status(&readme.section_or_paste("## The VncSession resource"));
        if printed != documented {
            problems.push(format!(
                "the status of a Ready session: the README shows {documented:?}, the operator writes {printed:?}"
            ));
        }
    } else {
        problems.push(format!(
            "web-1-console is not Ready after the blocks: {status:?}"
        ));
    }
    for (key, value) in status {
        if value.is_null() {
            problems.push(format!("the status holds `{key}: null`"));
        }
    }

    // Every table header the README shows is the one the commands print.
    let get = shell
        .run("kubectl get vncsessions", true, Duration::from_secs(30))
        .expect("kubectl get");
    let list = shell
        .run("kubectl vnc list", true, Duration::from_secs(30))
        .expect("kubectl vnc list");
    let (get, list) = (header_of(&get.output), header_of(&list.output));
    for (i, line) in readme.lines.iter().enumerate() {
        let words: Vec<String> = line.split_whitespace().map(str::to_owned).collect();
        for (prefix, printed, command) in [
            (
                ["NAME", "INSTANCE", "REGION"],
                &get,
                "kubectl get vncsessions",
            ),
            (["NAME", "INSTANCE", "PHASE"], &list, "kubectl vnc list"),
        ] {
            if words.starts_with(&prefix.map(str::to_owned)) && &words != printed {
                problems.push(format!(
                    "README.md:{}: shows the header {words:?}; `{command}` prints {printed:?}",
                    i + 1
                ));
            }
        }
    }

    // The transcripts: each command, run, prints what is shown under it.
    let transcripts = readme.marked("transcript");
    if !transcripts.is_empty() {
        let db = shell
            .run(DB_1, true, Duration::from_secs(60))
            .expect("db-1");
        assert_eq!(db.code, 0, "the transcript's premise (db-1): {}", db.output);
    }
    for block in transcripts {
        let mut command: Option<(String, Vec<&str>)> = None;
        let mut steps = Vec::new();
        for line in block.body.lines() {
            if let Some(c) = line.strip_prefix("$ ") {
                steps.extend(command.take());
                command = Some((c.to_owned(), Vec::new()));
            } else if let Some((_, shown)) = command.as_mut() {
                shown.push(line);
            }
        }
        steps.extend(command);
        for (command, shown) in steps {
            let ran = shell
                .run(&adapt(&command), false, Duration::from_secs(60))
                .unwrap_or_else(|e| panic!("README.md:{}: `{command}`: {e}", block.line));
            if let Err(e) = check_transcript(
                &format!("README.md:{}: `{command}`", block.line),
                &shown.join("\n"),
                &ran.output,
            ) {
                problems.push(e);
            }
        }
    }

    // Stop everything: nothing may be left running or on disk.
    if let Err(e) = shell.clean_up() {
        problems.push(e);
    }
    assert!(problems.is_empty(), "{}", problems.join("\n\n"));
}
