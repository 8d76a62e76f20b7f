#!/usr/bin/python3
"""A token-introspection endpoint (RFC 7662 style) on loopback, for Dovecot's oauth2 passdb.

Dovecot (passdb driver oauth2, introspection_mode = post) POSTs `token=<access token>` to
/introspect for every OAUTHBEARER or XOAUTH2 login and accepts the login when the JSON answer
names the user (username_attribute = username) and says it is active (active_attribute =
active, active_value = true).  The test decides which tokens are good: grant(token, user),
revoke(token).  Every introspected token is recorded in .seen, so a test can tell which token
a client presented.  Dovecot 2.3 treats an answer without the user name as an internal failure
(no error challenge, "temporary failure"), so a bad token is answered as RFC 7662 says plus a
user name: a revoked token's own ({"active": false, "username": "alice"}: refused by the
active_attribute check), an unknown token an empty one (refused as another user's).  Both are
ordinary refusals, with the OAuth2 error challenge.

Python 3 standard library only.
"""
import http.server
import json
import threading
import urllib.parse

HOST = '127.0.0.1'


class IntrospectionServer:
    def __init__(self, host=HOST):
        self._lock = threading.Lock()
        self._tokens = {}   # token -> user name
        self._revoked = {}  # token -> user name it was granted for
        self.seen = []     # every token introspected, in order
        server = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def log_message(self, fmt, *args):  # quiet: tests print what matters
                pass

            def _answer(self, token):
                with server._lock:
                    if token is not None:
                        server.seen.append(token)
                    user = server._tokens.get(token)
                    was = server._revoked.get(token, '')
                if user:
                    body = {'active': True, 'username': user, 'scope': 'mail'}
                else:
                    # a revoked token still names its user: Dovecot's active_attribute check
                    # is what refuses it
                    body = {'active': False, 'username': was}
                data = json.dumps(body).encode()
                self.send_response(200)
                self.send_header('Content-Type', 'application/json')
                self.send_header('Content-Length', str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def do_POST(self):
                n = int(self.headers.get('Content-Length') or 0)
                form = urllib.parse.parse_qs(self.rfile.read(n).decode('ascii', 'replace'))
                self._answer(form.get('token', [None])[0])

            def do_GET(self):  # introspection_mode = auth: "Authorization: Bearer <token>"
                auth = self.headers.get('Authorization') or ''
                self._answer(auth[7:] if auth.lower().startswith('bearer ') else None)

        self._httpd = http.server.ThreadingHTTPServer((host, 0), Handler)
        self._httpd.daemon_threads = True
        self.port = self._httpd.server_address[1]
        self.url = 'http://%s:%d/introspect' % (host, self.port)
        self._thread = threading.Thread(target=self._httpd.serve_forever, daemon=True)
        self._thread.start()

    def grant(self, token, user):
        with self._lock:
            self._tokens[token] = user
            self._revoked.pop(token, None)

    def revoke(self, token):
        with self._lock:
            user = self._tokens.pop(token, None)
            if user is not None:
                self._revoked[token] = user

    def seen_tokens(self):
        with self._lock:
            return list(self.seen)

    def stop(self):
        self._httpd.shutdown()
        self._httpd.server_close()
        self._thread.join(5)
