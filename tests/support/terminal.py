#!/usr/bin/env python3
"""Runs a command on a real pseudo-terminal, answers one prompt, and reports what the terminal
showed. For the password prompt test: the plugin must read from the terminal with echo off.

Usage: terminal.py PROMPT ANSWER -- COMMAND [ARGS...]
Prints everything the terminal showed (stdout and stderr share it) and exits with the
command's exit code.
"""
import os
import pty
import select
import sys
import termios
import time

prompt, answer = sys.argv[1].encode(), sys.argv[2].encode()
command = sys.argv[sys.argv.index("--") + 1:]
pid, fd = pty.fork()
if pid == 0:
    os.execvp(command[0], command)

shown, answered, deadline = b"", False, time.time() + 60
while time.time() < deadline:
    ready, _, _ = select.select([fd], [], [], 0.2)
    if not ready:
        continue
    try:
        data = os.read(fd, 4096)
    except OSError:  # the child closed the terminal
        break
    if not data:
        break
    shown += data
    if not answered and prompt in shown:
        # Type only once the program has turned echo off (as a person would be too slow to
        # notice): the prompt is printed a moment before the terminal settings change. The
        # master side reports the terminal's settings; give up waiting after 5 s and type anyway,
        # so a program that never disables echo is caught echoing.
        settle = time.time() + 5
        while termios.tcgetattr(fd)[3] & termios.ECHO and time.time() < settle:
            time.sleep(0.01)
        os.write(fd, answer + b"\n")
        answered = True
else:
    os.kill(pid, 9)
_, status = os.waitpid(pid, 0)
sys.stdout.buffer.write(shown)
sys.exit(os.waitstatus_to_exitcode(status))
