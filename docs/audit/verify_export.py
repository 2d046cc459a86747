#!/usr/bin/env python3
"""Verify a file written by `backoffice audit export` -- standard library only.

    python3 verify_export.py EXPORT.jsonl [--expect-root POSITION:ROOT]

Recomputes every event's content hash and chain hash from the stored content in the
file, checks them against the hashes the bank recorded, checks that positions only
increase, and that the chain ends at the trailer's root (and passes through ROOT at
POSITION, for a root you kept outside the bank). Exit status 0 when all hold.

The hashes (docs/audit.md):
    content = SHA-256(originator_id as 32 hex digits, 0x00, version in decimal, 0x00,
                      topic, 0x00, state bytes)
    hash    = SHA-256(previous hash, position as 8 bytes big-endian, content)
"""

import argparse
import base64
import hashlib
import json
import sys
import uuid


def content_hash(event):
    if "state" in event:
        state = event["state"].encode("utf-8")
    else:
        state = base64.b64decode(event["state_base64"])
    head = "%s\x00%d\x00%s\x00" % (uuid.UUID(event["originator_id"]).hex,
                                   event["originator_version"], event["topic"])
    return hashlib.sha256(head.encode("utf-8") + state).digest()


def chain_hash(previous, position, content):
    return hashlib.sha256(previous + position.to_bytes(8, "big") + content).digest()


def verify(lines, expect=None):
    header = json.loads(next(lines))
    if header.get("format") != "backoffice-audit-export/1":
        return "not a backoffice audit export"
    previous = bytes.fromhex(header["previous_hash"])
    last, count, trailer = 0, 0, None
    for number, line in enumerate(lines, start=2):
        record = json.loads(line)
        if record.get("kind") == "end":
            trailer = record
            break
        position = record["position"]
        if expect and last < expect[0] < position:
            return f"position {expect[0]}: no event there, so the chain cannot lead to the expected root"
        if position <= last:
            return f"line {number}: position {position} after {last} (rows out of order)"
        content = content_hash(record)
        if content.hex() != record["content_hash"]:
            return f"position {position}: content altered (its hash is not the one recorded)"
        current = chain_hash(previous, position, content)
        if current.hex() != record["hash"]:
            return f"position {position}: chain broken (a row before it was removed or changed)"
        if expect and expect[0] == position and current.hex() != expect[1]:
            return f"position {position}: the chain does not lead to the expected root"
        previous, last, count = current, position, count + 1
    if trailer is None:
        return "no trailer: the file is cut short"
    if trailer["events"] != count or trailer["root"] != previous.hex():
        return "the trailer does not match the events (events removed or added)"
    if expect and not (header["from_position"] <= expect[0] <= last):
        return f"position {expect[0]} is not in this export"
    return None


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("export")
    parser.add_argument("--expect-root", metavar="POSITION:ROOT")
    args = parser.parse_args()
    expect = None
    if args.expect_root:
        position, _, root = args.expect_root.partition(":")
        expect = (int(position), root.lower())
    with open(args.export, encoding="utf-8") as lines:
        problem = verify(lines, expect)
    if problem:
        print(f"NOT OK: {problem}")
        return 1
    print("ok")
    return 0


if __name__ == "__main__":
    sys.exit(main())
