"""The migrations build exactly the schema the models describe, and upgrade an older database in place."""

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from flask_migrate import downgrade, upgrade
from sqlalchemy import text

from tests.conftest import TEST_DATABASE_URL, _reset_postgres
from wms import create_app
from wms.extensions import db


def migrated_app(tmp_path):
    url = TEST_DATABASE_URL or f"sqlite:///{tmp_path / 'migrated.sqlite'}"
    return create_app({"TESTING": True, "SECRET_KEY": "t", "SQLALCHEMY_DATABASE_URI": url,
                       "WMS_INSTANCE_PATH": str(tmp_path / "instance"), "WMS_PLUGINS": []})


def test_upgrade_from_empty_matches_the_models(tmp_path):
    app = migrated_app(tmp_path)
    with app.app_context():
        if TEST_DATABASE_URL:
            _reset_postgres()
        upgrade()
        with db.engine.connect() as connection:
            differences = compare_metadata(MigrationContext.configure(connection), db.metadata)
        assert differences == []
        if TEST_DATABASE_URL:
            _reset_postgres()


def test_upgrade_keeps_the_data_of_an_older_database(tmp_path):
    app = migrated_app(tmp_path)
    with app.app_context():
        if TEST_DATABASE_URL:
            _reset_postgres()
        upgrade(revision="0001_core")
        db.session.execute(text("INSERT INTO outbox_message (topic, payload, status, attempts, created_at, "
                                "available_at) VALUES ('stock.changed', '{}', 'pending', 0, '2026-01-01', '2026-01-01')"))
        db.session.commit()
        upgrade()
        assert db.session.execute(text("SELECT topic, status FROM outbox_message")).all() == [("stock.changed", "pending")]
        db.session.execute(text("UPDATE outbox_message SET status = 'running'"))   # allowed since 0002
        db.session.commit()
        db.session.execute(text("UPDATE outbox_message SET status = 'pending'"))
        db.session.commit()
        downgrade(revision="0001_core")
        db.session.remove()
        if TEST_DATABASE_URL:
            _reset_postgres()
