"""Speak the protocol's hello, then answer every alert with bytes that are not a frame."""

import os
import sys

out = sys.stdout.buffer
os.read(0, 4)
out.write(b'\x00\x00\x00\x2c{"type":"hello","protocol":1,"input":"json"}')
out.flush()
while os.read(0, 4096):
    out.write(b"\xde\xad\xbe\xef Hello, I am not a frame!\n")
    out.flush()
