"""Runs a page's Python blocks one after another in one namespace, as a reader's session would.

Started by the snippet runner as ``python python_worker.py FD``; it reads one JSON request per line on
stdin and answers on descriptor FD (the blocks' own output goes to stdout and stderr, which the
runner keeps for its error messages):

- ``{"op": "exec", "code", "name", "env"}`` runs a block with the page's environment;
- ``{"op": "check", "path", "env"}`` loads a config file and builds a gateway from it, as
  ``relaygate check`` does.
"""

from __future__ import annotations

import importlib
import json
import os
import sys
import traceback
from typing import Any


def main() -> None:
    answers = os.fdopen(int(sys.argv[1]), "w", encoding="utf-8")
    namespace: dict[str, Any] = {"__name__": "__main__"}
    sys.path.insert(0, os.getcwd())
    for line in sys.stdin:
        request = json.loads(line)
        os.environ.clear()
        os.environ.update(request["env"])
        importlib.invalidate_caches()  # the runner may have written modules since the last block
        try:
            if request["op"] == "exec":
                # dont_inherit: compiled as a reader runs it, without this module's postponed annotations
                # (under which pydantic cannot resolve a model's fields that name the block's classes).
                exec(compile(request["code"], request["name"], "exec", dont_inherit=True), namespace)
            else:
                check(request["path"])
            answer: dict[str, Any] = {"ok": True}
        except BaseException:  # a block's SystemExit or KeyboardInterrupt is its failure too
            answer = {"ok": False, "error": traceback.format_exc()}
        sys.stdout.flush()
        sys.stderr.flush()
        answers.write(json.dumps(answer) + "\n")
        answers.flush()


def check(path: str) -> None:
    from relaygate import Gateway
    from relaygate.settings import load_settings

    Gateway(load_settings(path))


if __name__ == "__main__":
    main()
