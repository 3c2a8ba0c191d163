#!/usr/bin/env python3
# qmp-events.py SOCKET LOG - a second QMP client of a test's QEMU (its
# config's device_model_args = [ '-qmp', 'unix:SOCKET,server=on,wait=off' ]):
# connects (retrying while QEMU starts), negotiates capabilities, and
# appends every event QEMU sends, one JSON object a line, to LOG, flushed
# at once, until QEMU closes the socket.  Tests read LOG to prove what
# the guest went through (STOP, RESUME) while a command ran.
import json
import socket
import sys
import time

path, log = sys.argv[1], sys.argv[2]
s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
for _ in range(200):
    try:
        s.connect(path)
        break
    except OSError:
        time.sleep(0.05)
else:
    sys.exit("qmp-events: cannot connect to " + path)
f = s.makefile("rw")
f.readline()                                  # the greeting
f.write('{"execute": "qmp_capabilities"}\n')
f.flush()
with open(log, "a") as out:
    out.write('{"event": "LISTENING"}\n')
    out.flush()
    for line in f:
        try:
            msg = json.loads(line)
        except ValueError:
            continue
        if "event" in msg:
            out.write(json.dumps(msg) + "\n")
            out.flush()
