"""Say hello, then answer with a well-framed body that is not JSON."""

import os
import sys

out = sys.stdout.buffer
os.read(0, 4)
hello = b'{"type":"hello","protocol":1,"input":"json"}'
out.write(len(hello).to_bytes(4, "big") + hello)
out.flush()
while os.read(0, 4096):
    out.write(b"\x00\x00\x00\x05hello")
    out.flush()
