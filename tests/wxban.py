"""Run a command with writable-and-executable memory refused, as systemd's
``MemoryDenyWriteExecute=yes`` does: ``python tests/wxban.py PROGRAM ARGS...``.

Linux's ``prctl(PR_SET_MDWE, PR_MDWE_REFUSE_EXEC_GAIN)`` (kernel 6.3 and later) sets the
same rule for this process and everything it starts (kept across fork and exec): no memory
mapping may be writable and executable at once, or become executable after being writable.
"""

from __future__ import annotations

import ctypes
import os
import sys

PR_SET_MDWE = 65
PR_GET_MDWE = 66
PR_MDWE_REFUSE_EXEC_GAIN = 1


def ban() -> None:
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.prctl(PR_SET_MDWE, PR_MDWE_REFUSE_EXEC_GAIN, 0, 0, 0) != 0:
        sys.exit(f"wxban: prctl(PR_SET_MDWE) failed: {os.strerror(ctypes.get_errno())}")
    if libc.prctl(PR_GET_MDWE, 0, 0, 0, 0) != PR_MDWE_REFUSE_EXEC_GAIN:
        sys.exit("wxban: PR_MDWE_REFUSE_EXEC_GAIN is not in force")


if __name__ == "__main__":
    ban()
    os.execv(sys.argv[1], sys.argv[1:])  # noqa: S606 (the program and its arguments, as given)
