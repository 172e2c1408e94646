"""Settings declared by plugins: validation, storage, encryption of secrets, masking for display.

Secrets (plugin settings of type "secret" and store credentials) are stored as one MultiFernet
token of a JSON object. Keys come from WMS_ENCRYPTION_KEYS (comma-separated, newest first, so keys
can be rotated), or from a key file created in the instance folder on first start.
"""

import functools
import json
import os

from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from flask import current_app

from wms.core.errors import ServiceError
from wms.extensions import db

from .models import PluginState

MASK = "••••••••"


def _keys(app):
    configured = [k.strip() for k in (app.config.get("WMS_ENCRYPTION_KEYS") or "").split(",") if k.strip()]
    if configured:
        return configured
    path = os.path.join(app.instance_path, "encryption_key")
    if not os.path.exists(path):
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as fh:
            fh.write(Fernet.generate_key().decode())
    with open(path) as fh:
        return [fh.read().strip()]


def _fernet():
    app = current_app._get_current_object()
    cached = app.extensions.get("wms.fernet")
    if cached is None:
        cached = MultiFernet([Fernet(k.encode()) for k in _keys(app)])
        app.extensions["wms.fernet"] = cached
    return cached


def encrypt(data):
    return _fernet().encrypt(json.dumps(data or {}).encode()).decode() if data else None


def decrypt(token):
    if not token:
        return {}
    try:
        return json.loads(_plaintext(_fernet(), token))
    except InvalidToken:
        raise ServiceError("undecryptable", "Stored credentials cannot be decrypted with the configured "
                           "WMS_ENCRYPTION_KEYS; enter them again.")


@functools.lru_cache(maxsize=256)
def _plaintext(fernet, token):
    """Decrypted once per process and key set: webhook intake verifies a signature with a stored secret
    on every delivery. The process holds the keys anyway, so keeping a few plaintexts adds no reach."""
    return fernet.decrypt(token.encode())


def mask(value):
    """What a page may show of a secret: that it is set, and its last four characters."""
    if not value:
        return ""
    text = str(value)
    return MASK + text[-4:] if len(text) >= 12 else MASK


def parse(settings, form, current=None):
    """Validate submitted values against a settings schema. Returns (values, secrets).

    A secret left blank keeps its current value; other fields are taken as submitted."""
    current = current or {}
    values, secrets, errors = {}, {}, {}
    for setting in settings:
        key = setting.key
        if setting.type == "multichoice":
            raw = form.getlist(key) if hasattr(form, "getlist") else form.get(key, [])
        else:
            raw = form.get(key, "")
        try:
            value = _coerce(setting, raw)
        except ValueError as exc:
            errors[key] = str(exc)
            continue
        if setting.is_secret:
            if value in ("", None):
                value = current.get(key)
            secrets[key] = value
        else:
            values[key] = value
        if setting.required and value in ("", None, []):
            errors[key] = "Required."
    if errors:
        from wms.core.services.catalog import FieldErrors
        raise FieldErrors(errors)
    return values, secrets


def _coerce(setting, raw):
    if setting.type == "bool":
        return str(raw).lower() in ("1", "true", "on", "yes")
    if setting.type == "multichoice":
        allowed = {v for v, _ in setting.choices}
        chosen = [v for v in raw if v]
        bad = [v for v in chosen if v not in allowed]
        if bad:
            raise ValueError(f"Not a choice: {', '.join(bad)}.")
        return chosen
    text = (raw or "").strip() if isinstance(raw, str) else raw
    if setting.type == "int":
        if text in ("", None):
            return setting.default
        try:
            return int(text)
        except (TypeError, ValueError):
            raise ValueError("Must be a whole number.")
    if setting.type == "choice":
        if text in ("", None):
            return setting.default
        if text not in {v for v, _ in setting.choices}:
            raise ValueError("Choose one of the options.")
        return text
    if setting.type == "url" and text and not text.startswith(("https://", "http://")):
        raise ValueError("Must start with https://")
    return text


def state_for(plugin_name, create=True):
    state = db.session.get(PluginState, plugin_name)
    if state is None and create:
        state = PluginState(name=plugin_name, is_active=False, settings={})
        db.session.add(state)
        db.session.flush()
    return state


def plugin_config(plugin):
    """Plugin-wide settings: defaults, then saved values, then decrypted secrets."""
    state = state_for(plugin.name, create=False)
    values = {s.key: s.default for s in plugin.settings}
    if state is not None:
        values.update(state.settings or {})
        values.update(decrypt(state.secrets))
    return values


def save_plugin_settings(plugin, form):
    state = state_for(plugin.name)
    values, secrets = parse(plugin.settings, form, decrypt(state.secrets))
    state.settings = values
    state.secrets = encrypt({k: v for k, v in secrets.items() if v})
    return state


def deployment_option(key, default=None):
    """A plugin's deployment option (a CA file, a timeout): app config `key`, else the environment's
    `WMS_<key>`, so worker processes started with only environment variables see it too. A default
    that is a tuple or a number gives the type: "2,3" becomes (2.0, 3.0)."""
    value = current_app.config.get(key)
    if value is None:
        value = os.environ.get(f"WMS_{key}")
        if value is None:
            return default
        if isinstance(default, tuple):
            value = tuple(float(part) for part in value.split(","))
        elif isinstance(default, (int, float)) and not isinstance(default, bool):
            value = float(value)
    return value
