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
    return 0 if result.wasSuccessful() else 1


if __name__ == "__main__":
    sys.exit(main())
