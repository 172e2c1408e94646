"""The plugin host: registers every installed plugin at start-up, keeps which are active in the
database, and calls hooks on the active ones only, so activating a plugin needs no restart.

    host = plugin_host()            # in an app context
    host.hooks.wms_order_created(order=order)
    host.plugin_for(store).push_stock(store, items)
"""

import importlib
import logging

import pluggy
from flask import abort, current_app, render_template_string
from markupsafe import Markup
from sqlalchemy import select

from wms.core.errors import ServiceError
from wms.extensions import db

from . import builtin, hookspecs
from .models import PluginState

log = logging.getLogger(__name__)


class PluginInactive(ServiceError):
    status = 404


class _ActiveHooks:
    """`host.hooks.NAME(...)` calls NAME on the core and on active plugins only."""

    def __init__(self, host):
        self._host = host

    def __getattr__(self, name):
        active = self._host.active_names()
        inactive = [p for n, p in self._host.pm.list_name_plugin() if n in self._host.plugin_names and n not in active]
        return self._host.pm.subset_hook_caller(name, remove_plugins=inactive)


class PluginHost:
    def __init__(self, app):
        self.pm = pluggy.PluginManager("wms")
        self.pm.add_hookspecs(hookspecs)
        self.pm.register(builtin, name="wms.core")
        self.plugin_names = []
        for dotted in app.config.get("WMS_PLUGINS", []):
            self.register(importlib.import_module(dotted).plugin)
        if app.config.get("WMS_LOAD_ENTRYPOINTS"):
            for dist_plugin in self._entry_point_plugins():
                self.register(dist_plugin)
        self.pm.check_pending()
        self.hooks = _ActiveHooks(self)

    def register(self, plugin):
        if not plugin.name or plugin.name in self.plugin_names:
            raise ValueError(f"plugin name {plugin.name!r} is empty or taken")
        self.pm.register(plugin, name=plugin.name)
        self.plugin_names.append(plugin.name)

    @staticmethod
    def _entry_point_plugins():
        from importlib.metadata import entry_points
        for entry in entry_points(group="wms.plugins"):
            loaded = entry.load()
            yield getattr(loaded, "plugin", loaded)

    # -- lookup ---------------------------------------------------------------------------------
    def plugins(self, kind=None):
        found = [self.pm.get_plugin(n) for n in self.plugin_names]
        return [p for p in found if kind is None or p.kind == kind]

    def get(self, name):
        if name not in self.plugin_names:
            return None
        return self.pm.get_plugin(name)

    def active_names(self):
        return set(db.session.scalars(select(PluginState.name).where(PluginState.is_active)))

    def is_active(self, name):
        state = db.session.get(PluginState, name)
        return bool(state and state.is_active)

    def active_plugin(self, name):
        plugin = self.get(name)
        if plugin is None or not self.is_active(name):
            raise PluginInactive("plugin_inactive", f"The {name} plugin is not active.")
        return plugin

    def plugin_for(self, store):
        """The plugin that serves a store; refuses when it is missing or inactive."""
        return self.active_plugin(store.plugin)

    def set_active(self, name, active):
        from .settings import state_for
        if self.get(name) is None:
            raise ServiceError("unknown_plugin", f"No plugin named {name}.")
        state_for(name).is_active = bool(active)

    # -- web ------------------------------------------------------------------------------------
    def register_blueprints(self, app):
        """Register every plugin's blueprints (active or not); an inactive plugin's routes answer 404."""
        from wms.web import access
        self.blueprint_plugins = {}
        for impl in self.pm.hook.wms_blueprints.get_hookimpls():
            plugin = impl.plugin
            if getattr(plugin, "name", None) not in self.plugin_names:
                continue
            for blueprint in impl.function() or []:
                if blueprint.name not in access.blueprint_rules():
                    access.set_blueprint_rule(blueprint, "admin")
                self.blueprint_plugins[blueprint.name] = plugin.name
                app.register_blueprint(blueprint)
        app.before_request(self._inactive_plugin_answers_404)

    def _inactive_plugin_answers_404(self):
        from flask import request
        owner = self.blueprint_plugins.get(request.blueprint)
        if owner is not None and not self.is_active(owner):
            abort(404)

    def admin_menu(self):
        from flask_login import current_user
        items = [i for group in self.hooks.wms_admin_menu(user=current_user) for i in (group or [])]
        return [(i.endpoint, i.label) for i in sorted(items, key=lambda i: (i.order, i.label))]

    def panels(self, page, obj):
        from flask_login import current_user
        found = [p for group in self.hooks.wms_panels(page=page, obj=obj, user=current_user) for p in (group or [])]
        return [Markup(render_template_string('<h2>{{ title }}</h2>{{ html|safe }}', title=p.title, html=p.html))
                for p in sorted(found, key=lambda p: (p.order, p.title))]


def _demo_sandbox_url(app, name):
    if not app.config.get("WMS_DEMO"):
        return None
    from wms.sandbox.demo import sandbox_addresses
    return sandbox_addresses(app).get(name)


def plugin_host():
    return current_app.extensions["wms"]


def init_plugins(app):
    host = PluginHost(app)
    app.extensions["wms"] = host
    host.register_blueprints(app)
    app.extensions["wms.admin_menu"] = host.admin_menu
    app.extensions["wms.panels"] = host.panels
    from .activity import record_call
    app.extensions["wms.record_call"] = record_call
    app.jinja_env.globals["demo_sandbox_url"] = lambda name: _demo_sandbox_url(app, name)
    for impl in host.pm.hook.wms_cli_commands.get_hookimpls():
        for command in impl.function() or []:
            from wms.cli import wms_cli
            wms_cli.add_command(command)
    return host
