"""Logs carry correlation fields and never personal data."""

import logging

from shared.telemetry import CorrelationFilter, CorrelationFormatter, correlation, get_logger, redact


def capture(logger_name="bpsync.test"):
    records: list[logging.LogRecord] = []

    class ListHandler(logging.Handler):
        def emit(self, record):
            records.append(record)

    handler = ListHandler()
    handler.addFilter(CorrelationFilter())
    handler.setFormatter(CorrelationFormatter("%(levelname)s %(message)s"))
    logger = logging.getLogger(logger_name)
    logger.addHandler(handler)
    logger.setLevel(logging.DEBUG)
    return logger, handler, records


def test_correlation_fields_reach_every_line_inside_the_block():
    logger, handler, records = capture()
    try:
        with correlation(message_id="abc", flow="customers-to-dataverse", record_ids=["7", "8"]):
            logger.info("fetched")
            with correlation(attempt=2):
                logger.info("retrying")
        logger.info("outside")
    finally:
        logger.removeHandler(handler)
    assert records[0].message_id == "abc" and records[0].record_ids == "7,8"
    assert records[1].attempt == 2 and records[1].flow == "customers-to-dataverse"
    assert records[2].message_id is None
    assert "message_id=abc" in handler.format(records[0])


def test_emails_and_phones_are_redacted_but_ids_and_dates_are_kept():
    text = "contact 207 jane.doe+x@example.co.uk +44 20 7946 0958 on 2026-11-01T10:20:41Z id 123456"
    cleaned = redact(text)
    assert "jane.doe" not in cleaned and "7946" not in cleaned
    assert "<email>" in cleaned and "<phone>" in cleaned
    assert "contact 207" in cleaned and "2026-11-01" in cleaned and "123456" in cleaned


def test_personal_data_passed_as_log_arguments_is_redacted():
    logger, handler, records = capture("bpsync.test2")
    try:
        get_logger("test2").warning("rejected %s with phone %s", "ann@example.org", "(555) 010-9999 ext")
    finally:
        logger.removeHandler(handler)
    line = handler.format(records[0])
    assert "ann@example.org" not in line and "010-9999" not in line


def test_entra_ingestion_uses_the_managed_identity_named_in_the_auth_string():
    from azure.identity import ManagedIdentityCredential

    from shared.telemetry import _ingestion_credential

    assert _ingestion_credential(None) is None
    assert _ingestion_credential("Authorization=Key") is None
    credential = _ingestion_credential("Authorization=AAD;ClientId=00000000-0000-0000-0000-000000000001")
    assert isinstance(credential, ManagedIdentityCredential)


def test_url_query_strings_are_redacted():
    line = (
        "HTTP Request: GET https://bp.example/public-api/acme/contact-service/contact-search"
        '?primaryEmail=tim%40web.example&lastName=Turner "HTTP/1.1 200 OK"; '
        "GET /api/data/v9.2/contacts?$filter=address1_postalcode%20eq%20%27SW1A%201AA%27 HTTP/1.1"
    )
    cleaned = redact(line)
    for leaked in ("tim", "Turner", "SW1A", "postalcode"):
        assert leaked not in cleaned
    assert "contact-service/contact-search?<query>" in cleaned and "contacts?<query>" in cleaned
    assert redact("is that right? yes, id=7") == "is that right? yes, id=7"


def test_http_client_libraries_log_no_request_urls_even_at_debug():
    import httpx

    from shared.telemetry import HTTP_CLIENT_LOGGERS, configure_telemetry

    names = (*HTTP_CLIENT_LOGGERS, "bpsync", "")
    levels = {name: logging.getLogger(name).level for name in names}
    records: list[logging.LogRecord] = []

    class ListHandler(logging.Handler):
        def emit(self, record):
            records.append(record)

    root = logging.getLogger()
    handler = ListHandler(level=logging.DEBUG)
    root.addHandler(handler)
    try:
        for name in HTTP_CLIENT_LOGGERS:  # as a fresh process has them
            logging.getLogger(name).setLevel(logging.NOTSET)
        root.setLevel(logging.DEBUG)
        configure_telemetry(connection_string=None, log_level="DEBUG")
        transport = httpx.MockTransport(lambda request: httpx.Response(200, json={}))
        with httpx.Client(transport=transport) as client:
            client.get(
                "https://bp.example/contact-search",
                params={"primaryEmail": "tim@web.example", "lastName": "Turner"},
            )
    finally:
        root.removeHandler(handler)
        for name, level in levels.items():
            logging.getLogger(name).setLevel(level)
    text = "\n".join(r.getMessage() for r in records)
    assert "Turner" not in text and "web.example" not in text and "contact-search" not in text
