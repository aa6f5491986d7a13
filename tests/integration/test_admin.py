"""Admin port access: /healthz, /readyz and /metrics are open to every client; /v1/* (errors,
sessions, usage) is served to loopback clients as is, and to any other client only with
"Authorization: Bearer <the content of admin.token_file>" (401 otherwise), or not at all (403)
when no token file is configured. The token file is read at start and on every reload (a change
of the file reloads), and the token never reaches a log line or a response."""

import fcntl
import json
import os
import signal
import socket
import struct
import subprocess
import unittest

from harness import Client, ProxyTestCase, proxy_config, to_yaml, tokentap_bin, wait_until

V1_PATHS = ("/v1/errors", "/v1/sessions", "/v1/usage?hours=24&minutes=true")
OPEN_PATHS = ("/healthz", "/readyz", "/metrics")
SIOCGIFADDR = 0x8915


def non_loopback_ipv4():
    """An IPv4 address of this machine outside 127.0.0.0/8, or None: a connection to it from
    here comes from that address, so tokentap sees a client that is not on loopback."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        for _, name in socket.if_nameindex():
            try:
                packed = fcntl.ioctl(probe.fileno(), SIOCGIFADDR,
                                     struct.pack("256s", name.encode()[:15]))
            except OSError:
                continue
            address = socket.inet_ntoa(packed[20:24])
            if not address.startswith("127."):
                return address
    return None


def get(address, path, headers=()):
    with Client(address, timeout=10) as client:
        client.send_request("GET", path, [*headers, ("Connection", "close")], host="admin.test")
        return client.read_response()


def bearer(token):
    return [("Authorization", f"Bearer {token}")]


class AdminAccessTest(ProxyTestCase):
    def setUp(self):
        super().setUp()
        self.remote_host = non_loopback_ipv4()
        if self.remote_host is None:
            self.skipTest("no non-loopback IPv4 address on this machine")
        self.upstream = self.start_upstream()
        self.token_file = os.path.join(self.tmp, "admin-token")
        self.token = "adm-" + os.urandom(16).hex()
        self.write_token(self.token + "\n")

    def write_token(self, text):
        # Beside and rename, as kubelet updates a Secret volume.
        tmp = self.token_file + ".tmp"
        with open(tmp, "w", encoding="utf-8") as f:
            f.write(text)
        os.replace(tmp, self.token_file)

    def start(self, **overrides):
        self.proxy = self.start_proxy(proxy_config(self.upstream.url(), admin_listen="0.0.0.0:0",
                                                   **overrides))
        port = self.proxy.admin_address[1]
        self.remote = (self.remote_host, port)
        self.local = ("127.0.0.1", port)
        return self.proxy

    def assert_no_token_anywhere(self, *tokens):
        texts = [self.proxy.stdout_text(), self.proxy.stderr_text()]
        for token in tokens:
            for text in texts:
                self.assertNotIn(token, text)

    def test_v1_needs_the_bearer_token_from_a_client_not_on_loopback(self):
        self.start(admin={"token_file": self.token_file})
        for path in OPEN_PATHS:
            self.assertEqual(get(self.remote, path).status, 200, path)
        for path in V1_PATHS:
            with self.subTest(path=path):
                missing = get(self.remote, path)
                self.assertEqual(missing.status, 401, missing.body)
                self.assertEqual(missing.header("www-authenticate"),
                                 'Bearer realm="tokentap admin"')
                self.assertIn("error", json.loads(missing.body))
                wrong = get(self.remote, path, bearer(self.token[:-1]))
                self.assertEqual(wrong.status, 401)
                self.assertIn('error="invalid_token"', wrong.header("www-authenticate"))
                self.assertNotIn(self.token.encode(), wrong.body)
                self.assertEqual(get(self.remote, path, [("Authorization", self.token)]).status,
                                 401)
                allowed = get(self.remote, path, bearer(self.token))
                self.assertEqual(allowed.status, 200, allowed.body)
                json.loads(allowed.body)
                # Loopback clients (the agent's own container, kubectl port-forward) need none.
                self.assertEqual(get(self.local, path).status, 200)
        self.assert_no_token_anywhere(self.token)

    def test_without_a_token_file_v1_is_refused_to_clients_not_on_loopback(self):
        self.start()
        for path in V1_PATHS:
            refused = get(self.remote, path, bearer(self.token))
            self.assertEqual(refused.status, 403, path)
            self.assertIn("admin.token_file", json.loads(refused.body)["error"])
            self.assertEqual(get(self.local, path).status, 200, path)
        for path in OPEN_PATHS:
            self.assertEqual(get(self.remote, path).status, 200, path)

    def test_a_changed_token_file_is_read_again_and_a_bad_one_is_rejected(self):
        proxy = self.start(admin={"token_file": self.token_file})
        self.assertEqual(get(self.remote, "/v1/errors", bearer(self.token)).status, 200)
        # A rotated Secret: the file change alone reloads (no SIGHUP).
        rotated = "adm-" + os.urandom(16).hex()
        self.write_token(rotated + "\r\n")
        wait_until(lambda: get(self.remote, "/v1/errors", bearer(rotated)).status == 200,
                   timeout=15, what="the rotated token to be accepted", interval=0.2)
        self.assertEqual(get(self.remote, "/v1/errors", bearer(self.token)).status, 401)

        # An empty file is a config error: the running token stays, the error names the key.
        self.write_token("")
        proxy.send_signal(signal.SIGHUP)
        event = proxy.wait_for_stderr(
            lambda e: e.get("msg", "").startswith("config reload failed"), timeout=10,
            what="the failed reload")
        self.assertRegex(event["error"], r":\d+: admin\.token_file: .*an empty file")
        self.assertEqual(get(self.remote, "/v1/errors", bearer(rotated)).status, 200)
        self.assertEqual(proxy.metric("tokentap_config_last_reload_successful"), 0)
        self.assert_no_token_anywhere(self.token, rotated)


class TokenFileCheckTest(ProxyTestCase):
    def test_check_config_names_the_key_line_for_a_bad_token_file(self):
        config = os.path.join(self.tmp, "tokentap.yaml")
        with open(config, "w", encoding="utf-8") as f:
            f.write(to_yaml(proxy_config("https://api.openai.com")) +
                    "\nadmin:\n  token_file: missing-token\n")
        line = to_yaml(proxy_config("https://api.openai.com")).count("\n") + 3
        result = subprocess.run([tokentap_bin(), "--check-config", "--config", config],
                                capture_output=True, text=True, timeout=20, check=False)
        self.assertNotEqual(result.returncode, 0)
        self.assertIn(f"{config}:{line}: admin.token_file: expected a readable file holding the "
                      f'admin bearer token, got "{self.tmp}/missing-token" (No such file or '
                      "directory)", result.stderr)


if __name__ == "__main__":
    unittest.main()
