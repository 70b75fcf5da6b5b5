"""Helpers for integration tests: start the daemon and real peers on loopback, scrape, wait."""
import atexit
import contextlib
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request


def scratch_dir(prefix):
    """A temporary directory removed when the test exits (also after a failed assertion), so
    repeated runs do not fill the disk: several tests write inputs of 200-400 MB. Set
    GW_KEEP_TEST_DIRS=1 to keep them for a post-mortem."""
    d = tempfile.mkdtemp(prefix=prefix)
    if not os.environ.get("GW_KEEP_TEST_DIRS"):
        atexit.register(shutil.rmtree, d, True)
    return d


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def http_get(url, timeout=5):
    with urllib.request.urlopen(url, timeout=timeout) as r:
        return r.status, r.read().decode()


def wait_for(pred, timeout, what, interval=0.2):
    deadline = time.time() + timeout
    last = None
    while time.time() < deadline:
        try:
            v = pred()
            if v:
                return v
        except Exception as e:  # noqa: BLE001 - retried until the deadline
            last = e
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout}s waiting for {what} (last error: {last})")


def parse_metrics(text):
    """{(name, frozenset(labels)): value} from the text exposition format."""
    out = {}
    for line in text.splitlines():
        if not line or line.startswith("#"):
            continue
        m = re.match(r'^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{(.*)\})? (\S+)$', line)
        if not m:
            continue
        labels = frozenset(re.findall(r'([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"', m.group(3) or ""))
        out[(m.group(1), labels)] = float(m.group(4))
    return out


def metric(metrics, name, **labels):
    want = set(labels.items())
    vals = [v for (n, ls), v in metrics.items() if n == name and want <= set(ls)]
    return vals


class Daemon:
    """guardwatch run with a config file; the HTTP port is read from its log."""

    def __init__(self, binary, config_text, extra_args=(), stdin=None, env=None):
        self.dir = scratch_dir("gw-it-")
        self.config = os.path.join(self.dir, "guardwatch.yaml")
        with open(self.config, "w") as f:
            f.write(config_text)
        self.log_path = os.path.join(self.dir, "daemon.log")
        self.log = open(self.log_path, "w")
        self.proc = subprocess.Popen([binary, "run", "--config", self.config, "--listen", "127.0.0.1:0", *extra_args],
                                     stdout=self.log, stderr=subprocess.STDOUT, stdin=stdin,
                                     env={**os.environ, **env} if env else None)
        self.url = wait_for(self._address, 30, "the daemon's listen address")

    def _address(self):
        # The log first: a daemon that is meant to stop by itself may have done so already.
        exited = self.proc.poll() is not None
        m = re.search(r"listening on (https?://[0-9.:]+)", open(self.log_path).read())
        if m:
            return m.group(1)
        if exited:
            raise AssertionError("daemon exited early:\n" + open(self.log_path).read())
        return None

    def metrics(self):
        return parse_metrics(http_get(self.url + "/metrics")[1])

    def stop(self, timeout=30):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                rc = self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                raise AssertionError("daemon did not exit within %ss of SIGTERM" % timeout)
            return rc
        return self.proc.returncode

    def kill(self):
        """SIGKILL: no commit, no goodbye to the group (a crash)."""
        self.proc.kill()
        self.proc.wait()

    def ready(self):
        try:
            return http_get(self.url + "/readyz")[0] == 200
        except Exception:
            return False

    def output(self):
        return open(self.log_path).read()


@contextlib.contextmanager
def stopped_cleanly(d):
    """Stops the daemon at the end and asserts it exits 0; prints its log when anything failed."""
    try:
        yield d
    except BaseException:
        print("daemon log (last 8,000 characters):\n" + d.output()[-8000:])
        d.stop()
        raise
    rc = d.stop()
    assert rc == 0, f"daemon exit code {rc}\n{d.output()}"


class Prometheus:
    def __init__(self, targets, scrape_interval="1s"):
        self.dir = scratch_dir("gw-prom-")
        self.port = free_port()
        cfg = os.path.join(self.dir, "prometheus.yml")
        with open(cfg, "w") as f:
            f.write("global: {scrape_interval: %s, evaluation_interval: %s}\n" % (scrape_interval, scrape_interval))
            f.write("scrape_configs:\n  - job_name: guardwatch\n    static_configs:\n      - targets: [%s]\n"
                    % ", ".join('"%s"' % t for t in targets))
        self.log = open(os.path.join(self.dir, "prometheus.log"), "w")
        self.proc = subprocess.Popen(["prometheus", "--config.file=" + cfg, "--storage.tsdb.path=" + self.dir + "/data",
                                      "--web.listen-address=127.0.0.1:%d" % self.port],
                                     stdout=self.log, stderr=subprocess.STDOUT)
        self.url = "http://127.0.0.1:%d" % self.port
        wait_for(lambda: http_get(self.url + "/-/ready")[0] == 200, 60, "Prometheus to be ready")

    def query(self, promql):
        import json
        import urllib.parse
        _, body = http_get(self.url + "/api/v1/query?query=" + urllib.parse.quote(promql))
        data = json.loads(body)
        assert data["status"] == "success", data
        return data["data"]["result"]

    def stop(self):
        self.proc.terminate()
        try:
            self.proc.wait(20)
        except subprocess.TimeoutExpired:
            self.proc.kill()


def kafka_config(topic, brokers, properties=None, windows=None):
    """A daemon config reading `topic` in the consumer group `<topic>-group`."""
    props = {"bootstrap.servers": brokers, "group.id": f"{topic}-group", **(properties or {})}
    text = f"kafka:\n  topics: [{topic}]\n  properties:\n"
    text += "".join(f'    {k}: "{v}"\n' for k, v in props.items())
    if windows:
        text += "windows:\n" + "".join(f"  {k}: {v}\n" for k, v in windows.items())
    return text


def run(args, **kw):
    r = subprocess.run(args, capture_output=True, text=True, **kw)
    if r.returncode != 0:
        sys.stderr.write(r.stdout + r.stderr)
        raise AssertionError(f"{args[0]} exited {r.returncode}")
    return r.stdout


def kafka_broker(root):
    """The test broker (scripts/kafka start: started once, then found): its bootstrap address."""
    return run([os.path.join(root, "scripts/kafka"), "start"]).strip().splitlines()[-1]


def produce(binary, brokers, topic, seed, count, partitions=3, start="now-5m"):
    """`count` seeded records of the built-in scenario into `topic`, keyed by series."""
    run([binary, "generate", "--seed", str(seed), "--start", start, "--count", str(count),
         "--kafka-brokers", brokers, "--topic", topic, "--partitions", str(partitions)])


class Alertmanager:
    """A real Alertmanager (Debian's prometheus-alertmanager) on loopback, clustering off."""

    def __init__(self, port=None):
        self.dir = scratch_dir("gw-am-")
        self.port = port or free_port()
        self.cfg = os.path.join(self.dir, "alertmanager.yml")
        with open(self.cfg, "w") as f:
            f.write("route: {receiver: blackhole, group_wait: 1s, group_interval: 1s}\nreceivers: [{name: blackhole}]\n")
        self.url = "http://127.0.0.1:%d" % self.port
        self.proc = None

    def start(self):
        self.log = open(os.path.join(self.dir, "alertmanager.log"), "a")
        self.proc = subprocess.Popen(["prometheus-alertmanager", "--config.file=" + self.cfg, "--storage.path=" + self.dir + "/data",
                                      "--web.listen-address=127.0.0.1:%d" % self.port, "--cluster.listen-address="],
                                     stdout=self.log, stderr=subprocess.STDOUT)
        wait_for(lambda: http_get(self.url + "/-/ready")[0] == 200, 60, "Alertmanager to be ready")
        return self

    def alerts(self, **filters):
        import json
        import urllib.parse
        q = "&".join("filter=" + urllib.parse.quote('%s="%s"' % (k, v)) for k, v in filters.items())
        return json.loads(http_get(self.url + "/api/v2/alerts?" + q)[1])

    def stop(self):
        if self.proc:
            self.proc.terminate()
            try:
                self.proc.wait(20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
            self.proc = None
