"""Where the suites find the external tools they drive (openssl, promtool,
prometheus, slowhttptest). A tool that is not installed makes its tests
skip on a developer's machine; under BTCSTREAM_CI=1 (.ci/run) nothing may
skip, so the tool's usual path is returned and the tests fail on it.
scripts/deps --test installs every one of them."""

import os
import shutil


def find(name):
    """The path of `name`, or None (its tests skip) outside CI."""
    path = shutil.which(name)
    if path is None and os.environ.get("BTCSTREAM_CI") == "1":
        return "/usr/bin/" + name
    return path
