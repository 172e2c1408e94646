"""Tags other plugins ask for (outbox topics order.tag_requested and product.tag_requested).

Both functions run inside the core's job for the topic, so they call Shopify directly. tagsAdd and
tagsRemove are idempotent at Shopify (adding a tag the resource carries, or removing one it does not,
changes nothing), so a retried job ends the same. Transient failures propagate as
TransientRemoteError and the job is retried; a refusal (unknown order, missing scope) fails the job,
which then waits on the activity page with a Retry button.
"""

from .client import to_gid

MAX_TAG_LENGTH = 255  # Shopify refuses longer tags


def tag_order(store, order, tags, note=None):
    """Add `tags` to the Shopify order behind `order`. Returns False when the order has no Shopify id.

    `note` is not sent: Shopify can only replace an order's note (orderUpdate), which would erase what
    the merchant wrote there; the tags carry the message instead."""
    wanted = clean_tags(tags)
    if not order.remote_id:
        return False
    if wanted:
        _client(store).add_tags(to_gid("Order", order.remote_id), wanted)
    return True


def tag_product(store, mapping, tags, remove_tags=()):
    """Add `tags` to, and remove `remove_tags` from, the Shopify product behind `mapping`.

    A tag in both lists is added (the newer wish wins over a stale removal)."""
    if not mapping.remote_product_id:
        return False
    wanted = clean_tags(tags)
    unwanted = [tag for tag in clean_tags(remove_tags) if tag.lower() not in {t.lower() for t in wanted}]
    product_gid = to_gid("Product", mapping.remote_product_id)
    client = _client(store)
    if unwanted:
        client.remove_tags(product_gid, unwanted)
    if wanted:
        client.add_tags(product_gid, wanted)
    return True


def clean_tags(tags):
    """Stripped, non-empty, at most 255 characters, each once (Shopify compares tags case-insensitively)."""
    seen, cleaned = set(), []
    for tag in tags or ():
        text = str(tag).strip()[:MAX_TAG_LENGTH]
        if text and text.lower() not in seen:
            seen.add(text.lower())
            cleaned.append(text)
    return cleaned


def _client(store):
    from .connection import client_for
    return client_for(store)
