"""Checks signatures with the official Twilio helper library.

Reads JSON lines {"token", "url", "params": [[k, v], ...], "signature"} on
stdin; prints "true" or "false" per line.
"""

import json
import sys

from twilio.request_validator import RequestValidator

class MultiDict(dict):
    """Repeated names, the way Django's QueryDict offers them (getlist)."""

    def getlist(self, name):
        return self[name]


for line in sys.stdin:
    case = json.loads(line)
    params = MultiDict()
    for k, v in case["params"]:
        params.setdefault(k, []).append(v)
    ok = RequestValidator(case["token"]).validate(case["url"], params, case["signature"])
    print("true" if ok else "false", flush=True)
