"""The faust app takes its status page's address from the settings (a container's probes must reach it)."""

from __future__ import annotations

from worker.config import Settings
from worker.entrypoints.worker_app import build_app


def test_the_status_page_binds_where_the_settings_say() -> None:
    default, _ = build_app(Settings(status_port=6070))
    assert (default.conf.web_bind, default.conf.web_port) == ("127.0.0.1", 6070)
    anywhere, _ = build_app(Settings(status_port=6071, status_bind="0.0.0.0", kafka_app_id="bind-test"))
    assert (anywhere.conf.web_bind, anywhere.conf.web_port, anywhere.conf.web_enabled) == ("0.0.0.0", 6071, True)
