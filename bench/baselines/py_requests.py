#!/usr/bin/python3
"""py_requests.py: baseline (b) of bench/percall.lua. What a Python user writes:
one requests.Session (keep-alive, TLS verified against the sandbox's CA), the
body parsed whole with xmltodict (XML) or json (JSON).
  python3 py_requests.py PARSE METHOD URL CAFILE CALLS BODYFILE|- [HEADER...]
Prints "cpu_us <CPU microseconds per call> wall_us <...> bytes <answer size>"
(time.process_time: this process, all threads)."""
import json
import sys
import time

import requests
import xmltodict

WARMUP = 3


def main():
    parse, method, url, ca, calls, bodyfile = sys.argv[1:7]
    calls = int(calls)
    headers = dict(h.split(": ", 1) for h in sys.argv[7:])
    body = None if bodyfile == "-" else open(bodyfile, "rb").read()
    session = requests.Session()
    session.verify = ca
    size = 0
    for i in range(WARMUP + calls):
        if i == WARMUP:
            c0, w0 = time.process_time(), time.monotonic()
        r = session.request(method, url, data=body, headers=headers, verify=ca)
        r.raise_for_status()
        size = len(r.content)
        if parse == "xml":
            doc = xmltodict.parse(r.content)
        else:
            doc = json.loads(r.content)
        assert doc
    print("cpu_us %.1f wall_us %.1f bytes %d" % ((time.process_time() - c0) / calls * 1e6,
                                                  (time.monotonic() - w0) / calls * 1e6, size))


main()
