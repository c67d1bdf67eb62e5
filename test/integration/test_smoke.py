"""Smoke run: 2,000 concurrent /stream clients in one asyncio process all
receive the same frames."""

import asyncio
import os
import resource
import time
import unittest

from case import ServiceCase
from client import ChunkedDecoder, build_request

CLIENTS = int(os.environ.get("BTCSTREAM_SMOKE_CLIENTS", "2000"))
EVENTS = 3  # consecutive ids every client must share
CONNECTING = 200  # connects in flight at once


def raise_open_files_limit(need):
    """Raises the soft limit to the hard one, and the hard one to `need`
    first where the process may (root with CAP_SYS_RESOURCE, as in CI).
    Returns the hard limit."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard < need:
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (need, need))
            soft = hard = need
        except (ValueError, OSError):
            pass  # over fs.nr_open, or no CAP_SYS_RESOURCE: as it was
    if soft != hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    return hard


class Client:
    """One stream: keeps (id, raw frame) of every update, in order."""

    def __init__(self):
        self.frames = []
        self.status = None
        self.error = None
        self.writer = None

    async def run(self, port, gate):
        try:
            async with gate:
                reader, self.writer = await asyncio.open_connection(
                    "127.0.0.1", port)
                self.writer.write(build_request("GET", "/stream"))
                head = await reader.readuntil(b"\r\n\r\n")
            self.status = int(head.split(b" ", 2)[1])
            if self.status != 200:
                return
            decoder, pending = ChunkedDecoder(), b""
            pending += decoder.feed(head.split(b"\r\n\r\n", 1)[1])
            while True:
                data = await reader.read(65536)
                if not data:
                    self.error = "closed by the server"
                    return
                pending += decoder.feed(data)
                *blocks, pending = pending.split(b"\n\n")
                for block in blocks:
                    if block.startswith(b"id: "):
                        frame_id = int(block.split(b"\n", 1)[0][4:])
                        self.frames.append((frame_id, block + b"\n\n"))
        except (OSError, ValueError, asyncio.IncompleteReadError) as e:
            self.error = repr(e)


class SmokeTest(ServiceCase):
    def test_many_clients_receive_the_same_ids(self):
        need = CLIENTS + 200
        hard = raise_open_files_limit(need)
        if hard < need:
            if os.environ.get("BTCSTREAM_CI") == "1":
                self.fail("open-files hard limit %d is below %d and cannot "
                          "be raised (BTCSTREAM_CI=1 never skips)"
                          % (hard, need))
            self.skipTest("open-files hard limit %d is too low" % hard)
        up = self.start_upstream()
        svc = self.start_service(up, interval="200ms")
        self.assertTrue(up.wait_valid(1, 5))
        asyncio.run(asyncio.wait_for(self.smoke(svc.port), 60))

    async def smoke(self, port):
        gate = asyncio.Semaphore(CONNECTING)
        clients = [Client() for _ in range(CLIENTS)]
        tasks = [asyncio.ensure_future(c.run(port, gate)) for c in clients]
        try:
            started = time.monotonic()
            # Everyone subscribed: each got its first frame (the latest).
            await self.until(lambda: all(c.frames or c.status not in
                                         (None, 200) or c.error
                                         for c in clients), 40)
            broken = [(c.status, c.error) for c in clients
                      if c.status != 200 or c.error]
            self.assertEqual(broken[:5], [], "%d of %d clients failed"
                             % (len(broken), CLIENTS))
            # Ids above the newest anyone has seen were produced after every
            # client subscribed: all clients must get exactly the same ones.
            floor = max(c.frames[-1][0] for c in clients)
            await self.until(lambda: all(
                sum(i > floor for i, _ in c.frames) >= EVENTS or c.error
                for c in clients), 15)
            reference = [f for f in clients[0].frames if f[0] > floor][:EVENTS]
            for n, c in enumerate(clients):
                self.assertIsNone(c.error, "client %d: %s" % (n, c.error))
                got = [f for f in c.frames if f[0] > floor][:EVENTS]
                self.assertEqual(got, reference, "client %d differs" % n)
            ids = [i for i, _ in reference]
            self.assertEqual(ids, sorted(set(ids)))
            print("\n  %d clients, shared ids %r, %.1f s"
                  % (CLIENTS, ids, time.monotonic() - started), flush=True)
        finally:
            for t in tasks:
                t.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            for c in clients:
                if c.writer is not None:
                    c.writer.close()

    async def until(self, predicate, timeout):
        deadline = time.monotonic() + timeout
        while not predicate():
            if time.monotonic() > deadline:
                self.fail("timed out after %.0f s" % timeout)
            await asyncio.sleep(0.05)


if __name__ == "__main__":
    unittest.main()
