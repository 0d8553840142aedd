//! Helpers shared by the ops tests (`tests/ops_*.rs`): metric names out of
//! the Grafana dashboard's PromQL, the metric contract out of
//! `docs/metrics.md`, and metric families out of a `/metrics` scrape.
//!
//! They live in one module so that the dashboard can be checked against the
//! documented contract now and against a live scrape of the running service
//! with the same extraction, once the service exports its metrics.
#![allow(dead_code)] // each test crate uses a different subset

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// Root of the repository (the root package's manifest directory).
pub fn repo_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// Reads a repository file, naming it in the panic message.
pub fn read_repo_file(relative: impl AsRef<Path>) -> String {
    let path = repo_root().join(relative.as_ref());
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("reading {}: {e}", path.display()))
}

// ---------------------------------------------------------------------------
// PromQL
// ---------------------------------------------------------------------------

/// One label matcher of a vector selector, e.g. `kind="session_status"`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Matcher {
    pub label: String,
    pub op: String,
    pub value: String,
}

/// One vector selector: the series name and its label matchers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Selector {
    pub series: String,
    pub matchers: Vec<Matcher>,
}

/// What a PromQL expression reads: its selectors and the labels it groups by
/// (`by (...)`, `without (...)`, `on (...)`, `ignoring (...)`,
/// `group_left (...)`, `group_right (...)`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PromqlRefs {
    pub selectors: Vec<Selector>,
    pub grouping_labels: BTreeSet<String>,
}

impl PromqlRefs {
    /// Series names selected (a histogram appears as `x_bucket`, `x_sum`...).
    pub fn series_names(&self) -> BTreeSet<String> {
        self.selectors.iter().map(|s| s.series.clone()).collect()
    }
}

const AGGREGATIONS: &[&str] = &[
    "sum",
    "avg",
    "min",
    "max",
    "count",
    "group",
    "stddev",
    "stdvar",
    "topk",
    "bottomk",
    "quantile",
    "count_values",
    "limitk",
    "limit_ratio",
];
const GROUPING: &[&str] = &[
    "by",
    "without",
    "on",
    "ignoring",
    "group_left",
    "group_right",
];
const KEYWORDS: &[&str] = &[
    "and", "or", "unless", "bool", "offset", "atan2", "inf", "nan",
];

/// Extracts the series names selected by a PromQL expression (as Grafana
/// stores it: `$var`, `${var}` and `[[var]]` template variables allowed).
pub fn promql_metric_names(expr: &str) -> Result<BTreeSet<String>, String> {
    Ok(promql_refs(expr)?.series_names())
}

/// Lexes a PromQL expression just far enough to tell metric names from
/// function names, keywords, label names, strings, durations and template
/// variables.
pub fn promql_refs(expr: &str) -> Result<PromqlRefs, String> {
    let chars: Vec<char> = expr.chars().collect();
    let mut refs = PromqlRefs::default();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        if c.is_whitespace() {
            i += 1;
        } else if c == '"' || c == '\'' || c == '`' {
            i = skip_string(&chars, i)?;
        } else if c == '$' {
            i = skip_variable(&chars, i);
        } else if c == '[' && chars.get(i + 1) == Some(&'[') {
            // Grafana's deprecated [[var]] syntax.
            i = skip_past(&chars, i, "]]")?;
        } else if c == '[' {
            // Range or subquery: durations and variables only.
            i = skip_past(&chars, i, "]")?;
        } else if c == '{' {
            let (matchers, next) = parse_matchers(&chars, i)?;
            let name = matchers
                .iter()
                .find(|m| m.label == "__name__" && m.op == "=")
                .map(|m| m.value.clone())
                .ok_or_else(|| format!("selector without a metric name in {expr:?}"))?;
            refs.selectors.push(Selector {
                series: name,
                matchers,
            });
            i = next;
        } else if c.is_ascii_digit() || (c == '.' && next_is_digit(&chars, i)) {
            // Number or duration literal (5m, 0.99, 1e3).
            while i < chars.len()
                && (chars[i].is_ascii_alphanumeric() || chars[i] == '.' || chars[i] == '_')
            {
                i += 1;
            }
        } else if is_ident_start(c) {
            let start = i;
            while i < chars.len() && is_ident_char(chars[i]) {
                i += 1;
            }
            let word: String = chars[start..i].iter().collect();
            let lower = word.to_ascii_lowercase();
            let after = skip_ws(&chars, i);
            if GROUPING.contains(&lower.as_str()) {
                if chars.get(after) == Some(&'(') {
                    let close = find_closing(&chars, after, '(', ')')?;
                    let inner: String = chars[after + 1..close].iter().collect();
                    for label in inner.split(',').map(str::trim).filter(|l| !l.is_empty()) {
                        refs.grouping_labels.insert(label.to_string());
                    }
                    i = close + 1;
                }
            } else if AGGREGATIONS.contains(&lower.as_str()) || KEYWORDS.contains(&lower.as_str()) {
                // Not a metric name; its arguments are lexed as they come.
            } else if chars.get(after) == Some(&'(') {
                // Function call; its arguments are lexed as they come.
            } else {
                let mut selector = Selector {
                    series: word,
                    matchers: Vec::new(),
                };
                if chars.get(after) == Some(&'{') {
                    let (matchers, next) = parse_matchers(&chars, after)?;
                    selector.matchers = matchers;
                    i = next;
                }
                refs.selectors.push(selector);
            }
        } else {
            // Operators, parentheses, commas, `@`.
            i += 1;
        }
    }
    Ok(refs)
}

fn is_ident_start(c: char) -> bool {
    c.is_ascii_alphabetic() || c == '_' || c == ':'
}

fn is_ident_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || c == '_' || c == ':'
}

fn next_is_digit(chars: &[char], i: usize) -> bool {
    chars.get(i + 1).is_some_and(|c| c.is_ascii_digit())
}

fn skip_ws(chars: &[char], mut i: usize) -> usize {
    while i < chars.len() && chars[i].is_whitespace() {
        i += 1;
    }
    i
}

/// Index just past the string literal that starts at `start`.
fn skip_string(chars: &[char], start: usize) -> Result<usize, String> {
    let quote = chars[start];
    let mut i = start + 1;
    while i < chars.len() {
        match chars[i] {
            '\\' if quote != '`' => i += 2,
            c if c == quote => return Ok(i + 1),
            _ => i += 1,
        }
    }
    Err(format!("unterminated string starting at {start}"))
}

fn read_string(chars: &[char], start: usize) -> Result<(String, usize), String> {
    let end = skip_string(chars, start)?;
    Ok((chars[start + 1..end - 1].iter().collect(), end))
}

/// `$name`, `${name}`, `${name:format}`.
fn skip_variable(chars: &[char], start: usize) -> usize {
    let mut i = start + 1;
    if chars.get(i) == Some(&'{') {
        while i < chars.len() && chars[i] != '}' {
            i += 1;
        }
        return (i + 1).min(chars.len());
    }
    while i < chars.len() && is_ident_char(chars[i]) {
        i += 1;
    }
    i
}

fn skip_past(chars: &[char], start: usize, close: &str) -> Result<usize, String> {
    let close: Vec<char> = close.chars().collect();
    let mut i = start + 1;
    while i + close.len() <= chars.len() {
        if chars[i..i + close.len()] == close[..] {
            return Ok(i + close.len());
        }
        i += 1;
    }
    Err(format!("unclosed bracket at {start}"))
}

fn find_closing(chars: &[char], open_at: usize, open: char, close: char) -> Result<usize, String> {
    let mut depth = 0usize;
    let mut i = open_at;
    while i < chars.len() {
        let c = chars[i];
        if c == '"' || c == '\'' || c == '`' {
            i = skip_string(chars, i)?;
            continue;
        }
        if c == open {
            depth += 1;
        } else if c == close {
            depth -= 1;
            if depth == 0 {
                return Ok(i);
            }
        }
        i += 1;
    }
    Err(format!("unbalanced {open}{close} at {open_at}"))
}

/// Parses `{label op "value", ...}` starting at the `{`; returns the
/// matchers and the index just past the `}`.
fn parse_matchers(chars: &[char], open_at: usize) -> Result<(Vec<Matcher>, usize), String> {
    let mut matchers = Vec::new();
    let mut i = open_at + 1;
    loop {
        i = skip_ws(chars, i);
        match chars.get(i) {
            None => return Err(format!("unclosed {{ at {open_at}")),
            Some('}') => return Ok((matchers, i + 1)),
            Some(',') => {
                i += 1;
                continue;
            }
            Some(&c) if is_ident_start(c) => {}
            Some(c) => return Err(format!("unexpected {c:?} in label matchers at {i}")),
        }
        let start = i;
        while i < chars.len() && is_ident_char(chars[i]) {
            i += 1;
        }
        let label: String = chars[start..i].iter().collect();
        i = skip_ws(chars, i);
        let op_start = i;
        while i < chars.len() && matches!(chars[i], '=' | '!' | '~') {
            i += 1;
        }
        let op: String = chars[op_start..i].iter().collect();
        if !matches!(op.as_str(), "=" | "!=" | "=~" | "!~") {
            return Err(format!("bad matcher operator {op:?} for label {label}"));
        }
        i = skip_ws(chars, i);
        if !matches!(chars.get(i), Some('"' | '\'' | '`')) {
            return Err(format!("label {label} needs a quoted value"));
        }
        let (value, next) = read_string(chars, i)?;
        i = next;
        matchers.push(Matcher { label, op, value });
    }
}

// ---------------------------------------------------------------------------
// Grafana dashboard JSON
// ---------------------------------------------------------------------------

/// A query of the dashboard: where it is and its PromQL.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DashboardQuery {
    /// Panel title, or `$name` for a template variable.
    pub origin: String,
    pub expr: String,
}

/// Every panel (rows' nested panels included), flattened.
pub fn dashboard_panels(dashboard: &serde_json::Value) -> Vec<&serde_json::Value> {
    fn walk<'a>(panels: &'a serde_json::Value, out: &mut Vec<&'a serde_json::Value>) {
        for panel in panels.as_array().into_iter().flatten() {
            out.push(panel);
            if let Some(nested) = panel.get("panels") {
                walk(nested, out);
            }
        }
    }
    let mut out = Vec::new();
    if let Some(panels) = dashboard.get("panels") {
        walk(panels, &mut out);
    }
    out
}

/// Every PromQL expression of the dashboard: panel targets and the queries
/// of template variables (`label_values(selector, label)` contributes its
/// selector; `query_result(expr)` its expression).
pub fn dashboard_queries(dashboard: &serde_json::Value) -> Vec<DashboardQuery> {
    let mut out = Vec::new();
    for panel in dashboard_panels(dashboard) {
        let title = panel["title"].as_str().unwrap_or("<untitled>").to_string();
        for target in panel["targets"].as_array().into_iter().flatten() {
            if let Some(expr) = target["expr"].as_str() {
                out.push(DashboardQuery {
                    origin: title.clone(),
                    expr: expr.to_string(),
                });
            }
        }
    }
    for var in dashboard["templating"]["list"]
        .as_array()
        .into_iter()
        .flatten()
    {
        if var["type"].as_str() != Some("query") {
            continue;
        }
        let query = match &var["query"] {
            serde_json::Value::String(s) => Some(s.as_str()),
            other => other["query"].as_str(),
        };
        if let Some(expr) = query.and_then(variable_query_promql) {
            out.push(DashboardQuery {
                origin: format!("${}", var["name"].as_str().unwrap_or("?")),
                expr,
            });
        }
    }
    out
}

/// The PromQL inside a Grafana Prometheus variable query, if it has any.
pub fn variable_query_promql(query: &str) -> Option<String> {
    let q = query.trim();
    let inner = |prefix: &str| {
        q.strip_prefix(prefix)
            .and_then(|rest| rest.trim_end().strip_suffix(')'))
            .map(str::trim)
    };
    if let Some(args) = inner("label_values(") {
        // label_values(label) has no selector; label_values(selector, label) has.
        return top_level_last_comma(args).map(|at| args[..at].trim().to_string());
    }
    if let Some(expr) = inner("query_result(") {
        return Some(expr.to_string());
    }
    if q.starts_with("label_names(") || q.starts_with("metrics(") {
        return None;
    }
    Some(q.to_string())
}

fn top_level_last_comma(s: &str) -> Option<usize> {
    let mut depth = 0i32;
    let mut quote: Option<char> = None;
    let mut last = None;
    for (i, c) in s.char_indices() {
        match (quote, c) {
            (Some(q), c) if c == q => quote = None,
            (Some(_), _) => {}
            (None, '"' | '\'' | '`') => quote = Some(c),
            (None, '(' | '{' | '[') => depth += 1,
            (None, ')' | '}' | ']') => depth -= 1,
            (None, ',') if depth == 0 => last = Some(i),
            _ => {}
        }
    }
    last
}

// ---------------------------------------------------------------------------
// The metric contract (docs/metrics.md) and metric families
// ---------------------------------------------------------------------------

/// A metric family as documented: its Prometheus type and label names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeclaredMetric {
    pub kind: String,
    pub labels: BTreeSet<String>,
}

/// Parses the metric tables of docs/metrics.md (rows `| \`name\` | type | labels | meaning |`).
pub fn declared_metrics(markdown: &str) -> BTreeMap<String, DeclaredMetric> {
    let mut out = BTreeMap::new();
    for line in markdown.lines() {
        let cells: Vec<&str> = line.trim().split('|').map(str::trim).collect();
        // A table row splits into ["", name, type, labels, meaning, ""].
        if cells.len() < 6 || !cells[1].starts_with('`') {
            continue;
        }
        let name = cells[1].trim_matches('`').to_string();
        let labels = cells[3]
            .split(',')
            .map(|l| l.trim().trim_matches('`').to_string())
            .filter(|l| !l.is_empty())
            .collect();
        out.insert(
            name,
            DeclaredMetric {
                kind: cells[2].to_string(),
                labels,
            },
        );
    }
    out
}

/// The family a selected series belongs to, given the families and their
/// types: `x_bucket`, `x_sum`, `x_count` of a histogram `x` belong to `x`
/// (`x_sum`, `x_count` of a summary too); a bare histogram name selects no
/// series and is an error, as is a name that is no family.
pub fn series_family(series: &str, kinds: &BTreeMap<String, String>) -> Result<String, String> {
    for suffix in ["_bucket", "_sum", "_count"] {
        if let Some(base) = series.strip_suffix(suffix) {
            match kinds.get(base).map(String::as_str) {
                Some("histogram") => return Ok(base.to_string()),
                Some("summary") if suffix != "_bucket" => return Ok(base.to_string()),
                _ => {}
            }
        }
    }
    match kinds.get(series).map(String::as_str) {
        Some("histogram") => Err(format!(
            "{series} is a histogram: select {series}_bucket, _sum or _count"
        )),
        Some(_) => Ok(series.to_string()),
        None => Err(format!("{series} is not a known metric family")),
    }
}

/// Metric families of a Prometheus text exposition (`/metrics`): name ->
/// type, from the `# TYPE` lines, plus `untyped` for samples without one.
pub fn exposition_families(text: &str) -> BTreeMap<String, String> {
    let mut kinds: BTreeMap<String, String> = BTreeMap::new();
    for line in text.lines() {
        if let Some(rest) = line.strip_prefix("# TYPE ") {
            let mut parts = rest.split_whitespace();
            if let (Some(name), Some(kind)) = (parts.next(), parts.next()) {
                kinds.insert(name.to_string(), kind.to_string());
            }
        }
    }
    for line in text.lines() {
        if line.starts_with('#') || line.trim().is_empty() {
            continue;
        }
        let name: String = line.chars().take_while(|&c| is_ident_char(c)).collect();
        if series_family(&name, &kinds).is_err() {
            kinds.insert(name, "untyped".to_string());
        }
    }
    kinds
}

/// The metric families the dashboard's queries select, resolved against
/// `kinds` (family -> Prometheus type: from docs/metrics.md, or from a live
/// scrape via [`exposition_families`]); `Err` lists every query that selects
/// something `kinds` does not have.
pub fn dashboard_families(
    dashboard: &serde_json::Value,
    kinds: &BTreeMap<String, String>,
) -> Result<BTreeSet<String>, Vec<String>> {
    let mut families = BTreeSet::new();
    let mut problems = Vec::new();
    for query in dashboard_queries(dashboard) {
        match promql_refs(&query.expr) {
            Ok(refs) => {
                for selector in refs.selectors {
                    match series_family(&selector.series, kinds) {
                        Ok(family) => {
                            families.insert(family);
                        }
                        Err(e) => problems.push(format!("{}: {e}", query.origin)),
                    }
                }
            }
            Err(e) => problems.push(format!("{}: {e}", query.origin)),
        }
    }
    if problems.is_empty() {
        Ok(families)
    } else {
        Err(problems)
    }
}
