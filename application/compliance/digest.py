"""Reports as reproducible documents: a digest over their canonical JSON (RFC 8785).

Reports hold only strings, integers, booleans, nulls, lists and objects (money is
text), for which RFC 8785's canonical form is: no whitespace, object members sorted by
their names' UTF-16 code units, strings escaped as ECMAScript's JSON.stringify does
(which Python's ``json`` matches with ``ensure_ascii=False``). A float is refused: it
has no place in a report. tests/unit/test_report_digest.py checks this against the
``rfc8785`` package.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

# What may differ between two generations of the same report: left out of the digest.
_UNSIGNED = ("as_of_position", "final", "digest")
_string = json.JSONEncoder(ensure_ascii=False).encode


def canonical(value: Any) -> str:
    if value is None:
        return "null"
    if value is True:
        return "true"
    if value is False:
        return "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, str):
        return _string(value)
    if isinstance(value, list | tuple):
        return "[" + ",".join(canonical(v) for v in value) + "]"
    if isinstance(value, dict):
        keys = sorted(value, key=lambda k: k.encode("utf-16-be"))
        return "{" + ",".join(_string(k) + ":" + canonical(value[k]) for k in keys) + "}"
    raise TypeError(f"a report holds no {type(value).__name__} ({value!r})")


def digest_of(report: dict[str, Any]) -> str:
    body = {k: v for k, v in report.items() if k not in _UNSIGNED}
    return hashlib.sha256(canonical(body).encode("utf-8")).hexdigest()


def finish(report: dict[str, Any], *, position: int, rules_version: str, final: bool) -> dict[str, Any]:
    """The report with what every report carries: ``as_of_position``,
    ``rules_version``, ``final`` and the ``digest`` of the rest."""
    done = {**report, "rules_version": rules_version}
    done["as_of_position"] = position
    done["final"] = final
    done["digest"] = digest_of(done)
    return done
