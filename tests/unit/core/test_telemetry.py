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
