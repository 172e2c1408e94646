"""Credentials at rest: every secret setting of every built-in plugin, and every store's credentials,
are unreadable in the database (its file on SQLite, every column of every table on both engines);
the activity log of remote calls never holds one."""


import pytest
from flask import Flask, request
from sqlalchemy import select, text
from werkzeug.datastructures import MultiDict

from wms.config import BUILTIN_PLUGINS
from wms.extensions import db
from wms.integrations.errors import RemoteError
from wms.integrations.http import RemoteHttp
from wms.plugins import settings as plugin_settings
from wms.plugins.manager import plugin_host
from wms.plugins.models import ActivityLog, Store
from wms.sandbox.harness import SandboxServer


@pytest.fixture
def app_config():
    return {"WMS_PLUGINS": list(BUILTIN_PLUGINS)}


def marker(*parts):
    return "S3cret-" + "-".join(parts) + "-q9Zx"


def plausible_form(plugin_settings_list, owner):
    """A form filling every setting: secrets with a unique marker, the rest with valid values."""
    form, secrets = MultiDict(), []
    for setting in plugin_settings_list:
        if setting.is_secret:
            form[setting.key] = marker(owner, setting.key)
            secrets.append(form[setting.key])
        elif setting.type == "url":
            form[setting.key] = "https://example.com/api"
        elif setting.type == "int":
            form[setting.key] = str(setting.default if setting.default is not None else 5)
        elif setting.type == "bool":
            form[setting.key] = "on"
        elif setting.type == "multichoice":
            form.setlist(setting.key, [str(setting.choices[0][0])])
        elif setting.type == "choice":
            form[setting.key] = str(setting.choices[0][0])
        else:
            form[setting.key] = str(setting.default or "Sample value")
    return form, secrets


def save_every_secret():
    written = []
    for plugin in plugin_host().plugins():
        form, secrets = plausible_form(plugin.settings, plugin.name)
        plugin_settings.save_plugin_settings(plugin, form)
        written += secrets
        if plugin.kind == "marketplace":
            store_secrets = {"access_token": marker(plugin.name, "store-token"),
                             **{s.key: marker(plugin.name, "store", s.key) for s in plugin.store_settings if s.is_secret}}
            db.session.add(Store(plugin=plugin.name, name=f"{plugin.name} store", remote_address="https://shop.example.com",
                                 settings={}, credentials=plugin_settings.encrypt(store_secrets)))
            written += list(store_secrets.values())
    db.session.commit()
    return written


def every_stored_value():
    """The text of every column of every row in the database."""
    values = []
    with db.engine.connect() as connection:
        for table in db.metadata.sorted_tables:
            for row in connection.execute(select(table)):
                values += [str(v) for v in row if v is not None]
    return "\n".join(values)


def test_secrets_are_unreadable_in_every_column(app):
    written = save_every_secret()
    assert len(written) >= 5     # WineDirect, Vintrace and Vinoshipper alone hold five
    stored = every_stored_value()
    for secret in written:
        assert secret not in stored
    # and they still decrypt with the configured key
    for plugin in plugin_host().plugins():
        for setting in plugin.settings:
            if setting.is_secret:
                assert plugin.config()[setting.key] == marker(plugin.name, setting.key)


def sqlite_file_bytes():
    """The SQLite database file and its write-ahead log, as a thief with the disk would read them."""
    path = db.engine.url.database
    db.session.remove()
    with db.engine.connect() as connection:
        connection.execute(text("PRAGMA wal_checkpoint(TRUNCATE)"))
    db.engine.dispose()
    raw = b""
    for suffix in ("", "-wal"):
        try:
            with open(path + suffix, "rb") as fh:
                raw += fh.read()
        except FileNotFoundError:
            pass
    return raw


def test_secrets_are_unreadable_in_the_database_file(app):
    written = save_every_secret()
    # PostgreSQL's files belong to its server: there, every stored byte is read through SQL instead.
    raw = sqlite_file_bytes() if db.engine.dialect.name == "sqlite" else every_stored_value().encode()
    assert len(raw) > 0
    for secret in written:
        assert secret.encode() not in raw


@pytest.fixture
def echo_server():
    """A remote that answers 401 with everything it was sent, as a careless API would."""
    remote = Flask("echo")

    @remote.route("/<path:path>", methods=["GET", "POST"])
    def echo(path):
        return {"error": "denied", "url": request.url, "headers": dict(request.headers),
                "body": request.get_data(as_text=True)}, 401

    with SandboxServer(remote) as server:
        yield server


def test_the_activity_log_never_holds_a_secret(app, echo_server):
    token, key = "tok_live_7Hq2mZ8wP1", "ck_secret_55aa77bb"
    http = RemoteHttp(echo_server.url, plugin="vintrace", secrets=[token, key],
                      headers={"Authorization": f"Bearer {token}"})
    for call in (lambda: http.get(f"/orders?consumer_secret={key}&page=2"),
                 lambda: http.post(f"/token/{token}", json={"password": key}),
                 lambda: http.get("/ping", params={"access_token": token})):
        with pytest.raises(RemoteError) as failure:
            call()
        assert token not in failure.value.message and key not in failure.value.message
    rows = db.session.scalars(select(ActivityLog)).all()
    assert len(rows) == 3 and all(r.status == 401 for r in rows)
    logged = " ".join(f"{r.path} {r.error}" for r in rows)
    assert token not in logged and key not in logged
    assert "page=2" in logged     # what is not secret stays readable
