"""Which stores take webhook deliveries, kept per process for a few seconds.

The intake is the busiest public path, and the rows it needs (the store, its plugin's state and
settings) change rarely. A change made in this process clears the copy at once; one made in another
process (a plugin deactivated, a secret saved) reaches this one within `KEEP_SECONDS`. The kept rows
are detached copies, merged into each request's session without a query (SQLAlchemy's
`merge(load=False)`, made for objects taken from a cache)."""

import threading
from time import monotonic

from sqlalchemy import bindparam, event, select
from sqlalchemy.orm import Session

from wms.extensions import db
from wms.plugins.models import PluginState, Store, StoreLocation

KEEP_SECONDS = 5.0

_ACTIVE_STORE = (select(Store, PluginState).join(PluginState, PluginState.name == Store.plugin)
                 .where(Store.id == bindparam("store_id"), Store.plugin == bindparam("plugin"),
                        PluginState.is_active.is_(True)))
_kept = {}   # (engine, plugin name, store id) -> (expires at, detached Store, detached PluginState)
_lock = threading.Lock()


def active_store(plugin_name, store_id):
    """(store, plugin state) of the store `store_id` of the active plugin `plugin_name`, in this request's
    session, or None. Hold both while the request runs: the session only keeps weak references, and
    verify_webhook reads the plugin's settings from the state."""
    key = (db.engine, plugin_name, store_id)   # the engine: tests run several apps in one process
    kept = _kept.get(key)
    if kept is None or kept[0] < monotonic():
        kept = _read(plugin_name, store_id)
        if kept is None:
            return None
        with _lock:
            _kept[key] = kept
    _, store, state = kept
    return db.session.merge(store, load=False), db.session.merge(state, load=False)


def forget():
    with _lock:
        _kept.clear()


def _read(plugin_name, store_id):
    with Session(db.engine) as session:
        found = session.execute(_ACTIVE_STORE, {"store_id": store_id, "plugin": plugin_name}).first()
        if found is None:
            return None
        store, state = found
        session.expunge_all()
    return monotonic() + KEEP_SECONDS, store, state


@event.listens_for(Session, "after_flush")
def _forget_on_change(session, _context):
    changed = (*session.new, *session.dirty, *session.deleted)
    if any(isinstance(obj, (Store, PluginState, StoreLocation)) for obj in changed):
        forget()
