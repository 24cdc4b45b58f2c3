"""Says hello with a protocol version the runner does not speak."""

import os
import sys

os.read(0, 4)
hello = b'{"type":"hello","protocol":99,"input":"json"}'
sys.stdout.buffer.write(len(hello).to_bytes(4, "big") + hello)
sys.stdout.buffer.flush()
os.read(0, 1 << 20)
