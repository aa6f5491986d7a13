"""Traces to an https:// collector: verified like an upstream (system store plus tracing.ca_file,
peer verification, SNI, host name check). A collector whose certificate verifies gets every span;
one that does not (self-signed, another CA, another name) gets none, its losses are counted, and
requests neither wait for it nor look any different in the access log."""

import datetime
import os
import shutil
import tempfile
import unittest

from certs import CertFactory, self_signed
from harness import Proxy, proxy_config, wait_until
from tracing_support import OtlpReceiver, TracingCase, decoder_missing


@unittest.skipIf(decoder_missing(), decoder_missing())
class TracingTlsTest(TracingCase):
    @classmethod
    def setUpClass(cls):
        cls.pki = tempfile.mkdtemp(prefix="tokentap-otlp-pki-")
        cls.trusted = CertFactory(cls.pki, "collector-ca")
        now = datetime.datetime.now(datetime.timezone.utc)
        cls.good = cls.trusted.leaf()  # IP 127.0.0.1 and DNS localhost
        cls.by_name = cls.trusted.leaf(ips=(), dns=("localhost",))
        cls.bad = {
            "self-signed": self_signed(cls.pki),
            "another CA": CertFactory(cls.pki, "other-ca").leaf(),
            "wrong host": cls.trusted.leaf(ips=(), dns=("collector.example.test",)),
            "expired": cls.trusted.leaf(not_before=now - datetime.timedelta(days=3),
                                        not_after=now - datetime.timedelta(days=1)),
        }

    @classmethod
    def tearDownClass(cls):
        shutil.rmtree(cls.pki, True)

    def tls_receiver(self, leaf):
        receiver = OtlpReceiver(tls_cert=leaf.cert, tls_key=leaf.key)
        self.addCleanup(receiver.stop)
        return receiver

    def test_a_collector_certified_by_the_ca_file_gets_every_span(self):
        cases = {
            # name: (certificate, endpoint host, tracing keys, environment, SNI expected)
            "ca_file, IP address": (self.good, "127.0.0.1",
                                    {"ca_file": self.trusted.ca_cert}, None, None),
            "ca_file, host name": (self.by_name, "localhost",
                                   {"ca_file": self.trusted.ca_cert}, None, "localhost"),
            "OTEL_EXPORTER_OTLP_TRACES_CERTIFICATE": (
                self.good, "127.0.0.1", {},
                {"OTEL_EXPORTER_OTLP_TRACES_CERTIFICATE": self.trusted.ca_cert}, None),
        }
        for name, (leaf, host, tracing, env, sni) in cases.items():
            with self.subTest(case=name):
                receiver = self.tls_receiver(leaf)
                self.start(endpoint=receiver.endpoint(host), env=env, **tracing)
                self.receiver = receiver
                self.chat(request_id="tls-1")
                self.chat(request_id="tls-failed", fail=True)
                spans = receiver.wait_spans(2)
                self.assertEqual(sorted(s["attrs"]["tokentap.request_id"] for s in spans),
                                 ["tls-1", "tls-failed"])
                self.assertEqual(spans[0]["resource"]["service.name"], "tokentap")
                wait_until(lambda: self.proxy.metric("tokentap_trace_spans_exported_total") == 2,
                           timeout=10, what="tokentap_trace_spans_exported_total == 2")
                self.assertEqual(self.proxy.metric("tokentap_trace_export_errors_total"), 0)
                for reason in ("export_failed", "queue_full", "too_large", "shutdown"):
                    self.assertEqual(self.proxy.metric("tokentap_trace_spans_dropped_total",
                                                       reason=reason), 0, reason)
                self.assertEqual(receiver.handshake_errors(), [])
                self.assertTrue(receiver.sni, "no TLS handshake reached the receiver")
                self.assertEqual(set(receiver.sni), {sni})  # no SNI for an IP address
                self.proxy.stop()
                raw = receiver.raw_bytes()
                for canary in self.proxy.canaries:
                    self.assertNotIn(canary.encode(), raw)

    def test_a_collector_that_does_not_verify_gets_nothing_and_requests_do_not_notice(self):
        keys_off, median_off, _ = self.baseline()
        requests = 15
        for name, leaf in self.bad.items():
            with self.subTest(certificate=name):
                receiver = self.tls_receiver(leaf)
                self.start(endpoint=receiver.endpoint(), ca_file=self.trusted.ca_cert)
                self.receiver = receiver
                keys_on, median_on, worst = self.access_log_keys_and_latency(requests)
                self.assertEqual(keys_on, keys_off)
                self.assertLess(worst, 2.0)
                self.assertLess(median_on, median_off * 3 + 0.05)
                # Each batch is tried max_attempts times (0.5 s, 1 s, 2 s apart), then dropped.
                wait_until(lambda: self.proxy.metric("tokentap_trace_spans_dropped_total",
                                                     reason="export_failed") == requests,
                           timeout=30, what=f"{requests} spans dropped as export_failed")
                self.assertGreaterEqual(self.proxy.metric("tokentap_trace_export_errors_total"),
                                        4)
                self.assertEqual(self.proxy.metric("tokentap_trace_spans_exported_total"), 0)
                self.assertGreaterEqual(len(receiver.handshake_errors()), 4,
                                        "every attempt reached the receiver and failed there")
                self.assertEqual(receiver.raw(), [], "no span may be delivered")
                self.proxy.stop()

    def test_a_ca_file_that_does_not_load_is_a_start_error_naming_it(self):
        missing = os.path.join(self.tmp, "no-such-ca.pem")
        for name, tracing, env in (
                ("ca_file", {"ca_file": missing}, None),
                ("OTEL_EXPORTER_OTLP_TRACES_CERTIFICATE", {},
                 {"OTEL_EXPORTER_OTLP_TRACES_CERTIFICATE": missing})):
            with self.subTest(setting=name):
                upstream = self.start_upstream()
                settings = {"enabled": True, "otlp_endpoint": "https://127.0.0.1:9/v1/traces"}
                settings.update(tracing)
                proxy = Proxy(proxy_config(upstream.url(), tracing=settings), self.tmp, env=env)
                proxy.exit_checked = True
                with self.assertRaises(AssertionError):
                    proxy.start()
                self.assertEqual(proxy.wait_exit(), 1)
                self.assertIn(f"cannot load CA file {missing}", proxy.stderr_text())


if __name__ == "__main__":
    unittest.main()
