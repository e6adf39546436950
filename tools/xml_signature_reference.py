#!/usr/bin/env python3
"""An independent reference of the Planfix XML signature (Planfix's XML API documentation),
written with Python's ElementTree rather than libxml2, to compute the
expected values of spec/31-xml_convert_spec.lua. Usage:
  tools/xml_signature_reference.py KEY < request.xml   ->  "<string>\t<md5>"
"""
import hashlib
import sys
import xml.etree.ElementTree as ET

BLANK = " \t\n\r"


def flatten(el):
    children = list(el)
    if children:
        out = "".join(el.attrib.values())  # attribute values, document order
        for child in sorted(children, key=lambda c: c.tag.encode()):  # stable
            out += flatten(child)
        return out
    text = el.text or ""
    if text.strip(BLANK):
        return text
    return "".join(el.attrib.values())


def signature_string(xml_text):
    root = ET.fromstring(xml_text.encode())
    assert root.tag == "request"
    kids = [c for c in root if c.tag != "signature"]
    out = root.attrib["method"]
    for child in sorted(kids, key=lambda c: c.tag.encode()):
        out += flatten(child)
    return out


if __name__ == "__main__":
    s = signature_string(sys.stdin.read()) + sys.argv[1]
    print(s.replace("\t", "\\t") + "\t" + hashlib.md5(s.encode()).hexdigest())
