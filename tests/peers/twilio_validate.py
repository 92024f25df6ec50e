"""Checks signatures with the official Twilio helper library.

Reads JSON lines {"token", "url", "params": [[k, v], ...], "signature"} on
stdin; prints "true" or "false" per line.
"""

import json
import sys

from twilio.request_validator import RequestValidator

for line in sys.stdin:
    case = json.loads(line)
    params = {}
    for k, v in case["params"]:
        params.setdefault(k, []).append(v)
    flat = {k: (v[0] if len(v) == 1 else v) for k, v in params.items()}
    ok = RequestValidator(case["token"]).validate(case["url"], flat, case["signature"])
    print("true" if ok else "false", flush=True)
