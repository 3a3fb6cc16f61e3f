"""A loopback HTTP proxy for a remote cache that goes silent after N requests.

    python3 tools/stalling_cache_proxy.py --upstream http://127.0.0.1:PORT --answer N

Prints its own URL (http://127.0.0.1:PORT) as the first line of stdout, then
forwards the first N requests (GET, HEAD, PUT, with their Authorization
header) to the upstream cache and relays the answers. Every later request is
read and never answered, its connection held open, as from a cache that hangs
(a stopped process, a dead route): the client sees no error, only silence,
until its own timeout. Runs until killed. tools/cache_safety_check.sh puts it
in front of the project's cache to take the cache away in the middle of a
build. Standard library only.
"""

import argparse
import http.client
import http.server
import sys
import threading
import urllib.parse

# Request headers relayed upstream; hop-by-hop ones (Connection,
# Transfer-Encoding) are the proxy's own business.
FORWARDED_HEADERS = ("Authorization", "Content-Type", "Accept")


class StallingProxy(http.server.ThreadingHTTPServer):
    """Counts requests; answers the first `answer` from the upstream."""

    daemon_threads = True

    def __init__(self, upstream: str, answer: int):
        """Binds a free loopback port."""
        super().__init__(("127.0.0.1", 0), ProxyHandler)
        parsed = urllib.parse.urlsplit(upstream)
        self.upstream = (parsed.hostname, parsed.port)
        self.answer = answer
        self.requests = 0
        self.lock = threading.Lock()
        self.never = threading.Event()

    def admit(self) -> bool:
        """True while the request may still be answered."""
        with self.lock:
            self.requests += 1
            if self.requests == self.answer + 1:
                print(f"stalling cache proxy: answered {self.answer} requests;"
                      " silent from now on", file=sys.stderr, flush=True)
            return self.requests <= self.answer


class ProxyHandler(http.server.BaseHTTPRequestHandler):
    """Relays one request, or holds it unanswered once the proxy is silent."""

    protocol_version = "HTTP/1.1"  # keep-alive, as Bazel's client expects

    def do_GET(self):  # noqa: N802 (BaseHTTPRequestHandler's naming)
        """Relays or stalls a GET."""
        self.relay()

    def do_HEAD(self):  # noqa: N802
        """Relays or stalls a HEAD."""
        self.relay()

    def do_PUT(self):  # noqa: N802
        """Relays or stalls a PUT."""
        self.relay()

    def read_body(self) -> bytes:
        """The request body, sent with Content-Length or chunked."""
        if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
            chunks = []
            while True:
                size = int(self.rfile.readline().split(b";")[0], 16)
                chunks.append(self.rfile.read(size))
                self.rfile.readline()  # the CRLF after each chunk
                if size == 0:
                    return b"".join(chunks)
        return self.rfile.read(int(self.headers.get("Content-Length", 0)))

    def relay(self):
        """Forwards to the upstream and copies its answer back."""
        body = self.read_body()
        if not self.server.admit():
            self.server.never.wait()  # silence, connection held open
            return
        upstream = http.client.HTTPConnection(*self.server.upstream, timeout=60)
        try:
            headers = {name: self.headers[name] for name in FORWARDED_HEADERS if name in self.headers}
            upstream.request(self.command, self.path, body=body if self.command == "PUT" else None,
                             headers=headers)
            answer = upstream.getresponse()
            payload = answer.read()
        finally:
            upstream.close()
        self.send_response(answer.status)
        self.send_header("Content-Length", str(len(payload)))
        if answer.getheader("Content-Type"):
            self.send_header("Content-Type", answer.getheader("Content-Type"))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(payload)

    def log_message(self, format, *args):  # noqa: A002 (the base class's signature)
        """Quiet: the cache's own access log records what was answered."""


def main() -> int:
    """Entry point."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--upstream", required=True, help="the cache's URL, http://HOST:PORT")
    parser.add_argument("--answer", type=int, required=True,
                        help="how many requests are answered before the silence")
    args = parser.parse_args()
    proxy = StallingProxy(args.upstream, args.answer)
    print(f"http://127.0.0.1:{proxy.server_address[1]}", flush=True)
    proxy.serve_forever()
    return 0


if __name__ == "__main__":
    sys.exit(main())
