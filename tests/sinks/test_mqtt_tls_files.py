"""The MQTT sink's start-up checks that need no broker: TLS files that cannot be loaded are clear errors
(exit 2, naming the config key)."""

from __future__ import annotations

from pathlib import Path

import pytest

from crowdwatch.config.mqtt import MqttSettings
from crowdwatch.errors import UsageError
from crowdwatch.sinks.mqtt import MqttSink


@pytest.mark.parametrize(
    ("tls", "key"),
    [
        ({"ca_file": "missing-ca.pem"}, "mqtt.tls.ca_file"),
        ({"ca_file": "not-a-cert.pem"}, "mqtt.tls.ca_file"),
        ({"cert_file": "missing-cert.pem", "key_file": "missing-key.pem"}, "mqtt.tls.cert_file/key_file"),
    ],
)
def test_unloadable_tls_files_are_usage_errors_naming_the_key(
    tls: dict[str, str], key: str, tmp_path: Path
) -> None:
    (tmp_path / "not-a-cert.pem").write_text("hello")
    settings = MqttSettings.model_validate(
        {"enabled": True, "tls": {"enabled": True, **tls}}, context={"base_dir": tmp_path}
    )
    sink = MqttSink(settings, "lobby")
    with pytest.raises(UsageError) as info:
        sink.open()
    assert str(info.value).startswith(f"{key}: cannot load {tmp_path}")
    assert info.value.exit_code == 2
    sink.close()  # nothing was started: a no-op
