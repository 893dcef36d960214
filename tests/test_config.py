"""Where credentials come from, and that the token never reaches output or files."""

import pytest
from click.testing import CliRunner

from batchsms.cli import main
from batchsms.config import load_settings
from batchsms.errors import ConfigError

from .helpers import write_csv


def test_option_then_environment_then_config_file(tmp_path):
    config = tmp_path / "batchsms.ini"
    config.write_text("[batchsms]\naccount_sid = ACFILE\nauth_token = file-token\nproperty_sid = PSFILE\n"
                      "base_url = http://127.0.0.1:9\n", encoding="utf-8")
    env = {"BATCHSMS_CONFIG": str(config)}
    settings = load_settings(env=env)
    assert (settings.account_sid, settings.auth_token, settings.property_sid, settings.base_url) == (
        "ACFILE", "file-token", "PSFILE", "http://127.0.0.1:9")
    env.update(BATCHSMS_ACCOUNT_SID="ACENV", BATCHSMS_PROPERTY_SID="PSENV")
    settings = load_settings(property_sid="PSOPT", env=env)
    assert (settings.account_sid, settings.property_sid) == ("ACENV", "PSOPT")
    assert "file-token" not in repr(settings)


def test_default_base_url_and_bad_config(tmp_path):
    assert load_settings(env={"XDG_CONFIG_HOME": str(tmp_path)}).base_url == "https://api.fonedynamics.com"
    with pytest.raises(ConfigError, match="no such file"):
        load_settings(env={"BATCHSMS_CONFIG": str(tmp_path / "none.ini")})
    bad = tmp_path / "bad.ini"
    bad.write_text("[other]\nx = 1\n", encoding="utf-8")
    with pytest.raises(ConfigError, match=r"has no \[batchsms\] section"):
        load_settings(env={"BATCHSMS_CONFIG": str(bad)})


def test_token_never_reaches_output_results_or_journal(sandbox, tmp_path):
    sheet = write_csv(tmp_path / "c.csv", [["Mobile", "Name"], ["0412000001", "Ann"], ["bad", "Bo"]])
    env = {"BATCHSMS_BASE_URL": sandbox.url, "BATCHSMS_ACCOUNT_SID": sandbox.account_sid,
           "BATCHSMS_AUTH_TOKEN": sandbox.auth_token, "BATCHSMS_PROPERTY_SID": "PS1", "BATCHSMS_CONFIG": ""}
    result = CliRunner().invoke(main, ["send", str(sheet), "--text", "Hi {{ Name }}", "--yes",
                                       "--report", str(tmp_path / "r.json")], env=env)
    assert result.exit_code == 1
    token = sandbox.auth_token.encode()
    assert token not in result.output.encode()
    for path in tmp_path.iterdir():
        if path.is_file():
            assert token not in path.read_bytes(), path.name
