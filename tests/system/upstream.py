#!/usr/bin/python3
"""A tiny HTTP/1.1 upstream for the system tests: answers every request with 200 and the body
"NAME PATH\n", so a test sees which upstream node served it.

usage: upstream.py ADDRESS PORT NAME
"""
import sys
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def answer(self, body=True):
        n = int(self.headers.get("Content-Length") or 0)
        if n:
            self.rfile.read(n)
        data = f"{self.server.name} {self.path}\n".encode()
        # One write: a head and a body in two small segments would meet Nagle and delayed ACKs
        # on a kept-alive connection (40 ms per response).
        head = (f"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n"
                f"Content-Length: {len(data)}\r\n\r\n").encode()
        self.wfile.write(head + data if body else head)
        if (self.headers.get("Connection") or "").lower() == "close":
            self.close_connection = True

    def do_GET(self):
        self.answer()

    def do_POST(self):
        self.answer()

    def do_HEAD(self):
        self.answer(body=False)

    def log_message(self, *args):
        pass


def main():
    address, port, name = sys.argv[1], int(sys.argv[2]), sys.argv[3]
    ThreadingHTTPServer.allow_reuse_address = True
    ThreadingHTTPServer.daemon_threads = True
    server = ThreadingHTTPServer((address, port), Handler)
    server.name = name
    server.serve_forever()


if __name__ == "__main__":
    main()
