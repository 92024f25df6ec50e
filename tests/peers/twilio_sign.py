"""Signs webhook requests with the official Twilio helper library, as
Twilio does when it calls a webhook.

Reads JSON lines {"token", "url", "params": [[k, v], ...]} on stdin; prints
the X-Twilio-Signature per line.
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
    print(RequestValidator(case["token"]).compute_signature(case["url"], params), flush=True)
