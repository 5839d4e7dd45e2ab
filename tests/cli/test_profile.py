"""The login profile: where it lives, its permissions, token caching."""

from __future__ import annotations

import json
import os
import stat
import time

from dockyard.cli import profile as profile_module
from dockyard.cli.profile import Profile, jwt_expiry


def _profile() -> Profile:
    return Profile(endpoint="https://dockyard.example:5000", tenant_id="t", user_name="owner", secret="s3cret",
                   subscriptions=[{"id": "sub-1", "name": "One", "state": "Enabled", "isDefault": True},
                                  {"id": "sub-2", "name": "Two", "state": "Enabled", "isDefault": False}])


def test_config_dir_from_env(tmp_path, monkeypatch):
    monkeypatch.setenv("DOCKYARD_CONFIG_DIR", str(tmp_path / "cfg"))
    assert profile_module.config_dir() == tmp_path / "cfg"
    monkeypatch.delenv("DOCKYARD_CONFIG_DIR")
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "xdg"))
    assert profile_module.config_dir() == tmp_path / "xdg" / "dockyard"


def test_profile_file_is_0600_in_a_0700_dir_whatever_the_umask(tmp_path, monkeypatch):
    monkeypatch.setenv("DOCKYARD_CONFIG_DIR", str(tmp_path / "cfg"))
    old = os.umask(0)
    try:
        _profile().save()
    finally:
        os.umask(old)
    path = tmp_path / "cfg" / "profile.json"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700
    assert json.loads(path.read_text())["secret"] == "s3cret"
    # rewriting keeps the mode, even if someone loosened it
    path.chmod(0o644)
    _profile().save()
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert not [p for p in path.parent.iterdir() if p.name.startswith(".")]  # no temp files left


def test_round_trip_and_remove(tmp_path, monkeypatch):
    monkeypatch.setenv("DOCKYARD_CONFIG_DIR", str(tmp_path))
    assert Profile.load() is None
    p = _profile()
    p.cache_token("aud", "tok", time.time() + 3600)
    p.save()
    loaded = Profile.load()
    assert loaded is not None and loaded.user_name == "owner" and loaded.cached_token("aud") == "tok"
    assert profile_module.remove() is True
    assert Profile.load() is None


def test_tokens_are_used_until_shortly_before_expiry():
    p = _profile()
    p.cache_token("soon", "a", time.time() + 30)
    p.cache_token("later", "b", time.time() + 3600)
    assert p.cached_token("soon") is None
    assert p.cached_token("later") == "b"
    p.cache_token("other", "c", time.time() + 3600)  # expired entries are dropped on write
    p.tokens["gone"] = {"accessToken": "x", "expiresOn": 1}
    p.cache_token("again", "d", time.time() + 3600)
    assert "gone" not in p.tokens


def test_subscription_selection():
    p = _profile()
    assert p.subscription()["id"] == "sub-1"
    assert p.subscription("two")["id"] == "sub-2"
    p.set_default("sub-2")
    assert p.subscription()["id"] == "sub-2"


def test_jwt_expiry():
    import base64

    payload = base64.urlsafe_b64encode(json.dumps({"exp": 1234}).encode()).decode().rstrip("=")
    assert jwt_expiry(f"h.{payload}.s") == 1234.0
    assert jwt_expiry("opaque") is None
