#!/usr/bin/env python3
"""Drives the OIC emulator the way public Python OIC scripts do (requests), checking every response.

Environment: GEN2_URL GEN2_USER GEN2_PASS GEN3_URL GEN3_II TOKEN_URL CLIENT_ID CLIENT_SECRET SCOPE
"""
import io
import os
import sys
import time
import zipfile

import requests

API = "/ic/api/integration/v1"
E = os.environ


def check(expected, actual, label):
    if expected != actual:
        print(f"FAIL: {label}: expected {expected!r}, got {actual!r}", file=sys.stderr)
        sys.exit(1)
    print(f"ok - {label}")


# Gen2 metadata backup with paging (SCR-BKP style)
auth = (E["GEN2_USER"], E["GEN2_PASS"])
items, offset = [], 0
while True:
    r = requests.get(f"{E['GEN2_URL']}{API}/integrations", params={"limit": 3, "offset": offset}, auth=auth)
    check(200, r.status_code, f"gen2 page at {offset}")
    body = r.json()
    items += body["items"]
    if not body["hasMore"]:
        break
    offset += len(body["items"])
check(body["totalResults"], len(items), "paged through everything")

r = requests.get(f"{E['GEN2_URL']}{API}/integrations/HR_NEW_HIRE|01.01.0000/archive", auth=auth)
check(200, r.status_code, "export with |")
check("application/octet-stream", r.headers["Content-Type"], "octet-stream")
zipfile.ZipFile(io.BytesIO(r.content)).testzip()
iar = r.content

# OIC 3 token + import + activate
tok = requests.post(
    E["TOKEN_URL"],
    auth=(E["CLIENT_ID"], E["CLIENT_SECRET"]),
    data={"grant_type": "client_credentials", "scope": E["SCOPE"]},
)
check(200, tok.status_code, "token")
h = {"Authorization": f"Bearer {tok.json()['access_token']}"}
q = {"integrationInstance": E["GEN3_II"]}
g3 = E["GEN3_URL"] + API
r = requests.post(f"{g3}/integrations/archive", params=q, headers=h,
                  files={"file": ("HR_NEW_HIRE.iar", iar, "application/octet-stream")},
                  data={"type": "application/octet-stream"})
check(204, r.status_code, "import")
r = requests.post(f"{g3}/integrations/archive", params=q, headers=h,
                  files={"file": ("HR_NEW_HIRE.iar", iar, "application/octet-stream")})
check(409, r.status_code, "import again")
check(["status", "title", "type"], list(r.json().keys()), "error body keys in order")
check("application/json", r.headers["Content-Type"], "error content type")
r = requests.post(f"{g3}/integrations/HR_NEW_HIRE%7C01.01.0000", params=q,
                  headers={**h, "X-HTTP-Method-Override": "PATCH"}, json={"status": "ACTIVATED"})
check(200, r.status_code, "activate")
r = requests.get(f"{g3}/integrations/HR_NEW_HIRE%7C01.01.0000/activationStatus", params=q, headers=h)
check("ACTIVATED", r.json()["activationStatus"], "activation status")
r = requests.get(f"{g3}/integrations/HR_NEW_HIRE%7C01.01.0000", params=q, headers={"Authorization": "Bearer nope"})
check(401, r.status_code, "bad token")
check("Bearer", r.headers.get("WWW-Authenticate"), "WWW-Authenticate")
print("ALL OK")
