//! OTLP export (feature `otlp`): tracer and meter providers whose exporters send HTTP/protobuf
//! to the collector the standard environment variables name, installed as the global ones.

use opentelemetry::global;
use opentelemetry_otlp::{MetricExporter, SpanExporter, WithExportConfig as _};
use opentelemetry_sdk::error::OTelSdkError;
use opentelemetry_sdk::metrics::SdkMeterProvider;
use opentelemetry_sdk::trace::SdkTracerProvider;
use opentelemetry_sdk::Resource;

/// The one protocol this build speaks.
const HTTP_PROTOBUF: &str = "http/protobuf";

/// Why OTLP export could not be set up or shut down.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum OtlpError {
    /// `OTEL_EXPORTER_OTLP_PROTOCOL` (or its `_TRACES_`/`_METRICS_` form) asks for a protocol
    /// other than `http/protobuf` (gRPC and JSON are not built in).
    #[error("{variable}={value}: only `{HTTP_PROTOBUF}` is supported")]
    UnsupportedProtocol {
        /// The variable.
        variable: &'static str,
        /// Its value.
        value: String,
    },
    /// An exporter could not be built (say, a malformed endpoint or header variable).
    #[error("cannot build the OTLP exporter: {0}")]
    Exporter(#[from] opentelemetry_otlp::ExporterBuildError),
    /// Flushing or shutting down a provider failed (say, the collector did not answer).
    #[error("cannot flush and shut down the OpenTelemetry providers: {0}")]
    Shutdown(#[from] OTelSdkError),
}

/// Exports the spans and metrics of runs (see [`crate::otel`]) over OTLP/HTTP with protobuf:
/// builds a tracer provider (batched spans) and a meter provider (periodic export) with OTLP
/// exporters, and installs them as the global providers. Keep the guard for the program's
/// life: dropping it, or [`OtlpGuard::shutdown`], exports what is left and stops them.
///
/// The SDK reads the standard variables: `OTEL_EXPORTER_OTLP_ENDPOINT` (default
/// `http://localhost:4318`; `/v1/traces` and `/v1/metrics` are appended),
/// `OTEL_EXPORTER_OTLP_HEADERS`, `OTEL_EXPORTER_OTLP_TIMEOUT` and their `_TRACES_`/`_METRICS_`
/// forms, `OTEL_SERVICE_NAME`, `OTEL_RESOURCE_ATTRIBUTES`, `OTEL_BSP_*`,
/// `OTEL_METRIC_EXPORT_INTERVAL`. `OTEL_EXPORTER_OTLP_PROTOCOL` may only be `http/protobuf`.
///
/// Call it from `main` or inside a tokio runtime alike: the exporters send from the SDK's own
/// threads with a blocking HTTP client, never from a runtime thread.
///
/// ```no_run
/// # fn main() -> Result<(), Box<dyn std::error::Error>> {
/// // OTEL_EXPORTER_OTLP_ENDPOINT=http://collector:4318 OTEL_SERVICE_NAME=billing ./worker
/// let telemetry = workflow_core::otel::install_otlp_from_env()?;
/// // ... run workflows ...
/// telemetry.shutdown()?;
/// # Ok(()) }
/// ```
pub fn install_otlp_from_env() -> Result<OtlpGuard, OtlpError> {
    for variable in [
        "OTEL_EXPORTER_OTLP_PROTOCOL",
        "OTEL_EXPORTER_OTLP_TRACES_PROTOCOL",
        "OTEL_EXPORTER_OTLP_METRICS_PROTOCOL",
    ] {
        match std::env::var(variable) {
            Ok(value) if value != HTTP_PROTOBUF => {
                return Err(OtlpError::UnsupportedProtocol { variable, value })
            }
            _ => {}
        }
    }
    let protocol = opentelemetry_otlp::Protocol::HttpBinary;
    let spans = SpanExporter::builder()
        .with_http()
        .with_protocol(protocol)
        .build()?;
    let metrics = MetricExporter::builder()
        .with_http()
        .with_protocol(protocol)
        .build()?;
    // With the service name and attributes of `OTEL_SERVICE_NAME`, `OTEL_RESOURCE_ATTRIBUTES`.
    let resource = Resource::builder().build();
    let tracer = SdkTracerProvider::builder()
        .with_resource(resource.clone())
        .with_batch_exporter(spans)
        .build();
    let meter = SdkMeterProvider::builder()
        .with_resource(resource)
        .with_periodic_exporter(metrics)
        .build();
    global::set_tracer_provider(tracer.clone());
    global::set_meter_provider(meter.clone());
    Ok(OtlpGuard {
        providers: Some((tracer, meter)),
    })
}

/// The installed OTLP providers (see [`install_otlp_from_env`]); dropping it flushes and shuts
/// them down, ignoring errors ([`OtlpGuard::shutdown`] reports them).
#[derive(Debug)]
#[must_use = "dropping the guard shuts the export down"]
pub struct OtlpGuard {
    providers: Option<(SdkTracerProvider, SdkMeterProvider)>,
}

impl OtlpGuard {
    /// Exports the spans and metrics not yet sent and stops both providers; later spans and
    /// measurements are dropped. The first error of the two providers, if any.
    pub fn shutdown(mut self) -> Result<(), OtlpError> {
        self.shut_down()
    }

    fn shut_down(&mut self) -> Result<(), OtlpError> {
        let Some((tracer, meter)) = self.providers.take() else {
            return Ok(());
        };
        let traces = tracer.shutdown();
        let metrics = meter.shutdown();
        Ok(traces.and(metrics)?)
    }
}

impl Drop for OtlpGuard {
    fn drop(&mut self) {
        if let Err(error) = self.shut_down() {
            tracing::warn!(%error, "OpenTelemetry export did not shut down cleanly");
        }
    }
}
