"""A minimal remote store for framework tests: token auth, a batched levels endpoint, a call count.

    POST /levels   {"items": [{"sku", "location", "quantity"}]}  -> {"results": [{"sku", "location", "quantity"}]}
    GET  /levels   -> {"levels": {"SKU@LOC": quantity}, "pushes": N, "items_pushed": N}
"""

import threading

from flask import Flask, jsonify, request

TOKEN = "sample-secret-token-1234"


def create_app(config=None):
    app = Flask(__name__)
    state = {"levels": {}, "pushes": 0, "items_pushed": 0, "batches": [], "hold": None, "inflight": 0}
    lock = threading.Lock()
    app.sandbox = state

    @app.post("/levels")
    def push_levels():
        if request.headers.get("Authorization") != f"Bearer {TOKEN}":
            return jsonify(error="bad token"), 401
        if state["hold"] is not None:        # lets a test catch a push in flight; it then never lands
            state["inflight"] += 1
            state["hold"].wait(60)
            return jsonify(error="the caller went away"), 500
        items = request.get_json()["items"]
        with lock:
            state["pushes"] += 1
            state["items_pushed"] += len(items)
            state["batches"].append(sorted(i["sku"] for i in items))
            for item in items:
                state["levels"][f"{item['sku']}@{item['location']}"] = item["quantity"]
        return jsonify(results=items)

    @app.get("/levels")
    def read_levels():
        with lock:
            return jsonify(levels=state["levels"], pushes=state["pushes"], items_pushed=state["items_pushed"])

    return app
