"""Python half of tests/proto/crosscheck.sh: compares our pbjson output with
Google's reference implementation (google.protobuf.json_format) and with
protoc's text format round trip, case by case.

  crosscheck.py check WORK PYDIR      JSON and binary agreement per case
  crosscheck.py negatives WORK PYDIR  write inputs both sides must reject
  crosscheck.py decoded WORK PYDIR    our decoding of Python's JSON

A case is WORK/NAME.type (full message name), NAME.bin (binary) and
NAME.ours.json (our encoder), written by `pbjson-tool cases`; the shell has
added NAME.protoc.bin (protoc --decode | protoc --encode) and NAME.protoc.json
(our encoder on that) for every filled case. Empty cases (NAME ends in
"-empty") are compared with FJ_PBJSON_DEFAULTS against
including_default_value_fields. Exit status 1 and one line per disagreement
when anything differs.
"""

import glob
import json
import math
import os
import sys


def load_modules(pydir):
    sys.path.insert(0, pydir)
    import fjord_pb2  # noqa: F401  (registers the types)
    import pbjson_test2_pb2  # noqa: F401
    import pbjson_test_pb2  # noqa: F401
    from google.protobuf import json_format, symbol_database

    db = symbol_database.Default()
    return json_format, db.GetSymbol


def canonical(cls, data):
    """Deterministic re-serialisation: map entries sorted, fields in order."""
    return cls.FromString(data).SerializeToString(deterministic=True)


def same_json(a, b):
    """Structural equality; NaN reals (never produced here) would compare equal."""
    if isinstance(a, float) and isinstance(b, float):
        return a == b or (math.isnan(a) and math.isnan(b))
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(same_json(a[k], b[k]) for k in a)
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(same_json(x, y) for x, y in zip(a, b))
    if isinstance(a, bool) or isinstance(b, bool):
        return a is b
    return a == b


def first_diff(a, b, path=""):
    if isinstance(a, dict) and isinstance(b, dict):
        for k in sorted(set(a) | set(b)):
            if k not in a or k not in b:
                return "%s.%s present on one side only" % (path, k)
            if not same_json(a[k], b[k]):
                return first_diff(a[k], b[k], "%s.%s" % (path, k))
    if isinstance(a, list) and isinstance(b, list) and len(a) == len(b):
        for i, (x, y) in enumerate(zip(a, b)):
            if not same_json(x, y):
                return first_diff(x, y, "%s[%d]" % (path, i))
    return "%s: ours %r, python %r" % (path or "(top)", a, b)


def read(path, mode="r"):
    with open(path, mode) as f:
        return f.read()


def cases(work):
    for tpath in sorted(glob.glob(os.path.join(work, "*.type"))):
        base = tpath[: -len(".type")]
        yield base, read(tpath).strip()


def check(work, pydir):
    json_format, get = load_modules(pydir)
    bad = 0
    n = 0
    for base, tname in cases(work):
        cls = get(tname)
        name = os.path.basename(base)
        n += 1
        raw = read(base + ".bin", "rb")
        want_bin = canonical(cls, raw)
        msg = cls.FromString(raw)
        if base.endswith("-empty"):
            py_text = json_format.MessageToJson(
                msg,
                including_default_value_fields=True,
                preserving_proto_field_name=False,
            )
        else:
            py_text = json_format.MessageToJson(msg, preserving_proto_field_name=False)
        with open(base + ".py.json", "w") as f:
            f.write(py_text)
        ours_text = read(base + ".ours.json")
        ours = json.loads(ours_text)
        py = json.loads(py_text)
        # 1. The same message gives the same JSON object.
        if not same_json(ours, py):
            print("%s (%s): JSON differs: %s" % (name, tname, first_diff(ours, py)))
            bad += 1
        # 2. Python reads our JSON back to the same binary.
        try:
            back = json_format.Parse(ours_text, cls())
            if back.SerializeToString(deterministic=True) != want_bin:
                print("%s (%s): Python's parse of our JSON gives other bytes" % (name, tname))
                bad += 1
        except json_format.ParseError as e:
            print("%s (%s): Python rejects our JSON: %s" % (name, tname, e))
            bad += 1
        # 3. protoc's text format round trip keeps the bytes, and our JSON of it.
        if os.path.exists(base + ".protoc.bin"):
            if canonical(cls, read(base + ".protoc.bin", "rb")) != want_bin:
                print("%s (%s): protoc --decode/--encode changed the bytes" % (name, tname))
                bad += 1
            # protoc prints map entries sorted by key, so compare as objects.
            if not same_json(json.loads(read(base + ".protoc.json")), ours):
                print("%s (%s): our JSON of protoc's re-encoding differs" % (name, tname))
                bad += 1
    print("crosscheck: %d cases compared with json_format and protoc, %d disagreements" % (n, bad))
    return 1 if bad or n == 0 else 0


def decoded(work, pydir):
    """Our decoder on Python's JSON must give the original message."""
    _, get = load_modules(pydir)
    bad = 0
    n = 0
    for base, tname in cases(work):
        cls = get(tname)
        n += 1
        if canonical(cls, read(base + ".py.ours.bin", "rb")) != canonical(
            cls, read(base + ".bin", "rb")
        ):
            print("%s (%s): our decoding of Python's JSON differs" % (base, tname))
            bad += 1
    print("crosscheck: %d Python JSON texts decoded by ours, %d disagreements" % (n, bad))
    return 1 if bad or n == 0 else 0


# Inputs that both implementations must reject; the last item is the field
# path our message must name.
NEGATIVES = [
    ("fjord.v1.Run", '{"id": "r", "bogus": 1}', "bogus"),
    ("fjord.v1.Run", '{"sequence": 4294967296}', "sequence"),
    ("fjord.v1.Run", '{"sequence": -1}', "sequence"),
    ("fjord.v1.Run", '{"state": "RUN_STATE_NOPE"}', "state"),
    ("fjord.v1.Run", '{"clientSite": 7}', "clientSite"),
    ("fjord.v1.Run", '{"paths": {"family": 1}}', "paths"),
    ("fjord.v1.Run", '{"paths": [{"family": "ADDRESS_FAMILY_IPV9"}]}', "paths[0].family"),
    ("fjord.v1.Run", '{"dueMs": "12x"}', "dueMs"),
    ("fjord.v1.Run", '{"dueMs": 1.5}', "dueMs"),
    ("fjord.v1.Run", '{"dueMs": "9223372036854775808"}', "dueMs"),
    ("fjord.v1.ExperimentSpec", '{"echo": {}, "probe": {}}', "probe"),
    ("fjord.v1.ExperimentSpec", '{"shareLinks": "true"}', "shareLinks"),
    ("fjord.v1.ExperimentSpec", '{"targets": {"pairs": [{"clientAgentId": []}]}}',
     "targets.pairs[0].clientAgentId"),
    ("fjord.v1.Metric", '{"value": "nan"}', "value"),
    ("fjord.v1.Metric", '{"value": {}}', "value"),
    ("fjord.v1.Command", '{"run": {"run": {"bogus": 1}}}', "run.run.bogus"),
    ("fjord.test.Scalars", '{"i32": 2147483648}', "i32"),
    ("fjord.test.Scalars", '{"u64": "-1"}', "u64"),
    ("fjord.test.Scalars", '{"flt": 1e39}', "flt"),
    ("fjord.test.Scalars", '{"blob": 5}', "blob"),
    ("fjord.test.Scalars", '{"blob": "a"}', "blob"),
    ("fjord.test.Maps", '{"byI32": {"x": "a"}}', "byI32[x]"),
    ("fjord.test.Maps", '{"byFlag": {"yes": 1}}', "byFlag[yes]"),
    ("fjord.test.Choice", '{"word": "a", "number": "1"}', "number"),
]
# Not listed: a proto2 message missing a required field. Ours rejects it
# (tests/unit/test_pbjson.c, reject_syntax_and_required); json_format.Parse
# does not check required fields at all.


def negatives(work, pydir):
    json_format, get = load_modules(pydir)
    bad = 0
    os.makedirs(os.path.join(work, "neg"), exist_ok=True)
    for i, (tname, text, field) in enumerate(NEGATIVES):
        try:
            json_format.Parse(text, get(tname)())
            print("negative %d (%s %s): Python accepts it" % (i, tname, text))
            bad += 1
        except json_format.ParseError:
            pass
        with open(os.path.join(work, "neg", "%02d.in" % i), "w") as f:
            f.write("%s\n%s\n%s\n" % (tname, field, text))
    return 1 if bad else 0


if __name__ == "__main__":
    if len(sys.argv) != 4:
        sys.exit("usage: crosscheck.py check|negatives|decoded WORK PYDIR")
    cmd = {"check": check, "negatives": negatives, "decoded": decoded}[sys.argv[1]]
    sys.exit(cmd(sys.argv[2], sys.argv[3]))
