from pathlib import Path

import pytest

from dockyard.config import load


def test_file_then_environment_then_flags(tmp_path):
    config = tmp_path / "dockyard.yaml"
    config.write_text("listen: 0.0.0.0:6000\ndomain: example.test\nmax-page-size: 50\n")
    settings = load(config, environ={"DOCKYARD_DOMAIN": "env.test"}, data_dir=tmp_path / "d")
    assert settings.listen == "0.0.0.0:6000"
    assert settings.port == 6000
    assert settings.domain == "env.test"
    assert settings.max_page_size == 50
    assert settings.data_dir == (tmp_path / "d").resolve()
    assert settings.database_url == f"sqlite:///{(tmp_path / 'd').resolve() / 'metadata.db'}"
    flagged = load(config, environ={"DOCKYARD_DOMAIN": "env.test"}, domain="flag.test", data_dir=tmp_path)
    assert flagged.domain == "flag.test"


def test_config_file_from_environment(tmp_path):
    config = tmp_path / "c.yaml"
    config.write_text("default_registry: mainregistry\n")
    assert load(environ={"DOCKYARD_CONFIG": str(config)}).default_registry == "mainregistry"


def test_unknown_setting_is_an_error(tmp_path):
    config = tmp_path / "bad.yaml"
    config.write_text("lisen: 1.2.3.4:5\n")
    with pytest.raises(ValueError, match="unknown setting 'lisen'"):
        load(config, environ={})


def test_defaults_keep_data_in_a_local_folder():
    settings = load(environ={})
    assert settings.listen == "127.0.0.1:5000"
    assert settings.data_dir == Path("./dockyard-data").resolve()
    assert settings.storage_url.startswith("file://")
