"""The ``mqtt`` section and the top-level ``site``: defaults, key-path errors, the password as a secret."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest
from support.config_files import write_config
from support.mosquitto import make_tls_files

from crowdwatch.config import ConfigError, load_config
from crowdwatch.config.mqtt import default_site

CAMERAS = "cameras:\n  - {id: a, url: a.mp4}\n"
SECRET = "Mqtt-S3cret-Value"


def load(tmp_path: Path, text: str) -> object:
    return load_config(write_config(tmp_path, text + CAMERAS))


def errors(tmp_path: Path, text: str) -> list[tuple[str, str]]:
    with pytest.raises(ConfigError) as info:
        load(tmp_path, text)
    return info.value.errors


def test_defaults_are_off_and_site_is_the_host_name_as_a_slug(tmp_path: Path) -> None:
    config = load_config(write_config(tmp_path, CAMERAS))
    assert config.mqtt.enabled is False
    assert (config.mqtt.host, config.mqtt.effective_port, config.mqtt.qos, config.mqtt.retain) == (
        "127.0.0.1",
        1883,
        1,
        True,
    )
    assert config.mqtt.topic_prefix == "crowdwatch" and config.mqtt.outbox_size == 10_000
    assert config.site == default_site()
    assert default_site() != "" and default_site() == default_site().lower()


def test_a_full_section_loads_and_the_password_stays_hidden(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "creds").mkdir()
    (tmp_path / "creds" / "mqtt").write_text(SECRET + "\n")
    # a real CA certificate: TLS files are loaded with the config (check-config refuses what run would)
    (tmp_path / "ca.pem").write_bytes(make_tls_files(tmp_path / "tls").ca.read_bytes())
    monkeypatch.setenv("CREDENTIALS_DIRECTORY", str(tmp_path / "creds"))
    config = load_config(
        write_config(
            tmp_path,
            textwrap.dedent(
                """
            site: north-7
            mqtt:
              enabled: true
              host: broker.example.org
              tls: {enabled: true, ca_file: ca.pem}
              username: box7
              password: ${credential:mqtt}
              qos: 2
              retain: false
              topic_prefix: acme/stations
              client_id: north-7.box
              keepalive_s: 20
              outbox_size: 500
              reconnect: {initial_s: 2, max_s: 30}
            """
            )
            + CAMERAS,
        )
    )
    mqtt = config.mqtt
    assert config.site == "north-7"
    assert (mqtt.effective_port, mqtt.qos, mqtt.retain, mqtt.topic_prefix) == (
        8883,
        2,
        False,
        "acme/stations",
    )
    assert mqtt.tls.ca_file == tmp_path / "ca.pem"  # relative to the config's folder
    assert mqtt.password is not None and mqtt.password.get_secret_value() == SECRET
    assert SECRET not in repr(config) + str(config.model_dump()) + config.model_dump_json()
    assert config.secrets.scrub(f"login {SECRET} failed") == "login *** failed"


@pytest.mark.parametrize(
    ("text", "key", "words"),
    [
        ("site: North Box\n", "site", "slug"),
        ("mqtt: {qos: 3}\n", "mqtt.qos", "0, 1 or 2"),
        ("mqtt: {port: 70000}\n", "mqtt.port", "65535"),
        ("mqtt: {host: 'mqtt://broker'}\n", "mqtt.host", "host name"),
        ("mqtt: {topic_prefix: 'a/+/b'}\n", "mqtt.topic_prefix", "wildcards"),
        ("mqtt: {topic_prefix: 'a/'}\n", "mqtt.topic_prefix", "trailing"),
        ("mqtt: {client_id: 'has space'}\n", "mqtt.client_id", "letters"),
        ("mqtt: {outbox_size: 1}\n", "mqtt.outbox_size", "10"),
        ("mqtt: {reconnect: {initial_s: 10, max_s: 2}}\n", "mqtt.reconnect", "max_s"),
        ("mqtt: {tls: {key_file: k.pem}}\n", "mqtt.tls", "cert_file"),
        ("mqtt: {brokr: x}\n", "mqtt.brokr", "unknown key"),
        ("mqtt: {password: '${env:CW_MQTT_TEST_PW}'}\n", "mqtt", "username"),
    ],
)
def test_bad_values_are_errors_at_their_key_path(
    text: str, key: str, words: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CW_MQTT_TEST_PW", SECRET)
    found = errors(tmp_path, text)
    assert [k for k, _ in found] == [key], found
    assert words in found[0][1], found
    assert SECRET not in str(found)


def test_a_password_written_in_the_file_is_refused(tmp_path: Path) -> None:
    found = errors(tmp_path, f"mqtt: {{username: box, password: {SECRET}}}\n")
    assert found == [
        (
            "mqtt.password",
            "write the password as ${credential:NAME} or ${env:NAME}; it must not be stored in the file",
        )
    ]


def test_check_config_names_the_broker_and_topics_but_not_the_password(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from crowdwatch.commands.check_config import main

    monkeypatch.setenv("CW_MQTT_TEST_PW", SECRET)
    text = (
        "site: lobby\nmqtt: {enabled: true, host: 192.0.2.5, tls: {enabled: true}, username: box7, "
        "password: '${env:CW_MQTT_TEST_PW}'}\n"
    )
    assert main([str(write_config(tmp_path, text + CAMERAS))]) == 0
    out = capsys.readouterr().out
    assert "  mqtt: mqtts://192.0.2.5:8883, user box7, topics crowdwatch/lobby/..." in out
    assert SECRET not in out
