"""node.config: defaults, then carnet.toml, then CARNET_* variables, then overrides.

Every test passes ``environ`` explicitly, so the process environment never leaks in.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from node.config import ConfigError, NodeConfig, SmsConfig, dump_toml, load_config


def write_toml(folder: Path, text: str) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "carnet.toml"
    path.write_text(text, encoding="utf-8")
    return path


def test_defaults_without_file_or_environment(tmp_path: Path) -> None:
    config = load_config({"data_dir": str(tmp_path)}, environ={})
    assert config.data_dir == tmp_path
    assert config.school_name == "École Carnet"
    assert config.public_url == "http://127.0.0.1:8000"
    assert config.bind == "127.0.0.1:8000"
    assert config.default_locale == "fr"
    assert config.kdf_iterations == 600_000
    assert config.sms == SmsConfig()
    assert config.sms.backend == "console"
    assert config.resolved_database_url == f"sqlite:///{tmp_path / 'carnet.sqlite3'}"
    assert config.origin == "http://127.0.0.1:8000"
    assert not config.is_https


def test_default_data_dir_is_carnet_data(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)  # no carnet-data/carnet.toml here
    config = load_config(environ={})
    assert config.data_dir == Path("carnet-data")


def test_carnet_toml_in_data_dir_is_read(tmp_path: Path) -> None:
    write_toml(
        tmp_path,
        'school_name = "École A"\n'
        'public_url = "https://carnet.ecole-a.test"\n'
        "sms_code_minutes = 5\n"
        "\n[sms]\n"
        'backend = "http"\n'
        'http_url = "https://sms.example.test/send"\n'
        "http_max_attempts = 7\n",
    )
    config = load_config({"data_dir": str(tmp_path)}, environ={})
    assert config.school_name == "École A"
    assert config.public_url == "https://carnet.ecole-a.test"
    assert config.is_https
    assert config.sms_code_minutes == 5
    assert config.sms.backend == "http"
    assert config.sms.http_url == "https://sms.example.test/send"
    assert config.sms.http_max_attempts == 7
    assert config.sms.http_sender == "Carnet"  # unset section fields keep their defaults


def test_carnet_config_names_another_file(tmp_path: Path) -> None:
    other = write_toml(tmp_path / "elsewhere", 'school_name = "École B"\n')
    write_toml(tmp_path / "data", 'school_name = "ignored"\n')
    config = load_config(
        {"data_dir": str(tmp_path / "data")}, environ={"CARNET_CONFIG": str(other)}
    )
    assert config.school_name == "École B"


def test_environment_layer_and_type_coercion(tmp_path: Path) -> None:
    environ = {
        "CARNET_DATA_DIR": str(tmp_path),
        "CARNET_SCHOOL_NAME": "École C",
        "CARNET_ACCESS_CODE_DAYS": "21",
        "CARNET_SMS__BACKEND": "http",
        "CARNET_SMS__HTTP_URL": "https://sms.example.test/send",
        "CARNET_SMS__HTTP_TIMEOUT": "2.5",
        "HOME": "/root",  # unrelated variables are ignored
    }
    config = load_config(environ=environ)
    assert config.data_dir == tmp_path
    assert config.school_name == "École C"
    assert config.access_code_days == 21
    assert config.sms.backend == "http"
    assert config.sms.http_url == "https://sms.example.test/send"
    assert config.sms.http_timeout == 2.5


def test_environment_wins_over_toml(tmp_path: Path) -> None:
    write_toml(
        tmp_path,
        'school_name = "From file"\nsession_idle_days = 3\n\n[sms]\nhttp_sender = "File"\n',
    )
    config = load_config(
        {"data_dir": str(tmp_path)},
        environ={"CARNET_SCHOOL_NAME": "From env", "CARNET_SMS__HTTP_SENDER": "Env"},
    )
    assert config.school_name == "From env"
    assert config.session_idle_days == 3  # the file still counts where the environment is silent
    assert config.sms.http_sender == "Env"


def test_database_url_variable(tmp_path: Path) -> None:
    url = "postgresql://carnet:secret@db.internal/carnet"
    config = load_config({"data_dir": str(tmp_path)}, environ={"DATABASE_URL": url})
    assert config.database_url == url
    assert config.resolved_database_url == url


def test_carnet_database_url_wins_over_database_url(tmp_path: Path) -> None:
    config = load_config(
        {"data_dir": str(tmp_path)},
        environ={
            "DATABASE_URL": "postgresql://platform/db",
            "CARNET_DATABASE_URL": "postgresql://carnet/db",
        },
    )
    assert config.database_url == "postgresql://carnet/db"


def test_overrides_win_over_every_layer(tmp_path: Path) -> None:
    write_toml(tmp_path, 'school_name = "From file"\nbind = "0.0.0.0:9000"\n')
    config = load_config(
        {"data_dir": str(tmp_path), "school_name": "Override", "sms": {"backend": "console"}},
        environ={"CARNET_SCHOOL_NAME": "From env", "CARNET_SMS__BACKEND": "http"},
    )
    assert config.school_name == "Override"
    assert config.sms.backend == "console"
    assert config.bind == "0.0.0.0:9000"


def test_data_dir_from_overrides_chooses_the_toml(tmp_path: Path) -> None:
    write_toml(tmp_path / "env", 'school_name = "Env folder"\n')
    write_toml(tmp_path / "override", 'school_name = "Override folder"\n')
    config = load_config(
        {"data_dir": str(tmp_path / "override")},
        environ={"CARNET_DATA_DIR": str(tmp_path / "env")},
    )
    assert config.school_name == "Override folder"
    assert config.data_dir == tmp_path / "override"


@pytest.mark.parametrize(
    ("layer", "name"),
    [
        ("toml", "colour"),
        ("env", "colour"),
        ("override", "colour"),
        ("toml-sms", "sms.colour"),
        ("env-sms", "sms.colour"),
    ],
)
def test_unknown_setting_is_an_error_naming_it(tmp_path: Path, layer: str, name: str) -> None:
    overrides: dict[str, object] = {"data_dir": str(tmp_path)}
    environ: dict[str, str] = {}
    if layer == "toml":
        write_toml(tmp_path, 'colour = "blue"\n')
    elif layer == "toml-sms":
        write_toml(tmp_path, '[sms]\ncolour = "blue"\n')
    elif layer == "env":
        environ["CARNET_COLOUR"] = "blue"
    elif layer == "env-sms":
        environ["CARNET_SMS__COLOUR"] = "blue"
    else:
        overrides["colour"] = "blue"
    with pytest.raises(ConfigError, match=rf"unknown setting {name}\b"):
        load_config(overrides, environ=environ)


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        ({"public_url": "ftp://school.test"}, "public_url"),
        ({"public_url": "carnet.school.test"}, "public_url"),
        ({"public_url": "https://school.test/carnet"}, "public_url"),
        ({"public_url": "https://school.test/?a=1"}, "public_url"),
        ({"kdf_iterations": 599_999}, "kdf_iterations"),
        ({"kdf_iterations": "1000"}, "kdf_iterations"),
        ({"default_locale": "de"}, "default_locale must be one of: fr, en"),
        ({"sms": {"backend": "pigeon"}}, "sms.backend must be one of: console, http"),
        ({"sms": {"backend": "http"}}, "sms.http_url"),
        ({"sms": "console"}, "sms must be a table"),
        ({"access_code_days": "fourteen"}, "access_code_days"),
        ({"sms_code_max_tries": 0}, "sms_code_max_tries must be a positive number"),
        ({"default_country_code": "+33"}, "default_country_code"),
        ({"database_url": "mysql://db/carnet"}, "database_url"),
    ],
)
def test_invalid_values_are_config_errors(
    tmp_path: Path, settings: dict[str, object], message: str
) -> None:
    with pytest.raises(ConfigError, match=message):
        load_config({"data_dir": str(tmp_path), **settings}, environ={})


def test_invalid_value_from_environment(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="kdf_iterations"):
        load_config({"data_dir": str(tmp_path)}, environ={"CARNET_KDF_ITERATIONS": "100000"})
    with pytest.raises(ConfigError, match="default_locale"):
        load_config({"data_dir": str(tmp_path)}, environ={"CARNET_DEFAULT_LOCALE": "es"})


def test_broken_toml_is_a_config_error_naming_the_file(tmp_path: Path) -> None:
    path = write_toml(tmp_path, "school_name = \n")
    with pytest.raises(ConfigError, match="carnet.toml"):
        load_config({"data_dir": str(tmp_path)}, environ={})
    assert path.exists()


def test_dump_toml_round_trips_through_load_config(tmp_path: Path) -> None:
    values = {
        "school_name": 'École "Les Tilleuls" \\ annexe',
        "public_url": "https://carnet.tilleuls.test",
        "kdf_iterations": 700_000,
        "sms": {"backend": "http", "http_url": "https://sms.test/send", "http_timeout": 3.0},
    }
    write_toml(tmp_path, dump_toml(values))
    config = load_config({"data_dir": str(tmp_path)}, environ={})
    assert config.school_name == values["school_name"]
    assert config.kdf_iterations == 700_000
    assert config.sms.http_timeout == 3.0


def test_every_field_has_a_documented_default() -> None:
    config = NodeConfig()
    config.validate()  # the defaults alone make a valid configuration


def test_script_variables_are_not_settings() -> None:
    from node.config import load_config

    config = load_config(
        {"data_dir": "/tmp/carnet-x"},
        environ={"CARNET_TEST_DB": "postgresql", "CARNET_DEMO_DATA": "x", "CARNET_PG_USER": "pg"},
    )
    assert config.school_name == "École Carnet"


def test_timezone_must_exist() -> None:
    from node.config import ConfigError, load_config

    with pytest.raises(ConfigError, match="IANA time zone"):
        load_config({"data_dir": "/tmp/carnet-x", "timezone": "Mars/Olympus_Mons"}, environ={})
