"""Parses one RFC 5322 message from stdin with Python's email package (policy.default, which
decodes RFC 2047 headers) and prints it as JSON for tend's tests."""

import email
import json
import sys
from email import policy

raw = sys.stdin.buffer.read()
msg = email.message_from_bytes(raw, policy=policy.default)
out = {
    "headers": [[k, str(v)] for k, v in msg.items()],
    "content_type": msg.get_content_type(),
    "parts": [],
}
for part in msg.walk():
    if part.is_multipart():
        continue
    out["parts"].append(
        {
            "content_type": part.get_content_type(),
            "charset": part.get_content_charset(),
            "body": part.get_content(),
        }
    )
print(json.dumps(out))
