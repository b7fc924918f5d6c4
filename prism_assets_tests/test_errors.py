"""One-line errors: what failed and why, past the wrappers, passwords hidden (prism_assets.core.errors)."""

from __future__ import annotations

import pytest
from dagster._utils.error import SerializableErrorInfo  # the type Dagster records a step failure with

from prism_assets.catalog.repo import Catalog
from prism_assets.core.errors import CatalogError, describe, error_info_line, scrub


def info(cls_name: str, message: str, cause=None, context=None) -> SerializableErrorInfo:
    return SerializableErrorInfo(message=message, stack=["  File x, line 1\n"], cls_name=cls_name, cause=cause, context=context)


def test_scrub_hides_url_passwords_only():
    assert scrub("mysql+pymysql://root:s3cr3t@db:3306/x and https://host/a:b@c") == "mysql+pymysql://root:***@db:3306/x and https://host/a:b@c"
    assert scrub("pyamqp://guest:guest@rabbit//") == "pyamqp://guest:***@rabbit//"
    assert scrub("no url here: a:b") == "no url here: a:b"


def test_describe_names_the_failing_service_in_one_line():
    import botocore.exceptions
    from sqlalchemy.exc import OperationalError

    db = OperationalError("SELECT 1", {}, Exception("(2003, \"Can't connect to MySQL server on 'db'\")\nmore"))
    assert describe(db) == "database error (OperationalError): (2003, \"Can't connect to MySQL server on 'db'\")"
    s3 = botocore.exceptions.EndpointConnectionError(endpoint_url="http://s3.local/b/k")
    assert describe(RuntimeError("wrapped")) == "RuntimeError: wrapped"
    try:
        try:
            raise s3
        except Exception as exc:
            raise RuntimeError("handler failed") from exc
    except RuntimeError as outer:
        assert describe(outer) == 'S3 error (EndpointConnectionError): Could not connect to the endpoint URL: "http://s3.local/b/k"'
    assert describe(PermissionError(13, "Permission denied", "/data/x")) == "Permission denied: /data/x"
    line = describe(CatalogError("catalog database mysql://u:***@h/d: (1045, denied)"))
    assert line == "catalog database mysql://u:***@h/d: (1045, denied)"
    assert describe(ValueError("postgresql://u:pw@h/d unreachable\nsecond line")) == "ValueError: postgresql://u:***@h/d unreachable"


def test_error_info_line_reaches_the_culprit_past_retries_and_wrappers():
    culprit = info("EndpointConnectionError", 'botocore.exceptions.EndpointConnectionError: Could not connect to the endpoint URL: "http://x"\n')
    retried = info("RetryRequestedFromPolicy", "Exceeded max_retries of 3\n", cause=culprit)
    assert error_info_line(retried) == 'botocore.exceptions.EndpointConnectionError: Could not connect to the endpoint URL: "http://x"'
    stored = info("DagsterExecutionHandleOutputError", 'Error occurred while handling output "result" of step "qc"\n', cause=culprit)
    assert error_info_line(stored).startswith("storing the output: botocore.exceptions.EndpointConnectionError")
    plain = info("CatalogError", "prism_assets.core.errors.CatalogError: catalog database mysql://root:pw@h/d: (2013, 'Lost connection')\n")
    assert error_info_line(info("RetryRequestedFromPolicy", "Exceeded max_retries of 1", cause=plain)) == (
        "catalog database mysql://root:***@h/d: (2013, 'Lost connection')")
    assert error_info_line(info("RetryRequestedFromPolicy", "Exceeded max_retries of 1")) == "Exceeded max_retries of 1"


@pytest.mark.integration
@pytest.mark.parametrize("url, code", [("mysql+pymysql://root:pw-xyz@127.0.0.1:3306/test", "(1045"),
                                       ("mysql+pymysql://root:pw-xyz@127.0.0.1:9/test", "(2003"),
                                       ("postgresql+psycopg2://postgres:pw-xyz@127.0.0.1:9/none", "Connection refused")])
def test_catalog_connection_errors_name_the_catalog(url, code):
    with pytest.raises(CatalogError) as caught:
        Catalog(url)
    text = str(caught.value)
    assert text.startswith(f"catalog database {url.split(':pw-xyz')[0]}:***@") and code in text and "pw-xyz" not in text
    assert "\n" not in text
