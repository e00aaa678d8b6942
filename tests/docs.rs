//! The user docs as a tested contract (issue 25): what they list is what the code has.
//!
//! - `docs/api.md` documents every `spec` and `status` field of `crds/vncsession.yaml` (the
//!   output of `ecs-vnc-operator crd`), with the CRD's type, pattern, length limit, enum and
//!   default; it names no field the CRD lacks; its phases, printer columns, condition types,
//!   reasons and annotations are the CRD's and the source's.
//! - The README's "Every `lastError.code`" table holds every code the source can write into
//!   `status.lastError.code`, and says "retried" exactly for the ECS codes the operator retries.
//! - The README names every subcommand of `ecs-vnc-operator`.
//! - The uninstall command the docs give (delete by label) spares the CRD and the sessions'
//!   namespace: every other object of `deploy/` and `deploy/namespaced/` carries the label.
//! - SECURITY.md says how to report, what is supported, and points at the reference.
//! - Relative links in the user docs lead to files and headings that exist.
//!
//! None of this needs a cluster.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::process::Command;

use serde_json::Value;

mod support;

use support::markdown::code_spans;
use support::paths::{read, root};
use support::source_tree::source_files;

fn crd() -> Value {
    serde_yaml::from_str(&read("crds/vncsession.yaml")).expect("crds/vncsession.yaml is YAML")
}

fn crd_version(crd: &Value) -> &Value {
    &crd["spec"]["versions"][0]
}

// ------------------------------------------------------------------------------------------------
// Markdown
// ------------------------------------------------------------------------------------------------

/// The cells of a table row, split on `|` but not on `\|` (which GitHub shows as `|`, also in a
/// code span), unescaped and trimmed.
fn cells(row: &str) -> Vec<String> {
    let inner = row.trim().trim_start_matches('|');
    let inner = inner.strip_suffix('|').unwrap_or(inner);
    let mut out = vec![String::new()];
    let mut chars = inner.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '\\' if chars.peek() == Some(&'|') => {
                out.last_mut().unwrap().push('|');
                chars.next();
            }
            '|' => out.push(String::new()),
            _ => out.last_mut().unwrap().push(c),
        }
    }
    out.into_iter().map(|c| c.trim().to_owned()).collect()
}

/// The body rows of every table in `text` whose header row's first cell is `first`.
fn tables(text: &str, first: &str) -> Vec<Vec<String>> {
    let lines: Vec<&str> = text.lines().map(str::trim).collect();
    let mut rows = Vec::new();
    let mut i = 0;
    while i < lines.len() {
        if lines[i].starts_with('|') && cells(lines[i]).first().map(String::as_str) == Some(first) {
            i += 2;
            while i < lines.len() && lines[i].starts_with('|') {
                rows.push(cells(lines[i]));
                i += 1;
            }
        } else {
            i += 1;
        }
    }
    rows
}

/// The text under the heading `heading` (a whole line), up to the next heading of its level or
/// higher (fenced blocks are skipped when looking for headings).
fn section(text: &str, heading: &str) -> String {
    let level = heading.chars().take_while(|&c| c == '#').count();
    let lines: Vec<&str> = text.lines().collect();
    let start = lines
        .iter()
        .position(|l| l.trim_end() == heading)
        .unwrap_or_else(|| panic!("no heading {heading:?}"));
    let mut out = Vec::new();
    let mut fenced = false;
    for line in &lines[start + 1..] {
        if line.trim_start().starts_with("```") {
            fenced = !fenced;
        }
        let hashes = line.chars().take_while(|&c| c == '#').count();
        if !fenced && hashes > 0 && hashes <= level && line[hashes..].starts_with(' ') {
            break;
        }
        out.push(*line);
    }
    out.join("\n")
}

/// The first cell of each row when it is exactly one code span.
fn first_codes(rows: &[Vec<String>]) -> Vec<String> {
    rows.iter()
        .filter_map(|r| {
            let spans = code_spans(&r[0]);
            (spans.len() == 1 && r[0] == format!("`{}`", spans[0])).then(|| spans[0].clone())
        })
        .collect()
}

/// GitHub's anchor for a heading: lower case, punctuation dropped, spaces to hyphens.
fn anchor(heading: &str) -> String {
    heading
        .trim_start_matches('#')
        .trim()
        .to_lowercase()
        .chars()
        .filter_map(|c| match c {
            ' ' => Some('-'),
            c if c.is_alphanumeric() || c == '-' || c == '_' => Some(c),
            _ => None,
        })
        .collect()
}

fn anchors(text: &str) -> BTreeSet<String> {
    let mut fenced = false;
    let mut out = BTreeSet::new();
    for line in text.lines() {
        if line.trim_start().starts_with("```") {
            fenced = !fenced;
        }
        if !fenced && line.starts_with('#') {
            out.insert(anchor(line));
        }
    }
    out
}

// ------------------------------------------------------------------------------------------------
// The API reference against the CRD
// ------------------------------------------------------------------------------------------------

/// Every property under `schema`, depth first: (`spec.credentialsRef.name`, its schema, whether
/// its parent requires it). Array items are `[]`: `status.conditions[].type`.
fn fields<'a>(prefix: &str, schema: &'a Value, out: &mut Vec<(String, &'a Value, bool)>) {
    let required: BTreeSet<&str> = schema["required"]
        .as_array()
        .map(|r| r.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default();
    let Some(properties) = schema["properties"].as_object() else {
        return;
    };
    for (name, property) in properties {
        let path = format!("{prefix}.{name}");
        out.push((path.clone(), property, required.contains(name.as_str())));
        fields(&path, property, out);
        if property["type"] == "array" {
            fields(&format!("{path}[]"), &property["items"], out);
        }
    }
}

/// What a row must say for the CRD's rules on the field; one line per thing it lacks.
fn row_problems(path: &str, schema: &Value, required: bool, row: &[String]) -> Vec<String> {
    let all = row.join(" | ");
    let type_cell = row.get(1).map(String::as_str).unwrap_or("");
    let mut problems = Vec::new();
    let mut want = |ok: bool, what: String| {
        if !ok {
            problems.push(format!("{path}: the reference's row lacks {what}"));
        }
    };
    if let Some(t) = schema["type"].as_str() {
        want(
            type_cell.contains(t),
            format!("type {t:?} in its type cell"),
        );
    }
    if let Some(f) = schema["format"].as_str().filter(|f| *f == "date-time") {
        want(
            type_cell.contains(f),
            format!("format {f:?} in its type cell"),
        );
    }
    if let Some(p) = schema["pattern"].as_str() {
        want(
            code_spans(&all).iter().any(|s| s == p),
            format!("the pattern `{p}` (write `|` as `\\|` inside a table)"),
        );
    }
    if let Some(n) = schema["maxLength"].as_u64() {
        want(
            all.contains(&format!("at most {n} characters")),
            format!("\"at most {n} characters\""),
        );
    }
    if let Some(values) = schema["enum"].as_array() {
        for v in values.iter().filter_map(Value::as_str) {
            want(
                all.contains(&format!("`{v}`")),
                format!("the enum value `{v}`"),
            );
        }
    }
    if let Some(d) = schema.get("default").filter(|d| !d.is_null()) {
        want(
            all.contains(&format!("default `{d}`")),
            format!("\"default `{d}`\""),
        );
    }
    if path.starts_with("spec.") {
        // What a writer must know: whether the field may be left out.
        if required {
            want(all.contains("required"), "\"required\"".to_owned());
        } else {
            want(all.contains("optional"), "\"optional\"".to_owned());
        }
    }
    problems
}

#[test]
fn the_api_reference_documents_every_field_of_the_crd_with_its_rules() {
    let crd = crd();
    let schema = &crd_version(&crd)["schema"]["openAPIV3Schema"]["properties"];
    let mut crd_fields = Vec::new();
    for top in ["spec", "status"] {
        fields(top, &schema[top], &mut crd_fields);
    }
    assert!(crd_fields.len() > 30, "the CRD's fields: {crd_fields:?}");

    let reference = read("docs/api.md");
    let rows = tables(&reference, "field");
    let documented: BTreeMap<String, &Vec<String>> = rows
        .iter()
        .filter_map(|r| {
            let path = first_codes(std::slice::from_ref(r)).pop()?;
            (path.starts_with("spec.") || path.starts_with("status.")).then_some((path, r))
        })
        .collect();

    let mut problems = Vec::new();
    for (path, field, required) in &crd_fields {
        match documented.get(path) {
            None => problems.push(format!(
                "{path} is in the CRD but not in docs/api.md: add a row `| `{path}` | {} | ... |`",
                field["type"].as_str().unwrap_or("?")
            )),
            Some(row) => problems.extend(row_problems(path, field, *required, row)),
        }
    }
    let known: BTreeSet<&str> = crd_fields.iter().map(|(p, _, _)| p.as_str()).collect();
    for path in documented.keys() {
        if !known.contains(path.as_str()) {
            problems.push(format!(
                "docs/api.md documents {path}, which the CRD does not have (planned fields belong \
                 under \"Designed, not built yet\", not in a field table)"
            ));
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

/// `pub const NAME: &str = "value";` lines of `text` whose name ends with `suffix` (any name
/// when `suffix` is empty).
fn str_consts(text: &str, suffix: &str) -> BTreeSet<String> {
    text.lines()
        .filter_map(|l| {
            let rest = l.trim().split_once("const ")?.1;
            let (name, rest) = rest.split_once(": &str = \"")?;
            (name.ends_with(suffix)).then(|| rest.split('"').next().unwrap().to_owned())
        })
        .collect()
}

/// `Reason::X => "X"` arms of `src/session/update.rs`.
fn reasons() -> BTreeSet<String> {
    let text = read("src/session/update.rs");
    let found: BTreeSet<String> = text
        .lines()
        .filter_map(|l| {
            let rest = l.trim().strip_prefix("Reason::")?;
            let value = rest.split_once("=> \"")?.1;
            Some(value.split('"').next().unwrap().to_owned())
        })
        .collect();
    assert!(
        found.len() >= 8,
        "reasons in src/session/update.rs: {found:?}"
    );
    found
}

fn compare(what: &str, documented: &[String], actual: &BTreeSet<String>) -> Vec<String> {
    let documented: BTreeSet<String> = documented.iter().cloned().collect();
    let mut problems = Vec::new();
    for missing in actual.difference(&documented) {
        problems.push(format!("docs/api.md, {what}: `{missing}` is missing"));
    }
    for extra in documented.difference(actual) {
        problems.push(format!("docs/api.md, {what}: `{extra}` is not in the code"));
    }
    problems
}

#[test]
fn the_api_reference_lists_every_phase_column_condition_reason_and_annotation() {
    let crd = crd();
    let version = crd_version(&crd);
    let reference = read("docs/api.md");
    let mut problems = Vec::new();

    let phases: BTreeSet<String> =
        version["schema"]["openAPIV3Schema"]["properties"]["status"]["properties"]["phase"]["enum"]
            .as_array()
            .expect("status.phase has an enum")
            .iter()
            .map(|v| v.as_str().unwrap().to_owned())
            .collect();
    let shown = first_codes(&tables(&section(&reference, "## Phases"), "phase"));
    problems.extend(compare("Phases", &shown, &phases));

    let columns = version["additionalPrinterColumns"].as_array().unwrap();
    let rows = tables(&reference, "column");
    let names: BTreeSet<String> = columns
        .iter()
        .map(|c| c["name"].as_str().unwrap().to_owned())
        .collect();
    problems.extend(compare("printer columns", &first_codes(&rows), &names));
    for column in columns {
        let name = column["name"].as_str().unwrap();
        let path = column["jsonPath"].as_str().unwrap();
        let kind = column["type"].as_str().unwrap();
        if let Some(row) = rows.iter().find(|r| r[0] == format!("`{name}`"))
            && (!row[1].contains(&format!("`{path}`")) || !row[2].starts_with(kind))
        {
            problems.push(format!(
                "docs/api.md, column {name}: want `{path}` and type {kind}, have {row:?}"
            ));
        }
    }

    let conditions = str_consts(&read("src/session/conditions.rs"), "");
    assert!(conditions.len() >= 3, "condition types: {conditions:?}");
    let shown = first_codes(&tables(&section(&reference, "## Conditions"), "type"));
    problems.extend(compare("Conditions", &shown, &conditions));

    let shown = first_codes(&tables(&section(&reference, "## Reasons"), "reason"));
    problems.extend(compare("Reasons", &shown, &reasons()));

    let mut annotations = BTreeSet::new();
    for file in source_files(&root().join("src")) {
        annotations.extend(str_consts(&code_part(&file), "_ANNOTATION"));
    }
    assert!(
        annotations.contains("ecsvnc.dev/refresh"),
        "annotations in src/: {annotations:?}"
    );
    let shown = first_codes(&tables(
        &section(&reference, "## Annotations"),
        "annotation",
    ));
    problems.extend(compare("Annotations", &shown, &annotations));

    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

// ------------------------------------------------------------------------------------------------
// lastError codes against the source
// ------------------------------------------------------------------------------------------------

/// A file's text up to its `#[cfg(test)]` module.
fn code_part(path: &Path) -> String {
    let text = std::fs::read_to_string(path).unwrap();
    match text.find("#[cfg(test)]") {
        Some(at) => text[..at].to_owned(),
        None => text,
    }
}

/// The string literal that starts right after `at` (which must be `"`), if any.
fn literal_at(text: &str, at: usize) -> Option<String> {
    let rest = text.get(at..)?.strip_prefix('"')?;
    Some(rest.split('"').next()?.to_owned())
}

/// The string literals of the `&[&str]` array named `name` in `text`.
fn str_array(text: &str, name: &str) -> Vec<String> {
    let start = text
        .find(&format!("const {name}: &[&str] = &["))
        .unwrap_or_else(|| panic!("no array {name}"));
    let body = &text[start..];
    let body = &body[..body.find("];").unwrap()];
    code_spans(&body.replace('"', "`"))
}

/// Every code the operator can write into `status.lastError.code` that its source spells out:
/// ECS's codes that it sorts into terminal and retryable, and its own codes.
fn source_codes() -> (BTreeSet<String>, Vec<String>, Vec<String>) {
    let codes_rs = read("src/aliyun/error/codes.rs");
    let terminal = str_array(&codes_rs, "TERMINAL_CODES");
    let retryable = str_array(&codes_rs, "RETRYABLE_CODES");
    assert!(
        terminal.len() >= 5 && retryable.len() >= 5,
        "{terminal:?} {retryable:?}"
    );
    let mut codes: BTreeSet<String> = terminal.iter().chain(&retryable).cloned().collect();

    let mut files = Vec::new();
    for dir in ["src/aliyun", "src/controller", "src/session"] {
        files.extend(source_files(&root().join(dir)));
    }
    for file in &files {
        let text = code_part(file);
        let lines: Vec<&str> = text.lines().collect();
        // `const CODE_X: &str = "..."`, or any `&str` const documented as a `lastError.code`.
        for (i, line) in lines.iter().enumerate() {
            let Some(rest) = line.trim().split_once("const ").map(|(_, r)| r) else {
                continue;
            };
            let Some((name, value)) = rest.split_once(": &str = \"") else {
                continue;
            };
            let documented_as_code = lines[..i]
                .iter()
                .rev()
                .take_while(|l| l.trim_start().starts_with("///"))
                .any(|l| l.contains("lastError.code"));
            if name.starts_with("CODE_") || documented_as_code {
                codes.insert(value.split('"').next().unwrap().to_owned());
            }
        }
        // `code: "X"`, `code() == "X"`, and match arms that give a code first: `=> ("X", ...`.
        for needle in ["code: \"", "code() == \""] {
            for (at, _) in text.match_indices(needle) {
                codes.extend(literal_at(&text, at + needle.len() - 1));
            }
        }
        for (at, _) in text.match_indices("=> (") {
            let after = &text[at + 4..];
            let skipped = after.len() - after.trim_start().len();
            if let Some(code) = literal_at(&text, at + 4 + skipped) {
                let next = &text[at + 4 + skipped + code.len() + 2..];
                if next.starts_with(',') && code.chars().next().is_some_and(char::is_uppercase) {
                    codes.insert(code);
                }
            }
        }
        // A reason used as the code (`code: Reason::CredentialsNotFound.as_str()`, and the
        // per-instance limit's `Throttled`).
        for (at, _) in text.match_indices("Reason::") {
            let rest = &text[at + "Reason::".len()..];
            if let Some((name, _)) = rest.split_once(".as_str()")
                && name.chars().all(char::is_alphanumeric)
            {
                codes.insert(name.to_owned());
            }
        }
    }
    (codes, terminal, retryable)
}

/// Whether `pattern` (a code, `X*` or `X.*`) stands for `code`.
fn covers(pattern: &str, code: &str) -> bool {
    match pattern.strip_suffix('*') {
        Some(prefix) => code.starts_with(prefix),
        None => pattern == code,
    }
}

#[test]
fn every_last_error_code_of_the_source_is_in_the_readme() {
    let (codes, terminal, retryable) = source_codes();
    for expected in [
        "EndpointNotAllowed",
        "InvalidRegionId",
        "InvalidSpec",
        "InvalidEndpoint",
        "CredentialsNotFound",
        "Throttled",
        "Paced",
        "Timeout",
        "ConnectionFailed",
        "MalformedResponse",
        "ResponseTooLarge",
        "RequestFailed",
        "ClientSetup",
        "SecretReadFailed",
        "TokenRequestFailed",
        "OIDCTokenFileUnreadable",
    ] {
        assert!(
            codes.contains(expected),
            "the source scan no longer finds {expected:?} (found {codes:?}): if the code moved to a \
             new form, teach source_codes() that form"
        );
    }

    let readme = read("README.md");
    let rows = tables(&section(&readme, "### Every `lastError.code`"), "code");
    assert!(rows.len() > 10, "the README's code table: {rows:?}");
    let documented: Vec<(String, &Vec<String>)> = rows
        .iter()
        .flat_map(|r| code_spans(&r[0]).into_iter().map(move |c| (c, r)))
        .collect();

    let mut problems = Vec::new();
    for code in &codes {
        if !documented.iter().any(|(d, _)| covers(d, code)) {
            problems.push(format!(
                "`{code}` can be a lastError.code but the README's \"Every `lastError.code`\" \
                 table does not list it"
            ));
        }
    }
    for (list, want) in [(&terminal, "no"), (&retryable, "yes")] {
        for code in list {
            match documented.iter().find(|(d, _)| d == code) {
                Some((_, row)) if row[2].starts_with(want) => {}
                Some((_, row)) => problems.push(format!(
                    "`{code}`: the README says retried {:?}; src/aliyun/error/codes.rs says {want}",
                    row[2]
                )),
                None => problems.push(format!(
                    "`{code}` (src/aliyun/error/codes.rs) needs a row of its own, spelled so"
                )),
            }
        }
    }
    // Nothing listed that no source file knows (a typo, or a code that is gone).
    let mut all_source = String::new();
    for file in source_files(&root().join("src")) {
        all_source.push_str(&std::fs::read_to_string(file).unwrap());
    }
    for (code, _) in &documented {
        let stem = code.trim_end_matches('*').trim_end_matches('.');
        if !all_source.contains(&format!("\"{stem}")) {
            problems.push(format!(
                "the README lists `{code}`, which appears nowhere in src/"
            ));
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

// ------------------------------------------------------------------------------------------------
// Subcommands, uninstalling, SECURITY.md, links
// ------------------------------------------------------------------------------------------------

#[test]
fn the_readme_names_every_subcommand_of_the_operator_binary() {
    let out = Command::new(env!("CARGO_BIN_EXE_ecs-vnc-operator"))
        .arg("--help")
        .output()
        .expect("cargo test builds ecs-vnc-operator");
    let help = String::from_utf8(out.stdout).unwrap();
    let commands: Vec<&str> = help
        .split("Commands:")
        .nth(1)
        .expect("--help lists commands")
        .lines()
        .skip(1)
        .take_while(|l| l.starts_with("  "))
        .filter_map(|l| l.split_whitespace().next())
        .filter(|c| *c != "help")
        .collect();
    assert!(commands.contains(&"crd"), "{help}");
    let readme = read("README.md");
    for command in commands {
        assert!(
            readme.contains(&format!("ecs-vnc-operator {command}"))
                || readme.contains(&format!("ecs-vnc-operator -- {command}")),
            "the README never shows `ecs-vnc-operator {command}`"
        );
    }
}

/// The objects a kustomization lists, read from its files (`resources:` and `bases:`, which
/// here are files and directories holding a kustomization).
fn kustomize_objects(dir: &Path) -> Vec<Value> {
    let k: Value =
        serde_yaml::from_str(&std::fs::read_to_string(dir.join("kustomization.yaml")).unwrap())
            .unwrap();
    let mut out = Vec::new();
    for key in ["bases", "resources"] {
        for entry in k[key].as_array().into_iter().flatten() {
            let path = dir.join(entry.as_str().unwrap());
            if path.is_dir() {
                out.extend(kustomize_objects(&path));
            } else {
                let text = std::fs::read_to_string(&path).unwrap();
                for doc in serde_yaml::Deserializer::from_str(&text) {
                    let v: Value = serde::Deserialize::deserialize(doc).unwrap();
                    if !v.is_null() {
                        out.push(v);
                    }
                }
            }
        }
    }
    out
}

const UNINSTALL_LABEL: &str = "app.kubernetes.io/name";
const UNINSTALL: &str = "kubectl delete namespace,clusterrole,clusterrolebinding,role,rolebinding -A -l app.kubernetes.io/name=ecs-vnc-operator";

#[test]
fn uninstalling_by_label_keeps_the_crd_and_the_sessions_namespace() {
    for doc in ["README.md", "deploy/README.md"] {
        let text = read(doc);
        assert!(
            text.contains(UNINSTALL),
            "{doc} no longer shows {UNINSTALL:?}"
        );
        assert!(
            text.contains("kubectl delete -k deploy/") && text.contains("every VncSession"),
            "{doc} must warn that `kubectl delete -k deploy/` deletes every VncSession"
        );
    }
    let kinds: BTreeSet<&str> = [
        "Namespace",
        "ClusterRole",
        "ClusterRoleBinding",
        "Role",
        "RoleBinding",
    ]
    .into_iter()
    .collect();
    for dir in ["deploy", "deploy/namespaced"] {
        let objects = kustomize_objects(&root().join(dir));
        assert!(objects.len() > 8, "{dir}: {objects:?}");
        for o in &objects {
            let kind = o["kind"].as_str().unwrap();
            let name = o["metadata"]["name"].as_str().unwrap();
            let labelled = o["metadata"]["labels"][UNINSTALL_LABEL] == "ecs-vnc-operator";
            let keep = kind == "CustomResourceDefinition"
                || (kind == "Namespace" && name == "ecs-vnc-sessions");
            if keep {
                assert!(
                    !labelled,
                    "{dir}: {kind} {name} holds grants and must not carry {UNINSTALL_LABEL}, or the \
                     documented uninstall deletes them"
                );
            } else if kinds.contains(kind) {
                assert!(
                    labelled,
                    "{dir}: {kind} {name} lacks {UNINSTALL_LABEL}=ecs-vnc-operator, so the \
                     documented uninstall leaves it behind"
                );
            } else {
                // Namespaced objects go with their namespace.
                assert_eq!(
                    o["metadata"]["namespace"], "ecs-vnc-system",
                    "{dir}: {kind} {name} is outside ecs-vnc-system and no label deletes it"
                );
            }
        }
    }
}

#[test]
fn security_md_says_how_to_report_what_is_supported_and_where_the_api_is() {
    // Line breaks in the prose do not matter.
    let text = read("SECURITY.md")
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ");
    for needle in [
        "## Reporting a vulnerability",
        "private vulnerability reporting",
        "## Supported versions",
        "0.1.x",
        "`main`",
        "## Disclosure",
        "days",
        "## Threat model",
        "### Where a console URL can appear",
        "RequestResponse",
        "etcd",
        "docs/api.md",
        "urlDelivery: OnOpen",
        "not built yet",
    ] {
        assert!(text.contains(needle), "SECURITY.md lacks {needle:?}");
    }
    // The CRD really has no urlDelivery yet; once it does, SECURITY.md and the README must stop
    // calling it planned.
    let crd = read("crds/vncsession.yaml");
    assert!(
        !crd.contains("urlDelivery"),
        "urlDelivery is built: update SECURITY.md, the README and docs/api.md, which call it planned"
    );
}

#[test]
fn relative_links_in_the_user_docs_lead_somewhere() {
    let mut docs = vec![
        "README.md".to_owned(),
        "SECURITY.md".to_owned(),
        "deploy/README.md".to_owned(),
    ];
    for entry in std::fs::read_dir(root().join("docs")).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_some_and(|e| e == "md") {
            docs.push(format!(
                "docs/{}",
                path.file_name().unwrap().to_string_lossy()
            ));
        }
    }
    let mut problems = Vec::new();
    for doc in &docs {
        // Outside code spans and fenced blocks only (a regex such as `([-a-z0-9]*)` is no link).
        let text: String = read(doc)
            .split('`')
            .step_by(2)
            .collect::<Vec<_>>()
            .join(" ");
        let dir = Path::new(doc).parent().unwrap();
        for (at, _) in text.match_indices("](") {
            let target = text[at + 2..].split(')').next().unwrap();
            if target.contains("://") || target.starts_with("mailto:") || target.contains(' ') {
                continue;
            }
            let (file, fragment) = target.split_once('#').unwrap_or((target, ""));
            let linked = if file.is_empty() {
                doc.clone()
            } else {
                let joined = root().join(dir).join(file);
                if !joined.exists() {
                    problems.push(format!("{doc}: link to {target}: no such file"));
                    continue;
                }
                joined
                    .strip_prefix(root())
                    .map(|p| p.to_string_lossy().into_owned())
                    .unwrap_or_default()
            };
            if !fragment.is_empty() && linked.ends_with(".md") {
                let resolved = std::fs::canonicalize(root().join(&linked)).unwrap();
                let heads = anchors(&std::fs::read_to_string(resolved).unwrap());
                if !heads.contains(fragment) {
                    problems.push(format!("{doc}: link to {target}: no such heading"));
                }
            }
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}
