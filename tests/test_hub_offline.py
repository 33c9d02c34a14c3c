"""A hub id with no network: one quick probe, then the cache or one clear error (not minutes of "Retrying")."""
from __future__ import annotations

import logging

import pytest

from roberta import hub

COMMIT = "0123456789abcdef0123456789abcdef01234567"


@pytest.fixture
def no_network(monkeypatch):
    """The hub endpoint is a closed local port (connection refused at once); no proxy; a fresh probe."""
    from huggingface_hub import constants

    monkeypatch.setattr(constants, "ENDPOINT", "http://127.0.0.1:1")
    for name in ("HTTPS_PROXY", "https_proxy", "HTTP_PROXY", "http_proxy", "ALL_PROXY", "all_proxy", "HF_HUB_OFFLINE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setattr(hub, "_probes", {})
    calls = []
    import huggingface_hub

    real = huggingface_hub.hf_hub_download

    def spy(**kwargs):
        calls.append(kwargs["local_files_only"])
        return real(**kwargs)

    monkeypatch.setattr(huggingface_hub, "hf_hub_download", spy)
    return calls


def test_uncached_id_without_network_is_one_clear_error(no_network, tmp_path, caplog):
    with caplog.at_level(logging.WARNING):
        with pytest.raises(hub.ResolveError, match=r"config.json of 'test-org/absent' is not in the local hub cache "
                                                   r"and the hub could not be reached \(127.0.0.1:1: .*refused"):
            hub.resolve_file("test-org/absent", "config.json", cache_dir=tmp_path)
    assert no_network == [True]  # asked the cache only: huggingface_hub's retry loop never ran
    assert "Retrying" not in caplog.text


def test_cached_id_still_loads_without_network(no_network, tmp_path):
    repo = tmp_path / "models--test-org--tiny"
    (repo / "snapshots" / COMMIT).mkdir(parents=True)
    (repo / "snapshots" / COMMIT / "config.json").write_text("{}")
    (repo / "refs").mkdir()
    (repo / "refs" / "main").write_text(COMMIT)
    path = hub.resolve_file("test-org/tiny", "config.json", cache_dir=tmp_path)
    assert path.endswith(f"snapshots/{COMMIT}/config.json") and no_network == [True]


def test_probe_is_skipped_behind_a_proxy(monkeypatch):
    monkeypatch.setattr(hub, "_probes", {})
    monkeypatch.setenv("HTTPS_PROXY", "http://proxy.example:3128")
    assert hub.hub_unreachable() is None and hub._probes == {}
