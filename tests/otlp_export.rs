//! OTLP export (feature `otlp`): `otel::install_otlp_from_env` sends a run's spans and the step
//! metrics over HTTP/protobuf to the collector the standard `OTEL_*` variables name. A fake
//! collector here records what it receives; each exporting test runs in a child process (this
//! test binary, run again) with the variables set, so no thread of this process races the
//! changes of its environment: once from a current-thread `#[tokio::test]`, once from a
//! multi-thread runtime.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::atomic::{AtomicUsize, Ordering::SeqCst};
use std::sync::{Arc, Mutex};

use axum::body::Bytes;
use axum::extract::State;
use axum::http::HeaderMap;
use axum::routing::post;
use opentelemetry_proto::tonic::collector::metrics::v1::ExportMetricsServiceRequest;
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::common::v1::{any_value, KeyValue};
use opentelemetry_proto::tonic::resource::v1::Resource;
use prost::Message;
use workflow_core::prelude::*;

static PACKED: AtomicUsize = AtomicUsize::new(0);

struct OtlpOrder;

#[workflow]
impl OtlpOrder {
    /// Fails its first attempt.
    #[step(retry = 1)]
    async fn pack(&self, items: u32) -> Result<u32, StepError> {
        if PACKED.fetch_add(1, SeqCst) == 0 {
            return Err(StepError::msg("no boxes yet"));
        }
        Ok(items)
    }
    #[step(after = pack)]
    async fn ship(&self, items: u32) -> String {
        format!("{items} items shipped")
    }
}

/// What a child process does: install the exporter, run a workflow with a retry, shut down.
async fn export_a_run() {
    assert!(
        std::env::var_os("OTEL_EXPORTER_OTLP_ENDPOINT").is_some(),
        "run by `spans_and_metrics_reach_an_otlp_http_collector`, which sets the variables"
    );
    let telemetry = workflow_core::otel::install_otlp_from_env().unwrap();
    let shipped = Engine::in_memory().run(&OtlpOrder, 3).await.unwrap();
    assert_eq!(shipped, "3 items shipped");
    telemetry.shutdown().unwrap();
}

#[tokio::test]
#[ignore = "a child process of spans_and_metrics_reach_an_otlp_http_collector"]
async fn export_from_a_current_thread_runtime() {
    export_a_run().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "a child process of spans_and_metrics_reach_an_otlp_http_collector"]
async fn export_from_a_multi_thread_runtime() {
    export_a_run().await;
}

/// Each request the collector received: its path, its `x-collector-token` header, its body.
type Received = Arc<Mutex<Vec<(&'static str, Option<String>, Bytes)>>>;

fn recorder(
    path: &'static str,
) -> impl Fn(State<Received>, HeaderMap, Bytes) -> std::future::Ready<()> + Clone {
    move |State(received): State<Received>, headers: HeaderMap, body: Bytes| {
        let token = headers
            .get("x-collector-token")
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        received.lock().unwrap().push((path, token, body));
        std::future::ready(())
    }
}

fn string_attribute(attributes: &[KeyValue], key: &str) -> Option<String> {
    attributes.iter().find(|kv| kv.key == key).and_then(|kv| {
        match kv.value.as_ref()?.value.as_ref()? {
            any_value::Value::StringValue(s) => Some(s.clone()),
            _ => None,
        }
    })
}

fn service(resource: Option<&Resource>) -> String {
    resource
        .and_then(|r| string_attribute(&r.attributes, "service.name"))
        .unwrap_or_default()
}

/// What one service sent: span names, the `workflow.name` of spans, metric names, and the
/// resource's `deployment.environment`.
#[derive(Debug, Default)]
struct Sent {
    spans: BTreeSet<String>,
    workflows: BTreeSet<String>,
    metrics: BTreeSet<String>,
    environments: BTreeSet<String>,
}

fn decode(received: &[(&'static str, Option<String>, Bytes)]) -> BTreeMap<String, Sent> {
    let mut sent: BTreeMap<String, Sent> = BTreeMap::new();
    for (path, _, body) in received {
        match *path {
            "/v1/traces" => {
                let request = ExportTraceServiceRequest::decode(body.clone()).unwrap();
                for resource in request.resource_spans {
                    let by = sent.entry(service(resource.resource.as_ref())).or_default();
                    by.environments.extend(
                        resource.resource.as_ref().and_then(|r| {
                            string_attribute(&r.attributes, "deployment.environment")
                        }),
                    );
                    for span in resource.scope_spans.into_iter().flat_map(|s| s.spans) {
                        by.workflows
                            .extend(string_attribute(&span.attributes, "workflow.name"));
                        by.spans.insert(span.name);
                    }
                }
            }
            _ => {
                let request = ExportMetricsServiceRequest::decode(body.clone()).unwrap();
                for resource in request.resource_metrics {
                    let by = sent.entry(service(resource.resource.as_ref())).or_default();
                    for metric in resource.scope_metrics.into_iter().flat_map(|s| s.metrics) {
                        by.metrics.insert(metric.name);
                    }
                }
            }
        }
    }
    sent
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn spans_and_metrics_reach_an_otlp_http_collector() {
    let received = Received::default();
    let app = axum::Router::new()
        .route("/v1/traces", post(recorder("/v1/traces")))
        .route("/v1/metrics", post(recorder("/v1/metrics")))
        .with_state(received.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let endpoint = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });

    let children = [
        (
            "export_from_a_current_thread_runtime",
            "otlp-current-thread",
        ),
        ("export_from_a_multi_thread_runtime", "otlp-multi-thread"),
    ];
    for (test, service) in children {
        let mut child = std::process::Command::new(std::env::current_exe().unwrap());
        child.args([test, "--exact", "--ignored", "--nocapture"]);
        for (name, _) in std::env::vars().filter(|(name, _)| name.starts_with("OTEL_")) {
            child.env_remove(name);
        }
        child
            .env("OTEL_EXPORTER_OTLP_ENDPOINT", &endpoint)
            .env("OTEL_EXPORTER_OTLP_HEADERS", "x-collector-token=t0ken")
            .env("OTEL_SERVICE_NAME", service)
            .env("OTEL_RESOURCE_ATTRIBUTES", "deployment.environment=test");
        let output = tokio::task::spawn_blocking(move || child.output())
            .await
            .unwrap()
            .unwrap();
        assert!(
            output.status.success(),
            "{test}: {}\n{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
    }

    let received = received.lock().unwrap().clone();
    assert!(
        received
            .iter()
            .all(|(_, token, _)| token.as_deref() == Some("t0ken")),
        "every request carries the headers of OTEL_EXPORTER_OTLP_HEADERS"
    );
    let sent = decode(&received);
    for (test, service) in children {
        let by = sent
            .get(service)
            .unwrap_or_else(|| panic!("{test}: nothing received from {service}: {sent:?}"));
        for span in ["workflow.run", "workflow.step"] {
            assert!(by.spans.contains(span), "{test}: no {span} span: {by:?}");
        }
        assert!(by.workflows.contains("OtlpOrder"), "{test}: {by:?}");
        assert!(by.environments.contains("test"), "{test}: {by:?}");
        for metric in ["workflow.steps.completed", "workflow.steps.retried"] {
            assert!(by.metrics.contains(metric), "{test}: no {metric}: {by:?}");
        }
    }
}
