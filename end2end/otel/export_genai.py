"""Exports GenAI spans, log records and metrics to Modelwatch with the real OpenTelemetry
Python SDK and its OTLP/HTTP (protobuf) exporters, the way an instrumented application does.

Used by server/tests/otlp.rs (`python_sdk_exports_genai_spans_logs_metrics`), which then reads
the data back through the REST API. Environment: MODELWATCH_URL, MODELWATCH_KEY.
Exits non-zero when any export was not acknowledged with success.
"""

import json
import logging
import os
import sys
import time

from opentelemetry import metrics, trace
from opentelemetry.exporter.otlp.proto.http import Compression
from opentelemetry.exporter.otlp.proto.http._log_exporter import OTLPLogExporter
from opentelemetry.exporter.otlp.proto.http.metric_exporter import OTLPMetricExporter
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk._logs import LoggerProvider, LoggingHandler
from opentelemetry.sdk._logs.export import SimpleLogRecordProcessor
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import PeriodicExportingMetricReader
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.trace import Status, StatusCode

URL = os.environ["MODELWATCH_URL"].rstrip("/")
HEADERS = {"Authorization": "Bearer " + os.environ["MODELWATCH_KEY"]}
RESULTS = []


def recording(exporter):
    """Wraps an exporter so that every export's result is kept and checked at the end."""
    inner = exporter.export

    def export(batch, *args, **kwargs):
        result = inner(batch, *args, **kwargs)
        RESULTS.append((type(exporter).__name__, result.name))
        return result

    exporter.export = export
    return exporter


resource = Resource.create({
    "service.name": "otel-svc",
    "service.version": "1.4.2",
    "deployment.environment.name": "staging",
})

# Traces: gzip-compressed protobuf.
tracer_provider = TracerProvider(resource=resource)
span_exporter = recording(OTLPSpanExporter(endpoint=URL + "/v1/traces", headers=HEADERS, compression=Compression.Gzip))
tracer_provider.add_span_processor(SimpleSpanProcessor(span_exporter))
tracer = tracer_provider.get_tracer("modelwatch-test")

start = time.time_ns() - 5_000_000_000
span = tracer.start_span("chat otel-chat", start_time=start, kind=trace.SpanKind.CLIENT)
span.set_attributes({
    "gen_ai.operation.name": "chat",
    "gen_ai.provider.name": "openai",
    "gen_ai.request.model": "otel-chat",
    "gen_ai.response.model": "otel-chat-2024-08-06",
    "gen_ai.usage.input_tokens": 120,
    "gen_ai.usage.output_tokens": 30,
    "gen_ai.request.temperature": 0.2,
    "user.id": "user-42",
    "gen_ai.input.messages": json.dumps([{"role": "user", "parts": [{"type": "text", "content": "What is the capital of France?"}]}]),
    "gen_ai.output.messages": json.dumps([{"role": "assistant", "parts": [{"type": "text", "content": "Paris."}], "finish_reason": "stop"}]),
})
span.end(end_time=start + 750_000_000)

failed = tracer.start_span("chat otel-chat", start_time=start + 1_000_000_000)
failed.set_attributes({
    "gen_ai.operation.name": "chat",
    "gen_ai.provider.name": "openai",
    "gen_ai.request.model": "otel-chat",
    "error.type": "RateLimitError",
})
failed.record_exception(RuntimeError("429 Too Many Requests"))
failed.set_status(Status(StatusCode.ERROR, "rate limited by the provider"))
failed.end(end_time=start + 1_200_000_000)
tracer_provider.shutdown()

# Logs: through the standard logging module, uncompressed protobuf.
logger_provider = LoggerProvider(resource=resource)
log_exporter = recording(OTLPLogExporter(endpoint=URL + "/v1/logs", headers=HEADERS))
logger_provider.add_log_record_processor(SimpleLogRecordProcessor(log_exporter))
log = logging.getLogger("otel-test")
log.propagate = False
log.addHandler(LoggingHandler(level=logging.INFO, logger_provider=logger_provider))
log.setLevel(logging.INFO)
log.error("vector store timeout after 3 retries", extra={"shard": 7})
log.info("index refreshed")
logger_provider.shutdown()

# Metrics: the standard GenAI duration histogram and a plain counter; cumulative temporality.
metric_exporter = recording(OTLPMetricExporter(endpoint=URL + "/v1/metrics", headers=HEADERS))
reader = PeriodicExportingMetricReader(metric_exporter, export_interval_millis=3_600_000)
meter_provider = MeterProvider(resource=resource, metric_readers=[reader])
meter = meter_provider.get_meter("modelwatch-test")
duration = meter.create_histogram("gen_ai.client.operation.duration", unit="s")
duration.record(0.5, {"gen_ai.request.model": "otel-chat", "gen_ai.operation.name": "chat"})
duration.record(1.5, {"gen_ai.request.model": "otel-chat", "gen_ai.operation.name": "chat"})
requests = meter.create_counter("otel.requests")
requests.add(3, {"route": "/chat"})
meter_provider.shutdown()

print(json.dumps(RESULTS))
bad = [r for r in RESULTS if r[1] != "SUCCESS"]
if bad or len(RESULTS) < 3:
    print("exports not acknowledged:", bad or RESULTS, file=sys.stderr)
    sys.exit(1)
