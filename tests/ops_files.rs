//! Checks of the ops files that need no Docker engine: the Grafana dashboard
//! against the metric contract (docs/metrics.md), docker-compose.yml,
//! prometheus.yml, the Grafana provisioning and the Dockerfile against each
//! other, and the processor's environment against what the binary documents
//! in `--help`.

mod ops_common;

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Component, Path, PathBuf};
use std::process::Command;

use ops_common::{
    dashboard_families, dashboard_panels, dashboard_queries, declared_metrics, exposition_families,
    promql_metric_names, promql_refs, read_repo_file, repo_root, series_family,
    variable_query_promql, Matcher,
};
use serde_yaml_ng::Value as Yaml;

const DASHBOARD: &str = "grafana/dashboards/account-streams.json";
const DATASOURCES: &str = "grafana/provisioning/datasources/prometheus.yml";
const DASHBOARD_PROVIDERS: &str = "grafana/provisioning/dashboards/account-streams.yml";
const PROCESSORS: [&str; 2] = ["account-streams-1", "account-streams-2"];

/// Panels issue 6 asks for, by exact title.
const REQUIRED_PANELS: &[&str] = &[
    "Login outcomes per second by code",
    "Commands per second by type",
    "End-to-end latency p50/p99",
    "Commit latency p50/p99",
    "Transactions aborted per second",
    "Committed transactions per second",
    "Consumer lag",
    "Restore progress",
    "Dead letters per second by reason",
    "Bcrypt queue",
    "Slow work p99 by stage",
    "Logged-in accounts",
    "Tasks per instance",
];

// ---------------------------------------------------------------------------
// helpers
// ---------------------------------------------------------------------------

fn dashboard() -> serde_json::Value {
    serde_json::from_str(&read_repo_file(DASHBOARD)).expect("dashboard JSON parses")
}

fn yaml_file(relative: &str) -> Yaml {
    let mut value: Yaml = serde_yaml_ng::from_str(&read_repo_file(relative))
        .unwrap_or_else(|e| panic!("{relative}: {e}"));
    value
        .apply_merge()
        .unwrap_or_else(|e| panic!("{relative}: merge keys: {e}"));
    value
}

fn compose() -> Yaml {
    yaml_file("docker-compose.yml")
}

fn service<'a>(compose: &'a Yaml, name: &str) -> &'a Yaml {
    let svc = &compose["services"][name];
    assert!(svc.is_mapping(), "docker-compose.yml has no service {name}");
    svc
}

fn scalar(value: &Yaml) -> String {
    match value {
        Yaml::String(s) => s.clone(),
        Yaml::Number(n) => n.to_string(),
        Yaml::Bool(b) => b.to_string(),
        Yaml::Null => String::new(),
        other => panic!("not a scalar: {other:?}"),
    }
}

/// `environment:` in map or `KEY=value` list form.
fn env_of(svc: &Yaml) -> BTreeMap<String, String> {
    match &svc["environment"] {
        Yaml::Mapping(map) => map.iter().map(|(k, v)| (scalar(k), scalar(v))).collect(),
        Yaml::Sequence(items) => items
            .iter()
            .map(|item| {
                let s = scalar(item);
                match s.split_once('=') {
                    Some((k, v)) => (k.to_string(), v.to_string()),
                    None => (s, String::new()),
                }
            })
            .collect(),
        Yaml::Null => BTreeMap::new(),
        other => panic!("environment must be a map or a list: {other:?}"),
    }
}

/// Published ports as (host, container), short or long syntax.
fn ports_of(svc: &Yaml) -> BTreeSet<(u16, u16)> {
    let mut out = BTreeSet::new();
    for port in svc["ports"].as_sequence().into_iter().flatten() {
        let (host, container) = if port.is_mapping() {
            (scalar(&port["published"]), scalar(&port["target"]))
        } else {
            let text = scalar(port);
            let parts: Vec<&str> = text.split(':').collect();
            match parts.as_slice() {
                [host, container] | [_, host, container] => {
                    (host.to_string(), container.to_string())
                }
                _ => panic!("port {text:?} does not publish to a fixed host port"),
            }
        };
        let container = container.split('/').next().unwrap_or_default().to_string();
        out.insert((
            host.parse()
                .unwrap_or_else(|_| panic!("host port {host:?}")),
            container
                .parse()
                .unwrap_or_else(|_| panic!("container port {container:?}")),
        ));
    }
    out
}

/// Volume mounts as (source, container target), short syntax.
fn mounts_of(svc: &Yaml) -> Vec<(String, String)> {
    svc["volumes"]
        .as_sequence()
        .into_iter()
        .flatten()
        .map(|v| {
            if v.is_mapping() {
                return (scalar(&v["source"]), scalar(&v["target"]));
            }
            let text = scalar(v);
            let mut parts = text.split(':');
            let source = parts.next().unwrap_or_default().to_string();
            let target = parts
                .next()
                .unwrap_or_else(|| panic!("volume {text:?} has no target"))
                .to_string();
            (source, target)
        })
        .collect()
}

/// Host path of a container path through the service's bind mounts.
fn host_path_of(svc: &Yaml, container_path: &str) -> Option<PathBuf> {
    let container_path = Path::new(container_path);
    mounts_of(svc).into_iter().find_map(|(source, target)| {
        let rest = container_path.strip_prefix(&target).ok()?;
        source
            .starts_with("./")
            .then(|| normalize(&repo_root().join(&source)).join(rest))
    })
}

fn normalize(path: &Path) -> PathBuf {
    path.components()
        .filter(|c| !matches!(c, Component::CurDir))
        .collect()
}

fn is_under(path: &str, dir: &str) -> bool {
    Path::new(path).starts_with(dir)
}

/// The env var names `account-streams <args>` documents (`[env: NAME=...]`).
fn documented_env_vars(args: &[&str]) -> BTreeSet<String> {
    // clap may wrap long help lines between `[env:` and the name.
    let help = help_text(args)
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ");
    help.split("[env: ")
        .skip(1)
        .filter_map(|rest| rest.split_once('=').map(|(name, _)| name.to_string()))
        .collect()
}

/// `account-streams <args>` output, run without the caller's environment
/// (clap would print the values of set variables).
fn help_text(args: &[&str]) -> String {
    let output = Command::new(env!("CARGO_BIN_EXE_account-streams"))
        .args(args)
        .env_clear()
        .output()
        .expect("account-streams runs");
    assert!(
        output.status.success(),
        "account-streams {args:?} failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8_lossy(&output.stdout).into_owned()
}

fn matcher(label: &str, op: &str, value: &str) -> Matcher {
    Matcher {
        label: label.into(),
        op: op.into(),
        value: value.into(),
    }
}

fn set(items: &[&str]) -> BTreeSet<String> {
    items.iter().map(|s| s.to_string()).collect()
}

// ---------------------------------------------------------------------------
// the extraction itself
// ---------------------------------------------------------------------------

#[test]
fn promql_extraction_finds_exactly_the_selected_series() {
    let refs = promql_refs(
        r#"sum by (code) (rate(account_streams_outcomes_total{kind="session_status", instance=~"$instance"}[$__rate_interval]))"#,
    )
    .unwrap();
    assert_eq!(
        refs.series_names(),
        set(&["account_streams_outcomes_total"])
    );
    assert_eq!(refs.grouping_labels, set(&["code"]));
    assert_eq!(
        refs.selectors[0].matchers,
        vec![
            matcher("kind", "=", "session_status"),
            matcher("instance", "=~", "$instance")
        ]
    );

    let cases: &[(&str, &[&str])] = &[
        (
            "histogram_quantile(0.99, sum by (le, stage) (rate(x_seconds_bucket{a=\"b\"}[5m]))) / on (instance) group_left foo offset 5m",
            &["x_seconds_bucket", "foo"],
        ),
        (
            r#"label_replace(up{job="a,b}"}, "dst", "$1", "src", "(.*)") and {__name__="other_metric"}"#,
            &["up", "other_metric"],
        ),
        ("sum without (le) (metric_a) > bool 3 unless metric_b @ 1609746000", &["metric_a", "metric_b"]),
        (r#"count(x{instance=~"${instance:regex}"}) by (job) * [[factor]]"#, &["x"]),
        ("topk(5, rate(rec:rule_total[1m:10s])) or vector(0)", &["rec:rule_total"]),
        ("max(avg_over_time(sum_of_things[5m])) + .5 * 1e3", &["sum_of_things"]),
    ];
    for (expr, expected) in cases {
        assert_eq!(promql_metric_names(expr).unwrap(), set(expected), "{expr}");
    }
    assert_eq!(
        promql_refs("count(x{instance=~\"${instance:regex}\"}) by (job)")
            .unwrap()
            .grouping_labels,
        set(&["job"])
    );

    assert!(
        promql_refs(r#"{job="x"}"#).is_err(),
        "a selector without a name"
    );
    assert!(promql_refs("x{job=x}").is_err(), "an unquoted label value");
    assert!(
        promql_refs(r#"x{job="x"#).is_err(),
        "an unterminated string"
    );
}

#[test]
fn variable_queries_yield_their_selector() {
    assert_eq!(
        variable_query_promql("label_values(account_streams_tasks_assigned, instance)").as_deref(),
        Some("account_streams_tasks_assigned")
    );
    assert_eq!(
        variable_query_promql(r#"label_values(x{a="1,2"}, b)"#).as_deref(),
        Some(r#"x{a="1,2"}"#)
    );
    assert_eq!(variable_query_promql("label_values(instance)"), None);
    assert_eq!(
        variable_query_promql("query_result(sum(x))").as_deref(),
        Some("sum(x)")
    );
    assert_eq!(variable_query_promql("metrics(account_.*)"), None);
}

#[test]
fn histogram_series_map_to_their_family() {
    let kinds: BTreeMap<String, String> = [
        ("lat_seconds", "histogram"),
        ("reqs_total", "counter"),
        ("items_count", "gauge"),
        ("rpc", "summary"),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect();
    assert_eq!(
        series_family("lat_seconds_bucket", &kinds).unwrap(),
        "lat_seconds"
    );
    assert_eq!(
        series_family("lat_seconds_sum", &kinds).unwrap(),
        "lat_seconds"
    );
    assert_eq!(
        series_family("lat_seconds_count", &kinds).unwrap(),
        "lat_seconds"
    );
    assert_eq!(series_family("reqs_total", &kinds).unwrap(), "reqs_total");
    assert_eq!(series_family("items_count", &kinds).unwrap(), "items_count");
    assert_eq!(series_family("rpc_sum", &kinds).unwrap(), "rpc");
    assert!(series_family("rpc_bucket", &kinds).is_err());
    assert!(
        series_family("lat_seconds", &kinds).is_err(),
        "a bare histogram selects nothing"
    );
    assert!(series_family("reqs_total_count", &kinds).is_err());
    assert!(series_family("nope", &kinds).is_err());
}

#[test]
fn exposition_families_of_a_real_prometheus_registry() {
    use prometheus::{
        Encoder, Histogram, HistogramOpts, IntCounterVec, IntGauge, Opts, Registry, TextEncoder,
    };
    let registry = Registry::new();
    let counter = IntCounterVec::new(Opts::new("t_records_total", "records"), &["topic"]).unwrap();
    let histogram =
        Histogram::with_opts(HistogramOpts::new("t_latency_seconds", "latency")).unwrap();
    let gauge = IntGauge::new("t_tasks", "tasks").unwrap();
    registry.register(Box::new(counter.clone())).unwrap();
    registry.register(Box::new(histogram.clone())).unwrap();
    registry.register(Box::new(gauge.clone())).unwrap();
    counter.with_label_values(&["a"]).inc();
    histogram.observe(0.2);
    gauge.set(3);
    let mut text = Vec::new();
    TextEncoder::new()
        .encode(&registry.gather(), &mut text)
        .unwrap();
    let text = String::from_utf8(text).unwrap() + "bare_sample 1\n";

    let expected: BTreeMap<String, String> = [
        ("t_records_total", "counter"),
        ("t_latency_seconds", "histogram"),
        ("t_tasks", "gauge"),
        ("bare_sample", "untyped"),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect();
    assert_eq!(exposition_families(&text), expected);
}

#[test]
fn docs_metrics_table_is_parsed() {
    let declared = declared_metrics(&read_repo_file("docs/metrics.md"));
    assert_eq!(declared.len(), 18, "{:?}", declared.keys());
    let outcomes = &declared["account_streams_outcomes_total"];
    assert_eq!(outcomes.kind, "counter");
    assert_eq!(outcomes.labels, set(&["kind", "code"]));
    let lag = &declared["account_streams_consumer_lag"];
    assert_eq!(lag.kind, "gauge");
    assert_eq!(lag.labels, set(&["topic", "partition"]));
    let latency = &declared["account_streams_processing_latency_seconds"];
    assert_eq!(latency.kind, "histogram");
    assert!(latency.labels.is_empty());
    assert!(declared
        .keys()
        .all(|name| name.starts_with("account_streams_")));
}

// ---------------------------------------------------------------------------
// the dashboard against docs/metrics.md
// ---------------------------------------------------------------------------

#[test]
fn every_dashboard_metric_and_label_is_declared_in_docs_metrics_md() {
    let declared = declared_metrics(&read_repo_file("docs/metrics.md"));
    let kinds: BTreeMap<String, String> = declared
        .iter()
        .map(|(k, v)| (k.clone(), v.kind.clone()))
        .collect();
    let queries = dashboard_queries(&dashboard());
    assert!(queries.len() >= REQUIRED_PANELS.len());

    let mut problems = Vec::new();
    let mut used = BTreeSet::new();
    for query in &queries {
        let refs = match promql_refs(&query.expr) {
            Ok(refs) => refs,
            Err(e) => {
                problems.push(format!("{}: {e}", query.origin));
                continue;
            }
        };
        if refs.selectors.is_empty() {
            problems.push(format!(
                "{}: selects no metric: {}",
                query.origin, query.expr
            ));
        }
        let mut labels_in_scope = set(&["instance", "job"]);
        for selector in &refs.selectors {
            let family = match series_family(&selector.series, &kinds) {
                Ok(family) => family,
                Err(e) => {
                    problems.push(format!("{}: {e}", query.origin));
                    continue;
                }
            };
            let mut allowed = declared[&family].labels.clone();
            allowed.extend(set(&["instance", "job"]));
            if selector.series.ends_with("_bucket") {
                allowed.insert("le".into());
            }
            for m in &selector.matchers {
                if !allowed.contains(&m.label) {
                    problems.push(format!(
                        "{}: {} has no label {}",
                        query.origin, family, m.label
                    ));
                }
            }
            labels_in_scope.extend(allowed);
            used.insert(family);
        }
        for label in refs.grouping_labels.difference(&labels_in_scope) {
            problems.push(format!(
                "{}: groups by {label}, which no selected metric has",
                query.origin
            ));
        }
    }
    assert!(
        problems.is_empty(),
        "dashboard problems:\n{}",
        problems.join("\n")
    );

    // Every documented metric is on the dashboard, so a new one gets a panel.
    let unused: Vec<_> = declared
        .keys()
        .filter(|name| !used.contains(*name))
        .collect();
    assert!(
        unused.is_empty(),
        "documented metrics without a panel: {unused:?}"
    );
}

/// What the live-scrape check will do once the service exports its metrics,
/// run here on a registry built from docs/metrics.md: every family the
/// dashboard selects is in the scrape, with the documented type. (A labelled
/// family shows up in a scrape only once one of its label sets was used.)
#[test]
fn dashboard_families_resolve_against_a_scrape_of_the_documented_metrics() {
    use prometheus::core::Collector;
    use prometheus::{
        Encoder, GaugeVec, HistogramOpts, HistogramVec, IntCounterVec, Opts, Registry, TextEncoder,
    };
    let declared = declared_metrics(&read_repo_file("docs/metrics.md"));
    let registry = Registry::new();
    for (name, metric) in &declared {
        let labels: Vec<&str> = metric.labels.iter().map(String::as_str).collect();
        let values: Vec<&str> = labels.iter().map(|_| "x").collect();
        let collector: Box<dyn Collector> = match metric.kind.as_str() {
            "counter" => {
                let c = IntCounterVec::new(Opts::new(name.as_str(), "c"), &labels).unwrap();
                c.with_label_values(&values).inc();
                Box::new(c)
            }
            "gauge" => {
                let g = GaugeVec::new(Opts::new(name.as_str(), "g"), &labels).unwrap();
                g.with_label_values(&values).set(1.0);
                Box::new(g)
            }
            "histogram" => {
                let h = HistogramVec::new(HistogramOpts::new(name.as_str(), "h"), &labels).unwrap();
                h.with_label_values(&values).observe(0.1);
                Box::new(h)
            }
            other => panic!("{name}: unexpected type {other}"),
        };
        registry.register(collector).unwrap();
    }
    let mut text = Vec::new();
    TextEncoder::new()
        .encode(&registry.gather(), &mut text)
        .unwrap();
    let scraped = exposition_families(&String::from_utf8(text).unwrap());
    let documented: BTreeMap<String, String> = declared
        .iter()
        .map(|(k, v)| (k.clone(), v.kind.clone()))
        .collect();
    assert_eq!(scraped, documented);
    let families = dashboard_families(&dashboard(), &scraped)
        .unwrap_or_else(|problems| panic!("dashboard problems:\n{}", problems.join("\n")));
    assert_eq!(families, documented.keys().cloned().collect());

    // A scrape without one family fails the check and names the panel.
    let mut partial = scraped.clone();
    partial.remove("account_streams_consumer_lag");
    let problems = dashboard_families(&dashboard(), &partial).unwrap_err();
    assert_eq!(
        problems,
        vec!["Consumer lag: account_streams_consumer_lag is not a known metric family".to_string()]
    );
}

#[test]
fn dashboard_has_every_required_panel() {
    let dashboard = dashboard();
    let panels = dashboard_panels(&dashboard);
    let titles: BTreeSet<&str> = panels.iter().filter_map(|p| p["title"].as_str()).collect();
    let missing: Vec<_> = REQUIRED_PANELS
        .iter()
        .filter(|t| !titles.contains(*t))
        .collect();
    assert!(missing.is_empty(), "missing panels: {missing:?}");

    let mut ids = BTreeSet::new();
    for panel in &panels {
        assert!(
            ids.insert(panel["id"].as_u64().expect("panel id")),
            "duplicate id in {panel}"
        );
        if panel["type"] == "row" {
            continue;
        }
        assert_eq!(panel["type"], "timeseries", "{}", panel["title"]);
        let targets = panel["targets"].as_array().map(Vec::len).unwrap_or(0);
        assert!(targets > 0, "panel {} has no query", panel["title"]);
    }
    let by_title = |title: &str| panels.iter().find(|p| p["title"] == title).expect("panel");
    let exprs = |title: &str| -> Vec<String> {
        by_title(title)["targets"]
            .as_array()
            .unwrap()
            .iter()
            .map(|t| t["expr"].as_str().unwrap().to_string())
            .collect()
    };
    // The quantiles the titles promise are the ones computed.
    for title in ["End-to-end latency p50/p99", "Commit latency p50/p99"] {
        let e = exprs(title);
        assert_eq!(e.len(), 2, "{title}");
        assert!(
            e[0].starts_with("histogram_quantile(0.5,"),
            "{title}: {}",
            e[0]
        );
        assert!(
            e[1].starts_with("histogram_quantile(0.99,"),
            "{title}: {}",
            e[1]
        );
    }
    let login = exprs("Login outcomes per second by code");
    assert!(login[0].contains(r#"kind="session_status""#) && login[0].starts_with("sum by (code)"));
    let restore = exprs("Restore progress");
    assert_eq!(
        restore
            .iter()
            .map(|e| promql_metric_names(e).unwrap())
            .collect::<Vec<_>>(),
        vec![
            set(&["account_streams_restore_remaining_records"]),
            set(&["account_streams_restore_records_total"])
        ]
    );
    assert!(exprs("Slow work p99 by stage")[0]
        .starts_with("histogram_quantile(0.99, sum by (le, stage)"));
}

#[test]
fn dashboard_uses_the_provisioned_datasource_and_the_instance_variable() {
    let datasources = yaml_file(DATASOURCES);
    let list = datasources["datasources"]
        .as_sequence()
        .expect("datasources list");
    assert_eq!(list.len(), 1);
    let uid = scalar(&list[0]["uid"]);
    assert_eq!(scalar(&list[0]["type"]), "prometheus");

    let dashboard = dashboard();
    assert_eq!(dashboard["uid"], "account-streams");
    for panel in dashboard_panels(&dashboard) {
        if panel["type"] == "row" {
            continue;
        }
        let title = &panel["title"];
        assert_eq!(panel["datasource"]["uid"], uid.as_str(), "{title}");
        for target in panel["targets"].as_array().unwrap() {
            assert_eq!(target["datasource"]["uid"], uid.as_str(), "{title}");
            for selector in promql_refs(target["expr"].as_str().unwrap())
                .unwrap()
                .selectors
            {
                assert!(
                    selector
                        .matchers
                        .contains(&matcher("instance", "=~", "$instance")),
                    "{title}: {} is not filtered by $instance",
                    selector.series
                );
            }
        }
    }

    let vars = dashboard["templating"]["list"].as_array().unwrap();
    assert_eq!(vars.len(), 1);
    let instance = &vars[0];
    assert_eq!(instance["name"], "instance");
    assert_eq!(instance["datasource"]["uid"], uid.as_str());
    assert_eq!(instance["includeAll"], true);
    assert_eq!(instance["allValue"], ".*");
    assert_eq!(
        instance["query"]["query"],
        "label_values(account_streams_tasks_assigned, instance)"
    );
}

// ---------------------------------------------------------------------------
// docker-compose.yml, prometheus.yml, Grafana provisioning, Dockerfile
// ---------------------------------------------------------------------------

#[test]
fn compose_has_the_expected_services_ports_and_profiles() {
    let compose = compose();
    let names: BTreeSet<String> = compose["services"]
        .as_mapping()
        .unwrap()
        .keys()
        .map(scalar)
        .collect();
    assert_eq!(
        names,
        set(&[
            "kafka",
            "kafka-init",
            "account-streams-1",
            "account-streams-2",
            "prometheus",
            "grafana",
            "loadgen"
        ])
    );
    let expected_ports: &[(&str, &[(u16, u16)])] = &[
        ("kafka", &[(9092, 9092)]),
        ("kafka-init", &[]),
        ("account-streams-1", &[(8081, 8080)]),
        ("account-streams-2", &[(8082, 8080)]),
        ("prometheus", &[(9090, 9090)]),
        ("grafana", &[(3000, 3000)]),
        ("loadgen", &[]),
    ];
    for (name, ports) in expected_ports {
        assert_eq!(
            ports_of(service(&compose, name)),
            ports.iter().copied().collect(),
            "{name}"
        );
    }
    for name in &names {
        let profiles: Vec<String> = service(&compose, name)["profiles"]
            .as_sequence()
            .into_iter()
            .flatten()
            .map(scalar)
            .collect();
        let expected: Vec<String> = if name == "loadgen" {
            vec!["demo".into()]
        } else {
            vec![]
        };
        assert_eq!(profiles, expected, "profiles of {name}");
    }
    assert_eq!(
        scalar(&service(&compose, "prometheus")["image"])
            .split(':')
            .next(),
        Some("prom/prometheus")
    );
    assert_eq!(
        scalar(&service(&compose, "grafana")["image"])
            .split(':')
            .next(),
        Some("grafana/grafana")
    );
}

#[test]
fn kafka_is_a_single_kraft_node_the_processors_can_reach() {
    let compose = compose();
    let kafka = service(&compose, "kafka");
    assert_eq!(scalar(&kafka["image"]), "apache/kafka:3.9.1");
    let env = env_of(kafka);
    for (key, value) in [
        ("KAFKA_NODE_ID", "1"),
        ("KAFKA_PROCESS_ROLES", "broker,controller"),
        ("KAFKA_CONTROLLER_LISTENER_NAMES", "CONTROLLER"),
        ("KAFKA_OFFSETS_TOPIC_REPLICATION_FACTOR", "1"),
        ("KAFKA_TRANSACTION_STATE_LOG_REPLICATION_FACTOR", "1"),
        ("KAFKA_TRANSACTION_STATE_LOG_MIN_ISR", "1"),
        ("KAFKA_MIN_INSYNC_REPLICAS", "1"),
        ("KAFKA_GROUP_INITIAL_REBALANCE_DELAY_MS", "0"),
    ] {
        assert_eq!(env.get(key).map(String::as_str), Some(value), "{key}");
    }
    assert!(
        !env["CLUSTER_ID"].is_empty(),
        "the image requires CLUSTER_ID in KRaft mode"
    );

    // listener name -> address, as bound and as advertised
    let listeners = |key: &str| -> BTreeMap<String, String> {
        env[key]
            .split(',')
            .map(|l| {
                let (name, addr) = l.split_once("://").unwrap_or_else(|| panic!("{key}: {l}"));
                (name.to_string(), addr.to_string())
            })
            .collect()
    };
    let bound = listeners("KAFKA_LISTENERS");
    let advertised = listeners("KAFKA_ADVERTISED_LISTENERS");
    let protocol_map: BTreeMap<&str, &str> = env["KAFKA_LISTENER_SECURITY_PROTOCOL_MAP"]
        .split(',')
        .map(|p| p.split_once(':').unwrap())
        .collect();
    assert_eq!(
        bound.keys().map(String::as_str).collect::<BTreeSet<_>>(),
        protocol_map.keys().copied().collect::<BTreeSet<_>>()
    );
    let port = |addr: &str| addr.rsplit(':').next().unwrap().to_string();
    let controller_port = port(&bound["CONTROLLER"]);
    assert_eq!(
        env["KAFKA_CONTROLLER_QUORUM_VOTERS"],
        format!("1@kafka:{controller_port}")
    );
    let internal = &env["KAFKA_INTER_BROKER_LISTENER_NAME"];
    assert_eq!(port(&bound[internal]), port(&advertised[internal]));

    // The processors and kafka-init use the internal listener by service name;
    // the host listener is advertised as localhost on the published port.
    let internal_addr = advertised[internal].clone();
    assert_eq!(internal_addr.split(':').next(), Some("kafka"));
    for name in PROCESSORS.iter().chain(&["loadgen"]) {
        assert_eq!(
            env_of(service(&compose, name))["BOOTSTRAP_SERVERS"],
            internal_addr,
            "{name}"
        );
    }
    let init_script = service(&compose, "kafka-init")["command"]
        .as_sequence()
        .map(|s| s.iter().map(scalar).collect::<Vec<_>>().join(" "))
        .unwrap_or_else(|| scalar(&service(&compose, "kafka-init")["command"]));
    assert!(init_script.contains(&format!("--bootstrap-server {internal_addr}")));
    let (host_listener, host_addr) = advertised
        .iter()
        .find(|(name, _)| name.as_str() != internal)
        .expect("a host listener");
    assert_eq!(host_addr, "localhost:9092", "{host_listener}");
    assert_eq!(port(&bound[host_listener]), "9092");

    let health = &kafka["healthcheck"]["test"];
    assert!(
        health.is_sequence(),
        "kafka needs a healthcheck for depends_on"
    );
}

#[test]
fn processors_share_one_group_with_separate_identity_and_state() {
    let compose = compose();
    let declared_volumes: BTreeSet<String> = compose["volumes"]
        .as_mapping()
        .unwrap()
        .keys()
        .map(scalar)
        .collect();
    let envs: Vec<BTreeMap<String, String>> = PROCESSORS
        .iter()
        .map(|n| env_of(service(&compose, n)))
        .collect();

    for key in ["KAFKA_CONSUMER_GROUP", "APPLICATION_ID"] {
        assert!(!envs[0][key].is_empty(), "{key}");
        assert_eq!(envs[0][key], envs[1][key], "{key} must be shared");
    }
    assert_eq!(envs[0]["INSTANCE_ID"], "account-streams-1");
    assert_eq!(envs[1]["INSTANCE_ID"], "account-streams-2");
    // Apart from identity, both run with the same settings.
    let without_identity = |env: &BTreeMap<String, String>| {
        let mut env = env.clone();
        env.remove("INSTANCE_ID");
        env
    };
    assert_eq!(without_identity(&envs[0]), without_identity(&envs[1]));

    let mut state_volumes = BTreeSet::new();
    for (name, env) in PROCESSORS.iter().zip(&envs) {
        let svc = service(&compose, name);
        assert_eq!(scalar(&svc["build"]["context"]), ".", "{name}");
        assert_eq!(scalar(&svc["build"]["dockerfile"]), "Dockerfile", "{name}");
        assert_eq!(
            scalar(&svc["depends_on"]["kafka"]["condition"]),
            "service_healthy"
        );
        assert_eq!(
            scalar(&svc["depends_on"]["kafka-init"]["condition"]),
            "service_completed_successfully"
        );
        let rest_port: u16 = env["REST_PORT"].parse().unwrap();
        assert!(
            ports_of(svc)
                .iter()
                .all(|(_, container)| *container == rest_port),
            "{name}"
        );

        let state_dir = &env["STATE_DIR"];
        let (volume, _) = mounts_of(svc)
            .into_iter()
            .find(|(_, target)| is_under(state_dir, target))
            .unwrap_or_else(|| panic!("{name}: STATE_DIR {state_dir} is on no volume"));
        assert!(
            declared_volumes.contains(&volume),
            "{name}: {volume} is not a named volume"
        );
        assert!(
            state_volumes.insert(volume.clone()),
            "{name} shares state volume {volume}"
        );

        let health = service(&compose, name)["healthcheck"]["test"]
            .as_sequence()
            .unwrap()
            .iter()
            .map(scalar)
            .collect::<Vec<_>>()
            .join(" ");
        assert!(
            health.contains(&format!("/dev/tcp/127.0.0.1/{rest_port}"))
                && health.contains("GET /readyz"),
            "{name}: {health}"
        );
    }
}

#[test]
fn kafka_init_creates_every_external_topic_of_the_processors() {
    let compose = compose();
    let env = env_of(service(&compose, PROCESSORS[0]));
    let script = service(&compose, "kafka-init")["command"]
        .as_sequence()
        .unwrap()
        .iter()
        .map(scalar)
        .collect::<Vec<_>>()
        .join(" ");
    let words: BTreeSet<&str> = script
        .split(|c: char| !(c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.')))
        .collect();
    let topic_vars: Vec<&String> = env
        .keys()
        .filter(|k| {
            k.starts_with("COMMAND_TOPIC_")
                || k.starts_with("EVENT_TOPIC_")
                || *k == "DEAD_LETTER_TOPIC"
        })
        .collect();
    assert_eq!(topic_vars.len(), 6, "{topic_vars:?}");
    for var in topic_vars {
        assert!(
            words.contains(env[var].as_str()),
            "kafka-init does not create {} ({var})",
            env[var]
        );
    }
    assert!(
        script.contains(&format!("--partitions {}", env["INTERNAL_PARTITIONS"])),
        "input topics get as many partitions as the internal ones"
    );
    // The loadgen reads and writes the same topics.
    let loadgen = env_of(service(&compose, "loadgen"));
    for (key, value) in &loadgen {
        if key.contains("TOPIC") {
            assert_eq!(Some(value), env.get(key), "loadgen {key}");
        }
    }
}

#[test]
fn prometheus_scrapes_both_processors_on_their_rest_port() {
    let compose = compose();
    let prometheus = service(&compose, "prometheus");
    assert!(
        mounts_of(prometheus).contains(&(
            "./prometheus.yml".into(),
            "/etc/prometheus/prometheus.yml".into()
        )),
        "{:?}",
        mounts_of(prometheus)
    );
    let config = yaml_file("prometheus.yml");
    let jobs = config["scrape_configs"].as_sequence().unwrap();
    let job = jobs
        .iter()
        .find(|j| scalar(&j["job_name"]) == "account-streams")
        .expect("an account-streams job");
    assert_eq!(scalar(&job["metrics_path"]), "/metrics");
    let targets: BTreeSet<String> = job["static_configs"]
        .as_sequence()
        .unwrap()
        .iter()
        .flat_map(|c| c["targets"].as_sequence().unwrap().iter().map(scalar))
        .collect();
    let expected: BTreeSet<String> = PROCESSORS
        .iter()
        .map(|name| format!("{name}:{}", env_of(service(&compose, name))["REST_PORT"]))
        .collect();
    assert_eq!(targets, expected);
}

#[test]
fn grafana_provisioning_points_at_existing_files_and_the_prometheus_service() {
    let compose = compose();
    let grafana = service(&compose, "grafana");

    // Provisioning directory: the compose mount brings both provisioning files.
    let provisioning =
        host_path_of(grafana, "/etc/grafana/provisioning").expect("provisioning is mounted");
    assert_eq!(
        provisioning.join("datasources/prometheus.yml"),
        normalize(&repo_root().join(DATASOURCES))
    );
    assert!(provisioning
        .join("dashboards/account-streams.yml")
        .is_file());

    // Dashboard provider: its folder, seen through the mounts, holds the dashboard.
    let providers = yaml_file(DASHBOARD_PROVIDERS);
    let providers = providers["providers"].as_sequence().unwrap();
    assert_eq!(providers.len(), 1);
    assert_eq!(scalar(&providers[0]["type"]), "file");
    let folder = scalar(&providers[0]["options"]["path"]);
    let host_folder =
        host_path_of(grafana, &folder).unwrap_or_else(|| panic!("{folder} is not mounted"));
    assert_eq!(
        host_folder,
        normalize(&repo_root().join("grafana/dashboards"))
    );
    let dashboard_files: Vec<_> = std::fs::read_dir(&host_folder)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .filter(|f| f.ends_with(".json"))
        .collect();
    assert_eq!(dashboard_files, vec!["account-streams.json".to_string()]);
    let home = &env_of(grafana)["GF_DASHBOARDS_DEFAULT_HOME_DASHBOARD_PATH"];
    assert_eq!(
        host_path_of(grafana, home),
        Some(normalize(&repo_root().join(DASHBOARD))),
        "the home dashboard is the provisioned file"
    );

    // Datasource URL: the prometheus service on the port it listens on.
    let datasources = yaml_file(DATASOURCES);
    let url = scalar(&datasources["datasources"][0]["url"]);
    let host_port = url
        .strip_prefix("http://")
        .unwrap_or_else(|| panic!("{url}"));
    let (host, port) = host_port.trim_end_matches('/').split_once(':').unwrap();
    let prometheus = service(&compose, host);
    let port: u16 = port.parse().unwrap();
    assert!(
        ports_of(prometheus)
            .iter()
            .any(|(_, container)| *container == port),
        "prometheus does not listen on {port}"
    );
    assert!(
        prometheus["command"].is_null(),
        "the default listen address (:9090) is kept"
    );

    let env = env_of(grafana);
    assert_eq!(env["GF_AUTH_ANONYMOUS_ENABLED"], "true");
    assert_eq!(env["GF_AUTH_ANONYMOUS_ORG_ROLE"], "Viewer");
    assert_eq!(env["GF_SECURITY_ADMIN_USER"], "admin");
    assert_eq!(env["GF_SECURITY_ADMIN_PASSWORD"], "admin");
}

#[test]
fn dockerfile_builds_a_small_non_root_image_matching_compose() {
    let dockerfile = read_repo_file("Dockerfile");
    let lines: Vec<&str> = dockerfile
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .collect();
    let froms: Vec<&str> = lines
        .iter()
        .filter(|l| l.starts_with("FROM "))
        .copied()
        .collect();
    assert_eq!(
        froms,
        vec![
            "FROM rust:1-bookworm AS builder",
            "FROM debian:bookworm-slim AS runtime"
        ]
    );
    assert!(dockerfile.contains("cargo build --release --locked --bin account-streams"));
    let runtime: Vec<&str> = lines
        .iter()
        .skip_while(|l| !l.starts_with("FROM debian:bookworm-slim"))
        .copied()
        .collect();
    let instruction = |name: &str| -> Vec<String> {
        runtime
            .iter()
            .filter_map(|l| l.strip_prefix(&format!("{name} ")))
            .map(str::to_string)
            .collect()
    };
    let user = instruction("USER");
    assert_eq!(user.len(), 1);
    assert!(
        !user[0].starts_with("root") && !user[0].starts_with('0'),
        "{user:?}"
    );
    assert_eq!(
        instruction("ENTRYPOINT"),
        vec![r#"["/usr/local/bin/account-streams"]"#]
    );
    assert_eq!(instruction("CMD"), vec![r#"["run"]"#]);
    assert!(
        !runtime.iter().any(|l| l.contains("cargo")),
        "no toolchain in the runtime stage"
    );

    let compose = compose();
    for name in PROCESSORS {
        let env = env_of(service(&compose, name));
        assert_eq!(
            instruction("EXPOSE"),
            vec![env["REST_PORT"].clone()],
            "{name}"
        );
        // The named state volume is mounted where the image declares its
        // volume, so it starts owned by the image's unprivileged user.
        let volume_decl = instruction("VOLUME");
        assert_eq!(volume_decl.len(), 1);
        let image_volume = volume_decl[0].trim_matches(|c| matches!(c, '[' | ']' | '"'));
        let mounts = mounts_of(service(&compose, name));
        assert!(
            mounts.iter().any(|(_, target)| target == image_volume),
            "{name} mounts {mounts:?}, image volume {image_volume}"
        );
        assert!(is_under(&env["STATE_DIR"], image_volume));
        assert!(
            dockerfile.contains(&format!("STATE_DIR={}", env["STATE_DIR"])),
            "image and compose agree on STATE_DIR"
        );
    }

    let dockerignore = read_repo_file(".dockerignore");
    let ignore: BTreeSet<&str> = dockerignore
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .collect();
    assert!(
        ignore.contains("target/") && ignore.contains(".git/"),
        "{ignore:?}"
    );
}

// ---------------------------------------------------------------------------
// compose environment against the binary's --help
// ---------------------------------------------------------------------------

#[test]
fn processor_env_vars_are_documented_by_run_help() {
    let documented = documented_env_vars(&["run", "--help"]);
    let compose = compose();
    let mut undocumented = Vec::new();
    for name in PROCESSORS {
        for key in env_of(service(&compose, name)).keys() {
            if !documented.contains(key) {
                undocumented.push(format!("{name}: {key}"));
            }
        }
    }
    assert!(
        undocumented.is_empty(),
        "env vars not documented by `account-streams run --help` {documented:?}:\n{}",
        undocumented.join("\n")
    );
}

#[test]
fn loadgen_options_are_documented_by_loadgen_help() {
    let compose = compose();
    let loadgen = service(&compose, "loadgen");
    let command: Vec<String> = loadgen["command"]
        .as_sequence()
        .unwrap()
        .iter()
        .map(scalar)
        .collect();
    assert_eq!(command, ["loadgen", "--rate", "50", "--accounts", "200"]);

    let help = help_text(&["loadgen", "--help"]);
    for flag in command.iter().filter(|a| a.starts_with("--")) {
        assert!(
            help.split_whitespace()
                .any(|w| w == flag || w.starts_with(&format!("{flag}="))),
            "`loadgen --help` does not document {flag}"
        );
    }
    let documented = documented_env_vars(&["loadgen", "--help"]);
    let undocumented: Vec<String> = env_of(loadgen)
        .into_keys()
        .filter(|k| !documented.contains(k))
        .collect();
    assert!(
        undocumented.is_empty(),
        "not documented by `loadgen --help`: {undocumented:?}"
    );
}
