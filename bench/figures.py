"""What each bench script reports for `bench/run`: one `FIGURE {json}` line per figure, printed beside
the script's own readable output."""

import json


def figure(bench, what, result, goal="-", met=None, peer="-"):
    """`met` is True or False when the figure has a goal, None when it has none."""
    row = {"bench": bench, "what": what, "result": result, "goal": goal, "met": met, "peer": peer}
    print("FIGURE " + json.dumps(row), flush=True)
