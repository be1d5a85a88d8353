#!/usr/bin/env python3
"""Drives a program through a real pseudo-terminal, for the REPL tests (tests/repl_pty.rs).

Usage: pty_drive.py SCENARIO.json -- PROGRAM ARGS...

The scenario is a JSON list of steps, run in order:
  ["send", "text"]              type text (use "\r" for Enter, "\t" for Tab, "\u0003" for Ctrl-C,
                                "\u0004" for Ctrl-D)
  ["line", "text", secs]        type text and Enter, then wait for the next prompt (the screen ends
                                with `ferry> ` at the start of a line): the entry ran and keys are
                                read again (keys typed while an entry runs can be lost when the
                                terminal mode changes)
  ["expect", "regex", secs]     wait until the screen text written since the last `mark` matches
                                (ANSI escapes removed); the match's groups become {1}, {2}, ...
  ["reject", "regex"]           fail if the text since the last `mark` matches
  ["mark"]                      later expects only look at what is written from now on
  ["sleep", secs]
  ["post", "url", "json body"]  an HTTP POST (placeholders {1}.. are replaced), e.g. emulator faults
  ["await", "url", "regex", secs]  GET url (placeholders replaced) until its body matches, e.g.
                                until the emulator has a request in flight
                                (/__sim/in_flight?at_least=1 answers when one is)
  ["exit", code, secs]          wait for the program to end with this exit code

Prints the whole transcript at the end; exits 1 (with the reason) when a step fails.
"""

import json
import os
import pty
import re
import select
import signal
import sys
import time
import urllib.request

# The REPL's prompt at the start of a line: an entry was accepted and the next one is read.
PROMPT = "\nferry> "
ANSI = re.compile(r"\x1b\[[0-9;?]*[ -/]*[@-~]|\x1b[()][0-9A-B]|\x1b[=>]|\r")


def main():
    sep = sys.argv.index("--")
    steps = json.load(open(sys.argv[1]))
    argv = sys.argv[sep + 1:]
    pid, fd = pty.fork()
    if pid == 0:
        os.environ["TERM"] = "xterm"
        os.execvp(argv[0], argv)
    # A fixed window size, so the line editor does not wrap unexpectedly.
    try:
        import fcntl
        import struct
        import termios
        fcntl.ioctl(fd, termios.TIOCSWINSZ, struct.pack("HHHH", 50, 200, 0, 0))
    except Exception:
        pass
    out = bytearray()
    mark = 0
    groups = {}
    status = None

    def pump(timeout):
        nonlocal status
        r, _, _ = select.select([fd], [], [], timeout)
        if r:
            try:
                data = os.read(fd, 65536)
            except OSError:
                data = b""
            if data:
                out.extend(data)
                return True
        if status is None:
            p, st = os.waitpid(pid, os.WNOHANG)
            if p == pid:
                status = os.waitstatus_to_exitcode(st)
        return False

    def screen():
        return ANSI.sub("", out[mark:].decode("utf-8", "replace"))

    def fill(s):
        for k, v in groups.items():
            s = s.replace("{%s}" % k, v)
        return s

    def fail(msg):
        sys.stdout.write("---- transcript ----\n" + ANSI.sub("", out.decode("utf-8", "replace")))
        sys.stdout.write("\n---- since mark ----\n" + screen() + "\n---- end ----\n")
        sys.stdout.write("STEP FAILED: " + msg + " (exit status: %s)\n" % status)
        if status is None:
            os.kill(pid, signal.SIGKILL)
        sys.exit(1)

    for step in steps:
        op = step[0]
        if op == "send":
            os.write(fd, step[1].encode())
            time.sleep(0.05)
        elif op == "line":
            start = len(out)
            os.write(fd, (step[1] + "\r").encode())
            deadline = time.time() + (step[2] if len(step) > 2 else 20)
            # A fresh prompt ends the screen (a redraw of a multi-line entry has text after it).
            while not ANSI.sub("", out[start:].decode("utf-8", "replace")).endswith(PROMPT):
                if time.time() >= deadline:
                    fail("no prompt after the line %r" % step[1])
                if not pump(0.1) and status is not None:
                    fail("the program ended after the line %r" % step[1])
        elif op == "mark":
            while pump(0.05):
                pass
            mark = len(out)
        elif op == "sleep":
            end = time.time() + step[1]
            while time.time() < end:
                pump(0.05)
        elif op == "expect":
            rx = re.compile(step[1], re.S)
            deadline = time.time() + (step[2] if len(step) > 2 else 20)
            m = None
            while time.time() < deadline:
                m = rx.search(screen())
                if m:
                    break
                if not pump(0.1) and status is not None:
                    break
            if not m:
                fail("expected /%s/" % step[1])
            for i, g in enumerate(m.groups(), 1):
                groups[str(i)] = g or ""
        elif op == "reject":
            while pump(0.1):
                pass
            if re.search(step[1], screen(), re.S):
                fail("did not expect /%s/" % step[1])
        elif op == "post":
            req = urllib.request.Request(
                fill(step[1]), data=fill(step[2]).encode(),
                headers={"Content-Type": "application/json"}, method="POST")
            with urllib.request.urlopen(req, timeout=10) as resp:
                if resp.status >= 300:
                    fail("POST %s: %s" % (step[1], resp.status))
        elif op == "await":
            rx = re.compile(step[2], re.S)
            deadline = time.time() + (step[3] if len(step) > 3 else 20)
            body = ""
            while time.time() < deadline:
                with urllib.request.urlopen(fill(step[1]), timeout=10) as resp:
                    body = resp.read().decode("utf-8", "replace")
                if rx.search(body):
                    break
                pump(0.05)
            else:
                fail("GET %s never matched /%s/ (last: %s)" % (fill(step[1]), step[2], body))
        elif op == "exit":
            deadline = time.time() + (step[2] if len(step) > 2 else 20)
            while status is None and time.time() < deadline:
                pump(0.1)
            if status is None:
                fail("the program did not end")
            if status != step[1]:
                fail("exit code %s, expected %s" % (status, step[1]))
        else:
            fail("unknown step %r" % (step,))
    if status is None:
        os.kill(pid, signal.SIGKILL)
    sys.stdout.write(ANSI.sub("", out.decode("utf-8", "replace")))


if __name__ == "__main__":
    main()
