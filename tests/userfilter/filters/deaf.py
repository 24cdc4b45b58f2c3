"""Say hello, then never read standard input again (the runner's pipe fills up)."""

import os
import sys
import time

out = sys.stdout.buffer
os.read(0, 4)
hello = b'{"type":"hello","protocol":1,"input":"json"}'
out.write(len(hello).to_bytes(4, "big") + hello)
out.flush()
while True:
    time.sleep(60)
