"""One redactor for every URL that is printed or written: no secret of a storage URL or an MLflow
URI reaches a study's files, its status or a command's output.

The property: for generated URLs with a secret as a password (raw or percent-encoded), as a query
parameter (``password=``, ``pass=``, ``pwd=``, ``token=``, ``api_key=``... in any case), inside
postgres' ``options=-c password=...`` or in a fragment, the secret never appears in the output.
Then the places: a search on a shared database, ``status --storage``, and an MLflow URI MLflow
cannot reach (its error quoted the URI, so the password was printed twice).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from urllib.parse import quote

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

sys.path.insert(0, str(Path(__file__).resolve().parent))  # test_study_safety's helpers

from test_study_safety import config_file, one_line, search  # noqa: E402

from paretodistill.cli import main  # noqa: E402
from paretodistill.errors import BAD_INPUT, OK  # noqa: E402
from paretodistill.redaction import redact_config, redact_text, redact_url  # noqa: E402
from paretodistill.search.storage import open_storage  # noqa: E402

# ---------------------------------------------------------------- the property
PLAIN = st.text(alphabet="abcdefghijklmnopqrstuvwxyz0123456789", min_size=1, max_size=8)
# a secret starts with a mark no other part of a generated URL can hold (they are lowercase)
SECRETS = st.builds(lambda tail: "S3CR" + tail, st.text(
    alphabet=st.characters(codec="ascii", exclude_characters="\x00\n\r\t "), min_size=1, max_size=16))
SCHEMES = st.sampled_from(["postgresql", "postgresql+psycopg2", "mysql+pymysql", "http", "https", "sqlite"])
SECRET_NAMES = st.sampled_from(["password", "pass", "pwd", "passwd", "secret", "token", "key", "api_key",
                                "access_token", "sslkey", "apikey", "client_secret", "auth"]).flatmap(
    lambda name: st.sampled_from([name, name.upper(), name.capitalize()]))
PLAIN_PARAMS = st.lists(st.tuples(st.sampled_from(["charset", "sslmode", "connect_timeout", "application_name"]), PLAIN),
                        max_size=3)


@st.composite
def urls_with_a_secret(draw) -> tuple[str, str]:
    secret = draw(SECRETS)
    scheme, user, host, path = draw(SCHEMES), draw(PLAIN), draw(PLAIN), draw(PLAIN)
    port = draw(st.one_of(st.just(""), st.integers(1, 65535).map(lambda p: f":{p}")))
    params = [f"{k}={v}" for k, v in draw(PLAIN_PARAMS)]
    where = draw(st.sampled_from(["userinfo", "userinfo-encoded", "query", "query-encoded", "options", "fragment"]))
    userinfo = f"{user}@"
    if where == "userinfo":
        userinfo = f"{user}:{secret}@"
    elif where == "userinfo-encoded":
        userinfo = f"{user}:{quote(secret, safe='')}@"
    elif where in ("query", "query-encoded"):
        value = secret if where == "query" else quote(secret, safe="")
        params.insert(draw(st.integers(0, len(params))), f"{draw(SECRET_NAMES)}={value}")
    elif where == "options":
        params.insert(draw(st.integers(0, len(params))), "options=" + quote(f"-c {draw(SECRET_NAMES)}={secret}", safe=""))
    fragment = f"#{secret}" if where == "fragment" else ""
    query = f"?{'&'.join(params)}" if params else ""
    return f"{scheme}://{userinfo}{host}{port}/{path}{query}{fragment}", secret


@settings(max_examples=400, deadline=None)
@given(urls_with_a_secret())
def test_no_generated_secret_survives_redaction(case):
    url, secret = case
    shown = redact_url(url)
    for form in {secret, quote(secret, safe=""), quote(secret)}:
        assert form not in shown, (url, shown)
    assert redact_url(shown) == shown  # a redacted URL stays as it is
    assert secret not in redact_text(f"cannot use {url}: refused ({url})", url)


@settings(max_examples=200, deadline=None)
@given(SCHEMES, PLAIN, PLAIN, PLAIN_PARAMS)
def test_a_url_without_secrets_is_shown_as_it_is(scheme, host, path, params):
    query = f"?{'&'.join(f'{k}={v}' for k, v in params)}" if params else ""
    url = f"{scheme}://{host}/{path}{query}"
    assert redact_url(url) == url


@pytest.mark.parametrize("url, shown", [
    ("postgresql://user:secret@host/db", "postgresql://user:***@host/db"),
    ("mysql+pymysql://u:p%40ss@h:3306/d?charset=utf8", "mysql+pymysql://u:***@h:3306/d?charset=utf8"),
    ("postgresql://user@host/db", "postgresql://user@host/db"),
    ("sqlite:///x.db", "sqlite:///x.db"),
    ("file:./mlruns", "file:./mlruns"),
    ("postgresql://host/db?user=u&password=secret", "postgresql://host/db?user=u&password=***"),
    ("postgresql://u:pw@host/db?sslkey=s3cr3t", "postgresql://u:***@host/db?sslkey=***"),
    ("http://h/x?PASS=1234&Api_Key=k#tok", "http://h/x?PASS=***&Api_Key=***#***"),
    ("postgresql://h/db?options=-c%20password%3Dxyz&sslmode=require", "postgresql://h/db?options=***&sslmode=require"),
    ("postgresql://bob:p@ss@host/db", "postgresql://bob:***@host/db"),  # a raw "@" in the password
])
def test_what_is_hidden_and_what_is_kept(url, shown):
    assert redact_url(url) == shown


def test_a_config_records_its_urls_redacted():
    values = {"search": {"storage": "postgresql://u:pw1234@h/db", "mlflow_uri": "http://u:tok5678@m/"}, "threads": 2}
    assert redact_config(values) == {"search": {"storage": "postgresql://u:***@h/db", "mlflow_uri": "http://u:***@m/"},
                                     "threads": 2}


# ---------------------------------------------------------------- the places
SECRET_PARTS = ("pwUSERINFO", "pwQUERY", "pwOPTIONS", "pwFRAGMENT")
LEAKY_URL = ("postgresql://bob:pwUSERINFO@db.example/optuna?sslmode=require&password=pwQUERY"
             "&options=-c%20password%3DpwOPTIONS#pwFRAGMENT")


def test_no_secret_of_a_storage_url_is_written_or_shown(tmp_path, capsys, monkeypatch):
    from paretodistill.search import stages

    shared = tmp_path / "shared.db"
    monkeypatch.setattr(stages, "open_checked_storage", lambda url, *a, **k: open_storage(f"sqlite:///{shared}", *a))
    monkeypatch.setattr(stages.DatabaseLock, "acquire", lambda *a, **k: None)  # no server to lock the search on
    study = tmp_path / "s"
    code, out, err = search(capsys, config_file(tmp_path), study, "--set", f'search.storage="{LEAKY_URL}"')
    assert code == OK
    assert json.loads((study / "search.json").read_text())["storage"] == (
        "postgresql://bob:***@db.example/optuna?sslmode=require&password=***&options=***#***")
    written = [out, err, shared.read_bytes().decode("latin-1"),
               *(p.read_text(errors="replace") for p in study.rglob("*") if p.is_file() and p.suffix != ".pt")]
    assert not [part for part in SECRET_PARTS for text in written if part in text]

    code = main(["status", "--study", str(study), "--storage", LEAKY_URL])  # no database there: its error names the URL
    err = capsys.readouterr().err
    assert code == BAD_INPUT and one_line(err) and "postgresql://bob:***@db.example" in err
    assert not [part for part in SECRET_PARTS if part in err]


def test_an_mlflow_uri_s_password_is_not_printed(tmp_path, capsys, monkeypatch):
    pytest.importorskip("mlflow")
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "0")
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_TIMEOUT", "5")
    code, out, err = search(capsys, config_file(tmp_path), tmp_path / "s",
                            "--mlflow-uri", "http://user:pwMLFLOW1@127.0.0.1:9/?token=pwMLFLOW2")
    assert code == BAD_INPUT and one_line(err)
    assert "MLflow cannot use http://user:***@127.0.0.1:9/?token=***" in err
    assert "pwMLFLOW" not in out + err
