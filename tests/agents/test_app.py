"""The app factory: what an operator checks before launching a branch worker."""

from brokerapp.model.settings import load_settings
from brokerapp.runtime.app import create_app


def test_branch_app_is_its_own_consumer_group_bound_to_loopback(tmp_path):
    settings = load_settings(
        home=tmp_path, store="memory://", kafka_bootstrap="127.0.0.1:9092,127.0.0.1:9094"
    )
    app = create_app(settings, "ssfilter")
    assert app.conf.id == "brokerapp-ssfilter"
    assert [str(u) for u in app.conf.broker] == ["kafka://127.0.0.1:9092", "kafka://127.0.0.1:9094"]
    assert app.conf.web_bind == "127.0.0.1"
    assert app.conf.producer_max_request_size == settings.max_message_bytes
    assert app.conf.consumer_max_fetch_size == settings.max_message_bytes
    assert set(app.agents) == set()
    assert create_app(settings, "gateway").conf.id != app.conf.id


def test_settings_come_from_broker_env_and_mask_secrets(monkeypatch):
    monkeypatch.setenv("BROKER_ALERTS_TOPIC", "alerts-test")
    monkeypatch.setenv("BROKER_MARIADB_PASSWORD", "s3cret")
    settings = load_settings()
    assert settings.alerts_topic == "alerts-test"
    dumped = settings.masked()
    assert dumped["mariadb_password"] != "s3cret"
    assert "s3cret" not in str(dumped)
