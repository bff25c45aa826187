"""A registry front that demands HTTP basic authentication, for the image pull secret tests.

    python3 auth_proxy.py LISTEN_PORT UPSTREAM_URL USER:PASSWORD

Serves 127.0.0.1:LISTEN_PORT. A request without the expected credentials gets 401 with a
Basic challenge, as a private registry answers; any other is passed to UPSTREAM_URL (a plain
docker-registry) and its answer returned. Prints "ready" once listening.
"""

import base64
import http.server
import sys
import urllib.error
import urllib.request

PORT, UPSTREAM, CREDENTIALS = int(sys.argv[1]), sys.argv[2], sys.argv[3]
EXPECTED = "Basic " + base64.b64encode(CREDENTIALS.encode()).decode()
PASSED_HEADERS = ("Content-Type", "Docker-Content-Digest", "Docker-Distribution-Api-Version")


class Front(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def do_GET(self):
        self.forward()

    def do_HEAD(self):
        self.forward()

    def forward(self):
        if self.headers.get("Authorization") != EXPECTED:
            self.send_response(401)
            self.send_header("WWW-Authenticate", 'Basic realm="cox-test"')
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        request = urllib.request.Request(UPSTREAM + self.path, method=self.command)
        accept = self.headers.get_all("Accept") or []
        if accept:
            request.add_header("Accept", ", ".join(accept))
        try:
            answer = urllib.request.urlopen(request)
        except urllib.error.HTTPError as error:
            answer = error
        body = answer.read()
        self.send_response(answer.status)
        for name in PASSED_HEADERS:
            if answer.headers.get(name):
                self.send_header(name, answer.headers[name])
        length = answer.headers.get("Content-Length") if self.command == "HEAD" else None
        self.send_header("Content-Length", length or str(len(body)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def log_message(self, format, *args):
        pass


server = http.server.ThreadingHTTPServer(("127.0.0.1", PORT), Front)
print("ready", flush=True)
server.serve_forever()
