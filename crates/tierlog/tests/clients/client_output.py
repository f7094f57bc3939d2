"""Keeps a client script's standard output for its result lines alone.

The Pulsar C++ client under the Python one writes its log lines to file descriptor 1 from its
own threads, so a result line printed meanwhile could be split by a log line (seen in CI:
"exclusive-again<log line> OK"). After this call descriptor 1 is the process's standard error
(still kept by the test runner for the secret audit) and Python's `print` writes, line-buffered,
to the original standard output.
"""

import os
import sys


def results_alone_on_stdout():
    results = os.dup(1)
    os.dup2(2, 1)
    sys.stdout = os.fdopen(results, "w", buffering=1)
