"""Secret references, URL masking, the masked URL type and the redacting log filter."""

from __future__ import annotations

import logging
import pickle
from pathlib import Path

import pytest

from crowdwatch.secrets import (
    RedactingFilter,
    SecretReferenceError,
    SecretUrl,
    SecretValues,
    mask_url,
    substitute,
)

PASSWORD = "s3cr3t-Horse"


@pytest.mark.parametrize(
    ("text", "masked"),
    [
        ("rtsp://admin:pw@10.0.0.1:554/s1", "rtsp://***@10.0.0.1:554/s1"),
        ("rtsp://admin@10.0.0.1/s1", "rtsp://***@10.0.0.1/s1"),
        ("rtsp://10.0.0.1/s1", "rtsp://10.0.0.1/s1"),
        ("rtsp://admin:p@ss/w:rd@cam.local/live", "rtsp://***@cam.local/live"),  # '@' and '/' in the password
        ("RTSPS://u:p@h/x", "RTSPS://***@h/x"),
        ("/var/video/a@b.mp4", "/var/video/a@b.mp4"),
        ("open failed for rtsp://u:pw@h/x (timeout)", "open failed for rtsp://***@h/x (timeout)"),
        (3, "3"),
        ("http://cam/snap.cgi?user=admin&password=pw&x=1", "http://cam/snap.cgi?user=admin&password=***&x=1"),
        ("rtsp://cam/live?token=abc", "rtsp://cam/live?token=***"),
    ],
)
def test_mask_url(text: object, masked: str) -> None:
    assert mask_url(text) == masked


def test_substitute_env_credential_and_escape(tmp_path: Path) -> None:
    (tmp_path / "cam.pw").write_text(PASSWORD + "\n", encoding="utf-8")
    env = {"USER_NAME": "viewer", "CREDENTIALS_DIRECTORY": str(tmp_path)}
    secrets = SecretValues()
    out = substitute("rtsp://${env:USER_NAME}:${credential:cam.pw}@h/$${x}", secrets, env)
    assert out == f"rtsp://viewer:{PASSWORD}@h/${{x}}"
    assert len(secrets) == 2 and PASSWORD not in repr(secrets)
    assert secrets.scrub(f"auth failed for {PASSWORD}") == "auth failed for ***"


@pytest.mark.parametrize(
    ("text", "env", "fragment"),
    [
        ("${env:MISSING}", {}, "environment variable MISSING is not set"),
        ("${env:1BAD}", {}, "not a valid environment variable name"),
        ("${credential:x}", {}, "$CREDENTIALS_DIRECTORY is not set"),
        ("${credential:../etc/passwd}", {"CREDENTIALS_DIRECTORY": "/tmp"}, "not a valid credential name"),
        ("${file:/etc/passwd}", {}, "unknown reference kind"),
    ],
)
def test_substitute_errors_name_the_reference(text: str, env: dict[str, str], fragment: str) -> None:
    with pytest.raises(SecretReferenceError) as info:
        substitute(text, SecretValues(), env)
    assert fragment in str(info.value)


def test_secret_url_never_prints_the_password() -> None:
    url = SecretUrl(f"rtsp://admin:{PASSWORD}@h/x")
    shown = [str(url), repr(url), f"{url}", f"{url!s:>5}", url.masked, str([url]), str({"u": url})]
    assert all(PASSWORD not in text for text in shown)
    assert url.reveal() == f"rtsp://admin:{PASSWORD}@h/x" and url.scheme == "rtsp"
    assert url == SecretUrl(url.reveal()) and len({url, SecretUrl(url.reveal())}) == 1
    assert SecretUrl("/a/b.mp4").scheme == ""


def test_redacting_filter_scrubs_messages_args_and_tracebacks(caplog: pytest.LogCaptureFixture) -> None:
    logger = logging.getLogger("crowdwatch.test_secrets")
    redactor = RedactingFilter(SecretValues([PASSWORD]))
    caplog.handler.addFilter(redactor)
    try:
        with caplog.at_level(logging.INFO, logger=logger.name):
            logger.info("opening %s", f"rtsp://admin:{PASSWORD}@h/x")
            logger.warning("camera said %r", PASSWORD)
            try:
                raise RuntimeError(f"cannot open rtsp://u:{PASSWORD}@h/x")
            except RuntimeError:
                logger.exception("failed")
    finally:
        caplog.handler.removeFilter(redactor)
    assert "rtsp://***@h/x" in caplog.text
    assert "RuntimeError" in caplog.text
    assert PASSWORD not in caplog.text


def test_secret_url_scrubs_substituted_values_anywhere() -> None:
    secrets = SecretValues([PASSWORD, "10.1.2.3"])
    url = SecretUrl(f"rtsp://10.1.2.3/live?session={PASSWORD}", secrets)
    assert str(url) == "rtsp://***/live?session=***"
    copy = pickle.loads(pickle.dumps(url))
    assert copy == url and str(copy) == str(url)
