# A serial device for tests: a pseudo-terminal pair whose master end echoes what it reads.
# Prints the slave's path, then echoes until killed. (Python's pty module: node has none.)
import os, pty, sys, tty

master, slave = pty.openpty()
tty.setraw(slave)
print(os.ttyname(slave), flush=True)
while True:
    try:
        data = os.read(master, 4096)
    except OSError:
        sys.exit(0)
    os.write(master, data)
