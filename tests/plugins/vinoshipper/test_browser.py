"""In Chromium: an order to a selected state shows "Sent to Vinoshipper"; after the sandbox ships it,
Check Fulfillment at Vinoshipper shows it shipped with its tracking number."""

import pytest

from tests.factories import AdminFactory
from tests.framework.conftest import run_jobs
from wms.extensions import db

from .helpers import place_order


@pytest.fixture
def app_config(redis_url):
    return {"WMS_PLUGINS": ["plugins.vinoshipper"], "REDIS_URL": redis_url, "WMS_RELAY_ON_COMMIT": True,
            "WMS_RETRY_BACKOFF": (1, 1, 1), "WTF_CSRF_ENABLED": True}


@pytest.mark.browser
def test_order_card_sent_then_shipped_with_tracking(app, configure, stocked, sandbox, page, live_server,
                                                    sign_in, shoot):
    admin = AdminFactory(email="cellar@winery.test")
    db.session.commit()
    configure(states=("CA",))
    order = place_order("WMS-B1", state="CA")
    run_jobs(app)

    sign_in(page, admin.email)
    page.goto(f"/orders/{order.id}")
    assert page.inner_text("#vinoshipper-headline") == "Sent to Vinoshipper"
    assert "Accepted, waiting for fulfillment" in page.inner_text("#vinoshipper-card")
    shoot(page, "vinoshipper-sent")

    sandbox.advance("WMS-B1", "SHIPPED", ["1Z2212000300000042"])
    page.click("#vinoshipper-card button:has-text('Check Fulfillment at Vinoshipper')")
    page.wait_for_selector(".flash-success")
    assert "shipped" in page.inner_text(".flash-success")
    assert page.inner_text("#vinoshipper-stage").startswith("Shipped")
    assert page.inner_text("#vinoshipper-tracking") == "1Z2212000300000042"
    assert "1Z2212000300000042" in page.inner_text("main")       # the WMS shipment on the order page
    shoot(page, "vinoshipper-shipped")


@pytest.mark.browser
def test_failed_card_lists_problems_and_dont_send(app, configure, stocked, sandbox, page, live_server,
                                                  sign_in, shoot):
    import datetime
    admin = AdminFactory(email="cellar@winery.test")
    db.session.commit()
    configure(states=("CA", "MO"))
    order = place_order("WMS-B2", state="MO", lines=(("CAB21-750", 30),), birth=datetime.date(2010, 5, 1))
    run_jobs(app)

    sign_in(page, admin.email)
    page.goto(f"/orders/{order.id}")
    assert page.inner_text("#vinoshipper-headline") == "Failed to Send"
    problems = page.locator("#vinoshipper-problems li").all_inner_texts()
    assert len(problems) == 2 and any("MO allows 24 bottles" in p for p in problems)
    shoot(page, "vinoshipper-failed")

    page.on("dialog", lambda dialog: dialog.accept())
    page.click("#vinoshipper-card button:has-text(\"Don't Send\")")
    page.wait_for_selector(".flash-success")
    assert page.inner_text("#vinoshipper-headline") == "Not Required to Send"
    assert "Don't Send chosen by cellar@winery.test" in page.inner_text("#vinoshipper-reason")
