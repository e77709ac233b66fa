"""Logging with correlation, Application Insights wiring and the integration's metrics.

- Every log line inside a message's life carries its correlation fields (message id, flow,
  entity, record ids, attempt) from a context variable, so one KQL query follows a record.
- When APPLICATIONINSIGHTS_CONNECTION_STRING is set, azure-monitor-opentelemetry exports
  logs, traces and the metrics below; the fields become custom dimensions.
- Personal data never reaches logs: callers log ids and reason codes only; the HTTP client
  loggers (httpx, httpcore, urllib3), which write every request URL with its query string
  (e-mails and names in searches, OData $filters), are kept at WARNING at every level; and a
  filter redacts URL query strings and anything shaped like an e-mail address or phone
  number as a safety net.
"""

from __future__ import annotations

import contextlib
import contextvars
import logging
import os
import re
from collections.abc import Iterator, Sequence
from typing import Any

from opentelemetry import metrics

LOGGER_NAME = "bpsync"
CORRELATION_FIELDS = ("message_id", "flow", "entity", "record_ids", "attempt", "source_system")

_correlation: contextvars.ContextVar[dict[str, Any] | None] = contextvars.ContextVar(
    "bpsync_correlation", default=None
)

# Loggers of HTTP client libraries that log request URLs (query strings included) at
# INFO/DEBUG. Kept at WARNING whatever LOG_LEVEL says: a query string can hold personal data.
HTTP_CLIENT_LOGGERS = ("httpx", "httpcore", "urllib3", "hpack")

# A URL's query string: from `?` after a URL or path up to whitespace or a closing quote.
_QUERY = re.compile(r"(?<=[\w/)\]])\?(?=[^\s?\"'<>]*=)[^\s\"'<>]*")
_EMAIL = re.compile(r"[A-Za-z0-9._%+'-]+@[A-Za-z0-9.-]+\.[A-Za-z]{2,}")
# Phone-like: optional +, then 7+ digits possibly separated by spaces, dots, dashes, parens.
_PHONE = re.compile(r"(?<![\w.-])\+?\(?\d[\d\s().-]{6,}\d(?![\w-])")


def get_logger(name: str | None = None) -> logging.Logger:
    return logging.getLogger(f"{LOGGER_NAME}.{name}" if name else LOGGER_NAME)


def quiet_http_client_loggers() -> None:
    """Keep the HTTP client libraries from logging request URLs (they carry query strings)."""
    for name in HTTP_CLIENT_LOGGERS:
        logging.getLogger(name).setLevel(logging.WARNING)


def redact(text: str) -> str:
    """Replace URL query strings, e-mail addresses and phone-like numbers with placeholders."""
    text = _QUERY.sub("?<query>", text)
    text = _EMAIL.sub("<email>", text)
    return _PHONE.sub(_phone_placeholder, text)


def _phone_placeholder(match: re.Match[str]) -> str:
    digits = re.sub(r"\D", "", match.group(0))
    # Ids, counts and ISO dates are not phones: keep short digit runs and date-like values.
    if len(digits) < 9 or re.fullmatch(r"\d{4}-\d{2}-\d{2}.*", match.group(0).strip()):
        return match.group(0)
    return "<phone>"


class CorrelationFilter(logging.Filter):
    """Adds the current correlation fields to each record and redacts personal data."""

    def filter(self, record: logging.LogRecord) -> bool:
        fields = _correlation.get() or {}
        for name in CORRELATION_FIELDS:
            if not hasattr(record, name):
                setattr(record, name, fields.get(name))
        try:
            message = record.getMessage()
        except Exception:  # a broken format string must not lose the log line
            message = str(record.msg)
        cleaned = redact(message)
        if cleaned != message or record.args:
            record.msg = cleaned
            record.args = None
        return True


class CorrelationFormatter(logging.Formatter):
    """Plain-text format for the sandbox: message followed by key=value correlation fields."""

    def format(self, record: logging.LogRecord) -> str:
        base = super().format(record)
        extras = " ".join(
            f"{name}={getattr(record, name)}"
            for name in CORRELATION_FIELDS
            if getattr(record, name, None) not in (None, "", ())
        )
        return f"{base} [{extras}]" if extras else base


@contextlib.contextmanager
def correlation(**fields: Any) -> Iterator[dict[str, Any]]:
    """Set correlation fields for the log lines written inside the block (nested blocks merge)."""
    current = dict(_correlation.get() or {})
    for key, value in fields.items():
        if key == "record_ids" and isinstance(value, Sequence) and not isinstance(value, str):
            value = ",".join(str(v) for v in list(value)[:20])
        current[key] = value
    token = _correlation.set(current)
    try:
        yield current
    finally:
        _correlation.reset(token)


_configured = False


def configure_telemetry(
    *, connection_string: str | None, log_level: str = "INFO", service_name: str = "bpsync"
) -> None:
    """Install the correlation filter; export to Application Insights when configured. Idempotent."""
    global _configured
    root = logging.getLogger()
    logger = logging.getLogger(LOGGER_NAME)
    logger.setLevel(log_level)
    quiet_http_client_loggers()
    # The Azure SDKs log every HTTP request and response at INFO (query values redacted by
    # their logging policy): keep that for DEBUG runs.
    if log_level != "DEBUG":
        for noisy in ("azure", "uamqp"):
            logging.getLogger(noisy).setLevel(logging.WARNING)
    if not any(isinstance(f, CorrelationFilter) for f in logger.filters):
        logger.addFilter(CorrelationFilter())
    _filter_handlers(root, logger)
    if _configured:
        return
    _configured = True
    if connection_string:
        from azure.monitor.opentelemetry import configure_azure_monitor

        os.environ.setdefault("OTEL_SERVICE_NAME", service_name)
        options: dict[str, Any] = {}
        credential = _ingestion_credential(os.environ.get("APPLICATIONINSIGHTS_AUTHENTICATION_STRING"))
        if credential is not None:
            options["credential"] = credential
        configure_azure_monitor(connection_string=connection_string, logger_name=LOGGER_NAME, **options)
        _filter_handlers(root, logger)  # the exporter's handler, added just now, too


def _filter_handlers(*loggers: logging.Logger) -> None:
    """Handlers get the filter too: a logger's own filters skip records of its child loggers."""
    for owner in loggers:
        for handler in owner.handlers:
            if not any(isinstance(f, CorrelationFilter) for f in handler.filters):
                handler.addFilter(CorrelationFilter())


def _ingestion_credential(auth_string: str | None) -> Any:
    """Entra ID credential for Application Insights when local (key) ingestion is disabled.

    APPLICATIONINSIGHTS_AUTHENTICATION_STRING is `Authorization=AAD` optionally with
    `ClientId=<user-assigned identity client id>` (the shape the Functions host uses).
    """
    if not auth_string:
        return None
    parts = dict(p.split("=", 1) for p in auth_string.split(";") if "=" in p)
    if parts.get("Authorization", "").upper() != "AAD":
        return None
    from azure.identity import ManagedIdentityCredential

    client_id = parts.get("ClientId")
    return ManagedIdentityCredential(client_id=client_id) if client_id else ManagedIdentityCredential()


# -- metrics -----------------------------------------------------------------------------
_meter = metrics.get_meter(LOGGER_NAME)


def _counter(name: str, description: str) -> metrics.Counter:
    """A count of things (unit 1); `name` is the metric's full name in Application Insights."""
    return _meter.create_counter(name, unit="1", description=description)


notices_published = _counter("bpsync.notices_published", "change notices published to the bus")
records_synced = _counter("bpsync.records_synced", "records written to a target system")
message_outcomes = _counter("bpsync.message_outcomes", "settled messages by flow, outcome and reason code")
notices_ignored = _counter(
    "bpsync.notices_ignored", "webhook record ids no flow consumes (audited as ignored)"
)
webhooks_rejected = _counter("bpsync.webhooks_rejected", "webhook requests rejected by reason code")
polls_skipped = _counter("bpsync.polls_skipped", "poll rounds skipped by poller and reason (budget short)")
reconcile_findings = _counter(
    "bpsync.reconcile_findings", "records a reconciliation run found out of step, by entity and kind"
)
anomalies = _counter("bpsync.anomalies", "anomalies flagged by kind and flow (shared/anomaly)")
ANOMALY_EVENT = "bpsync.anomaly"  # the custom event of each anomaly flag (shared/anomaly/flags.py)

# The attribute that makes the Azure Monitor exporter send a log record as a custom event
# (the customEvents table) named by its value, with the record's other attributes as properties.
CUSTOM_EVENT_NAME = "microsoft.custom_event.name"


def custom_event(name: str, **properties: str | int | float) -> None:
    """An Application Insights custom event `name` (customEvents) with `properties` as its custom
    dimensions; locally a log line. Ids, codes and numbers only, never personal data."""
    get_logger("events").info(name, extra={CUSTOM_EVENT_NAME: name, **properties})


end_to_end_latency = _meter.create_histogram(
    "bpsync.end_to_end_latency", unit="s", description="from change observed to message settled"
)
