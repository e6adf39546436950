#!/usr/bin/env python3
"""Write the seed corpus of the xml_encode_sign target (fuzz/corpus/xml_encode_sign).

Its inputs are not XML but the bytes its generator consumes (fuzz/xml_encode_sign.c:
gen_table, gen_key, gen_value, gen_text); this mirrors that generator, so each seed is
a readable table below. Keep NAMES, TEXTS and METHODS in step with the C arrays.
Check what a seed becomes with: FZ_DEBUG=1 build/fuzz/xml_encode_sign <seed>
"""
import os
import struct

NAMES = ["id", "task", "title", "description", "account", "sid", "pageCurrent", "pageSize", "user", "users",
         "group", "groups", "customData", "customValue", "value", "files", "file", "signature", "silent",
         "a", "b", "_", "a1", "a-b", "a.b", "Id", "ID", "xml", "xmlns", "XmlThing", "1a", "-a", ".a", "a b",
         "a:b", "", "@", "#", "ид", "count", "totalCount"]
TEXTS = ["", " ", "  \n\t ", "acme", "task.getList", "<", ">", "&", "\"", "'", "]]>", "&amp;", "&#13;",
         "<![CDATA[x]]>", "\r", "\n", "\r\n", "\t", "\x01", "\x1f", "\x7f", "\0"]  # the rest: bytes, by take()
METHODS = ["task.getList", "task.update", "auth.login", "handbook.getRecords", "contact.add", "action.add"]


class Raw:
    """Generator bytes written by hand."""

    def __init__(self, b):
        self.b = b


def take(s, most):
    s = s.encode() if isinstance(s, str) else s
    assert len(s) <= most, s
    return bytes([len(s)]) + s


def key(k):
    if isinstance(k, bytes):
        return bytes([8]) + take(k, 12)
    if k in ("#text", "#comment"):
        return bytes([7, 1 if k == "#text" else 0])
    if k.startswith("@") and k[1:] in NAMES:
        return bytes([5, NAMES.index(k[1:])])
    if k in NAMES:
        return bytes([0, NAMES.index(k)])
    return bytes([8]) + take(k, 12)


def text(s):
    if isinstance(s, str) and s in TEXTS:
        return bytes([1, TEXTS.index(s)])
    return bytes([0]) + take(s, 40)


def value(v):
    if isinstance(v, Raw):
        return v.b
    if isinstance(v, bool):
        return bytes([5, 1 if v else 0])
    if v is None:
        return bytes([6])  # planapi.null
    if isinstance(v, int):
        return bytes([3]) + struct.pack(">q", v) + bytes([1])
    if isinstance(v, float):
        return bytes([4]) + struct.pack(">d", v)
    if isinstance(v, (str, bytes)):
        return bytes([0]) + text(v)
    if isinstance(v, list):
        assert 1 <= len(v) <= 4
        return bytes([9, len(v) - 1]) + b"".join(value(x) for x in v)
    if isinstance(v, dict):
        return bytes([10]) if not v else bytes([7]) + table(v)
    raise TypeError(v)


def table(d):
    assert len(d) <= 5
    return bytes([len(d)]) + b"".join(key(k) + value(x) for k, x in d.items())


def chain(n, name_index, leaf):
    """n nested tables around leaf, each under NAMES[name_index] (55 <= n < 75)."""
    return Raw(bytes([11, n - 55, name_index]) + text(leaf))


def seed(method, private_key, params):
    m = bytes([1, METHODS.index(method)]) if method in METHODS else bytes([0]) + take(method, 16)
    return m + take(private_key, 24) + bytes([1]) + table(params)


K = "k3y-Private_0123"
SEEDS = {
    "task_getlist": seed("task.getList", K, {"account": "acme", "pageCurrent": 1, "pageSize": 100,
                                             "sid": "0123456789abcdef"}),
    # the XML API documentation's signature example 3 (periodicity left out: not in NAMES)
    "task_update_nested": seed("task.update", K, {"account": "acme", "silent": True, "task": {
        "id": 1001, "title": "Fix pump", "description": "", "groups": {"users": {"id": [7, 3]}},
        "customData": {"customValue": [{"id": 42, "value": "B"}, {"id": 17, "value": "A"}]}}}),
    "attributes_text": seed("handbook.getRecords", K, {"account": "acme",
                                                       "value": {"@value": "v1", "@title": "Имя", "#text": "x & y"}}),
    # an & in an attribute once decoded as "&#38;" (fixed in src/xml_decode.c)
    "attribute_amp": seed("handbook.getRecords", K, {"value": {"@value": "A & B <C>", "@title": "\"q\" &amp;",
                                                               "#text": "t"}}),
    "special_chars": seed("action.add", K, {"account": "<&>\"'", "description": "\r\n", "title": "]]>",
                                            "value": {"@a": "\t\n\"", "#text": "  "}}),
    "invalid_utf8": seed("contact.add", K, {"title": b"\xff\xfe"}),
    "surrogate": seed("contact.add", K, {"title": b"\xed\xa0\x80"}),
    "noncharacter": seed("contact.add", K, {"title": "\uffff"}),
    "control_char": seed("contact.add", K, {"title": "\x01"}),
    "numbers": seed("task.update", K, {"a": 1.5, "b": 1e300, "a1": -0.0, "ID": -9223372036854775808,
                                       "Id": 2.0 ** 63}),
    "nan": seed("task.update", K, {"a": float("nan")}),
    "bool_null": seed("task.update", "", {"silent": False, "description": None, "files": {}, "file": [None, {}, "x"]}),
    "container": seed("task.getList", K, {"files": {"@count": 2, "@totalCount": 9,
                                                    "file": [{"id": 1}, {"id": 2}], "#text": "lost"}}),
    "deep_chain": seed("task.getList", K, {"task": chain(62, 0, "deep")}),
    "too_deep": seed("task.getList", K, {"task": chain(70, 1, "deeper")}),
    "bad_names": seed("task.getList", K, {"xmlns": "1", "1a": "2"}),
    "bad_attr_name": seed("task.getList", K, {"task": {"@xmlns": "urn:x"}}),
    "signature_param": seed("auth.login", K, {"signature": "forged", "account": "acme"}),
    # {id = 1, [1] = "z"} and the like: array items mixed with names
    "mixed_keys": seed("task.getList", K, {"task": Raw(bytes([7, 2]) + key("id") + value(1) + bytes([9, 0, 0])
                                                     + value("z"))}),
    "nested_array": seed("task.getList", K, {"id": [[1, 2], 3]}),
    "blank_text_with_kids": seed("task.update", K, {"task": {"#text": " \n", "id": 5, "@a": "q"}}),
    "raw_method": seed("bad method!", K, {"a": "1"}),
    "root_attribute": seed("task.getList", K, {"@a": "1"}),
}

if __name__ == "__main__":
    out = os.path.join(os.path.dirname(os.path.abspath(__file__)), "corpus", "xml_encode_sign")
    os.makedirs(out, exist_ok=True)
    for name, data in SEEDS.items():
        with open(os.path.join(out, name + ".bin"), "wb") as f:
            f.write(data)
