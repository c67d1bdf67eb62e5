#!/usr/bin/env python3
"""Runs the integration suite: unittest discovery in this folder.

    BTCSTREAM_BIN=build/btcstream python3 test/integration/run.py [-k PATTERN]
    python3 test/integration/run.py --binary build/btcstream

Service logs go to $BTCSTREAM_TEST_LOGDIR (default: a temporary directory,
printed at the end). Exits non-zero when a test fails.
"""

import argparse
import os
import sys
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--binary", help="the btcstream binary "
                        "(default: $BTCSTREAM_BIN, else build/btcstream)")
    parser.add_argument("-k", dest="patterns", action="append",
                        help="only tests whose name contains PATTERN")
    parser.add_argument("--failfast", action="store_true")
    args = parser.parse_args()
    if args.binary:
        os.environ["BTCSTREAM_BIN"] = os.path.abspath(args.binary)
    sys.path.insert(0, HERE)
    import service  # after BTCSTREAM_BIN is set

    loader = unittest.TestLoader()
    if args.patterns:
        loader.testNamePatterns = ["*%s*" % p for p in args.patterns]
    suite = loader.discover(start_dir=HERE, pattern="test*.py",
                            top_level_dir=HERE)
    print("binary: %s\nlogs: %s" % (service.binary_path(), service.log_dir()),
          flush=True)
    result = unittest.TextTestRunner(verbosity=2,
                                     failfast=args.failfast).run(suite)
    print("service logs: %s" % service.log_dir(), flush=True)
    print_failure_summary(result)
    return 0 if result.wasSuccessful() else 1


def print_failure_summary(result):
    """One short line per failed test, last: CI shows only the end of the
    output, and a failure's message can be a whole scrape long."""
    failed = [("FAIL", t, tb) for t, tb in result.failures] + \
        [("ERROR", t, tb) for t, tb in result.errors]
    if not failed:
        return
    print("\nfailed tests (%d):" % len(failed))
    for kind, test, tb in failed:
        lines = tb.rstrip().splitlines()
        # The exception line: the first one after the last stack frame.
        first = next((i for i in range(len(lines) - 1, -1, -1)
                      if lines[i].startswith("  ")), -1) + 1
        what = lines[first] if first < len(lines) else lines[-1]
        if len(what) > 240:
            what = what[:240] + "..."
        print("  %s %s\n      %s" % (kind, test.id(), what))


if __name__ == "__main__":
    sys.exit(main())
